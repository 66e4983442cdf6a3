"""Real failures, real processes: database connections killed or cut off under a live server,
and graceful stops of gunicorn (SIGTERM), the job worker (SIGINT) and the in-process worker."""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import redis
import requests
from flask import Flask
from huey import Huey, RedisHuey, SqliteHuey
from sqlalchemy import make_url
from sqlmodel import Session, col, select

from app import create_app
from app.accounts.models import User, UserSession
from app.config import load_config
from app.db import utcnow
from feed.models import FeedItem
from tests.factories import PASSWORD, fresh
from tests.live import BIN, ROOT, LiveServer, api_sign_in, start_live_server
from tests.tcp_proxy import CutMode, TcpProxy

UNAVAILABLE = "Hearten is busy for a moment. Please try again soon."
HTML = {"Accept": "text/html"}
CONNECTIONS = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
SESSION_LOCK = "SELECT id FROM usersession WHERE id = %s FOR UPDATE"
WROTE_ITEMS = ("SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid) WHERE "
               "application_name = %s AND relation = 'feed_item'::regclass "
               "AND mode = 'RowExclusiveLock'")


def _is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgres")


@pytest.fixture
def pg_url(database_url: str) -> str:
    if not _is_postgres(database_url):
        pytest.skip("PostgreSQL only (TEST_DATABASE_URL): server connections to kill and cut off")
    return database_url


def _named(database_url: str, name: str, *, port: int | None = None) -> str:
    """The URL with an application_name to find the app's connections by (and another port)."""
    if not _is_postgres(database_url):
        return database_url
    url = make_url(database_url).update_query_dict({"application_name": name})
    if port is not None:
        url = url.set(host="127.0.0.1", port=port)
    return url.render_as_string(hide_password=False)


