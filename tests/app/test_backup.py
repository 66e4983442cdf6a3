"""`flask db backup` and `flask db restore`: a copy taken while members write restores whole."""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from sqlalchemy import func, make_url, select
from sqlmodel import Session, SQLModel

from app import create_app
from app.accounts import services
from app.accounts.models import Cohort, CohortMembership, User
from app.db import get_db
from feed.models import FeedItem
from tests import factories

COUNTED = (User, Cohort, CohortMembership, FeedItem)


def _app(database_url: str, tmp_path: Path) -> Flask:
    return create_app({"APP_ENV": "testing", "SECRET_KEY": "x", "DATABASE_URL": database_url,
                       "INSTANCE_PATH": str(tmp_path), "JOBS_IMMEDIATE": True})


def _counts(app: Flask) -> dict[str, int]:
    with get_db(app).session(write=False) as session:
        return {model.__name__: session.scalar(select(func.count()).select_from(model)) or 0
                for model in COUNTED}


def _some_data(session: Session) -> None:
    coach = factories.make_coach(session, name="Coach Rosa")
    cohort = factories.make_cohort(session, coach=coach, name="Morning Walkers")
    for name in ("Sunny River", "Quiet Oak", "Tall Pine"):
        factories.make_member(session, cohort=cohort, name=name)


@pytest.fixture
def sqlite_url(database_url: str) -> str:
    if database_url.startswith("postgres"):
        pytest.skip("SQLite's online backup; this run uses PostgreSQL (see the pg_dump test)")
    return database_url


@pytest.fixture
def pg_url(database_url: str) -> str:
    if not database_url.startswith("postgres"):
        pytest.skip("pg_dump and pg_restore; this run uses SQLite")
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        pytest.skip("pg_dump / pg_restore are not installed (apt-get install postgresql-client)")
    return database_url


def test_a_backup_taken_while_members_join_restores_to_a_whole_sound_copy(
        app: Flask, session: Session, sqlite_url: str, tmp_path: Path) -> None:
    _some_data(session)
    cohort_id = session.scalar(select(Cohort.id))
    db = get_db(app)
    stop, joined = threading.Event(), threading.Semaphore(0)
    failures: list[BaseException] = []

    def keep_joining() -> None:
        # Each newcomer and their membership in one transaction: a copy holds both or neither.
        try:
            number = 0
            while not stop.is_set():
                number += 1
                with db.transaction() as write:
                    user = services.create_user(write, display_name=f"Newcomer {number}",
                                                password=factories.PASSWORD)
                    write.flush()
                    write.add(CohortMembership(cohort_id=cohort_id or 0, user_id=user.id or 0))
                joined.release()
        except BaseException as exc:
            failures.append(exc)

    writer = threading.Thread(target=keep_joining)
    writer.start()
    try:
        for _ in range(3):
            assert joined.acquire(timeout=30)
        backed_up = app.test_cli_runner().invoke(args=["db", "backup", str(tmp_path / "copy.db")])
        for _ in range(3):
            assert joined.acquire(timeout=30)
    finally:
        stop.set()
        writer.join()
    assert failures == []
    assert backed_up.exit_code == 0, backed_up.output
    assert (tmp_path / "copy.db").stat().st_mode & 0o077 == 0  # members' data: private

    fresh_path = tmp_path / "restored" / "hearten.db"
    fresh_path.parent.mkdir()
    restored_app = _app(f"sqlite:///{fresh_path}", tmp_path / "restored")
    restored = restored_app.test_cli_runner().invoke(
        args=["db", "restore", str(tmp_path / "copy.db")])
    assert restored.exit_code == 0, restored.output
    get_db(restored_app).dispose()

    counts, now = _counts(restored_app), _counts(app)
    with sqlite3.connect(tmp_path / "copy.db") as snapshot:
        in_copy = {model.__name__: snapshot.execute(
            f'SELECT count(*) FROM "{model.__table__.name}"').fetchone()[0]  # noqa: S608
            for model in COUNTED}
    assert counts == in_copy  # the restore is the snapshot
    assert 4 + 3 <= counts["User"] < now["User"]  # taken in the middle of the writes
    # Everyone (the coach too) is in the group once: no newcomer was copied without theirs.
    assert counts["User"] == counts["CohortMembership"]
    with sqlite3.connect(fresh_path) as restored_db:
        assert restored_db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert restored_db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_restore_never_overwrites_a_database_unless_told_and_refuses_what_is_not_a_backup(
        app: Flask, session: Session, sqlite_url: str, tmp_path: Path) -> None:
    _some_data(session)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "backup", str(tmp_path / "copy.db")]).exit_code == 0
    factories.make_member(session, name="Joined After The Backup")
    before = _counts(app)

    refused = runner.invoke(args=["db", "restore", str(tmp_path / "copy.db")])
    assert refused.exit_code != 0
    assert "already at" in refused.output and "--force" in refused.output
    (tmp_path / "notes.txt").write_text("not a database")
    wrong = runner.invoke(args=["db", "restore", "--force", str(tmp_path / "notes.txt")])
    assert wrong.exit_code != 0 and "not a sound Hearten database" in wrong.output
    missing = runner.invoke(args=["db", "restore", "--force", str(tmp_path / "missing.db")])
    assert missing.exit_code != 0 and "There is no backup at" in missing.output
    assert _counts(app) == before  # nothing lost

    forced = runner.invoke(args=["db", "restore", "--force", str(tmp_path / "copy.db")])
    assert forced.exit_code == 0, forced.output
    assert _counts(app)["User"] == before["User"] - 1


@pytest.fixture
def scratch_database(pg_url: str) -> Iterator[str]:
    """An empty PostgreSQL database of its own, dropped afterwards."""
    name = f"hearten_restore_{secrets.token_hex(4)}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    yield url
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_postgresql_backup_restores_into_a_fresh_database_without_showing_the_password(
        session: Session, pg_url: str, scratch_database: str, tmp_path: Path) -> None:
    _some_data(session)
    # The server trusts local connections, so any password works; it must never be shown.
    with_password = make_url(pg_url).set(password="do-not-show-me")
    source = _app(with_password.render_as_string(hide_password=False), tmp_path / "a")
    dump = tmp_path / "hearten.dump"
    backed_up = source.test_cli_runner().invoke(args=["db", "backup", str(dump)])
    assert backed_up.exit_code == 0, backed_up.output
    assert "do-not-show-me" not in backed_up.output

    target = _app(make_url(scratch_database).set(password="do-not-show-me").render_as_string(
        hide_password=False), tmp_path / "b")
    restored = target.test_cli_runner().invoke(args=["db", "restore", str(dump)])
    assert restored.exit_code == 0, restored.output
    assert "do-not-show-me" not in restored.output
    assert _counts(target) == _counts(source)
    assert _counts(target)["User"] == 4

    again = target.test_cli_runner().invoke(args=["db", "restore", str(dump)])
    assert again.exit_code != 0 and "already holds tables" in again.output
    (tmp_path / "notes.txt").write_text("not a dump")
    wrong = target.test_cli_runner().invoke(args=["db", "restore", "--force",
                                                  str(tmp_path / "notes.txt")])
    assert wrong.exit_code != 0 and "is not a backup" in wrong.output
    assert _counts(target)["User"] == 4  # nothing lost
    for app in (source, target):
        get_db(app).dispose()
    assert {table.name for table in SQLModel.metadata.sorted_tables} <= _tables(scratch_database)


def _tables(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        return {str(row[0]) for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
