"""The audit log for admins: coaches' looks at members, exports and moderation in plain words,
with filters and pages; only admins see it, and looking at it is not itself logged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, func, select

from app import audit
from app.accounts import consent
from app.accounts.models import Cohort, Role, User
from app.audit import AuditEntry
from app.db import utcnow
from feed import services as feed
from feed.models import ItemKind
from tests import factories
from tests.coach.conftest import make_group, today_of
from tests.factories import api_headers


def signed_in(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    factories.sign_in(client, name)
    return client


def entry_count(session: Session) -> int:
    return int(factories.fresh(session).exec(select(func.count()).select_from(AuditEntry)).one())


@pytest.fixture
def admin(session: Session) -> User:
    return factories.make_user(session, name="Admin Ana", role=Role.ADMIN)


@pytest.fixture
def walkers(app: Flask, session: Session, cohort: Cohort) -> list[User]:
    with app.app_context():
        people = make_group(session, cohort, 5)
        for person in people:
            consent.agree_to_research(session, member=person, now=utcnow())
        session.commit()
    return people


def coach_at_work(app: Flask, session: Session, coach: User, cohort: Cohort,
                  walkers: list[User]) -> str:
    """The coach looks at a member, exports, and hides a post; returns the export's range."""
    with app.app_context():
        item = feed.post(session, author=walkers[1], cohort_id=cohort.id, kind=ItemKind.STORY,
                         body="Nobody here gets it.", now=utcnow())
        session.commit()
    client = signed_in(app, coach.display_name)
    assert client.get(f"/coach/cohorts/{cohort.id}/members/{walkers[0].id}").status_code == 200
    today = today_of(walkers[0])
    span = f"{today - timedelta(days=29)}..{today}"
    start, end = span.split("..")
    assert client.get(f"/coach/cohorts/{cohort.id}/export.csv?start={start}&end={end}"
                      ).status_code == 200
    hidden = client.post("/api/v1/moderation/actions", headers=api_headers(client), json={
        "kind": "hide", "target_type": "item", "target_id": item.id,
        "reason": "Let's keep the feed kind."})
    assert hidden.status_code == 201, hidden.get_json()
    return span


def test_an_admin_sees_looks_at_members_exports_and_moderation_in_plain_words(
        app: Flask, session: Session, admin: User, coach: User, cohort: Cohort,
        walkers: list[User]) -> None:
    span = coach_at_work(app, session, coach, cohort, walkers)
    client = signed_in(app, admin.display_name)
    before = entry_count(session)

    page = client.get("/admin/audit")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for words in ("Coach looked at a member&#39;s page", "Coach exported data for research",
                  "Moderator hid a post or comment", f"csv {span}, 5 members",
                  coach.display_name, walkers[0].display_name, walkers[1].display_name):
        assert words in html, words
    rows = html.split("<tbody>")[1].split("</tbody>")[0]
    look = next(row for row in rows.split("<tr>") if "looked at a member" in row)
    assert coach.display_name in look and walkers[0].display_name in look
    # Newest first: the moderation came last.
    assert rows.index("Moderator hid") < rows.index("Coach exported") < rows.index("looked at")

    body = client.get("/api/v1/admin/audit").get_json()
    by_action = {e["action"]: e for e in body["entries"]}
    assert by_action["coach.viewed_member"] == {
        **by_action["coach.viewed_member"], "actor": coach.display_name,
        "member": walkers[0].display_name, "member_id": walkers[0].id,
        "label": "Coach looked at a member's page"}
    assert by_action["coach.export"]["detail"] == f"csv {span}, 5 members"
    assert by_action["moderation.hide"]["member"] == walkers[1].display_name
    assert body["older"] is None
    assert entry_count(session) == before  # reading the log is not logged


def test_the_log_filters_by_kind_of_action_and_by_member(
        app: Flask, session: Session, admin: User, coach: User, cohort: Cohort,
        walkers: list[User]) -> None:
    coach_at_work(app, session, coach, cohort, walkers)
    client = signed_in(app, admin.display_name)

    coach_only = client.get("/api/v1/admin/audit?action=coach.").get_json()["entries"]
    assert {e["action"] for e in coach_only} == {"coach.viewed_member", "coach.export"}
    html = client.get("/admin/audit?action=moderation.").get_data(as_text=True)
    assert "Moderator hid" in html and "Coach exported" not in html

    about = client.get("/api/v1/admin/audit", query_string={
        "member": walkers[1].display_name.upper()}).get_json()["entries"]
    assert about and {e["member"] for e in about} == {walkers[1].display_name}
    assert "moderation.hide" in {e["action"] for e in about}
    nobody = client.get("/admin/audit?member=Nobody+Here").get_data(as_text=True)
    assert "We could not find anyone called “Nobody Here”" in nobody
    assert "Nothing here yet." in nobody
    missing = client.get("/api/v1/admin/audit?member=Nobody+Here")
    assert missing.status_code == 404 and missing.get_json()["error"]["field"] == "member"
    assert client.get("/admin/audit?before=abc").status_code == 400


def test_older_entries_come_a_page_at_a_time(
        app: Flask, session: Session, admin: User, coach: User) -> None:
    member = factories.make_member(session, name="Sunny River")
    for n in range(60):
        audit.log(session, actor_id=coach.id, action="coach.viewed_member",
                  subject_type="member", subject_id=member.id, member_id=member.id,
                  detail=f"look {n}")
    session.commit()
    client = signed_in(app, admin.display_name)

    first = client.get("/api/v1/admin/audit?action=coach.").get_json()
    assert [e["detail"] for e in first["entries"]] == [f"look {n}" for n in range(59, 9, -1)]
    html = client.get("/admin/audit?action=coach.").get_data(as_text=True)
    assert f"before={first['older']}" in html and "Older entries" in html
    rest = client.get(f"/api/v1/admin/audit?action=coach.&before={first['older']}").get_json()
    assert [e["detail"] for e in rest["entries"]] == [f"look {n}" for n in range(9, -1, -1)]
    assert rest["older"] is None


def test_coaches_and_members_cannot_read_the_log(
        app: Flask, session: Session, coach: User, cohort: Cohort, member: User) -> None:
    for name in (coach.display_name, member.display_name):
        client = signed_in(app, name)
        assert client.get("/admin/audit").status_code == 403, name
        assert client.get("/api/v1/admin/audit").status_code == 403, name
    assert app.test_client().get("/api/v1/admin/audit").status_code == 401
