"""Demo content for the coach views: a few more members (so that group figures show: below five
they stay hidden), five weeks of numbers brought from an export file, everyone's sharing choices."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.accounts import consent, services
from app.accounts.models import CohortMembership, ConsentLevel, ConsentMetric, User
from coach import rollups
from wearables.models import Source
from wearables.records import DaySteps
from wearables.services import local_today, store_steps, store_untimed_sleep

MORE_MEMBERS = ("Calm Lake", "Green Fern", "Bright Path", "Gentle Rain")
PASSWORD = "hearten-demo-member"  # noqa: S105  (printed by make run, like the others)
# What each demo member lets the coach see of steps and sleep, and whether they help research.
SHARING = {
    "Sunny River": (ConsentLevel.DETAIL, True),
    "Quiet Oak": (ConsentLevel.SUMMARY, True),
    "Blue Heron": (ConsentLevel.NOTHING, False),
    "Calm Lake": (ConsentLevel.SUMMARY, True),
    "Green Fern": (ConsentLevel.SUMMARY, True),
    "Bright Path": (ConsentLevel.DETAIL, True),
    "Gentle Rain": (ConsentLevel.SUMMARY, False),
}


def seed(session: Session, now: datetime) -> None:
    coach = services.find_user(session, display_name="Coach Rosa")
    if coach is None:
        return
    cohort = services.cohorts_of(session, user=coach)[0]
    for name in MORE_MEMBERS:
        member = services.create_user(session, display_name=name, password=PASSWORD,
                                      timezone="America/New_York")
        session.add(CohortMembership(cohort_id=cohort.id or 0, user_id=member.id or 0,
                                     joined_at=now - timedelta(days=40)))
    session.flush()
    shuffle = random.Random(8)  # noqa: S311  (demo numbers, not secrets)
    for name, (level, research) in SHARING.items():
        member = session.exec(select(User).where(col(User.display_name) == name)).one()
        for metric in ConsentMetric:
            consent.set_consent(session, member=member, metric=metric, level=level, now=now)
        if research:
            consent.agree_to_research(session, member=member, now=now)
        today = local_today(member, now)
        usual = shuffle.randint(3000, 9000)
        days = [today - timedelta(days=n) for n in range(1, 36)]
        # Green Fern's last week is much quieter than usual: the check-in list notices.
        store_steps(session, member_id=member.id or 0, source=Source.IMPORT, now=now, days=[
            DaySteps(day=day, steps=int(usual * (0.3 if name == "Green Fern" and n < 7 else 1)
                                        * shuffle.uniform(0.7, 1.3)))
            for n, day in enumerate(days)])
        store_untimed_sleep(session, member_id=member.id or 0, now=now, nights={
            day: shuffle.randint(330, 510) for day in days})
    rollups.rebuild_cohort(session, cohort_id=cohort.id or 0)
