"""Load for a running Hearten: sockets that follow their group's feed as a member's page does,
and mixed HTTP at a fixed rate; each in its own client process, on asyncio.

A follower keeps what the page keeps: the items it has heard of and the last sequence number
seen without a gap. After a reconnect, or when a number is skipped, it catches up through
`GET /api/v1/feed?after=SEQ`, as `static/js/live.js` does; there is no catch-up at the end, so a
message lost without a trace shows as a missing item. Arrival times are read from the
system-wide monotonic clock, shared by every process.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import socketio

COOKIE = "hearten"
CHEERS = ["well_done", "keep_going", "with_you", "proud_of_you"]


@dataclass(frozen=True)
class Member:
    member_id: int
    cohort_id: int
    cookie: str  # a signed session cookie


@dataclass
class FollowerReport:
    member_id: int
    cohort_id: int
    seen: set[int]
    connects: int
    catch_ups: int
    connected: bool


@dataclass
class HttpResult:
    kind: str
    status: int  # 0: no answer
    seconds: float
    attempts: int


@dataclass
class PostSent:
    item_id: int
    cohort_id: int
    sent_at: float  # the monotonic time its accepted attempt was sent
    client_key: str


@dataclass
class HttpReport:
    results: list[HttpResult] = field(default_factory=list)
    posts: list[PostSent] = field(default_factory=list)


def percentile(samples: list[float], share: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _cookie_header(member: Member) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={member.cookie}"}


# --- sockets ---


class Follower:
    def __init__(self, url: str, member: Member, base_seq: int,
                 arrivals: list[tuple[int, float]], http: aiohttp.ClientSession) -> None:
        self.url, self.member, self.http = url, member, http
        self.last = base_seq
        self.seen: set[int] = set()
        self.connects = 0
        self.catch_ups = 0
        self.arrivals = arrivals
        self.gap: asyncio.Task[None] | None = None
        # Socket.IO's browser client's own pauses between reconnection attempts (live.js keeps
        # them): 1 s growing to 5 s, each spread by half.
        self.client = socketio.AsyncClient(reconnection=True, reconnection_delay=1,
                                           reconnection_delay_max=5, randomization_factor=0.5)
        self.client.on("connect", self.on_connect)
        self.client.on("feed", self.on_feed)
        self.client.on("catch_up", self.on_catch_up_hint)

    async def open(self) -> bool:
        # `lb` as the page sends it: the proxy keeps one connection on one process.
        try:
            # Headers as a function: engine.io's client takes the cookie out of a plain dict, so
            # a reconnect would otherwise come back without it (a browser sends it every time).
            await self.client.connect(f"{self.url}?lb={uuid.uuid4().hex[:8]}",
                                      headers=lambda: _cookie_header(self.member),
                                      transports=["websocket"], wait_timeout=30)
        except socketio.exceptions.ConnectionError:
            return False
        return True

    async def on_connect(self) -> None:
        self.connects += 1
        if self.connects > 1:  # back after a drop: fetch what was missed meanwhile
            await self.catch_up()

    async def on_feed(self, data: dict[str, Any]) -> None:
        if data.get("kind") == "item":
            self.arrivals.append((data["item_id"], time.monotonic()))
            self.seen.add(data["item_id"])
        seq = int(data["seq"])
        if seq == self.last + 1:
            self.last = seq
        elif seq > self.last + 1 and self.gap is None:
            # Numbers may arrive out of order from two processes; wait a moment before asking.
            self.gap = asyncio.create_task(self._after_gap())

    async def on_catch_up_hint(self, data: dict[str, Any]) -> None:
        """The server's message queue was away: catch up within its seconds, as feed.js does."""
        await asyncio.sleep(random.random() * float(data.get("within") or 1))
        await self.catch_up()

    async def _after_gap(self) -> None:
        await asyncio.sleep(0.5)
        self.gap = None
        await self.catch_up()

    async def catch_up(self) -> None:
        self.catch_ups += 1
        for _ in range(20):
            try:
                async with self.http.get(f"{self.url}/api/v1/feed", params={"after": self.last},
                                         headers=_cookie_header(self.member)) as response:
                    if response.status != 200:
                        await asyncio.sleep(0.5)
                        continue
                    page = await response.json()
            except (TimeoutError, aiohttp.ClientError):
                await asyncio.sleep(0.5)
                continue
            self.seen.update(item["id"] for item in page["items"])
            self.last = max(self.last, int(page["last_seq"]))
            if not page["more"]:
                return

    def report(self) -> FollowerReport:
        return FollowerReport(self.member.member_id, self.member.cohort_id, set(self.seen),
                              self.connects, self.catch_ups, self.client.connected)


