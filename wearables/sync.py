"""The sync engine: backfill, then incremental syncs that always re-read the last few days.

Each chunk of days is fetched, stored and committed on its own, with the connection's cursor
(`synced_through`) moved in the same transaction, so a crash resumes where it stopped and any
re-run is harmless (upserts). Token refresh happens under a lock on the connection row, so any
number of concurrent syncs make one refresh request.
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
from zoneinfo import ZoneInfo

from app.accounts.models import User
from app.crypto import InvalidToken, TokenCipher
from app.db import Database, utcnow
from app.events import record
from wearables import services
from wearables.events import ReconnectNeeded, SyncProgressed
from wearables.models import Connection, ConnectionStatus, Source
from wearables.providers import CONNECTABLE
from wearables.providers.base import (
    MoveToGoogle,
    NeedsReconnect,
    ProviderError,
    RateLimited,
    TemporaryFailure,
    TokenExpired,
    WearableProvider,
)
from wearables.records import SleepSession

log = logging.getLogger(__name__)
REFRESH_MARGIN = timedelta(minutes=2)
LEASE = timedelta(minutes=10)  # renewed with every chunk; a crashed sync frees it by then
SHORT_WAIT = 5.0  # a Retry-After up to this is waited out in place; longer ones are rescheduled
MAX_SHORT_WAITS = 6


@dataclass(frozen=True)
class SyncOutcome:
    # "done", "needs_reconnect", "move_to_google", "rate_limited", "failed", "skipped",
    # "already running"
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


def access_token(ctx: SyncContext, connection_id: int, *, force: bool = False) -> str:
    """A usable access token, refreshed under the connection's lock when it is (nearly) stale."""
    with ctx.db.transaction() as session:
        # The row lock (PostgreSQL) or the immediate write transaction (SQLite) serialises
        # refreshes: whoever waits here finds the fresh token the first one stored.
        connection = session.get(Connection, connection_id, with_for_update=True)
        if connection is None or connection.status != ConnectionStatus.CONNECTED:
            raise NeedsReconnect("the connection is not active")
        fresh = (connection.token_expires_at is not None
                 and connection.token_expires_at - ctx.now() > REFRESH_MARGIN)
        if fresh and not force:
            return ctx.cipher.decrypt(connection.access_token_enc)
        provider = ctx.providers[connection.provider]
        tokens = provider.refresh(refresh_token=ctx.cipher.decrypt(connection.refresh_token_enc))
        connection.access_token_enc = ctx.cipher.encrypt(tokens.access_token)
        if tokens.refresh_token:
            connection.refresh_token_enc = ctx.cipher.encrypt(tokens.refresh_token)
        connection.token_expires_at = tokens.expires_at
        return tokens.access_token


def _mark(ctx: SyncContext, connection_id: int, *, status: str | None = None,
          retry_in: float | None = None, failed: bool = False) -> None:
    with ctx.db.transaction() as session:
        connection = session.get(Connection, connection_id)
        if connection is None or connection.status != ConnectionStatus.CONNECTED:
            return  # disconnected (or taken over) meanwhile: leave it as the member left it
        if status is not None:
            connection.status = status
            if status in (ConnectionStatus.NEEDS_RECONNECT, ConnectionStatus.MOVE_TO_GOOGLE):
                record(session, ReconnectNeeded(member_id=connection.member_id,
                                                provider=connection.provider, reason=status))
        connection.failures = connection.failures + 1 if failed else 0
        connection.next_attempt_at = (ctx.now() + timedelta(seconds=retry_in)
                                      if retry_in is not None else None)


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


def _claim(ctx: SyncContext, connection_id: int) -> bool:
    """Take the connection's sync lease, unless a live sync holds it."""
    with ctx.db.transaction() as session:
        connection = session.get(Connection, connection_id, with_for_update=True)
        if connection is None:
            return False
        held = (connection.sync_lease_until is not None
                and connection.sync_lease_until > ctx.now() and connection.sync_owner)
        if held and _holder_alive(connection.sync_owner):
            return False
        connection.sync_owner, connection.sync_lease_until = _owner(), ctx.now() + LEASE
        connection.sync_requested_at = None  # this sync fetches whatever was notified so far
        return True


def _release(ctx: SyncContext, connection_id: int) -> None:
    with ctx.db.transaction() as session:
        connection = session.get(Connection, connection_id)
        if connection is not None and connection.sync_owner == _owner():
            connection.sync_owner, connection.sync_lease_until = "", None


def sync_connection(ctx: SyncContext, connection_id: int) -> SyncOutcome:
    """Sync one connection unless another sync of it is running (then: "already running")."""
    if not _claim(ctx, connection_id):
        return SyncOutcome("already running")
    try:
        return _sync(ctx, connection_id)
    finally:
        _release(ctx, connection_id)


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
    # Sleep comes as a paginated stream over a long window (fewest requests); steps in chunks
    # of the platform's longest range. Each steps chunk is stored with its nights and committed.
    sleeps: list[SleepSession] = []
    sleep_until = start
    try:
        token = access_token(ctx, connection_id)
        while start < end:
            try:
                # Fetch outside any transaction: no database lock is held while we wait on HTTP.
                if start >= sleep_until:
                    until = min(start + timedelta(days=provider.max_sleep_days), end)
                    sleeps = provider.sleep(access_token=token, start=start, end=until,
                                            tz=member.timezone)
                    sleep_until = until
                # A chunk never reaches past the sleep already fetched.
                stop = min(start + timedelta(days=provider.max_steps_days), sleep_until)
                steps = provider.daily_steps(access_token=token, start=start, end=stop)
            except TokenExpired as expired:
                if refreshed:  # refused even with a fresh token: the grant itself is gone
                    raise NeedsReconnect("a fresh token was refused") from expired
                token, refreshed = access_token(ctx, connection_id, force=True), True
                continue
            except RateLimited as limited:
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
            refreshed = False
            if ctx.progress:
                ctx.progress(done, total)
            start = stop
    except (NeedsReconnect, InvalidToken):
        if connection.provider not in CONNECTABLE:  # an old Fitbit link cannot be renewed
            _mark(ctx, connection_id, status=ConnectionStatus.MOVE_TO_GOOGLE)
            return SyncOutcome("move_to_google", done, total)
        _mark(ctx, connection_id, status=ConnectionStatus.NEEDS_RECONNECT)
        return SyncOutcome("needs_reconnect", done, total)
    except MoveToGoogle:
        _mark(ctx, connection_id, status=ConnectionStatus.MOVE_TO_GOOGLE)
        return SyncOutcome("move_to_google", done, total)
    except RateLimited as limited:
        _mark(ctx, connection_id, retry_in=max(limited.retry_after, 60.0))
        return SyncOutcome("rate_limited", done, total)
    except Exception as failure:  # temporary or not understood: back off, never loop hot
        if isinstance(failure, TemporaryFailure | ProviderError):
            log.warning("sync of connection %s failed for now: %s", connection_id, failure)
        else:
            log.exception("sync of connection %s failed unexpectedly", connection_id)
        with ctx.db.session(write=False) as read:
            row = read.get(Connection, connection_id)
            failures = (row.failures if row else 0) + 1
        _mark(ctx, connection_id, retry_in=backoff_seconds(failures), failed=True)
        return SyncOutcome("failed", done, total)
    _mark(ctx, connection_id)
    return SyncOutcome("done", done, total)
