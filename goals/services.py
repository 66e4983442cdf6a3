"""Goals: setting, changing, pausing and sharing them; check-ins; progress kept up to date from data.

Progress is stored per goal and day (`GoalDay`) and recomputed only for the days that changed:
a sync or an import publishes which days changed, and `recompute_days` re-reads exactly those.
Streaks and milestones then follow from the goal's days (goals/progress.py has the rules).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import idempotency
from app.accounts.models import CohortMembership, CohortRole, Role, User
from app.accounts.services import has_control_characters, is_coach_of
from app.errors import Forbidden, InvalidInput, NotFound
from app.events import record
from goals import progress
from goals.events import GoalProgressed, GoalVisibilityChanged, MilestoneReached
from goals.exceptions import AlreadyCheckedIn, GoalNotFound
from goals.models import (
    SLEEP_KINDS,
    STEP_KINDS,
    WEEKLY_KINDS,
    CheckIn,
    Goal,
    GoalChange,
    GoalDay,
    GoalKind,
    GoalPause,
    GoalSettings,
    GoalStatus,
    GoalTemplate,
    Milestone,
    MilestoneKind,
    TemplateCreate,
    Visibility,
)
from wearables.models import PRECEDENCE, DailySteps, SleepNight
from wearables.services import local_today as local_today  # one rule for a member's day

Metric = Literal["steps", "sleep"]

STEPS_RANGE = (100, 100_000)
SLEEP_RANGE = (180, 840)        # 3 to 14 hours, in minutes
WINDOW_RANGE = (15, 180)        # minutes either side of a bedtime
MAX_OPEN_GOALS = 12
CHECK_IN_DAYS_BACK = 7          # a member may catch up on the past week
HABIT_TITLE_LENGTH = (2, 80)


NEWS_DAYS = 2  # milestones older than this (a backfill's months-old ones) are not news


def milestone_is_news(member: User, *, reached_on: date, now: datetime) -> bool:
    """Whether a milestone is fresh enough to tell the member and their group about."""
    return reached_on >= local_today(member, now) - timedelta(days=NEWS_DAYS)


def _id(row: User | Goal) -> int:
    if row.id is None:
        raise ValueError("not saved yet")
    return row.id


# --- checking what a member asks for ---


def _check_range(value: int, bounds: tuple[int, int], message: object, field: str) -> int:
    if not bounds[0] <= value <= bounds[1]:
        raise InvalidInput(message, field=field)
    return value


@dataclass(frozen=True)
class Shape:
    """A goal's checked settings."""

    kind: GoalKind
    title: str
    target: int
    per_week: int
    window_minutes: int


def check_shape(*, kind: GoalKind, title: str, target: int, per_week: int,
                window_minutes: int) -> Shape:
    """Return tidy settings for a goal of `kind`, or raise with a message saying what to change."""
    title = " ".join(title.split())
    if has_control_characters(title):
        raise InvalidInput(_l("Please use letters, numbers and punctuation only."), field="title")
    if len(title) > HABIT_TITLE_LENGTH[1]:
        raise InvalidInput(_l("Please keep the goal's name to 80 characters or fewer."),
                           field="title")
    if kind in STEP_KINDS:
        _check_range(target, STEPS_RANGE, _l("Please choose a number of steps from 100 to "
                                             "100,000."), "target")
    elif kind == GoalKind.SLEEP:
        _check_range(target, SLEEP_RANGE, _l("Please choose from 3 to 14 hours of sleep."),
                     "target")
    elif kind == GoalKind.BEDTIME:
        _check_range(target, (0, 1439), _l("Please choose a bedtime, such as 22:30."), "target")
        _check_range(window_minutes, WINDOW_RANGE, _l("Please choose how close to that time "
                                                      "counts: from 15 minutes to 3 hours."),
                     "window_minutes")
    else:
        if len(title) < HABIT_TITLE_LENGTH[0]:
            raise InvalidInput(_l("Please say in a few words what you would like to do each "
                                  "day."), field="title")
        target = 0
    if kind in WEEKLY_KINDS:
        _check_range(per_week, (1, 7), _l("Please choose from 1 to 7 days a week."), "per_week")
    else:
        per_week = 7
    if kind != GoalKind.BEDTIME:
        window_minutes = 0
    return Shape(kind=kind, title=title, target=target, per_week=per_week,
                 window_minutes=window_minutes)


