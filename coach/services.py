"""What coaches see: a cohort's overview (read from the rollups), the check-in list, one member's
page within what they allowed, and the same overview computed from the raw rows (the benchmark's
baseline and the tests' yardstick).

Small-group suppression: a figure that rests on fewer than `min_group` members is never a number,
only "fewer than K". Which members a figure rests on is counted conservatively: the most members
that added to it on any one day of the window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, union
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from app import audit
from app.accounts import consent
from app.accounts.models import (
    Cohort,
    CohortMembership,
    CohortRole,
    Consent,
    ConsentLevel,
    ConsentMetric,
    User,
    UserSession,
)
from app.accounts.services import get_cohort_for_coach
from app.errors import NotFound
from coach.exceptions import BadWindow
from coach.models import CohortDay, MemberDay, MemberPulse
from coach.rollups import COUNTED
from feed.models import Cheer, Comment, FeedItem, ItemStatus
from goals.models import CheckIn, Goal, GoalDay, GoalStatus, Visibility
from wearables.models import PRECEDENCE, Connection, ConnectionStatus, DailySteps, SleepNight, Source

WINDOWS = (7, 30, 90)


@dataclass(frozen=True)
class Figure:
    """A number a coach may see, or why not: `suppressed` (too few members) or no data (None)."""

    value: float | None
    suppressed: bool = False


@dataclass(frozen=True)
class DayPoint:
    day: date
    steps: Figure
    sleep_minutes: Figure


@dataclass(frozen=True)
class Overview:
    cohort_id: int
    days: int
    first: date
    last: date
    min_group: int
    members: int
    average_steps: Figure
    average_sleep_minutes: Figure
    goals_met_share: Figure
    active_members: Figure
    sync_coverage: Figure
    posts: Figure
    cheers: Figure
    comments: Figure
    check_ins: Figure
    daily: tuple[DayPoint, ...]

    @property
    def too_small(self) -> bool:
        return self.members < self.min_group


Totals = dict[str, int]


def _zero() -> Totals:
    return dict.fromkeys(COUNTED, 0)


def window(*, days: int, today: date) -> tuple[date, date]:
    if days not in WINDOWS:
        raise BadWindow()
    return today - timedelta(days=days - 1), today


def _member_ids(cohort_id: int) -> SelectOfScalar[int]:
    return select(col(CohortMembership.user_id)).where(
        col(CohortMembership.cohort_id) == cohort_id,
        col(CohortMembership.role) == CohortRole.MEMBER)


def member_count(session: Session, *, cohort_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(_member_ids(cohort_id).subquery()))
               or 0)


def _figures(*, cohort_id: int, first: date, last: date, min_group: int, members: int,
             per_day: Mapping[date, Totals], active: int) -> Overview:
    """The overview from per-day sums (whichever way they were computed) and the active count."""
    days = (last - first).days + 1
    small = members < min_group
    rows = [per_day.get(first + timedelta(days=n), _zero()) for n in range(days)]
    total = _zero()
    for row in rows:
        for name in COUNTED:
            total[name] += row[name]

    def most(name: str) -> int:
        return max((row[name] for row in rows), default=0)

    def ratio(numerator: str, denominator: str, basis: str) -> Figure:
        if small or most(basis) < min_group:
            return Figure(None, suppressed=True)
        if not total[denominator]:
            return Figure(None)
        return Figure(total[numerator] / total[denominator])

    def count(value: int, basis: int) -> Figure:
        return Figure(None, suppressed=True) if small or basis < min_group else Figure(value)

    engaged = most("active_members")
    daily = tuple(DayPoint(
        day=first + timedelta(days=n),
        steps=(Figure(None, True) if small or row["steps_members"] < min_group
               else Figure(row["steps_total"] / row["steps_members"])),
        sleep_minutes=(Figure(None, True) if small or row["sleep_members"] < min_group
                       else Figure(row["sleep_total"] / row["sleep_members"])))
        for n, row in enumerate(rows))
    return Overview(
        cohort_id=cohort_id, days=days, first=first, last=last, min_group=min_group,
        members=members,
        average_steps=ratio("steps_total", "steps_members", "steps_members"),
        average_sleep_minutes=ratio("sleep_total", "sleep_members", "sleep_members"),
        goals_met_share=ratio("goals_met", "goals_total", "goal_members"),
        active_members=count(active, active),
        sync_coverage=(Figure(None, True) if small
                       else Figure(total["tracker_members"] / (members * days) if members else 0)),
        posts=count(total["posts"], engaged), cheers=count(total["cheers"], engaged),
        comments=count(total["comments"], engaged), check_ins=count(total["check_ins"], engaged),
        daily=daily)


def overview(session: Session, *, cohort_id: int, days: int, today: date, min_group: int
             ) -> Overview:
    """The cohort's overview for the last `days` days, read from the rollups."""
    first, last = window(days=days, today=today)
    per_day = {row.day: {name: getattr(row, name) for name in COUNTED}
               for row in session.exec(select(CohortDay).where(
                   col(CohortDay.cohort_id) == cohort_id, col(CohortDay.day) >= first,
                   col(CohortDay.day) <= last))}
    active = int(session.scalar(select(func.count()).select_from(MemberPulse).where(
        col(MemberPulse.member_id).in_(_member_ids(cohort_id)),
        col(MemberPulse.last_active_on) >= first)) or 0)
    return _figures(cohort_id=cohort_id, first=first, last=last, min_group=min_group,
                    members=member_count(session, cohort_id=cohort_id), per_day=per_day,
                    active=active)


