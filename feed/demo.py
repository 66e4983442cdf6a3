"""Demo content for `make run`: goals for the demo members, a coach's suggestion, a few posts,
cheers and a pinned tip, so that the feed and the goal pages have something to show."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from app.accounts.models import User
from feed import services
from feed.models import CheerKind, ItemKind
from goals import services as goals
from goals.models import GoalKind, GoalSettings, TemplateCreate, Visibility


def _user(session: Session, name: str) -> User:
    found = session.exec(select(User).where(col(User.name_key) == name.casefold())).one()
    return found


def seed(session: Session, now: datetime) -> None:
    coach = _user(session, "Coach Rosa")
    sunny, oak, heron = (_user(session, n) for n in ("Sunny River", "Quiet Oak", "Blue Heron"))
    cohort_id = services.cohorts_for(session, viewer=coach)[0].id or 0
    goals.create_template(session, coach=coach, cohort_id=cohort_id, now=now, data=TemplateCreate(
        kind=GoalKind.ACTIVE_DAYS, target=4000, per_week=3,
        note="Three days a week with a little more walking. Any pace counts."))
    started = now - timedelta(days=10)
    goals.create_goal(session, member=sunny, now=started, settings=GoalSettings(
        kind=GoalKind.STEPS, target=6000, visibility=Visibility.PEERS))
    goals.create_goal(session, member=oak, now=started, settings=GoalSettings(
        kind=GoalKind.HABIT, title="Salir a la calle", visibility=Visibility.PEERS))
    goals.create_goal(session, member=heron, now=started, settings=GoalSettings(
        kind=GoalKind.SLEEP, target=450))
    tip = services.post(session, author=coach, cohort_id=cohort_id, kind=ItemKind.TIP, now=now,
                        body="When the day feels heavy, a five-minute walk around the block "
                             "counts. Start small.")
    services.pin_tip(session, coach=coach, item_id=tip.id or 0, pinned=True, now=now)
    story = services.post(session, author=heron, cohort_id=cohort_id, kind=ItemKind.STORY,
                          now=now, body="Slept better this week after putting my phone away "
                                        "at ten. Small win!")
    for member, kind in ((sunny, CheerKind.WELL_DONE), (oak, CheerKind.PROUD_OF_YOU)):
        services.give_cheer(session, member=member, item_id=story.id or 0, kind=kind,
                            client_key=None, now=now)
    services.add_comment(session, author=oak, item_id=story.id or 0, now=now, client_key=None,
                         body="¡Qué bien! Voy a probarlo.")
