"""The production topology under load, and under faults: nginx, gunicorn processes, a job worker,
PostgreSQL and Redis, all on loopback (scripts/cluster.py starts them as `make run-cluster` does).

    .venv/bin/python benchmarks/cluster_load.py [--sockets 2000] [--rate 200] [--seconds 30]
                                                [--cohort-size 20] [--part all|load|faults]

load    --sockets members' sockets (spread by nginx over the app processes) and --rate mixed HTTP
        requests a second (feed and pages, goals, cheers, posts) for --seconds, on 2 processes
        and then on 1: HTTP p50/p95/p99, broadcast p50/p99 (a post's send to its arrival at each
        socket of the group), errors, and the ratios. Targets on 2 processes: HTTP p95 <= 100 ms,
        broadcast p99 <= 300 ms, 0 errors.
faults  (a) one app process killed (SIGKILL) mid-load: its sockets reconnect through nginx to the
        other and catch up; every socket's items compared with the database.
        (b) Redis restarted mid-load while members bring CSV files in (a job each): broadcasts
        resume, and every import is done.
        (c) the job worker killed (SIGKILL) mid-backfill and started again, as systemd's
        Restart=always does: the sync is taken up again, and the member's days equal those of an
        uninterrupted sync of the same account, with no day twice and none missing.

A fresh PostgreSQL database (dropped at the end) and a private Redis (with its append-only file,
as a job queue's Redis should have) per run. Figures only; not a test. Bounded: about 5 minutes.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from argon2 import PasswordHasher
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Flask
from sqlalchemy import func
from sqlmodel import col, select
from werkzeug.serving import make_server

from app import create_app
from app.db import get_db
from benchmarks.feed_broadcast import PASSWORD, seed_cohort
from benchmarks.loadgen import FollowerReport, HttpReport, Member, Sockets, percentile, start_http
from feed.models import FeedCounter, FeedItem
from scripts.cluster import Cluster, RedisServer, drop_database, ensure_database, free_port
from tests.standins import CLIENT_ID, CLIENT_SECRET, consent, google_config
from wearables.models import Connection, DailySteps, ImportRun, ImportStatus, SleepNight
from wearables.standins.google_health import create_google_standin

SECRET_KEY = "cluster-load-bench"  # noqa: S105  (the benchmark's own servers)
TOKEN_KEY = Fernet.generate_key().decode()  # tracker tokens at rest, for this run only


@dataclass
class Figures:
    name: str
    processes: int
    sockets: int = 0
    connect_s: float = 0.0
    requests: int = 0
    http_p50: float = float("nan")
    http_p95: float = float("nan")
    http_p99: float = float("nan")
    errors: int = 0
    retried: int = 0
    posts: int = 0
    stored: int = 0
    bcast_p50: float = float("nan")
    bcast_p99: float = float("nan")
    live: int = 0
    expected: int = 0
    missing: int = 0
    reconnected: int = 0
    caught_up: int = 0
    cpu_ms: float = float("nan")  # app processes' CPU time per HTTP request (sockets included)
    notes: list[str] = field(default_factory=list)


def _cpu(ms: float) -> str:
    return "-" if ms != ms else f"{ms:.1f}"


def _ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:.0f}"


# --- the world ---


def seed(app: Flask, *, members: int, cohort_size: int) -> tuple[list[Member], dict[int, list[int]]]:
    """Groups of `cohort_size` members, each signed in (a session cookie), with a few posts."""
    with app.app_context():
        people: list[Member] = []
        items: dict[int, list[int]] = {}
        password_hash = PasswordHasher().hash(PASSWORD)
        for n in range(members // cohort_size):
            cast = seed_cohort(app, name=f"Group {n}", members=cohort_size, items=5,
                               prefix=f"Walker{n}x", password_hash=password_hash)
            items[cast.cohort_id] = cast.items
            people.extend(Member(member_id, cast.cohort_id, cookie)
                          for member_id, cookie in cast.cookies.items())
    return people, items


def feed_state(app: Flask) -> tuple[dict[int, int], int]:
    """Each group's last sequence number, and the newest item id."""
    with app.app_context(), get_db(app).session(write=False) as session:
        seqs = {row.cohort_id: row.last_seq for row in session.exec(select(FeedCounter))}
        newest = session.exec(select(func.max(FeedItem.id))).one() or 0
    return seqs, int(newest)