def _require_member(member: User) -> None:
    if member.role != Role.MEMBER:
        raise Forbidden(_l("Goals are kept for members."))


# --- reading goals ---


def goals_of(session: Session, *, member: User, archived: bool = False) -> list[Goal]:
    """The member's goals, open ones (or archived ones), oldest first."""
    status = col(Goal.status) == GoalStatus.ARCHIVED
    return list(session.exec(select(Goal).where(
        col(Goal.member_id) == _id(member), status if archived else ~status)
        .order_by(col(Goal.id))))


def own_goal(session: Session, *, member: User, goal_id: int) -> Goal:
    """The member's own goal; GoalNotFound for anyone else's, so nothing leaks."""
    goal = session.get(Goal, goal_id)
    if goal is None or goal.member_id != member.id:
        raise GoalNotFound()
    return goal


def _shares_cohort(session: Session, *, viewer: User, owner_id: int, as_coach: bool) -> bool:
    """True when `viewer` is in one of the owner's cohorts (as a coach of it, when `as_coach`)."""
    owner_side = select(CohortMembership.cohort_id).where(
        col(CohortMembership.user_id) == owner_id, col(CohortMembership.role) == CohortRole.MEMBER)
    query = select(CohortMembership.id).where(col(CohortMembership.user_id) == viewer.id,
                                              col(CohortMembership.cohort_id).in_(owner_side))
    if as_coach:
        query = query.where(col(CohortMembership.role) == CohortRole.COACH)
    return session.exec(query).first() is not None


def can_see(session: Session, *, viewer: User, goal: Goal) -> bool:
    """The one rule for who sees a goal: its owner; a coach of the owner's cohort when shared
    with the coach or the peer group; a peer of the same cohort when shared with the group."""
    if viewer.id == goal.member_id:
        return True
    if goal.status == GoalStatus.ARCHIVED or goal.visibility == Visibility.PRIVATE:
        return False
    if viewer.role == Role.MEMBER:
        return (goal.visibility == Visibility.PEERS
                and _shares_cohort(session, viewer=viewer, owner_id=goal.member_id,
                                   as_coach=False))
    return _shares_cohort(session, viewer=viewer, owner_id=goal.member_id, as_coach=True)


def visible_goals(session: Session, *, viewer: User, owner_id: int) -> list[Goal]:
    """The owner's open goals that `viewer` may see (NotFound when the owner is out of reach)."""
    owner = session.get(User, owner_id)
    if owner is None or owner.role != Role.MEMBER:
        raise NotFound()
    goals = [g for g in session.exec(select(Goal).where(
        col(Goal.member_id) == owner_id, col(Goal.status) != GoalStatus.ARCHIVED)
        .order_by(col(Goal.id)))]
    shown = [g for g in goals if can_see(session, viewer=viewer, goal=g)]
    if viewer.id != owner_id and not shown and not _related(session, viewer=viewer,
                                                            owner_id=owner_id):
        raise NotFound()
    return shown


def _related(session: Session, *, viewer: User, owner_id: int) -> bool:
    return _shares_cohort(session, viewer=viewer, owner_id=owner_id,
                          as_coach=viewer.role != Role.MEMBER)


def visible_goal(session: Session, *, viewer: User, goal_id: int) -> Goal:
    goal = session.get(Goal, goal_id)
    if goal is None or not can_see(session, viewer=viewer, goal=goal):
        raise GoalNotFound()
    return goal


