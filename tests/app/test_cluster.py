"""The production topology on loopback (scripts/cluster.py, as `make run-cluster` starts it):
nginx in front of two gunicorn processes, a job worker and Redis. Faults are real: a process
killed with SIGKILL, Redis shut down and started again, a worker killed mid-sync."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
import requests
from argon2 import PasswordHasher
from flask import Flask
from sqlmodel import Session, col, select

from benchmarks.feed_broadcast import Cast, seed_cohort
from benchmarks.loadgen import Member, Sockets
from feed.models import FeedCounter, FeedItem
from scripts.cluster import NGINX, ROOT, Cluster, RedisServer, render_nginx
from tests.factories import PASSWORD, fresh
from tests.standins import Standin, consent, google_config
from wearables.models import Connection, DailySteps, ImportRun, ImportStatus

pytestmark = pytest.mark.live
SECRET = "test-secret-key"  # the `app` fixture's, so that its session cookies open the cluster


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def cast(app: Flask) -> Cast:
    with app.app_context():
        return seed_cohort(app, name="Morning walkers", members=12, items=3, prefix="Walker",
                           password_hash=PasswordHasher().hash(PASSWORD))


def _cluster(tmp_path: Path, database_url: str, redis_url: str, **env: str) -> Cluster:
    return Cluster(workdir=tmp_path / "cluster", database_url=database_url, redis_url=redis_url,
                   processes=2, workers=1, threads=60,
                   extra_env={"APP_ENV": "testing", "SECRET_KEY": SECRET, "ACCESS_LOG": "",
                              "JOBS_IMMEDIATE": "0", **env})


@pytest.fixture
def cluster(tmp_path: Path, database_url: str, redis_server: RedisServer,
            google: Standin) -> Iterator[Cluster]:
    google_env = {key: str(value) for key, value in google_config(google.url).items()}
    topology = _cluster(tmp_path, database_url, redis_server.url, BACKFILL_DAYS="120",
                        OAUTHLIB_INSECURE_TRANSPORT="1", **google_env)
    topology.start()
    yield topology
    topology.stop()


def _members(cast: Cast) -> list[Member]:
    return [Member(member_id, cast.cohort_id, cookie) for member_id, cookie in cast.cookies.items()]


def _http(cluster: Cluster, member: Member) -> tuple[requests.Session, str]:
    http = requests.Session()
    http.cookies.set("hearten", member.cookie, domain="127.0.0.1", path="/")
    return http, http.get(f"{cluster.url}/api/v1/csrf-token", timeout=10).json()["csrf_token"]


def _post(cluster: Cluster, member: Member, text: str) -> int:
    """Share a story as the phone's outbox would: a lost answer is sent again with its key."""
    http, token = _http(cluster, member)
    body = {"kind": "story", "body": text, "client_key": os.urandom(8).hex()}
    for _ in range(20):
        try:
            answer = http.post(f"{cluster.url}/api/v1/feed", json=body,
                               headers={"X-CSRFToken": token}, timeout=10)
        except requests.RequestException:
            answer = None
        if answer is not None and answer.status_code == 201:
            return int(answer.json()["id"])
        time.sleep(0.3)
    raise AssertionError(f"the post was not accepted: {answer and answer.text}")


def _open_sockets(cluster: Cluster, n: int) -> int:
    text = requests.get(f"http://127.0.0.1:{cluster.app_ports[n]}/metrics", timeout=5).text
    line = next(line for line in text.splitlines() if line.startswith("hearten_open_sockets "))
    return int(float(line.split()[1]))


def _base_seq(session: Session, cohort_id: int) -> int:
    fresh(session)
    counter = session.get(FeedCounter, cohort_id)
    return counter.last_seq if counter else 0


def _items(session: Session, cohort_id: int) -> set[int]:
    fresh(session)
    return {item_id or 0 for item_id in session.exec(select(FeedItem.id).where(
        col(FeedItem.cohort_id) == cohort_id))}


def test_the_nginx_site_spreads_sockets_by_their_key_and_hides_metrics() -> None:
    site = render_nginx(upstreams=["127.0.0.1:8001", "127.0.0.1:8002"], listen="listen 80;")
    assert "hash $hearten_socket_key consistent;" in site
    assert site.count("server 127.0.0.1:8002") == 2
    assert "location = /metrics {\n        return 404;" in site
    assert "{{" not in site


