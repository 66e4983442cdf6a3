"""gunicorn's worker class for the app process: gthread (threads) beside gevent, measured.

    .venv/bin/python benchmarks/worker_class.py [--sockets 1000] [--posts 20] [--rate 50]
                                                [--sign-ins 10] [--sign-in-seconds 6]
                                                [--modes threading,gevent] [--postgres-url URL]

Each row is one app process (`gunicorn -c gunicorn.conf.py wsgi:app`: one worker, the job worker
inside it as in the embedded set-up, JOBS_IN_PROCESS=1) on loopback, on a fresh SQLite database
in a scratch folder that the rows share:

  threading  GUNICORN_WORKER_CLASS=gthread, GUNICORN_THREADS=sockets+100,
             SOCKETIO_ASYNC_MODE=threading: the app's set-up;
  gevent     GUNICORN_WORKER_CLASS=gevent (the same worker_connections), SOCKETIO_ASYNC_MODE=
             gevent. Run only when gevent imports in the venv this runs from (it is not a
             runtime requirement; requirements-dev.txt is where to pin it for this script).

One cohort holds every member. In each row:
  1. --sign-ins members sign in through the real JSON API (a CSRF token, POST /api/v1/login),
     one at a time with nothing else running: "sign-in". One sign-in is one argon2id
     verification, ~0.2 s of CPU here, so 1,000 would take minutes: the other sockets' session
     cookies are minted by the call the sign-in route makes (accounts.start_session), as
     benchmarks/feed_broadcast.py does.
  2. The worker's RSS (VmRSS, /proc/PID/status) and OS threads with no socket open.
  3. --sockets python-socketio AsyncClients (websocket transport, each with its own session
     cookie), all in this one asyncio process, connect, at most 100 at a time: "connect"; RSS
     and threads a second after the last: "KB/socket".
  4. Broadcasts: the signed-in members post to the feed over HTTP (POST /api/v1/feed), spread
     over one ping interval (25 s, so that every socket's ping falls inside it), and every
     socket hears the cohort's "feed" event: latency from the POST's send to each socket's
     receipt, p50/p99 over every delivery; the worker's CPU seconds over those 25 s
     (utime+stime, /proc/PID/stat). The receivers share one interpreter, so the figures include
     the time this process takes to read N messages (the same in each row).
  5. A signed-in GET /api/v1/feed at --rate a second (open loop), sockets open, for one ping
     interval: p50/p95, and the worker's CPU seconds. Then --sign-in-seconds more while members
     sign in one after another: the GETs' p95, and the sign-ins' p50.
  6. Tracebacks and errors in the server's log are printed under the table.

After the gevent row, two probes of what holds gevent's hub (and with it every socket and
request of the process), each in a fresh interpreter that imports the app as gunicorn's master
does before it forks the worker (gunicorn.conf.py's logger_class imports app.logs, and so the
whole app, psycopg included), then patches as the gevent worker does:
  - argon2: one sign-in's password check beside a greenlet (a thread, unpatched) ticking every
    5 ms: how long the ticker is held up;
  - psycopg 3, when a PostgreSQL server answers at --postgres-url (by default the machine's,
    its `postgres` database; only `SELECT pg_sleep()` runs there): 8 `SELECT pg_sleep(0.25)`
    in 8 greenlets; then the same, patched before any import.
Figures only; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import requests
import socketio
from yarl import URL

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.loadgen import percentile
from scripts.cluster import free_port

GEVENT_PIN = "gevent==26.9.0"
PASSWORD = "a quiet walk by the sea"  # noqa: S105  (the benchmark's own accounts)
SECRET_KEY = "worker-class-bench"  # noqa: S105
COOKIE = "hearten"
CONNECTING_AT_ONCE = 100
WARM_UP = 2  # posts before the measured ones (the first post of a process is slower)
# Socket.IO's ping interval (Flask-SocketIO's default; the app keeps it): the broadcasts and the
# GETs are each spread over one, so that every socket's ping falls inside each of them.
PING_INTERVAL = 25.0
WAIT = 30.0  # seconds a broadcast may take to reach every socket before the rest count as lost
MODES = {"threading": "gthread", "gevent": "gevent"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the database: one cohort, its members, a session cookie for each ---


@dataclass
class Cast:
    members: list[str]  # display names, in order
    cookies: list[str]  # a minted session cookie for each member, same order


def seed(database: str, workdir: Path, members: int) -> Cast:
    """A fresh database with one cohort of `members` members, all with PASSWORD, each with a
    minted session cookie (accounts.start_session, as auth.login does on sign-in)."""
    from sqlalchemy import insert
    from sqlmodel import col, select

    from app import create_app, migrate
    from app.accounts import services as accounts
    from app.accounts.models import CohortMembership, CohortRole, Role, User
    from app.db import get_db, utcnow

    migrate.upgrade(database)
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": database, "SECRET_KEY": SECRET_KEY,
                      "INSTANCE_PATH": str(workdir), "JOBS_IMMEDIATE": True})
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    now = utcnow()
    with get_db(app).transaction() as session:
        coach = accounts.create_user(session, display_name="Bench Coach", password=PASSWORD,
                                     role=Role.COACH)
        password_hash = coach.password_hash  # argon2 once; every member shares the hash
        cohort = accounts.create_cohort(session, coach=coach, name="Morning Walkers")
        session.execute(insert(User), [
            {"display_name": f"Walker {n}", "name_key": f"walker {n}",
             "password_hash": password_hash, "role": Role.MEMBER, "timezone": "UTC",
             "language": "en", "created_at": now, "password_changed_at": now}
            for n in range(members)])
        people = list(session.exec(select(User).where(col(User.name_key).like("walker %"))
                                   .order_by(col(User.id))))
        session.execute(insert(CohortMembership), [
            {"cohort_id": cohort.id, "user_id": person.id, "role": CohortRole.MEMBER,
             "joined_at": now} for person in people])
        cookies = []
        for person in people:
            _record, token = accounts.start_session(session, user=person, device="bench", now=now)
            cookies.append(serializer.dumps({"sid": token, "_permanent": True}))
    get_db(app).engine.dispose()
    return Cast(members=[person.display_name for person in people], cookies=cookies)


# --- the server, and what /proc says about its worker ---


@dataclass
class Server:
    mode: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    worker_pid: int = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class BootFailed(RuntimeError):
    pass


def _worker_pid(master: int) -> int:
    """The gunicorn worker: the master's child process."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                return int(entry.name)
    return 0