# --- setting and changing goals ---


def create_goal(session: Session, *, member: User, settings: GoalSettings,
                now: datetime) -> Goal:
    """Start a goal from today (the member's local day); earlier days do not count."""
    _require_member(member)
    shape = check_shape(kind=settings.kind, title=settings.title, target=settings.target,
                        per_week=settings.per_week, window_minutes=settings.window_minutes)
    open_goals = len(goals_of(session, member=member))
    if open_goals >= MAX_OPEN_GOALS:
        raise InvalidInput(_l("You have 12 goals going already. Finishing or archiving one makes "
                              "room for a new one."))
    template_id = None
    if settings.template_id is not None:
        template = session.get(GoalTemplate, settings.template_id)
        if template is None or template.archived_at is not None or not _in_cohort(
                session, member=member, cohort_id=template.cohort_id):
            raise NotFound(_l("That suggestion is no longer available."), field="template_id")
        template_id = template.id
    goal = Goal(member_id=_id(member), kind=shape.kind, title=shape.title, target=shape.target,
                per_week=shape.per_week, window_minutes=shape.window_minutes,
                visibility=settings.visibility, template_id=template_id,
                starts_on=local_today(member, now), created_at=now, updated_at=now)
    session.add(goal)
    session.flush()
    rebuild_goal(session, member=member, goal=goal, now=now)
    if goal.visibility != Visibility.PRIVATE:
        record(session, GoalVisibilityChanged(member_id=goal.member_id, goal_id=_id(goal),
                                              before=Visibility.PRIVATE, after=goal.visibility))
    return goal


def change_goal(session: Session, *, member: User, goal_id: int, change: GoalChange,
                now: datetime) -> Goal:
    """Change a goal's target, days a week, window, name or visibility (at once everywhere)."""
    goal = own_goal(session, member=member, goal_id=goal_id)
    if goal.status == GoalStatus.ARCHIVED:
        raise InvalidInput(_l("This goal is archived. You can start a new one like it."))
    kind = GoalKind(goal.kind)
    shape = check_shape(
        kind=kind, title=goal.title if change.title is None else change.title,
        target=goal.target if change.target is None else change.target,
        per_week=goal.per_week if change.per_week is None else change.per_week,
        window_minutes=goal.window_minutes if change.window_minutes is None
        else change.window_minutes)
    rules_changed = (shape.target, shape.per_week, shape.window_minutes) != (
        goal.target, goal.per_week, goal.window_minutes)
    goal.title, goal.target = shape.title, shape.target
    goal.per_week, goal.window_minutes = shape.per_week, shape.window_minutes
    before = goal.visibility
    if change.visibility is not None:
        goal.visibility = change.visibility
    goal.updated_at = now
    session.add(goal)
    session.flush()
    if goal.visibility != before:  # recorded once the change is in: in-transaction handlers read it
        record(session, GoalVisibilityChanged(member_id=goal.member_id, goal_id=_id(goal),
                                              before=before, after=goal.visibility))
    if rules_changed:
        rebuild_goal(session, member=member, goal=goal, now=now)
    return goal


def pause_goal(session: Session, *, member: User, goal_id: int, now: datetime) -> Goal:
    """Rest a goal from today: paused days neither count nor break its streak."""
    goal = own_goal(session, member=member, goal_id=goal_id)
    if goal.status != GoalStatus.ACTIVE:
        raise InvalidInput(_l("This goal is not active, so there is nothing to pause."))
    today = local_today(member, now)
    session.add(GoalPause(goal_id=_id(goal), starts_on=max(today, goal.starts_on)))
    goal.status, goal.updated_at = GoalStatus.PAUSED, now
    session.add(goal)
    session.flush()
    refresh_goals(session, goals=[goal], today=today, changed={_id(goal): (today,)})
    return goal


