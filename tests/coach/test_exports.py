"""Exports for evaluation: consenting members only, under study ids, a complete day-by-day panel
equal to the rollups that real syncs wrote; CSV, JSON and the API agree; every export is audited,
and every refused one leaves nothing behind."""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from app.accounts import consent
from app.accounts.models import Cohort, User
from app.audit import AuditEntry
from app.db import utcnow
from coach.exports import COLUMNS
from coach.models import MemberDay
from feed import services as feed
from feed.models import CheerKind, ItemKind
from goals import services as goals
from goals.models import GoalKind, GoalSettings, Visibility
from tests import factories
from tests.coach.conftest import days_back, make_group, sleep, steps, today_of


def signed_in(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    factories.sign_in(client, name)
    return client


def agree(session: Session, member: User) -> None:
    consent.agree_to_research(session, member=member, now=utcnow())
    session.commit()


def exports_audited(session: Session) -> list[AuditEntry]:
    factories.fresh(session)
    return list(session.exec(select(AuditEntry).where(col(AuditEntry.action) == "coach.export")
                             .order_by(col(AuditEntry.id))))


@dataclass(frozen=True)
class Group:
    cohort: Cohort
    helping: list[User]      # agreed to research use
    withdrew: User           # agreed, then stopped
    never: User              # never agreed
    outsider: User           # agreed, but in another group
    start: date
    end: date

    @property
    def query(self) -> str:
        return f"start={self.start.isoformat()}&end={self.end.isoformat()}"


@pytest.fixture
def group(app: Flask, session: Session, cohort: Cohort, outsider: User) -> Group:
    with app.app_context():
        people = make_group(session, cohort, 8)
        helping, withdrew, never = people[:6], people[6], people[7]
        today = today_of(people[0])
        for n, person in enumerate(people):
            steps(session, person, {day: 3000 + 100 * n + k for k, day in
                                    enumerate(days_back(10, today))})
            sleep(session, person, dict.fromkeys(days_back(5, today), 400 + n))
        steps(session, outsider, dict.fromkeys(days_back(10, today), 4321))
        for person in [*helping, withdrew, outsider]:
            agree(session, person)
        consent.withdraw_from_research(session, member=withdrew, now=utcnow())
        session.commit()
        now = utcnow()
        goal = goals.create_goal(session, member=helping[0], settings=GoalSettings(
            kind=GoalKind.HABIT, title="Drink water", visibility=Visibility.COACH), now=now)
        session.commit()
        goals.check_in(session, member=helping[0], goal_id=goal.id or 0, day=None, done=True,
                       client_key=None, now=now)
        item = feed.post(session, author=helping[1], cohort_id=cohort.id, kind=ItemKind.STORY,
                         body="A slow walk by the river today.", now=now)
        session.commit()
        feed.give_cheer(session, member=helping[2], item_id=item.id or 0, kind=CheerKind.WELL_DONE,
                        client_key=None, now=now)
        feed.add_comment(session, author=helping[3], item_id=item.id or 0, body="Lovely.",
                         client_key=None, now=now)
        session.commit()
        return Group(cohort=cohort, helping=helping, withdrew=withdrew, never=never,
                     outsider=outsider, start=today - timedelta(days=13), end=today)


def study_ids(session: Session, people: list[User]) -> dict[int, str]:
    return consent.research_study_ids(session, member_ids=[p.id or 0 for p in people])


def expected_rows(session: Session, group: Group) -> list[dict[str, Any]]:
    """The panel as the tests expect it, straight from the stored MemberDay rows."""
    factories.fresh(session)
    ids = study_ids(session, group.helping)
    stored = {(row.member_id, row.day): row for row in session.exec(select(MemberDay).where(
        col(MemberDay.member_id).in_(list(ids))))}
    rows = []
    for member_id, study_id in sorted(ids.items(), key=lambda pair: pair[1]):
        for n in range((group.end - group.start).days + 1):
            day = group.start + timedelta(days=n)
            found = stored.get((member_id, day))
            rows.append({
                "study_id": study_id, "day": day.isoformat(),
                "steps": found.steps if found else None,
                "sleep_minutes": found.sleep_minutes if found else None,
                "tracker_data": found.tracker if found else False,
                "goals_tracked": found.goals_total if found else 0,
                "goals_met": found.goals_met if found else 0,
                "posts": found.posts if found else 0, "cheers": found.cheers if found else 0,
                "comments": found.comments if found else 0,
                "check_ins": found.check_ins if found else 0})
    return rows


def from_csv(text: str) -> list[dict[str, Any]]:
    rows = []
    for raw in csv.DictReader(io.StringIO(text)):
        row: dict[str, Any] = dict(raw)
        for name in ("steps", "sleep_minutes"):
            row[name] = int(row[name]) if row[name] else None
        for name in ("goals_tracked", "goals_met", "posts", "cheers", "comments", "check_ins"):
            row[name] = int(row[name])
        row["tracker_data"] = {"true": True, "false": False}[row["tracker_data"]]
        rows.append(row)
    return rows


def test_a_csv_export_holds_every_consenting_member_for_every_day_as_stored(
        app: Flask, session: Session, coach: User, group: Group) -> None:
    client = signed_in(app, coach.display_name)
    response = client.get(f"/coach/cohorts/{group.cohort.id}/export.csv?{group.query}")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="hearten-cohort-{group.cohort.id}-{group.start.isoformat()}'
        f'-to-{group.end.isoformat()}.csv"')
    text = response.get_data(as_text=True)
    assert text.splitlines()[0] == ",".join(COLUMNS)
    rows = from_csv(text)
    assert len(rows) == 6 * 14  # six members who agreed, fourteen days each
    assert rows == expected_rows(session, group)
    # The figures are the ones the syncs, the check-in and the feed wrote.
    ids = study_ids(session, group.helping)
    today = group.end
    first = {(r["study_id"], r["day"]): r for r in rows}
    assert first[(ids[group.helping[0].id or 0], today.isoformat())]["steps"] == 3000
    assert first[(ids[group.helping[5].id or 0], today.isoformat())]["sleep_minutes"] == 405
    assert first[(ids[group.helping[0].id or 0], today.isoformat())]["check_ins"] == 1
    assert first[(ids[group.helping[0].id or 0], today.isoformat())]["goals_tracked"] == 1
    assert first[(ids[group.helping[1].id or 0], today.isoformat())]["posts"] == 1
    assert first[(ids[group.helping[2].id or 0], today.isoformat())]["cheers"] == 1
    assert first[(ids[group.helping[3].id or 0], today.isoformat())]["comments"] == 1
    quiet = first[(ids[group.helping[4].id or 0], group.start.isoformat())]
    assert quiet == {**quiet, "steps": None, "sleep_minutes": None, "tracker_data": False,
                     "posts": 0, "check_ins": 0}  # a day with nothing: empty, and zero counts
    assert [r["study_id"] for r in rows] == sorted(r["study_id"] for r in rows)


