"""Live feed figures: a cheer reaching 1,000 open sockets, and 500 members cheering at once.

    .venv/bin/python benchmarks/feed_broadcast.py [--part a|b|all] [--clients 1000] [--cheers 50]
                                                  [--members 500] [--per-member 20]
                                                  [--resend 0.1] [--processes 4]

One app process under gunicorn (threading mode, the repository's gunicorn.conf.py), on loopback,
with a fresh SQLite database under a scratch INSTANCE_PATH. Socket clients are python-socketio
clients (one read and one write thread each), spread over a few client processes so that their
work does not queue behind one interpreter lock; arrival times are read from the system-wide
monotonic clock, shared by every process.

(a) The time from a cheer's POST to its arrival at the last of N connected sockets of the
    cohort, p50/p99 over --cheers cheers; beside it, in the same run and interleaved cheer by
    cheer, a bare Flask-SocketIO app (`bare_app` below: same async mode, same gunicorn set-up)
    broadcasting the same payload to as many sockets; and the ratio. Targets: p99 <= 250 ms,
    ours/bare <= 1.3x.
(b) --members members of one cohort, each with a socket open, each sending --per-member cheers
    over HTTP (one of each kind per item, with client keys; a share resent, some while the first
    is still in flight): accepted, stored, duplicates refused; every accepted cheer stored exactly
    once; and each member's counts (live messages, then GET /api/v1/feed?after=LAST) equal to the
    database's.

Accounts are bulk-inserted with one shared password hash and signed in by minting their session
records (argon2 1,500 times would take minutes); the member who cheers in (a) signs in through
the real form. Figures only; not a test.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import engineio  # type: ignore[import-untyped]
import requests
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask import Flask, jsonify
from flask.wrappers import Response
from flask_socketio import SocketIO, join_room
from sqlalchemy import func, insert
from sqlmodel import col, select

from app import create_app, migrate
from app.accounts import services as accounts
from app.accounts.models import CohortMembership, CohortRole, Role, User
from app.db import get_db, utcnow
from app.idempotency import ClientKey
from feed import services as feed
from feed.models import Cheer, CheerKind, EventKind, FeedEvent, FeedItem, ItemKind

PASSWORD = "a quiet walk by the sea"  # noqa: S105  (the benchmark's own accounts)
SECRET_KEY = "feed-broadcast-bench"  # noqa: S105  (shared by the benchmark's servers)
KINDS = [kind.value for kind in CheerKind]
WAIT = 30.0  # seconds a delivery may take before it counts as lost


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the bare app: what Flask-SocketIO alone costs ---


def bare_app() -> Flask:
    """A bare Flask-SocketIO app with our async mode and options: every socket joins one room,
    and POST /emit broadcasts a feed-shaped payload to it (gunicorn 'benchmarks.feed_broadcast:
    bare_app()')."""
    app = Flask("bare")
    bare = SocketIO(app, async_mode="threading", manage_session=False,
                    max_http_buffer_size=64 * 1024)
    numbers = itertools.count(1)

    def _connect(_auth: Any = None) -> None:
        join_room("cohort:1")

    bare.on_event("connect", _connect)

    @app.post("/emit")
    def _emit() -> Response:
        data = {"seq": next(numbers), "kind": "cheer", "item_id": 1,
                "cheers": {"well_done": 3, "keep_going": 1}}
        bare.emit("feed", data, to="cohort:1")
        return jsonify(data)

    @app.get("/healthz")
    def _healthz() -> Response:
        return jsonify({"ok": True})

    return app


# --- the servers ---


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def serve(name: str, spec: str, *, workdir: Path, database: str, threads: int) -> Server:
    """gunicorn with the repository's settings, on a free loopback port."""
    port = _free_port()
    instance = workdir / name
    instance.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update({
        "APP_ENV": "testing", "DATABASE_URL": database, "SECRET_KEY": SECRET_KEY,
        "INSTANCE_PATH": str(instance), "JOBS_IMMEDIATE": "1", "PORT": str(port),
        "GUNICORN_THREADS": str(threads), "PUBLIC_URL": f"http://127.0.0.1:{port}",
        # gthread accepts at most worker_connections (1,000 by default) connections at once,
        # whatever the thread count: every open socket is one of them.
        "GUNICORN_CMD_ARGS": f"--worker-connections {threads + 1000}",
    })
    log_path = instance / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c",
                                    "gunicorn.conf.py", spec], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    server = Server(name=name, url=f"http://127.0.0.1:{port}", process=process,
                    log_path=log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{name}: gunicorn exited early:\n{log_path.read_text(errors='replace')}")
        try:
            if requests.get(f"{server.url}/healthz", timeout=5).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.1)
    server.stop()
    sys.exit(f"{name}: gunicorn did not answer within 30 s")


