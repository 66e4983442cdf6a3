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
