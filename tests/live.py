"""Run the app under real gunicorn, and Chromium through Playwright, for the live tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.factories import AUTHENTICATOR

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_live_server(*, database_url: str, instance: Path, extra_env: dict[str, str] | None = None,
                      port: int | None = None) -> LiveServer:
    port = port or free_port()
    instance.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTEST", "TEST_DATABASE"))}
    env.update({
        "APP_ENV": "testing", "DATABASE_URL": database_url, "SECRET_KEY": "live-test-secret",
        "INSTANCE_PATH": str(instance), "JOBS_IMMEDIATE": "1", "PORT": str(port),
        "GUNICORN_THREADS": "40", "PUBLIC_URL": f"http://127.0.0.1:{port}",
    })
    env.update(extra_env or {})
    log_path = instance / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path,
                        env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited early:\n{server.log()}")
        try:
            if requests.get(f"{server.url}/healthz", timeout=5).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"gunicorn did not answer within 30 s:\n{server.log()}")


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError("Debian's chromium is missing: `make test` installs it (apt-get install "
                           "chromium).")
    return path


def api_sign_in(http: requests.Session, url: str, name: str, password: str) -> requests.Response:
    """Sign in through the JSON API as an app would; coaches and admins then pass the second
    factor through the API too (set up on first sign-in). Returns the password step's answer."""

    def csrf() -> dict[str, str]:
        return {"X-CSRFToken": http.get(f"{url}/api/v1/csrf-token", timeout=5).json()["csrf_token"]}

    response = http.post(f"{url}/api/v1/login", json={"display_name": name, "password": password},
                         headers=csrf(), timeout=10)
    step = response.json().get("next_step") if response.status_code == 200 else None
    if step == "two_factor_setup":
        setup = http.post(f"{url}/api/v1/two-factor/setup", headers=csrf(), timeout=10)
        assert setup.status_code == 200, setup.text
        AUTHENTICATOR.enrol(name, setup.json()["secret"])
        confirmed = http.post(f"{url}/api/v1/two-factor/setup/confirm", headers=csrf(),
                              json={"code": AUTHENTICATOR.code(name)}, timeout=10)
        assert confirmed.status_code == 201, confirmed.text
        AUTHENTICATOR.keep_recovery_codes(name, confirmed.json()["codes"])
    elif step == "two_factor":
        kind, code = AUTHENTICATOR.second_factor(name)
        path = "/api/v1/login/two-factor" + ("/recovery" if kind == "recovery" else "")
        passed = http.post(f"{url}{path}", json={"code": code}, headers=csrf(), timeout=10)
        assert passed.status_code == 200, passed.text
    return response