def resume_goal(session: Session, *, member: User, goal_id: int, now: datetime) -> Goal:
    """Bring a paused goal back from today; the streak it had is still there."""
    goal = own_goal(session, member=member, goal_id=goal_id)
    if goal.status != GoalStatus.PAUSED:
        raise InvalidInput(_l("This goal is not paused."))
    today = local_today(member, now)
    for pause in session.exec(select(GoalPause).where(col(GoalPause.goal_id) == goal_id,
                                                      col(GoalPause.ends_on).is_(None))):
        if pause.starts_on >= today:
            session.delete(pause)  # paused and back on the same day: as if it never rested
        else:
            pause.ends_on = today
            session.add(pause)
    goal.status, goal.updated_at = GoalStatus.ACTIVE, now
    session.add(goal)
    session.flush()
    refresh_goals(session, goals=[goal], today=today, changed={_id(goal): (today,)})
    return goal


def archive_goal(session: Session, *, member: User, goal_id: int, now: datetime) -> Goal:
    """Put a goal away; its history and milestones stay for the member to look back on."""
    goal = own_goal(session, member=member, goal_id=goal_id)
    if goal.status == GoalStatus.ARCHIVED:
        raise InvalidInput(_l("This goal is already archived."))
    goal.status, goal.updated_at = GoalStatus.ARCHIVED, now
    session.add(goal)
    session.flush()
    return goal


# --- check-ins ---


def check_in(session: Session, *, member: User, goal_id: int, day: date | None, done: bool,
             client_key: str | None, now: datetime) -> bool:
    """Record a habit check-in for a day (today by default); False when this was a resend."""
    goal = own_goal(session, member=member, goal_id=goal_id)
    today = local_today(member, now)
    day = day or today
    if goal.kind != GoalKind.HABIT:
        raise InvalidInput(_l("This goal follows your steps or sleep by itself, so there is "
                              "nothing to check in."))
    if goal.status == GoalStatus.ARCHIVED:
        raise InvalidInput(_l("This goal is archived, so it takes no more check-ins."))
    if day > today:
        raise InvalidInput(_l("That day has not happened yet. You can check in for today or "
                              "an earlier day."), field="day")
    if day < goal.starts_on:
        raise InvalidInput(_l("This goal started after that day."), field="day")
    if day < today - timedelta(days=CHECK_IN_DAYS_BACK):
        raise InvalidInput(_l("You can check in for the past week."), field="day")
    if not idempotency.claim(session, user_id=_id(member), key=client_key, action="check_in"):
        return False
    if session.exec(select(CheckIn.id).where(col(CheckIn.goal_id) == goal_id,
                                             col(CheckIn.day) == day)).first() is not None:
        raise AlreadyCheckedIn(field="day")
    try:
        with session.begin_nested():
            session.add(CheckIn(goal_id=goal_id, day=day, done=done, created_at=now))
    except IntegrityError:  # the same day checked in twice at the same moment
        raise AlreadyCheckedIn(field="day") from None
    _write_days(session, goal=goal, results={day: (int(done), done)})
    refresh_goals(session, goals=[goal], today=today, changed={goal_id: (day,)})
    return True


# --- progress from data ---


def kinds_for(metric: Metric) -> frozenset[GoalKind]:
    return STEP_KINDS if metric == "steps" else SLEEP_KINDS


_RANKS = {source.value: rank for rank, source in enumerate(PRECEDENCE)}


def _best_by_precedence(rows: Iterable[tuple[int, date, str, int]]) -> dict[tuple[int, date], int]:
    """(member, day, source, value) rows → one value per (member, day), the best source winning."""
    best: dict[tuple[int, date], tuple[int, int]] = {}
    for member_id, day, source, value in rows:
        rank = _RANKS.get(source, len(PRECEDENCE))
        key = (member_id, day)
        if key not in best or rank < best[key][0]:
            best[key] = (rank, value)
    return {key: value for key, (_, value) in best.items()}


