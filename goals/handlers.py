"""What goals do when events arrive: follow new steps and sleep; tell the member about progress and
milestones (the feed tells the group, when a goal is shared with it)."""

from __future__ import annotations

from sqlalchemy.orm import Session as OrmSession

from app.db import utcnow
from app.events import EventBus, sqlmodel_session
from app.realtime import emit_to_user
from goals import services
from goals.events import GoalProgressed, MilestoneReached
from wearables.events import SleepSynced, StepsSynced


def on_steps_synced(session: OrmSession, event: StepsSynced) -> None:
    services.recompute_days(sqlmodel_session(session), member_id=event.member_id,
                            metric="steps", days=event.days, now=utcnow())


def on_sleep_synced(session: OrmSession, event: SleepSynced) -> None:
    services.recompute_days(sqlmodel_session(session), member_id=event.member_id, metric="sleep",
                            days=event.nights, now=utcnow())


def on_goal_progressed(event: GoalProgressed) -> None:
    emit_to_user(event.member_id, "goal_progress", {
        "goal_id": event.goal_id, "streak": event.current_streak,
        "days": [day.isoformat() for day in event.days]})


def on_milestone_reached(event: MilestoneReached) -> None:
    """The member hears at once; the group hears through the feed, when the goal is shared."""
    emit_to_user(event.member_id, "milestone", {
        "goal_id": event.goal_id, "kind": event.kind, "streak": event.streak,
        "reached_on": event.reached_on.isoformat()})


def register(bus: EventBus) -> None:
    bus.in_transaction(StepsSynced, on_steps_synced)
    bus.in_transaction(SleepSynced, on_sleep_synced)
    bus.after_commit(GoalProgressed, on_goal_progressed)
    bus.after_commit(MilestoneReached, on_milestone_reached)
