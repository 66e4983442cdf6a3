"""The Google Health API (v4) adapter: Google OAuth 2.0 with PKCE, daily step roll-ups, sleep."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import requests
from oauthlib.oauth2.rfc6749.errors import OAuth2Error
from requests.adapters import HTTPAdapter
from requests_oauthlib import OAuth2Session

from wearables.providers.base import (
    BeforeRequest,
    Identity,
    NeedsReconnect,
    ProviderError,
    RateLimited,
    RequestBudget,
    TemporaryFailure,
    TokenExpired,
    TokenSet,
)
from wearables.records import DaySteps, SleepSession

SCOPES = [
    "https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly",
    "https://www.googleapis.com/auth/googlehealth.sleep.readonly",
]
TIMEOUT = (5, 30)  # connect, read (seconds)
STEPS_PAGE = 90
SLEEP_PAGE = 25
REQUESTS_PER_MINUTE = 300  # Google Health API: per user per minute (shared/WEARABLES.md)


def _civil_date(day: date) -> dict[str, int]:
    return {"year": day.year, "month": day.month, "day": day.day}


def _offset(raw: str | None) -> timezone:
    """Google's "3600s" style UTC offsets as a timezone."""
    seconds = int(float((raw or "0s").rstrip("s")))
    return timezone(timedelta(seconds=seconds))


def _instant(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)


