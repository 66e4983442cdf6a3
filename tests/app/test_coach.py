"""Coaches run cohorts: invites, revoking them, reset links; members cannot reach any of it."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlmodel import Session

from app.accounts.models import Cohort, Invite, ResetToken, User
from tests import factories
from tests.factories import PASSWORD, api_headers, csrf_token, sign_in


def test_a_coach_creates_a_group_and_an_invite_from_the_coach_home(
        client: FlaskClient, session: Session, coach: User) -> None:
    sign_in(client, "Coach Rosa")
    assert "You do not run a group yet" in client.get("/coach").get_data(as_text=True)
    response = client.post("/coach/cohorts", data={"name": "Sunday Sleepers",
                                                   "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    cohort = factories.fresh(session).scalar(select(Cohort).where(Cohort.name == "Sunday Sleepers"))
    assert cohort is not None
    response = client.post(f"/coach/cohorts/{cohort.id}/invites", data={
        "days": "7", "max_uses": "3", "csrf_token": csrf_token(client)}, follow_redirects=True)
    page = response.get_data(as_text=True)
    match = re.search(r"New invite code: ([A-Z0-9]{4}-[A-Z0-9]{4})", page)
    assert match, page
    assert "Used 0 of 3" in page
    assert f"/join/{match.group(1).replace('-', '')}" in page


def test_invites_outside_the_allowed_ranges_are_refused(
        client: FlaskClient, session: Session, coach: User, cohort: Cohort) -> None:
    sign_in(client, "Coach Rosa")
    headers = api_headers(client)
    for body, field in (({"days": 0}, "days"), ({"days": 91}, "days"),
                        ({"max_uses": 0}, "max_uses"), ({"max_uses": 501}, "max_uses")):
        response = client.post(f"/api/v1/cohorts/{cohort.id}/invites", json=body, headers=headers)
        assert response.status_code == 400
        assert response.get_json()["error"]["field"] == field
    count = factories.fresh(session).scalar(select(func.count()).select_from(Invite))
    assert count == 0


def test_a_revoked_invite_stops_working_at_once(
        app: Flask, client: FlaskClient, session: Session, coach: User, invite: Invite) -> None:
    sign_in(client, "Coach Rosa")
    response = client.delete(f"/api/v1/invites/{invite.id}", headers=api_headers(client))
    assert response.status_code == 204
    newcomer = app.test_client()
    assert newcomer.get(f"/join/{invite.code}").status_code == 400


def test_a_coach_sees_only_their_own_cohorts(
        app: Flask, client: FlaskClient, session: Session, coach: User, cohort: Cohort,
        member: User) -> None:
    other_coach = factories.make_coach(session, name="Coach Ben")
    other = factories.make_cohort(session, coach=other_coach, name="Other Group")
    sign_in(client, "Coach Ben")
    assert [c["name"] for c in client.get("/api/v1/cohorts").get_json()] == ["Other Group"]
    assert client.get(f"/api/v1/cohorts/{cohort.id}/members").status_code == 404
    assert client.get(f"/api/v1/cohorts/{cohort.id}/invites").status_code == 404
    response = client.post(f"/api/v1/cohorts/{cohort.id}/invites", json={},
                           headers=api_headers(client))
    assert response.status_code == 404
    assert "Sunny River" not in client.get("/coach").get_data(as_text=True)
    assert other.id is not None


def test_members_cannot_reach_coach_pages_or_api(client: FlaskClient, cohort: Cohort,
                                                  member: User) -> None:
    sign_in(client, "Sunny River")
    assert client.get("/coach").status_code == 403
    assert client.get(f"/api/v1/cohorts/{cohort.id}/members").status_code == 403
    response = client.post("/api/v1/cohorts", json={"name": "Mine"}, headers=api_headers(client))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


def test_a_reset_link_works_once_and_signs_every_device_out(
        app: Flask, client: FlaskClient, session: Session, coach: User, member: User) -> None:
    phone = app.test_client()
    sign_in(phone, "Sunny River")
    sign_in(client, "Coach Rosa")
    page = client.post(f"/coach/members/{member.id}/reset-link",
                       data={"csrf_token": csrf_token(client)}).get_data(as_text=True)
    link = re.search(r"http://hearten\.test(/reset/[\w-]+)", page)
    assert link, page
    path = link.group(1)

    anyone = app.test_client()
    assert anyone.get(path).status_code == 200
    weak = anyone.post(path, data={"password": "123456789", "csrf_token": csrf_token(anyone)})
    assert weak.status_code == 400 and "most common" in weak.get_data(as_text=True)
    done = anyone.post(path, data={"password": "a new morning song",
                                   "csrf_token": csrf_token(anyone)})
    assert done.status_code == 302
    assert phone.get("/api/v1/me").status_code == 401  # the old device was signed out
    assert anyone.get("/api/v1/me").get_json()["display_name"] == "Sunny River"

    again = app.test_client()
    assert again.get(path).status_code == 400
    reuse = again.post(path, data={"password": "another good phrase",
                                   "csrf_token": csrf_token(again)})
    assert reuse.status_code == 400
    assert "already been used or has expired" in reuse.get_data(as_text=True)
    sign_in(again, "Sunny River", "a new morning song")


def test_a_coach_cannot_issue_a_reset_link_for_someone_outside_their_groups(
        client: FlaskClient, session: Session, member: User) -> None:
    factories.make_coach(session, name="Coach Ben")
    sign_in(client, "Coach Ben")
    response = client.post(f"/api/v1/members/{member.id}/reset-link", headers=api_headers(client))
    assert response.status_code == 404
    assert factories.fresh(session).scalar(select(func.count()).select_from(ResetToken)) == 0


def test_an_admin_can_issue_a_reset_link_for_anyone(
        app: Flask, client: FlaskClient, session: Session, member: User) -> None:
    factories.make_user(session, name="Admin Ana", role="admin")  # type: ignore[arg-type]
    sign_in(client, "Admin Ana")
    response = client.post(f"/api/v1/members/{member.id}/reset-link", headers=api_headers(client))
    assert response.status_code == 201
    assert "/reset/" in response.get_json()["link"]


def test_the_coach_sees_their_members_and_how_many(
        client: FlaskClient, cohort: Cohort, member: User, peer: User) -> None:
    sign_in(client, "Coach Rosa")
    (group,) = client.get("/api/v1/cohorts").get_json()
    assert group["member_count"] == 2
    names = [m["display_name"] for m in client.get(f"/api/v1/cohorts/{cohort.id}/members").get_json()]
    assert names == ["Quiet Oak", "Sunny River"]
    assert PASSWORD not in client.get("/coach").get_data(as_text=True)


def test_a_new_reset_link_makes_the_earlier_one_stop_working(
        app: Flask, client: FlaskClient, coach: User, member: User) -> None:
    sign_in(client, "Coach Rosa")
    first = client.post(f"/api/v1/members/{member.id}/reset-link", headers=api_headers(client))
    second = client.post(f"/api/v1/members/{member.id}/reset-link", headers=api_headers(client))
    first_path = first.get_json()["link"].removeprefix("http://hearten.test")
    second_path = second.get_json()["link"].removeprefix("http://hearten.test")
    visitor = app.test_client()
    assert visitor.get(first_path).status_code == 400
    assert visitor.get(second_path).status_code == 200


def test_a_group_name_with_hidden_characters_is_refused(
        client: FlaskClient, session: Session, coach: User) -> None:
    sign_in(client, "Coach Rosa")
    response = client.post("/api/v1/cohorts", json={"name": "Night\x00Owls"},
                           headers=api_headers(client))
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "name"
    assert factories.fresh(session).scalar(select(func.count()).select_from(Cohort)) == 0
