"""Pure progress rules: whether a day meets a goal, streaks with grace, and what to celebrate.

No database here: the services feed these functions a goal's days and pauses, so the rules can be
read (and tested) on their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from goals.models import GoalKind, MilestoneKind

STREAK_MILESTONES = ((3, MilestoneKind.STREAK_3), (7, MilestoneKind.STREAK_7),
                     (30, MilestoneKind.STREAK_30))
# One missed day is forgiven when no other was forgiven in the 7 days before it (a week: 4).
GRACE_EVERY = {"day": 7, "week": 4}
# A run that starts after this many missed days (weeks) is greeted with "welcome back".
WELCOME_BACK_AFTER = {"day": 7, "week": 2}


def minute_distance(a: int, b: int) -> int:
    """Minutes between two times of day, across midnight (23:50 and 00:10 are 20 apart)."""
    gap = abs(a - b) % 1440
    return min(gap, 1440 - gap)


def day_met(kind: GoalKind, *, target: int, window_minutes: int, value: int) -> bool:
    """Whether one day's value meets the goal."""
    if kind == GoalKind.BEDTIME:
        return minute_distance(value, target) <= window_minutes
    if kind == GoalKind.HABIT:
        return value > 0
    return value >= target


@dataclass(frozen=True)
class Pause:
    starts_on: date
    ends_on: date | None  # the first day back; None while still paused

    def covers(self, day: date) -> bool:
        return self.starts_on <= day and (self.ends_on is None or day < self.ends_on)


def paused_on(pauses: Sequence[Pause], day: date) -> bool:
    return any(p.covers(day) for p in pauses)


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class Unit:
    """A day, or a week for the weekly kinds, as the streak sees it."""

    start: date
    met: bool
    paused: bool
    in_progress: bool  # today, or this week: not over yet, so a miss does not count yet


def units(*, weekly: bool, per_week: int, starts_on: date, today: date,
          met_days: Mapping[date, bool], pauses: Sequence[Pause]) -> list[Unit]:
    """The goal's days (or weeks) from its first day to today."""
    if starts_on > today:
        return []
    if not weekly:
        result = []
        day = starts_on
        while day <= today:
            result.append(Unit(start=day, met=met_days.get(day, False),
                               paused=paused_on(pauses, day), in_progress=day == today))
            day += timedelta(days=1)
        return result
    result = []
    week = monday(starts_on)
    while week <= today:
        days = [week + timedelta(days=i) for i in range(7)]
        open_days = [d for d in days if starts_on <= d and not paused_on(pauses, d)]
        # A week only partly in play (the first one, or one with a pause) asks for fewer days.
        needed = min(per_week, len(open_days))
        met = sum(1 for d in open_days if d <= today and met_days.get(d, False))
        result.append(Unit(start=week, met=needed > 0 and met >= needed, paused=needed == 0,
                           in_progress=today < week + timedelta(days=7)))
        week += timedelta(days=7)
    return result


@dataclass(frozen=True)
class Candidate:
    """A milestone the data supports; the services record it unless it is already there."""

    kind: MilestoneKind
    reached_on: date
    streak: int
    run_start: date


@dataclass(frozen=True)
class Streaks:
    current: int
    best: int
    candidates: tuple[Candidate, ...]


def streaks(unit_list: Iterable[Unit], *, unit: str) -> Streaks:
    """Walk the goal's units oldest first: runs of met units, one forgiven miss now and then,
    paused units skipped, and the milestones reached on the way."""
    grace_every, welcome_after = GRACE_EVERY[unit], WELCOME_BACK_AFTER[unit]
    run = best = 0
    run_start: date | None = None
    misses = 0          # missed units in a row, since the last met one
    last_grace = -10**6  # index of the last forgiven miss
    ever_met = False
    best_before_run = 0
    candidates: list[Candidate] = []
    index = 0
    for current in unit_list:
        if current.paused or (current.in_progress and not current.met):
            continue
        index += 1
        if not current.met:
            misses += 1
            if misses == 1 and run > 0 and index - last_grace > grace_every:
                continue  # forgiven, if the next one is met
            run, run_start = 0, None
            continue
        if run == 0:
            run_start, best_before_run = current.start, best
            if not ever_met:
                candidates.append(Candidate(MilestoneKind.FIRST_MET, current.start, 1,
                                            current.start))
            elif misses >= welcome_after:
                candidates.append(Candidate(MilestoneKind.WELCOME_BACK, current.start, 1,
                                            current.start))
        elif misses == 1:
            last_grace = index - 1
        misses = 0
        ever_met = True
        run += 1
        assert run_start is not None
        for length, kind in STREAK_MILESTONES:
            if run == length:
                candidates.append(Candidate(kind, current.start, run, run_start))
        if run == best_before_run + 1 and best_before_run >= 3:
            candidates.append(Candidate(MilestoneKind.PERSONAL_BEST, current.start, run,
                                        run_start))
        best = max(best, run)
    return Streaks(current=run, best=best, candidates=tuple(candidates))
