"""Progress follows synced, imported and typed-in data, in the member's own timezone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from app.accounts.models import Cohort, User
from app.db import get_db, utcnow
from goals import services
from goals.events import GoalProgressed, MilestoneReached
from goals.models import Goal, GoalDay, GoalSettings, Milestone
from tests import factories
from tests.factories import api_headers, fresh, sign_in
from tests.standins import connect_google
from wearables import services as metrics
from wearables.models import Source
from wearables.records import DaySteps
from wearables.standins import generator


def _goal(session: Session, member: User, now: datetime, **settings: object) -> Goal:
    goal = services.create_goal(session, member=member, now=now,
                                settings=GoalSettings.model_validate(settings))
    session.commit()
    return goal


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


@pytest.fixture
def walker(session: Session, cohort: Cohort) -> User:
    """A member living where the stand-in's first user lives, so that days line up."""
    return factories.make_member(session, cohort=cohort, name="New Yorker",
                                 timezone=generator.home_zone(0, 0))


def test_progress_follows_a_google_backfill_day_by_day_across_a_daylight_saving_change(
        app: Flask, client: FlaskClient, session: Session, walker: User) -> None:
    started = utcnow() - timedelta(days=45)  # spans the first Sunday of November
    steps = _goal(session, walker, started, kind="steps", target=6000)
    sleep = _goal(session, walker, started, kind="sleep", target=420)
    bedtime = _goal(session, walker, started, kind="bedtime", target=23 * 60, window_minutes=45,
                    per_week=4)
    sign_in(client, "New Yorker")
    connect_google(client)

    by_day = {d["day"]: d for d in client.get("/api/v1/metrics?days=60").get_json()}
    for goal in (steps, sleep, bedtime):
        history = client.get(f"/api/v1/goals/{goal.id}/history?days=60").get_json()
        assert {h["day"] for h in history} == {
            (services.local_today(walker, utcnow()) - timedelta(days=i)).isoformat()
            for i in range(len(history))}
        assert min(h["day"] for h in history) == goal.starts_on.isoformat()
        for day in history:
            metrics_day = by_day[day["day"]]
            if goal.kind == "steps":
                assert day["value"] == metrics_day["steps"]
                assert day["met"] == (day["value"] is not None and day["value"] >= 6000)
            elif goal.kind == "sleep":
                assert day["value"] == metrics_day["sleep_minutes"]
                assert day["met"] == (day["value"] is not None and day["value"] >= 420)
            else:
                expected = metrics_day["bedtime"] and _minutes(metrics_day["bedtime"])
                assert day["value"] == (expected if metrics_day["bedtime"] else None)
    assert any(h["value"] is not None for h in client.get(
        f"/api/v1/goals/{bedtime.id}/history?days=60").get_json())
    # Each milestone once per run of days, however many chunks the backfill came in.
    rows = fresh(session).exec(select(Milestone)).all()
    assert len({(m.goal_id, m.kind, m.reached_on) for m in rows}) == len(rows)
    assert len([m for m in rows if m.kind == "first_met"]) <= 3


@pytest.fixture
def in_app(app: Flask) -> Iterator[None]:
    """Services called directly, as a job would: inside the app's context."""
    with app.app_context():
        yield


@pytest.mark.usefixtures("in_app")
def test_a_late_sync_recomputes_only_the_days_it_changed_without_repeating_a_milestone(
        app: Flask, session: Session, member: User) -> None:
    bus = get_db(app).bus
    reached: list[MilestoneReached] = []
    progressed: list[GoalProgressed] = []
    bus.after_commit(MilestoneReached, reached.append)
    bus.after_commit(GoalProgressed, progressed.append)
    now = utcnow()
    today = services.local_today(member, now)
    goal = _goal(session, member, now - timedelta(days=9), kind="steps", target=5000)
    first = goal.starts_on

    def sync(values: dict[int, int], source: Source = Source.GOOGLE) -> None:
        metrics.store_steps(session, member_id=member.id or 0, source=source, now=utcnow(),
                            days=[DaySteps(day=first + timedelta(days=i), steps=v)
                                  for i, v in values.items()])
        session.commit()

    sync({i: 6000 + i for i in range(7)})
    assert sorted(m.kind for m in reached) == ["first_met", "streak_3", "streak_7"]
    assert fresh(session).get(Goal, goal.id).best_streak == 7  # type: ignore[union-attr]
    untouched = {row.day: row.id for row in session.exec(select(GoalDay))}

    progressed.clear()
    sync({3: 7000, 4: 6004, 5: 6005})  # day 3 changed upstream; 4 and 5 are the same again
    assert [event.days for event in progressed] == [(first + timedelta(days=3),)]
    sync({1: 1200}, source=Source.MANUAL)  # a member's own number wins: day 1 falls short
    sync({7: 9000, 8: 9000, 9: 9000})      # and the days after arrive late
    assert sorted(m.kind for m in reached) == ["first_met", "streak_3", "streak_7"]
    stored = fresh(session).get(Goal, goal.id)
    assert today == first + timedelta(days=9)
    assert stored is not None and (stored.current_streak, stored.best_streak) == (9, 9)
    assert {row.day: row.id for row in session.exec(select(GoalDay))
            if row.day in untouched} == untouched  # rows updated in place, never rebuilt
    assert session.exec(select(Milestone.kind).where(col(Milestone.goal_id) == goal.id)
                        ).all().count("streak_7") == 1