# --- the same figures from the raw rows ---


def _sharing(metric: ConsentMetric) -> SelectOfScalar[int]:
    return select(col(Consent.member_id)).where(col(Consent.metric) == metric,
                                                col(Consent.level) != ConsentLevel.NOTHING)


def _precedence(source: Any) -> Any:
    return case({s.value: rank for rank, s in enumerate(PRECEDENCE)}, value=source,
                else_=len(PRECEDENCE))


def raw_per_day(session: Session, *, cohort_id: int, first: date, last: date
                ) -> tuple[dict[date, Totals], set[int]]:
    """Per-day sums straight from the raw rows, and who was active in the window."""
    members = _member_ids(cohort_id)
    per_day: dict[date, Totals] = defaultdict(_zero)
    for model, day_column, value, metric, prefix in (
            (DailySteps, col(DailySteps.day), col(DailySteps.steps), ConsentMetric.STEPS,
             "steps"),
            (SleepNight, col(SleepNight.night), col(SleepNight.minutes_asleep),
             ConsentMetric.SLEEP, "sleep")):
        member = col(model.member_id)
        ranked = select(
            day_column.label("day"), value.label("value"),
            func.row_number().over(partition_by=(member, day_column),
                                   order_by=_precedence(col(model.source))
                                   ).label("rn")
        ).where(member.in_(members), member.in_(_sharing(metric)), day_column >= first,
                day_column <= last).subquery()
        for day, total, count in session.execute(
                select(ranked.c.day, func.sum(ranked.c.value), func.count())
                .where(ranked.c.rn == 1).group_by(ranked.c.day)):
            per_day[day][f"{prefix}_total"] = int(total)
            per_day[day][f"{prefix}_members"] = int(count)
    tracked = union(
        select(col(DailySteps.member_id).label("m"), col(DailySteps.day).label("d")).where(
            col(DailySteps.source) != Source.MANUAL, col(DailySteps.member_id).in_(members),
            col(DailySteps.day) >= first, col(DailySteps.day) <= last),
        select(col(SleepNight.member_id), col(SleepNight.night)).where(
            col(SleepNight.source) != Source.MANUAL, col(SleepNight.member_id).in_(members),
            col(SleepNight.night) >= first, col(SleepNight.night) <= last)).subquery()
    for day, count in session.execute(select(tracked.c.d, func.count()).group_by(tracked.c.d)):
        per_day[day]["tracker_members"] = int(count)
    for day, people, total, met in session.execute(
            select(col(GoalDay.day), func.count(func.distinct(col(Goal.member_id))), func.count(),
                   func.sum(case((col(GoalDay.met), 1), else_=0)))
            .join(Goal, col(Goal.id) == col(GoalDay.goal_id))
            .where(col(Goal.member_id).in_(members), col(Goal.visibility) != Visibility.PRIVATE,
                   col(GoalDay.day) >= first, col(GoalDay.day) <= last)
            .group_by(col(GoalDay.day))):
        per_day[day].update(goal_members=int(people), goals_total=int(total),
                            goals_met=int(met or 0))
    active: dict[date, set[int]] = defaultdict(set)
    for member_id, day in session.execute(
            select(col(Goal.member_id), col(CheckIn.day))
            .join(Goal, col(Goal.id) == col(CheckIn.goal_id))
            .where(col(Goal.member_id).in_(members), col(CheckIn.done),
                   col(CheckIn.day) >= first, col(CheckIn.day) <= last)):
        per_day[day]["check_ins"] += 1
        active[day].add(member_id)
    zones = {member_id: ZoneInfo(tz) for member_id, tz in session.execute(
        select(col(User.id), col(User.timezone)).where(col(User.id).in_(members)))}
    start = datetime.combine(first, time.min, ZoneInfo("UTC")) - timedelta(days=1)
    end = datetime.combine(last, time.min, ZoneInfo("UTC")) + timedelta(days=2)
    for name, who, stamp in (("posts", col(FeedItem.author_id), col(FeedItem.created_at)),
                             ("cheers", col(Cheer.member_id), col(Cheer.created_at)),
                             ("comments", col(Comment.author_id), col(Comment.created_at))):
        for member_id, when in session.execute(select(who, stamp).where(
                who.in_(members), stamp >= start, stamp < end)):
            day = when.astimezone(zones[member_id]).date()
            if first <= day <= last:
                per_day[day][name] += 1
                active[day].add(member_id)
    for day, people in active.items():
        per_day[day]["active_members"] = len(people)
    return dict(per_day), set().union(*active.values()) if active else set()


