"""The production topology on one machine, on loopback: nginx in front of N gunicorn processes,
M job workers, PostgreSQL and Redis. `make run-cluster` serves it with demo data; the load and
fault benchmarks (benchmarks/cluster_load.py) and tests/app/test_cluster.py drive it.

    .venv/bin/python scripts/cluster.py run [--processes 2] [--workers 1] [--port 8080]
    .venv/bin/python scripts/cluster.py nginx-config --upstream 127.0.0.1:8001 \\
        --upstream 127.0.0.1:8002 --server-name hearten.example.org \\
        --certificate /etc/ssl/hearten.pem --certificate-key /etc/ssl/hearten.key

`run` uses `DATABASE_URL` (default: the local PostgreSQL, database `hearten_cluster`, created
when missing) and `REDIS_URL` (default: the local Redis, database 1). nginx is Debian's, run as a
child with its own prefix folder; nothing is written outside `--workdir`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TEMPLATE = ROOT / "deploy" / "nginx" / "hearten.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def render_nginx(*, upstreams: list[str], listen: str, server_name: str = "_", tls: str = "",
                 access_log: str = "/var/log/nginx/hearten.access.log", name: str = "site",
                 max_body: str = "600m") -> str:
    """The site configuration from deploy/nginx/hearten.conf.template."""
    servers = "\n".join(f"    server {address} max_fails=1 fail_timeout=3s;"
                        for address in upstreams)
    text = TEMPLATE.read_text(encoding="utf-8")
    for key, value in {"upstream_servers": servers, "listen": listen,
                       "server_name": server_name, "tls": tls, "access_log": access_log,
                       "name": name, "max_body": max_body}.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def production_tls(certificate: str, key: str) -> str:
    return (f"    ssl_certificate {certificate};\n    ssl_certificate_key {key};\n"
            "    ssl_protocols TLSv1.2 TLSv1.3;\n")


@dataclass
class Child:
    """A process of the topology, with its log file."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """Ask it to stop (gunicorn: SIGTERM, graceful; Huey: SIGINT, graceful); kill it after
        `timeout` seconds. Returns its exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class RedisServer:
    """A private redis-server for fault tests (restarted mid-load), with an append-only file so
    that a restart keeps the queued jobs, as a production job queue's Redis should."""

    workdir: Path
    port: int = field(default_factory=free_port)
    child: Child | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.child = Child("redis", [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port),
                                     "--dir", str(self.workdir), "--save", "",
                                     "--appendonly", "yes", "--appendfsync", "everysec"],
                           dict(os.environ), self.workdir / "redis.log")
        self.child.start()
        wait_for(lambda: _redis_answers(self.url), f"redis on port {self.port}", 10)

    def restart(self, down_seconds: float = 1.0) -> None:
        """SHUTDOWN (it writes its append-only file), stay down a moment, start again."""
        with contextlib.suppress(redis.ConnectionError):  # it hangs up as it goes
            redis.Redis.from_url(self.url).shutdown()
        if self.child is not None and self.child.process is not None:
            self.child.process.wait(timeout=10)
        time.sleep(down_seconds)
        self.start()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait_for(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` when it is missing."""
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        conn.execute(f'CREATE DATABASE "{name}"')  # a name from our own configuration


def drop_database(url: str) -> None:
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Cluster:
    """nginx + `processes` gunicorn processes + `workers` Huey consumers, on loopback."""

    workdir: Path
    database_url: str
    redis_url: str
    processes: int = 2
    workers: int = 1
    port: int = field(default_factory=free_port)
    threads: int = 200
    extra_env: dict[str, str] = field(default_factory=dict)
    apps: list[Child] = field(default_factory=list)
    job_workers: list[Child] = field(default_factory=list)
    nginx: Child | None = None
    app_ports: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **more: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("PYTEST", "TEST_DATABASE", "JOBS_"))}
        instance = self.workdir / "instance"
        env.update({"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
                    "INSTANCE_PATH": str(instance), "FLASK_APP": "wsgi.py",
                    "GUNICORN_THREADS": str(self.threads), "TRUST_PROXY_HOPS": "1",
                    "PUBLIC_URL": self.url, "LOG_FORMAT": "json"})
        env.setdefault("APP_ENV", "development")
        env.update(self.extra_env)
        env.update(more)
        return env

    def flask(self, *args: str) -> None:
        """A `flask` command with the cluster's settings (migrations, demo data)."""
        subprocess.run([str(BIN / "flask"), *args], cwd=ROOT, env=self.env(), check=True)

    def start(self) -> None:
        """Start everything, or, when a part fails to start, stop what did and raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "instance").mkdir(exist_ok=True)
        self.app_ports = [free_port() for _ in range(self.processes)]
        self.apps = [self._app(n, port) for n, port in enumerate(self.app_ports)]
        for app in self.apps:
            app.start()
        for n in range(self.workers):
            self.start_worker(n)
        for app, port in zip(self.apps, self.app_ports, strict=True):
            self._wait_app(app, port)
        self._start_nginx()

    def _app(self, n: int, port: int) -> Child:
        command = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]
        return Child(f"app{n}", command, self.env(PORT=str(port)),
                     self.workdir / f"app{n}.log")

    def _wait_app(self, app: Child, port: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not app.alive():
                raise RuntimeError(f"{app.name} exited early:\n{app.log()[-4000:]}")
            if _answers(f"http://127.0.0.1:{port}/readyz"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{app.name} was not ready within 60 s:\n{app.log()[-4000:]}")

    def start_worker(self, n: int, *, metrics_port: int | None = None) -> Child:
        command = [str(BIN / "huey_consumer"), "app.worker.huey", "--worker-type", "thread",
                   "--workers", "4"]
        env = self.env(WORKER_METRICS_PORT=str(metrics_port or free_port()))
        worker = Child(f"worker{n}", command, env, self.workdir / f"worker{n}.log")
        worker.start()
        if n < len(self.job_workers):
            self.job_workers[n] = worker
        else:
            self.job_workers.append(worker)
        return worker

    def restart_app(self, n: int) -> None:
        """Start process `n` again on its port (after a crash), and wait until it is ready."""
        self.apps[n].stop(signal.SIGKILL, timeout=5)
        self.apps[n] = self._app(n, self.app_ports[n])
        self.apps[n].start()
        self._wait_app(self.apps[n], self.app_ports[n])

    def _start_nginx(self) -> None:
        prefix = self.workdir / "nginx"
        temp = prefix / "temp"
        temp.mkdir(parents=True, exist_ok=True)
        os.chmod(temp, 0o777)  # noqa: S103  (nginx's workers drop root; only loopback test data)
        site = render_nginx(upstreams=[f"127.0.0.1:{port}" for port in self.app_ports],
                            listen=f"    listen 127.0.0.1:{self.port};",
                            access_log=str(prefix / "access.log"), name="cluster")
        (prefix / "hearten.conf").write_text(site, encoding="utf-8")
        user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
        main = (f"{user}worker_processes 1;\nworker_rlimit_nofile 20000;\n"
                f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n"
                "events { worker_connections 16000; }\n"
                "http {\n"
                + "".join(f"    {kind}_temp_path {temp}/{kind};\n"
                          for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
                + f"    include {prefix}/hearten.conf;\n}}\n")
        (prefix / "nginx.conf").write_text(main, encoding="utf-8")
        check = subprocess.run([NGINX, "-t", "-q", "-p", str(prefix), "-c",
                                str(prefix / "nginx.conf")], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx refused the configuration:\n{check.stderr}")
        self.nginx = Child("nginx", [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                                     "-g", "daemon off;"], dict(os.environ),
                           self.workdir / "nginx.log")
        self.nginx.start()
        wait_for(lambda: _answers(f"{self.url}/healthz"), "nginx", 15)

    def stop(self) -> None:
        """Stop gracefully: nginx first, then the app processes (SIGTERM lets requests finish),
        then the job workers (SIGINT lets the running jobs finish)."""
        if self.nginx is not None:
            self.nginx.stop(signal.SIGQUIT, timeout=10)
        for app in self.apps:
            app.stop(signal.SIGTERM)
        for worker in self.job_workers:
            worker.stop(signal.SIGINT)


@contextmanager
def running(cluster: Cluster) -> Iterator[Cluster]:
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _run(args: argparse.Namespace) -> None:
    database_url = os.environ.get("DATABASE_URL",
                                  "postgresql://postgres@127.0.0.1:5432/hearten_cluster")
    if database_url.startswith("postgresql"):
        ensure_database(database_url)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="hearten-cluster-"))
    cluster = Cluster(workdir=workdir, database_url=database_url,
                      redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/1"),
                      processes=args.processes, workers=args.workers, port=args.port,
                      threads=args.threads)
    standin = None
    if cluster.env().get("APP_ENV") != "production" and not os.environ.get("GOOGLE_CLIENT_ID"):
        # As `make run` does: a local stand-in plays Google, so "Connect" works offline.
        standin_url = f"http://127.0.0.1:{os.environ.get('STANDIN_PORT', '8601')}"
        standin = Child("google-standin", [str(BIN / "python"), "-m",
                                           "wearables.standins.google_health", "--port",
                                           standin_url.rsplit(":", 1)[1], "--quiet"],
                        dict(os.environ), workdir / "google-standin.log")
        workdir.mkdir(parents=True, exist_ok=True)
        standin.start()
        cluster.extra_env.update({
            "GOOGLE_CLIENT_ID": "hearten-demo", "GOOGLE_CLIENT_SECRET": "hearten-demo-secret",
            "GOOGLE_OAUTH_AUTHORIZE_URL": f"{standin_url}/o/oauth2/v2/auth",
            "GOOGLE_OAUTH_TOKEN_URL": f"{standin_url}/token",
            "GOOGLE_OAUTH_REVOKE_URL": f"{standin_url}/revoke",
            "GOOGLE_HEALTH_API_BASE": standin_url, "OAUTHLIB_INSECURE_TRANSPORT": "1"})
    cluster.flask("db", "upgrade")
    if cluster.env().get("APP_ENV") != "production":
        cluster.flask("demo", "seed")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with running(cluster):
        print(f"\nHearten runs behind nginx at {cluster.url}  (Ctrl-C to stop)")
        for n, port in enumerate(cluster.app_ports):
            print(f"  app process {n}: http://127.0.0.1:{port}  (metrics: /metrics)")
        for worker in cluster.job_workers:
            print(f"  job worker: metrics at http://127.0.0.1:{worker.env['WORKER_METRICS_PORT']}")
        print(f"  logs: {workdir}\n")
        while not stop:
            time.sleep(0.5)
            for child in [*cluster.apps, *cluster.job_workers]:
                if not child.alive():
                    print(f"{child.name} stopped; see {child.log_path}", file=sys.stderr)
                    stop = True
    if standin is not None:
        standin.stop()
    print("Stopped.")


def _nginx_config(args: argparse.Namespace) -> None:
    tls = production_tls(args.certificate, args.certificate_key) if args.certificate else ""
    listen = ("    listen 443 ssl http2;\n    listen [::]:443 ssl http2;" if tls
              else f"    listen {args.listen};")
    site = render_nginx(upstreams=args.upstream, listen=listen, server_name=args.server_name,
                        tls=tls)
    if tls:  # plain http only ever redirects
        site += ("\nserver {\n    listen 80;\n    listen [::]:80;\n"
                 f"    server_name {args.server_name};\n"
                 "    return 301 https://$host$request_uri;\n}\n")
    sys.stdout.write(site)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="serve the topology on loopback")
    run.add_argument("--processes", type=int, default=2)
    run.add_argument("--workers", type=int, default=1)
    run.add_argument("--port", type=int, default=int(os.environ.get("CLUSTER_PORT", "8080")))
    run.add_argument("--threads", type=int, default=200)
    run.add_argument("--workdir", default=os.environ.get("CLUSTER_DIR"))
    config = commands.add_parser("nginx-config", help="print the nginx site for production")
    config.add_argument("--upstream", action="append", required=True)
    config.add_argument("--server-name", default="_")
    config.add_argument("--listen", default="80")
    config.add_argument("--certificate")
    config.add_argument("--certificate-key")
    args = parser.parse_args()
    if args.command == "run":
        _run(args)
    else:
        _nginx_config(args)


if __name__ == "__main__":
    main()