def test_a_killed_app_process_loses_no_news_its_sockets_reconnect_to_the_other_and_catch_up(
        cluster: Cluster, cast: Cast, session: Session) -> None:
    members = _members(cast)
    sockets = Sockets(cluster.url, members, {cast.cohort_id: _base_seq(session, cast.cohort_id)},
                      processes=1)
    try:
        assert sockets.opened == len(members)
        spread = [_open_sockets(cluster, 0), _open_sockets(cluster, 1)]
        assert sum(spread) == len(members) and min(spread) > 0, spread
        assert requests.get(f"{cluster.url}/metrics", timeout=5).status_code == 404

        before = [_post(cluster, members[n], f"Before the crash, walk {n}.") for n in range(3)]
        os.killpg(cluster.apps[0].pid, signal.SIGKILL)
        cluster.apps[0].stop()
        during = [_post(cluster, members[n], f"Right after the crash, walk {n}.")
                  for n in range(3, 6)]
        deadline = time.monotonic() + 20
        while sockets.connected() < len(members) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sockets.connected() == len(members), "every socket is back, on the other process"
        assert _open_sockets(cluster, 1) == len(members)
        after = [_post(cluster, members[n], f"Later, walk {n}.") for n in range(6, 8)]
        time.sleep(2)
        followers, _arrivals = sockets.report()
    finally:
        sockets.close()
    stored = _items(session, cast.cohort_id)
    assert set(before + during + after) <= stored
    assert len(stored) == 3 + 8, "each post stored once, resends included"
    moved = [f for f in followers if f.connects > 1]
    assert len(moved) == spread[0], "the sockets of the killed process came back"
    for follower in followers:
        assert stored - set(cast.items) <= follower.seen, (
            f"member {follower.member_id} missed {stored - set(cast.items) - follower.seen}")


def test_after_redis_restarts_broadcasts_and_jobs_resume_and_no_job_is_lost(
        cluster: Cluster, cast: Cast, session: Session, redis_server: RedisServer) -> None:
    members = _members(cast)
    sockets = Sockets(cluster.url, members, {cast.cohort_id: _base_seq(session, cast.cohort_id)},
                      processes=1)
    try:
        _post(cluster, members[0], "Before Redis goes away.")
        redis_server.stop()
        # While Redis is away, members still post and bring files in (each file is a job).
        down = [_post(cluster, members[1], "While Redis is away.")]
        brought = [_bring_file(cluster, members[n], day=n + 1) for n in range(2, 5)]
        redis_server.start()
        brought += [_bring_file(cluster, members[n], day=n + 1) for n in range(5, 7)]
        # Each process's Redis listener comes back by itself (python-socketio retries it, with
        # a growing pause): soon every socket hears news live again, and a page that sees a
        # number skipped fetches what it missed.
        heard_again = False
        deadline = time.monotonic() + 30
        while not heard_again and time.monotonic() < deadline:
            last = _post(cluster, members[7], "After Redis is back.")
            time.sleep(1)
            heard = [item for item, _at in sockets.report()[1]].count(last)
            heard_again = heard == len(members)
        time.sleep(1.5)
        followers, _arrivals = sockets.report()
    finally:
        sockets.close()
    assert all(status == 302 for status in brought)
    assert heard_again, "live news flows again after the restart"
    stored = _items(session, cast.cohort_id) - set(cast.items)
    assert set(down) <= stored
    for follower in followers:
        assert stored <= follower.seen
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        fresh(session)
        runs = list(session.exec(select(ImportRun.status)))
        if len(runs) == 5 and all(status == ImportStatus.DONE for status in runs):
            break
        time.sleep(0.5)
    assert runs == [ImportStatus.DONE] * 5, runs


def test_after_redis_restarts_every_page_catches_up_on_news_missed_without_further_news(
        cluster: Cluster, cast: Cast, session: Session, redis_server: RedisServer) -> None:
    """Nothing more is posted after Redis is back: each process's listener, subscribed again,
    tells its own pages to fetch what they missed."""
    members = _members(cast)
    sockets = Sockets(cluster.url, members, {cast.cohort_id: _base_seq(session, cast.cohort_id)},
                      processes=1)
    try:
        assert _wait(lambda: sockets.connected() == len(members), 30)
        redis_server.stop()
        missed = _post(cluster, members[1], "While Redis is away.")
        redis_server.start()
        caught_up = _wait(lambda: all(missed in follower.seen
                                      for follower in sockets.report()[0]), 30)
        followers = sockets.report()[0]
    finally:
        sockets.close()
    assert caught_up, [len(f.seen) for f in followers]
    assert all(follower.connects == 1 for follower in followers)  # not by reconnecting


