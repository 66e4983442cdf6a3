"""Bringing a file in: keep the upload, parse it in a job with progress, store all or nothing."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO

from flask_babel import lazy_gettext as _l
from sqlmodel import Session, col, select

from app.accounts.models import User
from app.db import Database
from app.events import record
from wearables import services
from wearables.events import ImportProgressed, ImportQueued
from wearables.exceptions import EmptyFile
from wearables.importers import ImportRefused, detect_and_parse
from wearables.models import ImportRun, ImportStatus, SleepNight, Source

# What a member reads when a file is refused, by the importer's reason code.
REFUSALS = {
    "not_a_known_export": _l("We do not recognise this file. Hearten reads Google Takeout "
                             "(Fitbit) archives, Apple Health exports and simple CSV files."),
    "unsupported_archive": _l("This kind of archive cannot be read here. Please upload the "
                              "zip file exactly as it was exported."),
    "empty_file": _l("This file is empty."),
    "truncated": _l("This file seems to be cut short. Please export it again and try once "
                    "more."),
    "corrupt_archive": _l("This archive is damaged. Please export it again and try once more."),
    "too_large": _l("This file is larger than Hearten can take."),
    "too_many_files": _l("This archive holds more files than an export would."),
    "zip_bomb": _l("This archive would unpack to far more than an export would, so it was "
                   "not opened."),
    "unsafe_xml": _l("This file contains parts that could be unsafe, so it was not read."),
    "bad_xml": _l("Part of this file could not be read."),
    "bad_json": _l("Part of this file could not be read."),
    "too_complex": _l("Part of this file is built in a way an export never is."),
    "bad_encoding": _l("This file uses a text encoding we cannot read. Please save it as "
                       "UTF-8."),
    "bad_csv_header": _l("The first row should name the columns, for example: date,steps"),
    "bad_csv_row": _l("A row of this file could not be read."),
    "bad_date": _l("A date in this file is not a real date."),
    "date_out_of_range": _l("A date in this file is in the future or too long ago."),
    "bad_value": _l("A number in this file could not be read."),
    "value_out_of_range": _l("A number in this file is outside what is possible."),
    "bad_sleep_times": _l("Some bed and wake times in this file do not fit together."),
    "duplicate_date": _l("A day appears twice in this file."),
    "no_data": _l("We found no steps or sleep in this file."),
}
log = logging.getLogger(__name__)
PROGRESS_EVERY = 0.05  # publish progress at most every 5% of the file
_SAFE_NAME = re.compile(r"[^\w.\- ]+")


def safe_filename(name: str) -> str:
    cleaned = _SAFE_NAME.sub("_", Path(name or "upload").name)[:120]
    return cleaned or "upload"


def start_import(session: Session, *, member: User, filename: str, upload: IO[bytes],
                 folder: Path) -> ImportRun:
    """Keep the uploaded file and queue it; the same file brought in again changes nothing."""
    digest = hashlib.sha256()
    for block in iter(lambda: upload.read(1024 * 1024), b""):
        digest.update(block)
    size = upload.tell()
    if size == 0:
        raise EmptyFile
    upload.seek(0)
    run = ImportRun(member_id=member.id or 0, filename=safe_filename(filename),
                    sha256=digest.hexdigest(), size_bytes=size)
    session.add(run)
    session.flush()
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"import-{run.id}").open("wb") as out:
        for block in iter(lambda: upload.read(1024 * 1024), b""):
            out.write(block)
    record(session, ImportQueued(member_id=member.id or 0, import_id=run.id or 0))
    return run


def imports_of(session: Session, *, member: User, limit: int = 5) -> list[ImportRun]:
    return list(session.exec(select(ImportRun).where(col(ImportRun.member_id) == member.id)
                             .order_by(col(ImportRun.id).desc()).limit(limit)))


def stalled_imports(session: Session, *, before: datetime) -> list[int]:
    """Files brought in before `before` and still waiting for their job."""
    return list(session.exec(select(ImportRun.id).where(
        col(ImportRun.status) == ImportStatus.QUEUED, col(ImportRun.created_at) < before)
        .order_by(col(ImportRun.id))).all())  # type: ignore[arg-type]


def run_import(db: Database, *, import_id: int, folder: Path, now: Callable[[], datetime]) -> str:
    """Parse the file (all of it first), then store everything in one transaction."""
    path = folder / f"import-{import_id}"
    with db.transaction() as session:
        # Claimed under the row's lock: a job sent twice (a rescued one, say) reads it once.
        run = session.get(ImportRun, import_id, with_for_update=True)
        member = session.get(User, run.member_id) if run else None
        if run is None or member is None or run.status != ImportStatus.QUEUED:
            if run is None or member is None:  # its account was deleted: the file goes too
                path.unlink(missing_ok=True)
            return "skipped"
        run.status = ImportStatus.RUNNING
    published = [0.0]

    def progress(done: int, expected: int) -> None:
        share = done / max(expected, 1)
        if share - published[0] >= PROGRESS_EVERY:
            published[0] = share
            with db.transaction() as write:
                row = write.get(ImportRun, import_id)
                if row is not None:
                    row.bytes_done = done
                    record(write, ImportProgressed(member_id=member.id or 0, import_id=import_id,
                                                   share=round(share, 3)))

    try:
        return _read_and_store(db, run=run, member=member, path=path, progress=progress, now=now)
    except Exception as exc:
        refused = exc if isinstance(exc, ImportRefused) else None
        if refused is None:
            log.exception("import %s failed unexpectedly", import_id)
        with db.transaction() as session:
            row = session.get(ImportRun, import_id)
            if row is not None:
                row.status = ImportStatus.REFUSED
                row.reason_code = refused.reason_code if refused else "unexpected"
                row.detail = refused.message[:300] if refused else ""
                row.finished_at = now()
        return "refused"
    finally:
        path.unlink(missing_ok=True)  # the member's file is never kept once read


def _read_and_store(db: Database, *, run: ImportRun, member: User, path: Path,
                    progress: Callable[[int, int], None], now: Callable[[], datetime]) -> str:
    """Parse the whole file first; only then write, all in one transaction."""
    import_id = run.id or 0
    with path.open("rb") as fh:
        result = detect_and_parse(fh, run.filename, member.timezone, progress=progress)
    with db.transaction() as session:
        member_id = member.id or 0
        days = services.store_steps(session, member_id=member_id, source=Source.IMPORT,
                                    days=result.steps, now=now())
        nights = services.store_sleep(session, member_id=member_id, tz=member.timezone,
                                      source=Source.IMPORT, sessions=result.sleep, now=now())
        untimed = services.store_untimed_sleep(
            session, member_id=member_id, nights={s.night: s.minutes_asleep
                                                  for s in result.untimed_sleep}, now=now())
        row = session.get(ImportRun, import_id)
        if row is not None:
            row.status, row.kind, row.finished_at = ImportStatus.DONE, result.kind, now()
            row.bytes_done = row.size_bytes
            row.days_changed, row.nights_changed = len(days), len(nights) + len(untimed)
            record(session, ImportProgressed(member_id=member_id, import_id=import_id,
                                             share=1.0))
    return "done"


__all__ = ["REFUSALS", "ImportRun", "SleepNight", "imports_of", "run_import", "start_import"]
