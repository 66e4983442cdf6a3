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
        return {"state": "ok", "mode": type(huey).__name__, "pending": huey.pending_count()}
    except Exception as exc:  # the health check reports, it must not fail
        return {"state": "unavailable", "mode": type(huey).__name__, "detail": type(exc).__name__}


def init_app(app: Flask) -> None:
    """Give tasks this app's context; run them inline when JOBS_IMMEDIATE (tests)."""
    global _app
    _app = app
    huey.immediate = bool(app.config["JOBS_IMMEDIATE"])
    app.extensions["huey"] = huey


__all__ = ["crontab", "huey", "init_app", "periodic_task", "queue_state", "task"]
