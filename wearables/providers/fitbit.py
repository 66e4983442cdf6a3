"""The legacy Fitbit Web API adapter, through the `fitbit` package (python-fitbit 0.3.1).

The legacy API was turned off in November 2026 and answers 410 Gone: every call here turns that into
MoveToGoogle, so that the member is asked to reconnect through the Google Health API, which carries
the same history. Token calls are plain `requests` POSTs (HTTP Basic client auth, as Fitbit expects);
the library only reads data, and never refreshes on its own: refresh tokens are single-use, so the
sync engine refreshes, once, under its per-connection lock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import fitbit
import fitbit.exceptions
import requests
from oauthlib.oauth2.rfc6749.errors import InsecureTransportError
from requests.adapters import HTTPAdapter

from wearables.providers.base import (
    BeforeRequest,
    Identity,
    MoveToGoogle,
    NeedsReconnect,
    ProviderError,
    RateLimited,
    RequestBudget,
    TemporaryFailure,
    TokenExpired,
    TokenSet,
)
from wearables.records import DaySteps, SleepSession

SCOPES = ("activity", "sleep")
TIMEOUT = (5, 30)  # connect, read (seconds)
DEFAULT_RETRY_AFTER = 60.0  # a 429 with neither Retry-After nor Fitbit-Rate-Limit-Reset
SLEEP_API_VERSION = 1.2
REQUESTS_PER_HOUR = 150  # per user; Fitbit resets the count at the top of each hour


def _revoke_url_beside(token_url: str) -> str:
    """Fitbit's revoke endpoint sits next to its token endpoint: ``…/oauth2/token`` → ``…/oauth2/revoke``."""
    parts = urlsplit(token_url)
    path = parts.path.rsplit("/", 1)[0] + "/revoke"
    return urlunsplit(parts._replace(path=path, query="", fragment=""))


