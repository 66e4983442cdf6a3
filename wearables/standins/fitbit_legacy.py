"""A local stand-in for the legacy Fitbit Web API and its OAuth 2.0 endpoints, in Fitbit's formats.

Tests and the offline demo point the legacy Fitbit adapter's URLs here. Paths mirror the real hosts:
``/oauth2/authorize`` (www.fitbit.com), ``/oauth2/token``, ``/oauth2/revoke`` and the API under
``/1/``, ``/1.1/`` and ``/1.2/`` (api.fitbit.com). ``/_standin/...`` holds the test controls.
With ``gone`` set, every API call answers 410 Gone, as the API has since the November 2026 shutdown,
while the token endpoints keep working. Like Fitbit's Subscriptions API, it verifies a subscriber
endpoint (``?verify=`` with the right code, then a wrong one) and POSTs it signed notifications
(``X-Fitbit-Signature``: base64 of HMAC-SHA1 over the body, keyed with the client secret and "&").
Users are the generator's: user ``i`` here is the same person as user ``i`` of a Google stand-in with
the same seed.
Run it with ``python -m wearables.standins.fitbit_legacy --port 8602 [--gone] [--seed N]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import json
import logging
import math
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import requests
from flask import Blueprint, Flask, Response, current_app, jsonify, redirect, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import run_simple
from werkzeug.wrappers import Response as BaseResponse

from wearables.standins import generator
from wearables.standins.common import control_error, is_count, page_html, s256

EXTENSION = "fitbit_legacy_standin"
SCOPES = ("activity", "cardio_fitness", "electrocardiogram", "heartrate", "irregular_rhythm_notifications",
          "location", "nutrition", "oxygen_saturation", "profile", "respiratory_rate", "settings", "sleep",
          "social", "temperature", "weight")
SCOPE_LABELS = {"activity": "Activity and exercise", "sleep": "Sleep", "profile": "Profile",
                "heartrate": "Heart rate"}
CODE_SECONDS = 600
MAX_STEPS_DAYS = 1095
MAX_SLEEP_DAYS = 100
RATE_LIMIT_PER_HOUR = 150
RECENT_PATHS = 200
_DOCS = ("Visit https://dev.fitbit.com/docs/oauth2 for more information on the Fitbit Web API authorization "
         "process.")
_PERIODS = {"1d": 1, "7d": 7, "30d": 30, "1w": 7, "1m": 30, "3m": 91, "6m": 182, "1y": 365}
_STAGE_LEVELS = {"AWAKE": "wake", "LIGHT": "light", "DEEP": "deep", "REM": "rem"}
_CLASSIC_LEVELS = {"AWAKE": "awake", "ASLEEP": "asleep", "RESTLESS": "restless"}
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_LOCAL_FORMAT = "%Y-%m-%dT%H:%M:%S.000"


class FitbitError(Exception):
    """A failure answered in Fitbit's shape: ``{"errors": [{"errorType", "message"}], "success": false}``."""

    def __init__(self, status: int, error_type: str, message: str, *, field_name: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.field_name = field_name
        self.headers = dict(headers or {})


@dataclass
class User:
    """A fake Fitbit account, backed by the generator's user ``index``."""

    index: int
    encoded_id: str
    login_hint: str | None


@dataclass
class Grant:
    """What one consent allowed: a user, some scopes and one live refresh token."""

    user: User
    scopes: tuple[str, ...]
    refresh_token: str | None = None
    revoked: bool = False


@dataclass
class PendingCode:
    """An authorization code waiting to be exchanged."""

    user: User
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str | None
    expires_at: float


@dataclass
class AccessToken:
    """An access token, the grant it speaks for and when it was issued."""

    grant: Grant
    issued_at: float
    expires_at: float


@dataclass
class Config:
    """Knobs the tests turn through ``/_standin/config``."""

    latency_ms: int = 0
    rate_limit_per_hour: int | None = RATE_LIMIT_PER_HOUR
    fail_next: list[int] = field(default_factory=list)
    fail_next_token: list[int] = field(default_factory=list)
    gone: bool = False
    send_retry_after: bool = True
    today: date | None = None

    def as_json(self) -> dict[str, Any]:
        """The settings as JSON."""
        return {
            "latency_ms": self.latency_ms,
            "rate_limit_per_hour": self.rate_limit_per_hour,
            "fail_next": list(self.fail_next),
            "fail_next_token": list(self.fail_next_token),
            "gone": self.gone,
            "send_retry_after": self.send_retry_after,
            "today": self.today.isoformat() if self.today else None,
        }


@dataclass
class Stats:
    """What the stand-in has seen since the last reset."""

    requests: Counter[str] = field(default_factory=Counter)
    requests_by_user: Counter[str] = field(default_factory=Counter)
    # API calls per user in each clock hour (the window Fitbit's limit counts in), by hour start.
    requests_per_hour: dict[str, Counter[str]] = field(default_factory=dict)
    notifications_sent: int = 0
    notification_answers: list[int] = field(default_factory=list)
    recent_paths: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_PATHS))
    code_grants: int = 0
    refresh_grants: int = 0
    refused_refreshes: int = 0
    revocations: int = 0
    sent_401: int = 0
    sent_410: int = 0
    sent_429: int = 0
    injected_failures: int = 0

    def as_json(self) -> dict[str, Any]:
        """The counts as JSON."""
        return {
            "requests": dict(self.requests),
            "requests_by_user": dict(self.requests_by_user),
            "requests_per_hour": {user: dict(hours) for user, hours in self.requests_per_hour.items()},
            "notifications_sent": self.notifications_sent,
            "notification_answers": list(self.notification_answers),
            "recent_paths": list(self.recent_paths),
            "code_grants": self.code_grants,
            "refresh_grants": self.refresh_grants,
            "refused_refreshes": self.refused_refreshes,
            "revocations": self.revocations,
            "sent_401": self.sent_401,
            "sent_410": self.sent_410,
            "sent_429": self.sent_429,
            "injected_failures": self.injected_failures,
        }