def serve(mode: str, *, workdir: Path, database: str, sockets: int) -> Server:
    port = free_port()
    instance = workdir / mode
    instance.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "JOBS_IMMEDIATE", "GUNICORN_CMD_ARGS")}
    env.update({
        "APP_ENV": "testing", "DATABASE_URL": database, "SECRET_KEY": SECRET_KEY,
        "INSTANCE_PATH": str(instance), "JOBS_IN_PROCESS": "1", "PORT": str(port),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        # gthread: a thread per open socket, and room for plain requests; gevent ignores the
        # thread count, and both get worker_connections = threads + 1000 (gunicorn.conf.py).
        "GUNICORN_THREADS": str(sockets + 100),
        "GUNICORN_WORKER_CLASS": MODES[mode], "SOCKETIO_ASYNC_MODE": mode,
        "LOGIN_LIMIT_PER_IP": "100000 per minute", "LOGIN_LIMIT_PER_ACCOUNT": "100000 per minute",
    })
    log_path = instance / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c",
                                    "gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    server = Server(mode=mode, url=f"http://127.0.0.1:{port}", process=process,
                    log_path=log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BootFailed(f"gunicorn exited at start: {_errors(server.log()) or 'no error'}")
        try:
            if requests.get(f"{server.url}/healthz", timeout=5).status_code == 200:
                server.worker_pid = _worker_pid(process.pid)
                return server
        except requests.RequestException:
            pass
        time.sleep(0.2)
    server.stop()
    raise BootFailed(f"gunicorn did not answer /healthz within 30 s: {_errors(server.log())}")


