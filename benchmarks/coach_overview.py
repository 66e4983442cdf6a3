"""A coach's cohort overview for 10,000 members × 365 days: read from the rollups, beside the same
figures computed from the raw daily rows in the same run; and what keeping the rollups costs a sync.

    .venv/bin/python benchmarks/coach_overview.py [--members 10000] [--days 365] [--runs 50]
        [--database-url postgresql://postgres@127.0.0.1:5432/hearten_bench]

Without --database-url: a new SQLite file in a temporary directory. On PostgreSQL, use a database
of its own, never `test` (the test suite's): `createdb -h 127.0.0.1 -U postgres hearten_bench`
once; the script drops and recreates its `public` schema at the start, then migrates it.

Seeded in bulk (an executemany per table and batch on SQLite, COPY on PostgreSQL; not part of any
figure): one coach, one cohort of `--members` members in five time zones; consent: 90% share steps
and sleep (a tenth of those in detail), 5% steps only, 5% nothing; 95% of days have steps from
Google, 5% of those also a typed-in (manual) value, which wins by source precedence, and some days
only a typed-in value; 90% of nights have sleep from Google (a fifth without bed and wake times),
a few typed in as well; each member has a steps goal, every second one a sleep goal, every third
a habit goal with check-ins, each starting somewhere in the period with a day row for every day
since, half of them shared with the coach; and a feed of a few thousand posts with cheers and
comments. On PostgreSQL, ANALYZE follows the load (as autovacuum would); SQLite gets no ANALYZE,
as the app never runs one.

The rollups (member and cohort days, each member's last active day) are written in the same bulk
load, from the figures the seed knows it wrote (cohort sums through `rollups.contribution`, the
app's own consent rule): building them with `rollups.rebuild_cohort` from nothing would take
several minutes at this size (the "from nothing" line of the output). They are then checked
two ways before anything is measured: every figure of the overview equals the one computed from
the raw rows, for each window; and `rollups.rebuild_member` over a sample of members (--sample)
changes no day, which checks their seeded member days, every day of the year, against the app's
own computation. That same sample gives the rebuild's cost per member, timed two ways: nightly,
when the rollups are already right, and from nothing (the member's days deleted first, rolled
back afterwards); times the members, these estimate the nightly job and the one-off fill.
--full-rebuild also times the real nightly job, `rollups.rebuild_cohort` over the whole cohort in
one transaction, and checks that it corrects nothing (minutes at this size).

Measured:
1. the overview for 7, 30 and 90 days: `services.overview` (rollups; --runs runs, each in a new
   read session) beside `services.overview_from_raw` (raw rows; a few runs), and the ratio.
   Targets: <= 50 ms from the rollups, and >= 10x faster than from the raw rows.
2. the page's server time, GET /coach/cohorts/<id>?days=30 (and its JSON twin) through the Flask
   test client. The coach is signed in by starting a server-side session marked as past the
   second factor (what the password and TOTP pages end with), so that signing in, which is not
   measured, does not depend on the authenticator flow.
3. rollup upkeep per synced day: a nightly sync of 3 changed days of steps for 500 members
   through the real path (`wearables.services.store_steps` in `get_db().transaction()`, whose
   in-transaction handlers recompute goals and the coach rollups), one transaction per member, as
   the sync jobs do; each transaction timed whole (commit included), and every call of
   `rollups.refresh_member_days` inside it timed on its own. A first, untimed pass over the same
   members settles the state the seed cannot (milestones and streaks the goals code records), so
   the timed pass is an ordinary night. The overview is checked equal to the raw figures again
   afterwards.

The machine these figures come from has 2 cores, and other agents run test suites on it at the
same time: read them as indications, not as a quiet-machine baseline. Figures only; not a test.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from operator import itemgetter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["INSTANCE_PATH"] = tempfile.mkdtemp(prefix="hearten-bench-")

from sqlalchemy import Connection, create_engine, delete, func, make_url, text
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, col, select

from app import create_app, migrate
from app.accounts import auth
from app.accounts import services as accounts
from app.accounts.models import (
    CohortMembership,
    CohortRole,
    Consent,
    ConsentLevel,
    ConsentMetric,
    Role,
    User,
)
from app.db import get_db, normalise_url, utcnow
from coach import rollups, services
from coach.models import CohortDay, MemberDay, MemberPulse
from feed.models import Cheer, CheerKind, Comment, FeedItem, ItemKind, ItemStatus
from goals.models import CheckIn, Goal, GoalDay, GoalKind, Visibility
from wearables.models import DailySteps, SleepNight, Source
from wearables.records import DaySteps
from wearables.services import store_steps

PASSWORD = "a quiet walk by the sea"  # noqa: S105  (the benchmark's own coach)
ZONES = ("UTC", "Europe/Madrid", "America/New_York", "America/Los_Angeles", "Asia/Kolkata")
BATCH = 500  # members seeded per round of inserts
SYNCED_MEMBERS = 500
SYNCED_DAYS = 3
TARGET_MS = 50.0
TARGET_RATIO = 10.0


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --- the database ---


def _prepare(url: str) -> str:
    """The database to use: a fresh SQLite file, or a PostgreSQL database whose schema is wiped."""
    if not url:
        return f"sqlite:///{os.environ['INSTANCE_PATH']}/bench.db"
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "postgresql":
        if parsed.database in (None, "", "test", "postgres"):
            sys.exit("Please give a database of the benchmark's own (e.g. hearten_bench): this "
                     "script wipes its schema, and `test` belongs to the test suite.")
        engine = create_engine(parsed)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    return url


def _bulk(conn: Connection, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (all with the same keys) at once: COPY on PostgreSQL; on SQLite one
    executemany of the values as the columns' own types store them."""
    if not rows:
        return
    table = SQLModel.metadata.tables[str(model.__tablename__)]
    names = list(rows[0])
    columns = ", ".join(f'"{name}"' for name in names)
    if conn.dialect.name != "postgresql":
        getter = itemgetter(*names)
        plan = []
        for n, name in enumerate(names):
            processor = table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
            if processor is not None or isinstance(rows[0][name], Enum):
                plan.append((n, _Stored(processor).__getitem__))
        params = []
        for row in rows:
            values = list(getter(row)) if len(names) > 1 else [getter(row)]
            for n, convert in plan:
                values[n] = convert(values[n])
            params.append(tuple(values))
        conn.exec_driver_sql(
            f'INSERT INTO "{table.name}" ({columns}) VALUES ({", ".join("?" for _ in names)})',  # noqa: S608
            params)
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(
            f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([str(row[name]) if isinstance(row[name], Enum) else row[name]
                            for name in names])


class _Stored(dict[Any, Any]):
    """A column type's bind processor, remembered per value: a date or a timestamp repeats
    millions of times."""

    def __init__(self, processor: Callable[[Any], Any] | None) -> None:
        super().__init__()
        self.processor = processor

    def __missing__(self, value: Any) -> Any:
        plain = str(value) if isinstance(value, Enum) else value
        self[value] = stored = self.processor(plain) if self.processor else plain
        return stored


# --- seeding ---


@dataclass(frozen=True)
class Seeded:
    cohort_id: int
    coach_id: int
    member_ids: list[int]
    rows: dict[str, int]


Activity = dict[tuple[int, date], list[int]]  # (member, local day) -> [posts, cheers, comments]


def _feed(rng: random.Random, members: list[tuple[int, ZoneInfo]], start: date, today: date,
          conn: Connection, cohort_id: int) -> tuple[dict[str, int], Activity]:
    """A few thousand posts with cheers and comments, on days before today, in daytime UTC;
    returns the row counts and each member's activity per local day."""
    posts = max(50, len(members) * 2 // 5)
    span = (today - start).days
    activity: Activity = defaultdict(lambda: [0, 0, 0])
    items, reactions = [], []
    for _ in range(posts):
        author, zone = rng.choice(members)
        day = start + timedelta(days=rng.randrange(span))
        when = datetime(day.year, day.month, day.day, 9, tzinfo=UTC) + timedelta(
            minutes=rng.randrange(7 * 60))
        items.append({"cohort_id": cohort_id, "author_id": author,
                      "kind": rng.choice((ItemKind.STORY, ItemKind.TIP)),
                      "body": "A short walk after lunch helped today.",
                      "status": ItemStatus.HELD if rng.random() < 0.03 else ItemStatus.VISIBLE,
                      "care_note": False, "misleading_note": "", "cheer_count": 0,
                      "comment_count": 0, "created_at": when})
        activity[author, when.astimezone(zone).date()][0] += 1
        cheerers = rng.sample(members, min(len(members), rng.randrange(7)))
        commenters = rng.sample(members, min(len(members), rng.randrange(4)))
        reactions.append((when, cheerers, commenters))
    _bulk(conn, FeedItem, items)
    item_ids = list(conn.execute(select(col(FeedItem.id)).order_by(col(FeedItem.id))).scalars())
    cheers, comments = [], []
    for item_id, (when, cheerers, commenters) in zip(item_ids, reactions, strict=True):
        for member_id, zone in cheerers:
            at = when + timedelta(minutes=rng.randrange(1, 120))
            cheers.append({"item_id": item_id, "member_id": member_id,
                           "kind": rng.choice(list(CheerKind)), "created_at": at})
            activity[member_id, at.astimezone(zone).date()][1] += 1
        for member_id, zone in commenters:
            at = when + timedelta(minutes=rng.randrange(1, 120))
            comments.append({"item_id": item_id, "author_id": member_id,
                             "body": "Thank you for sharing this.", "status": ItemStatus.VISIBLE,
                             "care_note": False, "created_at": at})
            activity[member_id, at.astimezone(zone).date()][2] += 1
    _bulk(conn, Cheer, cheers)
    _bulk(conn, Comment, comments)
    return {"feed_item": len(items), "cheer": len(cheers), "comment": len(comments)}, activity


@dataclass
class _Day:
    """One member's day as the seed wrote it (what the rollups must come to)."""

    steps: int | None = None
    sleep_minutes: int | None = None
    tracker: bool = False
    goals_total: int = 0
    goals_met: int = 0
    posts: int = 0
    cheers: int = 0
    comments: int = 0
    check_ins: int = 0


def _member_rows(rng: random.Random, member_id: int, goals: dict[str, tuple[int, date, int, str]],
                 start: date, days: int, now: datetime, activity: Activity
                 ) -> tuple[dict[str, list[dict[str, Any]]], dict[date, _Day]]:
    """One member's steps, sleep, goal days and check-ins for the whole period, and their days."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    figures: dict[date, _Day] = defaultdict(_Day)
    chance = rng.random

    def between(low: int, high: int) -> int:
        return low + int(chance() * (high - low + 1))

    for offset in range(days):
        day = start + timedelta(days=offset)
        if chance() < 0.95:
            value = between(1500, 12000)
            out["steps"].append({"member_id": member_id, "day": day, "source": Source.GOOGLE,
                                 "steps": value, "updated_at": now})
            figures[day].steps, figures[day].tracker = value, True
            if chance() < 0.05:  # typed in as well: the member's own number wins
                figures[day].steps = value + between(-1000, 3000)
                out["steps"].append({"member_id": member_id, "day": day,
                                     "source": Source.MANUAL, "steps": figures[day].steps,
                                     "updated_at": now})
        elif chance() < 0.3:  # no tracker that day, only a typed-in number
            figures[day].steps = between(1000, 9000)
            out["steps"].append({"member_id": member_id, "day": day, "source": Source.MANUAL,
                                 "steps": figures[day].steps, "updated_at": now})
        sources = []
        if chance() < 0.9:
            sources.append(Source.GOOGLE)
            if chance() < 0.02:
                sources.append(Source.MANUAL)
        elif chance() < 0.2:
            sources.append(Source.MANUAL)
        for source in sources:  # the manual night, when there is one, comes last and wins
            asleep = between(300, 540)
            timed = source == Source.MANUAL or chance() < 0.8
            bed = (datetime(day.year, day.month, day.day, tzinfo=UTC)
                   - timedelta(minutes=between(60, 180)))
            out["sleep"].append({
                "member_id": member_id, "night": day, "source": source,
                "bedtime": bed if timed else None,
                "wake_time": bed + timedelta(minutes=asleep + 25) if timed else None,
                "bed_offset_minutes": 0, "minutes_asleep": asleep, "minutes_in_bed": asleep + 25,
                "nap_minutes": 0, "updated_at": now})
            figures[day].sleep_minutes = asleep
            figures[day].tracker |= source == Source.GOOGLE
    for kind, (goal_id, starts_on, target, visibility) in goals.items():
        shared = visibility != Visibility.PRIVATE
        for offset in range((starts_on - start).days, days):
            day = start + timedelta(days=offset)
            if kind == GoalKind.HABIT:
                if chance() >= 0.6:
                    continue
                done = chance() < 0.85
                out["check_in"].append({"goal_id": goal_id, "day": day, "done": done,
                                        "created_at": now})
                figures[day].check_ins += done
                value, met = int(done), done
            else:
                found = figures[day].steps if kind == GoalKind.STEPS else figures[day].sleep_minutes
                if found is None:
                    continue
                value, met = found, found >= target
            out["goal_day"].append({"goal_id": goal_id, "day": day, "value": value,
                                    "met": met})
            if shared:
                figures[day].goals_total += 1
                figures[day].goals_met += met
    for offset in range(days):
        day = start + timedelta(days=offset)
        posts, cheers, comments = activity.get((member_id, day), (0, 0, 0))
        if posts or cheers or comments:
            figures[day].posts, figures[day].cheers, figures[day].comments = posts, cheers, comments
    return out, {day: found for day, found in figures.items() if found != _Day()}


def _seed(members: int, days: int, now: datetime) -> Seeded:
    """The raw rows, and the rollups they come to, written in bulk."""
    db = get_db()
    rng = random.Random(2026)
    today = now.date()
    start = today - timedelta(days=days - 1)
    with db.transaction() as session:
        coach = accounts.create_user(session, display_name="Coach Rosa", password=PASSWORD,
                                     role=Role.COACH)
        cohort = accounts.create_cohort(session, coach=coach, name="Morning Walkers")
        cohort_id, coach_id = cohort.id or 0, coach.id or 0
    counts: dict[str, int] = defaultdict(int)
    shares: dict[int, rollups.Shares] = {}
    with db.engine.begin() as conn:
        _bulk(conn, User, [
            {"display_name": f"Member {i}", "name_key": f"member {i}", "password_hash": "x",
             "role": Role.MEMBER, "timezone": ZONES[i % len(ZONES)], "language": "en",
             "created_at": now - timedelta(days=days), "password_changed_at": now}
            for i in range(members)])
        found = [(member_id or 0, zone) for member_id, zone in conn.execute(
            select(col(User.id), col(User.timezone)).where(col(User.role) == Role.MEMBER)
            .order_by(col(User.id)))]
        ids = [member_id for member_id, _ in found]
        _bulk(conn, CohortMembership, [
            {"cohort_id": cohort_id, "user_id": member_id, "role": CohortRole.MEMBER,
             "joined_at": now - timedelta(days=days)} for member_id in ids])
        consent = []
        for n, member_id in enumerate(ids):
            shares[member_id] = rollups.Shares(steps=n % 20 != 0, sleep=n % 20 not in (0, 1))
            if n % 20 == 0:
                continue  # never chose: nothing is shared
            level = ConsentLevel.DETAIL if n % 10 == 3 else ConsentLevel.SUMMARY
            sleep = ConsentLevel.NOTHING if n % 20 == 1 else level
            for metric, chosen in ((ConsentMetric.STEPS, level), (ConsentMetric.SLEEP, sleep)):
                consent.append({"member_id": member_id, "metric": metric, "level": chosen,
                                "changed_at": now})
        _bulk(conn, Consent, consent)
        counts.update(user=len(ids), cohortmembership=len(ids), consent=len(consent))
        feed_counts, activity = _feed(rng, [(member_id, ZoneInfo(zone)) for member_id, zone in found],
                                      start, today, conn, cohort_id)
        counts.update(feed_counts)
    cohort_days: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(rollups.COUNTED, 0))
    for first in range(0, len(ids), BATCH):
        chunk = ids[first:first + BATCH]
        with db.engine.begin() as conn:
            goals = []
            for member_id in chunk:
                kinds = [(GoalKind.STEPS, 6000)]
                if member_id % 2 == 0:
                    kinds.append((GoalKind.SLEEP, 420))
                if member_id % 3 == 0:
                    kinds.append((GoalKind.HABIT, 0))
                for kind, target in kinds:
                    goals.append({
                        "member_id": member_id, "kind": kind, "target": target, "per_week": 7,
                        "window_minutes": 0, "status": "active",
                        "starts_on": start + timedelta(days=rng.randrange(days)),
                        "visibility": Visibility.COACH if rng.random() < 0.5
                        else Visibility.PRIVATE,
                        "title": "Went outside" if kind == GoalKind.HABIT else "",
                        "current_streak": 0, "best_streak": 0, "created_at": now,
                        "updated_at": now})
            _bulk(conn, Goal, goals)
            counts["goal"] += len(goals)
            by_member: dict[int, dict[str, tuple[int, date, int, str]]] = defaultdict(dict)
            for goal_id, owner, goal_kind, starts_on, target, visibility in conn.execute(
                    sa_select(col(Goal.id), col(Goal.member_id), col(Goal.kind),
                              col(Goal.starts_on), col(Goal.target), col(Goal.visibility))
                    .where(col(Goal.member_id).in_(chunk))):
                by_member[owner][goal_kind] = (goal_id or 0, starts_on, target, visibility)
            rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for member_id in chunk:
                raw, figures = _member_rows(rng, member_id, by_member[member_id], start, days,
                                            now, activity)
                for name, found_rows in raw.items():
                    rows[name].extend(found_rows)
                last_active = None
                for day, figure in sorted(figures.items()):
                    rows["member_day"].append({"member_id": member_id, "day": day,
                                               **vars(figure)})
                    added = rollups.contribution(rollups.DayFigures(**vars(figure)),
                                                 shares[member_id])
                    totals = cohort_days[day]
                    for name, value in added.items():
                        totals[name] += value
                    if figure.posts + figure.cheers + figure.comments + figure.check_ins:
                        last_active = day
                rows["member_pulse"].append({"member_id": member_id,
                                             "last_active_on": last_active})
            for name, model in (("steps", DailySteps), ("sleep", SleepNight),
                                ("goal_day", GoalDay), ("check_in", CheckIn),
                                ("member_day", MemberDay), ("member_pulse", MemberPulse)):
                _bulk(conn, model, rows[name])
                counts[name] += len(rows[name])
    with db.engine.begin() as conn:
        _bulk(conn, CohortDay, [{"cohort_id": cohort_id, "day": day, **totals}
                                for day, totals in sorted(cohort_days.items())])
        counts["cohort_day"] = len(cohort_days)
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    return Seeded(cohort_id=cohort_id, coach_id=coach_id, member_ids=ids, rows=dict(counts))


# --- measuring ---


def _timed(call: Callable[[], Any], runs: int, *, warm_up: int = 0) -> list[float]:
    for _ in range(warm_up):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _read(call: Callable[..., services.Overview], **kwargs: Any) -> Callable[[], services.Overview]:
    """`call` in a new read session each time, as a request would have."""
    def run() -> services.Overview:
        with get_db().session(write=False) as session:
            return call(session, **kwargs)
    return run


def _check_equal(cohort_id: int, today: date, min_group: int) -> None:
    for days in services.WINDOWS:
        kwargs: dict[str, Any] = {"cohort_id": cohort_id, "days": days, "today": today,
                                  "min_group": min_group}
        from_rollups = _read(services.overview, **kwargs)()
        from_raw = _read(services.overview_from_raw, **kwargs)()
        assert from_rollups == from_raw, (days, from_rollups, from_raw)


def _describe(found: services.Overview) -> str:
    def shown(figure: services.Figure, digits: int = 0) -> str:
        if figure.suppressed:
            return "suppressed"
        return "none" if figure.value is None else f"{figure.value:,.{digits}f}"
    return (f"{found.days} days: {found.members:,} members, average steps "
            f"{shown(found.average_steps)}, sleep {shown(found.average_sleep_minutes)} min, goals "
            f"met {shown(found.goals_met_share, 3)}, active members {shown(found.active_members)}, "
            f"sync coverage {shown(found.sync_coverage, 3)}, posts {shown(found.posts)}, cheers "
            f"{shown(found.cheers)}, comments {shown(found.comments)}, check-ins "
            f"{shown(found.check_ins)}")


@contextmanager
def _clocked(totals: dict[str, float]) -> Iterator[None]:
    """Time every call of rollups.refresh_member_days (what the coach handlers call) meanwhile."""
    real = rollups.refresh_member_days

    def clocked(*args: Any, **kwargs: Any) -> set[date]:
        started = time.perf_counter()
        changed = real(*args, **kwargs)
        totals["seconds"] += time.perf_counter() - started
        totals["calls"] += 1
        totals["idle"] += not changed
        return changed

    rollups.refresh_member_days = clocked
    try:
        yield
    finally:
        rollups.refresh_member_days = real


def _rebuild_sample(seeded: Seeded, size: int, *, full: bool) -> None:
    """The rebuild's cost per member, on a sample, one transaction each: when the rollups are
    already right (every night; no day may change, which checks the seeded member days against
    the app's own computation), and from nothing (the member's days deleted first, then rolled
    back: the one-off cost of filling the rollups)."""
    db = get_db()
    step = max(1, len(seeded.member_ids) // max(1, size))
    sample = seeded.member_ids[step // 2::step][:size]
    nightly, fresh = [], []
    for member_id in sample:
        with db.transaction() as session:
            started = time.perf_counter()
            changed = rollups.rebuild_member(session, member_id=member_id)
            nightly.append((time.perf_counter() - started) * 1000)
        assert not changed, (member_id, sorted(changed)[:5])
        with db.session() as session:
            session.execute(delete(MemberDay).where(col(MemberDay.member_id) == member_id))
            started = time.perf_counter()
            rollups.rebuild_member(session, member_id=member_id)
            session.flush()
            fresh.append((time.perf_counter() - started) * 1000)
            session.rollback()
    members = len(seeded.member_ids)
    print(f"seeded member days checked by rollups.rebuild_member on {len(sample)} members: "
          f"0 days changed")
    print(f"{'rebuild (rollups.rebuild_member, per member)':<48}{'p50 ms':>9}{'mean ms':>9}"
          f"{'x members (est.)':>18}")
    for label, samples in (("nightly, rollups already right", nightly),
                           ("from nothing (one-off)", fresh)):
        mean = statistics.fmean(samples)
        print(f"{label:<48}{statistics.median(samples):>9.1f}{mean:>9.1f}"
              f"{mean * members / 1000:>16.0f} s")
    if full:
        started = time.perf_counter()
        with db.transaction() as session:
            corrected = rollups.rebuild_cohort(session, cohort_id=seeded.cohort_id)
        print(f"rollups.rebuild_cohort, whole cohort, one transaction (the nightly job): "
              f"{time.perf_counter() - started:.0f} s, {corrected} cohort days corrected")
        assert corrected == 0


def _sync_night(members: list[int], days: tuple[date, ...], rng: random.Random
                ) -> tuple[list[float], dict[str, float], int]:
    """New steps for `days` of each member, each member in its own transaction through the real
    path; returns each transaction's time (ms), the rollup upkeep's time and calls, and how many
    days changed (a new value can by chance equal the old one)."""
    db = get_db()
    upkeep: dict[str, float] = defaultdict(float)
    samples, synced = [], 0
    with _clocked(upkeep):
        for member_id in members:
            values = [DaySteps(day=day, steps=rng.randint(1500, 12000)) for day in days]
            started = time.perf_counter()
            with db.transaction() as session:
                changed = store_steps(session, member_id=member_id, source=Source.GOOGLE,
                                      days=values, now=utcnow())
            samples.append((time.perf_counter() - started) * 1000)
            synced += len(changed)
    return samples, upkeep, synced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=50, help="overview runs from the rollups")
    parser.add_argument("--raw-runs", type=int, default=3, help="overview runs from raw rows")
    parser.add_argument("--sample", type=int, default=100,
                        help="members whose rollups are rebuilt one by one (timed, checked)")
    parser.add_argument("--full-rebuild", action="store_true",
                        help="also time rollups.rebuild_cohort over the whole cohort")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    if args.days < max(services.WINDOWS):
        sys.exit(f"Please seed at least {max(services.WINDOWS)} days.")
    database = _prepare(args.database_url)
    migrate.upgrade(database)
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": database, "SECRET_KEY": "bench",
                      "JOBS_IMMEDIATE": True})
    min_group = max(2, int(app.config["SMALL_GROUP_MIN"]))
    now = utcnow()
    today = now.date()
    with app.app_context():
        db = get_db()
        with db.session(write=False) as session:
            if session.scalar(select(func.count()).select_from(User)):
                sys.exit("Please point --database-url at an empty database: the script seeds it.")
        print(f"database: {db.engine.dialect.name}; {args.members:,} members x {args.days} days, "
              f"one cohort; today {today} (UTC); small-group minimum {min_group}")
        print("machine: 2 cores, shared with other agents' test runs (figures are indicative)")
        started = time.perf_counter()
        seeded = _seed(args.members, args.days, now)
        print(f"seeded in {time.perf_counter() - started:.0f} s: " + ", ".join(
            f"{name} {count:,}" for name, count in seeded.rows.items()))

        _check_equal(seeded.cohort_id, today, min_group)
        print("figures equal (rollups vs raw rows, 7, 30 and 90 days): yes")
        print(_describe(_read(services.overview, cohort_id=seeded.cohort_id, days=30,
                              today=today, min_group=min_group)()))
        _rebuild_sample(seeded, args.sample, full=args.full_rebuild)

        print()
        print(f"{'window':<8}{'rollups p50':>13}{'p95':>9}{'raw rows p50':>14}"
              f"{'raw/rollups':>13}{'target':>22}")
        for days in services.WINDOWS:
            kwargs: dict[str, Any] = {"cohort_id": seeded.cohort_id, "days": days,
                                      "today": today, "min_group": min_group}
            fast = _timed(_read(services.overview, **kwargs), args.runs, warm_up=3)
            slow = _timed(_read(services.overview_from_raw, **kwargs), args.raw_runs, warm_up=1)
            p50, p95, raw = (statistics.median(fast), _percentile(fast, 0.95),
                             statistics.median(slow))
            met = "met" if p95 <= TARGET_MS and raw / p50 >= TARGET_RATIO else "MISSED"
            print(f"{days:>3} days{p50:>10.1f} ms{p95:>6.1f} ms{raw:>11.0f} ms{raw / p50:>12.0f}x"
                  f"   {met} (<=50 ms, >=10x)")

        with db.transaction() as session:
            coach = session.get(User, seeded.coach_id)
            assert coach is not None
            record, token = accounts.start_session(session, user=coach, device="benchmark",
                                                   now=utcnow())
            record.two_factor_at = utcnow()
            session.add(record)
        client = app.test_client()
        with client.session_transaction() as cookie:
            cookie[auth.SESSION_KEY] = token
        print()
        print(f"{'server time (test client)':<52}{'p50':>9}{'p95':>9}")
        for label, path in (
                ("GET /coach/cohorts/<id>?days=30 (page)", f"/coach/cohorts/{seeded.cohort_id}"
                 "?days=30"),
                ("GET /api/v1/coach/cohorts/<id>/overview?days=30",
                 f"/api/v1/coach/cohorts/{seeded.cohort_id}/overview?days=30")):
            def get(path: str = path) -> None:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
            samples = _timed(get, args.runs, warm_up=3)
            print(f"{label:<52}{statistics.median(samples):>6.1f} ms"
                  f"{_percentile(samples, 0.95):>6.1f} ms")

        rng = random.Random(11)
        step = max(1, len(seeded.member_ids) // SYNCED_MEMBERS)
        synced = seeded.member_ids[::step][:SYNCED_MEMBERS]
        sync_days = tuple(today - timedelta(days=n) for n in range(SYNCED_DAYS - 1, -1, -1))
        _sync_night(synced, sync_days, rng)  # settles milestones and streaks (untimed)
        samples, upkeep, synced_days = _sync_night(synced, sync_days, rng)
        whole, rollup = sum(samples), upkeep["seconds"] * 1000
        print()
        print(f"nightly sync: {len(synced)} members x {len(sync_days)} days of new steps ({synced_days} "
              f"days changed), one transaction each (store_steps -> goals recompute + coach "
              f"rollups)")
        print(f"{'':44}{'total s':>9}{'ms/member':>11}{'ms/synced day':>15}")
        print(f"{'whole store_steps transaction':<44}{whole / 1000:>9.1f}"
              f"{whole / len(synced):>11.1f}{whole / synced_days:>15.2f}")
        print(f"{'  of which rollups.refresh_member_days':<44}{rollup / 1000:>9.1f}"
              f"{rollup / len(synced):>11.1f}{rollup / synced_days:>15.2f}")
        print(f"rollup upkeep share of the sync transaction: {rollup / whole:.0%}; "
              f"refresh_member_days calls: {upkeep['calls']:.0f} "
              f"({upkeep['calls'] / len(synced):.1f} a sync, {upkeep['idle']:.0f} of them "
              f"changing nothing); transaction p50 "
              f"{statistics.median(samples):.1f} ms, p95 {_percentile(samples, 0.95):.1f} ms")
        _check_equal(seeded.cohort_id, today, min_group)
        print("figures equal after the sync (rollups vs raw rows): yes")


if __name__ == "__main__":
    main()
