"""Events the feed publishes after commit: for live delivery, and for notifications to use."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from app.events import DomainEvent


@dataclass(frozen=True)
class FeedChanged(DomainEvent):
    """Something changed in a cohort's feed, numbered `seq` in that cohort (for live delivery:
    the number, the item and its cheer counts; content is fetched by each reader, through the
    one visibility rule)."""

    cohort_id: int
    seq: int
    kind: str
    item_id: int
    cheers: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FeedItemPosted(DomainEvent):
    item_id: int
    cohort_id: int
    author_id: int
    kind: str


@dataclass(frozen=True)
class CheerGiven(DomainEvent):
    item_id: int
    cohort_id: int
    member_id: int
    item_author_id: int
    kind: str


@dataclass(frozen=True)
class CommentAdded(DomainEvent):
    comment_id: int
    item_id: int
    cohort_id: int
    author_id: int
    item_author_id: int


@dataclass(frozen=True)
class CrisisFlagged(DomainEvent):
    """Words that may signal a crisis (or a report of self-harm content): the cohort's coaches
    are alerted at once, whatever the hour."""

    cohort_id: int
    member_id: int
    target_type: str  # item, comment or member
    target_id: int
    reason: str       # crisis_words or self_harm_report


@dataclass(frozen=True)
class ActivityRemoved(DomainEvent):
    """A member's cheers or comments went with a post removed for good (its author deleted their
    account): the days they were given on are counted again."""

    member_id: int
    at: tuple[datetime, ...]
