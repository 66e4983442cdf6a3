"""A local stand-in for Google OAuth 2.0 and the Google Health API v4, speaking their formats over HTTP.

Tests and the offline demo point the Google adapter's base URLs here. Paths mirror the real hosts:
``/o/oauth2/v2/auth`` (accounts.google.com), ``/token`` and ``/revoke`` (oauth2.googleapis.com) and
``/v4/...`` (health.googleapis.com). ``/_standin/...`` holds the test controls.
Run it with ``python -m wearables.standins.google_health --port 8601 [--seed N]``.
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, current_app, jsonify, redirect, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import run_simple
from werkzeug.wrappers import Response as BaseResponse

from wearables.standins import generator
from wearables.standins.common import control_error, is_count, page_html, s256

STEPS_SCOPE = "https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly"
SLEEP_SCOPE = "https://www.googleapis.com/auth/googlehealth.sleep.readonly"
SCOPE_LABELS = {STEPS_SCOPE: "Steps and other activity", SLEEP_SCOPE: "Sleep"}
EXTENSION = "google_health_standin"
CODE_SECONDS = 600
MAX_ROLLUP_DAYS = 90
MAX_ROLLUP_PAGE = 90
SLEEP_PAGE_MAX = 25
STEPS_PAGE_DEFAULT = 1440
STEPS_PAGE_MAX = 10000

T = TypeVar("T")

_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_CLAUSE = re.compile(r'([A-Za-z_.]+)\s*(>=|<)\s*"([^"]*)"')
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    405: "UNIMPLEMENTED", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
    501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
    "other valid authentication credential."
)


class ApiError(Exception):
    """A Health API failure, answered as Google's JSON error."""

    def __init__(self, code: int, message: str, *, reason: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.retry_after = retry_after


class OAuthError(Exception):
    """A token-endpoint failure, answered as ``{"error", "error_description"}``."""

    def __init__(self, status: int, error: str, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.retry_after = retry_after


@dataclass
class User:
    """A fake Google account that has a Health API profile."""

    index: int
    health_user_id: str
    legacy_user_id: str
    login_hint: str | None


@dataclass
class Grant:
    """What one consent allowed: a user, some scopes and (offline access) one live refresh token."""

    user: User
    client_id: str
    scopes: tuple[str, ...]
    refresh_token: str | None = None
    revoked: bool = False


@dataclass
class PendingCode:
    """An authorization code waiting to be exchanged."""

    user: User
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str
    offline: bool
    expires_at: float


@dataclass
class AccessToken:
    """An access token and the grant it speaks for."""

    grant: Grant
    expires_at: float


@dataclass
class Config:
    """Knobs the tests turn through ``/_standin/config``."""

    latency_ms: int = 0
    rate_limit_per_minute: int | None = 300
    fail_next: list[int] = field(default_factory=list)
    fail_next_token: list[int] = field(default_factory=list)
    today: date | None = None
    # The largest sleep page served (Google's current maximum is 25; a revision may lower it).
    sleep_page_max: int = SLEEP_PAGE_MAX

    def as_json(self) -> dict[str, Any]:
        """The settings as JSON."""
        return {
            "latency_ms": self.latency_ms,
            "rate_limit_per_minute": self.rate_limit_per_minute,
            "sleep_page_max": self.sleep_page_max,
            "fail_next": list(self.fail_next),
            "fail_next_token": list(self.fail_next_token),
            "today": self.today.isoformat() if self.today else None,
        }


@dataclass
class Stats:
    """What the stand-in has seen since the last reset."""

    requests: Counter[str] = field(default_factory=Counter)
    requests_by_user: Counter[str] = field(default_factory=Counter)
    # The most API calls each user made within any 60 seconds (what the per-minute limit counts).
    busiest_minute_by_user: Counter[str] = field(default_factory=Counter)
    code_grants: int = 0
    refresh_grants: int = 0
    refused_refreshes: int = 0
    revocations: int = 0
    sent_401: int = 0
    sent_429: int = 0
    injected_failures: int = 0

    def as_json(self) -> dict[str, Any]:
        """The counts as JSON."""
        return {
            "requests": dict(self.requests),
            "requests_by_user": dict(self.requests_by_user),
            "busiest_minute_by_user": dict(self.busiest_minute_by_user),
            "code_grants": self.code_grants,
            "refresh_grants": self.refresh_grants,
            "refused_refreshes": self.refused_refreshes,
            "revocations": self.revocations,
            "sent_401": self.sent_401,
            "sent_429": self.sent_429,
            "injected_failures": self.injected_failures,
        }


class StandinState:
    """Users, codes, tokens, settings and counts of one stand-in; methods that touch them take the lock."""

    def __init__(self, *, seed: int, client_id: str, client_secret: str, access_token_seconds: int,
                 today: date | None, rate_limit_per_minute: int | None,
                 clock: Callable[[], float]) -> None:
        self.lock = threading.Lock()
        self.seed = seed
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_token_seconds = access_token_seconds
        self.clock = clock
        self.config = Config(rate_limit_per_minute=rate_limit_per_minute, today=today)
        self.stats = Stats()
        self.users: list[User] = []
        self.users_by_hint: dict[str, User] = {}
        self.codes: dict[str, PendingCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.recent_calls: dict[str, deque[float]] = {}

    # --- accounts and consent -------------------------------------------------------------

    def user_for(self, login_hint: str | None) -> User:
        """The user named by ``login_hint``, created on first use; a new user when there is no hint."""
        with self.lock:
            if login_hint and login_hint in self.users_by_hint:
                return self.users_by_hint[login_hint]
            index = len(self.users)
            user = User(
                index=index,
                health_user_id=generator.health_user_id(self.seed, index),
                legacy_user_id=generator.legacy_user_id(self.seed, index),
                login_hint=login_hint or None,
            )
            self.users.append(user)
            if login_hint:
                self.users_by_hint[login_hint] = user
            return user

    def issue_code(self, *, user: User, redirect_uri: str, scopes: tuple[str, ...], challenge: str,
                   offline: bool) -> str:
        """A fresh single-use authorization code for a consent just given."""
        code = "4/0" + secrets.token_urlsafe(32)
        with self.lock:
            self.codes[code] = PendingCode(
                user=user, client_id=self.client_id, redirect_uri=redirect_uri, scopes=scopes,
                challenge=challenge, offline=offline, expires_at=self.clock() + CODE_SECONDS,
            )
        return code

    def grant_directly(self, *, user: User, scopes: tuple[str, ...], offline: bool) -> dict[str, Any]:
        """Tokens for a consent given without the browser round trip (a test shortcut)."""
        with self.lock:
            grant = Grant(user=user, client_id=self.client_id, scopes=scopes)
            self.stats.code_grants += 1
            return self._tokens(grant, refresh=offline)

    # --- token endpoint -------------------------------------------------------------------

    def authenticate_client(self, client_id: str, client_secret: str) -> None:
        """Refuse a token request from anyone but the registered client."""
        ok_id = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        ok_secret = hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        if not (ok_id and ok_secret):
            raise OAuthError(401, "invalid_client", "Unauthorized")

    def exchange_code(self, *, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        """Trade an authorization code (once) for tokens, checking the redirect URI and PKCE verifier."""
        with self.lock:
            pending = self.codes.pop(code, None)  # single-use, even when the rest of the request is wrong
            if pending is None or pending.expires_at <= self.clock():
                raise OAuthError(400, "invalid_grant", "Malformed auth code, or it was already used.")
            if redirect_uri != pending.redirect_uri:
                raise OAuthError(400, "invalid_grant", "Bad Request: redirect_uri does not match.")
            if not verifier:
                raise OAuthError(400, "invalid_grant", "Missing code verifier.")
            if not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
                    s256(verifier).encode(), pending.challenge.encode()):
                raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
            grant = Grant(user=pending.user, client_id=pending.client_id, scopes=pending.scopes)
            self.stats.code_grants += 1
            return self._tokens(grant, refresh=pending.offline)

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        """A new access token and a new refresh token; the refresh token presented dies (single use)."""
        with self.lock:
            grant = self.refresh_tokens.pop(refresh_token, None)
            if grant is None or grant.revoked:
                self.stats.refused_refreshes += 1
                raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
            self.stats.refresh_grants += 1
            return self._tokens(grant, refresh=True)

    def _tokens(self, grant: Grant, *, refresh: bool) -> dict[str, Any]:
        """Issue an access token (and a rotated refresh token) for a grant; the caller holds the lock."""
        access = "ya29.a0" + secrets.token_urlsafe(48)
        self.access_tokens[access] = AccessToken(grant, self.clock() + self.access_token_seconds)
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": self.access_token_seconds,
            "scope": " ".join(grant.scopes),
            "token_type": "Bearer",
        }
        if refresh:
            if grant.refresh_token:
                self.refresh_tokens.pop(grant.refresh_token, None)
            grant.refresh_token = "1//0" + secrets.token_urlsafe(48)
            self.refresh_tokens[grant.refresh_token] = grant
            body["refresh_token"] = grant.refresh_token
        return body

    def revoke(self, token: str) -> None:
        """Kill a token, access or refresh, and the whole grant behind it."""
        with self.lock:
            access = self.access_tokens.get(token)
            grant = access.grant if access else self.refresh_tokens.get(token)
            if grant is None or grant.revoked:
                raise OAuthError(400, "invalid_token", "Token expired or revoked")
            grant.revoked = True
            if grant.refresh_token:
                self.refresh_tokens.pop(grant.refresh_token, None)
            for key in [key for key, value in self.access_tokens.items() if value.grant is grant]:
                del self.access_tokens[key]
            self.stats.revocations += 1

    # --- API gate -------------------------------------------------------------------------

    def count(self, endpoint: str) -> None:
        """Count one request to an endpoint."""
        with self.lock:
            self.stats.requests[endpoint] += 1

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

    def caller(self, authorization: str | None) -> Grant:
        """The grant behind a Bearer token, or a 401."""
        scheme, _, token = (authorization or "").partition(" ")
        with self.lock:
            access = self.access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            if access is None or access.grant.revoked or access.expires_at <= self.clock():
                self.stats.sent_401 += 1
                raise ApiError(401, _UNAUTHENTICATED, reason="ACCESS_TOKEN_EXPIRED" if access else None)
            self.stats.requests_by_user[access.grant.user.health_user_id] += 1
            return access.grant

    def admit(self, user: User) -> None:
        """Enforce the per-user requests-per-minute limit (sliding window), or answer 429."""
        with self.lock:
            limit = self.config.rate_limit_per_minute
            now = self.clock()
            calls = self.recent_calls.setdefault(user.health_user_id, deque())
            while calls and calls[0] <= now - 60:
                calls.popleft()
            if limit is not None and len(calls) >= limit:
                self.stats.sent_429 += 1
                retry_after = max(1, math.ceil(calls[0] + 60 - now))
                raise ApiError(429, f"Quota exceeded: {limit} requests per minute per user.",
                               reason="RATE_LIMIT_EXCEEDED", retry_after=retry_after)
            calls.append(now)
            busiest = self.stats.busiest_minute_by_user
            busiest[user.health_user_id] = max(busiest[user.health_user_id], len(calls))

    def today_for(self, user: User) -> date:
        """The last day with data for a user: the configured today, else today in the user's zone."""
        with self.lock:
            today = self.config.today
        return today or generator.local_today(self.seed, user.index)

    # --- test controls --------------------------------------------------------------------

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Apply ``/_standin/config`` settings (already validated)."""
        with self.lock:
            if "latency_ms" in settings:
                self.config.latency_ms = settings["latency_ms"]
            if "rate_limit_per_minute" in settings:
                self.config.rate_limit_per_minute = settings["rate_limit_per_minute"]
            if "fail_next" in settings:
                self.config.fail_next = list(settings["fail_next"])
            if "fail_next_token" in settings:
                self.config.fail_next_token = list(settings["fail_next_token"])
            if "today" in settings:
                self.config.today = settings["today"]
            if "sleep_page_max" in settings:
                self.config.sleep_page_max = settings["sleep_page_max"]
            if settings.get("expire_access_tokens"):
                now = self.clock()
                for access in self.access_tokens.values():
                    access.expires_at = min(access.expires_at, now)
            if settings.get("revoke_refresh_tokens"):
                for grant in self.refresh_tokens.values():
                    grant.refresh_token = None
                self.refresh_tokens.clear()

    def reset_stats(self) -> None:
        """Zero every count."""
        with self.lock:
            self.stats = Stats()

    def snapshot(self) -> dict[str, Any]:
        """Counts and settings, for ``/_standin/stats``."""
        with self.lock:
            return {**self.stats.as_json(), "config": self.config.as_json()}

    def user_list(self) -> list[dict[str, Any]]:
        """Every user so far, with what a test needs to compute their data."""
        with self.lock:
            users = list(self.users)
        return [
            {"index": user.index, "healthUserId": user.health_user_id, "legacyUserId": user.legacy_user_id,
             "loginHint": user.login_hint, "zone": generator.home_zone(self.seed, user.index)}
            for user in users
        ]


# --- wire formats -------------------------------------------------------------------------------


def google_error(code: int, message: str, *, reason: str | None = None,
                 retry_after: int | None = None) -> Response:
    """Google's JSON error body, with Retry-After or WWW-Authenticate where they belong."""
    error: dict[str, Any] = {"code": code, "message": message, "status": _STATUS_NAMES.get(code, "UNKNOWN")}
    if reason:
        error["details"] = [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {"service": "health.googleapis.com"},
        }]
    response = jsonify({"error": error})
    response.status_code = code
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    if code == 401:
        response.headers["WWW-Authenticate"] = (
            'Bearer realm="https://accounts.google.com/", error="invalid_token"')
    return response


def _rfc3339(moment: datetime) -> str:
    """An instant as RFC 3339 in UTC."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat() + "Z"


def _offset(moment: datetime) -> str:
    """A UTC offset as a protobuf Duration string, e.g. ``"3600s"``."""
    offset = moment.utcoffset() or timedelta()
    return f"{int(offset.total_seconds())}s"


def _interval(start: datetime, end: datetime) -> dict[str, str]:
    """An interval with its local offsets at each end."""
    return {"startTime": _rfc3339(start), "endTime": _rfc3339(end),
            "startUtcOffset": _offset(start), "endUtcOffset": _offset(end)}


def _int64(values: Mapping[str, int]) -> dict[str, str]:
    """int64 fields as JSON strings; zeros left out, as proto3 JSON does."""
    return {key: str(value) for key, value in values.items() if value}


def _civil(day: date) -> dict[str, Any]:
    """A civil date-time at midnight."""
    return {"date": {"year": day.year, "month": day.month, "day": day.day}, "time": {}}


@lru_cache(maxsize=65536)
def _night_points(seed: int, user_index: int, health_user_id: str,
                  night: date) -> tuple[tuple[generator.GeneratedSleep, dict[str, Any]], ...]:
    """A night's sleeps with their wire form, built once (callers must not mutate the dicts)."""
    return tuple((sleep, sleep_point(health_user_id, sleep))
                 for sleep in generator.sleep_sessions(seed, user_index, night))


def sleep_point(health_user_id: str, sleep: generator.GeneratedSleep) -> dict[str, Any]:
    """One sleep as a Health API data point."""
    summary: dict[str, Any] = _int64({
        "minutesAsleep": sleep.minutes_asleep,
        "minutesAwake": sleep.minutes_awake,
        "minutesInSleepPeriod": sleep.minutes_in_period,
        "minutesToFallAsleep": sleep.minutes_to_fall_asleep,
    })
    summary["stagesSummary"] = [
        {"type": kind, **_int64({"minutes": minutes, "count": count})}
        for kind, (minutes, count) in sleep.stage_summary().items()
    ]
    return {
        "name": f"users/{health_user_id}/dataTypes/sleep/dataPoints/{sleep.point_id}",
        "sleep": {
            "interval": _interval(sleep.start, sleep.end),
            "type": sleep.kind,
            "stages": [
                {"startTime": _rfc3339(stage.start), "endTime": _rfc3339(stage.end), "type": stage.kind}
                for stage in sleep.stages
            ],
            "metadata": {"mainSleep": True} if sleep.is_main else {"nap": True},
            "summary": summary,
        },
    }


# --- request parsing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bounds:
    """A time filter: ``>=`` and ``<`` limits on local wall-clock time and on absolute time."""

    civil_low: datetime | None = None
    civil_high: datetime | None = None
    low: datetime | None = None
    high: datetime | None = None

    def admits(self, moment: datetime) -> bool:
        """Whether an aware local time passes every limit."""
        civil = moment.replace(tzinfo=None)
        return ((self.civil_low is None or civil >= self.civil_low)
                and (self.civil_high is None or civil < self.civil_high)
                and (self.low is None or moment >= self.low)
                and (self.high is None or moment < self.high))

    def days(self, first: date, last: date) -> tuple[date, date]:
        """The local dates, within [first, last], on which a passing time can fall."""
        if self.civil_low:
            first = max(first, self.civil_low.date())
        if self.low:
            first = max(first, self.low.date() - timedelta(days=1))
        if self.civil_high:
            last = min(last, self.civil_high.date())
        if self.high:
            last = min(last, self.high.date() + timedelta(days=1))
        return first, last


def parse_filter(text: str, *, data_type: str, which: str) -> Bounds:
    """Parse an AIP-160 filter like ``sleep.interval.civil_end_time >= "2026-01-01" AND …``."""
    limits: dict[str, datetime] = {}
    civil_field = f"{data_type}.interval.civil{which}time"
    absolute_field = f"{data_type}.interval.{which}time"
    allowed = f'{data_type}.interval.civil_{which}_time or {data_type}.interval.{which}_time'
    for clause in re.split(r"\s+AND\s+", text.strip()) if text.strip() else []:
        match = _CLAUSE.fullmatch(clause.strip())
        if not match:
            raise ApiError(400, f"Invalid filter clause {clause.strip()!r}: expected FIELD >= \"VALUE\" or "
                                f"FIELD < \"VALUE\", joined by AND.")
        name, operator, value = match.groups()
        key = name.lower().replace("_", "")
        if key == civil_field.replace("_", ""):
            moment = _parse_civil(value)
            slot = "civil_low" if operator == ">=" else "civil_high"
        elif key == absolute_field.replace("_", ""):
            moment = _parse_instant(value)
            slot = "low" if operator == ">=" else "high"
        else:
            raise ApiError(400, f"Invalid filter: field {name!r} cannot be filtered on; use {allowed}.")
        current = limits.get(slot)
        tighter = max if operator == ">=" else min
        limits[slot] = tighter(current, moment) if current else moment
    return Bounds(**limits)


def _parse_civil(value: str) -> datetime:
    """A civil (zone-less) date or date-time from a filter value."""
    try:
        moment = (datetime.combine(date.fromisoformat(value), datetime.min.time()) if len(value) == 10
                  else datetime.fromisoformat(value))
    except ValueError:
        raise ApiError(400, f"Invalid filter: {value!r} is not a civil date or date-time.") from None
    if moment.tzinfo is not None:
        raise ApiError(400, f"Invalid filter: civil time {value!r} must not carry an offset.")
    return moment


def _parse_instant(value: str) -> datetime:
    """An RFC 3339 instant from a filter value."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"Invalid filter: {value!r} is not an RFC 3339 timestamp.") from None
    if moment.tzinfo is None:
        raise ApiError(400, f"Invalid filter: timestamp {value!r} needs a Z or an offset.")
    return moment


def _civil_date(value: Any, name: str) -> date:
    """A date from a CivilDateTime at midnight (``{"date": {...}, "time": {...}}``)."""
    if not isinstance(value, dict) or not isinstance(value.get("date"), dict):
        raise ApiError(400, f"Invalid value at '{name}': expected a civil date-time "
                            '{"date": {"year", "month", "day"}}.')
    parts = value["date"]
    try:
        day = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
    except (KeyError, TypeError, ValueError):
        raise ApiError(400, f"Invalid value at '{name}.date': not a valid calendar date.") from None
    clock = value.get("time") or {}
    if not isinstance(clock, dict) or any(clock.get(key) for key in ("hours", "minutes", "seconds", "nanos")):
        raise ApiError(400, f"Invalid value at '{name}.time': daily roll-ups start and end at midnight.")
    return day


def _whole_number(raw: Any, name: str, *, default: int) -> int:
    """A non-negative integer parameter (0 or absent means the default)."""
    if raw in (None, ""):
        return default
    try:
        number = int(raw)
    except (TypeError, ValueError):
        raise ApiError(400, f"Invalid value at '{name}': {raw!r} is not an integer.") from None
    if number < 0:
        raise ApiError(400, f"Invalid value at '{name}': must not be negative.")
    return number or default


def _page_token(offset: int, fingerprint: str) -> str:
    """An opaque token for the page starting at ``offset`` of one query."""
    raw = json.dumps({"o": offset, "q": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _page_offset(token: str, fingerprint: str) -> int:
    """The offset a page token points at, refusing tokens from another query."""
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset, query = data["o"], data["q"]
    except (ValueError, TypeError, KeyError):
        raise ApiError(400, "Invalid page token.") from None
    if query != fingerprint or not isinstance(offset, int) or offset < 0:
        raise ApiError(400, "Invalid page token: it belongs to a different query.")
    return offset


def _fingerprint(*parts: object) -> str:
    """A short hash identifying a query, for its page tokens."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _page(items: Sequence[T], render: Callable[[T], dict[str, Any]], *, offset: int, size: int,
          fingerprint: str, key: str) -> dict[str, Any]:
    """One page of items, rendered, with a next-page token when more follow."""
    body: dict[str, Any] = {key: [render(item) for item in items[offset:offset + size]]}
    if offset + size < len(items):
        body["nextPageToken"] = _page_token(offset + size, fingerprint)
    return body


