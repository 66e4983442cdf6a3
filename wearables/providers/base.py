"""The interface every wearable platform adapter implements; services depend on this only."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from wearables.records import DaySteps, SleepSession


@dataclass(frozen=True)
class TokenSet:
    """What a platform hands back for an authorization code or a refresh."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime
    scope: str = ""


@dataclass(frozen=True)
class Identity:
    """Who the member is on a platform; Google also tells the old Fitbit id, to carry history."""

    user_id: str
    legacy_user_id: str = ""


class ProviderError(Exception):
    """A platform call failed; subclasses say what to do about it."""


class TokenExpired(ProviderError):
    """The access token was refused: refresh it and try once more."""


class NeedsReconnect(ProviderError):
    """The grant is gone (refresh refused, access revoked): the member must connect again."""


class MoveToGoogle(ProviderError):
    """The legacy Fitbit Web API answered 410 Gone: connect through the Google Health API."""


class RateLimited(ProviderError):
    """Too many requests; wait `retry_after` seconds."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetSpent(RateLimited):
    """Our own count says the member's requests at the platform are used up until `resume_at`.

    Raised before a request is sent (by the sync engine's `before_request` hook), so that the
    platform's per-user limit is never reached; the adapters let it pass through untouched.
    """

    def __init__(self, resume_at: datetime, retry_after: float) -> None:
        super().__init__(retry_after, "the request budget for this window is used up")
        self.resume_at = resume_at


class TemporaryFailure(ProviderError):
    """A server error or a timeout; try again later."""


@dataclass(frozen=True)
class RequestBudget:
    """A platform's limit on requests per member: at most `limit` in a `window`.

    `aligned`: the platform counts in fixed windows that start at whole multiples of `window`
    (Fitbit: the top of each hour). Otherwise any `window`-long stretch must stay within the limit
    (the strictest reading of "per minute", for a platform that does not say how it counts).
    """

    limit: int
    window: timedelta
    aligned: bool = False


BeforeRequest = Callable[[], None]


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class WearableProvider(Protocol):
    """A step and sleep platform reached with OAuth 2.0."""

    name: str
    max_steps_days: int  # the most days one steps request may cover
    max_sleep_days: int  # the most days of sleep one call should cover
    # About how many days of sleep one request brings (a page of a paginated stream), for
    # planning within a request budget; a low guess only costs a few more, smaller requests.
    sleep_days_per_request: int
    budget: RequestBudget | None  # the platform's per-member request limit, if it has one

    def authorization_url(self, *, redirect_uri: str, state: str, code_challenge: str) -> str:
        """Where to send the member to grant access (PKCE S256, offline access)."""
        ...

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        """Trade the authorization code for tokens."""
        ...

    def refresh(self, *, refresh_token: str) -> TokenSet:
        """A new access token (and maybe a new refresh token); NeedsReconnect when refused."""
        ...

    def revoke(self, *, token: str) -> None:
        """Withdraw the grant."""
        ...

    def identity(self, *, access_token: str) -> Identity:
        """The platform's id for the member (and, on Google, their legacy Fitbit id)."""
        ...

    def daily_steps(self, *, access_token: str, start: date, end: date,
                    before_request: BeforeRequest | None = None) -> list[DaySteps]:
        """Steps per day for [start, end), at most `max_steps_days` days.

        `before_request` runs before every request to the platform's data API; whatever it
        raises (BudgetSpent) stops the call before that request is sent.
        """
        ...

    def sleep(self, *, access_token: str, start: date, end: date, tz: str,
              before_request: BeforeRequest | None = None) -> list[SleepSession]:
        """Sleeps that end on a local date in [start, end); `before_request` as above."""
        ...
