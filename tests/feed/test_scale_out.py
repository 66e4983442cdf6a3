"""The live feed across two app processes (Redis as the Socket.IO message queue): a cheer sent to
one process reaches a member's socket on the other, and a member who was away catches up over
HTTP after the last number they saw, ending with exactly what the database holds."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import socketio
from sqlmodel import Session, col, func, select

from app.accounts.models import Cohort, User
from feed.models import Cheer, FeedItem, ItemStatus
from tests.factories import PASSWORD, fresh
from tests.live import LiveServer, start_live_server

# Its own Redis database, so that flushing it leaves the other scale-out tests' data alone.
REDIS_URL = "redis://127.0.0.1:6379/14"
WAIT = 10.0  # seconds any one live message or request may take before the test fails
pytestmark = pytest.mark.live


@pytest.fixture
def two_servers(database_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    try:
        redis.Redis.from_url(REDIS_URL).flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis must run on 127.0.0.1:6379 for this test (make test starts it): {exc}")
    env = {"REDIS_URL": REDIS_URL, "JOBS_IMMEDIATE": "0"}
    first = start_live_server(database_url=database_url, instance=tmp_path / "a", extra_env=env)
    try:
        second = start_live_server(database_url=database_url, instance=tmp_path / "b",
                                   extra_env=env)
    except BaseException:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()
    redis.Redis.from_url(REDIS_URL).flushdb()


class Browser:
    """One signed-in device talking to one process: the real sign-in form, then the API."""

    def __init__(self, server: LiveServer, name: str) -> None:
        self.server = server
        self.http = requests.Session()
        response = self.http.post(f"{server.url}/login", data={
            "display_name": name, "password": PASSWORD, "csrf_token": self.csrf()},
            allow_redirects=False, timeout=WAIT)
        assert response.status_code == 302, response.text

    def csrf(self) -> str:
        token: str = self.http.get(f"{self.server.url}/api/v1/csrf-token",
                                   timeout=WAIT).json()["csrf_token"]
        return token

    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)

    def post_story(self, body: str) -> int:
        response = self.http.post(f"{self.server.url}/api/v1/feed",
                                  json={"kind": "story", "body": body},
                                  headers={"X-CSRFToken": self.csrf()}, timeout=WAIT)
        assert response.status_code == 201, response.text
        item_id: int = response.json()["id"]
        return item_id

    def cheer(self, item_id: int, kind: str) -> dict[str, Any]:
        response = self.http.post(f"{self.server.url}/api/v1/feed/{item_id}/cheers",
                                  json={"kind": kind, "client_key": uuid.uuid4().hex},
                                  headers={"X-CSRFToken": self.csrf()}, timeout=WAIT)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def feed(self, **params: int) -> dict[str, Any]:
        response = self.http.get(f"{self.server.url}/api/v1/feed", params=params, timeout=WAIT)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page


class Follower:
    """What a member's page keeps, the way static/js/feed.js keeps it: each item's cheer counts
    and the last number of the cohort's sequence seen without a gap; live messages apply in
    order, and anything else is fetched with ?after=LAST."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        page = browser.feed()
        self.items: dict[int, dict[str, int]] = {i["id"]: i["cheers"] for i in page["items"]}
        self.last: int = page["last_seq"]
        self.heard: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        self.socket = socketio.Client(reconnection=False)
        self.socket.on("feed", self._on_feed)

    def _on_feed(self, data: dict[str, Any]) -> None:
        with self.changed:
            self.heard.append(data)
            if data["seq"] == self.last + 1:  # next in line: a cheer carries its counts
                self.last = data["seq"]
                if data["kind"] == "cheer":
                    self.items[data["item_id"]] = data["cheers"]
            self.changed.notify_all()

    def connect(self) -> None:
        self.socket.connect(self.browser.server.url, headers={"Cookie": self.browser.cookie()},
                            transports=["websocket"], wait_timeout=WAIT)

    def disconnect(self) -> None:
        if self.socket.connected:
            self.socket.disconnect()

    def reconnect(self) -> None:
        self.socket = socketio.Client(reconnection=False)
        self.socket.on("feed", self._on_feed)
        self.connect()

    def wait_for(self, seq: int) -> dict[str, Any]:
        """The live message numbered `seq` (it fails the test after WAIT seconds)."""
        deadline = time.monotonic() + WAIT
        with self.changed:
            while True:
                found = [event for event in self.heard if event["seq"] == seq]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                assert left > 0, f"live message {seq} never came; heard {self.heard}"
                self.changed.wait(left)

    def catch_up(self) -> None:
        page = self.browser.feed(after=self.last)
        with self.changed:
            for item in page["items"]:
                self.items[item["id"]] = item["cheers"]
            self.last = max(self.last, page["last_seq"])


