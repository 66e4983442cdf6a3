"""Operations: liveness and readiness, JSON logs with a request id, and Prometheus metrics for the
operator's scraper (each app process's /metrics; the job worker's own port)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session

from app import create_app, jobs
from app.accounts.models import User
from app.config import ConfigError, log_format
from app.db import get_db, utcnow
from app.jobs import huey
from notify import push
from notify.delivery import DeliveryReport, deliver_due
from notify.models import Delivery, Kind, Notification, NotificationState, PushSubscription
from notify.standins.push_service import PushService, create_push_standin
from tests.factories import PASSWORD, sign_in
from tests.live import BIN, ROOT, LiveServer, api_sign_in, free_port, start_live_server
from tests.standins import Standin, connect_google, google_config, serve
from wearables.tasks import sync_connection_task

UNREACHABLE_DATABASE = "postgresql://nobody@127.0.0.1:9/none"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
LOCAL_REDIS = "redis://127.0.0.1:6379/15"


@pytest.fixture
def app_config(request: pytest.FixtureRequest) -> dict[str, object]:
    # Pushes go to a plain-http stand-in; a test that asks for Google gets the app pointed at it.
    config: dict[str, object] = {"PUSH_ALLOW_HTTP_ENDPOINTS": True, "PUSH_TIMEOUT_SECONDS": 5}
    if "google" in request.fixturenames:
        config.update(google_config(request.getfixturevalue("google").url))
    return config


def _app(tmp_path: Path, **config: object) -> Flask:
    """Another app for this test, with its own settings (the database may be unreachable)."""
    return create_app({"APP_ENV": "testing", "SECRET_KEY": "x", "INSTANCE_PATH": str(tmp_path),
                       "JOBS_IMMEDIATE": True, **config})


def _samples(text: str, name: str, **labels: str) -> list[float]:
    """The values of the samples called `name` whose labels include `labels`."""
    return [sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()]


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of those samples (0 when none)."""
    return sum(_samples(text, name, **labels))


