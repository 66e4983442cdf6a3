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


@dataclass(frozen=True)
class SyncProgressed(DomainEvent):
    """A chunk of days was stored; the member's page shows how far the sync has come."""

    member_id: int
    connection_id: int
    days_done: int
    days_total: int


@dataclass(frozen=True)
class ReconnectNeeded(DomainEvent):
    """The platform refused us; the member is asked to connect again (reason: the new status)."""

    member_id: int
    provider: str
    reason: str


@dataclass(frozen=True)
class TrackerDisconnected(DomainEvent):
    """The member disconnected; the grant is to be withdrawn at the platform (token encrypted)."""

    member_id: int
    provider: str
    token_enc: str


@dataclass(frozen=True)
class SyncRequested(DomainEvent):
    """A platform said new data is waiting (a webhook)."""

    member_id: int
    connection_id: int


@dataclass(frozen=True)
class ImportQueued(DomainEvent):
    member_id: int
    import_id: int


@dataclass(frozen=True)
class TrackerConnected(DomainEvent):
    member_id: int
    connection_id: int


@dataclass(frozen=True)
class ImportProgressed(DomainEvent):
    """Part of an imported file was read (share from 0 to 1; 1 when it is stored)."""

    member_id: int
    import_id: int
    share: float


@dataclass(frozen=True)
class ImportFilesDiscarded(DomainEvent):
    """Imports of a deleted account went; any of their files still waiting on disk go too."""

    import_ids: tuple[int, ...]
