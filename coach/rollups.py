"""Keeping the coach rollups equal to the raw rows.

Every change to a member's day (a sync, an import, a typed-in number, a check-in, a post, a
cheer, a comment, a goal shared or unshared) calls `refresh_member_days` in the same transaction:
it recomputes the member's `MemberDay` rows for those days from the raw rows, and adds the
difference to each of their cohorts' `CohortDay` rows with one atomic upsert, so that concurrent
writers never lose an update. Each metric counts towards a cohort only when the member's consent
for it is summary or detail. `rebuild_cohort` recomputes everything from scratch (nightly).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import astuple, dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, delete, func
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased
from sqlmodel import Session, SQLModel, col, select

from app.accounts import consent
from app.accounts.models import (
    CohortMembership,
    CohortRole,
    Consent,
    ConsentLevel,
    ConsentMetric,
    Role,
    User,
)
from coach.models import CohortDay, MemberDay, MemberPulse
from feed.models import Cheer, Comment, FeedItem
from goals.models import CheckIn, Goal, GoalDay, Visibility
from wearables.models import PRECEDENCE, DailySteps, SleepNight, Source

_RANK = {source.value: rank for rank, source in enumerate(PRECEDENCE)}
_CHUNK = 400


@dataclass(frozen=True)
class DayFigures:
    """One member's day, as computed from the raw rows."""

    steps: int | None = None
    sleep_minutes: int | None = None
    tracker: bool = False
    goals_total: int = 0
    goals_met: int = 0
    posts: int = 0
    cheers: int = 0
    comments: int = 0
    check_ins: int = 0

    @property
    def active(self) -> bool:
        return self.posts + self.cheers + self.comments + self.check_ins > 0

    @property
    def empty(self) -> bool:
        return self == EMPTY

    @classmethod
    def of(cls, row: MemberDay) -> DayFigures:
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


EMPTY = DayFigures()
COUNTED = tuple(name for name in CohortDay.model_fields if name not in ("cohort_id", "day"))


@dataclass(frozen=True)
class Shares:
    """Which of a member's metrics may count in their cohorts' figures."""

    steps: bool
    sleep: bool

    @classmethod
    def of(cls, levels: Mapping[ConsentMetric, ConsentLevel]) -> Shares:
        return cls(steps=levels[ConsentMetric.STEPS] != ConsentLevel.NOTHING,
                   sleep=levels[ConsentMetric.SLEEP] != ConsentLevel.NOTHING)


def contribution(day: DayFigures, shares: Shares) -> dict[str, int]:
    """What one member's day adds to a cohort's day."""
    steps = shares.steps and day.steps is not None
    sleep = shares.sleep and day.sleep_minutes is not None
    return {
        "steps_total": (day.steps or 0) if steps else 0,
        "steps_members": int(steps),
        "sleep_total": (day.sleep_minutes or 0) if sleep else 0,
        "sleep_members": int(sleep),
        "tracker_members": int(day.tracker),
        "goal_members": int(day.goals_total > 0),
        "goals_total": day.goals_total,
        "goals_met": day.goals_met,
        "active_members": int(day.active),
        "posts": day.posts,
        "cheers": day.cheers,
        "comments": day.comments,
        "check_ins": day.check_ins,
    }


# --- reading the raw rows ---


def _span(days: Collection[date]) -> tuple[date, date]:
    return min(days), max(days)


def _local_days(stamps: Iterable[datetime], zone: ZoneInfo,
                wanted: Collection[date]) -> dict[date, int]:
    counts: dict[date, int] = defaultdict(int)
    for when in stamps:
        day = when.astimezone(zone).date()
        if day in wanted:
            counts[day] += 1
    return counts


