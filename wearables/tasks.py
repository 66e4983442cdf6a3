"""Wearable jobs: syncing a connection, the schedule of incremental syncs, revoking tokens, and
taking up work a killed worker or a lost queue left behind."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from flask import current_app

from app.crypto import TokenCipher
from app.db import get_db, utcnow
from app.jobs import crontab, huey, periodic_task, task
from wearables import imports, services
from wearables.providers.base import ProviderError, WearableProvider
from wearables.sync import SyncContext, interrupted_syncs, sync_connection

log = logging.getLogger(__name__)
# A file still waiting this long after it was brought in has lost its job.
STALLED_AFTER = timedelta(minutes=2)


def sync_context() -> SyncContext:
    """The sync engine's view of this app: its database, platforms and token cipher."""
    return SyncContext(db=get_db(), providers=providers(), cipher=cipher(),
                       resync_days=current_app.config["RESYNC_DAYS"])


def providers() -> dict[str, WearableProvider]:
    found: dict[str, WearableProvider] = current_app.extensions["hearten.providers"]
    return found


def cipher() -> TokenCipher:
    found: TokenCipher = current_app.extensions["hearten.cipher"]
    return found


@task()
def sync_connection_task(connection_id: int) -> str:
    """Sync one connection; a trigger while another sync of it runs does nothing (the running
    one already fetches everything owed)."""
    return sync_connection(sync_context(), connection_id).status


@periodic_task(crontab(minute="*/5"))
def enqueue_due_syncs() -> int:
    """Every five minutes: start the syncs whose time has come (every SYNC_EVERY_MINUTES)."""
    every = timedelta(minutes=current_app.config["SYNC_EVERY_MINUTES"])
    with get_db().session(write=False) as session:
        due = services.due_connections(session, now=utcnow(), every=every)
    for connection_id in due:
        sync_connection_task(connection_id)
    return len(due)


@periodic_task(crontab(minute="*"))
def resume_interrupted_work() -> int:
    """Every minute, and as each worker starts: a sync whose worker was killed midway (its
    lease held by a process that is gone, or expired) starts again from its cursor, and a file
    whose job never reached the queue (Redis was away) is read. Both are claimed before they
    run, so a job that was only late does nothing twice."""
    with get_db().session(write=False) as session:
        syncs = interrupted_syncs(session, now=utcnow())
        files = imports.stalled_imports(session, before=utcnow() - STALLED_AFTER)
    for connection_id in syncs:
        sync_connection_task(connection_id)
    for import_id in files:
        import_file_task(import_id)
    if syncs or files:
        log.info("took up %d interrupted syncs and %d waiting files", len(syncs), len(files))
    return len(syncs) + len(files)


@huey.on_startup()  # type: ignore[untyped-decorator]
def _resume_on_start() -> None:
    """A worker that starts (after a crash, say) takes up what was left at once."""
    try:
        resume_interrupted_work.call_local()
    except Exception:  # a worker must start even when the database is not there yet
        log.exception("could not look for interrupted work at start")


def upload_folder() -> Path:
    return Path(current_app.config["INSTANCE_PATH"]) / "uploads"


@task()
def import_file_task(import_id: int) -> str:
    """Read a file a member brought in and store what it holds."""
    return imports.run_import(get_db(), import_id=import_id, folder=upload_folder(), now=utcnow)


@task(retries=3, retry_delay=60)
def revoke_token_task(provider: str, token_enc: str) -> None:
    """Withdraw a disconnected tracker's grant at the platform."""
    platform = providers().get(provider)
    if platform is None or not token_enc:
        return
    try:
        platform.revoke(token=cipher().decrypt(token_enc))
    except ProviderError:
        log.warning("revoking a %s token failed; will retry", provider)
        raise
