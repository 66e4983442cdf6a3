"""Server time of the feed's first page for a member of a cohort holding 100,000 items (Flask test
client, no network): p50 and p95 in ms, and where the time goes, query by query.

    .venv/bin/python benchmarks/feed_page.py [--items 100000] [--requests 200]
                                             [--database-url URL-OF-AN-EMPTY-DATABASE]

The items are bulk-inserted (stories, tips, shared goals, progress and milestones from 40
members, a few held or removed, about 1.5 cheers an item), with their sequence events. Target:
p95 <= 30 ms for GET /feed (20 items). Figures only; not a test.
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
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from app import create_app, migrate
from app.accounts import services as accounts
from app.accounts.models import CohortMembership, CohortRole, Role, User
from app.db import get_db, utcnow
from feed.models import (
    Cheer,
    CheerKind,
    EventKind,
    FeedCounter,
    FeedEvent,
    FeedItem,
    ItemKind,
    ItemStatus,
)
from goals.models import Goal, GoalKind, Milestone, MilestoneKind, Visibility

PASSWORD = "a quiet walk by the sea"  # noqa: S105  (the benchmark's own accounts)
AUTHORS = 40
TARGET_P95_MS = 30.0


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def seed(app: Flask, *, items: int, rng: random.Random) -> int:
    """A cohort with a coach, AUTHORS members (one shared password hash) and `items` items;
    returns the cohort's id. The reader is "Sunny River"."""
    now = utcnow()
    with get_db(app).transaction() as session:
        coach = accounts.create_user(session, display_name="Coach Rosa", password=PASSWORD,
                                     role=Role.COACH)
        cohort = accounts.create_cohort(session, coach=coach, name="Morning Walkers")
        reader = accounts.create_user(session, display_name="Sunny River", password=PASSWORD)
        session.add(CohortMembership(cohort_id=cohort.id or 0, user_id=reader.id or 0,
                                     role=CohortRole.MEMBER))
        cohort_id, shared_hash = cohort.id or 0, reader.password_hash
        session.execute(insert(User), [
            {"display_name": f"Walker {n}", "name_key": f"walker {n}",
             "password_hash": shared_hash, "role": Role.MEMBER, "timezone": "UTC",
             "language": "en", "created_at": now, "password_changed_at": now}
            for n in range(AUTHORS)])
        authors = list(session.scalars(select(col(User.id)).where(col(User.name_key).like("walker %"))))
        authors.append(reader.id or 0)
        session.execute(insert(CohortMembership), [
            {"cohort_id": cohort_id, "user_id": a, "role": CohortRole.MEMBER, "joined_at": now}
            for a in authors if a != reader.id])
        # Each author: a steps goal shared with the group, and one kept to the coach (whose
        # items members must not see), each with a milestone.
        session.execute(insert(Goal), [
            {"member_id": a, "kind": GoalKind.STEPS, "target": 6000, "per_week": 7,
             "window_minutes": 0, "title": "", "visibility": visibility, "status": "active",
             "starts_on": date(2025, 1, 1), "current_streak": 0, "best_streak": 0,
             "created_at": now, "updated_at": now}
            for a in authors for visibility in (Visibility.PEERS, Visibility.COACH)])
        goals = [(goal_id, member_id) for goal_id, member_id in session.execute(
            select(col(Goal.id), col(Goal.member_id)))]
        session.execute(insert(Milestone), [
            {"goal_id": g, "member_id": m, "kind": MilestoneKind.FIRST_MET, "key": "first",
             "reached_on": date(2025, 2, 1), "streak": 1, "created_at": now}
            for g, m in goals])
        milestones = {goal_id: milestone_id for goal_id, milestone_id in session.execute(
            select(col(Milestone.goal_id), col(Milestone.id)))}

        rows: list[dict[str, Any]] = []
        start = now - timedelta(days=3 * 365)
        for n in range(items):
            goal_id, author = rng.choice(goals)
            roll = rng.random()
            kind = (ItemKind.STORY if roll < 0.55 else ItemKind.TIP if roll < 0.65 else
                    ItemKind.PROGRESS if roll < 0.88 else ItemKind.MILESTONE if roll < 0.97
                    else ItemKind.GOAL_SHARED)
            written = kind in (ItemKind.STORY, ItemKind.TIP)
            status = (ItemStatus.VISIBLE if rng.random() < 0.98 else
                      rng.choice([ItemStatus.HELD, ItemStatus.HIDDEN, ItemStatus.REMOVED]))
            rows.append({
                "cohort_id": cohort_id, "author_id": author, "kind": kind,
                "body": f"Day {n}: a short walk, a glass of water and an early night."
                if written else "",
                "goal_id": None if written else goal_id,
                "milestone_id": milestones[goal_id] if kind == ItemKind.MILESTONE else None,
                "day": (start + timedelta(minutes=15 * n)).date()
                if kind == ItemKind.PROGRESS else None,
                "value": rng.randint(2000, 12000) if kind == ItemKind.PROGRESS else None,
                "status": status, "cheer_count": 0, "comment_count": 0,
                "pinned_at": now if kind == ItemKind.TIP and rng.random() < 0.001 else None,
                "created_at": start + timedelta(minutes=15 * n)})
        for chunk in range(0, len(rows), 10_000):
            session.execute(insert(FeedItem), rows[chunk:chunk + 10_000])
        item_ids = list(session.scalars(select(col(FeedItem.id)).where(
            col(FeedItem.cohort_id) == cohort_id).order_by(col(FeedItem.id))))

        cheers: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for item_id in item_ids:
            events.append({"cohort_id": cohort_id, "seq": len(events) + 1,
                           "kind": EventKind.ITEM, "item_id": item_id, "created_at": now})
            for cheer in rng.sample(list(CheerKind), rng.choice([0, 0, 1, 2, 3])):
                cheers.append({"item_id": item_id, "member_id": rng.choice(authors),
                               "kind": cheer, "created_at": now})
                events.append({"cohort_id": cohort_id, "seq": len(events) + 1,
                               "kind": EventKind.CHEER, "item_id": item_id, "created_at": now})
        # One member cheers an item at most once per kind.
        unique = {(c["item_id"], c["member_id"], c["kind"]): c for c in cheers}
        for chunk in range(0, len(unique), 20_000):
            session.execute(insert(Cheer), list(unique.values())[chunk:chunk + 20_000])
        for chunk in range(0, len(events), 20_000):
            session.execute(insert(FeedEvent), events[chunk:chunk + 20_000])
        session.add(FeedCounter(cohort_id=cohort_id, last_seq=len(events)))
        session.flush()
        session.execute(update(FeedItem).values(cheer_count=select(func.count()).where(
            col(Cheer.item_id) == col(FeedItem.id)).scalar_subquery()))
    return cohort_id