def compute_member_days(session: Session, *, member: User, days: Collection[date]
                        ) -> dict[date, DayFigures]:
    """The member's figures for `days`, straight from the raw rows (empty days included)."""
    member_id = member.id or 0
    wanted = set(days)
    first, last = _span(wanted)
    values: dict[date, dict[str, Any]] = {day: {} for day in wanted}

    best_steps: dict[date, tuple[int, int]] = {}
    tracker: set[date] = set()
    for day, source, steps in session.exec(select(
            col(DailySteps.day), col(DailySteps.source), col(DailySteps.steps)).where(
            col(DailySteps.member_id) == member_id, col(DailySteps.day) >= first,
            col(DailySteps.day) <= last)):
        if day not in wanted:
            continue
        rank = _RANK.get(source, len(_RANK))
        if day not in best_steps or rank < best_steps[day][0]:
            best_steps[day] = (rank, steps)
        if source != Source.MANUAL:
            tracker.add(day)
    best_sleep: dict[date, tuple[int, int]] = {}
    for night, source, minutes in session.exec(select(
            col(SleepNight.night), col(SleepNight.source), col(SleepNight.minutes_asleep)).where(
            col(SleepNight.member_id) == member_id, col(SleepNight.night) >= first,
            col(SleepNight.night) <= last)):
        if night not in wanted:
            continue
        rank = _RANK.get(source, len(_RANK))
        if night not in best_sleep or rank < best_sleep[night][0]:
            best_sleep[night] = (rank, minutes)
        if source != Source.MANUAL:
            tracker.add(night)
    for day, (_, steps) in best_steps.items():
        values[day]["steps"] = steps
    for day, (_, minutes) in best_sleep.items():
        values[day]["sleep_minutes"] = minutes
    for day in tracker:
        values[day]["tracker"] = True

    for day, total, met in session.exec(
            select(col(GoalDay.day), func.count(), func.sum(case((col(GoalDay.met), 1), else_=0)))
            .join(Goal, col(Goal.id) == col(GoalDay.goal_id))
            .where(col(Goal.member_id) == member_id, col(Goal.visibility) != Visibility.PRIVATE,
                   col(GoalDay.day) >= first, col(GoalDay.day) <= last)
            .group_by(col(GoalDay.day))):
        if day in wanted:
            values[day]["goals_total"] = int(total)
            values[day]["goals_met"] = int(met or 0)
    for day, count in session.exec(
            select(col(CheckIn.day), func.count()).join(Goal, col(Goal.id) == col(CheckIn.goal_id))
            .where(col(Goal.member_id) == member_id, col(CheckIn.done),
                   col(CheckIn.day) >= first, col(CheckIn.day) <= last)
            .group_by(col(CheckIn.day))):
        if day in wanted:
            values[day]["check_ins"] = int(count)

    zone = ZoneInfo(member.timezone)
    start = datetime.combine(first, time.min, zone) - timedelta(hours=1)
    end = datetime.combine(last + timedelta(days=1), time.min, zone) + timedelta(hours=1)
    for name, model, who in (("posts", FeedItem, FeedItem.author_id),
                             ("cheers", Cheer, Cheer.member_id),
                             ("comments", Comment, Comment.author_id)):
        stamps = session.exec(select(col(model.created_at)).where(
            col(who) == member_id, col(model.created_at) >= start, col(model.created_at) < end))
        for day, count in _local_days(stamps, zone, wanted).items():
            values[day][name] = count
    return {day: DayFigures(**figures) for day, figures in values.items()}



# --- keeping the rollups ---


def _insert(session: Session) -> Any:
    return sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgres_insert


def _upsert(session: Session, model: type[SQLModel], key: tuple[str, ...],
            rows: list[dict[str, Any]], *, add: bool) -> None:
    """INSERT … ON CONFLICT for many rows: `add` adds to the stored numbers, else replaces them.

    One statement, executed with every row's values (the driver batches them), rather than a
    statement built anew with the values inlined for each batch."""
    if not rows:
        return
    table = SQLModel.metadata.tables[str(model.__tablename__)]
    statement = _insert(session)(table)
    columns = {name: (table.c[name] + statement.excluded[name]) if add
               else statement.excluded[name] for name in rows[0] if name not in key}
    statement = (statement.on_conflict_do_update(index_elements=list(key), set_=columns)
                 if columns else statement.on_conflict_do_nothing(index_elements=list(key)))
    session.execute(statement, rows)