def test_members_who_withdrew_or_never_agreed_and_other_groups_are_left_out(
        app: Flask, session: Session, coach: User, group: Group) -> None:
    client = signed_in(app, coach.display_name)
    rows = from_csv(client.get(
        f"/coach/cohorts/{group.cohort.id}/export.csv?{group.query}").get_data(as_text=True))

    found = {row["study_id"] for row in rows}
    assert found == set(study_ids(session, group.helping).values())
    kept_aside = consent.research_study_ids(
        session, member_ids=[group.outsider.id or 0])  # agrees, in another group
    assert kept_aside and not found & set(kept_aside.values())
    assert 4321 not in {row["steps"] for row in rows}
    withdrawn = session.exec(select(MemberDay).where(
        col(MemberDay.member_id) == group.withdrew.id)).first()
    assert withdrawn is not None and withdrawn.steps not in {row["steps"] for row in rows}


def test_csv_json_and_the_api_agree(app: Flask, session: Session, coach: User,
                                    group: Group) -> None:
    client = signed_in(app, coach.display_name)
    base = f"/coach/cohorts/{group.cohort.id}"
    rows = from_csv(client.get(f"{base}/export.csv?{group.query}").get_data(as_text=True))
    download = client.get(f"{base}/export.json?{group.query}")
    api = client.get(f"/api/v1/coach/cohorts/{group.cohort.id}/export?{group.query}")

    assert download.status_code == api.status_code == 200
    assert download.headers["Content-Disposition"].endswith(".json\"")
    assert download.headers["Cache-Control"] == api.headers["Cache-Control"] == "no-store"
    document, from_api = download.get_json(), api.get_json()
    assert document["rows"] == from_api["rows"] == rows
    assert document["cohort_export"]["start"] == group.start.isoformat()
    assert document["cohort_export"]["end"] == group.end.isoformat()
    assert "generated_at" in document["cohort_export"]
    assert [c["name"] for c in document["dictionary"]] == list(COLUMNS)
    assert document["dictionary"] == from_api["dictionary"]
    dictionary = client.get("/api/v1/coach/export-dictionary").get_json()
    assert dictionary["columns"] == document["dictionary"]
    steps_meaning = next(c for c in dictionary["columns"] if c["name"] == "steps")["meaning"]
    assert "typed in wins" in steps_meaning
    assert any("at least 5" in note for note in dictionary["notes"])
    assert len(exports_audited(session)) == 3


