"""Secrets: the VAPID private key, SECRET_KEY and TOKEN_KEYS are never served; tracker tokens are
encrypted at rest and survive a key rotation; a whole member journey leaves no secret and no
health value in any log the server writes."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import re
import secrets
import sys
import time
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pyotp
import pytest
import requests
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from sqlalchemy import select, text, update
from sqlmodel import Session

from app import create_app, logs
from app.accounts import services as accounts
from app.accounts.models import Cohort, Invite, Role, User
from app.crypto import new_key
from app.db import get_db, utcnow
from notify.push import generate_keys
from tests import factories
from tests.factories import AUTHENTICATOR, PASSWORD, sign_in
from tests.live import api_sign_in, start_live_server
from tests.standins import CLIENT_ID, CLIENT_SECRET, Standin, connect_google, consent, google_config
from wearables.models import Connection, DailySteps, SleepNight
from wearables.standins.google_health import standin_state
from wearables.sync import sync_connection
from wearables.tasks import sync_context

VAPID = generate_keys()
SECRET_KEY = "sk-" + secrets.token_urlsafe(32)
TOKEN_KEYS = [new_key(), new_key()]


@pytest.fixture
def app_config(google: Standin) -> dict[str, object]:
    return {**google_config(google.url), "SECRET_KEY": SECRET_KEY, "TOKEN_KEYS": TOKEN_KEYS,
            "VAPID_PRIVATE_KEY": VAPID.private_pem().decode(), "BACKFILL_DAYS": 30}


# ---------------------------------------------------------------------------------------------------
# What is served


def _server_secrets() -> dict[str, bytes]:
    """Every form in which the server's own secrets could leak out."""
    pem = VAPID.private_pem().decode()
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    d = VAPID.private_key.private_numbers().private_value.to_bytes(32, "big")
    found = {"SECRET_KEY": SECRET_KEY.encode(), "VAPID PEM body": "".join(body).encode(),
             "VAPID d, base64url": VAPID.private_raw().encode(),
             "VAPID d, base64": base64.b64encode(d).rstrip(b"="), "VAPID d, hex": d.hex().encode(),
             "VAPID d, raw": d}
    found.update({f"VAPID PEM line {n}": line.encode() for n, line in enumerate(body) if len(line) >= 16})
    found.update({f"TOKEN_KEYS[{n}]": key.encode() for n, key in enumerate(TOKEN_KEYS)})
    return found


def _readable(body: bytes) -> bytes:
    """The body, and each file inside it when it is a zip (the member's data download)."""
    if not body.startswith(b"PK\x03\x04"):
        return body
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return body + b"".join(archive.read(name) for name in archive.namelist())


def _every_get(app: Flask) -> list[str]:
    """Each GET route that takes no arguments, each static file, the worker and the manifest."""
    paths = {rule.rule for rule in app.url_map.iter_rules()
             if "GET" in (rule.methods or ()) and not rule.arguments}
    static = Path(str(app.static_folder))
    paths |= {f"/static/{path.relative_to(static).as_posix()}" for path in static.rglob("*")
              if path.is_file()}
    assert {"/sw.js", "/manifest.webmanifest", "/api/v1/push/key", "/static/js/push.js"} <= paths
    return sorted(paths)


def _leaks(client: FlaskClient, paths: list[str], forbidden: dict[str, bytes]) -> list[str]:
    found = []
    for path in paths:
        response = client.get(path)
        served = _readable(response.get_data()) + b"\n" + str(response.headers).encode()
        found += [f"{path} ({response.status_code}): {name}" for name, value in forbidden.items()
                  if value in served]
    return found


def test_no_page_file_or_api_answer_serves_a_server_secret_to_anyone(
        app: Flask, client: FlaskClient, session: Session, member: User, coach: User,
        google: Standin) -> None:
    factories.make_user(session, name="Admin Ada", role=Role.ADMIN)
    paths = _every_get(app)
    forbidden = _server_secrets()
    assert _leaks(client, paths, forbidden) == []  # anonymous

    member_client = app.test_client()
    sign_in(member_client, "Sunny River")
    connect_google(member_client)  # so that the tracker page and the data download show a tracker
    state = standin_state(google.app)
    tokens = {**{f"access token {n}": t.encode() for n, t in enumerate(state.access_tokens)},
              **{f"refresh token {n}": t.encode() for n, t in enumerate(state.refresh_tokens)}}
    assert tokens
    assert _leaks(member_client, paths, {**forbidden, **tokens}) == []
    key = member_client.get("/api/v1/push/key").get_json()["public_key"]
    assert key == VAPID.public_key  # the public half is served, and only it
    assert _leaks(member_client, ["/api/v1/push/key"], {"public key": key.encode()})  # the check sees

    for name in ("Coach Rosa", "Admin Ada"):  # staff, past their second factor
        staff = app.test_client()
        sign_in(staff, name)
        assert staff.get("/home" if name == "Coach Rosa" else "/admin/audit").status_code < 400
        assert _leaks(staff, paths, {**forbidden, **tokens}) == []