def daily_values(session: Session, *, member_ids: Collection[int], kind: GoalKind,
                 days: Collection[date] | None = None, since: date | None = None
                 ) -> dict[tuple[int, date], int]:
    """Each member's value per local day for a data goal of `kind`, merged by precedence:
    steps, minutes asleep, or bedtime as minutes after local midnight."""
    if kind in STEP_KINDS:
        steps_query = select(col(DailySteps.member_id), col(DailySteps.day),
                             col(DailySteps.source), col(DailySteps.steps)).where(
            col(DailySteps.member_id).in_(member_ids))
        if days is not None:
            steps_query = steps_query.where(col(DailySteps.day).in_(days))
        if since is not None:
            steps_query = steps_query.where(col(DailySteps.day) >= since)
        return _best_by_precedence(session.exec(steps_query))
    query = select(SleepNight).where(col(SleepNight.member_id).in_(member_ids))
    if days is not None:
        query = query.where(col(SleepNight.night).in_(days))
    if since is not None:
        query = query.where(col(SleepNight.night) >= since)
    rows = []
    for night in session.exec(query):
        if kind == GoalKind.SLEEP:
            rows.append((night.member_id, night.night, night.source, night.minutes_asleep))
        elif night.bedtime is not None:
            local = night.bedtime.astimezone(UTC) + timedelta(minutes=night.bed_offset_minutes)
            rows.append((night.member_id, night.night, night.source,
                         local.hour * 60 + local.minute))
    return _best_by_precedence(rows)


def _evaluate(goal: Goal, value: int | None) -> tuple[int, bool] | None:
    if value is None:
        return None
    return value, progress.day_met(GoalKind(goal.kind), target=goal.target,
                                   window_minutes=goal.window_minutes, value=value)


def _write_days(session: Session, *, goal: Goal,
                results: dict[date, tuple[int, bool] | None]) -> tuple[date, ...]:
    """Store a goal's results for some days (None: no data any more); the days that changed."""
    return _write_many(session, {_id(goal): results}).get(_id(goal), ())


def _write_many(session: Session, results: dict[int, dict[date, tuple[int, bool] | None]]
                ) -> dict[int, tuple[date, ...]]:
    """Store results for several goals' days in one read and one flush; the days that changed,
    per goal."""
    days = {day for per_goal in results.values() for day in per_goal}
    if not days:
        return {}
    existing = {(row.goal_id, row.day): row for row in session.exec(select(GoalDay).where(
        col(GoalDay.goal_id).in_(list(results)), col(GoalDay.day).in_(list(days))))}
    changed: dict[int, list[date]] = defaultdict(list)
    for goal_id, per_goal in results.items():
        for day, result in sorted(per_goal.items()):
            row = existing.get((goal_id, day))
            if result is None:
                if row is not None:
                    session.delete(row)
                    changed[goal_id].append(day)
            elif row is None:
                session.add(GoalDay(goal_id=goal_id, day=day, value=result[0], met=result[1]))
                changed[goal_id].append(day)
            elif (row.value, row.met) != result:
                row.value, row.met = result
                session.add(row)
                changed[goal_id].append(day)
    session.flush()
    return {goal_id: tuple(found) for goal_id, found in changed.items()}


def rebuild_goal(session: Session, *, member: User, goal: Goal, now: datetime) -> int:
    """Every day of one goal re-read from its start (a new goal, new rules, or a full rebuild);
    returns how many days changed."""
    today = local_today(member, now)
    kind = GoalKind(goal.kind)
    results: dict[date, tuple[int, bool] | None] = {}
    if kind == GoalKind.HABIT:
        for check in session.exec(select(CheckIn).where(col(CheckIn.goal_id) == goal.id)):
            results[check.day] = (int(check.done), check.done)
    else:
        values = daily_values(session, member_ids=[goal.member_id], kind=kind,
                              since=goal.starts_on)
        results = {day: _evaluate(goal, value) for (_, day), value in values.items()
                   if day <= today}
    stale = session.exec(select(col(GoalDay.day)).where(col(GoalDay.goal_id) == goal.id))
    results.update({day: None for day in stale if day not in results})
    changed = _write_days(session, goal=goal, results=results)
    refresh_goals(session, goals=[goal], today=today, changed={_id(goal): changed or (today,)})
    return len(changed)


