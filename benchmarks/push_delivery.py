"""Push delivery figures, against the local push-service stand-in over real loopback HTTP.

    .venv/bin/python benchmarks/push_delivery.py [--messages 2000] [--latency-ms 20]
        [--concurrency 32] [--naive-messages 200]

1. Notifications per second from the outbox to a push endpoint that answers after 20 ms (each
   one claimed, encrypted, signed, posted, decrypted and checked by the stand-in, and marked sent),
   with our sender: one pooled `requests.Session`, PUSH_CONCURRENCY requests at once, a VAPID
   token cached per origin. None may be lost: pushes the stand-in accepted == deliveries marked
   sent == messages queued.
2. The same engine with a naive sender in the same run: one request at a time, a new connection
   and a new JWT for each.
3. CPU time per message (time.process_time, this process only): the whole pooled run divided by
   the messages, and building one request (encrypt + headers) with the token cached vs signed anew.

Loopback only; the stand-in runs in its own process (gunicorn, connections kept alive as push
services keep them). Figures only; not a test.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import jwt
import requests
from sqlalchemy import func
from sqlmodel import col, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The job queue file goes to a scratch folder (the queue picks its place when imported).
os.environ["INSTANCE_PATH"] = tempfile.mkdtemp(prefix="hearten-bench-")

from app import create_app, migrate
from app.accounts import services as accounts
from app.db import get_db, utcnow
from notify import push
from notify.delivery import deliver_due
from notify.models import Delivery, DeliveryStatus, Kind, Notification, NotificationState, PushSubscription
from notify.push import PushResult, PushSender, PushTarget, topic_for
from notify.texts import PushMessage

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NaiveSender:
    """One request at a time, a new connection (no session) and a new JWT for every message."""

    def __init__(self, real: PushSender) -> None:
        self.real = real

    def send_all(self, targets: Sequence[PushTarget]) -> list[PushResult]:
        results = []
        for target in targets:
            message = target.message
            body = self.real.encrypt(message.payload(), p256dh=target.p256dh, auth=target.auth)
            token = jwt.encode({"aud": push.origin_of(target.endpoint),
                                "exp": int(time.time()) + 12 * 3600,
                                "sub": self.real.vapid.subject},
                               self.real.vapid.private_key, algorithm="ES256")
            headers = {"TTL": str(message.ttl), "Urgency": message.urgency,
                       "Topic": topic_for(message.tag), "Content-Encoding": "aes128gcm",
                       "Authorization": f"vapid t={token}, k={self.real.vapid.public_key}"}
            try:
                response = requests.post(target.endpoint, data=body, headers=headers, timeout=10)
            except requests.RequestException:
                results.append(PushResult(None, "connection"))
                continue
            results.append(PushResult(response.status_code))
        return results


def _queue(app: object, member_id: int, devices: list[int], count: int, label: str) -> None:
    db = get_db(app)  # type: ignore[arg-type]
    now = utcnow()
    with db.transaction() as session:
        notifications = [Notification(user_id=member_id, kind=Kind.CHEERS, topic=f"{label}-{n}",
                                      data={"name": "Quiet Oak", "cheer": "👏"}, url="/feed",
                                      state=NotificationState.QUEUED, send_after=now,
                                      expires_at=now + timedelta(hours=12))
                         for n in range(count)]
        session.add_all(notifications)
        session.flush()
        session.add_all([Delivery(notification_id=n.id or 0, subscription_id=devices[i % len(devices)],
                                  key=f"{label}-{n.id}", next_attempt_at=now)
                         for i, n in enumerate(notifications)])


def _drain(app: object, sender: object, *, limit: int) -> tuple[float, float, int]:
    """Deliver until nothing is due: (seconds, CPU seconds, deliveries sent)."""
    db = get_db(app)  # type: ignore[arg-type]
    sent = 0
    started, cpu = time.perf_counter(), time.process_time()
    with app.app_context():  # type: ignore[attr-defined]
        for _ in range(1000):  # bounded
            report = deliver_due(db, sender, now=utcnow(), limit=limit)  # type: ignore[arg-type]
            sent += report.sent
            if report.claimed == 0:
                break
    return time.perf_counter() - started, time.process_time() - cpu, sent


def _accepted(url: str) -> int:
    stats = requests.get(f"{url}/_standin/stats", timeout=5).json()
    return int(stats["answered"].get("201", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--naive-messages", type=int, default=200)
    parser.add_argument("--devices", type=int, default=200)
    args = parser.parse_args()

    # The stand-in runs in its own process under gunicorn's threaded worker, which keeps
    # connections alive as push services do (werkzeug's development server closes every one).
    port = _free_port()
    standin = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-w", "1", "-k", "gthread",
         "--threads", str(2 * args.concurrency), "--keep-alive", "30", "-b", f"127.0.0.1:{port}",
         "--log-level", "warning",
         f"notify.standins.push_service:create_push_standin(latency={args.latency_ms / 1000})"],
        cwd=tempfile.mkdtemp(prefix="hearten-bench-standin-"),  # not the app's gunicorn.conf.py
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{url}/_standin/stats", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.2)
        run(url, args)
    finally:
        standin.terminate()
        standin.wait(timeout=10)


def _busy_cores(seconds: float = 1.0) -> float:
    """How many cores the machine kept busy over `seconds` (Linux /proc/stat), before we start."""
    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)
    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)


def run(url: str, args: argparse.Namespace) -> None:
    load = _busy_cores()
    workdir = Path(os.environ["INSTANCE_PATH"])
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    migrate.upgrade(database_url)
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": database_url,
                      "INSTANCE_PATH": str(workdir), "SECRET_KEY": "bench",
                      "PUSH_ALLOW_HTTP_ENDPOINTS": True, "PUSH_CONCURRENCY": args.concurrency})
    db = get_db(app)
    with db.transaction() as session:
        member = accounts.create_user(session, display_name="Sunny River",
                                      password="a walk by the river", timezone="UTC",
                                      language="en")
        session.flush()
        member_id = member.id or 0
        for _ in range(args.devices):
            found = requests.post(f"{url}/_standin/subscriptions", json={}, timeout=5).json()
            session.add(PushSubscription(member_id=member_id, endpoint=found["endpoint"],
                                         p256dh=found["keys"]["p256dh"], auth=found["keys"]["auth"]))
    with db.session(write=False) as session:
        devices = [d.id or 0 for d in session.exec(select(PushSubscription))]

    sender = push.sender(app)
    # Warm up: the connection pool and the token.
    _queue(app, member_id, devices, args.concurrency, "warm")
    _drain(app, sender, limit=500)
    before = _accepted(url)

    _queue(app, member_id, devices, args.messages, "pooled")
    pooled_s, pooled_cpu, pooled_sent = _drain(app, sender, limit=500)
    pooled_accepted = _accepted(url) - before

    naive = NaiveSender(sender)
    _queue(app, member_id, devices, args.naive_messages, "naive")
    naive_s, _naive_cpu, naive_sent = _drain(app, naive, limit=500)

    with db.session(write=False) as session:
        marked = session.exec(select(func.count()).select_from(Delivery).where(
            col(Delivery.status) == DeliveryStatus.SENT, col(Delivery.key).like("pooled-%"))).one()
        left = session.exec(select(func.count()).select_from(Delivery).where(
            col(Delivery.status) != DeliveryStatus.SENT)).one()

    # Building one request (encrypt + headers + authorization), cached token vs a new one.
    with db.session(write=False) as session:
        device = session.get(PushSubscription, devices[0])
    assert device is not None
    target = PushTarget(device.endpoint, device.p256dh, device.auth, PushMessage(
        title="Hearten", body="You have encouragement waiting.", url="/feed", tag="cheers-1",
        urgency="normal", ttl=43200))
    rounds = 2000
    cpu = time.process_time()
    for _ in range(rounds):
        sender.request(target)
    cached_cpu = (time.process_time() - cpu) / rounds
    fresh_sender = PushSender(sender.vapid, allow_http=True)
    cpu = time.process_time()
    for _ in range(rounds):
        fresh_sender._tokens.clear()  # as if nothing were cached: sign every time
        fresh_sender.request(target)
    signed_cpu = (time.process_time() - cpu) / rounds

    pooled_rate, naive_rate = args.messages / pooled_s, args.naive_messages / naive_s
    print(f"\nMachine: {os.cpu_count()} cores, {load:.1f} of them busy with other work just "
          "before the run (that slows every figure)")
    print(f"Push delivery: {args.messages} messages to {args.devices} devices, the push endpoint "
          f"answering after {args.latency_ms} ms (loopback), PUSH_CONCURRENCY={args.concurrency}")
    print(f"{'':44} {'messages':>9} {'seconds':>8} {'msg/s':>8}")
    print(f"{'pooled, concurrent, token cached':44} {args.messages:>9} {pooled_s:>8.2f} "
          f"{pooled_rate:>8.0f}")
    print(f"{'naive: one at a time, new connection + JWT':44} {args.naive_messages:>9} "
          f"{naive_s:>8.2f} {naive_rate:>8.0f}")
    print(f"speed-up: {pooled_rate / naive_rate:.1f}x (target >= 5x); target >= 500 msg/s: "
          f"{'met' if pooled_rate >= 500 else 'NOT met'}")
    print(f"none lost: queued {args.messages}, accepted by the push service {pooled_accepted}, "
          f"marked sent {marked} (engine counted {pooled_sent}); naive sent {naive_sent}; "
          f"not sent at the end: {left}")
    print(f"CPU per message, whole pooled run (claim, words, encrypt, sign, HTTP, mark): "
          f"{pooled_cpu / args.messages * 1000:.2f} ms")
    print(f"CPU to build one request (encrypt + headers): token cached {cached_cpu * 1000:.3f} ms, "
          f"signing a new JWT {signed_cpu * 1000:.3f} ms")
    if not (pooled_accepted == marked == pooled_sent == args.messages and left == 0):
        raise SystemExit("LOST OR DUPLICATED MESSAGES")


if __name__ == "__main__":
    main()