# --- views --------------------------------------------------------------------------------------

bp = Blueprint("google_health_standin", __name__)


def _state() -> StandinState:
    """The stand-in's state, kept on the app."""
    state: StandinState = current_app.extensions[EXTENSION]
    return state


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Response:
    """Answer a Health API failure in Google's shape."""
    return google_error(error.code, error.message, reason=error.reason, retry_after=error.retry_after)


@bp.errorhandler(OAuthError)
def _oauth_error(error: OAuthError) -> Response:
    """Answer a token-endpoint failure in Google's OAuth shape."""
    response = jsonify({"error": error.error, "error_description": error.description})
    response.status_code = error.status
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _api_gate(endpoint: str, scope: str | None, user_in_path: str) -> Grant:
    """Count, delay, inject failures, authenticate, check scope and path, rate-limit: the grant."""
    state = _state()
    state.count(endpoint)
    time.sleep(state.latency())
    failure = state.take_failure()
    if failure is not None:
        raise _injected(failure)
    grant = state.caller(request.headers.get("Authorization"))
    if user_in_path not in ("me", grant.user.health_user_id):
        raise ApiError(403, "The caller does not have permission to read this user's data.")
    state.admit(grant.user)
    if scope and scope not in grant.scopes:
        raise ApiError(403, "Request had insufficient authentication scopes.",
                       reason="ACCESS_TOKEN_SCOPE_INSUFFICIENT")
    return grant


