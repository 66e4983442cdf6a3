"""Domain events: in-transaction handlers share the change's fate; side effects wait for commit."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import select
from sqlmodel import Session

from app.accounts.models import Cohort
from app.db import get_db
from app.events import DomainEvent, record


@dataclass(frozen=True)
class ThingHappened(DomainEvent):
    name: str


def test_after_commit_handlers_run_only_once_the_change_is_committed(app: Flask) -> None:
    db = get_db(app)
    seen: list[str] = []
    db.bus.after_commit(ThingHappened, lambda event: seen.append(event.name))
    with db.session() as session:
        record(session, ThingHappened("first"))
        assert seen == []
        session.commit()
    assert seen == ["first"]


def test_a_rolled_back_change_publishes_nothing(app: Flask) -> None:
    db = get_db(app)
    seen: list[str] = []
    db.bus.after_commit(ThingHappened, lambda event: seen.append(event.name))
    with pytest.raises(RuntimeError), db.transaction() as session:
        record(session, ThingHappened("doomed"))
        raise RuntimeError("something failed after the event was recorded")
    with db.transaction() as session:
        record(session, ThingHappened("kept"))
    assert seen == ["kept"]


def test_in_transaction_handlers_commit_or_roll_back_with_the_change(app: Flask) -> None:
    db = get_db(app)

    def derive(session: Session, event: ThingHappened) -> None:
        session.add(Cohort(name=f"derived from {event.name}"))

    db.bus.in_transaction(ThingHappened, derive)
    with pytest.raises(RuntimeError), db.transaction() as session:
        record(session, ThingHappened("rolled back"))
        session.flush()
        raise RuntimeError("abort")
    with db.transaction() as session:
        record(session, ThingHappened("committed"))
    with db.session(write=False) as session:
        names = list(session.scalars(select(Cohort.name)))
    assert names == ["derived from committed"]


def test_a_failing_side_effect_does_not_undo_the_committed_change(app: Flask) -> None:
    db = get_db(app)
    seen: list[str] = []

    def broken(event: ThingHappened) -> None:
        raise ValueError("the push service is down")

    db.bus.after_commit(ThingHappened, broken)
    db.bus.after_commit(ThingHappened, lambda event: seen.append(event.name))
    with db.transaction() as session:
        session.add(Cohort(name="stays"))
        record(session, ThingHappened("still delivered to the next handler"))
    with db.session(write=False) as session:
        assert session.scalar(select(Cohort.name)) == "stays"
    assert seen == ["still delivered to the next handler"]


def test_savepoints_neither_publish_early_nor_lose_the_outer_events(app: Flask) -> None:
    db = get_db(app)
    seen: list[str] = []
    db.bus.after_commit(ThingHappened, lambda event: seen.append(event.name))
    with db.transaction() as session:
        record(session, ThingHappened("outer"))
        with session.begin_nested():
            session.add(Cohort(name="inside a savepoint"))
        assert seen == []  # releasing a savepoint is not a commit
        with pytest.raises(RuntimeError), session.begin_nested():
            record(session, ThingHappened("undone with its savepoint"))
            raise RuntimeError("abort the savepoint only")
        record(session, ThingHappened("later"))
    assert seen == ["outer", "later"]


def test_a_rolled_back_outer_transaction_drops_events_from_released_savepoints(app: Flask) -> None:
    db = get_db(app)
    seen: list[str] = []
    db.bus.after_commit(ThingHappened, lambda event: seen.append(event.name))
    with pytest.raises(RuntimeError), db.transaction() as session:
        with session.begin_nested():
            record(session, ThingHappened("inside"))
        raise RuntimeError("the whole change fails")
    assert seen == []