# ---------------------------------------------------------------------------------------------------
# Tracker tokens at rest, and rotating the key


def _connection_row(session: Session) -> dict[str, Any]:
    """The raw row, as the database holds it."""
    rows = factories.fresh(session).execute(text("SELECT * FROM tracker_connection")).mappings().all()
    assert len(rows) == 1
    return dict(rows[0])


def _app_with_keys(app_config: dict[str, object], database_url: str, instance: Path,
                   keys: list[str]) -> Flask:
    return create_app({"APP_ENV": "testing", "DATABASE_URL": database_url, "INSTANCE_PATH": str(instance),
                       "JOBS_IMMEDIATE": True, "PUBLIC_URL": "http://hearten.test", **app_config,
                       "TOKEN_KEYS": keys})


def test_tracker_tokens_are_encrypted_at_rest_and_a_key_rotation_keeps_them_working(
        app: Flask, client: FlaskClient, session: Session, member: User, coach: User, google: Standin,
        app_config: dict[str, object], database_url: str, tmp_path: Path) -> None:
    sign_in(client, "Sunny River")
    connect_google(client)
    sign_in(app.test_client(), "Coach Rosa")  # an authenticator secret is stored, encrypted, too
    state = standin_state(google.app)
    (access,), (refresh,) = list(state.access_tokens), list(state.refresh_tokens)
    row = _connection_row(session)
    stored = " ".join(str(value) for value in row.values())
    assert access not in stored and refresh not in stored
    old = MultiFernet([Fernet(key) for key in TOKEN_KEYS])
    assert old.decrypt(row["access_token_enc"].encode()).decode() == access
    assert old.decrypt(row["refresh_token_enc"].encode()).decode() == refresh

    newest = new_key()
    rotating = _app_with_keys(app_config, database_url, tmp_path, [newest, *TOKEN_KEYS])
    try:
        result = rotating.test_cli_runner().invoke(args=["wearables", "rotate-keys"])
    finally:
        get_db(rotating).dispose()
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 2 tokens and 1 authenticator secrets" in result.output
    row = _connection_row(session)
    for column in ("access_token_enc", "refresh_token_enc"):
        with pytest.raises(InvalidToken):
            old.decrypt(row[column].encode())
    assert Fernet(newest).decrypt(row["refresh_token_enc"].encode()).decode() == refresh

    # The old keys are gone: a sync that must refresh its token (both tokens read) still works,
    # and the coach still signs in with the authenticator secret re-encrypted beside them.
    session.execute(update(Connection).values(token_expires_at=utcnow() - timedelta(minutes=1)))
    session.commit()
    google.reset()
    rotated = _app_with_keys(app_config, database_url, tmp_path, [newest])
    try:
        with rotated.app_context():
            outcome = sync_connection(sync_context(), int(row["id"]))
        sign_in(rotated.test_client(), "Coach Rosa")
    finally:
        get_db(rotated).dispose()
    assert outcome.status == "done"
    assert google.stats()["refresh_grants"] == 1 and sum(google.data_requests().values()) > 0
    assert Fernet(newest).decrypt(_connection_row(session)["access_token_enc"].encode()).decode() in (
        standin_state(google.app).access_tokens)


# ---------------------------------------------------------------------------------------------------
# Logs: a whole journey, then every line the server wrote


class _Browser:
    """A member's browser over real HTTP: cookies kept, every session cookie and CSRF token noted."""

    def __init__(self, url: str, cookies_seen: set[str], csrf_seen: set[str]) -> None:
        self.url = url
        self.http = requests.Session()
        self.csrf_seen = csrf_seen
        self.http.hooks["response"].append(
            lambda response, *_args, **_kw: cookies_seen.update(c.value or "" for c in response.cookies))

    def csrf(self) -> str:
        token: str = self.http.get(f"{self.url}/api/v1/csrf-token", timeout=60).json()["csrf_token"]
        self.csrf_seen.add(token)
        return token

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.url + path, allow_redirects=False, timeout=60)

    def post(self, path: str, **form: str) -> requests.Response:
        response = self.http.post(self.url + path, data={**form, "csrf_token": self.csrf()},
                                  allow_redirects=False, timeout=60)
        assert response.status_code in (200, 201, 302), (path, response.status_code, response.text[:500])
        return response