def test_no_names_member_ids_or_group_name_are_anywhere_in_an_export(
        app: Flask, session: Session, coach: User, group: Group) -> None:
    client = signed_in(app, coach.display_name)
    base = f"/coach/cohorts/{group.cohort.id}"
    texts = [client.get(f"{base}/export.csv?{group.query}").get_data(as_text=True),
             client.get(f"{base}/export.json?{group.query}").get_data(as_text=True),
             client.get(f"/api/v1{base}/export?{group.query}").get_data(as_text=True)]
    names = [p.display_name for p in [*group.helping, group.withdrew, group.never,
                                      group.outsider]]
    for text in texts:
        for secret in [*names, group.cohort.name, coach.display_name, "member_id",
                       "A slow walk", "Lovely.", "Drink water"]:
            assert secret not in text
    for row in client.get(f"{base}/export.json?{group.query}").get_json()["rows"]:
        assert set(row) == set(COLUMNS)
        assert row["study_id"].startswith("S-")


def test_each_export_is_audited_with_its_range_and_size(
        app: Flask, session: Session, coach: User, group: Group) -> None:
    client = signed_in(app, coach.display_name)
    client.get(f"/coach/cohorts/{group.cohort.id}/export.csv?{group.query}")
    client.get(f"/api/v1/coach/cohorts/{group.cohort.id}/export?{group.query}")

    entries = exports_audited(session)
    assert [(e.actor_id, e.subject_type, e.subject_id, e.member_id) for e in entries] == [
        (coach.id, "cohort", group.cohort.id, None)] * 2
    span = f"{group.start.isoformat()}..{group.end.isoformat()}"
    assert [e.detail for e in entries] == [f"csv {span}, 6 members", f"api {span}, 6 members"]


@pytest.mark.parametrize(("query", "words"), [
    ("start={end}&end={start}", "on or before the end day"),
    ("start={long}&end={end}", "at most 366 days"),
    ("start={start}&end={tomorrow}", "not after today"),
    ("start=yesterday&end={end}", "start day, as a date"),
    ("start={start}&end=2026-02-30", "end day, as a date"),
    ("end={end}", "start day, as a date"),
])
def test_a_wrong_range_is_refused_clearly_and_nothing_is_audited(
        app: Flask, session: Session, coach: User, cohort: Cohort, query: str,
        words: str) -> None:
    today = today_of(coach)  # the range is checked before anyone's data is read
    values = {"start": (today - timedelta(days=13)).isoformat(), "end": today.isoformat(),
              "long": (today - timedelta(days=366)).isoformat(),
              "tomorrow": (today + timedelta(days=1)).isoformat()}
    client = signed_in(app, coach.display_name)
    base = f"/coach/cohorts/{cohort.id}"
    for path in (f"{base}/export.csv", f"{base}/export.json", f"/api/v1{base}/export"):
        response = client.get(f"{path}?{query.format(**values)}",
                              headers={"Accept": "application/json"})
        assert response.status_code == 400, path
        assert words in response.get_json()["error"]["message"]
    page = client.get(f"{base}/export?{query.format(**values)}&format=csv")
    assert page.status_code == 400 and words in page.get_data(as_text=True)
    assert exports_audited(session) == []


