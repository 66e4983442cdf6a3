"""Events published when a member's daily metrics change (by sync, import or typing them in)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from app.events import DomainEvent


@dataclass(frozen=True)
class StepsSynced(DomainEvent):
    member_id: int
    source: str
    days: tuple[date, ...]


@dataclass(frozen=True)
class SleepSynced(DomainEvent):
    member_id: int
    source: str
    nights: tuple[date, ...]