def recompute_days(session: Session, *, member_id: int, metric: Metric, days: Collection[date],
                   now: datetime) -> list[int]:
    """After new steps or sleep for some days: update only those days of the member's data goals,
    then their streaks and milestones. Returns the goals whose progress changed."""
    member = session.get(User, member_id)
    if member is None or not days:
        return []
    goals = list(session.exec(select(Goal).where(
        col(Goal.member_id) == member_id, col(Goal.status) != GoalStatus.ARCHIVED,
        col(Goal.kind).in_(list(kinds_for(metric))), col(Goal.starts_on) <= max(days))))
    if not goals:
        return []
    today = local_today(member, now)
    wanted = [d for d in days if d <= today]
    values_by_kind: dict[GoalKind, dict[tuple[int, date], int]] = {}
    results: dict[int, dict[date, tuple[int, bool] | None]] = {}
    for goal in goals:
        # Both step kinds read the same steps: one query serves them.
        kind = GoalKind.STEPS if goal.kind in STEP_KINDS else GoalKind(goal.kind)
        if kind not in values_by_kind:
            values_by_kind[kind] = daily_values(session, member_ids=[member_id], kind=kind,
                                                days=wanted)
        values = values_by_kind[kind]
        results[_id(goal)] = {day: _evaluate(goal, values.get((member_id, day)))
                              for day in wanted if day >= goal.starts_on}
    changed = _write_many(session, results)
    touched = [g for g in goals if g.id in changed]
    refresh_goals(session, goals=touched, today=today, changed=changed)
    return [_id(g) for g in touched]


def refresh_goals(session: Session, *, goals: list[Goal], today: date,
                  changed: dict[int, tuple[date, ...]]) -> None:
    """Recount the streaks of `goals` from their stored days; record new milestones; publish."""
    if not goals:
        return
    ids = [_id(g) for g in goals]
    met_days: dict[int, dict[date, bool]] = defaultdict(dict)
    for goal_id, day, met in session.exec(select(col(GoalDay.goal_id), col(GoalDay.day),
                                                                 col(GoalDay.met))
                                          .where(col(GoalDay.goal_id).in_(ids))):
        met_days[goal_id][day] = met
    pauses: dict[int, list[progress.Pause]] = defaultdict(list)
    for pause in session.exec(select(GoalPause).where(col(GoalPause.goal_id).in_(ids))):
        pauses[pause.goal_id].append(progress.Pause(pause.starts_on, pause.ends_on))
    recorded: dict[int, list[Milestone]] = defaultdict(list)
    for milestone in session.exec(select(Milestone).where(col(Milestone.goal_id).in_(ids))):
        recorded[milestone.goal_id].append(milestone)
    for goal in goals:
        goal_id = _id(goal)
        weekly = goal.kind in WEEKLY_KINDS
        result = progress.streaks(progress.units(
            weekly=weekly, per_week=goal.per_week, starts_on=goal.starts_on, today=today,
            met_days=met_days[goal_id], pauses=pauses[goal_id]), unit="week" if weekly else "day")
        moved = (goal.current_streak, goal.best_streak) != (result.current, result.best)
        goal.current_streak, goal.best_streak = result.current, result.best
        session.add(goal)
        for candidate in result.candidates:
            _record_milestone(session, goal=goal, candidate=candidate,
                              recorded=recorded[goal_id])
        if moved or changed.get(goal_id):
            record(session, GoalProgressed(member_id=goal.member_id, goal_id=goal_id,
                                           days=changed.get(goal_id, ()),
                                           current_streak=result.current))
    session.flush()


