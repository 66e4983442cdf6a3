"""With REDIS_URL, several app processes share Socket.IO news, rate limits and the job queue."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
import socketio

from app.accounts.models import Invite, User
from tests.factories import PASSWORD
from tests.live import LiveServer, api_sign_in, start_live_server

REDIS_URL = "redis://127.0.0.1:6379/15"
pytestmark = pytest.mark.live


@pytest.fixture
def two_servers(database_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    try:
        redis.Redis.from_url(REDIS_URL).flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis must run on 127.0.0.1:6379 for this test (make test starts it): {exc}")
    env = {"REDIS_URL": REDIS_URL, "JOBS_IMMEDIATE": "0"}
    first = start_live_server(database_url=database_url, instance=tmp_path / "a", extra_env=env)
    second = start_live_server(database_url=database_url, instance=tmp_path / "b", extra_env=env)
    yield first, second
    first.stop()
    second.stop()
    redis.Redis.from_url(REDIS_URL).flushdb()


def _csrf(http: requests.Session, server: LiveServer) -> str:
    token: str = http.get(f"{server.url}/api/v1/csrf-token", timeout=5).json()["csrf_token"]
    return token


def test_news_from_one_process_reaches_sockets_on_another(
        two_servers: tuple[LiveServer, LiveServer], coach: User, invite: Invite) -> None:
    first, second = two_servers
    assert requests.get(f"{first.url}/readyz", timeout=5).json()["jobs"]["mode"] == "ResilientRedisHuey"
    coach_http = requests.Session()
    assert api_sign_in(coach_http, first.url, "Coach Rosa", PASSWORD).status_code == 200
    heard = threading.Event()
    client = socketio.Client(reconnection=False)
    client.on("member_joined", lambda data: heard.set())
    cookie = "; ".join(f"{c.name}={c.value}" for c in coach_http.cookies)
    client.connect(first.url, headers={"Cookie": cookie}, transports=["websocket"], wait_timeout=5)
    try:
        newcomer = requests.Session()
        response = newcomer.post(f"{second.url}/api/v1/join", json={
            "code": invite.code, "display_name": "Far Away", "password": "tea in the garden"},
            headers={"X-CSRFToken": _csrf(newcomer, second)}, timeout=10)
        assert response.status_code == 201, response.text
        assert heard.wait(5), "the join on the second process reached the first one's socket"
    finally:
        client.disconnect()


def test_login_limits_are_shared_between_processes(
        two_servers: tuple[LiveServer, LiveServer], member: User) -> None:
    first, second = two_servers
    for i in range(25):
        server = first if i % 2 else second
        http = requests.Session()
        status = http.post(f"{server.url}/api/v1/login", json={
            "display_name": "Sunny River", "password": "wrong"},
            headers={"X-CSRFToken": _csrf(http, server)}, timeout=10).status_code
        assert status == 401
    http = requests.Session()
    blocked = http.post(f"{first.url}/api/v1/login", json={
        "display_name": "Sunny River", "password": PASSWORD},
        headers={"X-CSRFToken": _csrf(http, first)}, timeout=10)
    assert blocked.status_code == 429