def test_366_days_up_to_today_are_allowed(app: Flask, session: Session, coach: User,
                                          group: Group) -> None:
    start = group.end - timedelta(days=365)
    response = signed_in(app, coach.display_name).get(
        f"/api/v1/coach/cohorts/{group.cohort.id}/export?start={start}&end={group.end}")
    assert response.status_code == 200
    assert len(response.get_json()["rows"]) == 6 * 366


def test_another_groups_coach_finds_nothing_and_nothing_is_audited(
        app: Flask, session: Session, group: Group) -> None:
    other = signed_in(app, "Coach Ben")  # runs the outsider's group
    base = f"/coach/cohorts/{group.cohort.id}"
    for path in (f"{base}/export", f"{base}/export.csv?{group.query}",
                 f"{base}/export.json?{group.query}", f"/api/v1{base}/export?{group.query}",
                 f"{base}/export.csv?start=nonsense"):
        response = other.get(path)
        assert response.status_code == 404, path
        assert "S-" not in response.get_data(as_text=True)
    assert exports_audited(session) == []


def test_a_member_cannot_export(app: Flask, session: Session, group: Group) -> None:
    member = signed_in(app, group.helping[0].display_name)
    base = f"/coach/cohorts/{group.cohort.id}"
    for path in (f"{base}/export", f"{base}/export.csv?{group.query}",
                 f"{base}/export.json?{group.query}", f"/api/v1{base}/export?{group.query}",
                 "/api/v1/coach/export-dictionary"):
        assert member.get(path).status_code == 403, path
    assert exports_audited(session) == []


def test_fewer_than_five_consenting_members_get_a_clear_no_without_a_count(
        app: Flask, session: Session, coach: User, cohort: Cohort) -> None:
    with app.app_context():
        people = make_group(session, cohort, 6)
        for person in people[:4]:
            agree(session, person)
    client = signed_in(app, coach.display_name)
    today = today_of(people[0])
    query = f"start={today - timedelta(days=6)}&end={today}"
    base = f"/coach/cohorts/{cohort.id}"
    for path in (f"{base}/export.csv?{query}", f"/api/v1{base}/export?{query}"):
        response = client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == 409, path
        message = response.get_json()["error"]["message"]
        assert "nothing to export yet" in message and "4" not in message
    page = client.get(f"{base}/export").get_data(as_text=True)
    assert "nothing to export yet" in page and " disabled" in page
    assert exports_audited(session) == []


def test_the_export_page_explains_who_is_in_it_and_sends_the_form_to_the_download(
        app: Flask, session: Session, coach: User, group: Group) -> None:
    client = signed_in(app, coach.display_name)
    overview = client.get(f"/coach/cohorts/{group.cohort.id}").get_data(as_text=True)
    assert f"/coach/cohorts/{group.cohort.id}/export" in overview

    page = client.get(f"/coach/cohorts/{group.cohort.id}/export")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "who said yes to research use" in html
    assert 'type="date"' in html and 'value="csv"' in html and 'value="json"' in html
    for name in COLUMNS:
        assert f"<code>{name}</code>" in html
    assert "main sleep ending that day" in html
    assert " disabled" not in html
    sent = client.get(f"/coach/cohorts/{group.cohort.id}/export?{group.query}&format=json")
    assert sent.status_code == 303
    assert sent.headers["Location"] == (f"/coach/cohorts/{group.cohort.id}/export.json?"
                                        f"{group.query}")
    assert exports_audited(session) == []  # only the download itself is an export
    assert len(client.get(sent.headers["Location"]).get_json()["rows"]) == 6 * 14
    assert len(exports_audited(session)) == 1


def test_a_json_export_streams_gzipped_to_a_browser_that_accepts_it(
        app: Flask, coach: User, group: Group) -> None:
    client = signed_in(app, coach.display_name)
    url = f"/coach/cohorts/{group.cohort.id}/export.json?{group.query}"
    plain = client.get(url)
    packed = client.get(url, headers={"Accept-Encoding": "gzip"})

    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Content-Length" not in packed.headers  # compressed as it streams
    assert packed.headers["Content-Disposition"] == plain.headers["Content-Disposition"]
    assert json.loads(gzip.decompress(packed.data))["rows"] == plain.get_json()["rows"]
