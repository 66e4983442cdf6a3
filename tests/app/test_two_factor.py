"""Two-step sign-in for coaches and admins: an authenticator app (TOTP) and recovery codes."""

from __future__ import annotations

import hashlib
import re
import time

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from app.accounts.models import Cohort, RecoveryCode, TwoFactor, User, UserSession
from app.audit import AuditEntry
from app.crypto import app_cipher
from app.extensions import socketio as server_socketio
from tests import factories
from tests.factories import (
    AUTHENTICATOR,
    PASSWORD,
    api_headers,
    csrf_token,
    fresh,
    secret_on_page,
    sign_in,
    sign_in_password_only,
)

SETUP = "/settings/two-factor/setup"
VERIFY = "/login/two-factor"


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"LOGIN_LIMIT_PER_ACCOUNT": "8 per hour"}  # small, so that throttling shows quickly


def _wrong_code(secret: str) -> str:
    """A 6-digit code the server cannot accept now (none of the steps near now)."""
    totp = pyotp.TOTP(secret)
    near = {totp.at(int(time.time()) + 30 * offset) for offset in range(-2, 4)}
    return next(code for code in ("000000", "123456", "999999", "424242") if code not in near)


def _error(response: object) -> str:
    html = response.get_data(as_text=True)  # type: ignore[attr-defined]
    found = re.search(r'role="alert"[^>]*>([^<]*)<', html)
    assert found, html
    return found.group(1)


def _sessions(session: Session, user: User) -> list[UserSession]:
    return list(fresh(session).scalars(select(UserSession).where(
        col(UserSession.user_id) == user.id)))


def _two_factor(session: Session, user: User) -> TwoFactor | None:
    return fresh(session).get(TwoFactor, user.id)


def _actions(session: Session) -> list[str]:
    return [e.action for e in fresh(session).scalars(
        select(AuditEntry).where(col(AuditEntry.action).startswith("two_factor."))
        .order_by(col(AuditEntry.id)))]


def _fill(rule: str, ids: dict[str, int]) -> str:
    """A URL for `rule` with every parameter filled in (known ids, else 1 or "x")."""
    def value(match: re.Match[str]) -> str:
        converter, name = match.group(1), match.group(2)
        if converter in ("int", "path") or name.endswith("_id"):
            return str(ids.get(name, 1))
        return "x"
    return re.sub(r"<(?:(\w+):)?(\w+)>", value, rule)


def test_a_coach_without_the_second_factor_is_sent_to_set_it_up_and_sees_no_member_data(
        app: Flask, client: FlaskClient, session: Session, coach: User, cohort: Cohort,
        member: User) -> None:
    factories.make_member(session, cohort=cohort, name="Quiet Oak")
    assert sign_in_password_only(client, "Coach Rosa") == SETUP
    response = client.get("/coach")
    assert response.status_code == 302 and response.headers["Location"] == f"{SETUP}?next=/coach"

    # Every page, API route and feed of the app: no member's name, and no 200 for staff views.
    ids = {"cohort_id": cohort.id or 0, "member_id": member.id or 0, "user_id": member.id or 0}
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint == "static":
            continue
        url = _fill(rule.rule, ids)
        answer = client.get(url, headers={"Accept": "text/html"})
        body = answer.get_data(as_text=True)
        assert "Sunny River" not in body and "Quiet Oak" not in body, url
        if url.startswith(("/coach", "/cohorts", "/moderation", "/api/v1/cohorts",
                           "/api/v1/coach", "/api/v1/me", "/feed", "/inbox")):
            assert answer.status_code in (302, 401), url

    api = client.get(f"/api/v1/cohorts/{cohort.id}/members")
    assert api.status_code == 401
    assert api.get_json()["error"] == {
        "code": "two_factor_required",
        "message": "One more step: please enter the code from your authenticator app to finish "
                   "signing in."}
    assert client.get("/api/v1/me").get_json()["error"]["code"] == "two_factor_required"
    socket = server_socketio.test_client(app, flask_test_client=client)
    assert not socket.is_connected()

    page = client.get(f"{SETUP}?next=/coach").get_data(as_text=True)
    assert "<svg" in page and 'autocomplete="one-time-code"' in page
    assert 'inputmode="numeric"' in page
    secret = secret_on_page(page)
    AUTHENTICATOR.enrol("Coach Rosa", secret)
    done = client.post(f"{SETUP}?next=/coach", data={"code": AUTHENTICATOR.code("Coach Rosa"),
                                                     "csrf_token": csrf_token(client)})
    assert done.status_code == 200
    codes = factories.recovery_codes_on_page(done.get_data(as_text=True))
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{2}", code) for code in codes)
    assert "keep them somewhere safe" in done.get_data(as_text=True)
    assert 'href="/coach"' in done.get_data(as_text=True)
    assert "Sunny River" in client.get("/coach").get_data(as_text=True)
    assert client.get(f"/api/v1/cohorts/{cohort.id}/members").status_code == 200
    assert server_socketio.test_client(app, flask_test_client=client).is_connected()
    # Only hashes are kept, and the codes are not shown again.
    stored = {row.code_hash for row in fresh(session).scalars(select(RecoveryCode))}
    assert stored == {hashlib.sha256(code.replace("-", "").encode()).hexdigest() for code in codes}
    assert codes[0] not in client.get("/settings/two-factor").get_data(as_text=True)
    assert _actions(session) == ["two_factor.set_up"]