def overview_from_raw(session: Session, *, cohort_id: int, days: int, today: date,
                      min_group: int) -> Overview:
    """The same overview computed from the raw daily rows (slow; for comparison)."""
    first, last = window(days=days, today=today)
    per_day, active = raw_per_day(session, cohort_id=cohort_id, first=first, last=last)
    return _figures(cohort_id=cohort_id, first=first, last=last, min_group=min_group,
                    members=member_count(session, cohort_id=cohort_id), per_day=per_day,
                    active=len(active))


# --- the check-in list ---


class Light(StrEnum):
    """How recently a member's tracker synced."""

    GREEN = "green"  # within a day
    AMBER = "amber"  # within three days
    RED = "red"      # longer ago
    GREY = "grey"    # never, or no tracker


def light(last_sync_at: datetime | None, now: datetime) -> Light:
    if last_sync_at is None:
        return Light.GREY
    age = now - last_sync_at
    if age < timedelta(hours=24):
        return Light.GREEN
    return Light.AMBER if age < timedelta(days=3) else Light.RED


@dataclass(frozen=True)
class Change:
    """A metric far from the member's own usual: the last 7 days against the 28 before."""

    metric: ConsentMetric
    recent: float
    usual: float

    @property
    def down(self) -> bool:
        return self.recent < self.usual


@dataclass(frozen=True)
class CheckInRow:
    member_id: int
    display_name: str
    tracker: Light
    last_sync_at: datetime | None
    reconnect: bool
    last_seen_at: datetime | None
    idle: bool
    changes: tuple[Change, ...]
    held_posts: int

    @property
    def needs_check_in(self) -> bool:
        return (self.tracker in (Light.AMBER, Light.RED) or self.reconnect or self.idle
                or bool(self.changes) or self.held_posts > 0)

    @property
    def weight(self) -> int:
        """Most in need first."""
        return (5 * bool(self.changes) + 3 * (self.tracker == Light.RED) + 3 * self.reconnect
                + 2 * self.idle + 2 * (self.held_posts > 0) + (self.tracker == Light.AMBER))


# Sharp: the last week at least this far (as a share) from the member's own usual.
SHARP = {ConsentMetric.STEPS: 0.4, ConsentMetric.SLEEP: 0.25}


def _changes(session: Session, *, member_ids: list[int], levels: Mapping[int, Mapping[
        ConsentMetric, ConsentLevel]], today: date) -> dict[int, list[Change]]:
    recent_from, usual_from = today - timedelta(days=6), today - timedelta(days=34)
    recent = col(MemberDay.day) >= recent_from
    found: dict[int, list[Change]] = defaultdict(list)
    for metric, value in ((ConsentMetric.STEPS, col(MemberDay.steps)),
                          (ConsentMetric.SLEEP, col(MemberDay.sleep_minutes))):
        allowed = [m for m in member_ids if levels[m][metric] != ConsentLevel.NOTHING]
        for start in range(0, len(allowed), 500):
            for member_id, r_sum, r_n, u_sum, u_n in session.execute(
                    sa_select(col(MemberDay.member_id),
                           func.sum(case((recent, value), else_=0)),
                           func.count(case((recent, value))),
                           func.sum(case((recent, 0), else_=value)),
                           func.count(case((recent, None), else_=value)))
                    .where(col(MemberDay.member_id).in_(allowed[start:start + 500]),
                           col(MemberDay.day) >= usual_from, col(MemberDay.day) <= today,
                           value.is_not(None))
                    .group_by(col(MemberDay.member_id))):
                if r_n < 3 or u_n < 10 or not u_sum:
                    continue
                change = Change(metric=metric, recent=r_sum / r_n, usual=u_sum / u_n)
                if abs(change.recent / change.usual - 1) >= SHARP[metric]:
                    found[member_id].append(change)
    return found


def _per_member(rows: Iterable[tuple[int, Any]]) -> dict[int, Any]:
    return dict(iter(rows))  # iter: a Result has keys(), which dict() would take for a mapping


