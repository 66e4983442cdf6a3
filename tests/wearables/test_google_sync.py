"""Connect through the Google Health API (its stand-in, over real HTTP), backfill, then keep up."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select, update
from sqlmodel import Session

from app.accounts.models import Cohort, User
from app.db import get_db, utcnow
from tests import factories
from tests.factories import sign_in
from tests.live import BIN, ROOT
from tests.standins import Standin, connect_google
from wearables import services
from wearables.events import StepsSynced
from wearables.models import Connection, DailySteps, SleepNight
from wearables.standins import generator
from wearables.sync import access_token, sync_connection
from wearables.tasks import sync_connection_task, sync_context


@pytest.fixture
def walker(session: Session, cohort: Cohort) -> User:
    """A member living where the stand-in's first user lives, so that days line up."""
    return factories.make_member(session, cohort=cohort, name="New Yorker",
                                 timezone=generator.home_zone(0, 0))


@pytest.fixture
def walker_client(app: Flask, walker: User) -> FlaskClient:
    client = app.test_client()
    sign_in(client, "New Yorker")
    return client


def _expected(walker: User, days: int) -> tuple[int, int]:
    """Days with steps, and nights with sleep, that the stand-in holds for the backfill window."""
    today = services.local_today(walker, utcnow())
    window = [today - timedelta(days=offset) for offset in range(days)]
    steps = sum(1 for day in window if generator.daily_steps(0, 0, day) is not None)
    nights = sum(1 for day in window if generator.sleep_sessions(0, 0, day))
    return steps, nights


def _counts(session: Session) -> tuple[int, int]:
    fresh = factories.fresh(session)
    return (int(fresh.scalar(select(func.count()).select_from(DailySteps)) or 0),
            int(fresh.scalar(select(func.count()).select_from(SleepNight)) or 0))


def test_connecting_backfills_a_year_in_few_requests_then_keeps_up(
        walker_client: FlaskClient, session: Session, walker: User, google: Standin) -> None:
    page = connect_google(walker_client)
    assert "Connected. Your past days are on their way" in page
    assert "Google Health (Fitbit, Pixel Watch)" in page and "working." in page
    assert _counts(session) == _expected(walker, 365)
    calls = google.data_requests()
    rollups = sum(v for k, v in calls.items() if "RollUp" in k)
    sleep_pages = sum(v for k, v in calls.items() if k.startswith("sleep."))
    assert rollups <= 5 and sleep_pages <= 16, calls
    (connection,) = factories.fresh(session).scalars(select(Connection))
    assert connection.synced_through == services.local_today(walker, utcnow())
    assert "access" not in connection.access_token_enc  # stored encrypted

    google.reset()
    with walker_client.application.app_context():
        assert sync_connection_task(connection.id).get() == "done"
    calls = google.data_requests()
    assert sum(calls.values()) == 2, calls  # one roll-up, one sleep page: the last 3 days again
    assert _counts(session) == _expected(walker, 365)


def test_a_refused_consent_changes_nothing(walker_client: FlaskClient, session: Session,
                                           google: Standin) -> None:
    page = connect_google(walker_client, allow=False)
    assert "You chose not to connect. That is fine" in page
    assert factories.fresh(session).scalars(select(Connection)).all() == []


def test_ten_concurrent_syncs_make_exactly_one_token_refresh(
        app: Flask, walker_client: FlaskClient, session: Session, google: Standin) -> None:
    connect_google(walker_client)
    session.execute(update(Connection).values(token_expires_at=utcnow() - timedelta(minutes=1)))
    session.commit()
    google.configure(expire_access_tokens=True)
    google.reset()

    def run(_: int) -> str:
        with app.app_context():
            return sync_connection(sync_context(), 1).status

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(run, range(10)))
    # Triggers that overlap a running sync do nothing; one that comes after it syncs again.
    assert set(outcomes) <= {"done", "already running"} and "done" in outcomes
    stats = google.stats()
    assert stats["refresh_grants"] == 1 and stats["refused_refreshes"] == 0


def test_the_refresh_lock_alone_lets_one_of_ten_callers_refresh(
        app: Flask, walker_client: FlaskClient, session: Session, google: Standin) -> None:
    connect_google(walker_client)
    session.execute(update(Connection).values(token_expires_at=utcnow() - timedelta(minutes=1)))
    session.commit()
    google.reset()

    def token(_: int) -> str:
        with app.app_context():
            return access_token(sync_context(), 1)

    with ThreadPoolExecutor(max_workers=10) as pool:
        tokens = set(pool.map(token, range(10)))
    assert len(tokens) == 1  # everyone got the one fresh token
    stats = google.stats()
    assert stats["refresh_grants"] == 1 and stats["refused_refreshes"] == 0


