"""Coach tests: a group of members with steps, sleep, goals and feed activity written through the
same services that syncs, imports, check-ins and the feed use."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
from flask import Flask
from sqlmodel import Session, col, select

from app.accounts import consent
from app.accounts.models import Cohort, ConsentLevel, ConsentMetric, User
from app.db import utcnow
from coach import services
from coach.models import CohortDay
from coach.rollups import COUNTED
from tests import factories
from wearables.models import Source
from wearables.records import DaySteps
from wearables.services import local_today, store_steps, store_untimed_sleep

MIN_GROUP = 5


def share(session: Session, member: User, level: ConsentLevel = ConsentLevel.SUMMARY,
          *, metrics: tuple[ConsentMetric, ...] = (ConsentMetric.STEPS, ConsentMetric.SLEEP)
          ) -> None:
    for metric in metrics:
        consent.set_consent(session, member=member, metric=metric, level=level, now=utcnow())
    session.commit()


def make_group(session: Session, cohort: Cohort, size: int, *, prefix: str = "Walker",
               level: ConsentLevel = ConsentLevel.SUMMARY) -> list[User]:
    people = [factories.make_member(session, cohort=cohort, name=f"{prefix} {n}")
              for n in range(size)]
    for person in people:
        share(session, person, level)
    return people


def steps(session: Session, member: User, values: dict[date, int],
          source: Source = Source.GOOGLE) -> None:
    store_steps(session, member_id=member.id or 0, source=source,
                days=[DaySteps(day=day, steps=n) for day, n in values.items()], now=utcnow())
    session.commit()


def sleep(session: Session, member: User, values: dict[date, int]) -> None:
    store_untimed_sleep(session, member_id=member.id or 0, nights=values, now=utcnow())
    session.commit()


def today_of(member: User) -> date:
    return local_today(member, utcnow())


def days_back(n: int, today: date) -> list[date]:
    return [today - timedelta(days=k) for k in range(n)]


def stored_days(session: Session, cohort_id: int) -> dict[date, dict[str, int]]:
    """The cohort's rollup rows, without the all-zero ones (a raw count has no such days)."""
    factories.fresh(session)
    found = {}
    for row in session.exec(select(CohortDay).where(col(CohortDay.cohort_id) == cohort_id)):
        values = {name: getattr(row, name) for name in COUNTED}
        if any(values.values()):
            found[row.day] = values
    return found


def raw_days(session: Session, cohort_id: int, first: date, last: date
             ) -> dict[date, dict[str, int]]:
    factories.fresh(session)
    per_day, _ = services.raw_per_day(session, cohort_id=cohort_id, first=first, last=last)
    return {day: values for day, values in per_day.items() if any(values.values())}


def assert_rollups_match_raw(session: Session, cohort_id: int, today: date) -> None:
    first = today - timedelta(days=400)
    stored = {day: v for day, v in stored_days(session, cohort_id).items() if day >= first}
    raw = raw_days(session, cohort_id, first, today)
    for day in sorted(set(stored) | set(raw)):
        assert (day, stored.get(day)) == (day, raw.get(day))
    for days in services.WINDOWS:
        assert services.overview(session, cohort_id=cohort_id, days=days, today=today,
                                 min_group=MIN_GROUP) == services.overview_from_raw(
            session, cohort_id=cohort_id, days=days, today=today, min_group=MIN_GROUP)


@pytest.fixture
def now() -> datetime:
    return utcnow()


@pytest.fixture
def in_app(app: Flask) -> Iterator[None]:
    """Services called straight from a test run inside the app, as in a job (after-commit
    handlers need it). Not for tests that send requests: those would share one `g`."""
    with app.app_context():
        yield
