"""Coach jobs: every night the rollups are rebuilt from the raw rows (late data, undone cheers,
anything the running upkeep could not see)."""

from __future__ import annotations

import logging

from sqlmodel import col, select

from app.accounts.models import Cohort
from app.db import get_db
from app.jobs import crontab, periodic_task
from coach import rollups

log = logging.getLogger(__name__)


def rebuild_all() -> tuple[int, int]:
    """Rebuild every cohort, each in its own transaction; returns (cohorts, days corrected)."""
    with get_db().session(write=False) as read:
        cohort_ids = list(read.exec(select(col(Cohort.id))))
    corrected = 0
    for cohort_id in cohort_ids:
        with get_db().transaction() as session:
            corrected += rollups.rebuild_cohort(session, cohort_id=cohort_id or 0)
    return len(cohort_ids), corrected


@periodic_task(crontab(minute="20", hour="3"))
def rebuild_rollups_nightly() -> int:
    cohorts, corrected = rebuild_all()
    log.info("coach rollups rebuilt", extra={"cohorts": cohorts, "days_corrected": corrected})
    return corrected