def parse_sleep_point(point: dict[str, Any]) -> SleepSession:
    """One Google sleep data point as a SleepSession in the member's local offsets."""
    sleep = point["sleep"]
    interval = sleep["interval"]
    start = _instant(interval["startTime"]).astimezone(_offset(interval.get("startUtcOffset")))
    end = _instant(interval["endTime"]).astimezone(_offset(interval.get("endUtcOffset")))
    summary = sleep.get("summary", {})
    in_bed = int(summary.get("minutesInSleepPeriod") or (end - start).total_seconds() // 60)
    asleep = int(summary.get("minutesAsleep") or in_bed)
    metadata = sleep.get("metadata", {})
    is_main = bool(metadata.get("mainSleep")) or not bool(metadata.get("nap"))
    return SleepSession(start=start, end=end, minutes_asleep=asleep, minutes_in_bed=in_bed,
                        is_main=is_main, source_id=str(point.get("name", "")))


class GoogleHealthProvider:
    """Google Health API v4, every URL configurable so that a local stand-in can play Google."""

    name = "google"
    max_steps_days = 90  # the roll-up's longest range
    max_sleep_days = 400  # the sleep list takes any range: one paginated stream per backfill
    # A page holds 25 sleeps; assume a nap on every other day, so a page covers 16 days or more.
    sleep_days_per_request = 16

    def __init__(self, *, client_id: str, client_secret: str, authorize_url: str, token_url: str,
                 revoke_url: str, api_base: str,
                 requests_per_minute: int | None = REQUESTS_PER_MINUTE) -> None:
        # Google does not say how it counts a minute: plan as if any 60 seconds count. At least
        # 2, the smallest step forward (a sleep page and a steps roll-up); 0 or None: no budget.
        self.budget = (RequestBudget(max(requests_per_minute, 2), timedelta(minutes=1))
                       if requests_per_minute else None)
        self.client_id = client_id
        self.client_secret = client_secret
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.revoke_url = revoke_url
        self.api_base = api_base.rstrip("/")
        self.http = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        self.requests_made = 0  # for the benchmark and tests: calls to the data API

    # --- OAuth ---

    def authorization_url(self, *, redirect_uri: str, state: str, code_challenge: str) -> str:
        oauth = OAuth2Session(self.client_id, redirect_uri=redirect_uri, scope=SCOPES)
        url, _ = oauth.authorization_url(
            self.authorize_url, state=state, access_type="offline", prompt="consent",
            code_challenge=code_challenge, code_challenge_method="S256")
        return str(url)

    def _token_set(self, token: dict[str, Any], *, keep_refresh: str | None = None) -> TokenSet:
        expires_in = float(token.get("expires_in") or 3600)
        return TokenSet(access_token=str(token["access_token"]),
                        refresh_token=token.get("refresh_token") or keep_refresh,
                        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
                        scope=" ".join(token.get("scope") or []) if isinstance(
                            token.get("scope"), list) else str(token.get("scope") or ""))

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        oauth = OAuth2Session(self.client_id, redirect_uri=redirect_uri, scope=SCOPES)
        try:
            token = oauth.fetch_token(self.token_url, code=code, code_verifier=code_verifier,
                                      client_secret=self.client_secret, include_client_id=True,
                                      timeout=TIMEOUT)
        except OAuth2Error as exc:
            raise NeedsReconnect(f"code exchange refused: {exc.error}") from exc
        except (requests.RequestException, ValueError) as exc:
            raise TemporaryFailure("token endpoint unavailable") from exc
        return self._token_set(dict(token))

    def refresh(self, *, refresh_token: str) -> TokenSet:
        try:
            response = self.http.post(self.token_url, data={
                "grant_type": "refresh_token", "refresh_token": refresh_token,
                "client_id": self.client_id, "client_secret": self.client_secret},
                timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise TemporaryFailure("token endpoint unavailable") from exc
        if response.status_code in (400, 401, 403):
            raise NeedsReconnect(f"refresh refused ({response.status_code})")
        if response.status_code == 429:
            raise RateLimited(_retry_after(response))
        if response.status_code >= 300:
            raise TemporaryFailure(f"token endpoint answered {response.status_code}")
        # Google may leave the refresh token out of a refresh answer: keep the one we have.
        return self._token_set(response.json(), keep_refresh=refresh_token)

    def revoke(self, *, token: str) -> None:
        try:
            # In the form body (Google takes either): a URL with the token would end up in
            # tracebacks and proxies' logs.
            self.http.post(self.revoke_url, data={"token": token}, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise TemporaryFailure("revoke endpoint unavailable") from exc

    # --- data ---

    def _call(self, method: str, path: str, *, access_token: str,
              body: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
              before_request: BeforeRequest | None = None) -> dict[str, Any]:
        if before_request is not None:
            before_request()
        self.requests_made += 1
        try:
            response = self.http.request(
                method, f"{self.api_base}{path}", json=body, params=params, timeout=TIMEOUT,
                headers={"Authorization": f"Bearer {access_token}"})
        except requests.RequestException as exc:
            raise TemporaryFailure(f"{path}: {type(exc).__name__}") from exc
        if response.status_code == 401:
            raise TokenExpired(path)
        if response.status_code == 403:
            raise NeedsReconnect(f"{path}: access refused")
        if response.status_code == 429:
            raise RateLimited(_retry_after(response))
        if response.status_code >= 500:
            raise TemporaryFailure(f"{path}: {response.status_code}")
        if response.status_code >= 400:
            raise ProviderError(f"{path}: {response.status_code}")
        try:
            payload: dict[str, Any] = response.json()
        except json.JSONDecodeError as exc:
            raise TemporaryFailure(f"{path}: not JSON") from exc
        return payload

    def identity(self, *, access_token: str) -> Identity:
        found = self._call("GET", "/v4/users/me/identity", access_token=access_token)
        return Identity(user_id=str(found["healthUserId"]),
                        legacy_user_id=str(found.get("legacyUserId") or ""))

    def daily_steps(self, *, access_token: str, start: date, end: date,
                    before_request: BeforeRequest | None = None) -> list[DaySteps]:
        if (end - start).days > self.max_steps_days:
            raise ValueError("at most 90 days a request")
        body: dict[str, Any] = {"range": {"start": {"date": _civil_date(start)},
                                          "end": {"date": _civil_date(end)}},
                                "windowSizeDays": 1, "pageSize": STEPS_PAGE}
        days = []
        for page in self._pages("POST", "/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp",
                                access_token=access_token, body=body,
                                before_request=before_request):
            for point in page.get("rollupDataPoints", []):
                civil = point["civilStartTime"]["date"]
                count = int(point.get("steps", {}).get("countSum") or 0)
                days.append(DaySteps(date(civil["year"], civil["month"], civil["day"]), count))
        return days

    def sleep(self, *, access_token: str, start: date, end: date, tz: str,
              before_request: BeforeRequest | None = None) -> list[SleepSession]:
        query = (f'sleep.interval.civil_end_time >= "{start.isoformat()}" AND '
                 f'sleep.interval.civil_end_time < "{end.isoformat()}"')
        params: dict[str, Any] = {"pageSize": SLEEP_PAGE, "filter": query}
        return [parse_sleep_point(point)
                for page in self._pages("GET", "/v4/users/me/dataTypes/sleep/dataPoints",
                                        access_token=access_token, params=params,
                                        before_request=before_request)
                for point in page.get("dataPoints", [])]

    def _pages(self, method: str, path: str, *, access_token: str,
               body: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
               before_request: BeforeRequest | None = None) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            if token:
                if body is not None:
                    body = {**body, "pageToken": token}
                else:
                    params = {**(params or {}), "pageToken": token}
            page = self._call(method, path, access_token=access_token, body=body, params=params,
                              before_request=before_request)
            yield page
            token = page.get("nextPageToken")
            if not token:
                return


def _retry_after(response: requests.Response) -> float:
    raw = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 0.0