# --- socket clients, in worker processes ---


class InlineEngineIO(engineio.Client):  # type: ignore[misc]
    """engine.io's client, running each message's handler on the socket's read thread (as a
    page does on its one event loop) instead of starting a new thread for every message: in
    order, and cheap enough to keep a thousand sockets in a few processes."""

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class SocketClient(socketio.Client):  # type: ignore[misc]
    """python-socketio's client on the engine.io client above."""

    def _engineio_client_class(self) -> type[engineio.Client]:
        return InlineEngineIO


class Follower:
    """One socket, keeping what a member's page keeps: the last number seen without a gap, and
    each item's counts from the newest message about it; in 'latency' mode, arrival times."""

    def __init__(self, cookie: str, base_seq: int, mode: str,
                 arrivals: dict[str, list[float]]) -> None:
        self.cookie = cookie
        self.last = base_seq
        self.newest = base_seq
        self.waiting: set[int] = set()
        self.items: dict[int, tuple[int, dict[str, int]]] = {}
        self.heard = 0
        self.dropped = False
        self.closing = False
        self.mode = mode
        self.arrivals = arrivals
        self.client = SocketClient(reconnection=False)
        self.client.on("feed", self.on_feed)
        self.client.on("disconnect", self.on_disconnect)

    def on_feed(self, data: dict[str, Any]) -> None:
        seq = data["seq"]
        if self.mode != "state":  # 'latency:<server>': when each message arrived
            self.arrivals[f"{self.mode}:{seq}"].append(time.monotonic())
            return
        self.heard += 1
        self.newest = max(self.newest, seq)
        if data["kind"] == EventKind.CHEER:
            known = self.items.get(data["item_id"])
            if known is None or known[0] < seq:
                self.items[data["item_id"]] = (seq, data["cheers"])
        if seq == self.last + 1:
            self.last = seq
            while self.last + 1 in self.waiting:
                self.waiting.discard(self.last + 1)
                self.last += 1
        elif seq > self.last:
            self.waiting.add(seq)

    def on_disconnect(self, *_reason: Any) -> None:
        if not self.closing:
            self.dropped = True


def client_worker(conn: Connection) -> None:
    """A client process: opens sockets, reports what they heard, closes them when told."""
    followers: list[Follower] = []
    arrivals: dict[str, list[float]] = defaultdict(list)
    while True:
        command, *args = conn.recv()
        if command == "connect":
            url, cookie_name, cookies, base_seq, mode = args
            fresh = [Follower(cookie, base_seq, mode, arrivals) for cookie in cookies]

            def _open(follower: Follower, url: str = url, cookie_name: str = cookie_name) -> bool:
                try:
                    follower.client.connect(url, headers={"Cookie": f"{cookie_name}="
                                                                    f"{follower.cookie}"},
                                            transports=["websocket"], wait_timeout=30)
                except socketio.exceptions.ConnectionError:
                    return False
                return True

            with ThreadPoolExecutor(8) as pool:
                opened = sum(pool.map(_open, fresh))
            followers.extend(fresh)
            conn.send(opened)
        elif command == "arrival":  # how many sockets heard a message; the last and median times
            times = arrivals.get(args[0], [])
            mode = args[0].rsplit(":", 1)[0]
            open_now = sum(f.mode == mode and not f.dropped for f in followers)
            conn.send((len(times), max(times) if times else float("nan"),
                       statistics.median(times) if times else float("nan"), open_now))
        elif command == "progress":  # how many sockets have seen everything up to `seq`
            conn.send((sum(f.last >= args[0] for f in followers),
                       sum(f.dropped for f in followers)))
        elif command == "states":
            conn.send([(f.cookie, f.last, f.newest, f.heard, f.dropped,
                        {item: counts for item, (_seq, counts) in f.items.items()})
                       for f in followers])
        elif command == "close":
            for follower in followers:
                follower.closing = True
                if follower.client.connected:
                    follower.client.disconnect()
            followers.clear()
            arrivals.clear()
            conn.send(True)
        elif command == "exit":
            conn.send(True)
            return


