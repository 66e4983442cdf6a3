"""`make run`'s serving script, as a newcomer uses it: migrations, demo data, worker, gunicorn."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.live import ROOT, free_port


@pytest.mark.live
def test_the_run_script_serves_the_demo_with_its_sign_ins(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "TEST_DATABASE_URL", "REDIS_URL", "SECRET_KEY",
                          "JOBS_IMMEDIATE", "APP_ENV")}
    env.update({"PORT": str(port), "INSTANCE_PATH": str(tmp_path)})
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
                health = requests.get(f"{url}/healthz", timeout=5)
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
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
