"""The data layer: SQLite settings, immediate writes, aware UTC times, migrations matching models."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from app.accounts.models import Cohort, CohortMembership
from app.db import get_db


def test_models_and_migrations_agree(app: Flask) -> None:
    engine = get_db(app).engine
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_sqlite_runs_with_wal_foreign_keys_and_a_busy_timeout(app: Flask) -> None:
    db = get_db(app)
    if not db.is_sqlite:
        pytest.skip("SQLite settings; this run uses PostgreSQL")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_foreign_keys_are_enforced(app: Flask) -> None:
    with pytest.raises(IntegrityError), get_db(app).transaction() as session:
        session.add(CohortMembership(cohort_id=999, user_id=999))


def test_concurrent_writers_wait_their_turn_and_lose_no_update(app: Flask) -> None:
    db = get_db(app)
    with db.transaction() as session:
        cohort = Cohort(name="0")
        session.add(cohort)
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(10):
                with db.transaction() as session:
                    row = session.get(Cohort, cohort.id, with_for_update=True)
                    assert row is not None
                    row.name = str(int(row.name) + 1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.session(write=False) as session:
        assert session.scalar(select(Cohort.name).where(Cohort.id == cohort.id)) == "40"


def test_times_are_stored_and_read_back_as_aware_utc(app: Flask) -> None:
    db = get_db(app)
    madrid_noon = datetime(2026, 3, 29, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with db.transaction() as session:
        cohort = Cohort(name="clock", created_at=madrid_noon)
        session.add(cohort)
    with db.session(write=False) as session:
        stored = session.get(Cohort, cohort.id)
        assert stored is not None
        assert stored.created_at == madrid_noon
        assert stored.created_at.tzinfo == UTC
        assert stored.created_at.hour == 10


def test_naive_times_are_refused(app: Flask) -> None:
    with pytest.raises(Exception, match="naive"), get_db(app).transaction() as session:
        session.add(Cohort(name="naive", created_at=datetime(2026, 1, 1)))