def member_cohorts(session: Session, *, member_id: int) -> list[int]:
    return list(session.exec(select(CohortMembership.cohort_id).where(
        col(CohortMembership.user_id) == member_id,
        col(CohortMembership.role) == CohortRole.MEMBER)))


def _add_to_cohorts(session: Session, *, cohort_ids: Iterable[int],
                    deltas: Mapping[date, Mapping[str, int]]) -> None:
    rows = [{"cohort_id": cohort_id, "day": day, **delta}
            for cohort_id in cohort_ids for day, delta in sorted(deltas.items())
            if any(delta.values())]
    if rows:
        _upsert(session, CohortDay, ("cohort_id", "day"), rows, add=True)


def _lock_member(session: Session, member_id: int) -> MemberPulse:
    """Serialise rollup changes for one member (a row lock on PostgreSQL; SQLite writes one at a
    time anyway), so that two transactions never both add the same difference."""
    _upsert(session, MemberPulse, ("member_id",), [{"member_id": member_id}], add=False)
    return session.exec(select(MemberPulse).where(col(MemberPulse.member_id) == member_id)
                        .with_for_update()).one()


def _shares(session: Session, member_id: int) -> Shares:
    return Shares.of(consent.levels_of(session, member_ids=[member_id])[member_id])


def refresh_member_days(session: Session, *, member_id: int, days: Collection[date]) -> set[date]:
    """Recompute the member's days from the raw rows and move their cohorts' days to match;
    returns the days that changed."""
    member = session.get(User, member_id)
    if member is None or member.role != Role.MEMBER or not days:
        return set()
    pulse = _lock_member(session, member_id)
    wanted = sorted(set(days))
    new = compute_member_days(session, member=member, days=wanted)
    old: dict[date, DayFigures] = {}
    for start in range(0, len(wanted), _CHUNK):
        for row in session.exec(select(MemberDay).where(
                col(MemberDay.member_id) == member_id,
                col(MemberDay.day).in_(wanted[start:start + _CHUNK]))):
            old[row.day] = DayFigures.of(row)
    changed = {day: figures for day, figures in new.items() if old.get(day, EMPTY) != figures}
    if not changed:
        return set()
    shares = _shares(session, member_id)
    deltas = {}
    for day, figures in changed.items():
        before, after = contribution(old.get(day, EMPTY), shares), contribution(figures, shares)
        deltas[day] = {name: after[name] - before[name] for name in after}
    _add_to_cohorts(session, cohort_ids=member_cohorts(session, member_id=member_id),
                    deltas=deltas)
    _store_member_days(session, member_id=member_id, days=changed, existing=set(old))
    _move_pulse(session, pulse, old=old, new=changed)
    return set(changed)


def _store_member_days(session: Session, *, member_id: int, days: Mapping[date, DayFigures],
                       existing: set[date]) -> None:
    gone = [day for day, figures in days.items() if figures.empty and day in existing]
    for start in range(0, len(gone), _CHUNK):
        session.execute(delete(MemberDay).where(col(MemberDay.member_id) == member_id,
                                                col(MemberDay.day).in_(gone[start:start + _CHUNK])))
    kept = [{"member_id": member_id, "day": day, **dict(zip(_FIGURES, astuple(figures), strict=True))}
            for day, figures in sorted(days.items()) if not figures.empty]
    _upsert(session, MemberDay, ("member_id", "day"), kept, add=False)


_FIGURES = tuple(f.name for f in fields(DayFigures))