def test_the_secret_is_encrypted_at_rest(app: Flask, client: FlaskClient, session: Session,
                                         coach: User) -> None:
    sign_in(client, "Coach Rosa")
    secret = AUTHENTICATOR.secret("Coach Rosa")
    row = _two_factor(session, coach)
    assert row is not None and row.confirmed_at is not None
    assert secret not in row.secret_enc and secret.lower() not in row.secret_enc.lower()
    assert app_cipher(app).decrypt(row.secret_enc) == secret
    details = " ".join(e.detail for e in fresh(session).scalars(select(AuditEntry)))
    assert secret not in details


def test_a_wrong_code_is_refused_with_a_clear_message_and_nothing_changes(
        app: Flask, client: FlaskClient, session: Session, coach: User, cohort: Cohort,
        member: User) -> None:
    # At set-up: the authenticator is not confirmed and no recovery codes appear.
    sign_in_password_only(client, "Coach Rosa")
    secret = secret_on_page(client.get(SETUP).get_data(as_text=True))
    refused = client.post(SETUP, data={"code": _wrong_code(secret),
                                       "csrf_token": csrf_token(client)})
    assert refused.status_code == 400
    assert _error(refused).startswith("That code did not work. Codes change every 30 seconds")
    row = _two_factor(session, coach)
    assert row is not None and row.confirmed_at is None and row.last_step == 0
    assert fresh(session).scalars(select(RecoveryCode)).all() == []
    assert secret_on_page(refused.get_data(as_text=True)) == secret  # the same key, to retry
    AUTHENTICATOR.enrol("Coach Rosa", secret)
    client.post(SETUP, data={"code": AUTHENTICATOR.code("Coach Rosa"),
                             "csrf_token": csrf_token(client)})

    # At sign-in: still waiting for a code, the session unmarked, the last step unchanged.
    laptop = app.test_client()
    assert sign_in_password_only(laptop, "Coach Rosa") == VERIFY
    last_step = (_two_factor(session, coach) or TwoFactor(secret_enc="")).last_step
    for code in (_wrong_code(secret), "12345", "abcdef", ""):
        refused = laptop.post(VERIFY, data={"code": code, "csrf_token": csrf_token(laptop)})
        assert refused.status_code == 400
        assert "That code did not work" in _error(refused)
        assert 'aria-invalid="true"' in refused.get_data(as_text=True)
    assert (_two_factor(session, coach) or TwoFactor(secret_enc="")).last_step == last_step
    assert sorted(s.two_factor_at is None for s in _sessions(session, coach)) == [False, True]
    assert laptop.get("/coach").headers["Location"] == f"{VERIFY}?next=/coach"
    api = laptop.post("/api/v1/login/two-factor", json={"code": _wrong_code(secret)},
                      headers=api_headers(laptop))
    assert api.status_code == 400 and api.get_json()["error"]["code"] == "code_not_accepted"
    assert api.get_json()["error"]["field"] == "code"
    assert _actions(session) == ["two_factor.set_up"]