def items_since(app: Flask, newest: int) -> dict[int, set[int]]:
    with app.app_context(), get_db(app).session(write=False) as session:
        rows = session.exec(select(FeedItem.id, FeedItem.cohort_id).where(
            col(FeedItem.id) > newest))
        found: dict[int, set[int]] = defaultdict(set)
        for item_id, cohort_id in rows:
            found[cohort_id].add(item_id or 0)
    return found


def app_cpu_seconds(cluster: Cluster) -> float:
    """CPU time used so far by the app processes' gunicorn workers (from /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for app in cluster.apps:
        if not app.alive():
            continue
        children = Path(f"/proc/{app.pid}/task/{app.pid}/children").read_text().split()
        for pid in [str(app.pid), *children]:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def open_sockets(cluster: Cluster) -> list[int | None]:
    """hearten_open_sockets of each app process, read from its own /metrics."""
    counts: list[int | None] = []
    for port, app in zip(cluster.app_ports, cluster.apps, strict=True):
        if not app.alive():
            counts.append(None)
            continue
        try:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
        except requests.RequestException:
            counts.append(None)  # too busy to answer its scraper
            continue
        line = next((line for line in text.splitlines()
                     if line.startswith("hearten_open_sockets ")), "")
        counts.append(int(float(line.split()[1])) if line else None)
    return counts


# --- one run: sockets + HTTP, with an optional fault in the middle ---


def run(cluster: Cluster, app: Flask, members: list[Member], items: dict[int, list[int]], *,
        name: str, rate: float, seconds: float, fault: Any = None,
        fault_at: float = 0.0) -> Figures:
    figures = Figures(name=name, processes=cluster.processes)
    seqs, _newest = feed_state(app)
    sockets = Sockets(cluster.url, members, {c: seqs.get(c, 0) for c in items})
    figures.sockets, figures.connect_s = sockets.opened, sockets.connect_seconds
    spread = open_sockets(cluster)
    figures.notes.append(f"sockets per process: {spread}")
    callers = members[:: max(1, len(members) // 200)]
    # A running service has its templates compiled and its pools filled: warm up first.
    start_http(cluster.url, callers, items, rate=10, seconds=4, seed=0)()
    _seqs, newest = feed_state(app)  # what the measured run posts comes after this
    cpu_before = app_cpu_seconds(cluster)
    wait = start_http(cluster.url, callers, items, rate=rate, seconds=seconds,
                      seed=sum(map(ord, name)))  # each run its own members post and cheer
    if fault is not None:
        time.sleep(fault_at)
        figures.notes.append(fault())
    report = wait()
    if fault is not None:  # the sockets of a killed process are back before anything is counted
        deadline = time.monotonic() + 90
        while sockets.connected() < sockets.opened and time.monotonic() < deadline:
            time.sleep(1)
        figures.notes.append(f"sockets connected again: {sockets.connected()} of {sockets.opened}")
    figures.cpu_ms = (app_cpu_seconds(cluster) - cpu_before) * 1000 / max(1, len(report.results))
    time.sleep(3)  # let the last broadcasts and catch-ups land
    if fault is not None:
        figures.notes.append(f"sockets per process after: {open_sockets(cluster)}")
    followers, arrivals = sockets.report()
    sockets.close()
    _http_figures(figures, report)
    _socket_figures(figures, report, followers, arrivals, items_since(app, newest))
    return figures


def _http_figures(figures: Figures, report: HttpReport) -> None:
    times = [r.seconds for r in report.results]
    figures.requests = len(times)
    figures.http_p50, figures.http_p95 = percentile(times, 0.5), percentile(times, 0.95)
    figures.http_p99 = percentile(times, 0.99)
    bad = [r for r in report.results if not 200 <= r.status < 300]
    figures.errors = len(bad)
    figures.retried = sum(r.attempts > 1 for r in report.results)
    figures.posts = len(report.posts)
    if bad:
        kinds: dict[str, int] = defaultdict(int)
        for r in bad:
            kinds[f"{r.kind}:{r.status}"] += 1
        figures.notes.append(f"errors by kind: {dict(kinds)}")


def _socket_figures(figures: Figures, report: HttpReport, followers: list[FollowerReport],
                    arrivals: list[tuple[int, float]], stored: dict[int, set[int]]) -> None:
    sent = {post.item_id: post.sent_at for post in report.posts}
    latencies = [at - sent[item] for item, at in arrivals if item in sent]
    figures.bcast_p50, figures.bcast_p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    figures.live = len(latencies)
    figures.stored = sum(len(ids) for ids in stored.values())
    for follower in followers:
        expected = stored.get(follower.cohort_id, set())
        figures.expected += len(expected)
        figures.missing += len(expected - follower.seen)
        figures.reconnected += follower.connects > 1
        figures.caught_up += follower.catch_ups > 0


# --- faults ---


def kill_app(cluster: Cluster) -> str:
    victim = cluster.apps[0]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.stop()
    return "app process 0 killed (SIGKILL)"


def restart_redis(server: RedisServer) -> str:
    started = time.monotonic()
    server.restart(down_seconds=1.0)
    return f"Redis restarted (down {time.monotonic() - started:.1f} s)"


def bring_files(cluster: Cluster, members: list[Member], *, every: float, until: float,
                sent: list[int]) -> None:
    """Members bring a small CSV in, one every `every` seconds: each import is a job."""
    n = 0
    while time.monotonic() < until:
        member = members[n % len(members)]
        n += 1
        http = requests.Session()
        http.cookies.set("hearten", member.cookie, domain="127.0.0.1", path="/")
        for _ in range(20):  # as the member would: try again until the page answers
            try:
                token = http.get(f"{cluster.url}/api/v1/csrf-token", timeout=10).json()
                day = (time.gmtime().tm_yday % 20) + 1
                answer = http.post(f"{cluster.url}/tracker/import",
                                   headers={"X-CSRFToken": token["csrf_token"]},
                                   files={"file": ("steps.csv", f"date,steps\n2026-11-{day:02d},"
                                                                f"{4000 + n}\n")},
                                   allow_redirects=False, timeout=30)
                if answer.status_code == 302:
                    sent.append(member.member_id)
                    break
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.5)
        time.sleep(every)


def imports_settled(app: Flask, expected: int, timeout: float) -> tuple[int, int]:
    """(done, not done) once every import is done or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with app.app_context(), get_db(app).session(write=False) as session:
            runs = list(session.exec(select(ImportRun.status)))
        done = sum(status == ImportStatus.DONE for status in runs)
        if (done >= expected and done == len(runs)) or time.monotonic() > deadline:
            return done, len(runs) - done
        time.sleep(0.5)


