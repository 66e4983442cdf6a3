"""Joining a cohort with an invite: the happy path and every refusal, with nothing half-written."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlmodel import Session

from app.accounts.models import CohortMembership, Invite, User
from app.db import utcnow
from tests import factories
from tests.factories import csrf_token


def _join(client: FlaskClient, code: str, **fields: str) -> object:
    data = {"display_name": "Brave Fern", "password": "tea in the garden", "timezone":
            "Europe/Madrid", "language": "en", "csrf_token": csrf_token(client)}
    data.update(fields)
    return client.post(f"/join/{code}", data=data)


def _user_count(session: Session) -> int:
    return int(factories.fresh(session).scalar(select(func.count()).select_from(User)) or 0)


def _uses(session: Session, invite: Invite) -> int:
    return int(factories.fresh(session).scalar(select(Invite.uses).where(Invite.id == invite.id)) or 0)


def test_a_member_joins_with_an_invite_and_lands_on_their_home(
        client: FlaskClient, session: Session, invite: Invite) -> None:
    page = client.get(f"/join/{invite.code}")
    assert "Join Morning Walkers" in page.get_data(as_text=True)
    response = _join(client, invite.code)
    assert response.status_code == 302
    assert response.headers["Location"] == "/home"
    home = client.get("/home").get_data(as_text=True)
    assert "Hello, Brave Fern" in home
    assert "Morning Walkers" in home
    user = session.scalar(select(User).where(User.name_key == "brave fern"))
    assert user is not None and user.timezone == "Europe/Madrid" and user.role == "member"
    assert user.password_hash.startswith("$argon2id$")
    assert _uses(session, invite) == 1
    membership = session.scalar(select(CohortMembership).where(CohortMembership.user_id == user.id))
    assert membership is not None and membership.cohort_id == invite.cohort_id


def test_the_code_page_accepts_a_code_typed_with_a_dash_and_small_letters(
        client: FlaskClient, invite: Invite) -> None:
    typed = f"{invite.code[:4].lower()}-{invite.code[4:].lower()}"
    response = client.get(f"/join?code={typed}")
    assert response.status_code == 302
    assert client.get(response.headers["Location"]).status_code == 200


def test_an_unknown_invite_code_is_refused_kindly(client: FlaskClient, session: Session,
                                                  invite: Invite) -> None:
    before = _user_count(session)
    assert client.get("/join/NOPE2345").status_code == 400
    response = _join(client, "NOPE2345")
    assert response.status_code == 400
    assert "That invite code does not work" in response.get_data(as_text=True)
    assert _user_count(session) == before


def test_an_expired_invite_is_refused_and_nothing_is_created(
        client: FlaskClient, session: Session, invite: Invite) -> None:
    factories.expire(session, invite)
    before = _user_count(session)
    response = _join(client, invite.code)
    assert response.status_code == 400
    assert "That invite has expired" in response.get_data(as_text=True)
    assert _user_count(session) == before
    assert _uses(session, invite) == 0


def test_a_used_up_invite_is_refused(client: FlaskClient, session: Session, coach: User,
                                     cohort: object) -> None:
    invite = factories.make_invite(session, coach=coach, cohort=cohort, max_uses=1)  # type: ignore[arg-type]
    assert _join(client, invite.code).status_code == 302
    other = client.application.test_client()
    response = _join(other, invite.code, display_name="Second Person")
    assert response.status_code == 400
    assert "used as often as it allows" in response.get_data(as_text=True)
    assert session.scalar(select(User).where(User.name_key == "second person")) is None
    assert _uses(session, invite) == 1


def test_a_revoked_invite_is_refused(client: FlaskClient, session: Session, invite: Invite) -> None:
    invite.revoked_at = utcnow()
    session.add(invite)
    session.commit()
    response = _join(client, invite.code)
    assert response.status_code == 400
    assert "That invite code does not work" in response.get_data(as_text=True)


def test_a_display_name_already_taken_in_any_case_is_refused(
        client: FlaskClient, session: Session, invite: Invite, member: User) -> None:
    before = _user_count(session)
    response = _join(client, invite.code, display_name="SUNNY   river")
    assert response.status_code == 409
    assert "Someone already uses that name" in response.get_data(as_text=True)
    assert _user_count(session) == before
    assert _uses(session, invite) == 0


def test_invalid_display_names_get_a_message_saying_what_to_change(
        client: FlaskClient, session: Session, invite: Invite) -> None:
    cases = {
        "ab": "3 to 30 characters",
        "x" * 31: "3 to 30 characters",
        "sunny@example.org": "rather than an email address",
        "<script>": "letters, numbers, spaces",
    }
    before = _user_count(session)
    for name, message in cases.items():
        response = _join(client, invite.code, display_name=name)
        assert response.status_code == 400, name
        body = response.get_data(as_text=True)
        assert message in body, name
        assert 'aria-invalid="true"' in body
    assert _user_count(session) == before
    assert _uses(session, invite) == 0


def test_weak_passwords_are_refused_without_composition_rules(
        client: FlaskClient, session: Session, invite: Invite) -> None:
    before = _user_count(session)
    short = _join(client, invite.code, password="short")
    assert short.status_code == 400 and "at least 8 characters" in short.get_data(as_text=True)
    common = _join(client, invite.code, password="password123")
    assert common.status_code == 400 and "most common ones" in common.get_data(as_text=True)
    too_long = _join(client, invite.code, password="x" * 129)
    assert too_long.status_code == 400 and "at most 128" in too_long.get_data(as_text=True)
    assert _user_count(session) == before
    # A long, plain, lower-case sentence is fine: no rules about digits or symbols.
    assert _join(client, invite.code, password="the kettle sings at noon").status_code == 302


def test_an_unknown_timezone_or_language_is_refused(client: FlaskClient, session: Session,
                                                    invite: Invite) -> None:
    before = _user_count(session)
    assert _join(client, invite.code, timezone="Mars/Olympus").status_code == 400
    assert _join(client, invite.code, language="xx").status_code == 400
    assert _user_count(session) == before


def test_a_join_without_the_csrf_token_is_refused(client: FlaskClient, session: Session,
                                                  invite: Invite) -> None:
    before = _user_count(session)
    response = client.post(f"/join/{invite.code}", data={
        "display_name": "Brave Fern", "password": "tea in the garden"})
    assert response.status_code == 400
    assert "reload the page" in response.get_data(as_text=True)
    assert _user_count(session) == before


def test_the_refusal_is_in_the_members_language(client: FlaskClient, invite: Invite) -> None:
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "es-ES,es;q=0.9"
    response = _join(client, invite.code, password="short")
    assert response.status_code == 400
    assert "Por favor, usa al menos 8 caracteres" in response.get_data(as_text=True)


def test_joining_through_the_api_signs_the_member_in(client: FlaskClient, invite: Invite) -> None:
    response = client.post("/api/v1/join", json={
        "code": invite.code, "display_name": "Api Person", "password": "tea in the garden",
        "timezone": "America/Chicago", "language": "es"}, headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 201
    assert response.get_json()["display_name"] == "Api Person"
    me = client.get("/api/v1/me").get_json()
    assert me["timezone"] == "America/Chicago" and me["language"] == "es"


def test_names_with_hidden_characters_or_mixed_alphabets_are_refused(
        client: FlaskClient, session: Session, invite: Invite, coach: User) -> None:
    before = _user_count(session)
    for name, message in (("Sunny\x00River", "letters, numbers, spaces"),
                          ("Sun\u200bny", "letters, numbers, spaces"),
                          ("C\u043each Rosa", "one alphabet only")):  # a Cyrillic "о"
        response = _join(client, invite.code, display_name=name)
        assert response.status_code == 400, name
        assert message in response.get_data(as_text=True)
    assert _user_count(session) == before
    # Names in one other alphabet, or with letters that grow when folded, are welcome.
    assert _join(client, invite.code, display_name="Мария").status_code == 302
    other = client.application.test_client()
    assert _join(other, invite.code, display_name="ß" * 30).status_code == 302


def test_api_field_problems_say_which_field_and_what_is_wrong(
        client: FlaskClient, session: Session, invite: Invite) -> None:
    headers = {"X-CSRFToken": csrf_token(client)}
    missing = client.post("/api/v1/join", json={"code": invite.code}, headers=headers)
    assert missing.status_code == 400
    assert missing.get_json()["error"] == {
        "code": "invalid_input", "field": "display_name",
        "message": "Something is missing: display_name."}
    long = client.post("/api/v1/join", json={"code": invite.code, "display_name": "x" * 61,
                                             "password": "tea in the garden"}, headers=headers)
    assert long.get_json()["error"]["message"] == "This is too long: display_name."
    assert _user_count(session) == 0 + 1  # only the coach from the fixtures