def _injected(status: int) -> ApiError:
    """The error for a failure queued through ``fail_next``."""
    if status == 429:
        return ApiError(429, "Quota exceeded (injected by the stand-in).", reason="RATE_LIMIT_EXCEEDED",
                        retry_after=1)
    if status == 401:
        return ApiError(401, _UNAUTHENTICATED)
    return ApiError(status, f"Injected failure {status}.")


@bp.get("/v4/users/<user>/identity")
def identity(user: str) -> Response:
    """The caller's Health API user id and legacy Fitbit id."""
    grant = _api_gate("identity", None, user)
    return jsonify({"name": f"users/{user}/identity", "healthUserId": grant.user.health_user_id,
                    "legacyUserId": grant.user.legacy_user_id})


@bp.post("/v4/users/<user>/dataTypes/<data_type>/dataPoints:dailyRollUp")
def daily_roll_up(user: str, data_type: str) -> Response:
    """Steps summed per window of whole local days over a closed-open range of at most 90 days."""
    grant = _api_gate(f"{data_type}.dailyRollUp", STEPS_SCOPE, user)
    if data_type != "steps":
        raise ApiError(404, f"The stand-in serves daily roll-ups of 'steps' only, not {data_type!r}.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid JSON payload received: expected an object.")
    span = body.get("range")
    if not isinstance(span, dict):
        raise ApiError(400, "Invalid value at 'range': a range with start and end is required.")
    start = _civil_date(span.get("start"), "range.start")
    end = _civil_date(span.get("end"), "range.end")
    if end <= start:
        raise ApiError(400, "Invalid range: end must be after start (the range is closed-open).")
    if (end - start).days > MAX_ROLLUP_DAYS:
        raise ApiError(400, f"Invalid range: at most {MAX_ROLLUP_DAYS} days per request, "
                            f"got {(end - start).days}.")
    window = _whole_number(body.get("windowSizeDays"), "window_size_days", default=1)
    size = _whole_number(body.get("pageSize"), "page_size", default=MAX_ROLLUP_PAGE)
    if size > MAX_ROLLUP_PAGE:
        raise ApiError(400, f"Invalid value at 'page_size': at most {MAX_ROLLUP_PAGE}, got {size}.")
    state = _state()
    first, last = generator.data_window(state.today_for(grant.user))
    points = []
    day = start
    while day < end:
        window_end = min(day + timedelta(days=window), end)
        counts = [generator.daily_steps(state.seed, grant.user.index, each)
                  for each in generator.days(day, window_end - timedelta(days=1)) if first <= each <= last]
        present = [count for count in counts if count is not None]
        if present:
            points.append({"civilStartTime": _civil(day), "civilEndTime": _civil(window_end),
                           "steps": {"countSum": str(sum(present))}})
        day = window_end
    fingerprint = _fingerprint(grant.user.health_user_id, start, end, window)
    offset = _page_offset(str(body.get("pageToken") or ""), fingerprint)
    return jsonify(_page(points, _identity, offset=offset, size=size, fingerprint=fingerprint,
                         key="rollupDataPoints"))