def _status(pid: int) -> tuple[int, int]:
    """(VmRSS in KB, OS threads) of a process."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["Threads"])


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used, all its threads."""
    after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / CLOCK_TICKS  # fields 14 and 15


@dataclass
class Meter:
    """The worker's CPU seconds, and the CPU the rest of the machine used meanwhile (the
    machine's busy time less the worker's and this process's): the other work a figure shared
    the cores with."""

    pid: int
    at: float = 0.0
    worker: float = 0.0
    machine: float = 0.0
    client: float = 0.0

    @staticmethod
    def _machine() -> float:
        ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0]
                 .split()[1:]]
        return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS  # less idle and iowait

    def start(self) -> None:
        self.at, self.worker = time.monotonic(), _cpu_seconds(self.pid)
        self.machine, self.client = self._machine(), time.process_time()

    def stop(self) -> tuple[float, float]:
        """(the worker's CPU seconds, other processes' cores on average) since start()."""
        worker = _cpu_seconds(self.pid) - self.worker
        client = time.process_time() - self.client
        others = self._machine() - self.machine - worker - client
        return worker, max(0.0, others) / max(time.monotonic() - self.at, 1e-9)


def _errors(log: str) -> str:
    """The server log's tracebacks' last lines and ERROR lines, counted."""
    lines = log.splitlines()
    found: dict[str, int] = {}
    for index, line in enumerate(lines):
        if line.startswith("Traceback"):
            end = index + 1
            while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end]):
                end += 1
            last = lines[end] if end < len(lines) else "(traceback cut off)"
            found[last[:200]] = found.get(last[:200], 0) + 1
        elif "[ERROR]" in line or line.startswith("ERROR") or "CRITICAL" in line:
            key = line.split("] ", 3)[-1][:200]
            found[key] = found.get(key, 0) + 1
    return "; ".join(f"{text} (x{count})" for text, count in found.items())


# --- the clients: one asyncio process ---


@dataclass
class Row:
    mode: str
    worker_class: str
    failed: str = ""
    notes: list[str] = field(default_factory=list)
    sign_in_ms: float = float("nan")
    connect_s: float = float("nan")
    opened: int = 0
    rss_idle_kb: int = 0
    rss_open_kb: int = 0
    threads_idle: int = 0
    threads_open: int = 0
    cpu_s: float = float("nan")
    bcast_p50: float = float("nan")
    bcast_p99: float = float("nan")
    delivered: int = 0
    expected: int = 0
    get_cpu_s: float = float("nan")
    get_p50: float = float("nan")
    get_p95: float = float("nan")
    get_errors: int = 0
    get_p95_signing: float = float("nan")
    sign_in_busy_ms: float = float("nan")
    others_bcast: float = float("nan")
    others_get: float = float("nan")


async def sign_in(url: str, name: str) -> tuple[str, float]:
    """The JSON API's sign-in, as the page does it: its session cookie, and the POST's ms."""
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{url}/api/v1/csrf-token") as answer:
            token = (await answer.json())["csrf_token"]
        started = time.monotonic()
        async with http.post(f"{url}/api/v1/login", json={"display_name": name,
                                                          "password": PASSWORD},
                             headers={"X-CSRFToken": token}) as answer:
            await answer.read()
            took = (time.monotonic() - started) * 1000
            if answer.status != 200:
                raise RuntimeError(f"sign-in answered {answer.status}")
        return jar.filter_cookies(URL(url))[COOKIE].value, took