async def _sockets(conn: Connection, url: str, members: list[Member],
                   base_seqs: dict[int, int]) -> None:
    loop = asyncio.get_running_loop()
    arrivals: list[tuple[int, float]] = []
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        followers = [Follower(url, m, base_seqs[m.cohort_id], arrivals, http) for m in members]
        gate = asyncio.Semaphore(25)

        async def _open(follower: Follower) -> bool:
            async with gate:
                return await follower.open()

        started = time.monotonic()
        opened = sum(await asyncio.gather(*(_open(f) for f in followers)))
        conn.send(("connected", opened, time.monotonic() - started))
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command == "report":
                conn.send(([f.report() for f in followers], list(arrivals)))
            elif command == "count":
                conn.send(sum(f.client.connected for f in followers))
            elif command == "close":
                await asyncio.gather(*(f.client.disconnect() for f in followers))
                conn.send(True)
                return


def _socket_process(conn: Connection, url: str, members: list[Member],
                    base_seqs: dict[int, int]) -> None:
    asyncio.run(_sockets(conn, url, members, base_seqs))


class Sockets:
    """`members`' sockets, spread over `processes` client processes."""

    def __init__(self, url: str, members: list[Member], base_seqs: dict[int, int],
                 processes: int = 2) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.workers: list[Any] = []
        for n in range(processes):
            ours, theirs = context.Pipe()
            worker = context.Process(target=_socket_process, daemon=True,
                                     args=(theirs, url, members[n::processes], base_seqs))
            worker.start()
            self.pipes.append(ours)
            self.workers.append(worker)
        answers = [pipe.recv() for pipe in self.pipes]
        self.opened = sum(answer[1] for answer in answers)
        self.connect_seconds = max(answer[2] for answer in answers)

    def ask(self, command: str) -> list[Any]:
        for pipe in self.pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    def connected(self) -> int:
        return sum(self.ask("count"))

    def report(self) -> tuple[list[FollowerReport], list[tuple[int, float]]]:
        reports: list[FollowerReport] = []
        arrivals: list[tuple[int, float]] = []
        for followers, heard in self.ask("report"):
            reports.extend(followers)
            arrivals.extend(heard)
        return reports, arrivals

    def close(self) -> None:
        self.ask("close")
        for worker in self.workers:
            worker.join(timeout=10)


# --- HTTP ---

MIX: list[tuple[str, int]] = [("feed_api", 35), ("feed_page", 15), ("home", 10),
                              ("goals_api", 10), ("cheer", 20), ("post", 10)]
RETRYABLE = {0, 502, 503, 504}


