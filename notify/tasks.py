"""Notification jobs: send what the outbox holds, release what waited (gathering, quiet hours),
retry what a push service asked to retry, and the evening nudge."""

from __future__ import annotations

from flask import current_app

from app.db import get_db, utcnow
from app.jobs import crontab, periodic_task, task
from notify import delivery, push, services


@task()
def deliver_task() -> str:
    """Send every due delivery in the outbox (bounded concurrency, one pooled session)."""
    report = delivery.deliver_due(get_db(), push.sender(current_app), now=utcnow())
    return str(report)


@periodic_task(crontab(minute="*"))
def release_waiting_task() -> int:
    """Every minute: notifications whose wait is over are queued; due retries are sent."""
    with get_db().transaction() as session:
        released = services.release_waiting(session, now=utcnow())
    deliver_task()
    return released


@periodic_task(crontab(minute="*/15"))
def nudge_task() -> int:
    """Every quarter hour: the evening nudge for members whose chosen time has come."""
    with get_db().transaction() as session:
        return services.nudge(session, now=utcnow())
