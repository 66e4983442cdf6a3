"""The sync engine counts its own requests and never reaches a platform's per-member limit: a backfill
with a small budget stops, waits for the window to end and resumes from its cursor, window after
window, while the stand-ins (over real HTTP, on the same hand-moved clock) count what they see."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlmodel import Session

from app.accounts.models import Cohort, User
from app.db import get_db, utcnow
from app.jobs import huey
from tests import factories
from tests.factories import sign_in
from tests.standins import (
    CLIENT_ID,
    CLIENT_SECRET,
    Standin,
    connect_google,
    fitbit_config,
    google_config,
    serve,
    standin_tokens,
)
from wearables import services
from wearables.models import Connection, DailySteps, SleepNight
from wearables.providers.base import Identity, TokenSet
from wearables.standins import generator
from wearables.standins.fitbit_legacy import create_fitbit_standin
from wearables.standins.google_health import create_google_standin
from wearables.sync import SyncContext, sync_connection
from wearables.tasks import cipher, sync_context

FITBIT_BUDGET = 3  # requests per member per hour (Fitbit's own limit is 150)
GOOGLE_BUDGET = 5  # requests per member per minute (Google's own limit is 300)


class Clock:
    """The time for the stand-ins and the sync engine alike; the test moves it forward."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def move_to(self, moment: datetime) -> None:
        self.now = max(self.now, moment.timestamp())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def slow_google(clock: Clock) -> Iterator[Standin]:
    """Google on the test's clock, refusing a sixth request within any minute."""
    app = create_google_standin(seed=0, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                clock=clock, rate_limit_per_minute=GOOGLE_BUDGET)
    url, server = serve(app)
    yield Standin(url=url, app=app, server=server)
    server.shutdown()


@pytest.fixture
def slow_fitbit(clock: Clock) -> Iterator[Standin]:
    """Fitbit on the test's clock, refusing a fourth request within a clock hour."""
    app = create_fitbit_standin(seed=0, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                clock=clock, rate_limit_per_hour=FITBIT_BUDGET)
    url, server = serve(app)
    yield Standin(url=url, app=app, server=server)
    server.shutdown()


@pytest.fixture
def app_config(slow_google: Standin, slow_fitbit: Standin,
               request: pytest.FixtureRequest) -> dict[str, object]:
    return {**google_config(slow_google.url), **fitbit_config(slow_fitbit.url),
            "GOOGLE_REQUESTS_PER_MINUTE": GOOGLE_BUDGET, "FITBIT_REQUESTS_PER_HOUR": FITBIT_BUDGET,
            "JOBS_IMMEDIATE": False, **getattr(request, "param", {})}


@pytest.fixture
def walker(session: Session, cohort: Cohort) -> User:
    """A member living where the stand-ins' first user lives, so that days line up."""
    return factories.make_member(session, cohort=cohort, name="New Yorker",
                                 timezone=generator.home_zone(0, 0))


def _connect(app: Flask, walker: User, standin: Standin, provider: str, clock: Clock) -> int:
    grant = standin_tokens(standin.url)
    user_id = grant.get("healthUserId") or grant["user_id"]
    with app.app_context(), get_db().transaction() as session:
        connection = services.connect(
            session, member=walker, provider=provider,
            tokens=TokenSet(grant["access_token"], grant["refresh_token"],
                            utcnow() + timedelta(hours=1)),
            identity=Identity(str(user_id)), cipher=cipher(), backfill_days=365, now=clock.utc())
    huey.flush()  # the backfill job that connecting queued: this test runs the syncs itself
    return connection.id or 0


def _context(app: Flask, clock: Clock) -> SyncContext:
    with app.app_context():
        context = sync_context()
    context.now, context.wait = clock.utc, clock.advance
    return context


def _sync_until_done(app: Flask, session: Session, clock: Clock,
                     connection_id: int) -> list[str]:
    """Run the sync, and each time it stops for the budget, move the clock to when it said."""
    outcomes = []
    for _ in range(60):
        with app.app_context():
            outcome = sync_connection(_context(app, clock), connection_id)
        outcomes.append(outcome.status)
        if outcome.status != "rate_limited":
            break
        connection = factories.fresh(session).get(Connection, connection_id)
        assert connection.next_attempt_at is not None and connection.next_attempt_at > clock.utc()
        clock.move_to(connection.next_attempt_at)
    return outcomes


def _counts(session: Session) -> tuple[int, int]:
    fresh = factories.fresh(session)
    return (int(fresh.scalar(select(func.count()).select_from(DailySteps)) or 0),
            int(fresh.scalar(select(func.count()).select_from(SleepNight)) or 0))


def _expected(first: date, last: date) -> tuple[int, int]:
    """Days with steps, and nights with sleep, that the stand-ins hold from first to last."""
    days = list(generator.days(first, last))
    return (sum(1 for day in days if generator.daily_steps(0, 0, day)),
            sum(1 for day in days if generator.sleep_sessions(0, 0, day)))