class Crowd:
    """N Socket.IO clients; each "feed" event's arrival time by item id."""

    def __init__(self) -> None:
        self.clients: list[Any] = []
        self.arrivals: dict[int, list[float]] = {}
        self.dropped: dict[str, int] = {}  # why the server or the transport closed sockets
        self.closing = False

    def _client(self) -> Any:
        client = socketio.AsyncClient(reconnection=False)

        def on_feed(data: dict[str, Any]) -> None:
            self.arrivals.setdefault(data["item_id"], []).append(time.monotonic())

        def on_disconnect(*reason: Any) -> None:
            if not self.closing:
                why = str(reason[0]) if reason else "unknown"
                self.dropped[why] = self.dropped.get(why, 0) + 1

        client.on("feed", on_feed)
        client.on("disconnect", on_disconnect)
        return client

    async def connect(self, url: str, cookies: list[str]) -> tuple[int, list[str]]:
        gate = asyncio.Semaphore(CONNECTING_AT_ONCE)
        failures: list[str] = []

        async def one(cookie: str) -> None:
            client = self._client()
            async with gate:
                try:
                    await client.connect(url, headers={"Cookie": f"{COOKIE}={cookie}"},
                                         transports=["websocket"], wait_timeout=30)
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    return
            self.clients.append(client)

        await asyncio.gather(*(one(cookie) for cookie in cookies))
        return len(self.clients), failures

    async def close(self) -> None:
        self.closing = True
        await asyncio.gather(*(client.disconnect() for client in self.clients),
                             return_exceptions=True)
        self.clients.clear()


async def http_load(url: str, cookies: list[str], *, rate: float, seconds: float
                    ) -> tuple[list[float], int]:
    """GET /api/v1/feed at `rate` a second (open loop), each as one of the members: ms each."""
    times: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                     timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def one(cookie: str) -> None:
            nonlocal errors
            started = time.monotonic()
            try:
                async with http.get(f"{url}/api/v1/feed",
                                    headers={"Cookie": f"{COOKIE}={cookie}"}) as answer:
                    await answer.read()
                    if answer.status != 200:
                        errors += 1
                        return
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
                return
            times.append((time.monotonic() - started) * 1000)

        count = int(rate * seconds)
        begin = time.monotonic()
        tasks = []
        for n in range(count):
            await asyncio.sleep(max(0.0, begin + n / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(cookies[n % len(cookies)])))
        await asyncio.gather(*tasks)
    return times, errors