class StandinState:
    """Users, codes, tokens, settings and counts of one stand-in; methods that touch them take the lock."""

    def __init__(self, *, seed: int, client_id: str, client_secret: str, access_token_seconds: int,
                 gone: bool, today: date | None, rate_limit_per_hour: int | None,
                 clock: Callable[[], float]) -> None:
        self.lock = threading.Lock()
        self.seed = seed
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_token_seconds = access_token_seconds
        self.clock = clock
        self.config = Config(rate_limit_per_hour=rate_limit_per_hour, gone=gone, today=today)
        self.stats = Stats()
        self.users: list[User] = []
        self.users_by_hint: dict[str, User] = {}
        self.codes: dict[str, PendingCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.hour_counts: dict[str, tuple[int, int]] = {}  # user → (hour number, calls in that hour)
        self.subscriber_url: str | None = None

    # --- accounts and consent -------------------------------------------------------------

    def user_for(self, login_hint: str | None) -> User:
        """The user named by ``login_hint``, created on first use; a new user when there is no hint."""
        with self.lock:
            if login_hint and login_hint in self.users_by_hint:
                return self.users_by_hint[login_hint]
            index = len(self.users)
            user = User(index=index, encoded_id=generator.legacy_user_id(self.seed, index),
                        login_hint=login_hint or None)
            self.users.append(user)
            if login_hint:
                self.users_by_hint[login_hint] = user
            return user

    def issue_code(self, *, user: User, redirect_uri: str, scopes: tuple[str, ...],
                   challenge: str | None) -> str:
        """A fresh single-use authorization code for a consent just given."""
        code = secrets.token_hex(20)
        with self.lock:
            self.codes[code] = PendingCode(user=user, redirect_uri=redirect_uri, scopes=scopes,
                                           challenge=challenge, expires_at=self.clock() + CODE_SECONDS)
        return code

    def grant_directly(self, *, user: User, scopes: tuple[str, ...]) -> dict[str, Any]:
        """Tokens for a consent given without the browser round trip (a test shortcut)."""
        with self.lock:
            self.stats.code_grants += 1
            return self._tokens(Grant(user=user, scopes=scopes))

    # --- token endpoint -------------------------------------------------------------------

    def authenticate_client(self, client_id: str, client_secret: str) -> None:
        """Refuse a token request from anyone but the registered client."""
        ok_id = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        ok_secret = hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        if not (ok_id and ok_secret):
            raise FitbitError(401, "invalid_client",
                              f"Invalid authorization header. Client id invalid. {_DOCS}")

    def exchange_code(self, *, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """Trade an authorization code (once) for tokens, checking the redirect URI and PKCE verifier."""
        with self.lock:
            pending = self.codes.pop(code, None)  # single-use, even when the rest of the request is wrong
            if pending is None or pending.expires_at <= self.clock():
                raise FitbitError(400, "invalid_grant", f"Authorization code invalid: {code} {_DOCS}")
            if redirect_uri != pending.redirect_uri:
                raise FitbitError(400, "invalid_request", f"Incorrect redirect_uri. {_DOCS}")
            if pending.challenge is not None:
                if not verifier:
                    raise FitbitError(400, "invalid_request", f"Missing parameters: code_verifier. {_DOCS}")
                if not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
                        s256(verifier).encode(), pending.challenge.encode()):
                    raise FitbitError(400, "invalid_grant", f"Code verifier invalid. {_DOCS}")
            self.stats.code_grants += 1
            return self._tokens(Grant(user=pending.user, scopes=pending.scopes))

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        """New access and refresh tokens; the refresh token presented dies (single use)."""
        with self.lock:
            grant = self.refresh_tokens.pop(refresh_token, None)
            if grant is None or grant.revoked:
                self.stats.refused_refreshes += 1
                raise FitbitError(400, "invalid_grant", f"Refresh token invalid: {refresh_token}. {_DOCS}")
            self.stats.refresh_grants += 1
            return self._tokens(grant)

    def _tokens(self, grant: Grant) -> dict[str, Any]:
        """Issue an access token and a rotated refresh token for a grant; the caller holds the lock."""
        access = "eyJhbGciOiJIUzI1NiJ9." + secrets.token_urlsafe(48)
        now = self.clock()
        self.access_tokens[access] = AccessToken(grant, now, now + self.access_token_seconds)
        if grant.refresh_token:
            self.refresh_tokens.pop(grant.refresh_token, None)
        grant.refresh_token = secrets.token_hex(32)
        self.refresh_tokens[grant.refresh_token] = grant
        return {
            "access_token": access,
            "expires_in": self.access_token_seconds,
            "refresh_token": grant.refresh_token,
            "scope": " ".join(grant.scopes),
            "token_type": "Bearer",
            "user_id": grant.user.encoded_id,
        }

    def revoke(self, token: str) -> None:
        """Kill a token, access or refresh, and the whole grant behind it; unknown tokens are ignored."""
        with self.lock:
            access = self.access_tokens.get(token)
            grant = access.grant if access else self.refresh_tokens.get(token)
            if grant is None or grant.revoked:
                return
            grant.revoked = True
            if grant.refresh_token:
                self.refresh_tokens.pop(grant.refresh_token, None)
            for key in [key for key, value in self.access_tokens.items() if value.grant is grant]:
                del self.access_tokens[key]
            self.stats.revocations += 1

    # --- API gate -------------------------------------------------------------------------

    def count(self, endpoint: str, path: str | None = None) -> None:
        """Count one request to an endpoint (and remember its path)."""
        with self.lock:
            self.stats.requests[endpoint] += 1
            if path is not None:
                self.stats.recent_paths.append(path)

    def latency(self) -> float:
        """Seconds to wait before answering."""
        with self.lock:
            return self.config.latency_ms / 1000

    def take_failure(self, *, token_endpoint: bool = False) -> int | None:
        """The next injected failure status, if any is queued."""
        with self.lock:
            queue = self.config.fail_next_token if token_endpoint else self.config.fail_next
            if not queue:
                return None
            status = queue.pop(0)
            self.stats.injected_failures += 1
            if status == 429:
                self.stats.sent_429 += 1
            return status

    def is_gone(self) -> bool:
        """Whether the API has been switched off (410 for every call)."""
        with self.lock:
            if self.config.gone:
                self.stats.sent_410 += 1
            return self.config.gone

    def send_retry_after(self) -> bool:
        """Whether 429s carry a Retry-After header."""
        with self.lock:
            return self.config.send_retry_after

    def caller(self, authorization: str | None) -> AccessToken:
        """The access token in a Bearer header, or a 401 saying whether it expired or never was."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        with self.lock:
            access = self.access_tokens.get(token) if scheme.lower() == "bearer" else None
            if access is None or access.grant.revoked:
                self.stats.sent_401 += 1
                raise FitbitError(401, "invalid_token", f"Access token invalid: {token}. {_DOCS}")
            if access.expires_at <= self.clock():
                self.stats.sent_401 += 1
                raise FitbitError(401, "expired_token", f"Access token expired: {token}. {_DOCS}")
            self.stats.requests_by_user[access.grant.user.encoded_id] += 1
            hour = datetime.fromtimestamp(self.clock() // 3600 * 3600, UTC).isoformat()
            self.stats.requests_per_hour.setdefault(access.grant.user.encoded_id, Counter())[hour] += 1
            return access

    def admit(self, user: User) -> dict[str, str]:
        """Count a call against the user's hourly quota: its rate-limit headers, or a 429."""
        with self.lock:
            limit = self.config.rate_limit_per_hour
            now = self.clock()
            hour = int(now // 3600)
            reset = max(1, math.ceil((hour + 1) * 3600 - now))
            seen_hour, used = self.hour_counts.get(user.encoded_id, (hour, 0))
            if seen_hour != hour:
                used = 0
            if limit is not None and used >= limit:
                self.stats.sent_429 += 1
                headers = {"Fitbit-Rate-Limit-Limit": str(limit), "Fitbit-Rate-Limit-Remaining": "0",
                           "Fitbit-Rate-Limit-Reset": str(reset)}
                if self.config.send_retry_after:
                    headers["Retry-After"] = str(reset)
                raise FitbitError(429, "system", "Too Many Requests", field_name="n/a", headers=headers)
            used += 1
            self.hour_counts[user.encoded_id] = (hour, used)
            if limit is None:
                return {}
            return {"Fitbit-Rate-Limit-Limit": str(limit), "Fitbit-Rate-Limit-Remaining": str(limit - used),
                    "Fitbit-Rate-Limit-Reset": str(reset)}

    def today_for(self, user: User) -> date:
        """The last day with data for a user: the configured today, else today in the user's zone."""
        with self.lock:
            today = self.config.today
        return today or generator.local_today(self.seed, user.index)

    # --- test controls --------------------------------------------------------------------

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Apply ``/_standin/config`` settings (already validated)."""
        with self.lock:
            for name in ("latency_ms", "rate_limit_per_hour", "gone", "send_retry_after", "today"):
                if name in settings:
                    setattr(self.config, name, settings[name])
            for name in ("fail_next", "fail_next_token"):
                if name in settings:
                    setattr(self.config, name, list(settings[name]))
            if settings.get("expire_access_tokens"):
                now = self.clock()
                for access in self.access_tokens.values():
                    access.expires_at = min(access.expires_at, now)
            if settings.get("revoke_refresh_tokens"):
                for grant in self.refresh_tokens.values():
                    grant.refresh_token = None
                self.refresh_tokens.clear()

    def reset_stats(self) -> None:
        """Zero every count and every user's hourly quota."""
        with self.lock:
            self.stats = Stats()
            self.hour_counts.clear()

    def snapshot(self) -> dict[str, Any]:
        """Counts and settings, for ``/_standin/stats``."""
        with self.lock:
            return {**self.stats.as_json(), "config": self.config.as_json()}

    def user_list(self) -> list[dict[str, Any]]:
        """Every user so far, with what a test needs to compute their data."""
        with self.lock:
            users = list(self.users)
        return [{"index": user.index, "encodedId": user.encoded_id, "loginHint": user.login_hint,
                 "zone": generator.home_zone(self.seed, user.index)} for user in users]


# --- wire formats -------------------------------------------------------------------------------


def fitbit_error(status: int, error_type: str, message: str, *, field_name: str | None = None,
                 headers: Mapping[str, str] | None = None) -> Response:
    """Fitbit's JSON error body with the given status and headers."""
    error: dict[str, Any] = {"errorType": error_type}
    if field_name:
        error["fieldName"] = field_name
    error["message"] = message
    response = jsonify({"errors": [error], "success": False})
    response.status_code = status
    response.headers.update(headers or {})
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api.fitbit.com"'
    return response


def _local(moment: datetime) -> str:
    """A time as Fitbit writes sleep times: local wall clock, milliseconds, no zone."""
    return moment.strftime(_LOCAL_FORMAT)


def elapsed_minutes(sleep: generator.GeneratedSleep) -> int:
    """Real minutes in bed, counted in UTC so that a night across a clock change keeps its length."""
    # GeneratedSleep.minutes_in_period subtracts two times of the same zone, which Python does on the
    # wall clock: it is an hour off on the nights the clocks change.
    return int((sleep.end.astimezone(UTC) - sleep.start.astimezone(UTC)).total_seconds()) // 60


def sleep_log(sleep: generator.GeneratedSleep, zone: ZoneInfo) -> dict[str, Any]:
    """One generated sleep as a v1.2 sleep log entry."""
    classic = sleep.kind == "CLASSIC"
    names = _CLASSIC_LEVELS if classic else _STAGE_LEVELS
    summary: dict[str, dict[str, int]] = {name: {"count": 0, "minutes": 0} for name in names.values()}
    for kind, (minutes, count) in sleep.stage_summary().items():
        summary[names[kind]] = {"count": count, "minutes": minutes}
    if not classic:
        for name in summary:
            summary[name]["thirtyDayAvgMinutes"] = 0
    tail = sleep.stages[-1].minutes if sleep.stages and sleep.stages[-1].kind == "AWAKE" else 0
    in_bed = elapsed_minutes(sleep)
    asleep = in_bed - sleep.minutes_awake
    return {
        "dateOfSleep": sleep.night.isoformat(),
        "duration": in_bed * 60_000,
        "efficiency": round(100 * asleep / in_bed) if in_bed else 0,
        "endTime": _local(sleep.end),
        "infoCode": 0,
        "isMainSleep": sleep.is_main,
        "levels": {
            "data": [{"dateTime": _local(stage.start.astimezone(zone)), "level": names[stage.kind],
                      "seconds": stage.minutes * 60} for stage in sleep.stages],
            "shortData": [],
            "summary": summary,
        },
        "logId": int(sleep.point_id),
        "logType": "auto_detected",
        "minutesAfterWakeup": tail if classic else 0,
        "minutesAsleep": asleep,
        "minutesAwake": sleep.minutes_awake,
        "minutesToFallAsleep": sleep.minutes_to_fall_asleep if classic else 0,
        "startTime": _local(sleep.start),
        "timeInBed": in_bed,
        "type": "classic" if classic else "stages",
    }


# --- request parsing ----------------------------------------------------------------------------


def _date(raw: str, field_name: str, today: date) -> date:
    """A path date: ``yyyy-MM-dd`` or ``today``."""
    if raw == "today":
        return today
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise FitbitError(400, "validation", f"Invalid date:{raw}", field_name=field_name) from None


def _range(base: str, end: str, today: date, *, max_days: int, periods: bool) -> tuple[date, date]:
    """The first and last day of a ``{base-date}/{end-date|period}`` pair, both included."""
    if periods and end in _PERIODS:
        last = _date(base, "base-date", today)
        return last - timedelta(days=_PERIODS[end] - 1), last
    first = _date(base, "base-date", today)
    last = _date(end, "end-date", today)
    if last < first:
        raise FitbitError(400, "validation", "Invalid date range: end-date must not be before base-date.",
                          field_name="end-date")
    if (last - first).days + 1 > max_days:
        raise FitbitError(400, "validation", f"The date range must not be longer than {max_days} days.",
                          field_name="end-date")
    return first, last


# --- views --------------------------------------------------------------------------------------

bp = Blueprint("fitbit_legacy_standin", __name__)


def _state() -> StandinState:
    """The stand-in's state, kept on the app."""
    state: StandinState = current_app.extensions[EXTENSION]
    return state


@bp.errorhandler(FitbitError)
def _fitbit_error(error: FitbitError) -> Response:
    """Answer a failure in Fitbit's shape."""
    return fitbit_error(error.status, error.error_type, error.message, field_name=error.field_name,
                        headers=error.headers)


def _injected(status: int, *, retry_after: bool) -> FitbitError:
    """The error for a failure queued through ``fail_next``."""
    if status == 429:
        return FitbitError(429, "system", "Too Many Requests (injected by the stand-in)", field_name="n/a",
                           headers={"Retry-After": "1"} if retry_after else {})
    if status == 401:
        return FitbitError(401, "expired_token", f"Access token expired (injected). {_DOCS}")
    if status == 410:
        return _gone()
    return FitbitError(status, "system" if status >= 500 else "request",
                       f"Injected failure {status}.")


def _gone() -> FitbitError:
    """The answer of every API call after the shutdown."""
    return FitbitError(410, "gone", "The Fitbit Web API has been turned off. Use the Google Health API: "
                                    "https://developers.google.com/health")


@dataclass(frozen=True)
class Caller:
    """Who is calling and the rate-limit headers their answer carries."""

    user: User
    scopes: tuple[str, ...]
    issued_at: float
    expires_at: float
    headers: dict[str, str]


def _api_gate(endpoint: str, scope: str | None, user_in_path: str) -> Caller:
    """Count, delay, inject failures, 410 when gone, authenticate, check the user, rate-limit, check scope."""
    state = _state()
    state.count(endpoint, request.path)
    time.sleep(state.latency())
    failure = state.take_failure()
    if failure is not None:
        raise _injected(failure, retry_after=state.send_retry_after())
    if state.is_gone():
        raise _gone()
    access = state.caller(request.headers.get("Authorization"))
    user = access.grant.user
    if user_in_path not in ("-", user.encoded_id):
        raise FitbitError(403, "insufficient_permissions",
                          "The caller does not have permission to access this user's data.")
    headers = state.admit(user)
    if scope and scope not in access.grant.scopes:
        raise FitbitError(403, "insufficient_scope",
                          f"This application does not have permission to access {scope} data. {_DOCS}",
                          headers=headers)
    return Caller(user=user, scopes=access.grant.scopes, issued_at=access.issued_at,
                  expires_at=access.expires_at, headers=headers)


def _answer(body: dict[str, Any], caller: Caller) -> Response:
    """A JSON answer with the caller's rate-limit headers."""
    response = jsonify(body)
    response.headers.update(caller.headers)
    return response


@bp.get("/1/user/<user>/profile.json")
def profile(user: str) -> Response:
    """The member's profile (needs the ``profile`` scope); ``encodedId`` is the Fitbit user id."""
    caller = _api_gate("profile", "profile", user)
    state = _state()
    zone = generator.home_zone(state.seed, caller.user.index)
    habits = generator.profile(state.seed, caller.user.index)
    first, _ = generator.data_window(state.today_for(caller.user))
    offset = datetime.now(ZoneInfo(zone)).utcoffset() or timedelta()
    return _answer({"user": {
        "avatar": "https://static0.fitbit.com/images/profile/defaultProfile_100.png",
        "averageDailySteps": habits.weekday_steps,
        "displayName": f"Walker {caller.user.index}",
        "distanceUnit": "METRIC",
        "encodedId": caller.user.encoded_id,
        "fullName": f"Demo Walker {caller.user.index}",
        "locale": "en_US",
        "memberSince": first.isoformat(),
        "offsetFromUTCMillis": int(offset.total_seconds() * 1000),
        "timezone": zone,
    }}, caller)


@bp.post("/1.1/oauth2/introspect")
def introspect() -> Response:
    """The state of a token (RFC 7662, Fitbit's 1.1 shape); the caller authenticates with a Bearer token."""
    caller = _api_gate("introspect", None, "-")
    token_value = request.form.get("token", "")
    state = _state()
    with state.lock:
        access = state.access_tokens.get(token_value)
        active = access is not None and not access.grant.revoked and access.expires_at > state.clock()
    if not active or access is None:
        return _answer({"active": False}, caller)
    scope = ", ".join(f"{name.upper()}=READ" for name in access.grant.scopes)
    return _answer({"active": True, "scope": "{" + scope + "}", "client_id": state.client_id,
                    "user_id": access.grant.user.encoded_id, "token_type": "access_token",
                    "exp": int(access.expires_at * 1000), "iat": int(access.issued_at * 1000)}, caller)


@bp.get("/1/user/<user>/activities/steps/date/<base>/<end>.json")
def steps(user: str, base: str, end: str) -> Response:
    """Steps per day, every day of the range (``"0"`` when nothing was counted), values as strings."""
    caller = _api_gate("activities/steps", "activity", user)
    state = _state()
    today = state.today_for(caller.user)
    first, last = _range(base, end, today, max_days=MAX_STEPS_DAYS, periods=True)
    window_first, window_last = generator.data_window(today)
    series = []
    for day in generator.days(first, last):
        count = (generator.daily_steps(state.seed, caller.user.index, day)
                 if window_first <= day <= window_last else None)
        series.append({"dateTime": day.isoformat(), "value": str(count or 0)})
    return _answer({"activities-steps": series}, caller)


@bp.get("/1.2/user/<user>/sleep/date/<base>/<end>.json")
def sleep_range(user: str, base: str, end: str) -> Response:
    """Sleep logs whose ``dateOfSleep`` falls in the range (at most 100 days), newest first."""
    caller = _api_gate("sleep", "sleep", user)
    first, last = _range(base, end, _state().today_for(caller.user), max_days=MAX_SLEEP_DAYS, periods=False)
    return _answer({"sleep": _sleep_logs(caller.user, first, last)}, caller)


@bp.get("/1.2/user/<user>/sleep/date/<day>.json")
def sleep_day(user: str, day: str) -> Response:
    """One night's sleep logs with the day's summary."""
    caller = _api_gate("sleep", "sleep", user)
    night = _date(day, "date", _state().today_for(caller.user))
    logs = _sleep_logs(caller.user, night, night)
    summary = {"totalMinutesAsleep": sum(log["minutesAsleep"] for log in logs),
               "totalSleepRecords": len(logs), "totalTimeInBed": sum(log["timeInBed"] for log in logs)}
    return _answer({"sleep": logs, "summary": summary}, caller)


def _sleep_logs(user: User, first: date, last: date) -> list[dict[str, Any]]:
    """The user's sleeps ending on a local date in [first, last], newest first."""
    state = _state()
    zone = ZoneInfo(generator.home_zone(state.seed, user.index))
    window_first, window_last = generator.data_window(state.today_for(user))
    sleeps = [sleep for night in generator.days(max(first, window_first), min(last, window_last))
              for sleep in generator.sleep_sessions(state.seed, user.index, night)]
    sleeps.sort(key=lambda sleep: sleep.start, reverse=True)
    return [sleep_log(sleep, zone) for sleep in sleeps]


# --- OAuth --------------------------------------------------------------------------------------

_PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": "default-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}
_CARRIED = ("client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge",
            "code_challenge_method", "prompt")


def _authorize_problem(state: StandinState, params: Mapping[str, str]) -> str | None:
    """What is wrong with an authorization request, if anything."""
    if params.get("client_id") != state.client_id:
        return "invalid_client: Invalid client_id."
    parts = urlsplit(params.get("redirect_uri", ""))
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        return "invalid_request: Invalid redirect_uri parameter value."
    if params.get("response_type") != "code":
        return "unsupported_response_type: The stand-in supports response_type=code only."
    scopes = params.get("scope", "").split()
    if not scopes:
        return "invalid_scope: Missing parameters: scope."
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        return f"invalid_scope: Invalid scope: {' '.join(unknown)}."
    challenge = params.get("code_challenge")
    if challenge is not None:
        if params.get("code_challenge_method") != "S256":
            return "invalid_request: code_challenge_method must be S256."
        if not _CHALLENGE.fullmatch(challenge):
            return "invalid_request: code_challenge must be 43 base64url characters (S256)."
    return None


def _with_query(url: str, params: Mapping[str, str]) -> str:
    """A URL with parameters added to its query and Fitbit's ``#_=_`` fragment."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query), fragment="_=_"))


def _consent_page(params: Mapping[str, str], login_hint: str) -> str:
    """The consent form: the demo account, requested scopes as ticked boxes, Allow and Deny."""
    hidden = "".join(f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
                     for name in _CARRIED if params.get(name))
    boxes = "".join(
        f'<li><label><input type="checkbox" name="granted_scope" value="{html.escape(scope)}" checked> '
        f"{html.escape(SCOPE_LABELS.get(scope, scope))}</label></li>"
        for scope in params.get("scope", "").split())
    return page_html("Fitbit – authorize (stand-in)", (
        "<h1>Hearten would like access to the following data in your Fitbit account</h1>"
        '<form method="post">'
        f'{hidden}<input type="hidden" name="granular" value="1">'
        f'<p><label>Demo account <input name="login_hint" value="{html.escape(login_hint)}"></label></p>'
        f"<ul>{boxes}</ul>"
        '<button type="submit" name="decision" value="allow">Allow</button> '
        '<button type="submit" name="decision" value="deny">Deny</button>'
        "</form>"))


@bp.route("/oauth2/authorize", methods=["GET", "POST"])
def authorize() -> BaseResponse:
    """Fitbit's consent screen: GET shows it, POST answers Allow or Deny with a redirect."""
    state = _state()
    state.count("authorize")
    params = {key: value for key, value in request.values.items() if key in _CARRIED}
    problem = _authorize_problem(state, params)
    if problem:
        error, _, detail = problem.partition(": ")
        page = page_html("Error", f"<h1>{html.escape(error)}</h1><p>{html.escape(detail)}</p>")
        return Response(page, status=400, headers=_PAGE_HEADERS)
    login_hint = request.values.get("login_hint", "")
    if request.method == "GET":
        return Response(_consent_page(params, login_hint), headers=_PAGE_HEADERS)
    carried_state = {"state": params["state"]} if params.get("state") else {}
    requested = tuple(params["scope"].split())
    scopes = requested
    if request.form.get("granular"):
        ticked = set(request.form.getlist("granted_scope"))
        scopes = tuple(scope for scope in requested if scope in ticked)
    if request.form.get("decision") != "allow" or not scopes:
        return redirect(_with_query(params["redirect_uri"], {
            "error": "access_denied", "error_description": "The user denied the request.", **carried_state}))
    user = state.user_for(login_hint or None)
    code = state.issue_code(user=user, redirect_uri=params["redirect_uri"], scopes=scopes,
                            challenge=params.get("code_challenge"))
    return redirect(_with_query(params["redirect_uri"], {"code": code, **carried_state}))


def _token_gate(endpoint: str) -> StandinState:
    """Count, delay, inject failures and authenticate the client (HTTP Basic) at the token endpoints."""
    state = _state()
    state.count(endpoint)
    time.sleep(state.latency())
    failure = state.take_failure(token_endpoint=True)
    if failure is not None:
        raise _injected(failure, retry_after=state.send_retry_after())
    auth = request.authorization
    if auth is None or auth.type != "basic":
        raise FitbitError(401, "invalid_client",
                          f"Authorization header required: Basic base64(client_id:client_secret). {_DOCS}")
    state.authenticate_client(unquote_plus(auth.username or ""), unquote_plus(auth.password or ""))
    return state


@bp.post("/oauth2/token")
def token() -> Response:
    """Exchange an authorization code, or a refresh token, for tokens."""
    state = _token_gate("token")
    form = request.form
    grant_type = form.get("grant_type", "")
    if grant_type == "authorization_code":
        if not form.get("code"):
            raise FitbitError(400, "invalid_request", f"Missing parameters: code. {_DOCS}")
        body = state.exchange_code(code=form["code"], redirect_uri=form.get("redirect_uri", ""),
                                   verifier=form.get("code_verifier", ""))
    elif grant_type == "refresh_token":
        body = state.refresh(form.get("refresh_token", ""))
    elif not grant_type:
        raise FitbitError(400, "invalid_request", f"Missing parameters: grant_type. {_DOCS}")
    else:
        raise FitbitError(400, "unsupported_grant_type", f"Unsupported grant_type: {grant_type}. {_DOCS}")
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/oauth2/revoke")
def revoke() -> Response:
    """Revoke a token (access or refresh) and the grant behind it."""
    state = _token_gate("revoke")
    token_value = request.form.get("token", "")
    if not token_value:
        raise FitbitError(400, "invalid_request", f"Missing parameters: token. {_DOCS}")
    state.revoke(token_value)
    return jsonify({})


# --- test controls ------------------------------------------------------------------------------

_STATUS_RANGE = range(400, 600)
_SETTINGS = {"latency_ms", "rate_limit_per_hour", "fail_next", "fail_next_token", "gone", "send_retry_after",
             "today", "expire_access_tokens", "revoke_refresh_tokens"}


def _validated_settings(body: Any) -> dict[str, Any]:
    """Check a ``/_standin/config`` body; raise ValueError naming the first bad field."""
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    unknown = sorted(set(body) - _SETTINGS)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(unknown)}")
    settings = dict(body)
    if "latency_ms" in body and not is_count(body["latency_ms"]):
        raise ValueError("latency_ms must be a whole number ≥ 0")
    limit = body.get("rate_limit_per_hour")
    if limit is not None and not (is_count(limit) and limit > 0):
        raise ValueError("rate_limit_per_hour must be a whole number ≥ 1, or null for no limit")
    for name in ("fail_next", "fail_next_token"):
        statuses = body.get(name, [])
        if not isinstance(statuses, list) or not all(is_count(s) and s in _STATUS_RANGE for s in statuses):
            raise ValueError(f"{name} must be a list of HTTP statuses from 400 to 599")
    for name in ("gone", "send_retry_after", "expire_access_tokens", "revoke_refresh_tokens"):
        if not isinstance(body.get(name, False), bool):
            raise ValueError(f"{name} must be true or false")
    if body.get("today") is not None:
        try:
            settings["today"] = date.fromisoformat(str(body["today"]))
        except ValueError:
            raise ValueError("today must be a date (YYYY-MM-DD) or null") from None
    return settings


