"""What goals do when events arrive: follow new steps and sleep; tell the member (and, when the
goal is shared, their group) about progress and milestones."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from app.accounts.models import CohortMembership, CohortRole, User
from app.db import get_db, utcnow
from app.events import EventBus
from app.realtime import emit_to_coaches, emit_to_cohort, emit_to_user
from goals import services
from goals.events import GoalProgressed, MilestoneReached
from goals.models import Goal, GoalStatus, Visibility
from wearables.events import SleepSynced, StepsSynced


def _as_sqlmodel(session: OrmSession) -> Session:
    assert isinstance(session, Session)  # every session the app hands out is SQLModel's
    return session


def on_steps_synced(session: OrmSession, event: StepsSynced) -> None:
    services.recompute_days(_as_sqlmodel(session), member_id=event.member_id, metric="steps", days=event.days,
                            now=utcnow())


def on_sleep_synced(session: OrmSession, event: SleepSynced) -> None:
    services.recompute_days(_as_sqlmodel(session), member_id=event.member_id, metric="sleep",
                            days=event.nights, now=utcnow())


def on_goal_progressed(event: GoalProgressed) -> None:
    emit_to_user(event.member_id, "goal_progress", {
        "goal_id": event.goal_id, "streak": event.current_streak,
        "days": [day.isoformat() for day in event.days]})


def on_milestone_reached(event: MilestoneReached) -> None:
    """The member always hears; the goal's group or coaches only if it is shared with them now
    (its visibility is read again, so a change a moment ago is honoured)."""
    data: dict[str, Any] = {"goal_id": event.goal_id, "kind": event.kind, "streak": event.streak,
                            "reached_on": event.reached_on.isoformat()}
    emit_to_user(event.member_id, "milestone", data)
    with get_db().session(write=False) as session:
        goal = session.get(Goal, event.goal_id)
        member = session.get(User, event.member_id)
        if (goal is None or member is None or goal.status == GoalStatus.ARCHIVED
                or goal.visibility == Visibility.PRIVATE):
            return
        cohort_ids = list(session.exec(select(CohortMembership.cohort_id).where(
            col(CohortMembership.user_id) == event.member_id,
            col(CohortMembership.role) == CohortRole.MEMBER)))
        shared = {**data, "member_id": event.member_id, "display_name": member.display_name}
        for cohort_id in cohort_ids:
            if goal.visibility == Visibility.PEERS:
                emit_to_cohort(cohort_id, "peer_milestone", shared)
            else:
                emit_to_coaches(cohort_id, "peer_milestone", shared)


def register(bus: EventBus) -> None:
    bus.in_transaction(StepsSynced, on_steps_synced)
    bus.in_transaction(SleepSynced, on_sleep_synced)
    bus.after_commit(GoalProgressed, on_goal_progressed)
    bus.after_commit(MilestoneReached, on_milestone_reached)
