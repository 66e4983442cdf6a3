"""Events published by accounts and cohorts."""

from __future__ import annotations

from dataclasses import dataclass

from app.events import DomainEvent


@dataclass(frozen=True)
class MemberJoined(DomainEvent):
    user_id: int
    cohort_id: int
    display_name: str


@dataclass(frozen=True)
class SessionsEnded(DomainEvent):
    """Some of a member's signed-in devices were signed out (logout, reset, or by the member)."""

    user_id: int
    session_ids: tuple[int, ...]


@dataclass(frozen=True)
class MemberLeftCohort(DomainEvent):
    """Someone was taken out of a cohort (a member, a coach or a moderator): its figures no longer
    count them, and their open sockets leave its rooms."""

    user_id: int
    cohort_id: int


@dataclass(frozen=True)
class ConsentChanged(DomainEvent):
    """A member changed what their coaches may see of one metric (levels: nothing, summary, detail)."""

    member_id: int
    metric: str
    before: str
    after: str


@dataclass(frozen=True)
class AccountDeleted(DomainEvent):
    """Someone deleted their own account. Recorded in the deleting transaction before the user
    row goes: each feature's in-transaction handler forgets its share of them then (tokens
    revoked after commit), so that all of it commits or rolls back together.

    `cohort_ids`: the cohorts they were in (already left); `keep_posts`: their stories, tips and
    comments stay, moved to the "former member" account."""

    user_id: int
    display_name: str
    cohort_ids: tuple[int, ...]
    keep_posts: bool