@bp.get("/_standin/stats")
def stats() -> Response:
    """Counts of requests, grants, refusals and errors sent, recent API paths and the current settings."""
    return jsonify(_state().snapshot())


@bp.route("/_standin/config", methods=["GET", "POST"])
def config() -> Response:
    """Read or change latency, rate limit, failures, the shutdown and the day; expire or revoke tokens."""
    state = _state()
    if request.method == "POST":
        try:
            state.configure(_validated_settings(request.get_json(silent=True)))
        except ValueError as error:
            return control_error(str(error))
    return jsonify(state.snapshot()["config"])


@bp.post("/_standin/reset")
def reset() -> Response:
    """Zero the counts and the hourly quotas."""
    state = _state()
    state.reset_stats()
    return jsonify(state.snapshot())


@bp.get("/_standin/users")
def users() -> Response:
    """Every fake user so far, with the index and zone that generate their data."""
    return jsonify({"users": _state().user_list()})


@bp.post("/_standin/tokens")
def direct_tokens() -> Response:
    """Tokens without the browser round trip: body ``{"login_hint"?, "scopes"?}``."""
    state = _state()
    body = request.get_json(silent=True) or {}
    scopes = (body.get("scopes") if isinstance(body, dict) else None) or ["activity", "sleep"]
    if not isinstance(body, dict) or not isinstance(scopes, list) or not all(
            isinstance(scope, str) and scope in SCOPES for scope in scopes):
        return control_error('expected {"login_hint": str, "scopes": [Fitbit scopes]}')
    user = state.user_for(str(body["login_hint"]) if body.get("login_hint") else None)
    tokens = state.grant_directly(user=user, scopes=tuple(scopes))
    return jsonify({**tokens, "index": user.index})


