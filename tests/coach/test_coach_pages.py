"""The coach pages and API: figures within consent and small-group suppression, the check-in
list, a member's page within what they allowed, and nothing for anyone else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from app.accounts.models import Cohort, ConsentLevel, ConsentMetric, Role, User
from app.audit import AuditEntry
from app.db import utcnow
from feed import services as feed
from feed.models import ItemKind
from tests import factories
from tests.coach.conftest import days_back, make_group, share, sleep, steps, today_of
from wearables.models import Connection, ConnectionStatus, Source


def signed_in(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    factories.sign_in(client, name)
    return client


def audit_entries(session: Session, action: str) -> list[AuditEntry]:
    factories.fresh(session)
    return list(session.exec(select(AuditEntry).where(col(AuditEntry.action) == action)))


@pytest.fixture
def walkers(session: Session, cohort: Cohort) -> list[User]:
    people = make_group(session, cohort, 5)
    today = today_of(people[0])
    for n, person in enumerate(people):
        steps(session, person, dict.fromkeys(days_back(30, today), 2000 + 1000 * n))
        sleep(session, person, dict.fromkeys(days_back(30, today), 420))
    return people


def test_the_coach_sees_the_groups_figures_with_a_table_behind_each_chart(
        app: Flask, coach: User, cohort: Cohort, walkers: list[User]) -> None:
    page = signed_in(app, coach.display_name).get(f"/coach/cohorts/{cohort.id}?days=7")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "4,000" in html  # (2,000 + … + 6,000) / 5
    assert "7h 00m" in html
    assert html.count("<table>") == 2 and html.count('role="img"') == 2
    glance = html.split("At a glance")[1].split("</dl>")[0]
    assert "100%" in glance  # every member-day had tracker data
    # Nobody posted, cheered or checked in: a count under five is never shown as a number.
    active = glance.split("Active members")[1].split("</dd>")[0]
    assert 'class="suppressed">fewer than 5' in active


def test_a_small_group_shows_fewer_than_five_and_no_number(
        app: Flask, session: Session, coach: User, cohort: Cohort) -> None:
    people = make_group(session, cohort, 3)
    for person in people:
        steps(session, person, {today_of(person): 7777})
    client = signed_in(app, coach.display_name)
    html = client.get(f"/coach/cohorts/{cohort.id}").get_data(as_text=True)
    assert "fewer than 5" in html and "7,777" not in html and "7777" not in html
    body = client.get(f"/api/v1/coach/cohorts/{cohort.id}/overview?days=7").get_json()
    assert body["members"] is None
    assert body["average_steps"] == {"value": None, "suppressed": True}
    assert all(day["steps"]["value"] is None for day in body["daily"])


def test_another_groups_coach_and_members_reach_nothing(
        app: Flask, session: Session, cohort: Cohort, walkers: list[User],
        outsider: User) -> None:
    member_id = walkers[0].id
    paths = [f"/coach/cohorts/{cohort.id}", f"/coach/cohorts/{cohort.id}/check-ins",
             f"/coach/cohorts/{cohort.id}/members/{member_id}",
             f"/api/v1/coach/cohorts/{cohort.id}/overview",
             f"/api/v1/coach/cohorts/{cohort.id}/check-ins",
             f"/api/v1/coach/cohorts/{cohort.id}/members/{member_id}"]
    other_coach = signed_in(app, "Coach Ben")
    for path in paths:
        response = other_coach.get(path)
        assert response.status_code == 404, path
        assert walkers[0].display_name not in response.get_data(as_text=True)
    member = signed_in(app, walkers[1].display_name)
    for path in paths:
        assert member.get(path).status_code == 403, path
    assert audit_entries(session, "coach.viewed_member") == []


def test_a_window_other_than_7_30_or_90_days_is_refused_clearly(
        app: Flask, coach: User, cohort: Cohort) -> None:
    client = signed_in(app, coach.display_name)
    response = client.get(f"/api/v1/coach/cohorts/{cohort.id}/overview?days=14")
    assert response.status_code == 400
    assert "7, 30 or 90" in response.get_json()["error"]["message"]
    assert client.get(f"/coach/cohorts/{cohort.id}?days=abc").status_code == 400
    assert client.get(f"/coach/cohorts/{cohort.id}/check-ins?idle=0").status_code == 400


def test_the_check_in_list_puts_who_may_need_a_word_first(
        app: Flask, session: Session, coach: User, cohort: Cohort) -> None:
    people = make_group(session, cohort, 6, level=ConsentLevel.SUMMARY)
    quiet_sync, reconnect, dropped, private_drop, held, fine = people
    now, today = utcnow(), today_of(people[0])
    for person, synced in ((quiet_sync, now - timedelta(days=4)), (fine, now),
                           (reconnect, now - timedelta(hours=30))):
        session.add(Connection(member_id=person.id or 0, provider=Source.GOOGLE,
                               backfill_from=today, last_sync_at=synced,
                               status=(ConnectionStatus.NEEDS_RECONNECT if person is reconnect
                                       else ConnectionStatus.CONNECTED)))
    session.commit()
    usual = dict.fromkeys(days_back(35, today)[7:], 8000)
    for person in (dropped, private_drop):
        steps(session, person, {**usual, **dict.fromkeys(days_back(7, today), 2000)})
    share(session, private_drop, ConsentLevel.NOTHING, metrics=(ConsentMetric.STEPS,))
    feed.post(session, author=held, cohort_id=cohort.id, kind=ItemKind.STORY,
              body="My first post here.", now=now, hold_first=1)
    session.commit()
    for person in people:  # everyone opened the app today, so nobody is flagged as away
        signed_in(app, person.display_name)

    rows = signed_in(app, coach.display_name).get(
        f"/api/v1/coach/cohorts/{cohort.id}/check-ins").get_json()
    by_name = {row["display_name"]: row for row in rows}
    assert by_name[quiet_sync.display_name]["tracker"] == "red"
    assert by_name[reconnect.display_name]["reconnect"] is True
    assert by_name[reconnect.display_name]["tracker"] == "amber"
    assert [c["metric"] for c in by_name[dropped.display_name]["changes"]] == ["steps"]
    assert by_name[dropped.display_name]["changes"][0]["recent"] == 2000
    assert by_name[private_drop.display_name]["changes"] == []  # kept private: not read
    assert by_name[held.display_name]["held_posts"] == 1
    assert by_name[fine.display_name]["needs_check_in"] is False
    assert rows[0]["display_name"] == dropped.display_name  # a sharp change comes first
    assert rows[-1]["needs_check_in"] is False


def test_members_not_seen_for_n_days_are_on_the_list(
        app: Flask, session: Session, coach: User, cohort: Cohort) -> None:
    factories.make_member(session, cohort=cohort, name="Far Meadow")
    client = signed_in(app, coach.display_name)
    html = client.get(f"/coach/cohorts/{cohort.id}/check-ins?idle=3").get_data(as_text=True)
    assert "Far Meadow" in html and "Last opened the app: never" in html


@pytest.mark.parametrize(("level", "numbers", "day_by_day"), [
    (ConsentLevel.NOTHING, False, False),
    (ConsentLevel.SUMMARY, True, False),
    (ConsentLevel.DETAIL, True, True),
])
def test_a_members_page_shows_only_what_they_allowed_and_every_look_is_audited(
        app: Flask, session: Session, coach: User, cohort: Cohort, level: ConsentLevel,
        numbers: bool, day_by_day: bool) -> None:
    person = factories.make_member(session, cohort=cohort, name="Blue Heron")
    share(session, person, level)
    steps(session, person, dict.fromkeys(days_back(10, today_of(person)), 6543))
    client = signed_in(app, coach.display_name)

    html = client.get(f"/coach/cohorts/{cohort.id}/members/{person.id}").get_data(as_text=True)
    assert ("6,543" in html) is numbers
    assert ("Blue Heron keeps this private." in html) is not numbers
    assert ("Day by day" in html) is day_by_day
    body = client.get(f"/api/v1/coach/cohorts/{cohort.id}/members/{person.id}").get_json()
    steps_view = next(m for m in body["metrics"] if m["metric"] == "steps")
    assert (steps_view["week_average"] == 6543) is numbers
    assert bool(steps_view["days"]) is day_by_day
    looks = audit_entries(session, "coach.viewed_member")
    assert len(looks) == 2 and {e.member_id for e in looks} == {person.id}


def test_a_member_of_another_group_is_not_found_on_this_groups_pages(
        app: Flask, session: Session, coach: User, cohort: Cohort, outsider: User) -> None:
    client = signed_in(app, coach.display_name)
    assert client.get(f"/coach/cohorts/{cohort.id}/members/{outsider.id}").status_code == 404
    assert audit_entries(session, "coach.viewed_member") == []


def test_the_coach_home_links_each_group_to_its_pages_and_admins_to_the_audit_log(
        app: Flask, session: Session, coach: User, cohort: Cohort) -> None:
    html = signed_in(app, coach.display_name).get("/coach").get_data(as_text=True)
    for path in (f"/coach/cohorts/{cohort.id}", f"/coach/cohorts/{cohort.id}/check-ins",
                 f"/coach/cohorts/{cohort.id}/export"):
        assert f'href="{path}"' in html
    assert "/admin/audit" not in html
    factories.make_user(session, name="Admin Ana", role=Role.ADMIN)
    assert 'href="/admin/audit"' in signed_in(app, "Admin Ana").get("/coach").get_data(
        as_text=True)
