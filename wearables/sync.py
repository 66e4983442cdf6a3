"""The sync engine: backfill, then incremental syncs that always re-read the last few days.

Each chunk of days is fetched, stored and committed on its own, with the connection's cursor
(`synced_through`) moved in the same transaction, so a crash resumes where it stopped and any
re-run is harmless (upserts). No transaction stays open while a platform is asked anything:

- token refresh is claimed on the connection row, requested with no lock held, then stored; any
  number of concurrent callers make one refresh request;
- every request to a platform's data API is first counted against the member's request budget
  there (on the row, so that every process shares the count); when the budget is used up the
  sync stops, waits for the window to end, and resumes from its cursor.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from math import ceil
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from app.accounts.models import User
from app.crypto import InvalidToken, TokenCipher
from app.db import Database, utcnow
from app.events import record
from app.metrics import SYNCS
from wearables import budget as budgets
from wearables import services
from wearables.events import ReconnectNeeded, SyncProgressed
from wearables.models import Connection, ConnectionStatus, Source
from wearables.providers import CONNECTABLE
from wearables.providers.base import (
    BudgetSpent,
    MoveToGoogle,
    NeedsReconnect,
    ProviderError,
    RateLimited,
    RequestBudget,
    TemporaryFailure,
    TokenExpired,
    TokenSet,
    WearableProvider,
)
from wearables.records import SleepSession

log = logging.getLogger(__name__)
REFRESH_MARGIN = timedelta(minutes=2)
LEASE = timedelta(minutes=10)  # renewed with every chunk; a crashed sync frees it by then
REFRESH_CLAIM = timedelta(minutes=2)  # longer than a token request may take (5 s + 30 s)
CLAIM_POLL = 0.05  # seconds between looks while another caller refreshes
SHORT_WAIT = 5.0  # a Retry-After up to this is waited out in place; longer ones are rescheduled
MAX_SHORT_WAITS = 6


@dataclass(frozen=True)
class SyncOutcome:
    # "done", "needs_reconnect", "move_to_google", "rate_limited" (asked to wait, or our own
    # count of requests says so), "failed", "skipped", "already running"
    status: str
    days_done: int = 0
    days_total: int = 0


@dataclass
class SyncContext:
    """What a sync needs from the outside world; tests and the CLI pass their own."""

    db: Database
    providers: dict[str, WearableProvider]
    cipher: TokenCipher
    resync_days: int = 3
    now: Callable[[], datetime] = utcnow
    wait: Callable[[float], None] = time.sleep
    progress: Callable[[int, int], None] | None = None


def backoff_seconds(failures: int) -> float:
    """Exponential back-off with jitter: about 1, 2, 4 … minutes, capped at 6 hours."""
    base = min(60.0 * 2 ** max(failures - 1, 0), 6 * 3600.0)
    return float(base * random.uniform(0.8, 1.2))  # noqa: S311  (jitter, not security)


def _reconnect_status(provider: str) -> str:
    """What a refused grant means: connect again, or (an old Fitbit link) move to Google."""
    if provider in CONNECTABLE:
        return ConnectionStatus.NEEDS_RECONNECT.value
    return ConnectionStatus.MOVE_TO_GOOGLE.value


def _set_status(session: Session, connection: Connection, status: str) -> None:
    connection.status = status
    if status in (ConnectionStatus.NEEDS_RECONNECT, ConnectionStatus.MOVE_TO_GOOGLE):
        record(session, ReconnectNeeded(member_id=connection.member_id,
                                        provider=connection.provider, reason=status))


@dataclass(frozen=True)
class _RefreshClaim:
    provider: str
    refresh_token: str


def _token_or_claim(ctx: SyncContext, connection_id: int,
                    refused: str | None) -> str | _RefreshClaim | None:
    """The stored access token if it is usable; else a claim on the refresh; None while another
    caller holds that claim."""
    with ctx.db.transaction() as session:
        connection = session.get(Connection, connection_id, with_for_update=True)
        if connection is None or connection.status != ConnectionStatus.CONNECTED:
            raise NeedsReconnect("the connection is not active")
        now = ctx.now()
        if (connection.token_expires_at is not None
                and connection.token_expires_at - now > REFRESH_MARGIN):
            token = ctx.cipher.decrypt(connection.access_token_enc)
            if token != refused:
                return token
        if _held(connection.refresh_owner, connection.refresh_claimed_until, now):
            return None
        connection.refresh_owner, connection.refresh_claimed_until = _owner(), now + REFRESH_CLAIM
        return _RefreshClaim(connection.provider,
                             ctx.cipher.decrypt(connection.refresh_token_enc))


def _await_refresh(ctx: SyncContext, connection_id: int) -> None:
    """Wait, holding no lock, until the refresh another caller claimed has ended."""
    deadline = time.monotonic() + REFRESH_CLAIM.total_seconds()
    while time.monotonic() < deadline:
        time.sleep(CLAIM_POLL)
        with ctx.db.session(write=False) as read:
            row = read.get(Connection, connection_id)
            if row is None or not _held(row.refresh_owner, row.refresh_claimed_until, ctx.now()):
                return


def _end_refresh(ctx: SyncContext, connection_id: int, claim: _RefreshClaim, *,
                 tokens: TokenSet | None = None, refused: bool = False) -> None:
    """End our claim: store the new tokens, or note that the platform refused the grant."""
    with ctx.db.transaction() as session:
        connection = session.get(Connection, connection_id, with_for_update=True)
        if connection is None:
            return
        if connection.refresh_owner == _owner():
            connection.refresh_owner, connection.refresh_claimed_until = "", None
        if connection.status != ConnectionStatus.CONNECTED:
            return  # disconnected meanwhile: forget what we got
        try:
            current = ctx.cipher.decrypt(connection.refresh_token_enc)
        except InvalidToken:
            current = None
        if current != claim.refresh_token:
            return  # connected again meanwhile: those tokens are newer than ours
        if refused:
            _set_status(session, connection, _reconnect_status(connection.provider))
        elif tokens is not None:
            connection.access_token_enc = ctx.cipher.encrypt(tokens.access_token)
            if tokens.refresh_token:
                connection.refresh_token_enc = ctx.cipher.encrypt(tokens.refresh_token)
            connection.token_expires_at = tokens.expires_at


def access_token(ctx: SyncContext, connection_id: int, *, refused: str | None = None) -> str:
    """A usable access token, refreshed when it is (nearly) stale or is `refused`, the one the
    platform just turned away.

    One caller refreshes: it claims the refresh on the connection row, asks the platform with no
    transaction open, then stores the tokens and ends its claim. The others wait for the claim to
    end and use what it stored, so any number of concurrent callers make one refresh request
    (refresh tokens may be single-use), and nobody else's writes wait on the platform.
    """
    while True:
        found = _token_or_claim(ctx, connection_id, refused)
        if isinstance(found, str):
            return found
        if found is not None:
            break
        _await_refresh(ctx, connection_id)
    claim = found
    try:
        tokens = ctx.providers[claim.provider].refresh(refresh_token=claim.refresh_token)
    except NeedsReconnect:
        _end_refresh(ctx, connection_id, claim, refused=True)
        raise
    except BaseException:
        _end_refresh(ctx, connection_id, claim)
        raise
    _end_refresh(ctx, connection_id, claim, tokens=tokens)
    return tokens.access_token


def _budget_state(connection: Connection) -> budgets.BudgetState:
    return budgets.BudgetState(connection.budget_window_start, connection.budget_used,
                               connection.budget_used_before)


def _spend(ctx: SyncContext, connection_id: int, budget: RequestBudget) -> None:
    """Count one request against the member's budget at the platform, or raise BudgetSpent."""
    with ctx.db.transaction() as session:
        connection = session.get(Connection, connection_id, with_for_update=True)
        if connection is None:
            return
        now = ctx.now()
        state = _budget_state(connection)
        after = budgets.spend(state, budget, now)
        if after is None:
            resume = budgets.resume_at(state, budget, now)
            raise BudgetSpent(resume, (resume - now).total_seconds())
        connection.budget_window_start = after.window_start
        connection.budget_used, connection.budget_used_before = after.used, after.used_before