def _scrape(client: FlaskClient) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _eventually(check: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


# --- liveness and readiness ---


def test_healthz_answers_ok_even_when_the_database_is_unreachable(tmp_path: Path) -> None:
    client = _app(tmp_path, DATABASE_URL=UNREACHABLE_DATABASE).test_client()
    started = time.monotonic()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert time.monotonic() - started < 1


def test_readyz_is_ready_when_the_database_redis_and_the_job_queue_answer(
        database_url: str, tmp_path: Path) -> None:
    client = _app(tmp_path, DATABASE_URL=database_url, REDIS_URL=LOCAL_REDIS).test_client()
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["status"] == "ok" and body["down"] == []
    assert (body["database"], body["redis"], body["jobs"]["state"]) == ("ok", "ok", "ok")


def test_readyz_without_redis_url_does_not_look_for_redis(client: FlaskClient) -> None:
    body = client.get("/readyz").get_json()
    assert body["status"] == "ok" and body["redis"] == "not used"


def test_readyz_answers_503_naming_the_database_when_it_is_down(tmp_path: Path) -> None:
    response = _app(tmp_path, DATABASE_URL=UNREACHABLE_DATABASE).test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["down"] == ["database"]
    assert body["database"] == "unavailable"


def test_readyz_answers_503_naming_redis_when_it_does_not_answer(
        database_url: str, tmp_path: Path) -> None:
    client = _app(tmp_path, DATABASE_URL=database_url, REDIS_URL=UNREACHABLE_REDIS).test_client()
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 3  # a short timeout, not a hanging probe
    assert response.status_code == 503
    body = response.get_json()
    assert body["down"] == ["redis"] and body["redis"] == "unavailable"
    assert body["database"] == "ok"


@pytest.mark.live
def test_with_redis_down_a_process_stays_live_but_not_ready_and_still_serves_metrics(
        database_url: str, tmp_path: Path) -> None:
    server = start_live_server(database_url=database_url, instance=tmp_path / "live",
                               extra_env={"REDIS_URL": UNREACHABLE_REDIS, "JOBS_IMMEDIATE": "0"})
    try:
        assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200
        ready = requests.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert set(ready.json()["down"]) == {"redis", "jobs"}
        assert ready.json()["jobs"]["mode"] == "ResilientRedisHuey"
        scrape = requests.get(f"{server.url}/metrics", timeout=10)
        assert scrape.status_code == 200
        assert "hearten_http_request_duration_seconds" in scrape.text
        assert _samples(scrape.text, "hearten_job_queue_depth") == []  # no figure, no failure
    finally:
        server.stop()


# --- request ids and logs ---


def test_each_request_gets_a_fresh_request_id_in_its_answer(client: FlaskClient) -> None:
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


def test_a_sane_request_id_from_the_proxy_is_kept(client: FlaskClient) -> None:
    sent = "4f1c2a9e.nginx_req-7"
    assert client.get("/healthz", headers={"X-Request-ID": sent}).headers["X-Request-ID"] == sent


@pytest.mark.parametrize("odd", ["x" * 65, "two words", "id;rm -rf", "ünïcode", "a/b"])
def test_an_odd_request_id_is_replaced_by_a_fresh_one(client: FlaskClient, odd: str) -> None:
    answered = client.get("/healthz", headers={"X-Request-ID": odd}).headers["X-Request-ID"]
    assert answered != odd and len(answered) == 32


def test_logs_are_json_in_production_and_text_elsewhere_unless_log_format_says(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert (log_format("production"), log_format("development")) == ("json", "text")
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert log_format("development") == "json"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="LOG_FORMAT must be one of json, text"):
        log_format("production")


@pytest.fixture
def json_server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The app under gunicorn, writing JSON log lines."""
    server = start_live_server(database_url=database_url, instance=tmp_path / "json",
                               extra_env={"LOG_FORMAT": "json"})
    yield server
    server.stop()


def _json_lines(server: LiveServer) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log().splitlines() if line.strip()]


@pytest.mark.live
def test_in_json_each_request_writes_one_line_with_its_id_route_status_and_duration(
        json_server: LiveServer) -> None:
    answer = requests.get(f"{json_server.url}/healthz", headers={"X-Request-ID": "nginx-req-42"},
                          timeout=5)
    assert answer.headers["X-Request-ID"] == "nginx-req-42"

    def mine() -> list[dict[str, Any]]:
        return [line for line in _json_lines(json_server)
                if line.get("request_id") == "nginx-req-42"]

    assert _eventually(lambda: bool(mine()), 5)
    [line] = mine()  # one line: gunicorn wrote no access line of its own for it
    assert line["logger"] == "hearten.request" and line["level"] == "INFO"
    assert (line["method"], line["path"], line["endpoint"], line["status"]) == (
        "GET", "/healthz", "shell.healthz", 200)
    assert isinstance(line["duration_ms"], float) and line["time"].endswith("+00:00")
    # Every line the process wrote parses as JSON (gunicorn's own included: json.loads above).
    assert any(line["logger"] == "gunicorn.error" for line in _json_lines(json_server))


@pytest.mark.live
def test_request_log_lines_hold_no_query_strings_tokens_passwords_or_secret_paths(
        json_server: LiveServer, member: User) -> None:
    url = json_server.url
    requests.get(f"{url}/reset/secret-reset-token-123?next=QUERYSECRET", timeout=5,
                 headers={"Authorization": "Bearer TOKENSECRET", "Cookie": "hearten=COOKIESECRET"})
    requests.get(f"{url}/join/SECRETCD", timeout=5)
    requests.get(f"{url}/login?code=OAUTHCODE", timeout=5)
    http = requests.Session()
    assert api_sign_in(http, url, "Sunny River", PASSWORD).status_code == 200
    session_cookie = next(iter(http.cookies)).value
    http.get(f"{url}/home?token=ANOTHERSECRET", timeout=5)

    def paths() -> list[str]:
        return [line["path"] for line in _json_lines(json_server)
                if line["logger"] == "hearten.request"]

    assert _eventually(lambda: "/home" in paths(), 5)
    assert {"/reset/…", "/join/…", "/login", "/api/v1/login"} <= set(paths())
    log = json_server.log()
    for secret in ("secret-reset-token-123", "QUERYSECRET", "TOKENSECRET", "COOKIESECRET",
                   "SECRETCD", "OAUTHCODE", "ANOTHERSECRET", PASSWORD, session_cookie):
        assert secret not in log


# --- metrics: access ---


def test_metrics_answer_a_scraper_on_this_machine(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert "# TYPE hearten_http_request_duration_seconds histogram" in text
    assert _samples(text, "hearten_job_queue_depth") == [0]  # read from the queue as scraped


def test_metrics_are_hidden_from_requests_that_came_through_the_proxy(
        client: FlaskClient) -> None:
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 404


def test_metrics_are_hidden_from_another_machine(client: FlaskClient) -> None:
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert response.status_code == 404
    assert "hearten_" not in response.get_data(as_text=True)


def test_behind_proxyfix_a_forged_loopback_address_does_not_open_the_metrics(
        database_url: str, tmp_path: Path) -> None:
    client = _app(tmp_path, DATABASE_URL=database_url, TRUST_PROXY_HOPS=1).test_client()
    forged = client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"},
                        environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert forged.status_code == 404
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code == 404


def test_with_a_metrics_token_only_that_bearer_token_opens_the_metrics(
        database_url: str, tmp_path: Path) -> None:
    client = _app(tmp_path, DATABASE_URL=database_url, METRICS_TOKEN="scrape-me-0123").test_client()
    far = {"REMOTE_ADDR": "203.0.113.7"}
    right = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123",
                                            "X-Forwarded-For": "198.51.100.1"}, environ_base=far)
    assert right.status_code == 200 and "hearten_open_sockets" in right.get_data(as_text=True)
    wrong = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-0124"})
    assert wrong.status_code == 404
    assert client.get("/metrics").status_code == 404  # loopback is not enough once a token is set


# --- metrics: what they count ---


def test_requests_are_timed_under_their_route_never_their_raw_path(
        client: FlaskClient, member: User) -> None:
    sign_in(client, "Sunny River")
    before = _scrape(client)
    client.get("/feed/101")
    client.get("/feed/102")
    client.get("/no/such/page")
    after = _scrape(client)
    name = "hearten_http_request_duration_seconds_count"
    route = {"route": "/feed/<int:item_id>", "method": "GET"}
    assert _metric(after, name, **route) - _metric(before, name, **route) == 2
    assert _metric(after, name, route="unmatched") - _metric(before, name, route="unmatched") == 1
    assert "/feed/101" not in after and "/no/such/page" not in after


@pytest.mark.live
def test_the_open_sockets_gauge_rises_with_a_socket_and_falls_when_it_closes(
        live_server: LiveServer, member: User) -> None:
    def open_sockets() -> float:
        return _metric(requests.get(f"{live_server.url}/metrics", timeout=5).text,
                       "hearten_open_sockets")

    assert open_sockets() == 0
    http = requests.Session()
    assert api_sign_in(http, live_server.url, "Sunny River", PASSWORD).status_code == 200
    socket = socketio.Client(reconnection=False)
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    socket.connect(live_server.url, headers={"Cookie": cookie}, transports=["websocket"],
                   wait_timeout=5)
    try:
        assert _eventually(lambda: open_sockets() == 1, 5)
    finally:
        socket.disconnect()
    assert _eventually(lambda: open_sockets() == 0, 5)


@jobs.task()
def add_up(a: int, b: int) -> int:
    """A job that works."""
    return a + b


@jobs.task()
def always_fails() -> None:
    """A job that fails for good."""
    raise RuntimeError("this job always fails")


_tries: list[str] = []


@jobs.task(retries=1)
def fails_once() -> str:
    """A job that fails on its first try, then works on its retry."""
    _tries.append("try")
    if len(_tries) == 1:
        raise RuntimeError("the first try fails")
    return "done"


def test_jobs_are_counted_by_task_and_outcome(app: Flask, client: FlaskClient) -> None:
    def count(task: str, outcome: str) -> float:
        return _metric(_scrape(client), "hearten_jobs_total", task=task, outcome=outcome)

    before = {key: count(*key) for key in [("add_up", "ok"), ("always_fails", "failed"),
                                            ("fails_once", "retried"), ("fails_once", "ok"),
                                            ("fails_once", "failed")]}
    with app.app_context():
        assert add_up(2, 3).get() == 5
        always_fails()
        _tries.clear()
        fails_once()
    after = {key: count(*key) for key in before}
    assert {key: after[key] - before[key] for key in before} == {
        ("add_up", "ok"): 1, ("always_fails", "failed"): 1, ("fails_once", "retried"): 1,
        ("fails_once", "ok"): 1, ("fails_once", "failed"): 0}


def test_a_finished_sync_is_counted_by_platform_and_outcome(
        app: Flask, client: FlaskClient, member: User, google: Standin) -> None:
    def done() -> float:
        return _metric(_scrape(app.test_client()), "hearten_syncs_total", provider="google",
                       outcome="done")

    before = done()
    sign_in(client, "Sunny River")
    connect_google(client)  # connecting starts the backfill: one sync, run at once here
    assert done() - before == 1
    with app.app_context():
        assert sync_connection_task(1).get() == "done"
    assert done() - before == 2


@pytest.fixture
def push_service() -> Iterator[tuple[str, PushService]]:
    service = PushService()
    url, server = serve(create_push_standin(service=service))
    yield url, service
    server.shutdown()


def _device_with_a_waiting_push(session: Session, member: User, endpoint: str, p256dh: str,
                                auth: str) -> None:
    now = utcnow()
    device = PushSubscription(member_id=member.id or 0, endpoint=endpoint, p256dh=p256dh,
                              auth=auth, device="test phone")
    notification = Notification(user_id=member.id or 0, kind=Kind.COMMENTS, topic="comments-7",
                                data={"name": "Quiet Oak"}, url="/feed#item-7",
                                state=NotificationState.QUEUED, send_after=now,
                                expires_at=now + timedelta(hours=12))
    session.add_all([device, notification])
    session.commit()
    session.add(Delivery(notification_id=notification.id or 0, subscription_id=device.id,
                         key=f"n{notification.id}-d{device.id}-v1", next_attempt_at=now))
    session.commit()


def test_push_outcomes_are_counted_sent_gone_and_rate_limited(
        app: Flask, client: FlaskClient, session: Session, member: User,
        push_service: tuple[str, PushService]) -> None:
    url, service = push_service
    phones = [service.subscribe(url, server_key=push.public_key(app)) for _ in range(3)]
    for phone in phones:
        _device_with_a_waiting_push(session, member, phone.endpoint, phone.p256dh, phone.auth)
    service.answer(phones[1].endpoint, 410)
    service.answer(phones[2].endpoint, 429, retry_after="120")

    def counts() -> dict[str, float]:
        text = _scrape(client)
        return {outcome: _metric(text, "hearten_push_total", outcome=outcome)
                for outcome in ("sent", "gone", "rate_limited", "retry", "failed")}

    before = counts()
    with app.app_context():
        report = deliver_due(get_db(app), push.sender(app), now=utcnow())
    assert report == DeliveryReport(claimed=3, sent=1, gone=1, retried=1)
    after = counts()
    assert {outcome: after[outcome] - before[outcome] for outcome in before} == {
        "sent": 1, "gone": 1, "rate_limited": 1, "retry": 0, "failed": 0}


# --- the job worker ---


@pytest.mark.live
def test_the_job_worker_logs_each_job_as_json_and_serves_its_counters(
        app: Flask, database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "worker-secret",
           "APP_ENV": "testing", "LOG_FORMAT": "json", "WORKER_METRICS_PORT": str(port)}
    env.pop("JOBS_IMMEDIATE", None)
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen([str(BIN / "huey_consumer"), "app.worker.huey", "-k", "thread",
                                   "-w", "1", "-m", "0.5"], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    metrics_url = f"http://127.0.0.1:{port}/metrics"

    def scrape() -> str:
        try:
            return requests.get(metrics_url, timeout=2).text
        except requests.RequestException:
            return ""

    try:
        assert _eventually(lambda: "hearten_jobs_total" in scrape(), 30), log_path.read_text()
        huey.immediate = False  # queue for real, as the app does outside tests
        try:
            sync_connection_task(987654)  # no such connection: the sync has nothing to do
        finally:
            huey.immediate = True
        assert _eventually(lambda: _metric(scrape(), "hearten_jobs_total",
                                           task="sync_connection_task", outcome="ok") == 1, 30)
        assert _metric(scrape(), "hearten_syncs_total", provider="unknown") == 1
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
        [job] = [line for line in lines if line.get("task") == "sync_connection_task"]
        assert job["outcome"] == "ok" and job["logger"] == "app.jobs"
        assert len(job["job_id"]) == 36 and isinstance(job["duration_ms"], float)
        assert "987654" not in log_path.read_text()  # a job's arguments are never logged
    finally:
        worker.terminate()
        worker.wait(timeout=15)
