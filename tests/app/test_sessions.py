"""Signing in and out, server-side sessions, timeouts, and login throttling."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlmodel import Session
from werkzeug.test import TestResponse

from app.accounts.models import User, UserSession
from app.db import utcnow
from tests import factories
from tests.factories import PASSWORD, csrf_token, sign_in


def _login(client: FlaskClient, name: str, password: str) -> object:
    return client.post("/login", data={"display_name": name, "password": password,
                                       "csrf_token": csrf_token(client)})


def _session_rows(session: Session, user: User) -> list[UserSession]:
    return list(factories.fresh(session).scalars(
        select(UserSession).where(UserSession.user_id == user.id)))


def test_a_wrong_password_gets_a_clear_message_and_no_session(
        client: FlaskClient, session: Session, member: User) -> None:
    response = _login(client, "Sunny River", "not my password")
    assert response.status_code == 401
    assert "That name and password do not match" in response.get_data(as_text=True)
    assert _session_rows(session, member) == []
    assert client.get("/home").status_code == 302


def test_an_unknown_name_gets_the_same_message_as_a_wrong_password(client: FlaskClient) -> None:
    response = _login(client, "Nobody Here", PASSWORD)
    assert response.status_code == 401
    assert "That name and password do not match" in response.get_data(as_text=True)


def test_signing_in_starts_a_new_session_id_and_the_old_cookie_stops_working(
        app: Flask, client: FlaskClient, session: Session, member: User) -> None:
    sign_in(client, "Sunny River")
    first_cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert first_cookie is not None
    (first_id,) = [row.id for row in _session_rows(session, member)]
    sign_in(client, "sunny river")  # names are matched without regard to case
    second_cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert second_cookie is not None and second_cookie.value != first_cookie.value
    second_rows = _session_rows(session, member)
    assert len(second_rows) == 1 and second_rows[0].id != first_id
    stale = app.test_client()
    stale.set_cookie(app.config["SESSION_COOKIE_NAME"], first_cookie.value)
    assert stale.get("/api/v1/me").status_code == 401
    # Logging out ends this device's session for good, even if its old cookie is replayed.
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert _session_rows(session, member) == []
    replay = app.test_client()
    replay.set_cookie(app.config["SESSION_COOKIE_NAME"], second_cookie.value)
    assert replay.get("/api/v1/me").status_code == 401


def test_a_member_lists_their_devices_and_signs_one_out(
        app: Flask, session: Session, member: User) -> None:
    phone, laptop = app.test_client(), app.test_client()
    phone.environ_base["HTTP_USER_AGENT"] = "Phone browser"
    laptop.environ_base["HTTP_USER_AGENT"] = "Library computer"
    sign_in(phone, "Sunny River")
    sign_in(laptop, "Sunny River")
    devices = phone.get("/api/v1/sessions").get_json()
    assert {d["device"] for d in devices} == {"Phone browser", "Library computer"}
    assert [d["current"] for d in devices if d["device"] == "Phone browser"] == [True]
    page = phone.get("/settings/sessions").get_data(as_text=True)
    assert "Library computer" in page and "this device" in page
    laptop_id = next(d["id"] for d in devices if d["device"] == "Library computer")
    response = phone.delete(f"/api/v1/sessions/{laptop_id}",
                            headers={"X-CSRFToken": csrf_token(phone)})
    assert response.status_code == 204
    assert laptop.get("/api/v1/me").status_code == 401
    assert phone.get("/api/v1/me").status_code == 200


def test_a_member_cannot_end_someone_elses_session(
        app: Flask, session: Session, member: User, peer: User) -> None:
    mine, theirs = app.test_client(), app.test_client()
    sign_in(mine, "Sunny River")
    sign_in(theirs, "Quiet Oak")
    their_id = theirs.get("/api/v1/sessions").get_json()[0]["id"]
    response = mine.delete(f"/api/v1/sessions/{their_id}", headers={"X-CSRFToken": csrf_token(mine)})
    assert response.status_code == 404
    assert theirs.get("/api/v1/me").status_code == 200


def test_sign_out_every_other_device(app: Flask, session: Session, member: User) -> None:
    devices = [app.test_client() for _ in range(3)]
    for device in devices:
        sign_in(device, "Sunny River")
    devices[0].post("/settings/sessions/end-others", data={"csrf_token": csrf_token(devices[0])})
    assert devices[0].get("/api/v1/me").status_code == 200
    assert [d.get("/api/v1/me").status_code for d in devices[1:]] == [401, 401]


def test_an_idle_session_times_out(app: Flask, client: FlaskClient, session: Session,
                                   member: User) -> None:
    other = app.test_client()
    sign_in(other, "Sunny River")
    sign_in(client, "Sunny River")
    session.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(days=8)))
    session.commit()
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/home").status_code == 302
    sign_in(client, "Sunny River")
    # The timed-out device is no longer listed as signed in.
    assert len(client.get("/api/v1/sessions").get_json()) == 1


def test_a_session_in_use_still_ends_at_the_absolute_timeout(
        client: FlaskClient, session: Session, member: User) -> None:
    sign_in(client, "Sunny River")
    session.execute(update(UserSession).values(created_at=utcnow() - timedelta(days=31)))
    session.commit()
    assert client.get("/api/v1/me").status_code == 401


def test_staff_sessions_time_out_sooner(client: FlaskClient, session: Session, coach: User) -> None:
    sign_in(client, "Coach Rosa")
    session.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(minutes=61)))
    session.commit()
    assert client.get("/api/v1/me").status_code == 401


def test_use_keeps_a_session_alive(client: FlaskClient, session: Session, member: User) -> None:
    sign_in(client, "Sunny River")
    session.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(days=6)))
    session.commit()
    assert client.get("/api/v1/me").status_code == 200
    (row,) = _session_rows(session, member)
    assert utcnow() - row.last_seen_at < timedelta(minutes=1)


def test_login_attempts_are_limited_per_address(client: FlaskClient, member: User) -> None:
    statuses = [_login(client, f"Guess {i}", "wrong password").status_code  # type: ignore[attr-defined]
                for i in range(25)]
    assert set(statuses) == {401}
    blocked = _login(client, "Sunny River", PASSWORD)
    assert blocked.status_code == 429  # type: ignore[attr-defined]
    assert "wait a few minutes" in blocked.get_data(as_text=True)  # type: ignore[attr-defined]


def test_login_attempts_are_limited_per_account_across_addresses(
        app: Flask, member: User) -> None:
    for i in range(25):
        guesser = app.test_client()
        guesser.environ_base["REMOTE_ADDR"] = f"10.0.{i}.1"
        assert _login(guesser, "Sunny River", "wrong password").status_code == 401  # type: ignore[attr-defined]
    fresh_address = app.test_client()
    fresh_address.environ_base["REMOTE_ADDR"] = "10.9.9.9"
    assert _login(fresh_address, "SUNNY RIVER", PASSWORD).status_code == 429  # type: ignore[attr-defined]
    # Another account from the same fresh address is not affected.
    assert _login(fresh_address, "Quiet Oak", "wrong password").status_code == 401  # type: ignore[attr-defined]


def test_the_api_login_is_throttled_too(client: FlaskClient, member: User) -> None:
    headers = {"X-CSRFToken": csrf_token(client)}
    for _ in range(25):
        client.post("/api/v1/login", json={"display_name": "Sunny River", "password": "nope"},
                    headers=headers)
    response = client.post("/api/v1/login", json={"display_name": "Sunny River",
                                                   "password": PASSWORD}, headers=headers)
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "rate_limited"


def test_hidden_characters_in_a_sign_in_name_get_the_usual_answer(
        client: FlaskClient, member: User) -> None:
    response = _login(client, "Sunny\x00River", PASSWORD)
    assert response.status_code == 401  # type: ignore[attr-defined]
    api = client.post("/api/v1/login", json={"display_name": "Sunny\x00River", "password": "x"},
                      headers={"X-CSRFToken": csrf_token(client)})
    assert api.status_code == 401


def test_form_and_api_sign_ins_share_one_allowance(client: FlaskClient, member: User) -> None:
    headers = {"X-CSRFToken": csrf_token(client)}
    for i in range(25):
        if i % 2:
            assert _login(client, "Sunny River", "wrong").status_code == 401  # type: ignore[attr-defined]
        else:
            response = client.post("/api/v1/login", json={"display_name": "Sunny River",
                                                          "password": "wrong"}, headers=headers)
            assert response.status_code == 401
    assert _login(client, "Sunny River", PASSWORD).status_code == 429  # type: ignore[attr-defined]
    api = client.post("/api/v1/login", json={"display_name": "Sunny River", "password": PASSWORD},
                      headers=headers)
    assert api.status_code == 429


def test_successful_sign_ins_do_not_use_up_the_allowance(app: Flask, member: User) -> None:
    client = app.test_client()
    for _ in range(30):
        sign_in(client, "Sunny River")
    assert _login(client, "Sunny River", "wrong").status_code == 401  # type: ignore[attr-defined]


def test_signing_in_again_on_a_device_replaces_its_old_session(
        client: FlaskClient, session: Session, member: User) -> None:
    sign_in(client, "Sunny River")
    sign_in(client, "Sunny River")
    assert len(_session_rows(session, member)) == 1


def _change(client: FlaskClient, current: str, new: str) -> TestResponse:
    return client.post("/settings/password", data={"current_password": current, "password": new,
                                                   "csrf_token": csrf_token(client)})


def test_changing_my_password_keeps_this_device_and_signs_the_others_out(
        app: Flask, session: Session, member: User) -> None:
    here, elsewhere = app.test_client(), app.test_client()
    sign_in(here, "Sunny River")
    sign_in(elsewhere, "Sunny River")
    assert here.get("/settings/password").status_code == 200
    response = _change(here, PASSWORD, "a new song every morning")
    assert response.status_code == 302
    assert here.get("/api/v1/me").status_code == 200
    assert elsewhere.get("/api/v1/me").status_code == 401
    assert len(_session_rows(session, member)) == 1
    fresh_device = app.test_client()
    old = fresh_device.post("/login", data={"display_name": "Sunny River", "password": PASSWORD,
                                            "csrf_token": csrf_token(fresh_device)})
    assert old.status_code == 401
    sign_in(fresh_device, "Sunny River", "a new song every morning")


def test_a_wrong_current_password_or_a_weak_new_one_changes_nothing(
        app: Flask, client: FlaskClient, session: Session, member: User) -> None:
    sign_in(client, "Sunny River")
    other = app.test_client()
    sign_in(other, "Sunny River")
    wrong = _change(client, "not my password", "a new song every morning")
    assert wrong.status_code == 403
    assert "not your current password" in wrong.get_data(as_text=True)
    weak = _change(client, PASSWORD, "short")
    assert weak.status_code == 400
    assert "at least 8 characters" in weak.get_data(as_text=True)
    assert len(_session_rows(session, member)) == 2
    sign_in(app.test_client(), "Sunny River", PASSWORD)


def test_wrong_current_passwords_use_up_the_accounts_sign_in_allowance(
        client: FlaskClient, member: User) -> None:
    sign_in(client, "Sunny River")
    answers = [_change(client, f"guess {n}", "a new song every morning").status_code
               for n in range(26)]
    assert 429 in answers and 200 not in answers
