"""What wearables do when events arrive: start syncs, show progress, ask to reconnect."""

from __future__ import annotations

from sqlalchemy.orm import Session as OrmSession

from app.accounts.events import AccountDeleted
from app.events import EventBus, sqlmodel_session
from app.realtime import emit_to_user
from wearables import data_rights
from wearables.events import (
    ImportFilesDiscarded,
    ImportProgressed,
    ImportQueued,
    ReconnectNeeded,
    SyncProgressed,
    SyncRequested,
    TrackerConnected,
    TrackerDisconnected,
)
from wearables.tasks import (
    import_file_task,
    revoke_token_task,
    sync_connection_task,
    upload_folder,
)


def on_tracker_connected(event: TrackerConnected) -> None:
    sync_connection_task(event.connection_id)


def on_sync_requested(event: SyncRequested) -> None:
    sync_connection_task(event.connection_id)


def on_tracker_disconnected(event: TrackerDisconnected) -> None:
    revoke_token_task(event.provider, event.token_enc)


def on_account_deleted(session: OrmSession, event: AccountDeleted) -> None:
    data_rights.forget_member(sqlmodel_session(session), member_id=event.user_id)


def on_import_files_discarded(event: ImportFilesDiscarded) -> None:
    for import_id in event.import_ids:
        (upload_folder() / f"import-{import_id}").unlink(missing_ok=True)


def on_import_queued(event: ImportQueued) -> None:
    import_file_task(event.import_id)


def on_sync_progressed(event: SyncProgressed) -> None:
    emit_to_user(event.member_id, "sync_progress", {
        "connection_id": event.connection_id, "done": event.days_done,
        "total": event.days_total})


def on_reconnect_needed(event: ReconnectNeeded) -> None:
    emit_to_user(event.member_id, "reconnect_needed", {"provider": event.provider,
                                                        "reason": event.reason})


def on_import_progressed(event: ImportProgressed) -> None:
    emit_to_user(event.member_id, "import_progress", {"import_id": event.import_id,
                                                       "share": event.share})


def register(bus: EventBus) -> None:
    bus.in_transaction(AccountDeleted, on_account_deleted)
    bus.after_commit(ImportFilesDiscarded, on_import_files_discarded)
    bus.after_commit(ImportProgressed, on_import_progressed)
    bus.after_commit(TrackerConnected, on_tracker_connected)
    bus.after_commit(TrackerDisconnected, on_tracker_disconnected)
    bus.after_commit(SyncRequested, on_sync_requested)
    bus.after_commit(ImportQueued, on_import_queued)
    bus.after_commit(SyncProgressed, on_sync_progressed)
    bus.after_commit(ReconnectNeeded, on_reconnect_needed)
