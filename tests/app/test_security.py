"""Security headers, cookies and caching on what the browser receives."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from app.accounts.models import User
from tests.factories import sign_in


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