@pytest.mark.usefixtures("in_app")
def test_a_bedtime_holds_steady_across_both_daylight_saving_changes(
        client: FlaskClient, session: Session, cohort: Cohort) -> None:
    madrid = factories.make_member(session, cohort=cohort, name="Night Owl",
                                   timezone="Europe/Madrid")
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    goal = _goal(session, madrid, datetime(2026, 3, 20, 12, tzinfo=UTC), kind="bedtime",
                 target=23 * 60, window_minutes=15, per_week=5)
    nights = [date(2026, 3, 28), date(2026, 3, 29), date(2026, 10, 24), date(2026, 10, 25)]
    for night in nights:  # 23:00 on each side of the spring and autumn changes
        metrics.enter_sleep(session, member=madrid, client_key=None, now=now,
                            bedtime=datetime.combine(night, datetime.min.time()).replace(hour=23),
                            wake_time=datetime.combine(night + timedelta(days=1),
                                                       datetime.min.time()).replace(hour=7))
        session.commit()
    rows = {row.day: (row.value, row.met) for row in fresh(session).exec(
        select(GoalDay).where(col(GoalDay.goal_id) == goal.id))}
    assert rows == {night + timedelta(days=1): (23 * 60, True) for night in nights}


@pytest.mark.usefixtures("in_app")
def test_today_is_the_members_own_day_wherever_they_live(session: Session,
                                                           cohort: Cohort) -> None:
    now = datetime(2026, 11, 26, 12, 30, tzinfo=UTC)
    auckland = factories.make_member(session, cohort=cohort, name="Kiwi", timezone="Pacific/Auckland")
    angeles = factories.make_member(session, cohort=cohort, name="Angeleno",
                                    timezone="America/Los_Angeles")
    for person, expected in ((auckland, date(2026, 11, 27)), (angeles, date(2026, 11, 26))):
        goal = _goal(session, person, now, kind="habit", title="Went outside")
        assert goal.starts_on == expected
        services.check_in(session, member=person, goal_id=goal.id or 0, day=None, done=True,
                          client_key=None, now=now)
        session.commit()
        assert [row.day for row in fresh(session).exec(
            select(GoalDay).where(col(GoalDay.goal_id) == goal.id))] == [expected]
        with pytest.raises(Exception, match="invalid_input"):
            services.check_in(session, member=person, goal_id=goal.id or 0, done=True,
                              day=expected + timedelta(days=1), client_key=None, now=now)
        session.rollback()


def test_disconnecting_and_deleting_tracker_data_takes_it_out_of_progress(
        client: FlaskClient, session: Session, walker: User) -> None:
    goal = _goal(session, walker, utcnow() - timedelta(days=20), kind="steps", target=100)
    sign_in(client, "New Yorker")
    connect_google(client)
    assert fresh(session).exec(select(GoalDay).where(col(GoalDay.goal_id) == goal.id)).first()
    response = client.post("/tracker/disconnect/google", data={
        "keep_data": "no", "csrf_token": factories.csrf_token(client)})
    assert response.status_code == 302
    assert fresh(session).exec(select(GoalDay)).all() == []
    goal_now = client.get(f"/api/v1/goals/{goal.id}", headers=api_headers(client)).get_json()
    assert goal_now["current_streak"] == 0