class Crowd:
    """Sockets spread over client processes."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.workers = []
        for _ in range(processes):
            ours, theirs = context.Pipe()
            worker = context.Process(target=client_worker, args=(theirs,), daemon=True)
            worker.start()
            self.pipes.append(ours)
            self.workers.append(worker)

    def ask(self, *command: Any) -> list[Any]:
        for pipe in self.pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    def connect(self, url: str, cookies: list[str], *, base_seq: int, mode: str) -> int:
        shares = [cookies[i::len(self.pipes)] for i in range(len(self.pipes))]
        for pipe, share in zip(self.pipes, shares, strict=True):
            pipe.send(("connect", url, "hearten", share, base_seq, mode))
        return sum(pipe.recv() for pipe in self.pipes)

    def arrival(self, key: str, timeout: float = WAIT) -> tuple[int, float, float, int]:
        """Once every open socket heard message `key` (or after `timeout`): how many did, when
        the last one did, the latest of the client processes' median times, and how many
        sockets were open."""
        deadline = time.monotonic() + timeout
        while True:
            reports = self.ask("arrival", key)
            heard, open_now = sum(r[0] for r in reports), sum(r[3] for r in reports)
            if heard >= open_now or time.monotonic() > deadline:
                return (heard, max(r[1] for r in reports), max(r[2] for r in reports),
                        open_now)
            time.sleep(0.01)

    def close(self) -> None:
        self.ask("close")

    def exit(self) -> None:
        self.ask("exit")
        for worker in self.workers:
            worker.join(timeout=10)


# --- accounts, cohorts and items ---


@dataclass
class Cast:
    cohort_id: int
    cookies: dict[int, str] = field(default_factory=dict)  # member id -> session cookie
    items: list[int] = field(default_factory=list)


def seed_cohort(app: Flask, *, name: str, members: int, items: int, prefix: str,
                password_hash: str) -> Cast:
    """A cohort with `members` members (signed in, one cookie each) and `items` stories."""
    now = utcnow()
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    with get_db(app).transaction() as session:
        coach = accounts.create_user(session, display_name=f"Coach {prefix}",
                                     password=PASSWORD, role=Role.COACH)
        cohort = accounts.create_cohort(session, coach=coach, name=name)
        cast = Cast(cohort_id=cohort.id or 0)
        session.execute(insert(User), [
            {"display_name": f"{prefix} {n}", "name_key": f"{prefix.casefold()} {n}",
             "password_hash": password_hash, "role": Role.MEMBER, "timezone": "UTC",
             "language": "en", "created_at": now, "password_changed_at": now}
            for n in range(members)])
        people = list(session.exec(select(User).where(
            col(User.name_key).like(f"{prefix.casefold()} %")).order_by(col(User.id))))
        session.execute(insert(CohortMembership), [
            {"cohort_id": cast.cohort_id, "user_id": person.id, "role": CohortRole.MEMBER,
             "joined_at": now} for person in people])
        for person in people:
            _record, token = accounts.start_session(session, user=person, device="bench",
                                                    now=now)
            cast.cookies[person.id or 0] = serializer.dumps({"sid": token, "_permanent": True})
        for n in range(items):
            item = feed.post(session, author=people[n % len(people)], cohort_id=cast.cohort_id,
                             kind=ItemKind.STORY, body=f"Story {n}: a walk before breakfast.",
                             now=now)
            cast.items.append(item.id or 0)
    return cast


def signed_in(url: str, name: str) -> tuple[requests.Session, str]:
    """A member signed in through the real form; their session and a CSRF token."""
    http = requests.Session()
    token = http.get(f"{url}/api/v1/csrf-token", timeout=10).json()["csrf_token"]
    response = http.post(f"{url}/login", data={"display_name": name, "password": PASSWORD,
                                                "csrf_token": token},
                         allow_redirects=False, timeout=30)
    assert response.status_code == 302, response.text
    return http, http.get(f"{url}/api/v1/csrf-token", timeout=10).json()["csrf_token"]


def minted(url: str, cookie: str) -> tuple[requests.Session, str]:
    http = requests.Session()
    http.cookies.set("hearten", cookie, domain="127.0.0.1", path="/")
    return http, http.get(f"{url}/api/v1/csrf-token", timeout=10).json()["csrf_token"]


# --- (a) one cheer to N sockets, ours beside a bare app ---


def part_a(app: Flask, *, workdir: Path, database: str, args: argparse.Namespace,
           password_hash: str) -> None:
    cheers_needed = args.cheers + 5
    cast = seed_cohort(app, name="Morning Walkers", members=args.clients,
                       items=(cheers_needed + len(KINDS) - 1) // len(KINDS), prefix="Walker",
                       password_hash=password_hash)
    with get_db(app).transaction() as session:
        cheerer = accounts.create_user(session, display_name="Sunny River", password=PASSWORD)
        session.add(CohortMembership(cohort_id=cast.cohort_id, user_id=cheerer.id or 0))
        base_seq = feed.last_seq(session, cohort_id=cast.cohort_id)
    threads = args.clients + 200
    ours = serve("ours", "wsgi:app", workdir=workdir, database=database, threads=threads)
    bare = serve("bare", "benchmarks.feed_broadcast:bare_app()", workdir=workdir,
                 database=database, threads=threads)
    crowd = Crowd(args.processes)
    try:
        started = time.monotonic()
        opened = (crowd.connect(ours.url, list(cast.cookies.values()), base_seq=base_seq,
                                mode="latency:ours"),
                  crowd.connect(bare.url, list(cast.cookies.values()), base_seq=0,
                                mode="latency:bare"))
        print(f"(a) {opened[0]} sockets open on our app and {opened[1]} on the bare app in "
              f"{time.monotonic() - started:.1f} s", flush=True)
        http, token = signed_in(ours.url, "Sunny River")
        bare_http = requests.Session()
        pairs = [(item, kind) for item in cast.items for kind in KINDS]

        ours_times: list[tuple[float, float, float, int]] = []  # last, median, POST, heard
        bare_times: list[tuple[float, float, float, int]] = []
        seq = base_seq

        def measure(send: Callable[[], int], server: str) -> tuple[float, float, float, int]:
            sent = time.monotonic()
            number = send()
            answered = time.monotonic()
            heard, last, median, _open = crowd.arrival(f"latency:{server}:{number}")
            return (last - sent) * 1000, (median - sent) * 1000, (answered - sent) * 1000, heard

        def cheer(item: int, kind: str, number: int) -> int:
            response = http.post(f"{ours.url}/api/v1/feed/{item}/cheers",
                                 json={"kind": kind, "client_key": uuid.uuid4().hex},
                                 headers={"X-CSRFToken": token}, timeout=30)
            assert response.status_code == 200 and response.json()["stored"], response.text
            return number  # nothing else writes to this cohort, so its number is the next one

        def emit() -> int:
            number: int = bare_http.post(f"{bare.url}/emit", timeout=30).json()["seq"]
            return number

        for index in range(cheers_needed):
            item, kind = pairs[index]
            for server in ("ours", "bare") if index % 2 else ("bare", "ours"):
                if server == "ours":
                    seq += 1
                    result = measure(functools.partial(cheer, item, kind, seq), "ours")
                else:
                    result = measure(emit, "bare")
                if index >= 5:  # the first five warm up
                    (ours_times if server == "ours" else bare_times).append(result)
            if index % 10 == 9:
                print(f"    {index + 1} of {cheers_needed} …", flush=True)
            time.sleep(0.05)
        crowd.close()
    finally:
        crowd.exit()
        ours.stop()
        bare.stop()

    print(f"\n(a) one cheer to {args.clients:,} open sockets: {args.cheers} cheers, interleaved "
          f"with the bare app's broadcasts (ms from the POST; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"{'':<26}{'last p50':>10}{'last p99':>10}{'last max':>10}{'median p50':>12}"
          f"{'POST p50':>10}{'delivered':>11}")
    for label, times, expected in (("Hearten (POST a cheer)", ours_times, opened[0]),
                                   ("bare Flask-SocketIO", bare_times, opened[1])):
        last = [t[0] for t in times]
        delivered = sum(t[3] for t in times)
        print(f"{label:<26}{_percentile(last, 0.5):>10.1f}{_percentile(last, 0.99):>10.1f}"
              f"{max(last):>10.1f}{_percentile([t[1] for t in times], 0.5):>12.1f}"
              f"{_percentile([t[2] for t in times], 0.5):>10.1f}"
              f"{delivered:>7}/{expected * len(times)}")
    ours_last, bare_last = [t[0] for t in ours_times], [t[0] for t in bare_times]
    p99_ours = _percentile(ours_last, 0.99)
    ratio50 = _percentile(ours_last, 0.5) / _percentile(bare_last, 0.5)
    ratio99 = p99_ours / _percentile(bare_last, 0.99)
    print(f"ratio ours/bare: p50 {ratio50:.2f}x, p99 {ratio99:.2f}x")
    print(f"targets: p99 <= 250 ms: {'met' if p99_ours <= 250 else 'MISSED'}; "
          f"ratio <= 1.3x: {'met' if max(ratio50, ratio99) <= 1.3 else 'MISSED'}")


# --- (b) 500 members cheering at once ---


Planned = tuple[int, int, str]  # member, item, kind
RESEND_PAUSES = (1.0, 2.0, 4.0, 8.0)  # the outbox's pauses before resending an unanswered cheer


def part_b(app: Flask, *, workdir: Path, database: str, args: argparse.Namespace,
           password_hash: str) -> None:
    items_needed = max(2 * args.per_member // len(KINDS), 10)
    cast = seed_cohort(app, name="Evening Walkers", members=args.members, items=items_needed,
                       prefix="Heron", password_hash=password_hash)
    with get_db(app).session(write=False) as session:
        base_seq = feed.last_seq(session, cohort_id=cast.cohort_id)
    server = serve("ours-b", "wsgi:app", workdir=workdir, database=database,
                   threads=args.members + 300)
    crowd = Crowd(args.processes)
    rng = random.Random(args.seed)
    plans = {member: rng.sample([(item, kind) for item in cast.items for kind in KINDS],
                                args.per_member) for member in cast.cookies}
    rolls = {member: [rng.random() for _ in range(args.per_member)] for member in cast.cookies}
    # Every answer each planned cheer got: "stored", "refused" (stored: false) or an error.
    answers: dict[Planned, list[str]] = {(member, item, kind): [] for member, plan in plans.items()
                                       for item, kind in plan}
    try:
        opened = crowd.connect(server.url, list(cast.cookies.values()), base_seq=base_seq,
                               mode="state")
        print(f"\n(b) {opened} members' sockets open; sending …", flush=True)
        start = threading.Barrier(len(cast.cookies))

        def member_run(member: int) -> None:
            http, token = minted(server.url, cast.cookies[member])

            def send(item: int, kind: str, key: str) -> str:
                try:
                    response = http.post(f"{server.url}/api/v1/feed/{item}/cheers",
                                         json={"kind": kind, "client_key": key},
                                         headers={"X-CSRFToken": token}, timeout=120)
                except requests.RequestException:
                    return "no answer"
                if response.status_code != 200:
                    return f"HTTP {response.status_code}"
                return "stored" if response.json()["stored"] else "refused"

            def deliver(item: int, kind: str, key: str) -> None:
                """As the page's outbox does: resend with the same key until answered."""
                heard = answers[(member, item, kind)]
                for pause in (*RESEND_PAUSES, None):
                    heard.append(send(item, kind, key))
                    if heard[-1] in ("stored", "refused") or pause is None:
                        return
                    time.sleep(pause)

            start.wait()
            for (item, kind), roll in zip(plans[member], rolls[member], strict=True):
                key = uuid.uuid4().hex
                if roll < args.resend / 3:  # sent twice at once (a double tap)
                    twin = threading.Thread(target=deliver, args=(item, kind, key))
                    twin.start()
                    deliver(item, kind, key)
                    twin.join()
                else:
                    deliver(item, kind, key)
                    if roll < args.resend:  # the answer was lost: the outbox sends it again
                        deliver(item, kind, key)

        started = time.monotonic()
        with ThreadPoolExecutor(len(cast.cookies)) as pool:
            list(pool.map(member_run, cast.cookies))
        sent_for = time.monotonic() - started
        with get_db(app).session(write=False) as session:
            final_seq = feed.last_seq(session, cohort_id=cast.cohort_id)
        # Let the live messages drain (bounded): every socket up to the last number, or quiet.
        previous, quiet_since = -1, time.monotonic()
        while True:
            caught_up, dropped = map(sum, zip(*crowd.ask("progress", final_seq), strict=True))
            if caught_up + dropped >= opened:
                break
            if caught_up != previous:
                previous, quiet_since = caught_up, time.monotonic()
            elif time.monotonic() - quiet_since > WAIT:
                break
            time.sleep(0.2)
        drained_for = time.monotonic() - started
        states = [state for report in crowd.ask("states") for state in report]
        crowd.close()

        # Each member's page: the live counts, then whatever came after the last number seen.
        member_of = {cookie: member for member, cookie in cast.cookies.items()}

        def final_counts(state: tuple[Any, ...]) -> tuple[int, dict[int, dict[str, int]], bool]:
            cookie, last, _newest, _heard, _dropped, items = state
            counts: dict[int, dict[str, int]] = {item: {} for item in cast.items}
            counts.update(items)
            http, _token = minted(server.url, cookie)
            page = http.get(f"{server.url}/api/v1/feed", params={"after": last},
                            timeout=60).json()
            for item in page["items"]:
                counts[item["id"]] = item["cheers"]
            return member_of[cookie], counts, last < final_seq

        with ThreadPoolExecutor(16) as pool:
            finals = list(pool.map(final_counts, states))
        server_log = server.log_path.read_text(errors="replace")
    finally:
        crowd.exit()
        server.stop()

    # What the database holds.
    with get_db(app).session(write=False) as session:
        rows = [(member, item, kind) for member, item, kind in session.execute(
            select(col(Cheer.member_id), col(Cheer.item_id), col(Cheer.kind))
            .where(col(Cheer.item_id).in_(cast.items)))]
        item_totals = {item: total for item, total in session.execute(
            select(col(FeedItem.id), col(FeedItem.cheer_count))
            .where(col(FeedItem.id).in_(cast.items)))}
        cheer_events = session.scalar(select(func.count()).select_from(FeedEvent).where(
            col(FeedEvent.cohort_id) == cast.cohort_id, col(FeedEvent.kind) == EventKind.CHEER))
        keys_stored = session.scalar(select(func.count()).select_from(ClientKey).where(
            col(ClientKey.user_id).in_(list(cast.cookies))))
    stored_counts: dict[int, dict[str, int]] = {item: {} for item in cast.items}
    for _member, item, kind in rows:
        stored_counts[item][kind] = stored_counts[item].get(kind, 0) + 1

    tally = Counter(answer for heard in answers.values() for answer in heard)
    accepted = {cheer for cheer, heard in answers.items() if "stored" in heard}
    twice = [cheer for cheer, heard in answers.items() if heard.count("stored") > 1]
    unanswered = [cheer for cheer, heard in answers.items()
                  if not {"stored", "refused"} & set(heard)]
    # Stored, though no answer said so: an error came back after the commit, and the resend
    # with the same key was refused as a duplicate.
    silent = [cheer for cheer, heard in answers.items()
              if "stored" not in heard and "refused" in heard]
    first_errors = sum(heard[0] not in ("stored", "refused") for heard in answers.values())
    errors = {answer: count for answer, count in tally.items()
              if answer not in ("stored", "refused")}
    stored = set(rows)
    matching = sum(counts == stored_counts for _member, counts, _gap in finals)
    needed_catch_up = sum(gap for _member, _counts, gap in finals)
    heard_live = [state[3] for state in states]
    print(f"(b) {args.members} members x {args.per_member} cheers at once over HTTP, "
          f"{args.resend:.0%} resent with the same key (a third of those while the first was in "
          f"flight), errors resent by an outbox after {', '.join(f'{p:g}' for p in RESEND_PAUSES)}"
          f" s; load average {os.getloadavg()[0]:.1f}")
    print(f"  requests answered         {sum(tally.values()):>8,}")
    print(f"  cheers planned            {len(answers):>8,}")
    print(f"  accepted (stored: true)   {tally['stored']:>8,}")
    print(f"  duplicates refused        {tally['refused']:>8,}   (stored: false, to a resend)")
    print(f"  errors                    {sum(errors.values()):>8,}   {errors or ''}"
          f"{f'; {first_errors:,} cheers had to be resent after one' if first_errors else ''}")
    print(f"  stored in the database    {len(rows):>8,}   (distinct: {len(stored):,}; cheer "
          f"events numbered: {cheer_events:,}; client keys kept: {keys_stored:,})")
    if silent:
        print(f"  stored though the answer was an error: {len(silent):,} (the resend was refused "
              f"as a duplicate)")
    if errors:
        print(f"  the server's log: {server_log.count('QueuePool limit'):,} database pool "
              f"timeouts, {server_log.count('database unavailable'):,} answered 503 "
              f"(OperationalError)")
    print(f"  sent in {sent_for:.1f} s ({len(rows) / sent_for:.1f} cheers/s); every socket "
          f"caught up {drained_for:.1f} s after the start")
    print(f"  live messages heard per socket: min {min(heard_live):,}, median "
          f"{statistics.median(heard_live):,.0f}, max {max(heard_live):,} (of "
          f"{final_seq - base_seq:,}); sockets dropped by the server: "
          f"{sum(state[4] for state in states)}")
    checks = {
        "every accepted cheer stored exactly once": accepted <= stored and not twice and len(
            rows) == len(stored),
        "every planned cheer stored exactly once": stored == set(answers) and len(rows) == len(
            answers),
        f"every planned cheer answered ({len(unanswered)} never were)": not unanswered,
        "each item's cheer_count equals its cheers": all(
            item_totals[item] == sum(stored_counts[item].values()) for item in cast.items),
        "one numbered event per stored cheer": cheer_events == len(rows),
        f"members whose final counts equal the database's ({matching}/{len(finals)}, "
        f"{needed_catch_up} of them after a catch-up)": matching == len(finals) == args.members,
    }
    for label, ok in checks.items():
        print(f"  {'ok    ' if ok else 'FAILED'}  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["a", "b", "all"], default="all")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--cheers", type=int, default=50)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--per-member", type=int, default=20)
    parser.add_argument("--resend", type=float, default=0.1)
    parser.add_argument("--processes", type=int, default=4,
                        help="client processes the sockets are spread over")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    # Stopped from outside (timeout, kill): still stop the servers and the client processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))

    workdir = Path(tempfile.mkdtemp(prefix="hearten-bench-"))
    database = f"sqlite:///{workdir / 'bench.db'}"
    migrate.upgrade(database)
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": database, "SECRET_KEY": SECRET_KEY,
                      "INSTANCE_PATH": str(workdir), "JOBS_IMMEDIATE": True})
    with get_db(app).transaction() as session:  # the one argon2 hash every account shares
        password_hash = accounts.create_user(session, display_name="Bench Admin",
                                             password=PASSWORD, role=Role.ADMIN).password_hash
    print(f"scratch folder: {workdir}", flush=True)
    if args.part in ("a", "all"):
        part_a(app, workdir=workdir, database=database, args=args, password_hash=password_hash)
    if args.part in ("b", "all"):
        part_b(app, workdir=workdir, database=database, args=args, password_hash=password_hash)


if __name__ == "__main__":
    main()