async def measure(mode: str, server: Server, cast: Cast, args: argparse.Namespace) -> Row:
    row = Row(mode=mode, worker_class=MODES[mode])
    pid = server.worker_pid
    url = server.url
    real = cast.members[:args.sign_ins]

    # 1. Real sign-ins, one at a time, nothing else running.
    signed: list[str] = []
    took: list[float] = []
    for name in real:
        cookie, ms = await sign_in(url, name)
        signed.append(cookie)
        took.append(ms)
    row.sign_in_ms = statistics.median(took) if took else float("nan")
    cookies = signed + cast.cookies[len(signed):]

    # 2. Idle.
    await asyncio.sleep(1)
    row.rss_idle_kb, row.threads_idle = _status(pid)

    # 3. Every socket.
    crowd = Crowd()
    started = time.monotonic()
    row.opened, failures = await crowd.connect(url, cookies)
    row.connect_s = time.monotonic() - started
    if failures:
        kinds: dict[str, int] = {}
        for failure in failures:
            kinds[failure[:120]] = kinds.get(failure[:120], 0) + 1
        row.notes.append(f"{len(failures)} sockets failed to connect: "
                         + "; ".join(f"{text} (x{n})" for text, n in kinds.items()))
    if row.opened == 0:
        row.failed = "no socket connected: " + (row.notes[-1] if row.notes else "")
        return row
    await asyncio.sleep(1)
    row.rss_open_kb, row.threads_open = _status(pid)

    # 4. Broadcasts: members post, one after the other; every socket hears each.
    latencies: list[float] = []
    posters = list(signed or cookies[:1])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                     timeout=aiohttp.ClientTimeout(total=60)) as http:
        tokens = []
        for index, cookie in enumerate(posters):
            async with http.get(f"{url}/api/v1/csrf-token",
                                headers={"Cookie": f"{COOKIE}={cookie}"}) as answer:
                tokens.append((await answer.json())["csrf_token"])
                if COOKIE in answer.cookies:  # the session now holds the token's secret
                    posters[index] = answer.cookies[COOKIE].value
        meter, began = Meter(pid), 0.0
        for n in range(-WARM_UP, args.posts):
            cookie, token = posters[n % len(posters)], tokens[n % len(posters)]
            open_now = len(crowd.clients)
            if n == 0:
                meter.start()
                began = time.monotonic()
            if n >= 0:  # spread over one ping interval
                await asyncio.sleep(max(0.0, began + n * PING_INTERVAL / args.posts
                                        - time.monotonic()))
            sent = time.monotonic()
            async with http.post(f"{url}/api/v1/feed",
                                 json={"kind": "story", "body": f"Walk {n}: the long way round.",
                                       "client_key": uuid.uuid4().hex},
                                 headers={"Cookie": f"{COOKIE}={cookie}",
                                          "X-CSRFToken": token}) as answer:
                body = await answer.json()
                if answer.status != 201:
                    row.failed = f"POST /api/v1/feed answered {answer.status}: {body}"
                    break
            item = body["id"]
            deadline = time.monotonic() + WAIT
            while len(crowd.arrivals.get(item, [])) < open_now and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            heard = crowd.arrivals.get(item, [])
            if n >= 0:
                latencies.extend((at - sent) * 1000 for at in heard)
                row.delivered += len(heard)
                row.expected += open_now
        await asyncio.sleep(max(0.0, began + PING_INTERVAL - time.monotonic()))
        row.cpu_s, row.others_bcast = meter.stop()
    row.bcast_p50, row.bcast_p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)

    # 5. Plain GETs with the sockets open; then while members sign in.
    readers = cookies[:200]
    meter = Meter(pid)
    meter.start()
    times, row.get_errors = await http_load(url, readers, rate=args.rate,
                                            seconds=PING_INTERVAL)
    row.get_cpu_s, row.others_get = meter.stop()
    row.get_p50, row.get_p95 = percentile(times, 0.5), percentile(times, 0.95)
    stop = asyncio.Event()

    async def keep_signing_in() -> list[float]:
        took: list[float] = []
        names = cast.members[args.sign_ins:] or cast.members
        while not stop.is_set():
            _cookie, ms = await sign_in(url, names[len(took) % len(names)])
            took.append(ms)
        return took

    signing = asyncio.create_task(keep_signing_in())
    busy_times, busy_errors = await http_load(url, readers, rate=args.rate,
                                              seconds=args.sign_in_seconds)
    stop.set()
    busy_took = await signing
    row.get_errors += busy_errors
    row.get_p95_signing = percentile(busy_times, 0.95)
    row.sign_in_busy_ms = statistics.median(busy_took) if busy_took else float("nan")
    if crowd.dropped:
        row.notes.append(f"{sum(crowd.dropped.values())} sockets closed during the run ("
                         + ", ".join(f"{why}: {n}" for why, n in crowd.dropped.items()) + ")")
    await crowd.close()
    return row


def run_row(mode: str, cast: Cast, args: argparse.Namespace, *, workdir: Path,
            database: str) -> Row:
    try:
        server = serve(mode, workdir=workdir, database=database, sockets=args.sockets)
    except BootFailed as exc:
        return Row(mode=mode, worker_class=MODES[mode], failed=str(exc))
    try:
        row = asyncio.run(asyncio.wait_for(measure(mode, server, cast, args), timeout=150))
    except Exception as exc:
        row = Row(mode=mode, worker_class=MODES[mode],
                  failed=f"{type(exc).__name__}: {exc}"[:300] or "timed out")
    finally:
        server.stop()
    log = server.log()
    errors = _errors(log)
    if errors:
        row.notes.append(f"server log: {errors}")
    return row


# --- what holds gevent's hub: argon2 and psycopg, loaded as gunicorn's gevent worker loads them ---