def test_code_attempts_are_throttled(app: Flask, client: FlaskClient, coach: User) -> None:
    sign_in(client, "Coach Rosa")
    laptop = app.test_client()
    sign_in_password_only(laptop, "Coach Rosa")
    wrong = _wrong_code(AUTHENTICATOR.secret("Coach Rosa"))
    statuses = [laptop.post(VERIFY, data={"code": wrong, "csrf_token": csrf_token(laptop)}
                            ).status_code for _ in range(9)]
    assert statuses == [400] * 8 + [429]
    blocked = laptop.post(VERIFY, data={"code": AUTHENTICATOR.code("Coach Rosa"),
                                        "csrf_token": csrf_token(laptop)})
    assert blocked.status_code == 429
    assert "Please wait a few minutes" in blocked.get_data(as_text=True)


def test_a_code_works_once(app: Flask, client: FlaskClient, session: Session,
                           coach: User) -> None:
    sign_in(client, "Coach Rosa")  # sets up the authenticator
    laptop, intruder = app.test_client(), app.test_client()
    assert sign_in_password_only(laptop, "Coach Rosa") == VERIFY
    code = AUTHENTICATOR.code("Coach Rosa")
    passed = laptop.post(f"{VERIFY}?next=/coach", data={"code": code,
                                                        "csrf_token": csrf_token(laptop)})
    assert passed.status_code == 302 and passed.headers["Location"] == "/coach"
    assert laptop.get("/coach").status_code == 200

    assert sign_in_password_only(intruder, "Coach Rosa") == VERIFY
    replay = intruder.post(VERIFY, data={"code": code, "csrf_token": csrf_token(intruder)})
    assert replay.status_code == 400
    assert _error(replay) == ("That code has just been used. Please wait for the next one in "
                              "your authenticator app, then try again.")
    assert intruder.get("/coach").status_code == 302
    api = intruder.post("/api/v1/login/two-factor", json={"code": code},
                        headers=api_headers(intruder))
    assert api.status_code == 400 and api.get_json()["error"]["code"] == "code_already_used"


def test_a_recovery_code_works_once(app: Flask, client: FlaskClient, session: Session,
                                    coach: User) -> None:
    sign_in(client, "Coach Rosa")
    code = AUTHENTICATOR.recovery_codes("Coach Rosa")[0]
    phone, other = app.test_client(), app.test_client()
    sign_in_password_only(phone, "Coach Rosa")
    page = phone.get(VERIFY).get_data(as_text=True)
    assert 'href="/login/two-factor/recovery"' in page
    used = phone.post(f"{VERIFY}/recovery", data={"code": code.upper().replace("-", " "),
                                                  "csrf_token": csrf_token(phone)})
    assert used.status_code == 302
    assert "You have 9 recovery codes left." in phone.get("/coach").get_data(as_text=True)

    sign_in_password_only(other, "Coach Rosa")
    again = other.post(f"{VERIFY}/recovery", data={"code": code, "csrf_token": csrf_token(other)})
    assert again.status_code == 400
    assert _error(again).startswith("That recovery code did not work. Each one works once.")
    assert other.get("/coach").status_code == 302
    used_rows = [r for r in fresh(session).scalars(select(RecoveryCode)) if r.used_at]
    assert len(used_rows) == 1
    assert _actions(session) == ["two_factor.set_up", "two_factor.recovery_code_used"]


def test_new_recovery_codes_need_a_current_code_and_the_old_ones_stop_working(
        app: Flask, client: FlaskClient, session: Session, coach: User) -> None:
    sign_in(client, "Coach Rosa")
    old = AUTHENTICATOR.recovery_codes("Coach Rosa")
    settings = client.get("/settings/two-factor").get_data(as_text=True)
    assert "You have 10 unused recovery codes." in settings
    refused = client.post("/settings/two-factor/recovery-codes", data={
        "code": _wrong_code(AUTHENTICATOR.secret("Coach Rosa")), "csrf_token": csrf_token(client)})
    assert refused.status_code == 400 and "That code did not work" in _error(refused)
    assert len(fresh(session).scalars(select(RecoveryCode)).all()) == 10

    renewed = client.post("/settings/two-factor/recovery-codes", data={
        "code": AUTHENTICATOR.code("Coach Rosa"), "csrf_token": csrf_token(client)})
    assert renewed.status_code == 200
    new = factories.recovery_codes_on_page(renewed.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)

    device = app.test_client()
    sign_in_password_only(device, "Coach Rosa")
    stale = device.post(f"{VERIFY}/recovery", data={"code": old[0],
                                                    "csrf_token": csrf_token(device)})
    assert stale.status_code == 400
    fresh_code = device.post(f"{VERIFY}/recovery", data={"code": new[0],
                                                         "csrf_token": csrf_token(device)})
    assert fresh_code.status_code == 302
    assert client.get("/api/v1/two-factor").get_json() == {"enrolled": True,
                                                            "recovery_codes_left": 9}
    assert _actions(session) == ["two_factor.set_up", "two_factor.recovery_codes_renewed",
                                 "two_factor.recovery_code_used"]


