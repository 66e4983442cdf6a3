"""Daily metrics: store what any source reports (upserts), typed-in entries, and reading them back."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, SQLModel, col, select

from app import idempotency
from app.accounts.models import User
from app.crypto import TokenCipher
from app.events import record
from wearables import budget as budgets
from wearables.events import SleepSynced, StepsSynced, TrackerConnected, TrackerDisconnected
from wearables.exceptions import (
    DayInTheFuture,
    DayTooLongAgo,
    NightLengthOutOfRange,
    NightTooLongAgo,
    StepsOutOfRange,
    TrackerNotConnected,
    WakeInTheFuture,
    WokeBeforeBed,
)
from wearables.models import (
    PRECEDENCE,
    Connection,
    ConnectionStatus,
    DailySteps,
    SleepNight,
    Source,
)
from wearables.providers.base import Identity, RequestBudget, TokenSet
from wearables.records import DaySteps, SleepSession

MAX_STEPS = 100_000
OLDEST_ENTRY_DAYS = 365
LONGEST_SLEEP = timedelta(hours=20)
SHORTEST_SLEEP = timedelta(minutes=30)
HANDOVER_OVERLAP_DAYS = 3  # days Google re-reads when it takes over from an old Fitbit link


def local_today(member: User, now: datetime) -> date:
    """The member's calendar date at `now`, in their own timezone."""
    return now.astimezone(ZoneInfo(member.timezone)).date()


# --- storing what a source reports ---