def test_a_token_refresh_holds_no_database_lock_while_it_waits_on_the_platform(
        app: Flask, walker: User, walker_client: FlaskClient, session: Session,
        google: Standin) -> None:
    connect_google(walker_client)
    session.execute(update(Connection).values(token_expires_at=utcnow() - timedelta(minutes=1)))
    session.commit()
    google.reset()
    google.configure(latency_ms=1500)  # the token endpoint answers slowly
    tokens: list[str] = []

    def fetch_token() -> None:
        with app.app_context():
            tokens.append(access_token(sync_context(), 1))

    refresher = threading.Thread(target=fetch_token)
    refresher.start()
    deadline = time.monotonic() + 5
    while not factories.fresh(session).get(Connection, 1).refresh_owner:  # the claim is taken
        assert time.monotonic() < deadline
        time.sleep(0.01)
    second = threading.Thread(target=fetch_token)  # arrives while the refresh is under way
    second.start()
    began = time.monotonic()
    typed = walker_client.post("/api/v1/metrics/steps", headers=factories.api_headers(
        walker_client), json={"day": services.local_today(walker, utcnow()).isoformat(),
                              "steps": 4321})
    took = time.monotonic() - began
    assert typed.status_code == 200 and refresher.is_alive()  # written while Google thinks
    assert took < 1.0, took
    refresher.join(10)
    second.join(10)
    google.configure(latency_ms=0)
    assert len(tokens) == 2 and tokens[0] == tokens[1]  # the waiter got the refreshed token
    stats = google.stats()
    assert stats["refresh_grants"] == 1 and stats["refused_refreshes"] == 0
    connection = factories.fresh(session).get(Connection, 1)
    assert connection.refresh_owner == "" and connection.refresh_claimed_until is None


def test_a_token_the_platform_refused_is_refreshed_once_even_if_it_looks_fresh(
        app: Flask, walker_client: FlaskClient, session: Session, google: Standin) -> None:
    connect_google(walker_client)
    google.configure(expire_access_tokens=True)  # Google turns the current token away early
    google.reset()
    with app.app_context():
        assert sync_connection(sync_context(), 1).status == "done"
        current = access_token(sync_context(), 1)
        assert access_token(sync_context(), 1, refused="an older token") == current  # no refresh
    assert google.stats()["refresh_grants"] == 1


def test_a_refused_refresh_asks_the_member_to_reconnect_and_stops_retrying(
        app: Flask, walker_client: FlaskClient, session: Session, google: Standin) -> None:
    connect_google(walker_client)
    session.execute(update(Connection).values(token_expires_at=utcnow() - timedelta(minutes=1)))
    session.commit()
    google.configure(revoke_refresh_tokens=True)
    with app.app_context():
        assert sync_connection(sync_context(), 1).status == "needs_reconnect"
        assert sync_connection(sync_context(), 1).status == "skipped"
        with get_db().session(write=False) as read:
            assert services.due_connections(read, now=utcnow(), every=timedelta()) == []
    page = walker_client.get("/tracker").get_data(as_text=True)
    assert "please connect again" in page
    # Connecting again continues the same history: nothing duplicated.
    before = _counts(session)
    connect_google(walker_client)
    assert _counts(session) == before


def test_a_burst_of_429s_is_waited_out_and_the_sync_completes(
        app: Flask, walker_client: FlaskClient, session: Session, walker: User,
        google: Standin) -> None:
    connect_google(walker_client)
    session.execute(update(Connection).values(synced_through=None))  # backfill it all again
    session.commit()
    google.configure(fail_next=[429, 429, 429])
    waits: list[float] = []
    with app.app_context():
        context = sync_context()
        context.wait = waits.append
        assert sync_connection(context, 1).status == "done"
    assert google.stats()["sent_429"] == 3 and waits == [1.0, 1.0, 1.0]  # Retry-After honoured
    assert _counts(session) == _expected(walker, 365)


def test_a_long_retry_after_reschedules_instead_of_pushing_past_the_limit(
        app: Flask, walker_client: FlaskClient, session: Session, google: Standin) -> None:
    connect_google(walker_client)
    session.execute(update(Connection).values(synced_through=None))
    session.commit()
    google.configure(rate_limit_per_minute=4)
    google.reset()
    with app.app_context():
        assert sync_connection(sync_context(), 1).status == "rate_limited"
    assert google.stats()["sent_429"] == 1  # one refusal, then we stopped asking
    (connection,) = factories.fresh(session).scalars(select(Connection))
    assert connection.next_attempt_at is not None and connection.next_attempt_at > utcnow()
    assert "the service asked us to slow down" in walker_client.get("/tracker").get_data(
        as_text=True)
    with app.app_context(), get_db().session(write=False) as read:
        assert services.due_connections(read, now=utcnow(), every=timedelta()) == []