def _admin(database_url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(database_url, autocommit=True)


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _count(admin: psycopg.Connection[tuple[object, ...]], sql: str, name: str) -> int:
    row = admin.execute(sql, (name,)).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


def _waiting_on_a_lock(database_url: str, name: str) -> None:
    """Until one of the app's connections waits on the test's lock (SQLite cannot say: a pause)."""
    if not _is_postgres(database_url):
        time.sleep(2.0)
        return
    with _admin(database_url) as admin:
        _wait_for(lambda: _count(admin, "SELECT count(*) FROM pg_stat_activity WHERE "
                                 "application_name = %s AND wait_event_type = 'Lock'", name) > 0,
                  30, "the app reached the lock")


@contextmanager
def _holding_write_lock(database_url: str, postgres_lock: str, *params: object
                        ) -> Iterator[Callable[[], None]]:
    """Hold a lock that makes the app's write wait: SQLite's one write lock, or `postgres_lock`.
    Yields the release."""
    if _is_postgres(database_url):
        pg = psycopg.connect(database_url)
        pg.execute(postgres_lock, params or None)
        release: Callable[[], None] = pg.rollback
        close: Callable[[], None] = pg.close
    else:
        lite = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
        lite.execute("BEGIN IMMEDIATE")
        release = lambda: lite.execute("ROLLBACK") if lite.in_transaction else None  # noqa: E731
        close = lite.close
    try:
        yield release
    finally:
        release()
        close()


def _signed_in(server: LiveServer) -> tuple[requests.Session, dict[str, str]]:
    http = requests.Session()
    assert api_sign_in(http, server.url, "Sunny River", PASSWORD).status_code == 200
    token = http.get(f"{server.url}/api/v1/csrf-token", timeout=5).json()["csrf_token"]
    return http, {"X-CSRFToken": token}


def _stories(session: Session, body: str) -> int:
    return len(fresh(session).exec(select(FeedItem).where(col(FeedItem.body) == body)).all())


# --- the pool ---


def test_each_gunicorn_thread_gets_a_database_connection_up_to_forty_a_process(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DB_POOL_SIZE", "DB_MAX_OVERFLOW", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)

    def limits() -> tuple[int, int, int, int]:
        config = load_config({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x"})
        return (config["DB_POOL_SIZE"], config["DB_MAX_OVERFLOW"], config["DB_POOL_TIMEOUT"],
                config["DB_CONNECT_TIMEOUT"])

    assert limits() == (10, 30, 10, 5)  # 100 threads: 40 connections, most of them for sockets
    monkeypatch.setenv("GUNICORN_THREADS", "24")
    assert limits() == (10, 14, 10, 5)  # one for each of 24 threads
    monkeypatch.setenv("GUNICORN_THREADS", "4")
    assert limits() == (4, 0, 10, 5)
    monkeypatch.setenv("DB_POOL_SIZE", "5")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "50")
    assert limits()[:2] == (5, 50)  # said outright, taken as said


# --- a database that fails ---


@pytest.mark.live
def test_killed_database_connections_are_replaced_without_a_single_error(
        pg_url: str, member: User, tmp_path: Path) -> None:
    name = f"hearten-live-{secrets.token_hex(4)}"
    server = start_live_server(database_url=_named(pg_url, name), instance=tmp_path / "live")
    try:
        http, csrf = _signed_in(server)

        def get(path: str) -> int:
            headers = HTML if not path.startswith("/api/") else {}
            return requests.get(f"{server.url}{path}", cookies=http.cookies, headers=headers,
                                timeout=30).status_code

        paths = ["/home", "/api/v1/me", "/feed", "/api/v1/feed"] * 4
        with ThreadPoolExecutor(8) as pool:  # several connections in the pool
            assert set(pool.map(get, paths)) == {200}
        with _admin(pg_url) as admin:
            killed = _count(admin, "SELECT count(pg_terminate_backend(pid)) FROM "
                            "pg_stat_activity WHERE datname = current_database() AND "
                            "pid <> pg_backend_pid() AND application_name = %s", name)
            assert killed >= 2
            _wait_for(lambda: _count(admin, CONNECTIONS, name) == 0, 10,
                      "the killed backends are gone")

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(get, paths)) == {200}
        posted = http.post(f"{server.url}/api/v1/feed", json={
            "kind": "story", "body": "Still here after the database restarted."},
            headers=csrf, timeout=30)
        assert posted.status_code == 201, posted.text
        assert " 500 " not in server.log()
    finally:
        server.stop()


@pytest.mark.live
@pytest.mark.parametrize("mode", ["refuse", "silence"])
def test_while_the_database_is_out_of_reach_pages_answer_503_soon_and_come_back_by_themselves(
        pg_url: str, member: User, session: Session, tmp_path: Path, mode: CutMode) -> None:
    target = make_url(pg_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    name = f"hearten-live-{secrets.token_hex(4)}"
    server = start_live_server(database_url=_named(pg_url, name, port=proxy.port),
                               instance=tmp_path / "live")
    try:
        http, csrf = _signed_in(server)
        page, api = f"{server.url}/home", f"{server.url}/api/v1/me"
        assert http.get(page, headers=HTML, timeout=30).status_code == 200
        assert http.get(api, timeout=30).status_code == 200

        proxy.cut(mode)
        started = time.monotonic()
        answer = http.get(page, headers=HTML, timeout=30)
        page_took = time.monotonic() - started
        assert answer.status_code == 503 and "text/html" in answer.headers["Content-Type"]
        assert UNAVAILABLE in answer.text
        started = time.monotonic()
        answer = http.get(api, timeout=30)
        api_took = time.monotonic() - started
        assert answer.status_code == 503
        assert answer.json()["error"] == {"code": "unavailable", "message": UNAVAILABLE}
        body = f"Written while the database was away ({mode})."
        refused = http.post(f"{server.url}/api/v1/feed", json={"kind": "story", "body": body},
                            headers=csrf, timeout=30)
        assert refused.status_code == 503
        ready = http.get(f"{server.url}/readyz", timeout=30)
        assert ready.status_code == 503 and ready.json()["database"] == "unavailable"
        # A dead server answers at once; one that went silent within DB_CONNECT_TIMEOUT (5 s).
        assert page_took < 10 and api_took < 10, (page_took, api_took)
        print(f"\n{mode}: 503 after {page_took:.2f} s (page), {api_took:.2f} s (API)")

        proxy.restore()
        started = time.monotonic()
        back = http.get(page, headers=HTML, timeout=30)
        print(f"{mode}: back after {time.monotonic() - started:.2f} s")
        assert back.status_code == 200  # no restart, and the member is still signed in
        assert http.get(api, timeout=30).json()["display_name"] == "Sunny River"
        assert _stories(session, body) == 0  # the refused post left nothing behind
        resent = http.post(f"{server.url}/api/v1/feed", json={"kind": "story", "body": body},
                           headers=csrf, timeout=30)
        assert resent.status_code == 201 and _stories(session, body) == 1
    finally:
        server.stop()
        proxy.close()


@pytest.mark.live
def test_a_post_cut_off_midway_is_answered_503_and_leaves_nothing_half_written(
        pg_url: str, member: User, session: Session, tmp_path: Path) -> None:
    target = make_url(pg_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    name = f"hearten-live-{secrets.token_hex(4)}"
    server = start_live_server(database_url=_named(pg_url, name, port=proxy.port),
                               instance=tmp_path / "live")
    body = "A walk by the river before breakfast."
    form = {"kind": "story", "body": body, "client_key": "once-only-key"}
    try:
        http, csrf = _signed_in(server)
        form["csrf_token"] = csrf["X-CSRFToken"]
        answers: list[requests.Response] = []
        # The post writes its item, then waits for the coach rollups' lock, which the test holds:
        # there the database goes away.
        with _holding_write_lock(pg_url, "LOCK TABLE member_pulse IN EXCLUSIVE MODE"):
            sending = threading.Thread(target=lambda: answers.append(http.post(
                f"{server.url}/feed", data=form, headers=HTML, allow_redirects=False,
                timeout=30)))
            sending.start()
            _waiting_on_a_lock(pg_url, name)
            with _admin(pg_url) as admin:  # by now the item is written, not yet committed
                assert _count(admin, WROTE_ITEMS, name) == 1
            cut_at = time.monotonic()
            proxy.cut("refuse")
            sending.join(15)
            took = time.monotonic() - cut_at
        assert answers and answers[0].status_code == 503, answers
        assert UNAVAILABLE in answers[0].text and took < 5
        print(f"\na post cut off midway: 503 {took:.2f} s after the cut")
        with _admin(pg_url) as admin:  # the abandoned transaction ends on the server
            _wait_for(lambda: _count(admin, CONNECTIONS, name) == 0, 10,
                      "the cut-off connection is gone")
        assert _stories(session, body) == 0

        proxy.restore()
        again = http.post(f"{server.url}/feed", data=form, headers=HTML, allow_redirects=False,
                          timeout=30)
        assert again.status_code == 302  # shared: the key was never taken by the lost attempt
        assert _stories(session, body) == 1
    finally:
        server.stop()
        proxy.close()


def test_an_unreadable_sqlite_database_is_answered_with_503(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder-not-a-database"
    folder.mkdir()
    app: Flask = create_app({"APP_ENV": "testing", "SECRET_KEY": "x",
                             "INSTANCE_PATH": str(tmp_path), "JOBS_IMMEDIATE": True,
                             "DATABASE_URL": f"sqlite:///{folder}"})
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["sid"] = "a signed-in device's token"  # the page has to look it up
    api = client.get("/api/v1/me")
    assert api.status_code == 503
    assert api.get_json()["error"] == {"code": "unavailable", "message": UNAVAILABLE}
    page = client.get("/home", headers=HTML)
    assert page.status_code == 503 and UNAVAILABLE in page.get_data(as_text=True)


# --- graceful stops ---


@pytest.mark.live
def test_on_sigterm_gunicorn_finishes_the_request_in_flight_then_exits(
        database_url: str, member: User, session: Session, tmp_path: Path) -> None:
    name = f"hearten-live-{secrets.token_hex(4)}"
    server = start_live_server(database_url=_named(database_url, name), instance=tmp_path / "live")
    body = "Shared just as the server was told to stop."
    try:
        http, csrf = _signed_in(server)
        answers: list[requests.Response] = []
        with _holding_write_lock(database_url,
                                 "LOCK TABLE member_pulse IN EXCLUSIVE MODE") as release:
            sending = threading.Thread(target=lambda: answers.append(http.post(
                f"{server.url}/api/v1/feed", json={"kind": "story", "body": body},
                headers=csrf, timeout=30)))
            sending.start()
            _waiting_on_a_lock(database_url, name)
            stopping = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            time.sleep(2)
            assert server.process.poll() is None, "gunicorn waits for the request in flight"
            release()
            code = server.process.wait(timeout=30)
            took = time.monotonic() - stopping
        sending.join(5)
        assert answers and answers[0].status_code == 201, answers
        assert code == 0 and took < 20, (code, took, server.log())  # within graceful_timeout
        assert _stories(session, body) == 1
        print(f"\ngunicorn exited {took:.2f} s after SIGTERM (request held 2 s)")
    finally:
        server.stop()


def _old_and_new_sessions(session: Session, member: User) -> tuple[int, int]:
    """Two signed-in devices of the member: one that timed out long ago, one in use."""
    long_ago = utcnow() - timedelta(days=400)
    old = UserSession(token_hash=secrets.token_hex(32), user_id=member.id or 0,
                      created_at=long_ago, last_seen_at=long_ago)
    new = UserSession(token_hash=secrets.token_hex(32), user_id=member.id or 0)
    session.add_all([old, new])
    session.commit()
    return old.id or 0, new.id or 0


def _enqueue_purge(env: dict[str, str]) -> None:
    """Queue the hourly purge of timed-out sessions as the app does, from another process."""
    subprocess.run([str(BIN / "python"), "-c", "from app.accounts.tasks import "
                    "purge_expired_sessions; purge_expired_sessions()"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)


def _taken(queue: Huey) -> bool:
    """The purge is no longer waiting in the queue (periodic jobs may be)."""
    return not any(b"purge_expired_sessions" in item for item in queue.storage.enqueued_items())


def _session_ids(session: Session) -> set[int]:
    return {row.id or 0 for row in fresh(session).exec(select(UserSession))}


@pytest.fixture
def scratch_redis() -> Iterator[str]:
    """An empty Redis database of its own (never flushed whole)."""
    try:
        for number in range(14, 0, -1):
            url = f"redis://127.0.0.1:6379/{number}"
            if redis.Redis.from_url(url).dbsize() == 0:
                break
        else:
            pytest.fail("no empty Redis database to use")
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis must run on 127.0.0.1:6379 for this test (make test starts it): {exc}")
    yield url
    RedisHuey("hearten", url=url).storage.flush_all()


@pytest.mark.live
def test_on_sigint_the_job_worker_finishes_the_job_it_is_running_then_exits(
        database_url: str, member: User, session: Session, tmp_path: Path,
        scratch_redis: str) -> None:
    old, new = _old_and_new_sessions(session, member)
    name = f"hearten-worker-{secrets.token_hex(4)}"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTEST", "TEST_DATABASE", "JOBS_"))}
    env.update({"APP_ENV": "testing", "DATABASE_URL": _named(database_url, name),
                "SECRET_KEY": "worker-test-secret", "INSTANCE_PATH": str(tmp_path),
                "REDIS_URL": scratch_redis})
    queue = RedisHuey("hearten", url=scratch_redis)
    log_path = tmp_path / "worker.log"
    with _holding_write_lock(database_url, SESSION_LOCK, old) as release, \
            log_path.open("wb") as log:
        worker = subprocess.Popen([str(BIN / "huey_consumer"), "app.worker.huey", "-k", "thread",
                                   "-w", "2"], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            _enqueue_purge(env)
            _wait_for(lambda: _taken(queue), 30, "the worker took the job")
            _waiting_on_a_lock(database_url, name)
            stopping = time.monotonic()
            worker.send_signal(signal.SIGINT)
            time.sleep(2)
            assert worker.poll() is None, "the worker waits for its job"
            release()
            code = worker.wait(timeout=60)
            took = time.monotonic() - stopping
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    output = log_path.read_text(errors="replace")
    assert code == 0, output
    assert _session_ids(session) == {new}, output  # the job's work was committed
    print(f"\nhuey_consumer exited {took:.2f} s after SIGINT (job held 2 s)")


@pytest.mark.live
def test_when_gunicorn_stops_the_in_process_job_worker_finishes_its_job(
        database_url: str, member: User, session: Session, tmp_path: Path) -> None:
    old, new = _old_and_new_sessions(session, member)
    name = f"hearten-live-{secrets.token_hex(4)}"
    server = start_live_server(database_url=_named(database_url, name), instance=tmp_path / "live",
                               extra_env={"JOBS_IN_PROCESS": "1", "JOBS_IMMEDIATE": "0"})
    queue = SqliteHuey("hearten", filename=str(tmp_path / "live" / "jobs.db"))
    try:
        with _holding_write_lock(database_url, SESSION_LOCK, old) as release:
            _enqueue_purge(server.env)
            _wait_for(lambda: _taken(queue), 30, "the in-process worker took the job")
            _waiting_on_a_lock(database_url, name)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(2)
            assert server.process.poll() is None, "gunicorn waits for the job"
            release()
            code = server.process.wait(timeout=30)
        assert code == 0, server.log()
        assert _session_ids(session) == {new}, server.log()
    finally:
        server.stop()