def _wait_for(check: Callable[[], bool], what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.2)


def _cookie_secrets(cookies: set[str]) -> dict[str, str]:
    """Each session cookie, and what it carries: the session id and the CSRF secret."""
    decoder = Flask("decoder")
    decoder.secret_key = SECRET_KEY
    serializer = SecureCookieSessionInterface().get_signing_serializer(decoder)
    assert serializer is not None
    found: dict[str, str] = {}
    for number, value in enumerate(sorted(cookies - {""})):
        found[f"session cookie {number}"] = value
        payload = serializer.loads(value)
        if payload.get("sid"):
            found[f"session id {number}"] = payload["sid"]
            found[f"session id hash {number}"] = hashlib.sha256(payload["sid"].encode()).hexdigest()
        if payload.get("csrf_token"):
            found[f"CSRF secret {number}"] = payload["csrf_token"]
    return found


def _substrings(logs: str, value: str) -> set[str]:
    """Those of the value's spellings that occur in the logs."""
    return {spelling for spelling in (value, quote(value, safe=""), quote_plus(value)) if spelling in logs}


def _every_log(instance: Path) -> str:
    return "\n".join(path.read_text(errors="replace") for path in sorted(instance.rglob("*.log")))


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_token_a_library_puts_in_a_url_is_masked_in_messages_and_tracebacks(fmt: str) -> None:
    def failing_revoke() -> None:
        raise ConnectionError("Max retries exceeded with url: /revoke?token=1%2F%2F0secret (refused)")

    try:
        try:
            failing_revoke()
        except ConnectionError as exc:
            raise RuntimeError("revoke endpoint unavailable") from exc
    except RuntimeError:
        record = logging.LogRecord("huey", logging.ERROR, __file__, 1, "unhandled error on %s %s",
                                   ("GET", "/reset/a-reset-token?next=/home"), sys.exc_info())
    line = logs.formatter(fmt).format(record)
    assert "0secret" not in line and "a-reset-token" not in line, line
    assert "/revoke?…" in line and "/reset/…" in line