def _database_feed(session: Session, cohort: Cohort) -> dict[int, dict[str, int]]:
    """Each visible item of the cohort with its cheer counts, as stored."""
    fresh(session)
    items = session.exec(select(FeedItem.id).where(col(FeedItem.cohort_id) == cohort.id,
                                                   col(FeedItem.status) == ItemStatus.VISIBLE))
    stored: dict[int, dict[str, int]] = {item_id: {} for item_id in items if item_id is not None}
    for item_id, kind, count in session.exec(
            select(col(Cheer.item_id), col(Cheer.kind), func.count())
            .where(col(Cheer.item_id).in_(stored)).group_by(col(Cheer.item_id), col(Cheer.kind))):
        stored[item_id][kind] = count
    return stored


def test_a_cheer_sent_to_one_process_reaches_a_members_socket_on_the_other(
        two_servers: tuple[LiveServer, LiveServer], member: User, peer: User) -> None:
    first, second = two_servers
    sunny = Browser(second, "Sunny River")
    item = sunny.post_story("I walked to the river and back.")
    follower = Follower(sunny)
    follower.connect()
    try:
        oak = Browser(first, "Quiet Oak")
        start = follower.last
        given = oak.cheer(item, "well_done")
        heard = follower.wait_for(start + 1)
        assert (heard["kind"], heard["item_id"], heard["cheers"]) == (
            "cheer", item, {"well_done": 1})
        assert given == {"stored": True, "cheers": {"well_done": 1}}

        given = oak.cheer(item, "keep_going")
        heard = follower.wait_for(heard["seq"] + 1)
        assert (heard["kind"], heard["item_id"], heard["cheers"]) == (
            "cheer", item, {"well_done": 1, "keep_going": 1})
        assert given["cheers"] == {"well_done": 1, "keep_going": 1}
        assert follower.items[item] == {"well_done": 1, "keep_going": 1}
    finally:
        follower.disconnect()


def test_a_member_who_was_away_catches_up_after_the_last_number_and_loses_nothing(
        two_servers: tuple[LiveServer, LiveServer], session: Session, cohort: Cohort,
        member: User, peer: User) -> None:
    first, second = two_servers
    oak = Browser(first, "Quiet Oak")
    before = oak.post_story("A cup of tea on the step this morning.")
    follower = Follower(Browser(second, "Sunny River"))
    follower.connect()
    try:
        seen = follower.last + 1
        oak.cheer(before, "with_you")
        follower.wait_for(seen)
        assert follower.last == seen
        follower.disconnect()

        # While the member is away: two posts and a cheer, all on the other process.
        away = [oak.post_story("Ten minutes of stretching."),
                oak.post_story("I called my sister today.")]
        oak.cheer(away[0], "proud_of_you")
        assert follower.last == seen, "nothing arrived while the socket was closed"
        assert set(follower.items) == {before}

        follower.reconnect()
        follower.catch_up()
        assert follower.last == seen + 3
        assert follower.items == _database_feed(session, cohort) == {
            before: {"with_you": 1}, away[0]: {"proud_of_you": 1}, away[1]: {}}

        # Back on the live path: the next change arrives over the socket, in line.
        oak.cheer(away[1], "well_done")
        heard = follower.wait_for(seen + 4)
        assert (heard["item_id"], heard["cheers"]) == (away[1], {"well_done": 1})
        assert follower.items == _database_feed(session, cohort)
    finally:
        follower.disconnect()