def test_disconnecting_revokes_and_can_keep_or_delete_the_data(
        walker_client: FlaskClient, session: Session, google: Standin) -> None:
    connect_google(walker_client)
    kept = walker_client.post("/tracker/disconnect/google", data={
        "keep_data": "yes", "csrf_token": factories.csrf_token(walker_client)},
        follow_redirects=True)
    assert "Your numbers so far are kept" in kept.get_data(as_text=True)
    assert google.stats()["revocations"] == 1
    assert _counts(session)[0] > 300
    connect_google(walker_client)
    changed: list[StepsSynced] = []
    get_db(walker_client.application).bus.after_commit(StepsSynced, changed.append)
    walker_client.post("/tracker/disconnect/google", data={
        "keep_data": "no", "csrf_token": factories.csrf_token(walker_client)})
    assert _counts(session) == (0, 0)
    assert google.stats()["revocations"] == 2
    # Deleted days are published as changed, so that anything computed from them follows.
    assert len(changed) == 1 and len(changed[0].days) > 300


def _rows(session: Session) -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
    fresh = factories.fresh(session)
    steps = {(r.day, r.steps, r.source) for r in fresh.scalars(select(DailySteps))}
    nights = {(r.night, r.minutes_asleep, r.minutes_in_bed, r.nap_minutes, r.bedtime)
              for r in fresh.scalars(select(SleepNight))}
    return steps, nights


@pytest.mark.live
def test_a_backfill_killed_midway_resumes_to_exactly_the_rows_of_an_uninterrupted_run(
        app: Flask, walker_client: FlaskClient, session: Session, google: Standin,
        database_url: str, tmp_path: Path) -> None:
    connect_google(walker_client)
    uninterrupted = _rows(session)
    session.execute(update(Connection).values(synced_through=None))
    session.execute(delete(DailySteps))
    session.execute(delete(SleepNight))
    session.commit()
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path),
           "SECRET_KEY": "test-secret-key", "FLASK_APP": "wsgi.py", "APP_ENV": "testing",
           **{key: str(value) for key, value in app.config.items()
              if key.startswith("GOOGLE_")}}
    command = [str(BIN / "flask"), "wearables", "sync", "--member", "New Yorker"]
    google.configure(latency_ms=250)
    log = (tmp_path / "sync.log").open("w")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        (connection,) = factories.fresh(session).scalars(select(Connection))
        if connection.synced_through is not None:
            break
        time.sleep(0.05)
    process.kill()  # as a crash would: no clean-up, mid-way through the backfill
    process.wait()
    log.close()
    partial = _rows(session)
    assert 0 < len(partial[0]) < len(uninterrupted[0]), (tmp_path / "sync.log").read_text()
    google.configure(latency_ms=0)
    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert "done" in rerun.stdout
    assert _rows(session) == uninterrupted


def test_each_day_says_where_its_numbers_came_from_and_when_they_were_synced(
        walker_client: FlaskClient, session: Session, walker: User, google: Standin) -> None:
    page = connect_google(walker_client)
    assert "from Google, synced 1 minute ago" in page
    today = services.local_today(walker, utcnow())
    walker_client.post("/api/v1/metrics/steps", headers=factories.api_headers(walker_client),
                       json={"day": today.isoformat(), "steps": 1234})
    page = walker_client.get("/tracker").get_data(as_text=True)
    assert "you typed this in 1 minute ago" in page  # what the member typed wins, and says so
    days = walker_client.get("/api/v1/metrics?days=2").get_json()
    assert days[-1]["steps_source"] == "manual" and days[-1]["steps_synced_at"]
    assert days[0]["steps_source"] == "google" and days[0]["sleep_synced_at"]


def test_a_value_read_again_unchanged_counts_as_synced_again(
        app: Flask, walker_client: FlaskClient, session: Session, walker: User,
        google: Standin) -> None:
    connect_google(walker_client)
    two_days_ago = utcnow() - timedelta(days=2)
    session.execute(update(DailySteps).values(updated_at=two_days_ago))
    session.execute(update(SleepNight).values(updated_at=two_days_ago))
    session.commit()
    with app.app_context():
        assert sync_connection(sync_context(), 1).status == "done"  # re-reads the last 3 days
    days = {row.day: row.updated_at for row in factories.fresh(session).scalars(
        select(DailySteps))}
    today = services.local_today(walker, utcnow())
    recent = [day for day in days if day > today - timedelta(days=3)]
    assert recent and all(utcnow() - days[day] < timedelta(minutes=1) for day in recent)
    assert all(days[day] == two_days_ago for day in days if day <= today - timedelta(days=3))
    page = walker_client.get("/tracker").get_data(as_text=True)
    assert "from Google, synced 1 minute ago" in page and "from Google, synced 2 days ago" in page


def test_the_sync_time_is_said_in_the_members_language(
        session: Session, cohort: Cohort, google: Standin, app: Flask) -> None:
    factories.make_member(session, cohort=cohort, name="Lectora", language="es",
                          timezone=generator.home_zone(0, 0))
    client = app.test_client()
    sign_in(client, "Lectora")
    page = connect_google(client)
    assert "de Google, sincronizado hace 1 minuto" in page