@pytest.mark.live
def test_a_whole_member_journey_leaves_no_secret_or_health_value_in_any_log(
        database_url: str, tmp_path: Path, session: Session, coach: User, cohort: Cohort, invite: Invite,
        peer: User, google: Standin) -> None:
    instance = tmp_path / "live"
    server = start_live_server(database_url=database_url, instance=instance, extra_env={
        "LOG_FORMAT": "json", "ACCESS_LOG": str(instance / "access.log"), "SECRET_KEY": SECRET_KEY,
        "TOKEN_KEYS": ",".join(TOKEN_KEYS), "JOBS_IMMEDIATE": "", "JOBS_IN_PROCESS": "1",
        "BACKFILL_DAYS": "30", "GOOGLE_CLIENT_ID": CLIENT_ID, "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
        "GOOGLE_OAUTH_AUTHORIZE_URL": f"{google.url}/o/oauth2/v2/auth",
        "GOOGLE_OAUTH_TOKEN_URL": f"{google.url}/token", "GOOGLE_HEALTH_API_BASE": google.url,
        # Google is out of reach when the member disconnects: the revoke fails and is retried.
        "GOOGLE_OAUTH_REVOKE_URL": "http://127.0.0.1:1/revoke",
    })
    cookies: set[str] = set()
    csrf: set[str] = set()
    typed: dict[str, str] = {}
    secret_values: dict[str, str] = {"invite code": invite.code,
                                     "invite code as shown": accounts.format_code(invite.code)}
    today = utcnow().date()
    try:
        member = _Browser(server.url, cookies, csrf)
        password = "quiet harbour lantern " + secrets.token_hex(4)
        secret_values["member password"] = password
        assert member.get(f"/join?code={invite.code}").status_code == 302
        assert member.get(f"/join/{invite.code}").status_code == 200
        member.post(f"/join/{invite.code}", display_name="Bright Meadow", password=password,
                    timezone="UTC", language="en")
        member.post("/logout")
        assert member.post("/login", display_name="Bright Meadow", password=password).status_code == 302

        # Connect Google through its stand-in, and let the in-process worker sync.
        start = member.post("/tracker/connect/google")
        back = consent(start.headers["Location"])
        secret_values["OAuth code"] = parse_qs(urlsplit(back).query)["code"][0]
        secret_values["OAuth state"] = parse_qs(urlsplit(back).query)["state"][0]
        assert member.get(back.removeprefix(server.url)).status_code == 302

        def synced() -> bool:
            found = factories.fresh(session).scalars(select(Connection)).first()
            return found is not None and found.last_sync_at is not None

        _wait_for(synced, "the first sync")
        state = standin_state(google.app)
        tokens = {**{f"access token {n}": t for n, t in enumerate(state.access_tokens)},
                  **{f"refresh token {n}": t for n, t in enumerate(state.refresh_tokens)}}

        # Numbers typed in, a goal checked in, a post cheered and commented on.
        member.post("/tracker/steps", day=today.isoformat(), steps="12347")
        bedtime, wake = today - timedelta(days=2), today - timedelta(days=1)
        typed = {"bedtime typed": f"{bedtime}T22:09", "wake time typed": f"{wake}T07:16"}  # 547 min
        member.post("/tracker/sleep", bedtime=typed["bedtime typed"], wake_time=typed["wake time typed"])
        goal = member.post("/goals/new/habit", title="Evening stretch")
        member.post(goal.headers["Location"].removeprefix(server.url) + "/check-in", done="yes")
        member.post("/feed", kind="story", body="A slow walk by the pond today.")
        feed = member.http.get(f"{server.url}/api/v1/feed", timeout=60).json()
        item_id = next(item["id"] for item in feed["items"] if "pond" in item["body"])
        member.post(f"/feed/{item_id}/cheer", kind="well_done")
        member.post(f"/feed/{item_id}/comments", body="Thank you for the kind words.")

        # The coach (past the second factor) makes a reset link; the peer follows it.
        staff = _Browser(server.url, cookies, csrf)
        assert api_sign_in(staff.http, server.url, "Coach Rosa", PASSWORD).status_code == 200
        link = staff.http.post(f"{server.url}/api/v1/members/{peer.id}/reset-link", timeout=60,
                               headers={"X-CSRFToken": staff.csrf()}).json()["link"]
        secret_values["reset token"] = link.rsplit("/", 1)[1]
        new_password = "moonlit orchard path " + secrets.token_hex(4)
        secret_values["new password"] = new_password
        other = _Browser(server.url, cookies, csrf)
        assert other.get(urlsplit(link).path).status_code == 200
        other.post(urlsplit(link).path, password=new_password)

        member.post("/tracker/disconnect/google", keep_data="yes")
        _wait_for(lambda: "revoking a google token failed" in server.log(), "the failed revoke", 90)
        member.post("/logout")
        staff.post("/logout")
    finally:
        server.stop()

    stored = factories.fresh(session)
    assert stored.scalar(select(DailySteps.steps).where(DailySteps.steps == 12347)) == 12347
    assert stored.scalar(select(SleepNight.minutes_asleep).where(SleepNight.minutes_asleep == 547)) == 547
    logs = _every_log(instance)
    vapid = instance / "vapid_private.pem"
    totp = pyotp.TOTP(AUTHENTICATOR.secret("Coach Rosa"))
    recovery = AUTHENTICATOR.recovery_codes("Coach Rosa")
    forbidden = {**secret_values, **tokens, **_cookie_secrets(cookies),
                 **{f"CSRF token {n}": token for n, token in enumerate(sorted(csrf))},
                 "authenticator secret": AUTHENTICATOR.secret("Coach Rosa"),
                 **{f"recovery code {n}": code for n, code in enumerate(recovery)},
                 "SECRET_KEY": SECRET_KEY, **{f"TOKEN_KEYS[{n}]": key for n, key in enumerate(TOKEN_KEYS)},
                 **typed}
    if vapid.exists():
        forbidden["VAPID private key"] = "".join(vapid.read_text().splitlines()[1:-1])
    # Short numbers only as whole words: 12347 steps, 547 minutes asleep, recent authenticator codes.
    numbers = {"steps typed": "12347", "minutes asleep": "547",
               **{f"authenticator code {n}": totp.at(time.time() + 30 * n) for n in range(-20, 2)}}
    # As written, and as they would be in a URL (a token in a query string, percent-encoded).
    leaked = [name for name, value in forbidden.items() if value and _substrings(logs, value)]
    counted = re.sub(r"Listening at: \S+ \(\d+\)|pid: \d+", "", logs)  # gunicorn's own pids and port
    leaked += [name for name, value in numbers.items() if re.search(rf"(?<![\w.]){value}(?![\w.])", counted)]
    assert leaked == [], leaked

    # The logs are there and say what happened, in JSON, with secrets in paths masked.
    assert '"path": "/join/…"' in logs and '"path": "/reset/…"' in logs
    assert '"path": "/tracker/callback/google"' in logs and "sync_connection_task" in logs
    assert "revoke_token_task" in logs