def _identity(point: dict[str, Any]) -> dict[str, Any]:
    """A point already in wire format."""
    return point


@bp.get("/v4/users/<user>/dataTypes/<data_type>/dataPoints")
def list_points(user: str, data_type: str) -> Response:
    """Raw data points, newest first: sleeps (filtered on end time) or hourly steps (on start time)."""
    return _list_points(user, data_type, "list")


@bp.get("/v4/users/<user>/dataTypes/<data_type>/dataPoints:reconcile")
def reconcile_points(user: str, data_type: str) -> Response:
    """The reconciled stream; with one generated source it is the same as the raw list."""
    return _list_points(user, data_type, "reconcile")


def _list_points(user: str, data_type: str, method: str) -> Response:
    """Shared body of the list and reconcile views."""
    scope = {"sleep": SLEEP_SCOPE, "steps": STEPS_SCOPE}.get(data_type)
    grant = _api_gate(f"{data_type}.{method}", scope, user)
    if scope is None:
        raise ApiError(404, f"The stand-in serves 'steps' and 'sleep' data points, not {data_type!r}.")
    state = _state()
    text = request.args.get("filter", "")
    first, last = generator.data_window(state.today_for(grant.user))
    caller = grant.user
    fingerprint = _fingerprint(caller.health_user_id, data_type, method, text)
    offset = _page_offset(request.args.get("pageToken", ""), fingerprint)
    if data_type == "sleep":
        bounds = parse_filter(text, data_type="sleep", which="end")
        with state.lock:
            page_max = state.config.sleep_page_max
        size = min(_whole_number(request.args.get("pageSize"), "page_size", default=page_max),
                   page_max)
        sleeps = _sleeps(state, caller, bounds, first, last)
        return jsonify(_page(sleeps, _identity, offset=offset, size=size, fingerprint=fingerprint,
                             key="dataPoints"))
    bounds = parse_filter(text, data_type="steps", which="start")
    size = min(_whole_number(request.args.get("pageSize"), "page_size", default=STEPS_PAGE_DEFAULT),
               STEPS_PAGE_MAX)
    hours = _step_hours(state, caller, bounds, first, last)
    return jsonify(_page(hours, lambda hour: step_point(caller, hour), offset=offset, size=size,
                         fingerprint=fingerprint, key="dataPoints"))