# --- subscriptions: verifying a subscriber and sending it notifications -------------------------

NOTIFY_TIMEOUT = 5.0  # Fitbit expects a subscriber to answer within 5 seconds
COLLECTIONS = ("activities", "body", "foods", "sleep", "userRevokedAccess", "deleteUser")


def sign_notification(body: bytes, client_secret: str) -> str:
    """Fitbit's ``X-Fitbit-Signature``: base64(HMAC-SHA1(key = client secret + "&", body))."""
    return base64.b64encode(hmac.new(f"{client_secret}&".encode(), body, hashlib.sha1).digest()).decode()


@bp.post("/_standin/subscriber")
def subscriber() -> Response:
    """Verify a subscriber endpoint as Fitbit does, and keep it if it passes.

    Body ``{"url", "verify_code"}``: GET ``url?verify=<code>`` must answer 204, then
    ``url?verify=<another code>`` must answer 404.
    """
    state = _state()
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not isinstance(
            body.get("verify_code"), str):
        return control_error('expected {"url": str, "verify_code": str}')
    answers = {}
    for name, code in (("correct", body["verify_code"]), ("incorrect", secrets.token_hex(16))):
        try:
            answers[name] = requests.get(body["url"], params={"verify": code}, timeout=NOTIFY_TIMEOUT,
                                         allow_redirects=False).status_code
        except requests.RequestException as error:
            return control_error(f"the subscriber could not be reached: {type(error).__name__}")
    verified = answers == {"correct": 204, "incorrect": 404}
    with state.lock:
        if verified:
            state.subscriber_url = body["url"]
    return jsonify({"verified": verified, "answers": answers})


