"""The wearables errors live in wearables/exceptions.py and are answered as before: the same status,
code, field and words."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient

from app.accounts.models import User
from app.db import utcnow
from app.errors import DomainError
from tests.factories import api_headers, csrf_token, sign_in
from wearables import exceptions, services


def test_every_wearables_error_is_a_domain_error_with_the_codes_clients_know() -> None:
    classes = [getattr(exceptions, name) for name in exceptions.__all__]
    assert all(issubclass(cls, DomainError) for cls in classes)
    assert {cls.code for cls in classes} == {"invalid_input", "not_found"}
    assert exceptions.DayInTheFuture().field == "day"
    assert exceptions.NotAWholeNumber(field="steps").field == "steps"


def test_refusals_keep_their_status_code_field_and_words(client: FlaskClient, member: User) -> None:
    sign_in(client, "Sunny River")
    tomorrow = services.local_today(member, utcnow()) + timedelta(days=1)
    future = client.post("/api/v1/metrics/steps", json={"day": tomorrow.isoformat(), "steps": 5},
                         headers=api_headers(client))
    assert future.status_code == 400
    assert future.get_json()["error"] == {
        "code": "invalid_input", "field": "day",
        "message": "That day has not happened yet. Please pick today or an earlier day."}
    too_many = client.get("/api/v1/metrics?days=400")
    assert too_many.status_code == 400
    assert too_many.get_json()["error"]["field"] == "days"
    not_connected = client.post("/tracker/disconnect/google", data={
        "csrf_token": csrf_token(client)}, headers={"Accept": "application/json"})
    assert not_connected.status_code == 404
    assert not_connected.get_json()["error"] == {"code": "not_found",
                                                 "message": "That tracker is not connected."}
    unknown = client.post("/tracker/connect/elsewhere", data={"csrf_token": csrf_token(client)})
    assert unknown.status_code == 404 and "That tracker cannot be connected here." in (
        unknown.get_data(as_text=True))