def _sleeps(state: StandinState, user: User, bounds: Bounds, first: date,
            last: date) -> list[dict[str, Any]]:
    """Every sleep passing the filter, in wire form, newest (by end) first."""
    low, high = bounds.days(first, last)
    sleeps = [pair for night in generator.days(low, high)
              for pair in _night_points(state.seed, user.index, user.health_user_id, night)
              if bounds.admits(pair[0].end)]
    sleeps.sort(key=lambda pair: pair[0].end, reverse=True)
    return [point for _, point in sleeps]


def _step_hours(state: StandinState, user: User, bounds: Bounds, first: date,
                last: date) -> list[tuple[datetime, int]]:
    """Local hours with steps that pass the filter, with their counts, newest first."""
    zone = ZoneInfo(generator.home_zone(state.seed, user.index))
    low, high = bounds.days(first, last)
    hours = []
    for day in reversed(list(generator.days(low, high))):
        counts = generator.hourly_steps(state.seed, user.index, day)
        for hour in reversed(range(24)):
            if counts[hour]:
                start = generator.local_time(day, hour * 60, zone)
                if bounds.admits(start):
                    hours.append((start, counts[hour]))
    return hours


def step_point(user: User, hour: tuple[datetime, int]) -> dict[str, Any]:
    """One hour's steps as a Health API data point."""
    start, count = hour
    end = (start.astimezone(UTC) + timedelta(hours=1)).astimezone(start.tzinfo)
    return {
        "name": f"users/{user.health_user_id}/dataTypes/steps/dataPoints/{start.strftime('%Y%m%d%H')}",
        "steps": {"interval": _interval(start, end), "count": str(count)},
    }