def test_a_fitbit_backfill_on_a_small_hourly_budget_completes_hour_by_hour_within_it(
        app: Flask, session: Session, walker: User, clock: Clock, slow_fitbit: Standin) -> None:
    connection_id = _connect(app, walker, slow_fitbit, "fitbit", clock)
    start = clock.utc()
    outcomes = _sync_until_done(app, session, clock, connection_id)
    assert outcomes[-1] == "done" and outcomes.count("rate_limited") >= 3, outcomes
    # Each stop waited for the top of the hour, when Fitbit's count starts again.
    assert clock.utc() - start > timedelta(hours=2) and clock.utc().minute == 0
    stats = slow_fitbit.stats()
    assert stats["sent_429"] == 0  # never refused: we never reached the limit
    per_hour = stats["requests_per_hour"][generator.legacy_user_id(0, 0)]
    assert len(per_hour) >= 4 and max(per_hour.values()) <= FITBIT_BUDGET, per_hour
    today = generator.local_today(0, 0)
    assert _counts(session) == _expected(today - timedelta(days=364), today)
    connection = factories.fresh(session).get(Connection, connection_id)
    assert connection.synced_through is not None and connection.synced_through >= today
    assert connection.next_attempt_at is None and connection.sleep_span_days is None


def test_a_google_backfill_on_a_small_budget_never_exceeds_it_in_any_minute(
        app: Flask, session: Session, walker: User, clock: Clock, slow_google: Standin) -> None:
    connection_id = _connect(app, walker, slow_google, "google", clock)
    outcomes = _sync_until_done(app, session, clock, connection_id)
    assert outcomes[-1] == "done" and outcomes.count("rate_limited") >= 3, outcomes
    stats = slow_google.stats()
    assert stats["sent_429"] == 0
    busiest = stats["busiest_minute_by_user"][generator.health_user_id(0, 0)]
    assert busiest <= GOOGLE_BUDGET
    today = generator.local_today(0, 0)
    assert _counts(session) == _expected(today - timedelta(days=364), today)


def test_sleep_pages_smaller_than_planned_narrow_the_span_until_it_fits_the_budget(
        app: Flask, session: Session, walker: User, clock: Clock, slow_google: Standin) -> None:
    # Pages of 8 sleeps: a stream planned from Google's usual 25 a page no longer fits a window.
    slow_google.configure(sleep_page_max=8)
    connection_id = _connect(app, walker, slow_google, "google", clock)
    with app.app_context():
        assert sync_connection(_context(app, clock), connection_id).status == "rate_limited"
    narrowed = factories.fresh(session).get(Connection, connection_id)
    assert narrowed.sleep_span_days is not None and narrowed.synced_through is None
    outcomes = _sync_until_done(app, session, clock, connection_id)
    assert outcomes[-1] == "done", outcomes
    stats = slow_google.stats()
    assert stats["sent_429"] == 0
    assert stats["busiest_minute_by_user"][generator.health_user_id(0, 0)] <= GOOGLE_BUDGET
    today = generator.local_today(0, 0)
    assert _counts(session) == _expected(today - timedelta(days=364), today)
    assert factories.fresh(session).get(Connection, connection_id).sleep_span_days is None


def test_a_budget_stop_resumes_from_the_cursor_without_fetching_days_again(
        app: Flask, session: Session, walker: User, clock: Clock, slow_fitbit: Standin) -> None:
    connection_id = _connect(app, walker, slow_fitbit, "fitbit", clock)
    with app.app_context():
        assert sync_connection(_context(app, clock), connection_id).status == "rate_limited"
    stopped = factories.fresh(session).get(Connection, connection_id)
    assert stopped.synced_through is not None
    paths_before = len(slow_fitbit.stats()["recent_paths"])
    with app.app_context():  # triggered again too early: nothing is asked of Fitbit
        assert sync_connection(_context(app, clock), connection_id).status == "rate_limited"
    assert len(slow_fitbit.stats()["recent_paths"]) == paths_before
    assert stopped.next_attempt_at is not None
    clock.move_to(stopped.next_attempt_at)
    with app.app_context():
        sync_connection(_context(app, clock), connection_id)
    resumed = slow_fitbit.stats()["recent_paths"][paths_before:]
    assert resumed and all(f"/{stopped.synced_through + timedelta(days=1)}/" in path
                           for path in resumed), resumed


@pytest.mark.parametrize("app_config", [{"JOBS_IMMEDIATE": True}], indirect=True)
def test_the_member_sees_the_wait_in_plain_words_when_the_budget_is_used_up(
        client: FlaskClient, session: Session, walker: User, slow_google: Standin) -> None:
    sign_in(client, "New Yorker")
    page = connect_google(client)  # connecting, then the backfill, at once
    assert "waiting a little" in page and "We will carry on by ourselves." in page
    assert "Past days brought in" in page
    stats = slow_google.stats()
    assert stats["sent_429"] == 0
    seen = stats["busiest_minute_by_user"][generator.health_user_id(0, 0)]
    assert seen <= GOOGLE_BUDGET
    (connection,) = factories.fresh(session).scalars(select(Connection))
    assert connection.budget_used == seen  # the identity asked for while connecting counts too
    assert connection.next_attempt_at is not None and connection.next_attempt_at > utcnow()
    with client.application.app_context(), get_db().session(write=False) as read:
        assert services.due_connections(read, now=utcnow(), every=timedelta()) == []
