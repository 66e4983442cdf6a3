"""Deterministic, realistic steps and sleep for the stand-ins: the same (seed, user) gives the same data.

Every value is a pure function of ``(seed, user_index, day)``, so that tests can compute what a
stand-in will answer without asking it. A user's *day* and *night* are local dates in the user's home
zone; a night is the local date on which the sleep ends (the way Fitbit's ``dateOfSleep`` counts).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

HISTORY_DAYS = 400
MISSING_DAY_CHANCE = 0.05
LOW_DAY_CHANCE = 0.03
MISSING_NIGHT_CHANCE = 0.04

# Users get these zones in turn (user i of seed s: ZONES[(s + i) % len(ZONES)]); most follow
# daylight-saving time, Sydney's runs the other way round, Kolkata has none and a half-hour offset.
ZONES: tuple[str, ...] = (
    "America/New_York",
    "Europe/Madrid",
    "America/Los_Angeles",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Chicago",
    "Europe/Berlin",
)

_LEGACY_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTVWXYZ"
# Relative share of a day's steps by local hour: nothing at night, peaks at commute, lunch and evening.
_HOUR_WEIGHTS: tuple[float, ...] = (
    0, 0, 0, 0, 0, 0, 0.5, 3, 6, 4, 3, 4, 7, 5, 3, 3, 4, 7, 8, 5, 3, 2, 0.8, 0,
)


@dataclass(frozen=True)
class Profile:
    """The habits of one generated user."""

    zone: str
    weekday_steps: int  # a typical weekday's steps
    weekend_factor: float  # weekend steps relative to a weekday
    bedtime_minutes: int  # usual bedtime, in minutes from midnight (negative: the evening before)
    sleep_minutes: int  # usual time in bed
    nap_chance: float  # chance of an afternoon nap on any day


@dataclass(frozen=True)
class Stage:
    """One stretch of a sleep in one stage (AWAKE, LIGHT, DEEP, REM, ASLEEP or RESTLESS); times in UTC."""

    start: datetime
    end: datetime
    kind: str

    @property
    def minutes(self) -> int:
        """Length in whole minutes."""
        return int((self.end - self.start).total_seconds()) // 60


@dataclass(frozen=True)
class GeneratedSleep:
    """One sleep, main or nap; start and end are in the user's home zone, stage times in UTC.

    The interval is the time in bed: it opens with ``minutes_to_fall_asleep`` of AWAKE, and
    ``minutes_asleep + minutes_awake == minutes_in_period`` (RESTLESS counts as awake).
    """

    point_id: str
    start: datetime
    end: datetime
    is_main: bool
    kind: str  # "STAGES" or "CLASSIC"
    stages: tuple[Stage, ...]
    minutes_to_fall_asleep: int

    @property
    def night(self) -> date:
        """The local date on which the sleep ends."""
        return self.end.date()

    @property
    def minutes_in_period(self) -> int:
        """Minutes from getting into bed to getting up (elapsed, so right across clock changes)."""
        elapsed = self.end.astimezone(UTC) - self.start.astimezone(UTC)
        return int(elapsed.total_seconds()) // 60

    @property
    def minutes_awake(self) -> int:
        """Minutes in the AWAKE or RESTLESS stages."""
        return sum(stage.minutes for stage in self.stages if stage.kind in ("AWAKE", "RESTLESS"))

    @property
    def minutes_asleep(self) -> int:
        """Minutes actually asleep."""
        return self.minutes_in_period - self.minutes_awake

    def stage_summary(self) -> dict[str, tuple[int, int]]:
        """Minutes and number of stretches per stage kind, in order of first appearance."""
        summary: dict[str, tuple[int, int]] = {}
        for stage in self.stages:
            minutes, count = summary.get(stage.kind, (0, 0))
            summary[stage.kind] = (minutes + stage.minutes, count + 1)
        return summary


def _rng(*parts: object) -> random.Random:
    """A random generator seeded from the parts, stable across runs and processes."""
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - sample data, not secrets


def _clamp(value: float, low: int, high: int) -> int:
    """Round and keep within [low, high]."""
    return max(low, min(high, round(value)))


def home_zone(seed: int, user_index: int) -> str:
    """The IANA zone a user lives in."""
    return ZONES[(seed + user_index) % len(ZONES)]


@lru_cache(maxsize=4096)
def profile(seed: int, user_index: int) -> Profile:
    """The habits of user ``user_index`` under ``seed``."""
    rng = _rng(seed, user_index, "profile")
    weekday_steps = rng.randint(6000, 9000)
    # Some people rest at weekends, others hike: either way the weekend differs visibly.
    quieter_weekends = rng.random() < 0.5
    weekend_factor = rng.uniform(0.6, 0.85) if quieter_weekends else rng.uniform(1.15, 1.4)
    return Profile(
        zone=home_zone(seed, user_index),
        weekday_steps=weekday_steps,
        weekend_factor=round(weekend_factor, 2),
        bedtime_minutes=rng.randint(-75, 20),
        sleep_minutes=rng.randint(400, 480),
        nap_chance=round(rng.uniform(0.03, 0.15), 2),
    )


def health_user_id(seed: int, user_index: int) -> str:
    """The user's Google Health API user id (a long decimal string)."""
    digest = hashlib.sha256(f"{seed}:{user_index}:health".encode()).digest()
    return str(10**19 + int.from_bytes(digest[:8], "big") % (9 * 10**19))


