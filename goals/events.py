"""Events goals publish: progress changed, a milestone reached, a goal's visibility changed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from app.events import DomainEvent


@dataclass(frozen=True)
class GoalProgressed(DomainEvent):
    """A goal's days changed (new data, a check-in, a pause, a new target)."""

    member_id: int
    goal_id: int
    days: tuple[date, ...]
    current_streak: int


@dataclass(frozen=True)
class MilestoneReached(DomainEvent):
    """Recorded once per milestone, however often the data is recomputed."""

    member_id: int
    goal_id: int
    milestone_id: int
    kind: str
    streak: int
    reached_on: date
    visibility: str  # the goal's visibility when it was reached; readers check it again


@dataclass(frozen=True)
class GoalVisibilityChanged(DomainEvent):
    member_id: int
    goal_id: int
    before: str
    after: str