# --- OAuth --------------------------------------------------------------------------------------


def _authorize_problem(state: StandinState, params: Mapping[str, str]) -> str | None:
    """What is wrong with an authorization request, if anything."""
    if params.get("client_id") != state.client_id:
        return "invalid_client: The OAuth client was not found."
    redirect_uri = params.get("redirect_uri", "")
    parts = urlsplit(redirect_uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        return "redirect_uri_mismatch: redirect_uri must be an absolute http(s) URL without a fragment."
    if params.get("response_type") != "code":
        return "unsupported_response_type: response_type must be 'code'."
    scopes = params.get("scope", "").split()
    if not scopes:
        return "invalid_request: Missing required parameter: scope"
    unknown = [scope for scope in scopes if not _known_scope(scope)]
    if unknown:
        return f"invalid_scope: Some requested scopes were invalid: {' '.join(unknown)}"
    if params.get("code_challenge_method") != "S256":
        return "invalid_request: code_challenge_method must be S256."
    if not _CHALLENGE.fullmatch(params.get("code_challenge", "")):
        return "invalid_request: code_challenge must be 43 base64url characters (S256)."
    if params.get("access_type", "online") not in ("online", "offline"):
        return "invalid_request: access_type must be 'online' or 'offline'."
    return None


def _known_scope(scope: str) -> bool:
    """Whether Google would accept a scope in this request."""
    return scope.startswith("https://www.googleapis.com/auth/googlehealth.") or scope in (
        "openid", "email", "profile")


def _with_query(url: str, params: Mapping[str, str]) -> str:
    """A URL with parameters added to its query."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


_PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": "default-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}
_CARRIED = ("client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge",
            "code_challenge_method", "access_type", "prompt", "login_hint", "include_granted_scopes")


def _consent_page(params: Mapping[str, str]) -> str:
    """The consent form: requested scopes as ticked boxes, parameters carried as hidden fields."""
    hidden = "".join(f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
                     for name in _CARRIED if params.get(name))
    boxes = "".join(
        f'<li><label><input type="checkbox" name="granted_scope" value="{html.escape(scope)}" checked> '
        f"{html.escape(SCOPE_LABELS.get(scope, scope))}</label></li>"
        for scope in params.get("scope", "").split())
    account = html.escape(params.get("login_hint") or "a new demo account")
    return page_html("Sign in – Google (stand-in)", (
        "<h1>Allow Hearten to read your steps and sleep?</h1>"
        f"<p>Signed in as {account} (local Google stand-in).</p>"
        '<form method="post">'
        f'{hidden}<input type="hidden" name="granular" value="1"><ul>{boxes}</ul>'
        '<button type="submit" name="decision" value="allow">Allow</button> '
        '<button type="submit" name="decision" value="deny">Deny</button>'
        "</form>"))


@bp.route("/o/oauth2/v2/auth", methods=["GET", "POST"])
def authorize() -> BaseResponse:
    """Google's consent screen: GET shows it, POST answers Allow or Deny with a redirect."""
    state = _state()
    state.count("authorize")
    params = {key: value for key, value in request.values.items() if key in (*_CARRIED, "decision")}
    problem = _authorize_problem(state, params)
    if problem:
        error, _, detail = problem.partition(": ")
        page = page_html("Error 400",
                          f"<h1>Error 400: {html.escape(error)}</h1><p>{html.escape(detail)}</p>")
        return Response(page, status=400, headers=_PAGE_HEADERS)
    if request.method == "GET":
        return Response(_consent_page(params), headers=_PAGE_HEADERS)
    carried_state = {"state": params["state"]} if params.get("state") else {}
    requested = tuple(params["scope"].split())
    scopes = requested
    if request.form.get("granular"):
        ticked = set(request.form.getlist("granted_scope"))
        scopes = tuple(scope for scope in requested if scope in ticked)
    if params.get("decision") != "allow" or not scopes:
        return redirect(_with_query(params["redirect_uri"], {"error": "access_denied", **carried_state}))
    user = state.user_for(params.get("login_hint"))
    code = state.issue_code(user=user, redirect_uri=params["redirect_uri"], scopes=scopes,
                            challenge=params["code_challenge"],
                            offline=params.get("access_type") == "offline")
    return redirect(_with_query(params["redirect_uri"], {"code": code, "scope": " ".join(scopes),
                                                         **carried_state}))


def _token_gate(endpoint: str) -> StandinState:
    """Count, delay and inject failures for the token and revoke endpoints."""
    state = _state()
    state.count(endpoint)
    time.sleep(state.latency())
    failure = state.take_failure(token_endpoint=True)
    if failure is not None:
        error = "rate_limit_exceeded" if failure == 429 else "internal_failure"
        raise OAuthError(failure, error, f"Injected failure {failure}.",
                         retry_after=1 if failure == 429 else None)
    return state


@bp.post("/token")
def token() -> Response:
    """Exchange an authorization code, or a refresh token, for tokens."""
    state = _token_gate("token")
    form = request.form
    if request.authorization and request.authorization.type == "basic":
        client_id = unquote_plus(request.authorization.username or "")
        client_secret = unquote_plus(request.authorization.password or "")
    else:
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
    state.authenticate_client(client_id, client_secret)
    grant_type = form.get("grant_type", "")
    if grant_type == "authorization_code":
        body = state.exchange_code(code=form.get("code", ""), redirect_uri=form.get("redirect_uri", ""),
                                   verifier=form.get("code_verifier", ""))
    elif grant_type == "refresh_token":
        body = state.refresh(form.get("refresh_token", ""))
    elif not grant_type:
        raise OAuthError(400, "invalid_request", "Missing required parameter: grant_type")
    else:
        raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/revoke")
def revoke() -> Response:
    """Revoke a token (from the query or the form body) and the grant behind it."""
    state = _token_gate("revoke")
    token_value = request.args.get("token") or request.form.get("token", "")
    if not token_value:
        raise OAuthError(400, "invalid_request", "Missing required parameter: token")
    state.revoke(token_value)
    return jsonify({})


# --- test controls ------------------------------------------------------------------------------

_STATUS_RANGE = range(400, 600)


def _validated_settings(body: Any) -> dict[str, Any]:
    """Check a ``/_standin/config`` body; raise ValueError naming the first bad field."""
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    known = {"latency_ms", "rate_limit_per_minute", "fail_next", "fail_next_token", "today",
             "expire_access_tokens", "revoke_refresh_tokens", "sleep_page_max"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(unknown)}")
    settings = dict(body)
    if "latency_ms" in body and not is_count(body["latency_ms"]):
        raise ValueError("latency_ms must be a whole number ≥ 0")
    limit = body.get("rate_limit_per_minute")
    if limit is not None and not (is_count(limit) and limit > 0):
        raise ValueError("rate_limit_per_minute must be a whole number ≥ 1, or null for no limit")
    if "sleep_page_max" in body and not (is_count(body["sleep_page_max"])
                                         and 1 <= body["sleep_page_max"] <= SLEEP_PAGE_MAX):
        raise ValueError(f"sleep_page_max must be a whole number from 1 to {SLEEP_PAGE_MAX}")
    for name in ("fail_next", "fail_next_token"):
        statuses = body.get(name, [])
        if not isinstance(statuses, list) or not all(is_count(s) and s in _STATUS_RANGE for s in statuses):
            raise ValueError(f"{name} must be a list of HTTP statuses from 400 to 599")
    for name in ("expire_access_tokens", "revoke_refresh_tokens"):
        if not isinstance(body.get(name, False), bool):
            raise ValueError(f"{name} must be true or false")
    if body.get("today") is not None:
        settings["today"] = date.fromisoformat(str(body["today"]))
    return settings


@bp.get("/_standin/stats")
def stats() -> Response:
    """Counts of requests, grants, refusals and errors sent, with the current settings."""
    return jsonify(_state().snapshot())


@bp.route("/_standin/config", methods=["GET", "POST"])
def config() -> Response:
    """Read or change latency, rate limit, queued failures and the current day; expire or revoke tokens."""
    state = _state()
    if request.method == "POST":
        try:
            state.configure(_validated_settings(request.get_json(silent=True)))
        except ValueError as error:
            return control_error(str(error))
    return jsonify(state.snapshot()["config"])


@bp.post("/_standin/reset")
def reset() -> Response:
    """Zero the counts."""
    state = _state()
    state.reset_stats()
    return jsonify(state.snapshot())


@bp.get("/_standin/users")
def users() -> Response:
    """Every fake user so far, with the index and zone that generate their data."""
    return jsonify({"users": _state().user_list()})


@bp.post("/_standin/tokens")
def direct_tokens() -> Response:
    """Tokens without the browser round trip: body ``{"login_hint"?, "scopes"?, "offline"?}``."""
    state = _state()
    body = request.get_json(silent=True) or {}
    scopes = (body.get("scopes") if isinstance(body, dict) else None) or [STEPS_SCOPE, SLEEP_SCOPE]
    if not isinstance(body, dict) or not isinstance(scopes, list) or not all(
            isinstance(scope, str) and _known_scope(scope) for scope in scopes):
        return control_error('expected {"login_hint": str, "scopes": [known scopes], "offline": bool}')
    user = state.user_for(str(body["login_hint"]) if body.get("login_hint") else None)
    tokens = state.grant_directly(user=user, scopes=tuple(scopes), offline=body.get("offline", True) is True)
    return jsonify({**tokens, "healthUserId": user.health_user_id, "index": user.index})


# --- the app ------------------------------------------------------------------------------------


def _http_error(error: HTTPException) -> Response:
    """Unknown paths and methods: Google's JSON shapes on the API and token hosts, plain text elsewhere."""
    code = error.code or 500
    if request.path.startswith("/v4/"):
        return google_error(code, error.description or error.name)
    if request.path in ("/token", "/revoke"):
        response = jsonify({"error": "invalid_request", "error_description": error.description})
        response.status_code = code
        return response
    return Response(error.description or error.name, status=code, mimetype="text/plain")


def create_google_standin(*, seed: int = 0, client_id: str = "hearten-demo",
                          client_secret: str = "hearten-demo-secret",  # noqa: S107 - a local fake's demo secret
                          access_token_seconds: int = 3600,
                          today: date | None = None, rate_limit_per_minute: int | None = 300,
                          clock: Callable[[], float] = time.monotonic) -> Flask:
    """Build a stand-in for Google OAuth and the Health API; its state lives in memory on the app."""
    app = Flask(__name__)
    app.extensions[EXTENSION] = StandinState(
        seed=seed, client_id=client_id, client_secret=client_secret,
        access_token_seconds=access_token_seconds, today=today,
        rate_limit_per_minute=rate_limit_per_minute, clock=clock,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Google's field order
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _http_error)
    return app


def standin_state(app: Flask) -> StandinState:
    """The state of a stand-in app, for tests that look inside."""
    state: StandinState = app.extensions[EXTENSION]
    return state


def main(argv: Iterable[str] | None = None) -> None:
    """Serve the stand-in on a local port until interrupted."""
    parser = argparse.ArgumentParser(description="Local stand-in for Google OAuth and the Google Health API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8601)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--client-id", default="hearten-demo")
    parser.add_argument("--client-secret", default="hearten-demo-secret")
    parser.add_argument("--access-token-seconds", type=int, default=3600)
    parser.add_argument("--rate-limit", type=int, default=300, help="requests per user per minute")
    parser.add_argument("--today", type=date.fromisoformat, default=None,
                        help="last day with data (YYYY-MM-DD); default: today in each user's zone")
    parser.add_argument("--quiet", action="store_true", help="do not log every request")
    args = parser.parse_args(None if argv is None else list(argv))
    app = create_google_standin(
        seed=args.seed, client_id=args.client_id, client_secret=args.client_secret,
        access_token_seconds=args.access_token_seconds, today=args.today,
        rate_limit_per_minute=args.rate_limit,
    )
    base = f"http://{args.host}:{args.port}"
    print(f"Google stand-in on {base}: authorize {base}/o/oauth2/v2/auth, token {base}/token, "
          f"revoke {base}/revoke, API {base} (v4), controls {base}/_standin/", flush=True)
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
