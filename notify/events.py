"""Events notify publishes after commit: pushes to send, an inbox whose unread count changed."""

from __future__ import annotations

from dataclasses import dataclass

from app.events import DomainEvent


@dataclass(frozen=True)
class DeliveriesQueued(DomainEvent):
    notification_id: int


@dataclass(frozen=True)
class InboxChanged(DomainEvent):
    user_id: int
