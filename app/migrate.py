"""The database's upkeep, driven from the app's config: migrations with Alembic (`flask db
upgrade`, `flask db check`), and backups and restores (`flask db backup`, `flask db restore`)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import URL, inspect, make_url

from app.config import ROOT
from app.db import make_engine, normalise_url


class BackupError(RuntimeError):
    """A backup or restore was not done; the message says why, and what to do."""


def alembic_config(database_url: str) -> AlembicConfig:
    config = AlembicConfig(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Raise if the models differ from what the migrations build."""
    command.check(alembic_config(database_url))


def backup(database_url: str, path: Path) -> None:
    """Write a consistent copy of the database to `path`, safe while the app writes; an older
    file there is replaced only once the new copy is complete."""
    url = make_url(normalise_url(database_url))
    if not path.parent.is_dir():
        raise BackupError(f"The folder {path.parent} does not exist.")
    partial = path.with_name(f".{path.name}.partial")
    # The copy holds members' data: readable by this account only, from its first byte.
    partial.unlink(missing_ok=True)
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        if url.get_backend_name() == "sqlite":
            source = _sqlite_file(url)
            if not source.is_file():
                raise BackupError(f"There is no database at {source} to back up.")
            _sqlite_copy(source, partial)
        else:
            _run("pg_dump", "--format=custom", "--file", str(partial), url=url)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def restore(database_url: str, path: Path, *, force: bool = False) -> None:
    """Put the backup at `path` in place of the database. Refuses a database that already holds
    data unless `force`; the app and the job worker should be stopped first."""
    url = make_url(normalise_url(database_url))
    if not path.is_file():
        raise BackupError(f"There is no backup at {path}.")
    if url.get_backend_name() == "sqlite":
        target = _sqlite_file(url)
        if not target.parent.is_dir():
            raise BackupError(f"The folder {target.parent} does not exist.")
        _check_sqlite_backup(path)
        if target.exists() and not force:
            raise BackupError(
                f"A database is already at {target}. Restoring replaces everything in it: stop "
                "the app and the job worker, then run this again with --force.")
        # Through SQLite rather than a file copy, so that the target's own WAL files stay
        # consistent with it.
        _sqlite_copy(path, target, read_only=True)
        return
    _run("pg_restore", "--list", str(path), url=None,
         refused=f"{path} is not a backup made by `flask db backup` (pg_dump's custom format).")
    if not force and _has_tables(url):
        raise BackupError(
            f"The database {url.database} already holds tables. Restoring replaces them: stop the "
            "app and the job worker, then run this again with --force.")
    # One transaction: a restore that fails half-way leaves the database as it was.
    _run("pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction", str(path),
         url=url)


def _sqlite_file(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("An in-memory SQLite database cannot be backed up or restored.")
    return Path(url.database)


def _sqlite_copy(source: Path, target: Path, *, read_only: bool = False) -> None:
    """SQLite's online backup: one consistent snapshot, while writers carry on (WAL)."""
    name = f"{source.resolve().as_uri()}?mode=ro" if read_only else str(source)
    with closing(sqlite3.connect(name, uri=read_only, timeout=30)) as src, \
            closing(sqlite3.connect(target, timeout=30)) as dst:
        src.backup(dst)


def _check_sqlite_backup(path: Path) -> None:
    """Refuse anything but a sound Hearten database, before the target is touched."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            sound = conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            ours = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                "AND name = 'alembic_version'").fetchone()[0] == 1
    except sqlite3.DatabaseError:
        sound = ours = False
    if not (sound and ours):
        raise BackupError(f"{path} is not a sound Hearten database, so nothing was restored.")


def _has_tables(url: URL) -> bool:
    engine = make_engine(url.render_as_string(hide_password=False), pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            return bool(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _run(tool: str, *args: str, url: URL | None, refused: str | None = None) -> None:
    """Run a PostgreSQL client; the password goes through the environment, never the command
    line (which `ps` shows) nor the output."""
    if shutil.which(tool) is None:
        raise BackupError(f"{tool} is not installed. Install PostgreSQL's client programs (on "
                          "Debian: apt-get install postgresql-client), of the server's version "
                          "or newer.")
    env = dict(os.environ)
    database: list[str] = []
    if url is not None:
        if url.password is not None:
            env["PGPASSWORD"] = str(url.password)
        plain = url.set(drivername="postgresql", password=None)
        database = ["--dbname", plain.render_as_string(hide_password=False)]
    done = subprocess.run([tool, *database, *args], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise BackupError(refused or f"{tool} failed, and nothing was changed: "
                                     f"{done.stderr.strip()}")