def _move_pulse(session: Session, pulse: MemberPulse, *, old: Mapping[date, DayFigures],
                new: Mapping[date, DayFigures]) -> None:
    active = [day for day, figures in new.items() if figures.active]
    latest = max(active, default=None)
    last = pulse.last_active_on
    lost = last is not None and last in new and not new[last].active and old.get(last, EMPTY).active
    if lost:  # the day that made them active is no longer so: look again
        pulse.last_active_on = session.scalar(select(func.max(MemberDay.day)).where(
            col(MemberDay.member_id) == pulse.member_id,
            (col(MemberDay.posts) + col(MemberDay.cheers) + col(MemberDay.comments)
             + col(MemberDay.check_ins)) > 0))
    elif latest is not None and (last is None or latest > last):
        pulse.last_active_on = latest
    session.add(pulse)


def _member_rows(session: Session, member_id: int) -> list[MemberDay]:
    return list(session.exec(select(MemberDay).where(col(MemberDay.member_id) == member_id)))


def member_joined(session: Session, *, member_id: int, cohort_id: int, sign: int = 1) -> None:
    """Add (or, with sign=-1, take away) all of a member's days to a cohort's days."""
    member = session.get(User, member_id)
    if member is None or member.role != Role.MEMBER:
        return
    _lock_member(session, member_id)
    shares = _shares(session, member_id)
    deltas = {row.day: {name: sign * value for name, value in
                        contribution(DayFigures.of(row), shares).items()}
              for row in _member_rows(session, member_id)}
    _add_to_cohorts(session, cohort_ids=[cohort_id], deltas=deltas)


def consent_changed(session: Session, *, member_id: int, metric: str, before: str,
                    after: str) -> None:
    """A metric's consent moved: add or take away that metric's part of the member's days."""
    was, now = before != ConsentLevel.NOTHING, after != ConsentLevel.NOTHING
    if was == now:
        return
    _lock_member(session, member_id)
    sign = 1 if now else -1
    prefix = "steps" if metric == ConsentMetric.STEPS else "sleep"
    value = "steps" if metric == ConsentMetric.STEPS else "sleep_minutes"
    deltas: dict[date, dict[str, int]] = {}
    for row in _member_rows(session, member_id):
        amount = getattr(row, value)
        if amount is not None:
            deltas[row.day] = {f"{prefix}_total": sign * amount, f"{prefix}_members": sign}
    if deltas:
        _add_to_cohorts(session, cohort_ids=member_cohorts(session, member_id=member_id),
                        deltas={day: {name: delta.get(name, 0) for name in COUNTED}
                                for day, delta in deltas.items()})


# --- rebuilding from scratch ---


def all_days(session: Session, *, member_id: int) -> set[date]:
    """Every day on which the member has any raw row the rollups count."""
    days: set[date] = set()
    days.update(session.exec(select(col(DailySteps.day)).where(
        col(DailySteps.member_id) == member_id)))
    days.update(session.exec(select(col(SleepNight.night)).where(
        col(SleepNight.member_id) == member_id)))
    days.update(session.exec(select(col(GoalDay.day)).join(Goal, col(Goal.id) == col(GoalDay.goal_id))
                             .where(col(Goal.member_id) == member_id)))
    days.update(session.exec(select(col(CheckIn.day)).join(Goal, col(Goal.id) == col(CheckIn.goal_id))
                             .where(col(Goal.member_id) == member_id)))
    member = session.get(User, member_id)
    zone = ZoneInfo(member.timezone if member else "UTC")
    for model, who in ((FeedItem, FeedItem.author_id), (Cheer, Cheer.member_id),
                       (Comment, Comment.author_id)):
        for when in session.exec(select(col(model.created_at)).where(col(who) == member_id)):
            days.add(when.astimezone(zone).date())
    days.update(row.day for row in _member_rows(session, member_id))  # days that went away
    return days


def rebuild_member(session: Session, *, member_id: int) -> set[date]:
    """Recompute every day of one member (their cohorts follow); returns the days that changed."""
    return refresh_member_days(session, member_id=member_id,
                               days=all_days(session, member_id=member_id))


def cohort_members(session: Session, *, cohort_id: int) -> list[int]:
    return list(session.exec(select(CohortMembership.user_id).where(
        col(CohortMembership.cohort_id) == cohort_id,
        col(CohortMembership.role) == CohortRole.MEMBER)))


