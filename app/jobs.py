"""Background jobs with Huey: SQLite-backed in instance/ by default, Redis-backed with REDIS_URL.

Huey needs its instance at import time (tasks are registered on it), so the storage is chosen
from the same environment variables the config reads. Tests switch it to immediate mode.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from contextvars import Token
from pathlib import Path
from typing import Any, TypeVar

import redis
from flask import Flask, has_app_context
from huey import Huey, RedisHuey, SqliteHuey, crontab

from app.config import INSTANCE
from app.logs import job_id_var

F = TypeVar("F", bound=Callable[..., Any])
_app: Flask | None = None
_consumer: Any = None
log = logging.getLogger(__name__)


class ResilientRedisHuey(RedisHuey):  # type: ignore[misc]
    """Huey on Redis that survives Redis being away for a moment (a restart, a failover).

    A job that cannot reach the queue is handed to a background thread that sends it again
    every half second until Redis is back (up to RESEND_FOR seconds), so that the change that
    asked for it, already committed, does not fail and its job is not lost. The workers' own
    reads retry by themselves; work whose job was lost anyway (this process died meanwhile) is
    taken up by the periodic rescue jobs (wearables.tasks.resume_interrupted_work).
    """

    RESEND_FOR = 300.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting: queue.Queue[tuple[float, Any]] = queue.Queue()
        self._resender: threading.Thread | None = None
        self._lock = threading.Lock()

    def enqueue(self, task: Any) -> Any:
        try:
            return super().enqueue(task)
        except (redis.ConnectionError, redis.TimeoutError):
            log.warning("the job queue is away; job %s will be sent when it is back", task.name)
            self._waiting.put((time.monotonic() + self.RESEND_FOR, task))
            with self._lock:
                if self._resender is None or not self._resender.is_alive():
                    self._resender = threading.Thread(target=self._resend, daemon=True,
                                                      name="job-resender")
                    self._resender.start()
            return None

    def _resend(self) -> None:
        while True:
            try:
                give_up_at, task = self._waiting.get(timeout=5)
            except queue.Empty:
                return
            while True:
                try:
                    super().enqueue(task)
                    log.info("job %s sent after the queue came back", task.name)
                    break
                except (redis.ConnectionError, redis.TimeoutError):
                    if time.monotonic() > give_up_at:
                        log.error("job %s could not be queued; the rescue jobs will take it up",
                                  task.name)
                        break
                    time.sleep(0.5)


def _make_huey() -> Huey:
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        return ResilientRedisHuey("hearten", url=redis_url)
    instance = Path(os.environ.get("INSTANCE_PATH") or INSTANCE)
    instance.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("hearten", filename=str(instance / "jobs.db"))


huey = _make_huey()
# Jobs running now: job id -> when it started, and the log context it set.
_running: dict[str, tuple[float, Token[str | None]]] = {}


def _job_started(task: Any) -> None:
    """Every record a job writes carries its job id."""
    _running[task.id] = (time.perf_counter(), job_id_var.set(task.id))


def _job_finished(task: Any, _value: Any, exc: BaseException | None) -> None:
    """One line per job run: its task, outcome and duration, with its id (never its arguments)."""
    started, token = _running.pop(task.id, (None, None))
    outcome = "ok" if exc is None else "retried" if task.retries else "failed"
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
    log.log(logging.INFO if exc is None else logging.WARNING, "job %s %s in %s ms", task.name,
            outcome, duration_ms, extra={"task": task.name, "outcome": outcome,
                                         "duration_ms": duration_ms})
    if token is not None:
        try:
            job_id_var.reset(token)
        except ValueError:  # set in another context: clear it all the same
            job_id_var.set(None)


huey.pre_execute()(_job_started)
huey.post_execute()(_job_finished)


def _with_app_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            return fn(*args, **kwargs)
        if _app is None:
            raise RuntimeError("jobs.init_app(app) has not run in this process")
        with _app.app_context():
            return fn(*args, **kwargs)

    return run


def task(**options: Any) -> Callable[[F], Any]:
    """A Huey task that runs inside the app's context."""

    def decorator(fn: F) -> Any:
        return huey.task(**options)(_with_app_context(fn))

    return decorator


def periodic_task(schedule: Any, **options: Any) -> Callable[[F], Any]:
    """A Huey periodic task (schedule from `huey.crontab`) inside the app's context."""

    def decorator(fn: F) -> Any:
        return huey.periodic_task(schedule, **options)(_with_app_context(fn))

    return decorator


def queue_state() -> dict[str, Any]:
    """For /readyz: is the queue reachable, and how much waits in it."""
    if huey.immediate:
        return {"state": "ok", "mode": "immediate", "pending": 0}
    try:
        return {"state": "ok", "mode": type(huey).__name__, "pending": huey.pending_count(),
                "in_process_worker": _consumer is not None}
    except Exception as exc:  # the health check reports, it must not fail
        return {"state": "unavailable", "mode": type(huey).__name__, "detail": type(exc).__name__}


def start_in_process_worker(workers: int = 2) -> None:
    """Run the consumer's scheduler and worker threads inside this (the app's) process.

    The embedded set-up (no REDIS_URL) has no message queue between processes, so jobs run
    where the sockets are, and their emits reach the members' pages. Huey's own `start()` would
    also take over the process's signal handlers, which belong to gunicorn here.
    """
    global _consumer
    if _consumer is not None:
        return
    _consumer = huey.create_consumer(workers=workers, worker_type="thread", periodic=True)
    _consumer.scheduler.start()
    for _, worker in _consumer.worker_threads:
        worker.start()


def stop_in_process_worker(timeout: float | None = None) -> None:
    """Stop taking jobs; wait up to `timeout` seconds for the running ones to finish."""
    global _consumer
    consumer, _consumer = _consumer, None
    if consumer is not None:
        consumer.shutdown_timeout = timeout
        consumer.stop(graceful=True)


def init_app(app: Flask) -> None:
    """Give tasks this app's context; run them inline when JOBS_IMMEDIATE (tests)."""
    global _app
    _app = app
    huey.immediate = bool(app.config["JOBS_IMMEDIATE"])
    app.extensions["huey"] = huey
    if app.config.get("JOBS_IN_PROCESS") and not huey.immediate:
        start_in_process_worker()


__all__ = ["crontab", "huey", "init_app", "periodic_task", "queue_state", "task"]