def _upsert(session: Session, model: type[SQLModel], key: tuple[str, ...],
            rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO UPDATE, so that concurrent writers of one day never collide."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgres_insert
    for start in range(0, len(rows), 500):
        batch = rows[start:start + 500]
        statement = insert(model).values(batch)
        columns = {name: statement.excluded[name] for name in batch[0] if name not in key}
        session.execute(statement.on_conflict_do_update(index_elements=list(key), set_=columns))


def _confirm(session: Session, model: type[DailySteps] | type[SleepNight], key: Any, *,
             member_id: int, source: str, keys: list[date], now: datetime) -> None:
    """The source said the same again: the value stands, and its sync time is now."""
    for start in range(0, len(keys), 500):
        session.execute(update(model).where(col(model.member_id) == member_id,
                                            col(model.source) == source,
                                            key.in_(keys[start:start + 500]))
                        .values(updated_at=now))


def store_steps(session: Session, *, member_id: int, source: Source, days: Iterable[DaySteps],
                now: datetime) -> tuple[date, ...]:
    """Upsert steps per (member, day, source); publish StepsSynced for the days that changed."""
    incoming = {d.day: d.steps for d in days}
    if not incoming:
        return ()
    existing: dict[date, int] = {row.day: row.steps for row in session.exec(
        select(DailySteps).where(
            col(DailySteps.member_id) == member_id, col(DailySteps.source) == source,
            col(DailySteps.day).in_(list(incoming))))}
    changed = tuple(day for day, steps in sorted(incoming.items())
                    if existing.get(day) != steps)
    _upsert(session, DailySteps, ("member_id", "day", "source"),
            [{"member_id": member_id, "day": day, "source": source, "steps": incoming[day],
              "updated_at": now} for day in changed])
    _confirm(session, DailySteps, col(DailySteps.day), member_id=member_id, source=source,
             keys=sorted(set(incoming) - set(changed)), now=now)
    if changed:
        record(session, StepsSynced(member_id=member_id, source=source, days=changed))
    return changed


@dataclass(frozen=True)
class Night:
    """The main sleep ending on a local date, and the minutes of that date's naps."""

    night: date
    main: SleepSession
    nap_minutes: int


def nights_from_sessions(sessions: Iterable[SleepSession], tz: str) -> dict[date, Night]:
    """Group sleeps by the local date they end on: the longest main sleep is the night."""
    zone = ZoneInfo(tz)
    by_date: dict[date, list[SleepSession]] = {}
    for sleep in sessions:
        by_date.setdefault(sleep.end.astimezone(zone).date(), []).append(sleep)
    nights = {}
    for night, group in by_date.items():
        mains = [s for s in group if s.is_main] or group
        main = max(mains, key=lambda s: (s.minutes_in_bed, s.end))
        naps = sum(s.minutes_asleep for s in group if s is not main)
        nights[night] = Night(night=night, main=main, nap_minutes=naps)
    return nights


_NIGHT_FIELDS = ("bedtime", "wake_time", "bed_offset_minutes", "minutes_asleep",
                 "minutes_in_bed", "nap_minutes")


def _store_nights(session: Session, *, member_id: int, source: Source,
                  nights: dict[date, dict[str, Any]], now: datetime) -> tuple[date, ...]:
    """Upsert nights per (member, night, source); publish SleepSynced for those that changed."""
    if not nights:
        return ()
    existing = {row.night: tuple(getattr(row, name) for name in _NIGHT_FIELDS)
                for row in session.exec(select(SleepNight).where(
                    col(SleepNight.member_id) == member_id, col(SleepNight.source) == source,
                    col(SleepNight.night).in_(list(nights))))}
    changed = tuple(night for night, values in sorted(nights.items())
                    if existing.get(night) != tuple(values[name] for name in _NIGHT_FIELDS))
    _upsert(session, SleepNight, ("member_id", "night", "source"),
            [{"member_id": member_id, "night": night, "source": source, "updated_at": now,
              **nights[night]} for night in changed])
    _confirm(session, SleepNight, col(SleepNight.night), member_id=member_id, source=source,
             keys=sorted(set(nights) - set(changed)), now=now)
    if changed:
        record(session, SleepSynced(member_id=member_id, source=source, nights=changed))
    return changed


def store_sleep(session: Session, *, member_id: int, tz: str, source: Source,
                sessions: Iterable[SleepSession], now: datetime) -> tuple[date, ...]:
    """Store sleeps as nights (grouped by the local date they end on)."""
    nights = {}
    for night, found in nights_from_sessions(sessions, tz).items():
        offset = found.main.start.utcoffset() or timedelta()
        nights[night] = {"bedtime": found.main.start.astimezone(UTC),
                         "wake_time": found.main.end.astimezone(UTC),
                         "bed_offset_minutes": int(offset.total_seconds() // 60),
                         "minutes_asleep": found.main.minutes_asleep,
                         "minutes_in_bed": found.main.minutes_in_bed,
                         "nap_minutes": found.nap_minutes}
    return _store_nights(session, member_id=member_id, source=source, nights=nights, now=now)


def store_untimed_sleep(session: Session, *, member_id: int, nights: dict[date, int],
                        now: datetime) -> tuple[date, ...]:
    """Nights known only by their minutes asleep (a CSV without times), as imported nights."""
    return _store_nights(session, member_id=member_id, source=Source.IMPORT, now=now, nights={
        night: {"bedtime": None, "wake_time": None, "bed_offset_minutes": 0,
                "minutes_asleep": minutes, "minutes_in_bed": minutes, "nap_minutes": 0}
        for night, minutes in nights.items()})


# --- typed-in entries ---


def _member_id(member: User) -> int:
    if member.id is None:
        raise ValueError("the member has not been saved yet")
    return member.id


def enter_steps(session: Session, *, member: User, day: date, steps: int,
                client_key: str | None, now: datetime) -> bool:
    """Store steps the member typed in; False when this client key was already used."""
    today = local_today(member, now)
    if day > today:
        raise DayInTheFuture
    if day < today - timedelta(days=OLDEST_ENTRY_DAYS):
        raise DayTooLongAgo
    if not 0 <= steps <= MAX_STEPS:
        raise StepsOutOfRange
    if not idempotency.claim(session, user_id=_member_id(member), key=client_key,
                             action="steps"):
        return False
    store_steps(session, member_id=_member_id(member), source=Source.MANUAL,
                days=[DaySteps(day=day, steps=steps)], now=now)
    return True


def enter_sleep(session: Session, *, member: User, bedtime: datetime, wake_time: datetime,
                client_key: str | None, now: datetime) -> bool:
    """Store a night the member typed in as local bed and wake times; False on a resend."""
    zone = ZoneInfo(member.timezone)
    bed = bedtime.replace(tzinfo=zone) if bedtime.tzinfo is None else bedtime.astimezone(zone)
    wake = (wake_time.replace(tzinfo=zone) if wake_time.tzinfo is None
            else wake_time.astimezone(zone))
    length = wake.astimezone(UTC) - bed.astimezone(UTC)
    if length <= timedelta():
        raise WokeBeforeBed
    if length < SHORTEST_SLEEP or length > LONGEST_SLEEP:
        raise NightLengthOutOfRange
    if wake > now.astimezone(zone):
        raise WakeInTheFuture
    if wake.date() < local_today(member, now) - timedelta(days=OLDEST_ENTRY_DAYS):
        raise NightTooLongAgo
    if not idempotency.claim(session, user_id=_member_id(member), key=client_key,
                             action="sleep"):
        return False
    minutes = int(length.total_seconds() // 60)
    store_sleep(session, member_id=_member_id(member), tz=member.timezone, source=Source.MANUAL,
                sessions=[SleepSession(start=bed, end=wake, minutes_asleep=minutes,
                                       minutes_in_bed=minutes)], now=now)
    return True


# --- reading back, with the documented precedence ---


@dataclass(frozen=True)
class DayMetrics:
    """What one day looks like once sources are merged by precedence."""

    day: date
    steps: int | None = None
    steps_source: str | None = None
    sleep_minutes: int | None = None
    time_in_bed_minutes: int | None = None
    nap_minutes: int | None = None
    sleep_source: str | None = None
    bedtime: str | None = None
    wake_time: str | None = None
    steps_synced_at: datetime | None = None  # when the value shown was last read from its source
    sleep_synced_at: datetime | None = None


_RANKS = {source.value: rank for rank, source in enumerate(PRECEDENCE)}


def _rank(source: str) -> int:
    return _RANKS.get(source, len(PRECEDENCE))


def recent_days(session: Session, *, member: User, days: int, now: datetime) -> list[DayMetrics]:
    """The member's last `days` local days, oldest first, each source merged by precedence."""
    member_id = _member_id(member)
    today = local_today(member, now)
    first = today - timedelta(days=days - 1)
    zone = ZoneInfo(member.timezone)
    best_steps: dict[date, DailySteps] = {}
    for row in session.exec(select(DailySteps).where(
            col(DailySteps.member_id) == member_id, col(DailySteps.day) >= first,
            col(DailySteps.day) <= today)):
        if row.day not in best_steps or _rank(row.source) < _rank(best_steps[row.day].source):
            best_steps[row.day] = row
    best_sleep: dict[date, SleepNight] = {}
    for night in session.exec(select(SleepNight).where(
            col(SleepNight.member_id) == member_id, col(SleepNight.night) >= first,
            col(SleepNight.night) <= today)):
        if (night.night not in best_sleep
                or _rank(night.source) < _rank(best_sleep[night.night].source)):
            best_sleep[night.night] = night
    result = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        steps, sleep = best_steps.get(day), best_sleep.get(day)
        result.append(DayMetrics(
            day=day,
            steps=steps.steps if steps else None,
            steps_source=steps.source if steps else None,
            sleep_minutes=sleep.minutes_asleep if sleep else None,
            time_in_bed_minutes=sleep.minutes_in_bed if sleep else None,
            nap_minutes=sleep.nap_minutes if sleep else None,
            sleep_source=sleep.source if sleep else None,
            bedtime=sleep.bedtime.astimezone(zone).strftime("%H:%M")
            if sleep and sleep.bedtime else None,
            wake_time=sleep.wake_time.astimezone(zone).strftime("%H:%M")
            if sleep and sleep.wake_time else None,
            steps_synced_at=steps.updated_at if steps else None,
            sleep_synced_at=sleep.updated_at if sleep else None,
        ))
    return result


# --- connections ---


def connections_of(session: Session, *, member: User) -> list[Connection]:
    return list(session.exec(select(Connection).where(
        col(Connection.member_id) == _member_id(member)).order_by(col(Connection.id))))


def connect(session: Session, *, member: User, provider: str, tokens: TokenSet,
            identity: Identity, cipher: TokenCipher, backfill_days: int,
            now: datetime, budget: RequestBudget | None = None) -> Connection:
    """Store a new (or renewed) connection with encrypted tokens; backfill starts from there.

    `budget`: the platform's per-member request limit, against which the identity request just
    made while connecting is counted.

    Reconnecting the same platform account keeps the cursor, so nothing is fetched twice; a
    different account, or a first connection, backfills `backfill_days` days. A Google account
    whose legacy Fitbit id matches the member's old Fitbit connection takes over from it: its
    backfill starts where Fitbit stopped, and the Fitbit history stays.
    """
    external_user_id = identity.user_id
    connection = session.exec(select(Connection).where(
        col(Connection.member_id) == _member_id(member),
        col(Connection.provider) == provider)).first()
    start = local_today(member, now) - timedelta(days=backfill_days - 1)
    if connection is None:
        connection = Connection(member_id=_member_id(member), provider=provider,
                                backfill_from=start, created_at=now)
        session.add(connection)
    elif connection.external_user_id != external_user_id or connection.synced_through is None:
        connection.backfill_from, connection.synced_through = start, None
    if connection.synced_through is None and identity.legacy_user_id:
        legacy = session.exec(select(Connection).where(
            col(Connection.member_id) == _member_id(member), col(Connection.provider) == "fitbit",
            col(Connection.external_user_id) == identity.legacy_user_id)).first()
        if legacy is not None:
            if legacy.synced_through is not None:
                # A few days of overlap: the last ones Fitbit gave may have been incomplete.
                overlap = timedelta(days=HANDOVER_OVERLAP_DAYS - 1)
                connection.backfill_from = max(start, legacy.synced_through - overlap)
            legacy.status = ConnectionStatus.DISCONNECTED
            legacy.access_token_enc = legacy.refresh_token_enc = ""
    connection.status = ConnectionStatus.CONNECTED
    connection.external_user_id = external_user_id
    connection.access_token_enc = cipher.encrypt(tokens.access_token)
    connection.refresh_token_enc = cipher.encrypt(tokens.refresh_token or "")
    connection.token_expires_at = tokens.expires_at
    connection.failures, connection.next_attempt_at = 0, None
    if budget is not None:
        counted = budgets.count(budgets.BudgetState(
            connection.budget_window_start, connection.budget_used,
            connection.budget_used_before), budget, now)
        connection.budget_window_start = counted.window_start
        connection.budget_used, connection.budget_used_before = counted.used, counted.used_before
    connection.backfill_total_days = (local_today(member, now) - connection.backfill_from).days + 1
    session.flush()
    record(session, TrackerConnected(member_id=_member_id(member),
                                     connection_id=connection.id or 0))
    return connection


def disconnect(session: Session, *, member: User, provider: str, keep_data: bool) -> None:
    """End a connection: tokens forgotten here (and revoked at the platform after commit);
    the data it brought kept, or deleted (published as changed days, so that progress follows)."""
    connection = session.exec(select(Connection).where(
        col(Connection.member_id) == _member_id(member),
        col(Connection.provider) == provider)).first()
    if connection is None or connection.status == ConnectionStatus.DISCONNECTED:
        raise TrackerNotConnected
    token = connection.refresh_token_enc or connection.access_token_enc
    connection.status = ConnectionStatus.DISCONNECTED
    connection.access_token_enc = connection.refresh_token_enc = ""
    connection.token_expires_at = None
    if not keep_data:
        member_id = _member_id(member)
        days: list[date] = [row.day for row in session.exec(select(DailySteps).where(
            col(DailySteps.member_id) == member_id, col(DailySteps.source) == provider))]
        nights: list[date] = [row.night for row in session.exec(select(SleepNight).where(
            col(SleepNight.member_id) == member_id, col(SleepNight.source) == provider))]
        for model in (DailySteps, SleepNight):
            session.execute(delete(model).where(col(model.member_id) == member_id,
                                                col(model.source) == provider))
        connection.synced_through = None
        if days:
            record(session, StepsSynced(member_id=member_id, source=provider,
                                        days=tuple(sorted(days))))
        if nights:
            record(session, SleepSynced(member_id=member_id, source=provider,
                                        nights=tuple(sorted(nights))))
    session.flush()
    record(session, TrackerDisconnected(member_id=_member_id(member), provider=provider,
                                        token_enc=token))


def due_connections(session: Session, *, now: datetime, every: timedelta) -> list[int]:
    """Connections whose next scheduled sync has come."""
    rows = session.exec(select(Connection).where(
        col(Connection.status) == ConnectionStatus.CONNECTED))
    return [c.id or 0 for c in rows
            if (c.next_attempt_at is None or c.next_attempt_at <= now)
            and (c.last_sync_at is None or now - c.last_sync_at >= every
                 or c.next_attempt_at is not None)]
