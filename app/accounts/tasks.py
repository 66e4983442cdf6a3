"""Background upkeep for accounts."""

from __future__ import annotations

import logging

from flask import current_app

from app.accounts import services
from app.db import get_db, utcnow
from app.jobs import crontab, periodic_task

log = logging.getLogger(__name__)


@periodic_task(crontab(minute="17"))
def purge_expired_sessions() -> int:
    """Every hour: delete signed-in sessions that have timed out."""
    with get_db().transaction() as session:
        removed = services.purge_expired_sessions(session, now=utcnow(),
                                                  limits=services.SessionLimits.from_config(current_app.config))
    log.info("purged %d expired sessions", removed)
    return removed
