"""Goal progress after a nightly sync: only what changed, beside a full recomputation.

    .venv/bin/python benchmarks/goals_recompute.py [--members 10000] [--days 60]
                                                   [--database-url postgresql://...]

Each member has four goals (steps a day, active days a week, hours of sleep, a daily habit) and
`--days` days of steps and sleep. Then:

1. full rebuild: every goal recomputed from its first day (what a naive design does nightly);
   this also builds the starting state.
2. a nightly sync changes 3 days of steps for every member; the incremental path recomputes only
   those days of only the goals that read steps (each member in its own transaction, as the sync
   jobs do), and recounts their streaks.
3. the full rebuild again, on the same data: its time is the baseline, and the number of days it
   finds to change must be 0, which shows the incremental path left nothing out.

Prints the times, the ratio, and the share of goals and goal-days touched. Figures only; not a test.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, update
from sqlmodel import col, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["INSTANCE_PATH"] = tempfile.mkdtemp(prefix="hearten-bench-")

from app import create_app, migrate
from app.accounts.models import User
from app.db import get_db
from goals import services
from goals.models import Goal, GoalDay, GoalKind
from wearables.models import DailySteps, SleepNight

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
ZONES = ("America/New_York", "Europe/Madrid", "America/Los_Angeles", "Asia/Kolkata")


def _seed(database_url: str, members: int, days: int) -> None:
    """Members, their goals and daily data, written in bulk (not part of any figure)."""
    engine = get_db().engine
    rng = random.Random(7)
    today = NOW.date()
    start = today - timedelta(days=days)
    with engine.begin() as conn:
        conn.execute(insert(User), [
            {"display_name": f"Member {i}", "name_key": f"member {i}", "password_hash": "x",
             "role": "member", "timezone": ZONES[i % len(ZONES)], "language": "en",
             "created_at": NOW, "password_changed_at": NOW} for i in range(members)])
        ids = [row[0] for row in conn.execute(select(col(User.id)).order_by(col(User.id)))]
        goals = []
        for member_id in ids:
            for kind, target, per_week in ((GoalKind.STEPS, 5000, 7),
                                           (GoalKind.ACTIVE_DAYS, 7000, 3),
                                           (GoalKind.SLEEP, 420, 7), (GoalKind.HABIT, 0, 7)):
                goals.append({"member_id": member_id, "kind": kind, "target": target,
                              "per_week": per_week, "window_minutes": 0, "visibility": "private",
                              "status": "active", "title": "Went outside"
                              if kind == GoalKind.HABIT else "", "starts_on": start,
                              "current_streak": 0, "best_streak": 0, "created_at": NOW,
                              "updated_at": NOW})
        conn.execute(insert(Goal), goals)
        for first in range(0, len(ids), 500):
            steps, nights = [], []
            for member_id in ids[first:first + 500]:
                for offset in range(days):
                    day = start + timedelta(days=offset)
                    if rng.random() < 0.9:
                        steps.append({"member_id": member_id, "day": day, "source": "google",
                                      "steps": rng.randint(1500, 12000), "updated_at": NOW})
                    if rng.random() < 0.9:
                        asleep = rng.randint(300, 540)
                        bed = datetime.combine(day, datetime.min.time(), UTC) - timedelta(
                            minutes=rng.randint(0, 120) + 60)
                        nights.append({"member_id": member_id, "night": day, "source": "google",
                                       "bedtime": bed, "wake_time": bed + timedelta(
                                           minutes=asleep + 20), "bed_offset_minutes": 0,
                                       "minutes_asleep": asleep, "minutes_in_bed": asleep + 20,
                                       "nap_minutes": 0, "updated_at": NOW})
            conn.execute(insert(DailySteps), steps)
            conn.execute(insert(SleepNight), nights)


def _full_rebuild() -> tuple[float, int]:
    """Every open goal recomputed from its first day, one member per transaction."""
    db = get_db()
    with db.session(write=False) as session:
        members = list(session.exec(select(User).order_by(col(User.id))))
    changed = 0
    started = time.perf_counter()
    for member in members:
        with db.transaction() as session:
            for goal in session.exec(select(Goal).where(col(Goal.member_id) == member.id)):
                changed += services.rebuild_goal(session, member=member, goal=goal, now=NOW)
    return time.perf_counter() - started, changed


def _nightly_sync(days: int) -> list[tuple[int, tuple]]:
    """New values for 3 recent days of steps per member, written without events (the sync itself
    is not what is measured); returns each member's changed days."""
    db = get_db()
    rng = random.Random(11)
    today = NOW.date()
    changed_days = tuple(today - timedelta(days=offset) for offset in (3, 2, 1))
    with db.engine.begin() as conn:
        ids = [row[0] for row in conn.execute(select(col(User.id)).order_by(col(User.id)))]
        for member_id in ids:
            for day in changed_days:
                conn.execute(update(DailySteps).where(
                    col(DailySteps.member_id) == member_id, col(DailySteps.day) == day)
                    .values(steps=rng.randint(1500, 12000)))
    return [(member_id, changed_days) for member_id in ids]


def _incremental(changes: list[tuple[int, tuple]]) -> tuple[float, int]:
    """What the StepsSynced handler does, member by member, each in its own transaction."""
    db = get_db()
    touched = 0
    started = time.perf_counter()
    for member_id, days in changes:
        with db.transaction() as session:
            touched += len(services.recompute_days(session, member_id=member_id, metric="steps",
                                                   days=days, now=NOW))
    return time.perf_counter() - started, touched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    database = args.database_url or f"sqlite:///{os.environ['INSTANCE_PATH']}/bench.db"
    migrate.upgrade(database)
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": database, "SECRET_KEY": "bench",
                      "JOBS_IMMEDIATE": True})
    with app.app_context():
        print(f"database: {get_db().engine.dialect.name}; {args.members} members x 4 goals, "
              f"{args.days} days of steps and sleep each")
        started = time.perf_counter()
        _seed(database, args.members, args.days)
        print(f"seeded in {time.perf_counter() - started:.1f} s")
        build_time, built = _full_rebuild()
        print(f"first full build: {build_time:.1f} s ({built} goal-days written)")
        with get_db().session(write=False) as session:
            goals_total = session.exec(select(func.count()).select_from(Goal)).one()
            days_total = session.exec(select(func.count()).select_from(GoalDay)).one()
        changes = _nightly_sync(args.days)
        incremental_time, touched = _incremental(changes)
        baseline_time, missed = _full_rebuild()
        print()
        print(f"{'':34}{'time (s)':>10}{'goals touched':>16}{'per member (ms)':>17}")
        print(f"{'incremental (3 changed days)':34}{incremental_time:>10.1f}"
              f"{touched:>9} / {goals_total:<6}"
              f"{incremental_time * 1000 / args.members:>15.2f}")
        print(f"{'full recomputation (baseline)':34}{baseline_time:>10.1f}"
              f"{goals_total:>9} / {goals_total:<6}"
              f"{baseline_time * 1000 / args.members:>15.2f}")
        print()
        print(f"share of goals touched: {touched / goals_total:.0%} (the steps and active-days "
              f"goals of members whose days changed; sleep and habit goals untouched)")
        print(f"goal-days re-read: incremental {touched * 3} vs full {days_total}")
        print(f"speed-up: {baseline_time / incremental_time:.1f}x")
        print(f"days the full recomputation still found to change: {missed} (0 = the "
              f"incremental path was exact)")


if __name__ == "__main__":
    main()
