"""A small domain event bus: events recorded in a transaction reach side effects only after commit.

Two kinds of subscriber:
- in-transaction handlers run at once, inside the recording session, so derived data (a rollup,
  a progress row) commits or rolls back together with the change;
- after-commit handlers run once the transaction has committed (socket emits, push, jobs), so a
  rolled-back change never broadcasts.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction
from sqlmodel import Session as SQLModelSession

log = logging.getLogger(__name__)

_PENDING = "hearten.pending_events"
_BUS = "hearten.event_bus"
_MARKS = "hearten.savepoint_marks"


@dataclass(frozen=True)
class DomainEvent:
    """Base class of every event; subclasses are frozen dataclasses named in the past tense."""


E = TypeVar("E", bound=DomainEvent)
InTransactionHandler = Callable[[Session, Any], None]
AfterCommitHandler = Callable[[Any], None]


class EventBus:
    """Routes recorded events to their subscribers."""

    def __init__(self) -> None:
        self._in_transaction: dict[type[DomainEvent], list[InTransactionHandler]] = defaultdict(list)
        self._after_commit: dict[type[DomainEvent], list[AfterCommitHandler]] = defaultdict(list)

    def in_transaction(self, event_type: type[E], handler: Callable[[Session, E], None]) -> None:
        """Run `handler(session, event)` inside the transaction that records the event."""
        self._in_transaction[event_type].append(handler)

    def after_commit(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        """Run `handler(event)` once the recording transaction has committed."""
        self._after_commit[event_type].append(handler)

    def attach(self, session: Session) -> None:
        """Let `session` dispatch the events recorded in it through this bus."""
        session.info[_BUS] = self

    def _run_in_transaction(self, session: Session, event: DomainEvent) -> None:
        for handler in self._in_transaction[type(event)]:
            handler(session, event)

    def _run_after_commit(self, events: list[DomainEvent]) -> None:
        for event in events:
            for handler in self._after_commit[type(event)]:
                try:
                    handler(event)
                except Exception:  # a side effect must never undo or hide a committed change
                    log.exception("after-commit handler %s failed for %s",
                                  getattr(handler, "__qualname__", handler), type(event).__name__)


def sqlmodel_session(session: Session) -> SQLModelSession:
    """The session an in-transaction handler receives, typed as the SQLModel session it is."""
    assert isinstance(session, SQLModelSession)  # every session the app hands out is SQLModel's
    return session


def record(session: Session, event: DomainEvent) -> None:
    """Record `event` in `session`'s transaction; it is published when the transaction commits."""
    session.info.setdefault(_PENDING, []).append(event)
    bus = session.info.get(_BUS)
    if isinstance(bus, EventBus):
        bus._run_in_transaction(session, event)


@sa_event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    # Remember how many events were pending when a savepoint began, to drop only its own
    # events if it rolls back.
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[id(transaction)] = len(session.info.get(_PENDING, []))


@sa_event.listens_for(Session, "after_commit")
def _dispatch_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released; the real commit is still to come
    events: list[DomainEvent] = session.info.pop(_PENDING, [])
    session.info.pop(_MARKS, None)
    bus = session.info.get(_BUS)
    if events and isinstance(bus, EventBus):
        bus._run_after_commit(events)


@sa_event.listens_for(Session, "after_soft_rollback")
def _discard_on_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    marks: dict[int, int] = session.info.get(_MARKS, {})
    if previous_transaction.nested:
        mark = marks.pop(id(previous_transaction), None)
        if mark is not None:
            del session.info.get(_PENDING, [])[mark:]
    elif previous_transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_MARKS, None)
