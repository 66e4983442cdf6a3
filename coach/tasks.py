"""Coach jobs: every night the rollups are rebuilt from the raw rows (late data, undone cheers,
anything the running upkeep could not see)."""

from __future__ import annotations

import logging
from datetime import date

from sqlmodel import col, select

from app.accounts.models import Cohort
from app.db import get_db
from app.jobs import crontab, periodic_task
from coach import rollups

log = logging.getLogger(__name__)


def rebuild_all() -> tuple[int, int]:
    """Rebuild every cohort: each member in a short transaction of their own (so that syncs and
    posts never wait long for the lock), then each cohort's days; returns (cohorts, cohort days
    corrected)."""
    db = get_db()
    with db.session(write=False) as read:
        cohort_ids = [cohort_id or 0 for cohort_id in read.exec(select(col(Cohort.id)))]
    corrected = 0
    for cohort_id in cohort_ids:
        with db.session(write=False) as read:
            member_ids = rollups.cohort_members(read, cohort_id=cohort_id)
        changed: set[date] = set()
        for member_id in member_ids:
            with db.transaction() as session:
                changed |= rollups.rebuild_member(session, member_id=member_id)
        with db.transaction() as session:
            changed |= rollups.reconcile_cohort(session, cohort_id=cohort_id)
        corrected += len(changed)
    return len(cohort_ids), corrected


@periodic_task(crontab(minute="20", hour="3"))
def rebuild_rollups_nightly() -> int:
    cohorts, corrected = rebuild_all()
    log.info("coach rollups rebuilt", extra={"cohorts": cohorts, "days_corrected": corrected})
    return corrected