def _retry_after(response: requests.Response) -> float:
    """Seconds to wait after a 429: Retry-After (seconds or an HTTP date), else the quota's reset, else 60."""
    raw = response.headers.get("Retry-After", "").strip()
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
        try:
            return max(0.0, (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            pass
    try:
        return max(0.0, float(response.headers.get("Fitbit-Rate-Limit-Reset", "")))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def _error_type(response: requests.Response) -> str:
    """The first ``errorType`` of a Fitbit error body, or ``""``."""
    try:
        errors = response.json().get("errors") or [{}]
        return str(errors[0].get("errorType") or "")
    except (ValueError, AttributeError, TypeError, IndexError):
        return ""


def _translate(response: requests.Response, what: str) -> ProviderError:
    """The domain error for a failed Fitbit answer, decided by its status."""
    status = response.status_code
    detail = f"{what}: {status} {_error_type(response)}".rstrip()
    if status == 410:
        return MoveToGoogle(detail)
    if status == 401:
        # expired_token, invalid_token, or a dead legacy token: the engine refreshes, and if the
        # refresh is refused, the member reconnects.
        return TokenExpired(detail)
    if status == 403:
        return NeedsReconnect(detail)
    if status == 429:
        return RateLimited(_retry_after(response), detail)
    if status >= 500 or status < 400:
        return TemporaryFailure(detail)  # < 400 here: a 2xx whose body was not JSON
    return ProviderError(detail)


def _refuse_library_refresh() -> None:
    """Stands in for the library's own refresh: report the expiry and let the sync engine refresh."""
    raise TokenExpired("access token expired")


class FitbitLegacyProvider:
    """The legacy Fitbit Web API through python-fitbit, every URL configurable for a local stand-in."""

    name = "fitbit"
    max_steps_days = 1095  # the steps time series' longest range
    max_sleep_days = 100  # the v1.2 sleep range's longest span
    sleep_days_per_request = 100  # one request, not paginated

    def __init__(self, *, client_id: str, client_secret: str, authorize_url: str, token_url: str,
                 api_base: str, revoke_url: str | None = None,
                 timeout: tuple[float, float] = TIMEOUT,
                 requests_per_hour: int | None = REQUESTS_PER_HOUR) -> None:
        # At least 2, the smallest step forward (sleep and steps); 0 or None: no budget.
        self.budget = (RequestBudget(max(requests_per_hour, 2), timedelta(hours=1), aligned=True)
                       if requests_per_hour else None)
        self.client_id = client_id
        self.client_secret = client_secret
        self.authorize_url = authorize_url
        self.token_url = token_url
        self.revoke_url = revoke_url or _revoke_url_beside(token_url)
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        # One connection pool shared by the token calls and every per-call Fitbit client.
        self._adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32)
        self.http = requests.Session()
        self.http.mount("http://", self._adapter)
        self.http.mount("https://", self._adapter)
        self.requests_made = 0  # for the benchmark and tests: calls to the data API

    # --- OAuth ---

    def authorization_url(self, *, redirect_uri: str, state: str, code_challenge: str) -> str:
        """Fitbit's consent page for steps and sleep, with PKCE S256."""
        query = {"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
                 "scope": " ".join(SCOPES), "state": state, "code_challenge": code_challenge,
                 "code_challenge_method": "S256"}
        return f"{self.authorize_url}?{urlencode(query, quote_via=quote)}"

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        """Trade the authorization code (with its PKCE verifier) for tokens."""
        response = self._token_request({"grant_type": "authorization_code", "code": code,
                                        "redirect_uri": redirect_uri, "code_verifier": code_verifier,
                                        "client_id": self.client_id}, what="code exchange")
        return self._token_set(response)

    def refresh(self, *, refresh_token: str) -> TokenSet:
        """New tokens; the refresh token presented is spent, even if the answer is lost."""
        response = self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token},
                                       what="refresh")
        return self._token_set(response, keep_refresh=refresh_token)

    def revoke(self, *, token: str) -> None:
        """Withdraw the grant; a token Fitbit no longer knows counts as withdrawn."""
        try:
            response = self.http.post(self.revoke_url, data={"token": token}, timeout=self.timeout,
                                      auth=(self.client_id, self.client_secret))
        except requests.RequestException as exc:
            raise TemporaryFailure(f"revoke: {type(exc).__name__}") from exc
        if response.status_code == 429:
            raise RateLimited(_retry_after(response), "revoke: 429")
        if response.status_code >= 500:
            raise TemporaryFailure(f"revoke: {response.status_code}")

    def _token_request(self, form: dict[str, str], *, what: str) -> requests.Response:
        """POST to the token endpoint with HTTP Basic client auth; refusals become NeedsReconnect."""
        try:
            response = self.http.post(self.token_url, data=form, timeout=self.timeout,
                                      auth=(self.client_id, self.client_secret))
        except requests.RequestException as exc:
            raise TemporaryFailure(f"{what}: {type(exc).__name__}") from exc
        status = response.status_code
        if status in (400, 401, 403):
            raise NeedsReconnect(f"{what} refused: {status} {_error_type(response)}".rstrip())
        if status == 200:
            return response
        raise _translate(response, what)

    def _token_set(self, response: requests.Response, *, keep_refresh: str | None = None) -> TokenSet:
        """A TokenSet from a token endpoint answer."""
        try:
            token = response.json()
            access_token = str(token["access_token"])
            expires_in = float(token.get("expires_in") or 28800)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TemporaryFailure("token endpoint: unexpected answer") from exc
        return TokenSet(access_token=access_token,
                        refresh_token=token.get("refresh_token") or keep_refresh,
                        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
                        scope=str(token.get("scope") or ""))

    # --- data ---

    def _client(self, access_token: str, answers: list[requests.Response]) -> Any:
        """A python-fitbit client for one call, pointed at the configured hosts."""
        fb = fitbit.Fitbit(self.client_id, self.client_secret, timeout=self.timeout)
        fb.API_ENDPOINT = self.api_base
        client = fb.client
        client.authorization_url = self.authorize_url
        client.request_token_url = client.access_token_url = client.refresh_token_url = self.token_url
        client.session.auto_refresh_url = self.token_url
        client.session.token = {"access_token": access_token, "token_type": "Bearer"}
        client.refresh_token = _refuse_library_refresh
        client.session.mount("http://", self._adapter)
        client.session.mount("https://", self._adapter)

        def keep(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            answers.append(response)

        # The library's exceptions drop the response (a 410 is a bare HTTPBadRequest, a 429 without
        # Retry-After a KeyError): keep it so that errors are decided by their real status.
        client.session.hooks["response"].append(keep)
        return fb

    def _call(self, access_token: str, what: str, call: Callable[[Any], Any],
              before_request: BeforeRequest | None = None) -> dict[str, Any]:
        """Run one library call (one request) and turn every failure into a ProviderError."""
        if before_request is not None:
            before_request()
        answers: list[requests.Response] = []
        fb = self._client(access_token, answers)
        self.requests_made += 1
        try:
            payload = call(fb)
        except ProviderError:
            raise
        except InsecureTransportError as exc:
            raise ProviderError(f"{what}: a plain-http API base needs OAUTHLIB_INSECURE_TRANSPORT=1 "
                                "(local stand-ins only)") from exc
        except (fitbit.exceptions.Timeout, requests.Timeout, requests.ConnectionError) as exc:
            raise TemporaryFailure(f"{what}: {type(exc).__name__}") from exc
        except (fitbit.exceptions.HTTPException, fitbit.exceptions.BadResponse, KeyError, ValueError,
                requests.RequestException) as exc:
            if not answers:
                raise TemporaryFailure(f"{what}: {type(exc).__name__}") from exc
            raise _translate(answers[-1], what) from exc
        if not isinstance(payload, dict):
            raise ProviderError(f"{what}: unexpected answer")
        return payload

    def identity(self, *, access_token: str) -> Identity:
        """The member's Fitbit id."""
        return Identity(user_id=self.user_id(access_token=access_token))

    def user_id(self, *, access_token: str) -> str:
        """The Fitbit user id, from token introspection (the profile endpoint needs the profile scope)."""
        url = f"{self.api_base}/1.1/oauth2/introspect"
        payload = self._call(access_token, "introspect",
                             lambda fb: fb.make_request(url, data={"token": access_token}, method="POST"))
        if not payload.get("active") or not payload.get("user_id"):
            raise TokenExpired("introspect: token not active")
        return str(payload["user_id"])

    def daily_steps(self, *, access_token: str, start: date, end: date,
                    before_request: BeforeRequest | None = None) -> list[DaySteps]:
        """Steps per day for [start, end); days Fitbit reports as 0 (tracker not worn) are left out."""
        if (end - start).days > self.max_steps_days:
            raise ValueError(f"at most {self.max_steps_days} days a request")
        if end <= start:
            return []
        last = end - timedelta(days=1)
        payload = self._call(access_token, "activities/steps", lambda fb: fb.time_series(
            "activities/steps", base_date=start, end_date=last), before_request)
        days = []
        try:
            for entry in payload.get("activities-steps", []):
                day = date.fromisoformat(entry["dateTime"])
                steps = int(float(entry["value"]))
                if start <= day < end and steps > 0:
                    days.append(DaySteps(day, steps))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError("activities/steps: unexpected answer") from exc
        return days

    def sleep(self, *, access_token: str, start: date, end: date, tz: str,
              before_request: BeforeRequest | None = None) -> list[SleepSession]:
        """Sleeps (v1.2 logs) ending on a local date in [start, end); Fitbit's local times read in ``tz``."""
        if (end - start).days > self.max_sleep_days:
            raise ValueError(f"at most {self.max_sleep_days} days a request")
        if end <= start:
            return []
        zone = ZoneInfo(tz)
        last = end - timedelta(days=1)

        def fetch(fb: Any) -> Any:
            fb.API_VERSION = SLEEP_API_VERSION
            return fb.time_series("sleep", base_date=start, end_date=last)

        payload = self._call(access_token, "sleep", fetch, before_request)
        sessions = []
        try:
            for entry in payload.get("sleep", []):
                session = parse_sleep_log(entry, zone)
                if start <= session.end.date() < end:
                    sessions.append(session)
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderError("sleep: unexpected answer") from exc
        return sorted(sessions, key=lambda session: session.start)


def _fixed_offset(moment: datetime, zone: ZoneInfo) -> datetime:
    """A time in ``zone``'s offset of that moment, as a fixed offset (as the Google adapter gives).

    Two times in the same ZoneInfo subtract on the wall clock, an hour off across a clock change;
    fixed offsets subtract in real time.
    """
    local = moment.astimezone(zone)
    return local.replace(tzinfo=timezone(local.utcoffset() or timedelta()))


def parse_sleep_log(entry: dict[str, Any], zone: ZoneInfo) -> SleepSession:
    """One v1.2 sleep log as a SleepSession; local times without a zone are read in ``zone``."""
    start = datetime.fromisoformat(entry["startTime"]).replace(tzinfo=zone).astimezone(UTC)
    duration = entry.get("duration")
    if duration:
        # The duration is real elapsed time, so a night across a clock change keeps its true length.
        end = start + timedelta(milliseconds=int(duration))
    else:
        end = datetime.fromisoformat(entry["endTime"]).replace(tzinfo=zone).astimezone(UTC)
    in_bed = int(entry.get("timeInBed") or (end - start).total_seconds() // 60)
    return SleepSession(start=_fixed_offset(start, zone), end=_fixed_offset(end, zone),
                        minutes_asleep=int(entry["minutesAsleep"]), minutes_in_bed=in_bed,
                        is_main=bool(entry.get("isMainSleep", True)), source_id=f"fitbit:{entry['logId']}")