def _wait(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


def _bring_file(cluster: Cluster, member: Member, *, day: int) -> int:
    http, token = _http(cluster, member)
    answer = http.post(f"{cluster.url}/tracker/import", headers={"X-CSRFToken": token},
                       files={"file": ("steps.csv", f"date,steps\n2026-11-{day:02d},5000\n")},
                       allow_redirects=False, timeout=30)
    return answer.status_code


def _connect_google(cluster: Cluster, member: Member) -> None:
    """The member's path: Connect, consent on Google's page, and back."""
    http, token = _http(cluster, member)
    start = http.post(f"{cluster.url}/tracker/connect/google", data={"csrf_token": token},
                      allow_redirects=False, timeout=10)
    back = http.get(consent(start.headers["Location"], login_hint="walker"),
                    allow_redirects=False, timeout=30)
    assert back.status_code == 302, back.text


def _connection(session: Session, member: Member) -> Connection:
    fresh(session)
    found: Connection = session.exec(select(Connection).where(
        col(Connection.member_id) == member.member_id)).one()
    return found


def _finished(session: Session, member: Member, *, timeout: float) -> Connection:
    deadline = time.monotonic() + timeout
    while True:
        found = _connection(session, member)
        if (not found.sync_owner and found.synced_through is not None
                and (found.synced_through - found.backfill_from).days == 119):
            return found
        assert time.monotonic() < deadline, "the sync did not finish"
        time.sleep(0.2)


def _steps_by_day(session: Session, member: Member) -> dict[date, int]:
    fresh(session)
    rows = list(session.exec(select(DailySteps.day, DailySteps.steps).where(
        col(DailySteps.member_id) == member.member_id, col(DailySteps.source) == "google")))
    found = dict(rows)
    assert len(found) == len(rows), "no day stored twice"
    return found


def test_a_worker_killed_mid_sync_is_replaced_and_the_sync_ends_with_no_day_twice_or_missing(
        cluster: Cluster, cast: Cast, session: Session, google: Standin) -> None:
    control, member = _members(cast)[:2]
    _connect_google(cluster, control)  # the same Google account, synced undisturbed
    _finished(session, control, timeout=60)

    google.configure(latency_ms=1500)  # slow enough to be sure of killing it midway
    _connect_google(cluster, member)
    deadline = time.monotonic() + 60
    while not _connection(session, member).sync_owner and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(2)  # a request or two into the backfill
    owner_midway = _connection(session, member).sync_owner
    stored_midway = len(_steps_by_day(session, member))
    os.killpg(cluster.job_workers[0].pid, signal.SIGKILL)
    cluster.job_workers[0].stop()
    google.configure(latency_ms=0)
    cluster.start_worker(0)  # what systemd's Restart=always does
    _finished(session, member, timeout=90)

    expected = _steps_by_day(session, control)
    assert owner_midway and stored_midway < len(expected), "killed mid-sync"
    assert _steps_by_day(session, member) == expected, "no day missing, none different"


def test_the_production_site_passes_nginx_own_check_with_tls_and_a_redirect_from_http(
        tmp_path: Path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=hearten.example.org", "-keyout", str(tmp_path / "site.key"),
                    "-out", str(tmp_path / "site.pem")], check=True, capture_output=True)
    site = subprocess.run([sys.executable, "scripts/cluster.py", "nginx-config",
                           "--upstream", "127.0.0.1:8001", "--upstream", "127.0.0.1:8002",
                           "--server-name", "hearten.example.org",
                           "--certificate", str(tmp_path / "site.pem"),
                           "--certificate-key", str(tmp_path / "site.key")],
                          cwd=ROOT, check=True, capture_output=True, text=True).stdout
    assert "listen 443 ssl http2;" in site and "return 301 https://$host$request_uri;" in site
    (tmp_path / "hearten.conf").write_text(site.replace("/var/log/nginx/hearten.access.log",
                                                        str(tmp_path / "access.log")))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ include {tmp_path}/hearten.conf; }}\n")
    check = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