def _sleep_span(ctx: SyncContext, connection_id: int, provider: WearableProvider,
                days_left: int) -> tuple[int, bool]:
    """Days of sleep to fetch next: as many as the platform allows in one go, or fewer when what
    is left of the request budget would not cover their sleep pages and steps requests. Also
    whether the whole budget of a window was at hand."""
    with ctx.db.session(write=False) as read:
        connection = read.get(Connection, connection_id)
        if connection is None:
            return max(min(provider.max_sleep_days, days_left), 1), False
        span = min(provider.max_sleep_days, days_left, connection.sleep_span_days or days_left)
        state = _budget_state(connection)
    span = max(span, 1)
    budget = provider.budget
    if budget is None:
        return span, False
    now = ctx.now()
    left = budgets.remaining(state, budget, now)

    def cost(days: int) -> int:
        return (ceil(days / provider.sleep_days_per_request)
                + ceil(days / provider.max_steps_days))

    while span > 1 and cost(span) > left:
        span -= 1
    if cost(span) > left:
        resume = budgets.resume_at(state, budget, now, needed=cost(span))
        raise BudgetSpent(resume, (resume - now).total_seconds())
    return span, left >= budget.limit


def _narrow_sleep_span(ctx: SyncContext, connection_id: int, span: int) -> None:
    """A stream of sleep pages did not fit the budget: ask for half as many days next time."""
    with ctx.db.transaction() as session:
        connection = session.get(Connection, connection_id)
        if connection is not None:
            connection.sleep_span_days = max(span // 2, 1)


def _mark(ctx: SyncContext, connection_id: int, *, status: str | None = None,
          retry_at: datetime | None = None, failed: bool = False,
          finished: bool = False) -> None:
    with ctx.db.transaction() as session:
        connection = session.get(Connection, connection_id)
        if connection is None or connection.status != ConnectionStatus.CONNECTED:
            return  # disconnected (or taken over) meanwhile: leave it as the member left it
        if status is not None:
            _set_status(session, connection, status)
        connection.failures = connection.failures + 1 if failed else 0
        connection.next_attempt_at = retry_at
        if finished:
            connection.sleep_span_days = None


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _holder_alive(owner: str) -> bool:
    """Whether the sync holding a lease may still run (on this host we can ask the OS)."""
    host, _, rest = owner.partition(":")
    if host != socket.gethostname():
        return True  # another machine: trust the lease's time limit
    try:
        os.kill(int(rest.split(":")[0]), 0)
    except ProcessLookupError:
        return False  # that process died (killed mid-backfill): take over at once
    except (PermissionError, ValueError):
        return True
    return True


def _held(owner: str, until: datetime | None, now: datetime) -> bool:
    """Whether a lease or claim is held by someone who may still be working on it."""
    return bool(owner) and until is not None and until > now and _holder_alive(owner)


def interrupted_syncs(session: Session, *, now: datetime) -> list[int]:
    """Connections whose sync lease is still set although nobody holds it any more: the worker
    was killed midway (or its lease ran out)."""
    rows = session.exec(select(Connection).where(col(Connection.sync_owner) != "",
                                                 col(Connection.status) ==
                                                 ConnectionStatus.CONNECTED))
    return [row.id or 0 for row in rows
            if not _held(row.sync_owner, row.sync_lease_until, now)]


def _claim(ctx: SyncContext, connection_id: int) -> tuple[bool, str]:
    """Take the connection's sync lease, unless a live sync holds it; and name its platform."""
    with ctx.db.transaction() as session:
        connection = session.get(Connection, connection_id, with_for_update=True)
        if connection is None:
            return False, "unknown"
        if _held(connection.sync_owner, connection.sync_lease_until, ctx.now()):
            return False, connection.provider
        connection.sync_owner, connection.sync_lease_until = _owner(), ctx.now() + LEASE
        connection.sync_requested_at = None  # this sync fetches whatever was notified so far
        return True, connection.provider


def _release(ctx: SyncContext, connection_id: int) -> None:
    with ctx.db.transaction() as session:
        connection = session.get(Connection, connection_id)
        if connection is not None and connection.sync_owner == _owner():
            connection.sync_owner, connection.sync_lease_until = "", None


def sync_connection(ctx: SyncContext, connection_id: int) -> SyncOutcome:
    """Sync one connection unless another sync of it is running (then: "already running")."""
    claimed, provider = _claim(ctx, connection_id)
    if not claimed:
        outcome = SyncOutcome("already running")
    else:
        try:
            outcome = _sync(ctx, connection_id)
        finally:
            _release(ctx, connection_id)
    SYNCS.labels(provider=provider, outcome=outcome.status).inc()
    return outcome


def _local_night(sleep: SleepSession, zone: ZoneInfo) -> date:
    return sleep.end.astimezone(zone).date()


def _sync(ctx: SyncContext, connection_id: int) -> SyncOutcome:
    """Fetch every day the connection still owes, chunk by chunk; never raises provider errors."""
    with ctx.db.session(write=False) as read:
        connection = read.get(Connection, connection_id)
        member = read.get(User, connection.member_id) if connection else None
    if connection is None or member is None or connection.status != ConnectionStatus.CONNECTED:
        return SyncOutcome("skipped")
    provider = ctx.providers.get(connection.provider)
    if provider is None:
        return SyncOutcome("skipped")
    today = services.local_today(member, ctx.now())
    if connection.synced_through is None:
        start = connection.backfill_from
    else:
        start = min(connection.synced_through + timedelta(days=1),
                    today - timedelta(days=ctx.resync_days - 1))
    start = max(start, connection.backfill_from)
    end = today + timedelta(days=1)
    total = max((end - start).days, 0)
    source = Source(connection.provider)
    zone = ZoneInfo(member.timezone)
    done, short_waits, refreshed = 0, 0, False
    # Days of a sleep stream fetched (or being fetched) with a whole window's budget at hand,
    # and not stored yet: if the budget runs out before it is stored, it can never fit.
    unfitting_span = 0
    # Sleep comes as a paginated stream over a long window (fewest requests); steps in chunks
    # of the platform's longest range. Each steps chunk is stored with its nights and committed.
    sleeps: list[SleepSession] = []
    sleep_until = start
    budget = provider.budget
    spend = None if budget is None else lambda: _spend(ctx, connection_id, budget)
    try:
        token = access_token(ctx, connection_id)
        while start < end:
            try:
                # Fetch outside any transaction: no database lock is held while we wait on HTTP.
                if start >= sleep_until:
                    span, whole_budget = _sleep_span(ctx, connection_id, provider,
                                                     (end - start).days)
                    unfitting_span = span if whole_budget else 0
                    until = start + timedelta(days=span)
                    sleeps = provider.sleep(access_token=token, start=start, end=until,
                                            tz=member.timezone, before_request=spend)
                    sleep_until = until
                # A chunk never reaches past the sleep already fetched.
                stop = min(start + timedelta(days=provider.max_steps_days), sleep_until)
                steps = provider.daily_steps(access_token=token, start=start, end=stop,
                                             before_request=spend)
            except TokenExpired as expired:
                if refreshed:  # refused even with a fresh token: the grant itself is gone
                    raise NeedsReconnect("a fresh token was refused") from expired
                token, refreshed = access_token(ctx, connection_id, refused=token), True
                continue
            except RateLimited as limited:
                if isinstance(limited, BudgetSpent) and unfitting_span > 1:
                    # The stream took more pages than planned and a whole window's budget had
                    # no room left to store it: fetch fewer days at once, or it never would.
                    _narrow_sleep_span(ctx, connection_id, unfitting_span)
                    sleep_until, unfitting_span = start, 0
                if limited.retry_after <= SHORT_WAIT and short_waits < MAX_SHORT_WAITS:
                    short_waits += 1
                    ctx.wait(limited.retry_after or 2.0 ** short_waits)
                    continue
                raise
            with ctx.db.transaction() as session:
                row = session.get(Connection, connection_id)
                if row is None or row.status != ConnectionStatus.CONNECTED:
                    return SyncOutcome("skipped", done, total)  # disconnected meanwhile
                services.store_steps(session, member_id=member.id or 0, source=source,
                                     days=steps, now=ctx.now())
                services.store_sleep(session, member_id=member.id or 0, tz=member.timezone,
                                     source=source, now=ctx.now(),
                                     sessions=[s for s in sleeps
                                               if start <= _local_night(s, zone) < stop])
                last = min(stop - timedelta(days=1), today)
                if row.synced_through is None or last > row.synced_through:
                    row.synced_through = last
                row.last_sync_at = ctx.now()
                row.sync_lease_until = ctx.now() + LEASE
                done += (stop - start).days
                record(session, SyncProgressed(member_id=member.id or 0,
                                               connection_id=connection_id,
                                               days_done=done, days_total=total))
            refreshed, unfitting_span = False, 0
            if ctx.progress:
                ctx.progress(done, total)
            start = stop
    except (NeedsReconnect, InvalidToken):
        status = _reconnect_status(connection.provider)  # an old Fitbit link cannot be renewed
        _mark(ctx, connection_id, status=status)
        return SyncOutcome(status, done, total)
    except MoveToGoogle:
        _mark(ctx, connection_id, status=ConnectionStatus.MOVE_TO_GOOGLE)
        return SyncOutcome("move_to_google", done, total)
    except BudgetSpent as spent:  # our own count: carry on from the cursor when the window ends
        _mark(ctx, connection_id, retry_at=spent.resume_at)
        return SyncOutcome("rate_limited", done, total)
    except RateLimited as limited:
        _mark(ctx, connection_id,
              retry_at=ctx.now() + timedelta(seconds=max(limited.retry_after, 60.0)))
        return SyncOutcome("rate_limited", done, total)
    except Exception as failure:  # temporary or not understood: back off, never loop hot
        if isinstance(failure, TemporaryFailure | ProviderError):
            log.warning("sync of connection %s failed for now: %s", connection_id, failure)
        else:
            log.exception("sync of connection %s failed unexpectedly", connection_id)
        with ctx.db.session(write=False) as read:
            row = read.get(Connection, connection_id)
            failures = (row.failures if row else 0) + 1
        _mark(ctx, connection_id, retry_at=ctx.now() + timedelta(seconds=backoff_seconds(failures)),
              failed=True)
        return SyncOutcome("failed", done, total)
    _mark(ctx, connection_id, finished=True)
    return SyncOutcome("done", done, total)
