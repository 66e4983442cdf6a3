"""The database: one engine per app, short sessions, the same models on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import DateTime, Engine, create_engine, event, make_url
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session

from app.events import EventBus

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The largest integer every supported database can bind (SQLite's, and PostgreSQL's bigint):
# a larger one in a request would fail in the driver, so the API refuses it first.
LARGEST_INTEGER = 2**63 - 1


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite keeps no zone, so we add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalise_url(url: str) -> str:
    """Let `postgresql://` URLs use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str, *, connect_timeout: int = 5, **kwargs: Any) -> Engine:
    """Create an engine; on PostgreSQL one that notices dropped connections and gives up on an
    unreachable server within `connect_timeout` seconds; on SQLite with WAL, foreign keys, a busy
    timeout and immediate writes."""
    url = normalise_url(url)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 30)
    if not url.startswith("sqlite"):
        # A pooled connection is tested before each use (a restarted server or a killed backend
        # then costs a reconnect, not an error) and replaced after half an hour.
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_recycle", 1800)
        given = make_url(url).query  # settings in the URL itself win
        connect_args = {key: value for key, value in postgres_connect_args(connect_timeout).items()
                        if key not in given}
        return create_engine(url, connect_args=connect_args, **kwargs)
    if url in ("sqlite://", "sqlite:///:memory:"):
        raise ValueError("an in-memory SQLite database cannot be shared; use a file")
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                           **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Leave transaction control to the "begin" listener below (the pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A write transaction takes the write lock up front, so it waits (busy_timeout) instead
        # of failing when it later upgrades from a stale read snapshot.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def postgres_connect_args(timeout: int) -> dict[str, Any]:
    """libpq settings that turn a database that stopped answering into an error within seconds."""
    return {
        # A server that does not finish the handshake (host down, packets dropped).
        "connect_timeout": timeout,
        # A pooled connection whose server vanished without a word: sent data unacknowledged
        # for this long, or keepalive probes unanswered, ends it instead of waiting out TCP's
        # retransmissions (about 15 minutes).
        "tcp_user_timeout": timeout * 1000,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }


class Database:
    """The app's engine and event bus; hands out sessions."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, **engine_options)
        self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self.bus = EventBus()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def session(self, *, write: bool = True) -> Session:
        """A new session whose recorded events go through this database's bus."""
        session = Session(self._write_engine if write else self.engine, expire_on_commit=False)
        self.bus.attach(session)
        return session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write session that commits on success and rolls back on error."""
        session = self.session(write=True)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def get_db(app: Flask | None = None) -> Database:
    """The Database of `app` (or of the current app)."""
    db: Database = (app or current_app).extensions["hearten.db"]
    return db


def get_session() -> Session:
    """The request's session: write-ready for unsafe methods, a plain read otherwise."""
    if "db_session" not in g:
        write = not has_request_context() or request.method not in SAFE_METHODS
        g.db_session = get_db().session(write=write)
    session: Session = g.db_session
    return session


def init_app(app: Flask) -> None:
    """Bind a Database to `app` and close each request's session at teardown."""
    config = app.config
    app.extensions["hearten.db"] = Database(
        config["DATABASE_URL"], pool_size=config["DB_POOL_SIZE"],
        max_overflow=config["DB_MAX_OVERFLOW"], pool_timeout=config["DB_POOL_TIMEOUT"],
        connect_timeout=config["DB_CONNECT_TIMEOUT"], pool_recycle=config["DB_POOL_RECYCLE"])

    @app.teardown_appcontext
    def _close_session(exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            if exc is not None:
                session.rollback()
            session.close()