def legacy_user_id(seed: int, user_index: int) -> str:
    """The user's old Fitbit user id (six characters), the same in a Fitbit stand-in with this seed."""
    number = int.from_bytes(hashlib.sha256(f"{seed}:{user_index}:legacy".encode()).digest()[:8], "big")
    chars = []
    for _ in range(6):
        number, rest = divmod(number, len(_LEGACY_ALPHABET))
        chars.append(_LEGACY_ALPHABET[rest])
    return "".join(chars)


def local_today(seed: int, user_index: int) -> date:
    """Today's date in the user's home zone."""
    return datetime.now(ZoneInfo(home_zone(seed, user_index))).date()


def data_window(today: date) -> tuple[date, date]:
    """The first and last day (both included) with data: the 400 days before ``today``, and today."""
    return today - timedelta(days=HISTORY_DAYS), today


def days(first: date, last: date) -> Iterator[date]:
    """Every date from ``first`` to ``last``, both included."""
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


@lru_cache(maxsize=65536)
def daily_steps(seed: int, user_index: int, day: date) -> int | None:
    """Steps on a local day, or None for a day without data (the tracker was not worn)."""
    habits = profile(seed, user_index)
    rng = _rng(seed, user_index, day.isoformat(), "steps")
    roll = rng.random()
    if roll < MISSING_DAY_CHANCE:
        return None
    if roll < MISSING_DAY_CHANCE + LOW_DAY_CHANCE:
        return rng.randint(120, 1500)  # ill, or the tracker left on the charger most of the day
    base = habits.weekday_steps * (habits.weekend_factor if day.weekday() >= 5 else 1.0)
    season = 1 + 0.08 * math.sin(2 * math.pi * (day.timetuple().tm_yday - 100) / 365.25)
    return _clamp(base * season * rng.gauss(1.0, 0.14), 1500, 40000)


def hourly_steps(seed: int, user_index: int, day: date) -> tuple[int, ...]:
    """The day's steps split over its 24 local hours (sums to ``daily_steps``; all zero without data)."""
    total = daily_steps(seed, user_index, day)
    if not total:
        return (0,) * 24
    rng = _rng(seed, user_index, day.isoformat(), "hours")
    weights = [weight * rng.uniform(0.5, 1.5) for weight in _HOUR_WEIGHTS]
    shares = [total * weight / sum(weights) for weight in weights]
    counts = [math.floor(share) for share in shares]
    # Largest remainders first, so that the hours add up to the day exactly.
    by_remainder = sorted(range(24), key=lambda hour: shares[hour] - counts[hour], reverse=True)
    for hour in by_remainder[: total - sum(counts)]:
        counts[hour] += 1
    return tuple(counts)


def local_time(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    """The wall-clock time ``minutes`` after the local midnight starting ``day``, as an aware datetime."""
    naive = datetime.combine(day, time()) + timedelta(minutes=minutes)
    # A wall time inside a spring-forward gap does not exist: the round trip moves it past the gap.
    return naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)


def _point_id(seed: int, user_index: int, start: datetime) -> str:
    """A stable int64-style id for a sleep."""
    digest = hashlib.sha256(f"{seed}:{user_index}:{start.astimezone(UTC).isoformat()}".encode()).digest()
    return str(int.from_bytes(digest[:8], "big") >> 1)