def _notification(state: StandinState, item: Any) -> dict[str, Any]:
    """One notification in Fitbit's shape, from a test's shorthand; ValueError when it is wrong."""
    if not isinstance(item, dict) or item.get("collectionType") not in COLLECTIONS:
        raise ValueError(f"each notification needs a collectionType among {', '.join(COLLECTIONS)}")
    owner = item.get("ownerId")
    if owner is None:
        user = state.user_for(str(item["login_hint"])) if item.get("login_hint") else None
        if user is None:
            raise ValueError("each notification needs an ownerId or a login_hint")
        owner = user.encoded_id
    day = item.get("date") or datetime.fromtimestamp(state.clock(), UTC).date().isoformat()
    return {"collectionType": item["collectionType"], "date": str(day), "ownerId": str(owner),
            "ownerType": "user", "subscriptionId": str(item.get("subscriptionId") or "hearten-1")}


@bp.post("/_standin/notify")
def notify() -> Response:
    """POST signed notifications to the verified subscriber, as Fitbit does; answers its status.

    Body ``{"notifications": [{"collectionType", "login_hint" | "ownerId", "date"?,
    "subscriptionId"?}], "signature": "valid" | "forged" | "none"}``.
    """
    state = _state()
    body = request.get_json(silent=True)
    signature = body.get("signature", "valid") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(body.get("notifications"), list) or signature not in (
            "valid", "forged", "none"):
        return control_error('expected {"notifications": [...], "signature": "valid" | "forged" | "none"}')
    try:
        notifications = [_notification(state, item) for item in body["notifications"]]
    except ValueError as error:
        return control_error(str(error))
    with state.lock:
        url = state.subscriber_url
    if url is None:
        return control_error("no verified subscriber: POST /_standin/subscriber first")
    payload = json.dumps(notifications).encode()
    headers = {"Content-Type": "application/json"}
    if signature != "none":
        secret = state.client_secret if signature == "valid" else secrets.token_hex(16)
        headers["X-Fitbit-Signature"] = sign_notification(payload, secret)
    started = time.monotonic()
    try:
        status = requests.post(url, data=payload, headers=headers, timeout=NOTIFY_TIMEOUT,
                               allow_redirects=False).status_code
    except requests.RequestException as error:
        return control_error(f"the subscriber could not be reached: {type(error).__name__}")
    with state.lock:
        state.stats.notifications_sent += 1
        state.stats.notification_answers.append(status)
    return jsonify({"status": status, "seconds": round(time.monotonic() - started, 3),
                    "notifications": notifications})