ARGON2_PROBE = """
import sys, threading, time
import app.logs  # what gunicorn's master imports (logger_class) before it forks the worker
if sys.argv[1] == "gevent":
    from gevent import monkey
    monkey.patch_all()
    import gevent
from app.accounts import passwords
stored = passwords.hash_password("a quiet walk by the sea")
gaps, done = [], threading.Event()
def tick():  # another greenlet or thread: the longest it waits for its turn
    last = time.monotonic()
    while not done.is_set():
        time.sleep(0.005)
        now = time.monotonic()
        gaps.append(now - last - 0.005)
        last = now
ticker = threading.Thread(target=tick)
ticker.start()
took = []
for _ in range(3):
    started = time.monotonic()
    passwords.verify_password(stored, "a quiet walk by the sea")
    took.append(time.monotonic() - started)
    time.sleep(0.05)
done.set()
ticker.join()
print(f"{sorted(took)[1]:.3f} {max(gaps):.3f}")
"""

PSYCOPG_PROBE = """
import os, sys, time
if sys.argv[1] == "as-gunicorn":
    import app.logs  # what gunicorn's master imports (logger_class) before the worker patches
from gevent import monkey
monkey.patch_all()
import gevent, psycopg, psycopg.waiting
def nap():
    with psycopg.connect(sys.argv[2], connect_timeout=5) as conn:
        conn.execute("SELECT pg_sleep(0.25)")
started = time.monotonic()
gevent.joinall([gevent.spawn(nap) for _ in range(8)], raise_error=True)
print(psycopg.waiting.wait.__name__, f"{time.monotonic() - started:.2f}")
"""


