"""Server time of the foundation's pages (Flask test client, no network): p50 and p95 in ms.

    .venv/bin/python benchmarks/pages.py [--requests 300] [--database-url URL-OF-AN-EMPTY-DATABASE]

Figures only; not a test. Later issues add their own scripts beside this one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyotp
from sqlalchemy import func, select

from app import create_app, migrate
from app.accounts.models import User
from app.crypto import app_cipher
from app.db import get_db, utcnow
from app.demo import demo_authenticators, seed_demo


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hearten-bench-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    migrate.upgrade(url)
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": url, "SECRET_KEY": "bench",
                      "INSTANCE_PATH": str(workdir), "JOBS_IMMEDIATE": True,
                      "LOGIN_LIMIT_PER_IP": "10000 per minute"})
    with get_db(app).transaction() as session:
        if session.scalar(select(func.count()).select_from(User)):
            sys.exit("Please point --database-url at an empty database: the benchmark seeds it.")
        seed_demo(session, now=utcnow(), cipher=app_cipher(app))
        keys = dict(demo_authenticators(session, now=utcnow(), cipher=app_cipher(app)))

    def signed_in(name: str, password: str) -> Any:
        client = app.test_client()
        token = client.get("/api/v1/csrf-token").get_json()["csrf_token"]
        client.post("/login", data={"display_name": name, "password": password,
                                    "csrf_token": token})
        if name in keys:  # coaches and admins: then the code from their authenticator app
            token = client.get("/api/v1/csrf-token").get_json()["csrf_token"]
            client.post("/login/two-factor", data={"code": pyotp.TOTP(keys[name]).now(),
                                                   "csrf_token": token})
        return client

    anonymous = app.test_client()
    member = signed_in("Sunny River", "hearten-demo-member")
    coach = signed_in("Coach Rosa", "hearten-demo-coach")
    cases = [("GET /healthz", anonymous, "/healthz"), ("GET /login", anonymous, "/login"),
             ("GET /home (member)", member, "/home"), ("GET /api/v1/me", member, "/api/v1/me"),
             ("GET /coach (coach)", coach, "/coach"), ("GET /sw.js", anonymous, "/sw.js")]
    print(f"database: {get_db(app).engine.dialect.name}; {args.requests} requests per page")
    print(f"{'page':<22}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}")
    for label, client, path in cases:
        for _ in range(10):  # warm up
            client.get(path)
        samples = []
        for _ in range(args.requests):
            start = time.perf_counter()
            response = client.get(path)
            samples.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        print(f"{label:<22}{_percentile(samples, 0.5):>9.2f}{_percentile(samples, 0.95):>9.2f}"
              f"{statistics.fmean(samples):>9.2f}")


if __name__ == "__main__":
    main()