# --- the app ------------------------------------------------------------------------------------


def _http_error(error: HTTPException) -> Response:
    """Unknown paths and methods: Fitbit's JSON shape on the API and token paths, plain text elsewhere."""
    code = error.code or 500
    if request.path.startswith(("/1/", "/1.1/", "/1.2/", "/oauth2/token", "/oauth2/revoke")):
        if code == 404:
            return fitbit_error(404, "not_found", "The API you are requesting could not be found.")
        return fitbit_error(code, "request", error.description or error.name)
    return Response(error.description or error.name, status=code, mimetype="text/plain")


def create_fitbit_standin(*, seed: int = 0, client_id: str = "hearten-demo",
                          client_secret: str = "hearten-demo-secret",  # noqa: S107 - a local fake's demo secret
                          gone: bool = False, access_token_seconds: int = 28800, today: date | None = None,
                          rate_limit_per_hour: int | None = RATE_LIMIT_PER_HOUR,
                          clock: Callable[[], float] = time.time) -> Flask:
    """Build a stand-in for Fitbit OAuth and the legacy Web API; its state lives in memory on the app."""
    app = Flask(__name__)
    app.extensions[EXTENSION] = StandinState(
        seed=seed, client_id=client_id, client_secret=client_secret,
        access_token_seconds=access_token_seconds, gone=gone, today=today,
        rate_limit_per_hour=rate_limit_per_hour, clock=clock,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Fitbit's field order
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _http_error)
    return app


