"""Wearable sync figures, against the Google Health API stand-in over real loopback HTTP.

    .venv/bin/python benchmarks/wearables_sync.py [--members 100] [--latency-ms 20] [--workers 8]

1. Requests per member-year of backfill with our adapter (roll-ups for steps, one paginated
   sleep stream), beside a day-by-day poller on the same stand-in in the same run (one request
   per day per data type, the way older research platforms sync), and the ratio.
2. Time to backfill N members x 1 year with the stand-in adding a fixed latency to every
   request, using a pool of sync workers.

Figures only; not a test.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
from sqlalchemy import update

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The job queue file goes to a scratch folder (the queue picks its place when imported).
os.environ["INSTANCE_PATH"] = tempfile.mkdtemp(prefix="hearten-bench-")

from app import create_app, migrate
from app.accounts import services as accounts
from app.db import get_db, utcnow
from wearables import services
from wearables.models import Connection
from wearables.providers.base import Identity, TokenSet
from wearables.providers.google import GoogleHealthProvider
from wearables.standins import generator
from wearables.sync import sync_connection
from wearables.tasks import sync_context


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _data_calls(url: str) -> dict[str, int]:
    stats = requests.get(f"{url}/_standin/stats", timeout=5).json()["requests"]
    return {k: v for k, v in stats.items() if k not in ("authorize", "token", "revoke")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    # The stand-in runs in its own process, so that its work does not share our interpreter.
    port = _free_port()
    standin = subprocess.Popen(
        [sys.executable, "-m", "wearables.standins.google_health", "--port", str(port),
         "--quiet", "--rate-limit", "100000"], cwd=Path(__file__).resolve().parent.parent,
        env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(f"{url}/_standin/stats", timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.1)

    workdir = Path(os.environ["INSTANCE_PATH"])
    database = f"sqlite:///{workdir / 'bench.db'}"
    migrate.upgrade(database)
    app = create_app({
        "APP_ENV": "testing", "DATABASE_URL": database, "SECRET_KEY": "bench",
        # Jobs only queue here: the benchmark runs each sync itself, to time it.
        "INSTANCE_PATH": str(workdir), "JOBS_IMMEDIATE": False,
        "GOOGLE_CLIENT_ID": "hearten-demo", "GOOGLE_CLIENT_SECRET": "hearten-demo-secret",
        "GOOGLE_OAUTH_AUTHORIZE_URL": f"{url}/o/oauth2/v2/auth",
        "GOOGLE_OAUTH_TOKEN_URL": f"{url}/token", "GOOGLE_OAUTH_REVOKE_URL": f"{url}/revoke",
        "GOOGLE_HEALTH_API_BASE": url})

    connection_ids: list[int] = []
    print(f"setting up {args.members} members with a year of data each …", flush=True)
    with app.app_context():
        for index in range(args.members):
            grant: dict[str, Any] = requests.post(f"{url}/_standin/tokens", json={
                "login_hint": f"member-{index}"}, timeout=10).json()
            with get_db().transaction() as session:
                member = accounts.create_user(
                    session, display_name=f"Bench Member {index}",
                    password="bench password long enough",
                    timezone=generator.home_zone(0, int(grant["index"])))
                connection = services.connect(
                    session, member=member, provider="google",
                    tokens=TokenSet(access_token=grant["access_token"],
                                    refresh_token=grant.get("refresh_token"),
                                    expires_at=utcnow() + timedelta(hours=1)),
                    identity=Identity(grant["healthUserId"]), cipher=sync_context().cipher,
                    backfill_days=365, now=utcnow())
            connection_ids.append(connection.id or 0)

        # 1. Requests per member-year: ours, then a day-by-day poller, same stand-in, same run.
        requests.post(f"{url}/_standin/reset", timeout=5)
        outcome = sync_connection(sync_context(), connection_ids[0])
        ours = _data_calls(url)
        steps_ours = sum(v for k, v in ours.items() if k.startswith("steps."))
        sleep_ours = sum(v for k, v in ours.items() if k.startswith("sleep."))

        requests.post(f"{url}/_standin/reset", timeout=5)
        grant = requests.post(f"{url}/_standin/tokens", json={"login_hint": "member-0"},
                              timeout=10).json()
        poller = GoogleHealthProvider(client_id="hearten-demo", client_secret="hearten-demo-secret",
                                      authorize_url="", token_url=f"{url}/token",
                                      revoke_url="", api_base=url)
        assert outcome.status == "done", outcome
        today = utcnow().astimezone(ZoneInfo(generator.home_zone(0, 0))).date()
        for offset in range(365):
            day = today - timedelta(days=offset)
            poller.daily_steps(access_token=grant["access_token"], start=day,
                               end=day + timedelta(days=1))
            poller.sleep(access_token=grant["access_token"], start=day,
                         end=day + timedelta(days=1), tz=generator.home_zone(0, 0))
        naive = _data_calls(url)
        steps_naive = sum(v for k, v in naive.items() if k.startswith("steps."))
        sleep_naive = sum(v for k, v in naive.items() if k.startswith("sleep."))
        print()
        print("Requests per member-year of backfill (Google Health API stand-in)")
        print(f"{'':<28}{'steps':>8}{'sleep':>8}{'total':>8}")
        print(f"{'Hearten (roll-ups, stream)':<28}{steps_ours:>8}{sleep_ours:>8}"
              f"{steps_ours + sleep_ours:>8}")
        print(f"{'day-by-day poller':<28}{steps_naive:>8}{sleep_naive:>8}"
              f"{steps_naive + sleep_naive:>8}")
        ratio = (steps_naive + sleep_naive) / max(steps_ours + sleep_ours, 1)
        print(f"ratio: the poller makes {ratio:.1f}x as many requests "
              f"(targets: steps <= 5, sleep <= 16)")

        # 2. N members x 1 year, with latency on every request.
        with get_db().transaction() as session:  # member 0 was synced above: start it over
            session.execute(update(Connection).values(synced_through=None))
        requests.post(f"{url}/_standin/config", json={"latency_ms": args.latency_ms}, timeout=5)
        requests.post(f"{url}/_standin/reset", timeout=5)

        def run(connection_id: int) -> str:
            with app.app_context():
                return sync_connection(sync_context(), connection_id).status

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            statuses = list(pool.map(run, connection_ids))
        elapsed = time.perf_counter() - started
        calls = sum(_data_calls(url).values())
        print()
        print(f"Backfill of {args.members} members x 1 year, {args.latency_ms} ms added to "
              f"every request, {args.workers} workers, SQLite")
        print(f"  total time      {elapsed:8.1f} s")
        print(f"  per member      {elapsed / args.members * 1000:8.0f} ms (wall, with overlap)")
        print(f"  data requests   {calls:8d} ({calls / args.members:.1f} per member)")
        print(f"  outcomes        {dict((s, statuses.count(s)) for s in set(statuses))}")
    standin.terminate()


if __name__ == "__main__":
    main()
