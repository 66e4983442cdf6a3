"""Background upkeep for accounts."""

from __future__ import annotations

import logging

from app.accounts import auth, services
from app.db import get_db, utcnow
from app.jobs import crontab, periodic_task

log = logging.getLogger(__name__)


@periodic_task(crontab(minute="17"))
def purge_expired_sessions() -> int:
    """Every hour: delete signed-in sessions that have timed out."""
    with get_db().transaction() as session:
        removed = services.purge_expired_sessions(session, now=utcnow(),
                                                  limits=auth.session_limits())
    log.info("purged %d expired sessions", removed)
    return removed