def test_the_api_makes_new_recovery_codes_after_a_current_code(
        client: FlaskClient, session: Session, coach: User) -> None:
    sign_in(client, "Coach Rosa")
    old = AUTHENTICATOR.recovery_codes("Coach Rosa")
    refused = client.post("/api/v1/two-factor/recovery-codes", json={"code": "12"},
                          headers=api_headers(client))
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "code"
    api = client.post("/api/v1/two-factor/recovery-codes",
                      json={"code": AUTHENTICATOR.code("Coach Rosa")}, headers=api_headers(client))
    assert api.status_code == 201
    assert len(api.get_json()["codes"]) == 10 and not set(api.get_json()["codes"]) & set(old)
    assert client.get("/api/v1/two-factor").get_json() == {"enrolled": True,
                                                            "recovery_codes_left": 10}


def test_members_are_never_asked_for_a_second_factor(
        client: FlaskClient, session: Session, cohort: Cohort, member: User) -> None:
    assert sign_in_password_only(client, "Sunny River") == "/home"
    assert client.get("/home").status_code == 200
    assert client.get(SETUP).status_code == 403
    assert client.get("/settings/two-factor").status_code == 403
    assert client.post("/api/v1/two-factor/setup", headers=api_headers(client)).status_code == 403
    app_client = client.application.test_client()
    login = app_client.post("/api/v1/login", json={"display_name": "Sunny River",
                                                   "password": PASSWORD},
                            headers=api_headers(app_client))
    assert login.status_code == 200 and login.get_json()["next_step"] is None
    assert app_client.get("/api/v1/me").status_code == 200
    assert fresh(session).scalars(select(TwoFactor)).all() == []


def test_a_coach_can_sign_out_while_the_second_factor_is_pending(
        app: Flask, client: FlaskClient, session: Session, coach: User) -> None:
    sign_in_password_only(client, "Coach Rosa")
    assert len(_sessions(session, coach)) == 1
    page = client.get(SETUP).get_data(as_text=True)
    assert "Not now? Sign out" in page
    response = client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert _sessions(session, coach) == []
    assert client.get(SETUP).headers["Location"].startswith("/login")

    api = app.test_client()
    api.post("/api/v1/login", json={"display_name": "Coach Rosa", "password": PASSWORD},
             headers=api_headers(api))
    assert api.post("/api/v1/logout", headers=api_headers(api)).status_code == 204
    assert _sessions(session, coach) == []
    assert api.post("/api/v1/logout", headers=api_headers(api)).status_code == 401


def test_the_api_signs_a_coach_in_with_a_code_from_the_app(
        app: Flask, client: FlaskClient, session: Session, coach: User, cohort: Cohort,
        member: User) -> None:
    login = client.post("/api/v1/login", json={"display_name": "Coach Rosa",
                                               "password": PASSWORD}, headers=api_headers(client))
    assert login.status_code == 200 and login.get_json()["next_step"] == "two_factor_setup"
    assert client.get(f"/api/v1/cohorts/{cohort.id}/members").status_code == 401
    early = client.post("/api/v1/login/two-factor", json={"code": "123456"},
                        headers=api_headers(client))
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "two_factor_not_set_up"
    setup = client.post("/api/v1/two-factor/setup", headers=api_headers(client)).get_json()
    assert setup["uri"].startswith("otpauth://totp/Hearten:Coach%20Rosa?")
    assert f"secret={setup['secret']}" in setup["uri"] and "issuer=Hearten" in setup["uri"]
    AUTHENTICATOR.enrol("Coach Rosa", setup["secret"])
    confirmed = client.post("/api/v1/two-factor/setup/confirm",
                            json={"code": AUTHENTICATOR.code("Coach Rosa")},
                            headers=api_headers(client))
    assert confirmed.status_code == 201 and len(confirmed.get_json()["codes"]) == 10
    members = client.get(f"/api/v1/cohorts/{cohort.id}/members").get_json()
    assert [m["display_name"] for m in members] == ["Sunny River"]
    again = client.post("/api/v1/two-factor/setup", headers=api_headers(client))
    assert again.status_code == 409  # a second authenticator cannot replace the first this way

    laptop = app.test_client()
    second = laptop.post("/api/v1/login", json={"display_name": "Coach Rosa",
                                                "password": PASSWORD}, headers=api_headers(laptop))
    assert second.get_json()["next_step"] == "two_factor"
    stolen = laptop.post("/api/v1/two-factor/setup", headers=api_headers(laptop))
    assert stolen.status_code == 409  # nor can a password alone
    passed = laptop.post("/api/v1/login/two-factor", json={"code": AUTHENTICATOR.code("Coach Rosa")},
                         headers=api_headers(laptop))
    assert passed.status_code == 200 and passed.get_json()["display_name"] == "Coach Rosa"
    assert laptop.get("/api/v1/me").status_code == 200


