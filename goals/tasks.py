"""Goal jobs: as each member's day ends, their streaks are recounted."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlmodel import col, select

from app.accounts.models import Role, User
from app.db import get_db, utcnow
from app.jobs import crontab, periodic_task
from goals import services


@periodic_task(crontab(minute="5"))
def refresh_streaks_after_midnight() -> int:
    """Every hour: members whose local day has just begun get their streaks recounted, so that
    a day that passed without data shows (kindly) even when no sync came in."""
    now = utcnow()
    with get_db().transaction() as session:
        members = [m for m in session.exec(select(User).where(col(User.role) == Role.MEMBER))
                   if now.astimezone(ZoneInfo(m.timezone)).hour == 0]
        return services.refresh_members(session, members=members, now=now) if members else 0
