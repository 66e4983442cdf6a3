"""`make run`'s serving script, as a newcomer uses it: migrations, demo data, worker, gunicorn."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.factories import AUTHENTICATOR
from tests.live import ROOT, api_sign_in, free_port
from tests.standins import consent


@pytest.mark.live
def test_the_run_script_serves_the_demo_with_its_sign_ins(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "TEST_DATABASE_URL", "REDIS_URL", "SECRET_KEY",
                          "JOBS_IMMEDIATE", "APP_ENV")}
    env.update({"PORT": str(port), "INSTANCE_PATH": str(tmp_path),
                "STANDIN_PORT": str(free_port())})
    for key in [k for k in env if k.startswith("GOOGLE_")]:
        del env[key]
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(["bash", "scripts/run.sh"], cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = requests.get(f"{url}/readyz", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.2)
        output = log_path.read_text()
        assert health is not None and health.status_code == 200, output
        jobs = health.json()["jobs"]
        assert jobs["mode"] == "SqliteHuey" and jobs["in_process_worker"] is True
        assert f"Hearten is running at {url}" in output
        assert "coach   Coach Rosa / hearten-demo-coach" in output
        assert "member  Sunny River / hearten-demo-member" in output
        assert (tmp_path / "hearten.db").exists() and (tmp_path / "secret_key").exists()

        http = requests.Session()
        token = http.get(f"{url}/api/v1/csrf-token", timeout=5).json()["csrf_token"]
        me = http.post(f"{url}/api/v1/login", json={"display_name": "Sunny River",
                                                     "password": "hearten-demo-member"},
                       headers={"X-CSRFToken": token}, timeout=10)
        assert me.status_code == 200 and me.json()["role"] == "member"
        # The demo coach's authenticator key is printed, and its codes finish her sign-in.
        key = re.search(r"^  Coach Rosa +([A-Z2-7]{32})$", output, re.MULTILINE)
        assert key, output
        AUTHENTICATOR.enrol("Coach Rosa", key.group(1))
        coach = requests.Session()
        login = api_sign_in(coach, url, "Coach Rosa", "hearten-demo-coach")
        assert login.json()["next_step"] == "two_factor"
        assert coach.get(f"{url}/api/v1/me", timeout=10).json()["role"] == "coach"

        # "Connect a tracker" works end to end against the stand-in, and the job worker in the
        # app process brings the past days in.
        token = http.get(f"{url}/api/v1/csrf-token", timeout=5).json()["csrf_token"]
        start = http.post(f"{url}/tracker/connect/google", data={"csrf_token": token},
                          allow_redirects=False, timeout=10)
        assert start.status_code == 302, start.text
        back = consent(start.headers["Location"])
        assert back.startswith(f"{url}/tracker/callback/google?")
        page = http.get(back, timeout=30)
        assert "Connected. Your past days are on their way" in page.text
        deadline = time.monotonic() + 60
        steps: list[object] = []
        while time.monotonic() < deadline and len(steps) < 20:
            days = http.get(f"{url}/api/v1/metrics?days=30", timeout=10).json()
            steps = [d for d in days if d["steps_source"] == "google"]
            time.sleep(0.5)
        assert len(steps) >= 20, "a month of synced steps arrived"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
