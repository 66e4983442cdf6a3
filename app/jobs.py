"""Background jobs with Huey: SQLite-backed in instance/ by default, Redis-backed with REDIS_URL.

Huey needs its instance at import time (tasks are registered on it), so the storage is chosen
from the same environment variables the config reads. Tests switch it to immediate mode.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask, has_app_context
from huey import Huey, RedisHuey, SqliteHuey, crontab

from app.config import INSTANCE

F = TypeVar("F", bound=Callable[..., Any])
_app: Flask | None = None
_consumer: Any = None


def _make_huey() -> Huey:
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        return RedisHuey("hearten", url=redis_url)
    instance = Path(os.environ.get("INSTANCE_PATH") or INSTANCE)
    instance.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("hearten", filename=str(instance / "jobs.db"))


huey = _make_huey()


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
    """For /healthz: is the queue reachable, and how much waits in it."""
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


def init_app(app: Flask) -> None:
    """Give tasks this app's context; run them inline when JOBS_IMMEDIATE (tests)."""
    global _app
    _app = app
    huey.immediate = bool(app.config["JOBS_IMMEDIATE"])
    app.extensions["huey"] = huey
    if app.config.get("JOBS_IN_PROCESS") and not huey.immediate:
        start_in_process_worker()


__all__ = ["crontab", "huey", "init_app", "periodic_task", "queue_state", "task"]