def expected_cohort_days(session: Session, *, cohort_id: int) -> dict[date, dict[str, int]]:
    """The cohort's days summed in SQL from its members' days (the same rule as `contribution`:
    steps and sleep only with consent)."""
    steps_consent, sleep_consent = aliased(Consent), aliased(Consent)
    day = MemberDay.__table__.c  # type: ignore[attr-defined]

    def shared(alias: Any) -> Any:
        return and_(alias.level.is_not(None), alias.level != ConsentLevel.NOTHING)

    has_steps = and_(shared(steps_consent), day.steps.is_not(None))
    has_sleep = and_(shared(sleep_consent), day.sleep_minutes.is_not(None))
    active = (day.posts + day.cheers + day.comments + day.check_ins) > 0
    sums = {
        "steps_total": func.sum(case((has_steps, day.steps), else_=0)),
        "steps_members": func.sum(case((has_steps, 1), else_=0)),
        "sleep_total": func.sum(case((has_sleep, day.sleep_minutes), else_=0)),
        "sleep_members": func.sum(case((has_sleep, 1), else_=0)),
        "tracker_members": func.sum(case((day.tracker, 1), else_=0)),
        "goal_members": func.sum(case((day.goals_total > 0, 1), else_=0)),
        "goals_total": func.sum(day.goals_total),
        "goals_met": func.sum(day.goals_met),
        "active_members": func.sum(case((active, 1), else_=0)),
        "posts": func.sum(day.posts),
        "cheers": func.sum(day.cheers),
        "comments": func.sum(day.comments),
        "check_ins": func.sum(day.check_ins),
    }
    query = (sa_select(day.day, *(sums[name] for name in COUNTED))
             .join(CohortMembership.__table__, and_(  # type: ignore[attr-defined]
                 col(CohortMembership.user_id) == day.member_id,
                 col(CohortMembership.cohort_id) == cohort_id,
                 col(CohortMembership.role) == CohortRole.MEMBER))
             .outerjoin(steps_consent, and_(col(steps_consent.member_id) == day.member_id,
                                            col(steps_consent.metric) == ConsentMetric.STEPS))
             .outerjoin(sleep_consent, and_(col(sleep_consent.member_id) == day.member_id,
                                            col(sleep_consent.metric) == ConsentMetric.SLEEP))
             .group_by(day.day))
    return {row[0]: {name: int(value or 0) for name, value in zip(COUNTED, row[1:], strict=True)}
            for row in session.execute(query)}


def reconcile_cohort(session: Session, *, cohort_id: int) -> set[date]:
    """Set the cohort's day rows to the sums of its members' days; returns the days corrected."""
    expected = expected_cohort_days(session, cohort_id=cohort_id)
    stored = {row.day: row for row in session.exec(select(CohortDay).where(
        col(CohortDay.cohort_id) == cohort_id))}
    corrected = set()
    zero = dict.fromkeys(COUNTED, 0)
    for day in set(stored) | set(expected):
        want = expected.get(day, zero)
        found = stored.get(day)
        have = {name: getattr(found, name) for name in COUNTED} if found else zero
        if have != want:
            corrected.add(day)
            fixed = found or CohortDay(cohort_id=cohort_id, day=day)
            for name, value in want.items():
                setattr(fixed, name, value)
            session.add(fixed)
    return corrected


def rebuild_cohort(session: Session, *, cohort_id: int) -> int:
    """Recompute the cohort's members' days from raw rows, then its days from theirs, in one
    transaction; returns how many cohort days were wrong (0 when the running upkeep kept up).
    The nightly job does the same a member at a time (coach.tasks)."""
    corrected: set[date] = set()
    for member_id in cohort_members(session, cohort_id=cohort_id):
        corrected |= rebuild_member(session, member_id=member_id)
    return len(corrected | reconcile_cohort(session, cohort_id=cohort_id))