def argon2_probe() -> list[str]:
    """One sign-in's password check (argon2id, C code that releases the GIL) in the app as
    each worker class loads it, and the longest another greenlet or thread then waits."""
    lines = ["a sign-in's password check (argon2id) beside a 5 ms ticker, the app loaded as "
             "each worker loads it:"]
    for mode in ("threading", "gevent"):
        done = subprocess.run([sys.executable, "-c", ARGON2_PROBE, mode], cwd=ROOT,
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "INSTANCE_PATH": tempfile.mkdtemp()})
        if done.returncode != 0:
            lines.append(f"  {mode}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        took, gap = (float(value) for value in done.stdout.split()[-2:])
        lines.append(f"  {mode:<10} check {took * 1000:4.0f} ms; the ticker's longest extra wait "
                     f"{gap * 1000:4.0f} ms" + ("  (the hub: every socket and request waits)"
                                                if mode == "gevent" else ""))
    return lines


def psycopg_probe(postgres_url: str) -> list[str]:
    try:
        import psycopg

        with psycopg.connect(postgres_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return [f"psycopg probe skipped: no PostgreSQL at {postgres_url} "
                f"({type(exc).__name__})"]
    lines = []
    for order, label in (("as-gunicorn", "app imported, then patched (gunicorn -k gevent)"),
                         ("patched-first", "patched before any import")):
        done = subprocess.run([sys.executable, "-c", PSYCOPG_PROBE, order, postgres_url], cwd=ROOT,
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "INSTANCE_PATH": tempfile.mkdtemp()})
        if done.returncode != 0:
            lines.append(f"  {label}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        wait, seconds = done.stdout.split()[-2:]
        lines.append(f"  {label:<50} psycopg wait function {wait:<12} 8 x pg_sleep(0.25) in "
                     f"8 greenlets: {seconds} s")
    return ["psycopg 3 under gevent (0.25 s if the queries overlap, 2.00 s if each blocks the "
            "process):", *lines]


# --- the table ---


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    print(f"\nOne app process; {args.sockets:,} websocket clients in one asyncio process; "
          f"{os.cpu_count()} cores; others: cores the rest of the machine kept busy meanwhile")
    print(f"{'mode':<11}{'worker':<9}{'connect s':>10}{'RSS idle MB':>12}{'RSS open MB':>12}"
          f"{'KB/socket':>10}{'threads idle/open':>18}{'bcast p50 ms':>13}{'p99 ms':>8}"
          f"{'delivered':>13}{'CPU s/25 s':>11}{'others':>8}")
    for row in rows:
        if row.failed:
            print(f"{row.mode:<11}{row.worker_class:<9}FAILED: {row.failed}")
        if row.opened == 0:
            continue
        per_socket = (row.rss_open_kb - row.rss_idle_kb) / row.opened
        print(f"{row.mode:<11}{row.worker_class:<9}{row.connect_s:>10.1f}"
              f"{row.rss_idle_kb / 1024:>12.1f}{row.rss_open_kb / 1024:>12.1f}{per_socket:>10.1f}"
              f"{f'{row.threads_idle} / {row.threads_open}':>18}{row.bcast_p50:>13.1f}"
              f"{row.bcast_p99:>8.1f}{f'{row.delivered}/{row.expected}':>13}{row.cpu_s:>11.2f}"
              f"{row.others_bcast:>8.2f}")
    print(f"\n{'mode':<11}{'worker':<9}{'GET p50 ms':>11}{'p95 ms':>8}{'CPU s/25 s':>11}"
          f"{'others':>8}{'sign-in ms':>11}{'| signing in: GET p95 ms':>25}{'sign-in ms':>11}")
    for row in rows:
        if row.opened == 0:
            continue
        print(f"{row.mode:<11}{row.worker_class:<9}{row.get_p50:>11.1f}{row.get_p95:>8.1f}"
              f"{row.get_cpu_s:>11.2f}{row.others_get:>8.2f}{row.sign_in_ms:>11.0f}{'|':>3}"
              f"{row.get_p95_signing:>22.1f}{row.sign_in_busy_ms:>11.0f}")
    for row in rows:
        notes = list(row.notes)
        if 0 < row.opened < args.sockets:
            notes.insert(0, f"only {row.opened} of {args.sockets} sockets connected")
        if row.get_errors:
            notes.append(f"{row.get_errors} GETs failed")
        for note in notes:
            print(f"{row.mode}: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=20, help="broadcasts measured")
    parser.add_argument("--rate", type=float, default=50.0, help="GETs a second")
    parser.add_argument("--sign-in-seconds", type=float, default=6.0,
                        help="GETs measured while members sign in")
    parser.add_argument("--sign-ins", type=int, default=10,
                        help="members signed in through the real API in each row")
    parser.add_argument("--modes", default="threading,gevent")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    args.sign_ins = max(1, min(args.sign_ins, args.sockets))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))
    # The clients' own complaints as sockets close ("packet queue is empty") are not figures.
    for name in ("engineio.client", "socketio.client"):
        logging.getLogger(name).setLevel(logging.CRITICAL)

    # Every socket is a file descriptor in this process and one in the server.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.sockets * 2 + 500
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            sys.exit(f"ulimit -n is {soft} (hard {hard}); {needed} are needed for "
                     f"{args.sockets} sockets")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))

    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    skipped = []
    if "gevent" in modes and importlib.util.find_spec("gevent") is None:
        modes.remove("gevent")
        skipped.append(f"gevent row skipped: pip install {GEVENT_PIN} to run it")
    workdir = Path(tempfile.mkdtemp(prefix="hearten-worker-class-"))
    os.environ["INSTANCE_PATH"] = str(workdir)  # before the app's job queue is imported
    database = f"sqlite:///{workdir / 'bench.db'}"
    started = time.monotonic()
    cast = seed(database, workdir, args.sockets)
    print(f"scratch folder {workdir}; {args.sockets:,} members seeded in "
          f"{time.monotonic() - started:.1f} s", flush=True)
    rows = []
    for mode in modes:
        began = time.monotonic()
        rows.append(run_row(mode, cast, args, workdir=workdir, database=database))
        print(f"  {mode}: measured in {time.monotonic() - began:.0f} s", flush=True)
        time.sleep(5)
    print_table(rows, args)
    for line in skipped:
        print(line)
    if "gevent" in modes:
        for line in [*argon2_probe(), *psycopg_probe(args.postgres_url)]:
            print(line)


if __name__ == "__main__":
    main()