def _stage_plan(rng: random.Random, total: int, fall_asleep: int, *, classic: bool) -> list[tuple[str, int]]:
    """Stage kinds and lengths in minutes that fill ``total`` minutes exactly."""
    tail = rng.randint(1, 8) if rng.random() < 0.5 else 0
    body = total - fall_asleep - tail
    plan: list[tuple[str, int]] = []
    used = 0
    cycle = 0
    while used < body:
        if classic:
            steps = [("ASLEEP", rng.randint(15, 70))]
            roll = rng.random()
            if roll < 0.35:
                steps.append(("RESTLESS", rng.randint(1, 6)))
            elif roll < 0.5:
                steps.append(("AWAKE", rng.randint(1, 4)))
        else:
            deep_high = max(6, 45 - 12 * cycle)
            steps = [
                ("LIGHT", rng.randint(20, 45)),
                ("DEEP", rng.randint(max(0, deep_high - 25), deep_high)),
                ("LIGHT", rng.randint(5, 20)),
                ("REM", rng.randint(8 + 6 * cycle, 15 + 8 * cycle)),
            ]
            if rng.random() < 0.35:
                steps.append(("AWAKE", rng.randint(1, 6)))
        for kind, minutes in steps:
            minutes = min(minutes, body - used)
            if minutes > 0:
                plan.append((kind, minutes))
                used += minutes
        cycle += 1
    plan = [("AWAKE", fall_asleep), *plan, ("AWAKE", tail)]
    merged: list[tuple[str, int]] = []
    for kind, minutes in plan:
        if minutes <= 0:
            continue
        if merged and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + minutes)
        else:
            merged.append((kind, minutes))
    return merged


def _sleep(seed: int, user_index: int, rng: random.Random, start: datetime, minutes: int, *,
           is_main: bool, classic: bool, fall_asleep: int) -> GeneratedSleep:
    """Build one sleep with its stages from its start and length."""
    stages: list[Stage] = []
    at = start.astimezone(UTC)
    for kind, length in _stage_plan(rng, minutes, fall_asleep, classic=classic):
        end = at + timedelta(minutes=length)
        stages.append(Stage(start=at, end=end, kind=kind))
        at = end
    return GeneratedSleep(
        point_id=_point_id(seed, user_index, start),
        start=start,
        end=at.astimezone(start.tzinfo),
        is_main=is_main,
        kind="CLASSIC" if classic else "STAGES",
        stages=tuple(stages),
        minutes_to_fall_asleep=fall_asleep,
    )


@lru_cache(maxsize=65536)
def sleep_sessions(seed: int, user_index: int, night: date) -> tuple[GeneratedSleep, ...]:
    """Every sleep that ends on the local date ``night``: the main sleep (bedtime 22:00–01:30, 5.5–9 h
    in bed, usually crossing midnight; missing on ~4% of nights) and sometimes an afternoon nap."""
    habits = profile(seed, user_index)
    zone = ZoneInfo(habits.zone)
    sessions: list[GeneratedSleep] = []
    rng = _rng(seed, user_index, night.isoformat(), "sleep")
    if rng.random() >= MISSING_NIGHT_CHANCE:
        weekend = night.weekday() >= 5  # waking up on a Saturday or Sunday
        bedtime = _clamp(habits.bedtime_minutes + (35 if weekend else 0) + rng.gauss(0, 30), -120, 90)
        in_bed = _clamp(habits.sleep_minutes + (30 if weekend else 0) + rng.gauss(0, 40), 330, 540)
        sessions.append(_sleep(
            seed, user_index, rng, local_time(night, bedtime, zone), in_bed,
            is_main=True, classic=rng.random() < 0.08, fall_asleep=rng.randint(2, 25),
        ))
    nap_rng = _rng(seed, user_index, night.isoformat(), "nap")
    if nap_rng.random() < habits.nap_chance:
        start = local_time(night, nap_rng.randint(13 * 60, 17 * 60), zone)
        sessions.append(_sleep(
            seed, user_index, nap_rng, start, nap_rng.randint(20, 90),
            is_main=False, classic=True, fall_asleep=nap_rng.randint(0, 8),
        ))
    return tuple(sessions)