def _record_milestone(session: Session, *, goal: Goal, candidate: progress.Candidate,
                      recorded: list[Milestone]) -> None:
    """Record a milestone unless it is already there: once per goal for the first goal met;
    once per run of met days for the others, wherever late data moves the run's start."""
    kind = candidate.kind
    for earlier in recorded:
        if earlier.kind == kind and (kind == MilestoneKind.FIRST_MET
                                     or earlier.reached_on >= candidate.run_start):
            return
    key = "first" if kind == MilestoneKind.FIRST_MET else candidate.reached_on.isoformat()
    milestone = Milestone(goal_id=_id(goal), member_id=goal.member_id, kind=kind, key=key,
                          reached_on=candidate.reached_on, streak=candidate.streak)
    try:
        with session.begin_nested():
            session.add(milestone)
    except IntegrityError:  # recorded by a concurrent recomputation
        return
    recorded.append(milestone)
    record(session, MilestoneReached(member_id=goal.member_id, goal_id=_id(goal),
                                     milestone_id=milestone.id or 0, kind=kind,
                                     streak=candidate.streak, reached_on=candidate.reached_on,
                                     visibility=goal.visibility))


def refresh_members(session: Session, *, members: list[User], now: datetime) -> int:
    """Recount the streaks of these members' goals as a new day begins (a day that passed
    without data ends a streak only now); returns how many goals were recounted."""
    by_member = {_id(m): m for m in members}
    goals = list(session.exec(select(Goal).where(col(Goal.member_id).in_(list(by_member)),
                                                col(Goal.status) != GoalStatus.ARCHIVED)))
    by_day: dict[date, list[Goal]] = defaultdict(list)
    for goal in goals:
        by_day[local_today(by_member[goal.member_id], now)].append(goal)
    for today, group in by_day.items():
        refresh_goals(session, goals=group, today=today, changed={})
    return len(goals)


# --- reading progress back ---


@dataclass(frozen=True)
class Progress:
    """Where a goal stands today and this week."""

    today_value: int | None
    today_met: bool
    week_met: int
    week_needed: int
    paused_today: bool


def progress_of(session: Session, *, goals: list[Goal], today: date) -> dict[int, Progress]:
    """Today's value and this week's count for each goal."""
    ids = [_id(g) for g in goals]
    week_start = progress.monday(today)
    days: dict[int, dict[date, GoalDay]] = defaultdict(dict)
    for row in session.exec(select(GoalDay).where(col(GoalDay.goal_id).in_(ids),
                                                  col(GoalDay.day) >= week_start)):
        days[row.goal_id][row.day] = row
    pauses: dict[int, list[progress.Pause]] = defaultdict(list)
    for pause in session.exec(select(GoalPause).where(col(GoalPause.goal_id).in_(ids))):
        pauses[pause.goal_id].append(progress.Pause(pause.starts_on, pause.ends_on))
    result = {}
    for goal in goals:
        goal_id = _id(goal)
        rows = days[goal_id]
        today_row = rows.get(today)
        open_days = [week_start + timedelta(days=i) for i in range(7)]
        open_days = [d for d in open_days if d >= goal.starts_on
                     and not progress.paused_on(pauses[goal_id], d)]
        result[goal_id] = Progress(
            today_value=today_row.value if today_row else None,
            today_met=bool(today_row and today_row.met),
            week_met=sum(1 for row in rows.values() if row.met),
            week_needed=min(goal.per_week, len(open_days)),
            paused_today=progress.paused_on(pauses[goal_id], today))
    return result


@dataclass(frozen=True)
class HistoryDay:
    day: date
    value: int | None
    met: bool
    paused: bool