class Caller:
    """One member's HTTP session (cookies and CSRF token), as their phone holds it."""

    def __init__(self, url: str, member: Member, items: list[int]) -> None:
        jar = aiohttp.CookieJar(unsafe=True)
        jar.update_cookies({COOKIE: member.cookie})
        self.http = aiohttp.ClientSession(cookie_jar=jar,
                                          timeout=aiohttp.ClientTimeout(total=30))
        self.url, self.member, self.items = url, member, items
        self.csrf = ""

    async def start(self) -> None:
        """The CSRF token, asked for again while the cluster is still settling (a 502 or 503)."""
        for _ in range(60):
            try:
                async with self.http.get(f"{self.url}/api/v1/csrf-token") as response:
                    if response.status == 200:
                        self.csrf = (await response.json())["csrf_token"]
                        return
            except (TimeoutError, aiohttp.ClientError):
                pass
            await asyncio.sleep(0.5)
        raise RuntimeError("no CSRF token within 30 s: is the cluster up?")

    async def _once(self, method: str, path: str,
                    body: dict[str, Any] | None) -> tuple[int, bytes]:
        headers = {"X-CSRFToken": self.csrf} if method != "GET" else {}
        try:
            async with self.http.request(method, f"{self.url}{path}", json=body,
                                         headers=headers) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp.ClientError):
            return 0, b""

    async def call(self, kind: str, report: HttpReport, n: int) -> None:
        """One action; a change whose answer was lost is sent again with the same client key
        (as the outbox does), up to 3 times."""
        key = uuid.uuid4().hex
        method, path, body = "GET", "", None
        if kind == "feed_api":
            path = "/api/v1/feed?limit=20"
        elif kind == "feed_page":
            path = "/feed"
        elif kind == "home":
            path = "/"
        elif kind == "goals_api":
            path = "/api/v1/goals"
        elif kind == "cheer":
            method, path = "POST", f"/api/v1/feed/{random.choice(self.items)}/cheers"
            body = {"kind": random.choice(CHEERS), "client_key": key}
        else:
            method, path = "POST", "/api/v1/feed"
            body = {"kind": "story", "body": f"A short walk after lunch, number {n}.",
                    "client_key": key}
        started = time.monotonic()
        attempts, status, answer, sent_at = 0, 0, b"", started
        while attempts < 3:
            attempts += 1
            sent_at = time.monotonic()
            status, answer = await self._once(method, path, body)
            if status not in RETRYABLE:
                break
            await asyncio.sleep(0.3)
        report.results.append(HttpResult(kind, status, time.monotonic() - started, attempts))
        if kind == "post" and status == 201:
            item_id = int(json.loads(answer)["id"])
            report.posts.append(PostSent(item_id, self.member.cohort_id, sent_at, key))

    async def close(self) -> None:
        await self.http.close()


async def _http(url: str, members: list[Member], items: dict[int, list[int]], rate: float,
                seconds: float, seed: int) -> HttpReport:
    """Open loop: a request starts every 1/rate seconds whatever the answers are doing."""
    rng = random.Random(seed)
    random.seed(seed)
    callers = [Caller(url, m, items[m.cohort_id]) for m in members]
    await asyncio.gather(*(c.start() for c in callers))
    report = HttpReport()
    kinds = [kind for kind, weight in MIX for _ in range(weight)]
    tasks: list[asyncio.Task[None]] = []
    started = time.monotonic()
    total = int(rate * seconds)
    for n in range(total):
        due = started + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(rng.choice(callers).call(rng.choice(kinds), report, n)))
    await asyncio.gather(*tasks)
    await asyncio.gather(*(c.close() for c in callers))
    return report


def _http_process(conn: Connection, url: str, members: list[Member],
                  items: dict[int, list[int]], rate: float, seconds: float, seed: int) -> None:
    conn.send(asyncio.run(_http(url, members, items, rate, seconds, seed)))


def start_http(url: str, members: list[Member], items: dict[int, list[int]], *, rate: float,
               seconds: float, seed: int = 1) -> Callable[[], HttpReport]:
    """Start the HTTP load in a client process; the returned function waits for its report."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    worker = context.Process(target=_http_process, daemon=True,
                             args=(theirs, url, members, items, rate, seconds, seed))
    worker.start()

    def wait() -> HttpReport:
        report: HttpReport = ours.recv()
        worker.join(timeout=10)
        return report

    return wait
