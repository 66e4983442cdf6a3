"""What the coach rollups do when events arrive: in the same transaction as each change to a
member's day, the member's and their cohorts' day rows move with it.

A sync records StepsSynced, and goals then record GoalProgressed for the same days: the days to
recompute are gathered per member and recomputed once, just before the transaction commits."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import col, select

from app.accounts.events import ConsentChanged, MemberJoined, MemberLeftCohort
from app.accounts.models import User
from app.db import utcnow
from app.events import EventBus, sqlmodel_session
from coach import rollups
from feed.events import ActivityRemoved, CheerGiven, CommentAdded, FeedItemPosted
from goals.events import GoalProgressed, GoalVisibilityChanged
from goals.models import GoalDay
from wearables.events import SleepSynced, StepsSynced
from wearables.services import local_today

_DUE = "hearten.coach_days_due"


def _refresh(session: OrmSession, member_id: int, days: tuple[date, ...]) -> None:
    due: dict[int, set[date]] = session.info.setdefault(_DUE, defaultdict(set))
    due[member_id].update(days)


@sa_event.listens_for(OrmSession, "before_commit")
def _refresh_due(session: OrmSession) -> None:
    """Recompute the gathered days inside the transaction, as its last writes."""
    if session.in_nested_transaction():
        return  # a savepoint is being released; the real commit is still to come
    due: dict[int, set[date]] = session.info.pop(_DUE, {})
    for member_id, days in sorted(due.items()):
        rollups.refresh_member_days(sqlmodel_session(session), member_id=member_id, days=days)


@sa_event.listens_for(OrmSession, "after_soft_rollback")
def _forget_due(session: OrmSession, previous: SessionTransaction) -> None:
    if previous.parent is None:  # the whole transaction went; a savepoint only adds spare days
        session.info.pop(_DUE, None)


def _refresh_today(session: OrmSession, member_id: int) -> None:
    member = session.get(User, member_id)
    if member is not None:
        _refresh(session, member_id, (local_today(member, utcnow()),))


def on_steps(session: OrmSession, event: StepsSynced) -> None:
    _refresh(session, event.member_id, event.days)


def on_sleep(session: OrmSession, event: SleepSynced) -> None:
    _refresh(session, event.member_id, event.nights)


def on_goal_progressed(session: OrmSession, event: GoalProgressed) -> None:
    _refresh(session, event.member_id, event.days)


def on_goal_visibility(session: OrmSession, event: GoalVisibilityChanged) -> None:
    """Shared with the coach or taken back: every day of that goal counts again, or no more."""
    days = tuple(sqlmodel_session(session).exec(select(col(GoalDay.day)).where(
        col(GoalDay.goal_id) == event.goal_id)))
    if days:
        _refresh(session, event.member_id, days)


def on_posted(session: OrmSession, event: FeedItemPosted) -> None:
    _refresh_today(session, event.author_id)


def on_cheer(session: OrmSession, event: CheerGiven) -> None:
    _refresh_today(session, event.member_id)


def on_comment(session: OrmSession, event: CommentAdded) -> None:
    _refresh_today(session, event.author_id)


def on_activity_removed(session: OrmSession, event: ActivityRemoved) -> None:
    """Cheers and comments that went with a removed post: their days are counted again."""
    member = session.get(User, event.member_id)
    if member is not None:
        zone = ZoneInfo(member.timezone)
        _refresh(session, event.member_id, tuple({when.astimezone(zone).date()
                                                  for when in event.at}))


def on_joined(session: OrmSession, event: MemberJoined) -> None:
    rollups.member_joined(sqlmodel_session(session), member_id=event.user_id,
                          cohort_id=event.cohort_id)


def on_left(session: OrmSession, event: MemberLeftCohort) -> None:
    rollups.member_joined(sqlmodel_session(session), member_id=event.user_id,
                          cohort_id=event.cohort_id, sign=-1)


def on_consent(session: OrmSession, event: ConsentChanged) -> None:
    rollups.consent_changed(sqlmodel_session(session), member_id=event.member_id,
                            metric=event.metric, before=event.before, after=event.after)


def register(bus: EventBus) -> None:
    bus.in_transaction(StepsSynced, on_steps)
    bus.in_transaction(SleepSynced, on_sleep)
    bus.in_transaction(GoalProgressed, on_goal_progressed)
    bus.in_transaction(GoalVisibilityChanged, on_goal_visibility)
    bus.in_transaction(FeedItemPosted, on_posted)
    bus.in_transaction(CheerGiven, on_cheer)
    bus.in_transaction(CommentAdded, on_comment)
    bus.in_transaction(ActivityRemoved, on_activity_removed)
    bus.in_transaction(MemberJoined, on_joined)
    bus.in_transaction(MemberLeftCohort, on_left)
    bus.in_transaction(ConsentChanged, on_consent)
