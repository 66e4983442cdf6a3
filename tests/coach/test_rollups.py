"""The coach rollups stay equal to the raw rows after syncs, late data, deletions, consent changes,
membership changes, goals and feed activity; the nightly rebuild finds nothing to fix."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import delete
from sqlmodel import Session, col

from app.accounts import consent
from app.accounts import services as accounts
from app.accounts.models import Cohort, ConsentLevel, ConsentMetric, User
from app.db import utcnow
from coach import rollups, services
from feed import services as feed
from feed.models import CheerKind, ItemKind
from goals import services as goals
from goals.models import GoalChange, GoalKind, GoalSettings, Visibility
from tests import factories
from tests.coach.conftest import (
    MIN_GROUP,
    assert_rollups_match_raw,
    days_back,
    make_group,
    share,
    sleep,
    steps,
    today_of,
)
from wearables import services as wearables
from wearables.models import Connection, DailySteps, Source

pytestmark = pytest.mark.usefixtures("in_app")


def test_synced_steps_and_sleep_make_the_cohort_averages(session: Session, cohort: Cohort) -> None:
    people = make_group(session, cohort, 5)
    today = today_of(people[0])
    for n, person in enumerate(people):
        steps(session, person, dict.fromkeys(days_back(10, today), 1000 * (n + 1)))
        sleep(session, person, dict.fromkeys(days_back(10, today), 400 + 10 * n))

    found = services.overview(session, cohort_id=cohort.id or 0, days=7, today=today,
                              min_group=MIN_GROUP)
    assert found.average_steps.value == 3000  # (1000 + … + 5000) / 5, every day
    assert found.average_sleep_minutes.value == 420
    assert found.sync_coverage.value == 1.0
    assert [point.steps.value for point in found.daily] == [3000] * 7
    assert_rollups_match_raw(session, cohort.id or 0, today)


def test_late_data_and_a_typed_in_number_move_the_rollups_with_them(
        session: Session, cohort: Cohort) -> None:
    people = make_group(session, cohort, 5)
    today = today_of(people[0])
    for person in people:
        steps(session, person, dict.fromkeys(days_back(5, today), 2000))
    # A tracker uploads late: three days ago was busier than first synced.
    steps(session, people[0], {today - timedelta(days=3): 9000})
    # The member typed in today's steps; what they typed wins over the tracker.
    wearables.enter_steps(session, member=people[1], day=today, steps=12000, client_key=None,
                          now=utcnow())
    session.commit()

    found = services.overview(session, cohort_id=cohort.id or 0, days=7, today=today,
                              min_group=MIN_GROUP)
    by_day = {point.day: point.steps.value for point in found.daily}
    assert by_day[today - timedelta(days=3)] == (9000 + 4 * 2000) / 5
    assert by_day[today] == (12000 + 4 * 2000) / 5
    assert_rollups_match_raw(session, cohort.id or 0, today)


def test_deleted_tracker_data_leaves_the_cohort_figures(session: Session, cohort: Cohort) -> None:
    people = make_group(session, cohort, 5)
    today = today_of(people[0])
    for person in people:
        steps(session, person, dict.fromkeys(days_back(5, today), 3000))
    gone = people[0]
    session.add(Connection(member_id=gone.id or 0, provider=Source.GOOGLE,
                           backfill_from=today - timedelta(days=30)))
    session.commit()
    wearables.disconnect(session, member=gone, provider=Source.GOOGLE, keep_data=False)
    session.commit()

    assert_rollups_match_raw(session, cohort.id or 0, today)
    found = services.overview(session, cohort_id=cohort.id or 0, days=7, today=today,
                              min_group=MIN_GROUP)
    assert found.average_steps.suppressed  # four people's steps are left: fewer than five
    assert found.sync_coverage.value == 4 * 5 / (5 * 7)


def test_consent_taken_back_takes_the_members_numbers_out_and_back_in(
        session: Session, cohort: Cohort) -> None:
    people = make_group(session, cohort, 6)
    today = today_of(people[0])
    for n, person in enumerate(people):
        steps(session, person, {today: 1000 * (n + 1)})
    share(session, people[5], ConsentLevel.NOTHING, metrics=(ConsentMetric.STEPS,))

    def average() -> float | None:
        return services.overview(session, cohort_id=cohort.id or 0, days=7, today=today,
                                 min_group=MIN_GROUP).average_steps.value

    assert average() == 3000  # the first five only
    assert_rollups_match_raw(session, cohort.id or 0, today)
    share(session, people[5], ConsentLevel.DETAIL, metrics=(ConsentMetric.STEPS,))
    assert average() == 3500
    assert_rollups_match_raw(session, cohort.id or 0, today)


def test_goals_check_ins_and_feed_activity_count_as_the_member_shared_them(
        session: Session, cohort: Cohort, coach: User) -> None:
    people = make_group(session, cohort, 5)
    today = today_of(people[0])
    now = utcnow()
    shared = goals.create_goal(session, member=people[0], settings=GoalSettings(
        kind=GoalKind.HABIT, title="Drink water", visibility=Visibility.COACH), now=now)
    private = goals.create_goal(session, member=people[1], settings=GoalSettings(
        kind=GoalKind.HABIT, title="Journal"), now=now)
    session.commit()
    goals.check_in(session, member=people[0], goal_id=shared.id or 0, day=None, done=True,
                   client_key=None, now=now)
    goals.check_in(session, member=people[1], goal_id=private.id or 0, day=None, done=True,
                   client_key=None, now=now)
    item = feed.post(session, author=people[2], cohort_id=cohort.id, kind=ItemKind.STORY,
                     body="A slow walk by the river today.", now=now)
    session.commit()
    feed.give_cheer(session, member=people[3], item_id=item.id or 0, kind=CheerKind.WELL_DONE,
                    client_key=None, now=now)
    feed.add_comment(session, author=people[4], item_id=item.id or 0, body="Lovely.",
                     client_key=None, now=now)
    session.commit()

    stored = services.overview(session, cohort_id=cohort.id or 0, days=7, today=today,
                               min_group=MIN_GROUP)
    assert stored.active_members.value == 5
    assert (stored.posts.value, stored.cheers.value, stored.comments.value,
            stored.check_ins.value) == (1, 1, 1, 2)
    assert_rollups_match_raw(session, cohort.id or 0, today)

    # Sharing the private goal with the coach brings its days into the goal figures.
    goals.change_goal(session, member=people[1], goal_id=private.id or 0,
                      change=GoalChange(visibility=Visibility.COACH), now=now)
    session.commit()
    assert_rollups_match_raw(session, cohort.id or 0, today)


def test_a_member_who_leaves_takes_their_numbers_with_them(
        session: Session, cohort: Cohort, coach: User) -> None:
    people = make_group(session, cohort, 6)
    today = today_of(people[0])
    for person in people:
        steps(session, person, dict.fromkeys(days_back(3, today), 4000))
    steps(session, people[5], {today: 10000})
    accounts.remove_member(session, coach=coach, cohort_id=cohort.id or 0,
                           member_id=people[5].id or 0, now=utcnow())
    session.commit()
    assert_rollups_match_raw(session, cohort.id or 0, today)
    found = services.overview(session, cohort_id=cohort.id or 0, days=7, today=today,
                              min_group=MIN_GROUP)
    assert found.average_steps.value == 4000 and found.members == 5


def test_the_nightly_rebuild_finds_nothing_to_fix_and_repairs_what_bypassed_the_services(
        session: Session, cohort: Cohort) -> None:
    people = make_group(session, cohort, 5)
    today = today_of(people[0])
    for person in people:
        steps(session, person, dict.fromkeys(days_back(4, today), 5000))
    assert rollups.rebuild_cohort(session, cohort_id=cohort.id or 0) == 0
    session.commit()

    # A row removed behind the services' back (say, by hand in the database).
    session.execute(delete(DailySteps).where(col(DailySteps.member_id) == people[0].id,
                                             col(DailySteps.day) == today))
    session.commit()
    assert rollups.rebuild_cohort(session, cohort_id=cohort.id or 0) == 1
    session.commit()
    assert_rollups_match_raw(session, cohort.id or 0, today)
    factories.fresh(session)


def test_small_groups_show_fewer_than_k_never_a_number(session: Session, cohort: Cohort) -> None:
    people = make_group(session, cohort, 4)
    today = today_of(people[0])
    for person in people:
        steps(session, person, {today: 6000})
    found = services.overview(session, cohort_id=cohort.id or 0, days=7, today=today,
                              min_group=MIN_GROUP)
    assert found.too_small
    for figure in (found.average_steps, found.average_sleep_minutes, found.goals_met_share,
                   found.active_members, found.sync_coverage, found.posts):
        assert figure.suppressed and figure.value is None
    assert all(point.steps.suppressed for point in found.daily)

    # A fifth member joins but keeps steps private: the group shows, the steps average does not.
    fifth = factories.make_member(session, cohort=cohort, name="Private Pine")
    steps(session, fifth, {today: 6000})
    found = services.overview(session, cohort_id=cohort.id or 0, days=7, today=today,
                              min_group=MIN_GROUP)
    assert not found.too_small
    assert found.average_steps.suppressed
    assert found.sync_coverage.value == 5 / 35
    consent.set_consent(session, member=fifth, metric=ConsentMetric.STEPS,
                        level=ConsentLevel.SUMMARY, now=utcnow())
    session.commit()
    assert services.overview(session, cohort_id=cohort.id or 0, days=7, today=today,
                             min_group=MIN_GROUP).average_steps.value == 6000


def test_flask_coach_rebuild_repairs_a_day_a_member_at_a_time_and_says_so(
        app: Flask, session: Session, cohort: Cohort) -> None:
    people = make_group(session, cohort, 5)
    today = today_of(people[0])
    for person in people:
        steps(session, person, dict.fromkeys(days_back(3, today), 5000))
    runner = app.test_cli_runner()
    assert "1 cohorts rebuilt; 0 cohort days corrected." in runner.invoke(
        args=["coach", "rebuild"]).output
    session.execute(delete(DailySteps).where(col(DailySteps.member_id) == people[1].id,
                                             col(DailySteps.day) == today))
    session.commit()
    assert "1 cohorts rebuilt; 1 cohort days corrected." in runner.invoke(
        args=["coach", "rebuild"]).output
    assert_rollups_match_raw(session, cohort.id or 0, today)