def history(session: Session, *, goal: Goal, today: date, days: int) -> list[HistoryDay]:
    """The goal's last `days` days (from its start at the earliest), newest first."""
    first = max(goal.starts_on, today - timedelta(days=days - 1))
    rows = {row.day: row for row in session.exec(select(GoalDay).where(
        col(GoalDay.goal_id) == goal.id, col(GoalDay.day) >= first))}
    pauses = [progress.Pause(p.starts_on, p.ends_on) for p in session.exec(
        select(GoalPause).where(col(GoalPause.goal_id) == goal.id))]
    result = []
    day = today
    while day >= first:
        row = rows.get(day)
        result.append(HistoryDay(day=day, value=row.value if row else None,
                                 met=bool(row and row.met),
                                 paused=progress.paused_on(pauses, day)))
        day -= timedelta(days=1)
    return result


def milestones_of(session: Session, *, goal: Goal) -> list[Milestone]:
    return list(session.exec(select(Milestone).where(col(Milestone.goal_id) == goal.id)
                             .order_by(col(Milestone.reached_on).desc(), col(Milestone.id).desc())))


def checked_in_today(session: Session, *, goals: list[Goal], today: date) -> dict[int, bool]:
    """For habit goals: the answer given today, if any."""
    ids = [_id(g) for g in goals if g.kind == GoalKind.HABIT]
    if not ids:
        return {}
    return {check.goal_id: check.done for check in session.exec(select(CheckIn).where(
        col(CheckIn.goal_id).in_(ids), col(CheckIn.day) == today))}


# --- coach templates ---


def _in_cohort(session: Session, *, member: User, cohort_id: int) -> bool:
    return session.exec(select(CohortMembership.id).where(
        col(CohortMembership.cohort_id) == cohort_id,
        col(CohortMembership.user_id) == member.id)).first() is not None


def create_template(session: Session, *, coach: User, cohort_id: int, data: TemplateCreate,
                    now: datetime) -> GoalTemplate:
    """A coach suggests a goal to a cohort, in plain words."""
    if coach.role == Role.MEMBER or not is_coach_of(session, user=coach, cohort_id=cohort_id):
        raise NotFound()
    shape = check_shape(kind=data.kind, title=data.title, target=data.target,
                        per_week=data.per_week, window_minutes=data.window_minutes)
    note = " ".join(data.note.split())
    if has_control_characters(note):
        raise InvalidInput(_l("Please use letters, numbers and punctuation only."), field="note")
    template = GoalTemplate(cohort_id=cohort_id, created_by_id=coach.id, kind=shape.kind,
                            title=shape.title, note=note, target=shape.target,
                            per_week=shape.per_week, window_minutes=shape.window_minutes,
                            created_at=now)
    session.add(template)
    session.flush()
    return template


def templates_of_cohorts(session: Session, *, cohort_ids: list[int]) -> list[GoalTemplate]:
    return list(session.exec(select(GoalTemplate).where(
        col(GoalTemplate.cohort_id).in_(cohort_ids), col(GoalTemplate.archived_at).is_(None))
        .order_by(col(GoalTemplate.id).desc())))


def templates_for(session: Session, *, member: User) -> list[GoalTemplate]:
    """Suggestions from the coaches of the member's cohorts."""
    cohort_ids = list(session.exec(select(CohortMembership.cohort_id).where(
        col(CohortMembership.user_id) == member.id)))
    return templates_of_cohorts(session, cohort_ids=cohort_ids)


def template_for(session: Session, *, member: User, template_id: int) -> GoalTemplate:
    template = session.get(GoalTemplate, template_id)
    if template is None or template.archived_at is not None or not _in_cohort(
            session, member=member, cohort_id=template.cohort_id):
        raise NotFound(_l("That suggestion is no longer available."))
    return template


def archive_template(session: Session, *, coach: User, template_id: int,
                     now: datetime) -> GoalTemplate:
    template = session.get(GoalTemplate, template_id)
    if template is None or coach.role == Role.MEMBER or not is_coach_of(
            session, user=coach, cohort_id=template.cohort_id):
        raise NotFound()
    template.archived_at = now
    session.add(template)
    session.flush()
    return template

