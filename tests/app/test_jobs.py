"""Background jobs: the periodic upkeep task, and a real Huey worker process running it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select, update
from sqlmodel import Session

from app.accounts.models import User, UserSession
from app.accounts.tasks import purge_expired_sessions
from app.db import utcnow
from app.jobs import huey
from tests import factories
from tests.factories import sign_in
from tests.live import BIN, ROOT


def _age_sessions(session: Session, days: int) -> None:
    session.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(days=days)))
    session.commit()


def _session_count(session: Session) -> int:
    return int(factories.fresh(session).scalar(select(func.count()).select_from(UserSession)) or 0)


def test_the_hourly_upkeep_removes_only_timed_out_sessions(
        app: Flask, session: Session, member: User, peer: User) -> None:
    old, current = app.test_client(), app.test_client()
    sign_in(old, "Sunny River")
    _age_sessions(session, days=40)
    sign_in(current, "Quiet Oak")
    assert _session_count(session) == 2
    assert purge_expired_sessions.call_local() == 1
    assert _session_count(session) == 1
    assert current.get("/api/v1/me").status_code == 200


@pytest.fixture
def worker(database_url: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real `huey_consumer` on the same queue file and database as this test."""
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "worker-secret",
           "APP_ENV": "testing"}
    env.pop("JOBS_IMMEDIATE", None)
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen([str(BIN / "huey_consumer"), "app.worker.huey", "-k", "thread",
                                "-w", "1"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    yield process
    process.terminate()
    process.wait(timeout=15)
    log.close()


@pytest.mark.live
def test_a_queued_job_is_run_by_the_worker_process(
        app: Flask, session: Session, member: User, worker: subprocess.Popen[bytes]) -> None:
    client = app.test_client()
    sign_in(client, "Sunny River")
    _age_sessions(session, days=40)
    huey.immediate = False  # queue for real, as the app does outside tests
    try:
        purge_expired_sessions()
    finally:
        huey.immediate = True
    deadline = time.monotonic() + 30
    while _session_count(session) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _session_count(session) == 0
    assert worker.poll() is None