def test_the_code_command_prints_a_working_code_but_never_in_production(
        app: Flask, client: FlaskClient, session: Session, coach: User) -> None:
    sign_in(client, "Coach Rosa")
    runner = app.test_cli_runner()
    printed = runner.invoke(args=["accounts", "two-factor-code", "coach rosa"])
    assert printed.exit_code == 0, printed.output
    code = re.match(r"(\d{6})  \(works for about \d+ more seconds\)", printed.output)
    assert code, printed.output
    laptop = app.test_client()
    sign_in_password_only(laptop, "Coach Rosa")
    passed = laptop.post(VERIFY, data={"code": code.group(1), "csrf_token": csrf_token(laptop)})
    assert passed.status_code == 302

    nobody = runner.invoke(args=["accounts", "two-factor-code", "Sunny River"])
    assert nobody.exit_code == 1 and "No account is called" in nobody.output
    app.config["APP_ENV"] = "production"
    refused = runner.invoke(args=["accounts", "two-factor-code", "Coach Rosa"])
    assert refused.exit_code == 1
    assert "Codes are never printed in production" in refused.output
    assert not re.search(r"\b\d{6}\b", refused.output)


def test_an_admin_reset_signs_the_coach_out_and_they_set_up_a_new_authenticator(
        app: Flask, client: FlaskClient, session: Session, coach: User, member: User) -> None:
    sign_in(client, "Coach Rosa")
    old_secret = AUTHENTICATOR.secret("Coach Rosa")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["accounts", "reset-two-factor", "Coach Rosa"])
    assert result.exit_code == 0, result.output
    assert "every device of theirs is signed out" in result.output
    assert _sessions(session, coach) == [] and _two_factor(session, coach) is None
    assert fresh(session).scalars(select(RecoveryCode)).all() == []
    assert client.get("/coach").headers["Location"].startswith("/login")
    assert sign_in_password_only(client, "Coach Rosa") == SETUP
    assert secret_on_page(client.get(SETUP).get_data(as_text=True)) != old_secret
    refused = runner.invoke(args=["accounts", "reset-two-factor", "Sunny River"])
    assert refused.exit_code == 1 and "members sign in without a second step" in refused.output
    assert _actions(session) == ["two_factor.set_up", "two_factor.reset"]


def test_the_demo_coach_and_admin_have_an_authenticator_whose_key_is_printed(
        app: Flask, session: Session) -> None:
    result = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    keys = dict(re.findall(r"^  (Admin Ana|Coach Rosa) +([A-Z2-7]{32})$", result.output, re.M))
    assert set(keys) == {"Admin Ana", "Coach Rosa"}
    for name, password in (("Admin Ana", "hearten-demo-admin"),
                           ("Coach Rosa", "hearten-demo-coach")):
        AUTHENTICATOR.enrol(name, keys[name])
        browser = app.test_client()
        assert sign_in_password_only(browser, name, password) == VERIFY
        passed = browser.post(VERIFY, data={"code": AUTHENTICATOR.code(name),
                                            "csrf_token": csrf_token(browser)})
        assert passed.status_code == 302 and passed.headers["Location"] == "/coach"
    again = app.test_cli_runner().invoke(args=["demo", "seed"])
    assert f"Coach Rosa  {keys['Coach Rosa']}" in again.output  # the same key each run
