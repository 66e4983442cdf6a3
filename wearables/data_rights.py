"""Wearables' share of a member's rights: their steps, sleep, trackers and imports in their
download; and, when they delete their account, every tracker grant revoked at its platform (after
commit) and all of it deleted."""

from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import Session, col, select

from app.accounts.data_rights import Export, Table, stamp
from app.accounts.models import User
from app.events import record
from wearables.events import ImportFilesDiscarded, TrackerDisconnected
from wearables.models import Connection, ConnectionStatus, DailySteps, ImportRun, SleepNight

STEPS_COLUMNS = ("day", "source", "steps", "updated_at")
SLEEP_COLUMNS = ("night", "source", "bedtime", "wake_time", "minutes_asleep", "minutes_in_bed",
                 "nap_minutes", "updated_at")


def export_part(session: Session, member: User, export: Export) -> None:
    """Trackers (never their tokens), imports (what was brought, not the file), and every day
    of steps and night of sleep from each source, as JSON and as CSV."""
    member_id = member.id
    export.sections["trackers"] = [
        {"provider": c.provider, "status": c.status, "connected_at": stamp(c.created_at),
         "history_from": stamp(c.backfill_from), "synced_through": stamp(c.synced_through),
         "last_sync_at": stamp(c.last_sync_at)}
        for c in session.exec(select(Connection).where(col(Connection.member_id) == member_id)
                              .order_by(col(Connection.id)))]
    export.sections["imports"] = [
        {"filename": run.filename, "kind": run.kind, "size_bytes": run.size_bytes,
         "status": run.status, "days_changed": run.days_changed,
         "nights_changed": run.nights_changed, "brought_at": stamp(run.created_at),
         "finished_at": stamp(run.finished_at)}
        for run in session.exec(select(ImportRun).where(col(ImportRun.member_id) == member_id)
                                .order_by(col(ImportRun.id)))]
    steps = [(row.day, row.source, row.steps, row.updated_at) for row in session.exec(
        select(DailySteps).where(col(DailySteps.member_id) == member_id)
        .order_by(col(DailySteps.day), col(DailySteps.source)))]
    nights = [(row.night, row.source, row.bedtime, row.wake_time, row.minutes_asleep,
               row.minutes_in_bed, row.nap_minutes, row.updated_at) for row in session.exec(
        select(SleepNight).where(col(SleepNight.member_id) == member_id)
        .order_by(col(SleepNight.night), col(SleepNight.source)))]
    export.sections["steps"] = [dict(zip(STEPS_COLUMNS, row, strict=True)) for row in steps]
    export.sections["sleep"] = [dict(zip(SLEEP_COLUMNS, row, strict=True)) for row in nights]
    export.tables["steps.csv"] = Table(STEPS_COLUMNS, steps)
    export.tables["sleep.csv"] = Table(SLEEP_COLUMNS, nights)


def forget_member(session: Session, *, member_id: int) -> None:
    """A deleted account: each live tracker grant is revoked at its platform after commit (the
    existing disconnect path), then connections, imports, steps and sleep are deleted."""
    for connection in session.exec(select(Connection).where(
            col(Connection.member_id) == member_id)):
        token = connection.refresh_token_enc or connection.access_token_enc
        if token and connection.status != ConnectionStatus.DISCONNECTED:
            record(session, TrackerDisconnected(member_id=member_id, provider=connection.provider,
                                                token_enc=token))
    import_ids = tuple(i for i in session.exec(select(col(ImportRun.id)).where(
        col(ImportRun.member_id) == member_id)) if i is not None)
    if import_ids:
        record(session, ImportFilesDiscarded(import_ids=import_ids))
    for model in (Connection, ImportRun, DailySteps, SleepNight):
        session.execute(delete(model).where(col(model.member_id) == member_id))