@contextmanager
def query_times(engine: Engine) -> Iterator[dict[str, list[float]]]:
    """Time spent in each SQL statement (by its text) while the block runs."""
    spent: dict[str, list[float]] = defaultdict(list)

    def before(conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any,
               _many: bool) -> None:
        context._bench_start = time.perf_counter()

    def after(conn: Any, _cursor: Any, statement: str, _params: Any, context: Any,
              _many: bool) -> None:
        spent[statement].append((time.perf_counter() - context._bench_start) * 1000)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield spent
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def timed(client: FlaskClient, path: str, requests: int) -> list[float]:
    for _ in range(10):  # warm up
        client.get(path)
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return samples


def breakdown(app: Flask, fetch: Callable[[], object], runs: int = 20) -> None:
    """Where a request's time goes: each statement's mean time per request, slowest first."""
    with query_times(get_db(app).engine) as spent:
        start = time.perf_counter()
        for _ in range(runs):
            fetch()
        total = (time.perf_counter() - start) * 1000 / runs
    in_sql = sum(sum(times) for times in spent.values()) / runs
    print(f"  per request: {total:.2f} ms, of which SQL {in_sql:.2f} ms in "
          f"{sum(len(t) for t in spent.values()) // runs} statements; slowest:")
    for statement, times in sorted(spent.items(), key=lambda kv: -sum(kv[1]))[:5]:
        words = " ".join(statement.split())
        if " FROM " in words:  # the selected columns say little; where it reads from says more
            words = words[:words.index(" ")] + " …" + words[words.index(" FROM "):]
        if len(words) > 400:  # its start and its end (where the ORDER BY is)
            words = f"{words[:240]} … {words[-150:]}"
        print(f"  {sum(times) / runs:>8.2f} ms  {words}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hearten-bench-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    migrate.upgrade(url)
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": url, "SECRET_KEY": "bench",
                      "INSTANCE_PATH": str(workdir), "JOBS_IMMEDIATE": True,
                      "LOGIN_LIMIT_PER_IP": "10000 per minute"})
    with get_db(app).session(write=False) as session:
        if session.scalar(select(func.count()).select_from(User)):
            sys.exit("Please point --database-url at an empty database: the benchmark seeds it.")
    print(f"seeding a cohort with {args.items:,} items …", flush=True)
    started = time.perf_counter()
    cohort_id = seed(app, items=args.items, rng=random.Random(args.seed))
    with get_db(app).session(write=False) as session:
        stored = session.scalar(select(func.count()).select_from(FeedItem))
        cheered = session.scalar(select(func.count()).select_from(Cheer))
    print(f"seeded {stored:,} items and {cheered:,} cheers in "
          f"{time.perf_counter() - started:.1f} s")

    client = app.test_client()
    token = client.get("/api/v1/csrf-token").get_json()["csrf_token"]
    signed_in = client.post("/login", data={"display_name": "Sunny River", "password": PASSWORD,
                                            "csrf_token": token})
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)
    page = client.get("/api/v1/feed").get_json()
    assert len(page["items"]) == 20, page

    newest = page["items"][0]["id"]
    cases = [("GET /feed", f"/feed?cohort={cohort_id}"),
             # The same 20 items without "tips that worked" (a page scrolled back shows none).
             ("  same, without tips", f"/feed?cohort={cohort_id}&before={newest + 1}"),
             ("GET /api/v1/feed", "/api/v1/feed"),
             ("GET /api/v1/feed/tips", "/api/v1/feed/tips"),
             ("GET /api/v1/feed?after=…", f"/api/v1/feed?after={page['last_seq'] - 50}")]
    print(f"\ndatabase: {get_db(app).engine.dialect.name}; {args.items:,} items in the cohort; "
          f"{args.requests} requests each; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    print(f"{'request':<28}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}")
    results = {}
    for label, path in cases:
        samples = timed(client, path, args.requests)
        results[label] = _percentile(samples, 0.95)
        print(f"{label:<28}{_percentile(samples, 0.5):>9.2f}{_percentile(samples, 0.95):>9.2f}"
              f"{statistics.fmean(samples):>9.2f}")
    verdict = "met" if results["GET /feed"] <= TARGET_P95_MS else "MISSED"
    print(f"target: GET /feed p95 <= {TARGET_P95_MS:.0f} ms: {verdict}")
    print("\nwhere GET /feed spends its time:")
    breakdown(app, lambda: client.get(f"/feed?cohort={cohort_id}"))


if __name__ == "__main__":
    main()
