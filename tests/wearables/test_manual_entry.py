"""Typing steps and sleep in: the member's own numbers, stored once, shown as charts and a table."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlmodel import Session

from app.accounts.models import User
from app.db import get_db, utcnow
from tests import factories
from tests.factories import api_headers, csrf_token, sign_in
from wearables import services
from wearables.events import SleepSynced, StepsSynced
from wearables.models import DailySteps, SleepNight, Source
from wearables.records import DaySteps, SleepSession


def _today(member: User) -> date:
    return services.local_today(member, utcnow())


def _steps_rows(session: Session) -> list[DailySteps]:
    return list(factories.fresh(session).scalars(select(DailySteps)))


def test_a_member_types_in_steps_and_sees_them_in_the_chart_and_table(
        client: FlaskClient, session: Session, member: User) -> None:
    sign_in(client, "Sunny River")
    day = _today(member) - timedelta(days=1)
    page = client.get("/tracker").get_data(as_text=True)
    key = page.split('name="client_key" value="')[1].split('"')[0]
    response = client.post("/tracker/steps", data={
        "day": day.isoformat(), "steps": "6,543", "client_key": key,
        "csrf_token": csrf_token(client)}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Saved. Thank you for adding your steps." in html
    assert "6,543" in html and '<svg class="chart"' in html and "<table>" in html
    (row,) = _steps_rows(session)
    assert (row.day, row.steps, row.source) == (day, 6543, Source.MANUAL)


def test_the_same_client_key_twice_stores_once(client: FlaskClient, session: Session,
                                               member: User) -> None:
    sign_in(client, "Sunny River")
    body = {"day": _today(member).isoformat(), "steps": 4000, "client_key": "outbox-key-0001"}
    first = client.post("/api/v1/metrics/steps", json=body, headers=api_headers(client))
    assert first.get_json() == {"stored": True}
    # The outbox resends an older value after the member corrected it: it must not win.
    client.post("/api/v1/metrics/steps", json={**body, "steps": 4100, "client_key":
                                               "outbox-key-0002"}, headers=api_headers(client))
    again = client.post("/api/v1/metrics/steps", json=body, headers=api_headers(client))
    assert again.get_json() == {"stored": False}
    assert [r.steps for r in _steps_rows(session)] == [4100]


def test_bad_step_entries_are_refused_and_change_nothing(client: FlaskClient, session: Session,
                                                         member: User) -> None:
    sign_in(client, "Sunny River")
    today = _today(member)
    cases = [
        ({"day": (today + timedelta(days=1)).isoformat(), "steps": 10}, "day",
         "That day has not happened yet"),
        ({"day": (today - timedelta(days=400)).isoformat(), "steps": 10}, "day",
         "within the last year"),
        ({"day": today.isoformat(), "steps": 100_001}, "steps", "from 0 to 100,000"),
        ({"day": today.isoformat(), "steps": -5}, "steps", "from 0 to 100,000"),
        ({"day": today.isoformat(), "steps": 10, "client_key": "bad key!"}, "client_key",
         "could not read"),
        ({"day": "2026-02-30", "steps": 10}, "day", "expected form"),
    ]
    for body, field, message in cases:
        response = client.post("/api/v1/metrics/steps", json=body, headers=api_headers(client))
        assert response.status_code == 400, body
        error = response.get_json()["error"]
        assert error["field"] == field and message in error["message"], (body, error)
    page = client.post("/tracker/steps", data={"day": today.isoformat(), "steps": "lots",
                                               "csrf_token": csrf_token(client)})
    assert page.status_code == 400 and "whole number" in page.get_data(as_text=True)
    assert _steps_rows(session) == []


def test_a_night_across_midnight_counts_for_the_day_of_waking(
        client: FlaskClient, session: Session, member: User) -> None:
    sign_in(client, "Sunny River")
    wake_day = _today(member) - timedelta(days=1)
    bed = datetime.combine(wake_day - timedelta(days=1), datetime.min.time()).replace(hour=23)
    response = client.post("/api/v1/metrics/sleep", json={
        "bedtime": bed.isoformat(), "wake_time": (bed + timedelta(hours=7, minutes=30)).isoformat(),
        "client_key": "sleep-key-0001"}, headers=api_headers(client))
    assert response.get_json() == {"stored": True}
    (night,) = factories.fresh(session).scalars(select(SleepNight))
    assert night.night == wake_day and night.minutes_asleep == 450
    days = client.get("/api/v1/metrics?days=3").get_json()
    assert days[1]["day"] == wake_day.isoformat()
    assert (days[1]["sleep_minutes"], days[1]["bedtime"], days[1]["wake_time"]) == (
        450, "23:00", "06:30")


def test_a_night_across_the_spring_clock_change_is_an_hour_shorter(
        app: Flask, session: Session, cohort: object) -> None:
    member = factories.make_member(session, cohort=cohort, name="Night Owl",  # type: ignore[arg-type]
                                   timezone="America/New_York")
    now = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    with get_db(app).transaction() as write:
        services.enter_sleep(write, member=member, bedtime=datetime(2026, 3, 7, 23, 0),
                             wake_time=datetime(2026, 3, 8, 7, 0), client_key=None, now=now)
    (night,) = factories.fresh(session).scalars(select(SleepNight))
    assert night.minutes_in_bed == 7 * 60  # 23:00 EST to 07:00 EDT
    assert night.bed_offset_minutes == -5 * 60
    assert night.wake_time.astimezone(ZoneInfo("America/New_York")).hour == 7


def test_bad_sleep_entries_are_refused(client: FlaskClient, session: Session,
                                       member: User) -> None:
    sign_in(client, "Sunny River")
    today = datetime.combine(_today(member), datetime.min.time())
    cases = [
        (today - timedelta(hours=2), today - timedelta(hours=9), "should come after"),
        (today - timedelta(hours=30), today - timedelta(hours=2), "from 30 minutes to 20 hours"),
        (today - timedelta(minutes=40), today - timedelta(minutes=30), "from 30 minutes"),
        (today + timedelta(days=1, hours=1), today + timedelta(days=1, hours=8), "not happened"),
    ]
    for bed, wake, message in cases:
        response = client.post("/api/v1/metrics/sleep", json={
            "bedtime": bed.isoformat(), "wake_time": wake.isoformat()}, headers=api_headers(client))
        assert response.status_code == 400 and message in response.get_json()["error"]["message"]
    assert factories.fresh(session).scalar(select(func.count()).select_from(SleepNight)) == 0


def test_what_the_member_typed_wins_over_a_tracker_and_a_file(
        app: Flask, client: FlaskClient, session: Session, member: User) -> None:
    day = _today(member) - timedelta(days=2)
    with get_db(app).transaction() as write:
        for source, steps in ((Source.IMPORT, 1000), (Source.GOOGLE, 2000), (Source.MANUAL, 3000)):
            services.store_steps(write, member_id=member.id or 0, source=source,
                                 days=[DaySteps(day, steps)], now=utcnow())
    sign_in(client, "Sunny River")
    by_day = {d["day"]: d for d in client.get("/api/v1/metrics?days=7").get_json()}
    assert (by_day[day.isoformat()]["steps"], by_day[day.isoformat()]["steps_source"]) == (
        3000, "manual")


def test_re_storing_the_same_values_changes_nothing_and_publishes_nothing(
        app: Flask, member: User) -> None:
    seen: list[object] = []
    db = get_db(app)
    db.bus.after_commit(StepsSynced, seen.append)
    db.bus.after_commit(SleepSynced, seen.append)
    days = [DaySteps(date(2026, 11, 1), 5000), DaySteps(date(2026, 11, 2), 7000)]
    start = datetime(2026, 11, 1, 23, 0, tzinfo=UTC)
    sleeps = [SleepSession(start, start + timedelta(hours=7), 400, 420),
              SleepSession(start + timedelta(hours=15), start + timedelta(hours=16), 50, 60,
                           is_main=False)]
    for _ in range(2):
        with db.transaction() as write:
            services.store_steps(write, member_id=member.id or 0, source=Source.GOOGLE,
                                 days=days, now=utcnow())
            services.store_sleep(write, member_id=member.id or 0, tz="UTC",
                                 source=Source.GOOGLE, sessions=sleeps, now=utcnow())
    assert seen == [StepsSynced(member.id or 0, "google", (date(2026, 11, 1), date(2026, 11, 2))),
                    SleepSynced(member.id or 0, "google", (date(2026, 11, 2),))]
    with db.session(write=False) as read:
        (night,) = read.scalars(select(SleepNight))
    assert (night.minutes_asleep, night.nap_minutes) == (400, 50)


def test_coaches_and_visitors_cannot_reach_a_members_numbers(
        app: Flask, client: FlaskClient, coach: User, member: User) -> None:
    assert client.get("/api/v1/metrics").status_code == 401
    assert client.get("/tracker").status_code == 302
    sign_in(client, "Coach Rosa")
    assert client.get("/api/v1/metrics").status_code == 403
    response = client.post("/api/v1/metrics/steps", json={"day": "2026-01-01", "steps": 5},
                           headers=api_headers(client))
    assert response.status_code == 403
