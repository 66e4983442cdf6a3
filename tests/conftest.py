"""Test harness: a fresh database per test (SQLite, or PostgreSQL with TEST_DATABASE_URL),
the Flask app and clients, named actors, a live gunicorn server and Debian's Chromium."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Before the app is imported: the job queue picks its storage from the environment at import.
os.environ["INSTANCE_PATH"] = tempfile.mkdtemp(prefix="hearten-test-")
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlmodel import Session, SQLModel

from app import create_app, migrate
from app.accounts.models import Cohort, Invite, User
from app.db import get_db, make_engine
from tests import factories
from tests.live import LiveServer, start_live_server
from tests.standins import google  # noqa: F401  (the Google stand-in fixture)

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database with every migration applied: a SQLite template file, or the PostgreSQL one."""
    if TEST_DATABASE_URL:
        engine = make_engine(TEST_DATABASE_URL)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        migrate.upgrade(TEST_DATABASE_URL)
        return TEST_DATABASE_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return str(path)


def fresh_database(migrated: str, folder: Path) -> str:
    """An empty, migrated database: PostgreSQL's emptied, or a copy of the SQLite template."""
    if TEST_DATABASE_URL:
        engine = make_engine(TEST_DATABASE_URL)
        names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return TEST_DATABASE_URL
    path = folder / "hearten.db"
    shutil.copyfile(migrated, path)
    return f"sqlite:///{path}"


@pytest.fixture
def database_url(migrated: str, tmp_path: Path) -> str:
    """A fresh, migrated database for this test."""
    return fresh_database(migrated, tmp_path)


@pytest.fixture(autouse=True)
def _fresh_authenticator() -> None:
    """Each test has a fresh database, so the tests' authenticator app starts empty too."""
    factories.AUTHENTICATOR.forget()


@pytest.fixture
def app_config() -> dict[str, object]:
    """Extra settings for the app; a test package overrides this to add its own."""
    return {}


@pytest.fixture
def app(database_url: str, tmp_path: Path, app_config: dict[str, object]) -> Iterator[Flask]:
    app = create_app({
        "APP_ENV": "testing",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",
        "INSTANCE_PATH": str(tmp_path),
        "JOBS_IMMEDIATE": True,
        "PUBLIC_URL": "http://hearten.test",
        **app_config,
    })
    yield app
    get_db(app).dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A database session for arranging data and checking what was stored.

    It starts its transactions deferred, so that an open read never blocks the app's writes;
    `factories.fresh(session)` ends it before checking what the app wrote.
    """
    with get_db(app).session(write=False) as db_session:
        yield db_session


@pytest.fixture
def coach(session: Session) -> User:
    return factories.make_coach(session, name="Coach Rosa")


@pytest.fixture
def cohort(session: Session, coach: User) -> Cohort:
    return factories.make_cohort(session, coach=coach, name="Morning Walkers")


@pytest.fixture
def invite(session: Session, coach: User, cohort: Cohort) -> Invite:
    return factories.make_invite(session, coach=coach, cohort=cohort)


@pytest.fixture
def member(session: Session, cohort: Cohort) -> User:
    return factories.make_member(session, cohort=cohort, name="Sunny River")


@pytest.fixture
def peer(session: Session, cohort: Cohort) -> User:
    return factories.make_member(session, cohort=cohort, name="Quiet Oak")


@pytest.fixture
def outsider(session: Session) -> User:
    """A member of another cohort ("Elsewhere", run by Coach Ben)."""
    other_coach = factories.make_coach(session, name="Coach Ben")
    elsewhere = factories.make_cohort(session, coach=other_coach, name="Elsewhere")
    return factories.make_member(session, cohort=elsewhere, name="Far Away")


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The app under real gunicorn on a free port, sharing this test's database."""
    server = start_live_server(database_url=database_url, instance=tmp_path / "live")
    yield server
    server.stop()