def standin_state(app: Flask) -> StandinState:
    """The state of a stand-in app, for tests that look inside."""
    state: StandinState = app.extensions[EXTENSION]
    return state


def main(argv: Iterable[str] | None = None) -> None:
    """Serve the stand-in on a local port until interrupted."""
    parser = argparse.ArgumentParser(description="Local stand-in for Fitbit OAuth and the legacy Web API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8602)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--client-id", default="hearten-demo")
    parser.add_argument("--client-secret", default="hearten-demo-secret")
    parser.add_argument("--access-token-seconds", type=int, default=28800)
    parser.add_argument("--rate-limit", type=int, default=RATE_LIMIT_PER_HOUR,
                        help="requests per user per hour")
    parser.add_argument("--gone", action="store_true",
                        help="answer every API call with 410 Gone, as after the November 2026 shutdown")
    parser.add_argument("--today", type=date.fromisoformat, default=None,
                        help="last day with data (YYYY-MM-DD); default: today in each user's zone")
    parser.add_argument("--quiet", action="store_true", help="do not log every request")
    args = parser.parse_args(None if argv is None else list(argv))
    app = create_fitbit_standin(
        seed=args.seed, client_id=args.client_id, client_secret=args.client_secret, gone=args.gone,
        access_token_seconds=args.access_token_seconds, today=args.today,
        rate_limit_per_hour=args.rate_limit,
    )
    base = f"http://{args.host}:{args.port}"
    print(f"Fitbit stand-in on {base}: authorize {base}/oauth2/authorize, token {base}/oauth2/token, "
          f"revoke {base}/oauth2/revoke, API {base} (1, 1.2){' — gone (410)' if args.gone else ''}, "
          f"controls {base}/_standin/", flush=True)
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
