"""A coach manages their group's people: removes a member (who keeps their account), adds a
co-coach, adds and removes moderators, and never leaves the group without a coach. Nobody else
can change any of it."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlmodel import Session, col

from app.accounts import services
from app.accounts.events import MemberLeftCohort
from app.accounts.models import Cohort, CohortMembership, Role, User
from app.audit import AuditEntry
from app.db import get_db
from app.extensions import socketio
from app.realtime import emit_to_coaches
from feed.safety.services import can_moderate
from tests import factories
from tests.factories import api_headers, csrf_token, fresh, sign_in


@pytest.fixture
def departures(app: Flask) -> list[MemberLeftCohort]:
    """Every MemberLeftCohort that reaches a commit."""
    seen: list[MemberLeftCohort] = []
    get_db(app).bus.after_commit(MemberLeftCohort, seen.append)
    return seen


def _signed_in(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    sign_in(client, name)
    return client


def _post(client: FlaskClient, url: str, **form: str) -> tuple[int, str]:
    response = client.post(url, data={**form, "csrf_token": csrf_token(client)})
    return response.status_code, response.get_data(as_text=True)


def _seats(session: Session, cohort: Cohort) -> set[tuple[str, str]]:
    """Who is in the cohort, and as what: {(display name, role)}."""
    rows = fresh(session).execute(
        select(User.display_name, CohortMembership.role)
        .join(CohortMembership, CohortMembership.user_id == User.id)
        .where(CohortMembership.cohort_id == cohort.id))
    return {(name, role) for name, role in rows}


def _actions(session: Session) -> list[str]:
    """What the audit log says was done to cohorts, in order."""
    return [e.action for e in fresh(session).scalars(
        select(AuditEntry).where(col(AuditEntry.action).startswith("cohort."))
        .order_by(AuditEntry.id))]


def test_a_coach_removes_a_member_after_confirming_and_the_member_keeps_their_account(
        app: Flask, session: Session, coach: User, cohort: Cohort, member: User, peer: User,
        departures: list[MemberLeftCohort]) -> None:
    sunny = _signed_in(app, "Sunny River")
    sunny_socket = socketio.test_client(app, flask_test_client=sunny)
    assert sunny_socket.is_connected()
    rosa = _signed_in(app, "Coach Rosa")
    home = rosa.get("/coach").get_data(as_text=True)
    confirm_url = f"/coach/cohorts/{cohort.id}/members/{member.id}/remove"
    assert f'href="{confirm_url}"' in home
    confirm = rosa.get(confirm_url).get_data(as_text=True)
    assert "Remove Sunny River from Morning Walkers?" in confirm
    assert "They keep their account, their goals and their own numbers" in confirm
    assert ("Sunny River", "member") in _seats(session, cohort)  # asking changed nothing

    response = rosa.post(confirm_url, data={"csrf_token": csrf_token(rosa)})
    assert response.status_code == 302
    page = rosa.get(response.headers["Location"]).get_data(as_text=True)
    assert "Sunny River is no longer in the group." in page
    assert _seats(session, cohort) == {("Coach Rosa", "coach"), ("Quiet Oak", "member")}
    assert fresh(session).get(User, member.id) is not None
    assert [(d.user_id, d.cohort_id) for d in departures] == [(member.id, cohort.id)]
    entry = fresh(session).scalars(select(AuditEntry).where(
        AuditEntry.action == "cohort.member_removed")).one()
    assert (entry.action, entry.actor_id, entry.member_id, entry.subject_id) == (
        "cohort.member_removed", coach.id, member.id, cohort.id)

    # Sunny is still signed in, but the group and its feed are gone for them, live ones included.
    assert sunny.get("/api/v1/cohorts").get_json() == []
    assert sunny.get(f"/api/v1/feed?cohort={cohort.id}").status_code == 404
    assert "Morning Walkers" not in sunny.get("/feed").get_data(as_text=True)
    sunny_socket.get_received()
    oak = _signed_in(app, "Quiet Oak")
    response = oak.post("/api/v1/feed", json={"kind": "story", "body": "A walk by the sea."},
                        headers=api_headers(oak))
    assert response.status_code == 201
    assert [e for e in sunny_socket.get_received() if e["name"] == "feed"] == []
    assert sunny.get("/home").status_code == 200


def test_a_coach_adds_a_co_coach_by_display_name(
        app: Flask, session: Session, coach: User, cohort: Cohort, member: User) -> None:
    lee = factories.make_coach(session, name="Coach Lee")
    rosa = _signed_in(app, "Coach Rosa")
    status, _page = _post(rosa, f"/coach/cohorts/{cohort.id}/coaches", display_name="coach  LEE")
    assert status == 302
    assert "Coach Lee now coaches this group too." in rosa.get("/coach").get_data(as_text=True)
    assert ("Coach Lee", "coach") in _seats(session, cohort)
    assert services.is_coach_of(session, user=lee, cohort_id=cohort.id or 0)
    assert _actions(session) == ["cohort.coach_added"]
    lee_client = _signed_in(app, "Coach Lee")
    assert "Sunny River" in lee_client.get("/coach").get_data(as_text=True)
    staff = rosa.get(f"/api/v1/cohorts/{cohort.id}/staff").get_json()
    assert [(s["display_name"], s["role"]) for s in staff] == [("Coach Rosa", "coach"),
                                                               ("Coach Lee", "coach")]


def test_adding_a_co_coach_says_clearly_what_went_wrong_and_changes_nothing(
        app: Flask, session: Session, coach: User, cohort: Cohort, member: User) -> None:
    rosa = _signed_in(app, "Coach Rosa")
    url = f"/api/v1/cohorts/{cohort.id}/coaches"
    headers = api_headers(rosa)
    cases = (("Nobody Here", 404, "We could not find anyone called “Nobody Here”."),
             ("Sunny River", 400, "Sunny River does not have a coach account."),
             ("Coach Rosa", 409, "Coach Rosa already coaches this group."))
    for name, status, message in cases:
        response = rosa.post(url, json={"display_name": name}, headers=headers)
        assert response.status_code == status, name
        error = response.get_json()["error"]
        assert error["message"].startswith(message) and error["field"] == "display_name"
    status, page = _post(rosa, f"/coach/cohorts/{cohort.id}/coaches", display_name="Sunny River")
    assert status == 400 and "Sunny River does not have a coach account." in page
    assert _seats(session, cohort) == {("Coach Rosa", "coach"), ("Sunny River", "member")}
    assert _actions(session) == []


def test_a_coach_adds_and_removes_a_moderator_who_can_then_moderate_and_then_not(
        app: Flask, session: Session, coach: User, cohort: Cohort, member: User) -> None:
    kim = factories.make_coach(session, name="Mod Kim")
    factories.make_user(session, name="Admin Ana", role=Role.ADMIN)
    assert not can_moderate(session, user=kim, cohort_id=cohort.id or 0)
    rosa = _signed_in(app, "Coach Rosa")
    status, _page = _post(rosa, f"/coach/cohorts/{cohort.id}/moderators", display_name="Mod Kim")
    assert status == 302
    home = rosa.get("/coach").get_data(as_text=True)
    assert "Mod Kim now moderates this group." in home
    assert ("Mod Kim", "moderator") in _seats(session, cohort)
    assert can_moderate(fresh(session), user=kim, cohort_id=cohort.id or 0)
    assert not services.is_coach_of(session, user=kim, cohort_id=cohort.id or 0)
    # A moderator moderates, and nothing more: the coach home does not list the group for them.
    kim_client = _signed_in(app, "Mod Kim")
    assert "Sunny River" not in kim_client.get("/coach").get_data(as_text=True)
    kim_socket = socketio.test_client(app, flask_test_client=kim_client)
    assert kim_socket.is_connected()

    headers = api_headers(rosa)
    url = f"/api/v1/cohorts/{cohort.id}/moderators"
    response = rosa.post(url, json={"display_name": "Admin Ana"}, headers=headers)
    assert response.status_code == 201
    assert response.get_json()["role"] == "moderator"
    for name, status in (("Mod Kim", 409), ("Coach Rosa", 409), ("Sunny River", 400),
                         ("Nobody Here", 404)):
        assert rosa.post(url, json={"display_name": name}, headers=headers).status_code == status

    kim_socket.get_received()
    status, _page = _post(rosa, f"/coach/cohorts/{cohort.id}/moderators/{kim.id}/remove")
    assert status == 302
    with app.app_context():  # a crisis alert after the removal no longer reaches Kim's phone
        emit_to_coaches(cohort.id or 0, "crisis_alert", {"cohort_id": cohort.id})
    assert [e for e in kim_socket.get_received() if e["name"] == "crisis_alert"] == []
    assert "Mod Kim no longer moderates this group." in rosa.get("/coach").get_data(as_text=True)
    assert not can_moderate(fresh(session), user=kim, cohort_id=cohort.id or 0)
    assert rosa.delete(f"{url}/{kim.id}", headers=headers).status_code == 404  # already gone
    assert _actions(session) == ["cohort.moderator_added", "cohort.moderator_added",
                                 "cohort.moderator_removed"]


def test_a_moderator_made_co_coach_becomes_a_coach(
        app: Flask, session: Session, coach: User, cohort: Cohort) -> None:
    factories.make_coach(session, name="Coach Lee")
    rosa = _signed_in(app, "Coach Rosa")
    headers = api_headers(rosa)
    body = {"display_name": "Coach Lee"}
    assert rosa.post(f"/api/v1/cohorts/{cohort.id}/moderators", json=body,
                     headers=headers).status_code == 201
    assert rosa.post(f"/api/v1/cohorts/{cohort.id}/coaches", json=body,
                     headers=headers).status_code == 201
    assert _seats(session, cohort) == {("Coach Rosa", "coach"), ("Coach Lee", "coach")}


def test_the_coach_of_another_group_is_refused_and_nothing_changes(
        app: Flask, session: Session, coach: User, cohort: Cohort, member: User) -> None:
    ben = factories.make_coach(session, name="Coach Ben")
    factories.make_cohort(session, coach=ben, name="Elsewhere")
    factories.make_coach(session, name="Coach Lee")
    before = _seats(session, cohort)
    client = _signed_in(app, "Coach Ben")
    headers = api_headers(client)
    base = f"/api/v1/cohorts/{cohort.id}"
    assert client.delete(f"{base}/members/{member.id}", headers=headers).status_code == 404
    assert client.delete(f"{base}/coaches/{coach.id}", headers=headers).status_code == 404
    assert client.get(f"{base}/staff").status_code == 404
    for kind in ("coaches", "moderators"):
        response = client.post(f"{base}/{kind}", json={"display_name": "Coach Lee"},
                               headers=headers)
        assert response.status_code == 404
        assert client.post(f"{base}/{kind}", json={"display_name": "Coach Ben"},
                           headers=headers).status_code == 404
    pages = f"/coach/cohorts/{cohort.id}"
    assert client.get(f"{pages}/members/{member.id}/remove").status_code == 404
    assert _post(client, f"{pages}/members/{member.id}/remove")[0] == 404
    assert _post(client, f"{pages}/coaches", display_name="Coach Lee")[0] == 404
    assert _post(client, f"{pages}/coaches/{coach.id}/remove")[0] == 404
    assert _seats(session, cohort) == before
    assert _actions(session) == []


def test_the_last_coach_cannot_be_removed_but_can_step_down_once_another_coaches(
        app: Flask, session: Session, coach: User, cohort: Cohort, member: User) -> None:
    rosa = _signed_in(app, "Coach Rosa")
    headers = api_headers(rosa)
    response = rosa.delete(f"/api/v1/cohorts/{cohort.id}/coaches/{coach.id}", headers=headers)
    assert response.status_code == 409
    assert response.get_json()["error"]["message"] == (
        "A group needs at least one coach. Please add another coach first.")
    assert "Step down" not in rosa.get("/coach").get_data(as_text=True)
    status, page = _post(rosa, f"/coach/cohorts/{cohort.id}/coaches/{coach.id}/remove")
    assert status == 409 and "A group needs at least one coach." in page
    assert ("Coach Rosa", "coach") in _seats(session, cohort)

    lee = factories.make_coach(session, name="Coach Lee")
    assert _post(rosa, f"/coach/cohorts/{cohort.id}/coaches", display_name="Coach Lee")[0] == 302
    assert "Step down" in rosa.get("/coach").get_data(as_text=True)
    confirm = rosa.get(f"/coach/cohorts/{cohort.id}/coaches/{coach.id}/remove")
    assert "Take Coach Rosa off coaching Morning Walkers?" in confirm.get_data(as_text=True)
    assert _post(rosa, f"/coach/cohorts/{cohort.id}/coaches/{coach.id}/remove")[0] == 302
    assert "Sunny River" not in rosa.get("/coach").get_data(as_text=True)
    assert _seats(session, cohort) == {("Coach Lee", "coach"), ("Sunny River", "member")}
    lee_client = _signed_in(app, "Coach Lee")
    response = lee_client.delete(f"/api/v1/cohorts/{cohort.id}/coaches/{lee.id}",
                                 headers=api_headers(lee_client))
    assert response.status_code == 409
    assert _actions(session) == ["cohort.coach_added", "cohort.coach_removed"]


def test_members_cannot_manage_a_group(
        app: Flask, session: Session, coach: User, cohort: Cohort, member: User,
        peer: User) -> None:
    sunny = _signed_in(app, "Sunny River")
    response = sunny.delete(f"/api/v1/cohorts/{cohort.id}/members/{peer.id}",
                            headers=api_headers(sunny))
    assert response.status_code == 403
    assert _post(sunny, f"/coach/cohorts/{cohort.id}/members/{peer.id}/remove")[0] == 403
    assert ("Quiet Oak", "member") in _seats(session, cohort)
