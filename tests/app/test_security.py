"""Security headers, cookies and caching on what the browser receives."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.accounts.models import User
from app.db import get_db
from tests.factories import sign_in
from tests.live import LiveServer


def test_every_page_has_a_strict_content_security_policy(client: FlaskClient) -> None:
    for path in ("/", "/login", "/join", "/offline", "/api/v1/csrf-token"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
        assert directives["script-src"] == "'self'"
        assert "unsafe-inline" not in csp
        assert directives["object-src"] == "'none'"
        assert directives["base-uri"] == "'none'"
        assert directives["frame-ancestors"] == "'none'"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def test_pages_use_no_inline_scripts_or_styles(client: FlaskClient, member: User) -> None:
    sign_in(client, "Sunny River")
    for path in ("/home", "/settings/sessions", "/offline"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>" not in html and "<style" not in html and " style=" not in html
        assert " on" + "click=" not in html


def test_the_session_cookie_is_httponly_and_samesite_lax(app: Flask, client: FlaskClient,
                                                         member: User) -> None:
    response = client.post("/login", data={"display_name": "Sunny River"})
    sign_in(client, "Sunny River")
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert response.status_code == 400  # that first try had no CSRF token


def test_signed_in_pages_are_never_stored_by_caches(client: FlaskClient, member: User) -> None:
    sign_in(client, "Sunny River")
    assert client.get("/home").headers["Cache-Control"] == "no-store"
    assert client.get("/api/v1/me").headers["Cache-Control"] == "no-store"


def test_fingerprinted_static_files_are_cached_for_a_year(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    start = html.index("/static/css/app.css?v=")
    url = html[start:html.index('"', start)]
    response = client.get(url)
    assert response.status_code == 200
    assert "immutable" in response.headers["Cache-Control"]


@pytest.mark.live
def test_the_access_log_never_holds_reset_tokens_or_invite_codes(live_server: LiveServer) -> None:
    requests.get(f"{live_server.url}/reset/secret-reset-token-123", timeout=5)
    requests.get(f"{live_server.url}/join/SECRETCD", timeout=5)
    requests.get(f"{live_server.url}/join?code=QUERYCODE", timeout=5)
    time.sleep(0.3)
    log = live_server.log()
    assert '"GET /reset/…"' in log and '"GET /join/…"' in log
    for secret in ("secret-reset-token-123", "SECRETCD", "QUERYCODE"):
        assert secret not in log


def test_a_database_outage_is_answered_with_503_and_a_clear_message(tmp_path: Path) -> None:
    app = create_app({"APP_ENV": "testing", "SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path),
                      "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none", "JOBS_IMMEDIATE": True})
    client = app.test_client()
    health = client.get("/readyz")
    assert health.status_code == 503 and health.get_json()["database"] == "unavailable"
    with client.session_transaction() as cookie:
        cookie["sid"] = "a signed-in device's token"  # every page now has to look it up
    assert client.get("/readyz").status_code == 503
    page = client.get("/api/v1/cohorts")
    assert page.status_code == 503
    assert page.get_json()["error"]["message"] == "Hearten is busy for a moment. Please try again soon."


def test_when_every_database_connection_is_busy_the_answer_is_a_clear_503(
        database_url: str, tmp_path: Path) -> None:
    app = create_app({"APP_ENV": "testing", "SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path),
                      "DATABASE_URL": database_url, "JOBS_IMMEDIATE": True,
                      "DB_POOL_SIZE": 1, "DB_MAX_OVERFLOW": 0, "DB_POOL_TIMEOUT": 1})
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["sid"] = "a signed-in device's token"  # the page has to look it up
    held = get_db(app).engine.connect()  # the only connection, kept busy
    try:
        page = client.get("/api/v1/cohorts")
    finally:
        held.close()
    assert page.status_code == 503
    assert page.get_json()["error"]["message"] == "Hearten is busy for a moment. Please try again soon."
    assert app.test_client().get("/readyz").status_code == 200  # and it recovers by itself