def check_in_list(session: Session, *, cohort_id: int, now: datetime, today: date,
                  idle_days: int, member_id: int | None = None) -> list[CheckInRow]:
    """Every member of the cohort (or just `member_id`) with what may call for a check-in,
    most in need first."""
    inside = _member_ids(cohort_id)
    if member_id is not None:
        inside = inside.where(col(CohortMembership.user_id) == member_id)
    members = list(session.exec(select(User).where(col(User.id).in_(inside))
                                .order_by(col(User.display_name))))
    ids = [m.id or 0 for m in members]
    synced = _per_member(session.execute(
        select(col(Connection.member_id), func.max(col(Connection.last_sync_at)))
        .where(col(Connection.member_id).in_(inside),
               col(Connection.status) != ConnectionStatus.DISCONNECTED)
        .group_by(col(Connection.member_id))))
    reconnect = set(session.scalars(select(col(Connection.member_id)).where(
        col(Connection.member_id).in_(inside),
        col(Connection.status).in_((ConnectionStatus.NEEDS_RECONNECT,
                                    ConnectionStatus.MOVE_TO_GOOGLE)))))
    seen = _per_member(session.execute(
        select(col(UserSession.user_id), func.max(col(UserSession.last_seen_at)))
        .where(col(UserSession.user_id).in_(inside)).group_by(col(UserSession.user_id))))
    held = _per_member(session.execute(
        select(col(FeedItem.author_id), func.count())
        .where(col(FeedItem.cohort_id) == cohort_id, col(FeedItem.status) == ItemStatus.HELD)
        .group_by(col(FeedItem.author_id))))
    changes = _changes(session, member_ids=ids,
                       levels=consent.levels_of(session, member_ids=ids), today=today)
    rows = [CheckInRow(
        member_id=i, display_name=m.display_name,
        tracker=light(synced.get(i), now), last_sync_at=synced.get(i),
        reconnect=i in reconnect, last_seen_at=seen.get(i),
        idle=seen.get(i) is None or now - seen[i] >= timedelta(days=idle_days),
        changes=tuple(changes.get(i, ())), held_posts=int(held.get(i, 0)))
        for i, m in zip(ids, members, strict=True)]
    return sorted(rows, key=lambda row: -row.weight)


# --- one member, within what they allowed ---


@dataclass(frozen=True)
class MetricView:
    metric: ConsentMetric
    level: ConsentLevel
    week: float | None = None   # the last 7 days' average (summary and detail)
    month: float | None = None  # the last 28 days' average
    days: tuple[tuple[date, int | None], ...] = ()  # detail only: the last 28 days


@dataclass(frozen=True)
class MemberView:
    member: User
    cohort: Cohort
    metrics: tuple[MetricView, ...]
    goals: tuple[Goal, ...]
    row: CheckInRow


def _average(values: Iterable[int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def member_view(session: Session, *, coach: User, cohort_id: int, member_id: int, now: datetime,
                today: date, idle_days: int) -> MemberView:
    """What the member allowed their coach to see; the look is written to the audit log."""
    cohort = get_cohort_for_coach(session, coach=coach, cohort_id=cohort_id)
    found = check_in_list(session, cohort_id=cohort_id, now=now, today=today,
                          idle_days=idle_days, member_id=member_id)
    member = session.get(User, member_id)
    if member is None or not found:
        raise NotFound()
    levels = consent.levels_of(session, member_ids=[member_id])[member_id]
    first = today - timedelta(days=27)
    stored = {row.day: row for row in session.exec(select(MemberDay).where(
        col(MemberDay.member_id) == member_id, col(MemberDay.day) >= first,
        col(MemberDay.day) <= today))}
    metrics = []
    for metric, name in ((ConsentMetric.STEPS, "steps"), (ConsentMetric.SLEEP, "sleep_minutes")):
        level = levels[metric]
        if level == ConsentLevel.NOTHING:
            metrics.append(MetricView(metric=metric, level=level))
            continue
        series = tuple((first + timedelta(days=n),
                        getattr(stored.get(first + timedelta(days=n)), name, None))
                       for n in range(28))
        metrics.append(MetricView(
            metric=metric, level=level, week=_average(v for _, v in series[-7:]),
            month=_average(v for _, v in series),
            days=series if level == ConsentLevel.DETAIL else ()))
    goals = tuple(session.exec(select(Goal).where(
        col(Goal.member_id) == member_id, col(Goal.visibility) != Visibility.PRIVATE,
        col(Goal.status) != GoalStatus.ARCHIVED).order_by(col(Goal.id))))
    audit.log(session, actor_id=coach.id, action="coach.viewed_member", subject_type="member",
              subject_id=member_id, member_id=member_id, detail=f"cohort {cohort_id}", now=now)
    return MemberView(member=member, cohort=cohort, metrics=tuple(metrics), goals=goals,
                      row=found[0])


def cohort_for_coach(session: Session, *, coach: User, cohort_id: int) -> Cohort:
    """The cohort if `coach` runs it; NotFound otherwise, so that nothing leaks."""
    return get_cohort_for_coach(session, coach=coach, cohort_id=cohort_id)

