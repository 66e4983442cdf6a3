"""OWASP ASVS 5.0 level 2 checks that are made from the route table, so that a new route is
checked the day it is added: every state change needs a CSRF token, and no GET changes state;
and reset links are throttled like sign-in.

The other level 2 checks live beside the code they test:
- cookies (`__Host-` prefix, Secure, HttpOnly, SameSite) and HSTS in production:
  tests/app/test_config.py; CSP, nosniff, Referrer-Policy, no-store: tests/app/test_security.py
- a new session at sign-in, idle and absolute timeouts, listing and ending sessions, sign-in
  throttling: tests/app/test_sessions.py; two-factor for coaches and admins:
  tests/app/test_two_factor.py; secrets never served or logged: tests/app/test_secrets.py;
  who may reach each route: tests/app/test_authorization.py
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlmodel import Session, SQLModel

from app.accounts.models import Cohort, User
from tests.factories import csrf_token, fresh, sign_in

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
# Platforms call these with their own signatures instead of a browser's session and token.
SIGNED_BY_PLATFORM = {"wearables.google_webhook", "wearables.fitbit_webhook_verify",
                      "wearables.fitbit_webhook"}
# Reading these is itself what must be written down (ASVS 7.2: who looked at whose data).
AUDITED_READS = {"audit_entry"}
# A session's last use moves on every request (the idle timeout needs it); that is bookkeeping,
# not a change the member made.
BOOKKEEPING = {"user_session"}


def _path(rule: str) -> str:
    """A concrete path for a rule: every <int:x> becomes 1, every other variable "x"."""
    return re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "1" if m.group(1) == "int" else "x", rule)


def _counts(session: Session) -> dict[str, int]:
    fresh(session)
    return {table.name: session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in SQLModel.metadata.sorted_tables}


def _unsafe_routes(app: Flask) -> list[tuple[str, str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SIGNED_BY_PLATFORM or rule.endpoint == "static":
            continue
        for method in sorted(set(rule.methods or ()) & set(UNSAFE)):
            routes.append((rule.endpoint, method, _path(rule.rule)))
    return routes


def _get_routes(app: Flask) -> list[tuple[str, str]]:
    return [(rule.endpoint, _path(rule.rule)) for rule in app.url_map.iter_rules()
            if "GET" in (rule.methods or ()) and rule.endpoint != "static"]


def test_every_state_change_without_a_csrf_token_is_refused_and_changes_nothing(
        app: Flask, client: FlaskClient, session: Session, member: User, cohort: Cohort) -> None:
    sign_in(client, "Sunny River")
    routes = _unsafe_routes(app)
    assert len(routes) > 60, "the route table was read"
    before = _counts(session)
    let_through = []
    for endpoint, method, path in routes:
        response = client.open(path, method=method, json={}, headers={"Accept": "application/json"})
        if response.status_code != 400 or "csrf" not in response.get_data(as_text=True):
            let_through.append(f"{method} {path} ({endpoint}): {response.status_code}")
    after = _counts(session)
    assert not let_through, "state changes accepted without a CSRF token:\n" + "\n".join(
        let_through)
    changed = {t for t in before if before[t] != after[t]} - BOOKKEEPING
    assert not changed, f"rows changed without a token: {changed}"


@pytest.mark.parametrize("who", ["anonymous", "member"])
def test_no_get_request_changes_anything(app: Flask, client: FlaskClient, session: Session,
                                         member: User, cohort: Cohort, who: str) -> None:
    if who == "member":
        sign_in(client, "Sunny River")
    before = _counts(session)
    answers = {}
    for endpoint, path in _get_routes(app):
        answers[endpoint] = client.get(path).status_code
    after = _counts(session)
    assert 500 not in answers.values(), {e: s for e, s in answers.items() if s == 500}
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    for table in BOOKKEEPING | AUDITED_READS:
        changed.pop(table, None)
    assert not changed, f"GET requests changed rows: {changed}"


def test_reset_links_are_throttled_per_address(client: FlaskClient, member: User) -> None:
    token = csrf_token(client)
    answers = [client.post("/reset/not-a-real-link", data={
        "password": "a long quiet walk", "password_again": "a long quiet walk",
        "csrf_token": token}).status_code for _ in range(26)]
    assert 429 not in answers[:25] and answers[25] == 429
