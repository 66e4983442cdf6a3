"""Legacy Fitbit notifications (Subscriptions API), sent by the Fitbit stand-in to our app served over
real HTTP: the subscriber check, signed deliveries answered at once, and one sync however often and
in whatever order they repeat."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from app.accounts.models import Cohort, User
from app.db import get_db, utcnow
from app.jobs import huey
from tests import factories
from tests.standins import CLIENT_SECRET, Standin, fitbit_config, serve, standin_tokens
from wearables import services
from wearables.models import Connection
from wearables.providers.base import Identity, TokenSet
from wearables.standins import generator
from wearables.tasks import cipher

VERIFY_CODE = "c0ffee-subscriber-check"


@pytest.fixture
def app_config(fitbit: Standin, request: pytest.FixtureRequest) -> dict[str, object]:
    return {"JOBS_IMMEDIATE": False, **fitbit_config(fitbit.url),
            "FITBIT_SUBSCRIBER_VERIFY_CODE": VERIFY_CODE, **getattr(request, "param", {})}


@pytest.fixture
def hearten(app: Flask) -> Iterator[str]:
    """Our app over real HTTP, where Fitbit's notifications arrive."""
    url, server = serve(app)
    yield url
    server.shutdown()


@pytest.fixture
def walker(session: Session, cohort: Cohort) -> User:
    return factories.make_member(session, cohort=cohort, name="New Yorker",
                                 timezone=generator.home_zone(0, 0))


@pytest.fixture
def connection_id(app: Flask, walker: User, fitbit: Standin) -> Iterator[int]:
    """The walker's old Fitbit connection, made before the legacy API closed."""
    grant = standin_tokens(fitbit.url)
    with app.app_context(), get_db().transaction() as session:
        connection = services.connect(
            session, member=walker, provider="fitbit",
            tokens=TokenSet(grant["access_token"], grant["refresh_token"],
                            utcnow() + timedelta(hours=8)),
            identity=Identity(grant["user_id"]), cipher=cipher(), backfill_days=30, now=utcnow())
    huey.flush()  # jobs queue for real here: start from an empty queue
    yield connection.id or 0
    huey.flush()


def subscribe(fitbit: Standin, hearten: str) -> dict[str, Any]:
    answer = requests.post(f"{fitbit.url}/_standin/subscriber", timeout=10, json={
        "url": f"{hearten}/webhooks/fitbit", "verify_code": VERIFY_CODE})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def notify(fitbit: Standin, *notifications: dict[str, str], signature: str = "valid") -> int:
    """Fitbit POSTs these notifications to our subscriber; the status we answered."""
    answer = requests.post(f"{fitbit.url}/_standin/notify", timeout=10, json={
        "notifications": list(notifications), "signature": signature})
    assert answer.status_code == 200, answer.text
    assert answer.json()["seconds"] < 5  # Fitbit gives a subscriber five seconds
    status: int = answer.json()["status"]
    return status


def activities(day: str) -> dict[str, str]:
    return {"collectionType": "activities", "date": day, "login_hint": "walker"}


def test_fitbit_verifies_our_subscriber_with_the_right_code_and_a_wrong_one(
        fitbit: Standin, hearten: str) -> None:
    assert subscribe(fitbit, hearten) == {"verified": True,
                                          "answers": {"correct": 204, "incorrect": 404}}


@pytest.mark.parametrize("app_config", [{"FITBIT_SUBSCRIBER_VERIFY_CODE": ""}], indirect=True)
def test_without_a_verify_code_configured_no_subscriber_check_passes(
        fitbit: Standin, hearten: str, client: FlaskClient) -> None:
    assert subscribe(fitbit, hearten)["verified"] is False
    assert client.get("/webhooks/fitbit?verify=").status_code == 404
    assert client.get("/webhooks/fitbit").status_code == 404


def test_repeated_and_out_of_order_fitbit_notifications_make_one_sync(
        app: Flask, session: Session, fitbit: Standin, hearten: str, connection_id: int) -> None:
    subscribe(fitbit, hearten)
    answers = [notify(fitbit, activities("2026-11-20")),
               notify(fitbit, {"collectionType": "sleep", "date": "2026-11-19",
                               "login_hint": "walker"}, activities("2026-11-20")),
               notify(fitbit, activities("2026-11-20")),
               notify(fitbit, activities("2026-11-18"))]
    assert answers == [204, 204, 204, 204]
    assert huey.pending_count() == 1  # five notifications in four deliveries: one sync queued
    assert factories.fresh(session).get(Connection, connection_id).sync_requested_at is not None
    with app.app_context():
        huey.execute(huey.dequeue())  # the worker runs it: the month comes in
    synced = factories.fresh(session).get(Connection, connection_id)
    assert synced.synced_through is not None and synced.sync_requested_at is None
    assert notify(fitbit, activities("2026-11-21")) == 204  # news after that sync: one more
    assert huey.pending_count() == 1


@pytest.mark.parametrize("signature", ["forged", "none"])
def test_wrongly_signed_or_unsigned_fitbit_notifications_get_404_and_queue_nothing(
        session: Session, fitbit: Standin, hearten: str, connection_id: int,
        signature: str) -> None:
    subscribe(fitbit, hearten)
    assert notify(fitbit, activities("2026-11-20"), signature=signature) == 404
    assert huey.pending_count() == 0
    assert factories.fresh(session).get(Connection, connection_id).sync_requested_at is None


def test_notifications_about_other_people_or_other_data_queue_nothing(
        fitbit: Standin, hearten: str, connection_id: int) -> None:
    subscribe(fitbit, hearten)
    assert notify(fitbit, {"collectionType": "activities", "ownerId": "NOBODY"},
                  {"collectionType": "foods", "login_hint": "walker"},
                  {"collectionType": "activities", "login_hint": "someone else"}) == 204
    assert huey.pending_count() == 0


def _signed(body: bytes) -> dict[str, str]:
    """Fitbit's signature, computed here from its documentation rather than by our code."""
    digest = hmac.new(f"{CLIENT_SECRET}&".encode(), body, hashlib.sha1).digest()
    return {"X-Fitbit-Signature": base64.b64encode(digest).decode()}


@pytest.mark.parametrize("body", [b"not json", b'{"ownerId": "X"}', b""])
def test_a_signed_delivery_that_is_not_a_list_of_notifications_is_a_bad_request(
        client: FlaskClient, connection_id: int, body: bytes) -> None:
    answer = client.post("/webhooks/fitbit", data=body, headers=_signed(body),
                         content_type="application/json")
    assert answer.status_code == (204 if body == b"" else 400)  # an empty body is an empty list
    assert huey.pending_count() == 0


def test_a_delivery_for_a_member_who_moved_to_google_queues_nothing(
        session: Session, client: FlaskClient, walker: User, connection_id: int) -> None:
    connection = session.get(Connection, connection_id)
    assert connection is not None
    connection.status = "move_to_google"
    session.commit()
    body = json.dumps([{"collectionType": "activities", "date": "2026-11-20",
                        "ownerId": generator.legacy_user_id(0, 0), "ownerType": "user",
                        "subscriptionId": "1"}]).encode()
    assert client.post("/webhooks/fitbit", data=body, headers=_signed(body),
                       content_type="application/json").status_code == 204
    assert huey.pending_count() == 0