def google_standin() -> tuple[str, Any]:
    """Google, played by the stand-in on a loopback port (the worker processes call it)."""
    standin = create_google_standin(seed=7, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    server = make_server("127.0.0.1", free_port(), standin, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def worker_killed_mid_sync(cluster: Cluster, app: Flask, members: list[Member],
                           url: str) -> list[str]:
    """Two members connect the same Google account: one syncs undisturbed; the other's worker
    is killed midway and started again. Their days must be equal."""
    lines: list[str] = []
    requests.post(f"{url}/_standin/config", json={"latency_ms": 250}, timeout=5)
    control, subject = members[0], members[1]
    control_id = _connect(cluster, app, url, control)
    _wait_synced(app, control_id, timeout=120)
    subject_id = _connect(cluster, app, url, subject)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        progress = _progress(app, subject_id)
        if progress is not None and 30 <= progress < 300:
            break
        time.sleep(0.05)
    worker = cluster.job_workers[0]
    os.killpg(worker.pid, signal.SIGKILL)
    worker.stop()
    lines.append(f"worker killed with {_progress(app, subject_id)} of 365 days fetched")
    started = time.monotonic()
    cluster.start_worker(0)
    _wait_synced(app, subject_id, timeout=120)
    lines.append(f"a new worker finished the sync {time.monotonic() - started:.1f} s later")
    lines.append(_compare_days(app, control.member_id, subject.member_id))
    return lines


def _connect(cluster: Cluster, app: Flask, standin: str, member: Member) -> int:
    """The member's path: Connect, consent on Google's page, back to Hearten."""
    http = requests.Session()
    http.cookies.set("hearten", member.cookie, domain="127.0.0.1", path="/")
    token = http.get(f"{cluster.url}/api/v1/csrf-token", timeout=10).json()["csrf_token"]
    start = http.post(f"{cluster.url}/tracker/connect/google", data={"csrf_token": token},
                      allow_redirects=False, timeout=10)
    back = consent(start.headers["Location"], allow=True, login_hint="bench-walker")
    done = http.get(back, allow_redirects=False, timeout=30)
    assert done.status_code == 302, done.text
    with app.app_context(), get_db(app).session(write=False) as session:
        found = session.exec(select(Connection.id).where(
            col(Connection.member_id) == member.member_id)).one()
    return int(found or 0)


def _progress(app: Flask, connection_id: int) -> int | None:
    with app.app_context(), get_db(app).session(write=False) as session:
        connection = session.get(Connection, connection_id)
        if connection is None or connection.synced_through is None:
            return None
        return (connection.synced_through - connection.backfill_from).days + 1


def _wait_synced(app: Flask, connection_id: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context(), get_db(app).session(write=False) as session:
            connection = session.get(Connection, connection_id)
            if (connection is not None and not connection.sync_owner
                    and connection.synced_through is not None
                    and (connection.synced_through - connection.backfill_from).days + 1 >= 365):
                return
        time.sleep(0.2)
    raise RuntimeError(f"connection {connection_id} did not finish syncing in {timeout:.0f} s")


def _compare_days(app: Flask, control: int, subject: int) -> str:
    def days(model: Any, day: str, value: str, member_id: int) -> dict[Any, int]:
        with app.app_context(), get_db(app).session(write=False) as session:
            rows = session.exec(select(getattr(model, day), getattr(model, value)).where(
                col(model.member_id) == member_id, col(model.source) == "google"))
            found: dict[Any, int] = {}
            for day, amount in rows:
                assert day not in found, f"{day} stored twice"
                found[day] = amount
        return found

    steps_a = days(DailySteps, "day", "steps", control)
    steps_b = days(DailySteps, "day", "steps", subject)
    sleep_a = days(SleepNight, "night", "minutes_asleep", control)
    sleep_b = days(SleepNight, "night", "minutes_asleep", subject)
    span = (max(steps_b) - min(steps_b)).days + 1 if steps_b else 0
    same = steps_a == steps_b and sleep_a == sleep_b
    return (f"steps days: {len(steps_b)} (span {span}, uninterrupted {len(steps_a)}); "
            f"nights: {len(sleep_b)} (uninterrupted {len(sleep_a)}); "
            f"equal to the uninterrupted sync: {'yes' if same else 'NO'}")


# --- printing ---


def table(rows: list[Figures]) -> None:
    print()
    head = (f"{'run':<34}{'proc':>5}{'socks':>7}{'req':>7}{'p50':>6}{'p95':>6}{'p99':>6}"
            f"{'err':>5}{'retry':>6}{'posts':>6}{'stored':>7}{'b-p50':>7}{'b-p99':>7}"
            f"{'missing':>8}{'reconn':>7}{'cpu/req':>8}")
    print(head)
    print("-" * len(head))
    for f in rows:
        print(f"{f.name:<34}{f.processes:>5}{f.sockets:>7}{f.requests:>7}{_ms(f.http_p50):>6}"
              f"{_ms(f.http_p95):>6}{_ms(f.http_p99):>6}{f.errors:>5}{f.retried:>6}"
              f"{f.posts:>6}{f.stored:>7}{_ms(f.bcast_p50):>7}{_ms(f.bcast_p99):>7}"
              f"{f.missing:>8}{f.reconnected:>7}{_cpu(f.cpu_ms):>8}")
    print("(ms; b- = broadcast, post sent -> arrival at each socket of the group; missing = items"
          " a socket never heard of, live or by catching up; cpu/req = CPU ms the app processes"
          " spent per request, sockets and broadcasts included)")
    for f in rows:
        for note in f.notes:
            print(f"  {f.name}: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--rates", default="200,50",
                        help="HTTP requests a second, each run on 2 processes and on 1")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--cohort-size", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0,
                        help="gunicorn threads per process (default: the sockets a process holds "
                             "when one of its peers is down, + 200)")
    parser.add_argument("--part", choices=["all", "load", "faults"], default="all")
    # Stopped with SIGTERM (a timeout, kill): still stop nginx, the app processes and Redis.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hearten-cluster-load-"))
    database = f"postgresql://postgres@127.0.0.1:5432/hearten_load_{uuid.uuid4().hex[:8]}"
    ensure_database(database)
    redis_server = RedisServer(workdir / "redis")
    redis_server.start()
    os.environ["REDIS_URL"] = redis_server.url
    standin_url, standin = google_standin()
    env = {"APP_ENV": "testing", "SECRET_KEY": SECRET_KEY, "TOKEN_KEYS": TOKEN_KEY,
           "JOBS_IMMEDIATE": "0", "ACCESS_LOG": "", "LOGIN_LIMIT_PER_IP": "100000 per minute",
           "OAUTHLIB_INSECURE_TRANSPORT": "1",
           **{key: str(value) for key, value in google_config(standin_url).items()}}
    rows: list[Figures] = []
    try:
        app = create_app({"APP_ENV": "testing", "DATABASE_URL": database,
                                 "SECRET_KEY": SECRET_KEY, "TOKEN_KEYS": [TOKEN_KEY],
                                 "JOBS_IMMEDIATE": True})

        def cluster(processes: int) -> Cluster:
            # Each process must hold its sockets plus those of a peer that goes down (a socket
            # holds a thread): sockets / (N - 1), and room for requests.
            threads = args.threads or args.sockets // max(1, processes - 1) + 200
            made = Cluster(workdir=workdir / f"p{processes}-{len(rows)}", database_url=database,
                           redis_url=redis_server.url, processes=processes, workers=1,
                           threads=threads, extra_env=dict(env))
            return made

        first = cluster(1)
        first.flask("db", "upgrade")
        started = time.monotonic()
        members, items = seed(app, members=args.sockets, cohort_size=args.cohort_size)
        print(f"{len(members)} members in {len(items)} groups, signed in, "
              f"in {time.monotonic() - started:.0f} s")
        if args.part in ("all", "load"):
            for rate in (float(r) for r in args.rates.split(",")):
                for processes in (2, 1):
                    with_cluster = cluster(processes)
                    with_cluster.start()
                    try:
                        rows.append(run(with_cluster, app, members, items, rate=rate,
                                        name=f"{rate:.0f} req/s, {processes} process(es)",
                                        seconds=args.seconds))
                        table(rows[-1:])  # as it comes, in case a later run fails
                    finally:
                        with_cluster.stop()
        if args.part in ("all", "faults"):
            rows.extend(_faults(cluster, app, members, items, redis_server, args, standin_url))
        table(rows)
        _ratios(rows)
    finally:
        standin.shutdown()
        redis_server.stop()
        drop_database(database)


def _faults(cluster: Any, app: Flask, members: list[Member], items: dict[int, list[int]],
            redis_server: RedisServer, args: argparse.Namespace,
            standin_url: str) -> list[Figures]:
    rows: list[Figures] = []
    seconds = max(args.seconds, 20)
    args.rate = float(args.rates.split(",")[-1])
    topology: Cluster = cluster(2)
    topology.start()
    try:
        rows.append(run(topology, app, members, items, name="(a) app process killed mid-load",
                        rate=args.rate, seconds=seconds, fault=lambda: kill_app(topology),
                        fault_at=seconds / 3))
        table(rows[-1:])
    finally:
        topology.stop()
    topology = cluster(2)
    topology.start()
    try:
        sent: list[int] = []
        until = time.monotonic() + seconds * 0.8
        bringer = threading.Thread(target=bring_files, args=(topology, members[::37]),
                                   kwargs={"every": 0.5, "until": until, "sent": sent})
        bringer.start()
        row = run(topology, app, members, items, name="(b) Redis restarted mid-load",
                  rate=args.rate, seconds=seconds, fault=lambda: restart_redis(redis_server),
                  fault_at=seconds / 3)
        bringer.join()
        done, waiting = imports_settled(app, len(sent), timeout=60)
        row.notes.append(f"files brought in: {len(sent)}; imports done: {done}; "
                         f"not done: {waiting}")
        rows.append(row)
        table(rows[-1:])
        crash = Figures(name="(c) worker killed mid-backfill", processes=2)
        crash.notes.extend(worker_killed_mid_sync(topology, app, members, standin_url))
        rows.append(crash)
        table(rows[-1:])
    finally:
        topology.stop()
    return rows


def _ratios(rows: list[Figures]) -> None:
    print()
    for two in (r for r in rows if r.processes == 2 and "req/s" in r.name):
        rate = two.name.split(",")[0]
        one = next((r for r in rows if r.processes == 1 and r.name.startswith(rate + ",")), None)
        if one is None:
            continue
        ok = two.http_p95 <= 0.100 and two.bcast_p99 <= 0.300 and two.errors == 0
        print(f"{rate}: 1 -> 2 processes: HTTP p95 {one.http_p95 / two.http_p95:.2f}x lower, "
              f"p99 {one.http_p99 / two.http_p99:.2f}x; broadcast p99 "
              f"{one.bcast_p99 / two.bcast_p99:.2f}x lower. Targets on 2 processes (HTTP p95 "
              f"<= 100 ms, broadcast p99 <= 300 ms, 0 errors): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
