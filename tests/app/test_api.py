"""The JSON API: its OpenAPI document, its error shape, and refusals of malformed requests."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlmodel import Session

from app.accounts.models import Cohort, User
from tests import factories
from tests.factories import api_headers, sign_in


def test_the_openapi_document_describes_every_api_route(app: Flask, client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and rule.endpoint != "openapi_json":
            path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
            served |= {(path, m) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    assert served == documented
    schemas = spec["components"]["schemas"]
    join = spec["paths"]["/api/v1/join"]["post"]
    assert join["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("JoinRequest")
    assert set(schemas["JoinRequest"]["required"]) == {"code", "display_name", "password"}
    assert "ErrorBody" in schemas
    for path in spec["paths"].values():
        for operation in path.values():
            for response in operation["responses"].values():
                for media, content in response.get("content", {}).items():
                    if media != "application/json":
                        assert content == {}  # a file (the member's download): no JSON schema
                        continue
                    ref = content["schema"].get("$ref") or content["schema"]["items"]["$ref"]
                    assert ref.rsplit("/", 1)[1] in schemas


def test_errors_have_one_shape_with_a_code_and_a_message(client: FlaskClient) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.get_json() == {"error": {"code": "unauthenticated",
                                             "message": "Please sign in first."}}
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_malformed_json_is_refused_and_nothing_is_created(
        client: FlaskClient, session: Session, coach: User) -> None:
    sign_in(client, "Coach Rosa")
    headers = {**api_headers(client), "Content-Type": "application/json"}
    bad = client.post("/api/v1/cohorts", data="{not json", headers=headers)
    assert bad.status_code == 400
    assert bad.get_json()["error"]["message"] == (
        "We could not read that request: the JSON is not valid.")
    not_object = client.post("/api/v1/cohorts", data="[1, 2]", headers=headers)
    assert not_object.status_code == 400
    wrong_type = client.post("/api/v1/cohorts", json={"name": 42}, headers=api_headers(client))
    assert wrong_type.status_code == 400 and wrong_type.get_json()["error"]["field"] == "name"
    form = client.post("/api/v1/cohorts", data={"name": "x"}, headers=api_headers(client))
    assert form.status_code == 415
    count = factories.fresh(session).scalar(select(func.count()).select_from(Cohort))
    assert count == 0


def test_an_oversized_body_is_refused_with_413(client: FlaskClient, session: Session,
                                               coach: User) -> None:
    sign_in(client, "Coach Rosa")
    huge = {"name": "x" * (1024 * 1024 + 10)}
    response = client.post("/api/v1/cohorts", json=huge, headers=api_headers(client))
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "too_large"
    assert factories.fresh(session).scalar(select(func.count()).select_from(Cohort)) == 0


def test_state_changes_without_the_csrf_header_are_refused(
        client: FlaskClient, session: Session, coach: User) -> None:
    sign_in(client, "Coach Rosa")
    response = client.post("/api/v1/cohorts", json={"name": "No Token"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "csrf"
    assert factories.fresh(session).scalar(select(func.count()).select_from(Cohort)) == 0


def test_api_errors_are_in_the_members_language(client: FlaskClient) -> None:
    response = client.get("/api/v1/me", headers={"Accept-Language": "es"})
    assert response.get_json()["error"]["message"] == "Por favor, inicia sesión primero."


def test_pages_answer_errors_as_html_and_scripts_as_json(client: FlaskClient) -> None:
    page = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "We could not find that page." in page.get_data(as_text=True)
    script = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert script.get_json()["error"]["code"] == "not_found"


def test_readyz_reports_the_database_and_job_queue(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["jobs"]["state"] == "ok"
