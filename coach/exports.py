"""Exports for the program's evaluation: one row per consenting member per day, with no names.

Only members who currently agree to research use are in an export, each known by their study id;
an export needs at least `min_group` of them, so that nobody can be picked out of a tiny group.
Every export is written to the audit log in the caller's transaction.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, overload

from flask_babel import lazy_gettext as _l
from sqlmodel import Session, col, select

from app import audit
from app.accounts import consent
from app.accounts.models import CohortMembership, CohortRole, Role, User
from app.db import utcnow
from coach import services
from coach.exceptions import BadExportRange, TooFewForExport
from coach.models import MemberDay

MAX_DAYS = 366
_CHUNK = 500  # members per IN (…) list


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    API = "api"  # the JSON API, for the audit log's sake


class ExportRow(NamedTuple):
    """One member's day, as it goes into the file (the field order is the column order)."""

    study_id: str
    day: date
    steps: int | None
    sleep_minutes: int | None
    tracker_data: bool
    goals_tracked: int
    goals_met: int
    posts: int
    cheers: int
    comments: int
    check_ins: int


COLUMNS: tuple[str, ...] = ExportRow._fields


@dataclass(frozen=True)
class DictionaryEntry:
    """What one column holds, in plain words."""

    name: str
    type: Any      # lazy text, like the two below
    unit: Any
    meaning: Any


DATA_DICTIONARY: tuple[DictionaryEntry, ...] = (
    DictionaryEntry("study_id", _l("text"), _l("none"), _l(
        "A random id per member, stable across exports, never shown in the app.")),
    DictionaryEntry("day", _l("date (YYYY-MM-DD)"), _l("calendar day"), _l(
        "The member's own day, in their timezone. Every member has a row for every day of the "
        "range, including days with nothing recorded.")),
    DictionaryEntry("steps", _l("whole number or empty"), _l("steps"), _l(
        "Steps that day, the member's own day in their timezone; when several sources have the "
        "day, what the member typed in wins, then a tracker, then an imported file. Empty (null "
        "in JSON) when there is nothing for that day.")),
    DictionaryEntry("sleep_minutes", _l("whole number or empty"), _l("minutes"), _l(
        "Minutes asleep in the main sleep ending that day (naps not included), chosen among "
        "sources the same way as steps. Empty (null in JSON) when there is nothing for that "
        "night.")),
    DictionaryEntry("tracker_data", _l("true or false"), _l("none"), _l(
        "True when a tracker or an imported tracker file had steps or sleep for that day, even "
        "if a number the member typed in was used instead; false otherwise.")),
    DictionaryEntry("goals_tracked", _l("whole number"), _l("goals"), _l(
        "How many goals counted that day, counting only goals the member shares with their "
        "coach or their group (private goals are left out).")),
    DictionaryEntry("goals_met", _l("whole number"), _l("goals"), _l(
        "How many of those shared goals were met that day.")),
    DictionaryEntry("posts", _l("whole number"), _l("posts"), _l(
        "Posts the member added to their group's feed that day: stories, tips, shared goals, "
        "shared progress and milestones, whatever became of them later.")),
    DictionaryEntry("cheers", _l("whole number"), _l("cheers"), _l(
        "Cheers the member gave that day.")),
    DictionaryEntry("comments", _l("whole number"), _l("comments"), _l(
        "Comments the member wrote that day.")),
    DictionaryEntry("check_ins", _l("whole number"), _l("check-ins"), _l(
        "Daily habit check-ins the member marked done for that day.")),
)

NOTES: tuple[Any, ...] = (
    _l("Only members who agreed to research use are included, and only while they agree: "
       "members who withdraw leave every export made after that."),
    _l("Only current members of the group are included, not coaches or people who left it."),
    _l("An export needs at least %(k)d such members, so that nobody can be picked out."),
    _l("The file holds no names, no member numbers, no group name and nothing anyone wrote."),
)


def dictionary(*, min_group: int) -> tuple[list[dict[str, str]], list[str]]:
    """The data dictionary and the notes, as plain text in the current language."""
    entries = [{"name": e.name, "type": str(e.type), "unit": str(e.unit),
                "meaning": str(e.meaning)}
               for e in DATA_DICTIONARY]
    notes = [str(note) % {"k": min_group} for note in NOTES]  # only one note names K
    return entries, notes


class Panel(Sequence[ExportRow]):
    """Every study id crossed with every day of the range, filled from the stored days
    (computed row by row, so a long export never sits in memory twice)."""

    def __init__(self, *, study_ids: Sequence[str], start: date, days: int,
                 stored: Mapping[tuple[str, date], ExportRow]) -> None:
        self._study_ids, self._start, self._days, self._stored = study_ids, start, days, stored

    def __len__(self) -> int:
        return len(self._study_ids) * self._days

    @overload
    def __getitem__(self, index: int) -> ExportRow: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ExportRow]: ...

    def __getitem__(self, index: int | slice) -> ExportRow | Sequence[ExportRow]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._row(self._study_ids[index // self._days], index % self._days)

    def __iter__(self) -> Iterator[ExportRow]:
        for study_id in self._study_ids:
            for n in range(self._days):
                yield self._row(study_id, n)

    def _row(self, study_id: str, n: int) -> ExportRow:
        day = self._start + timedelta(days=n)
        found = self._stored.get((study_id, day))
        # A day without a stored row had nothing in it: no steps or sleep, nothing counted.
        return found if found is not None else ExportRow(study_id, day, None, None, False,
                                                         0, 0, 0, 0, 0, 0)


@dataclass(frozen=True)
class ExportResult:
    cohort_id: int
    start: date
    end: date
    generated_at: datetime
    members: int
    rows: Sequence[ExportRow]


def check_range(*, start: date, end: date, today: date) -> int:
    """The number of days from `start` to `end` inclusive, or BadExportRange."""
    days = (end - start).days + 1
    if days < 1 or end > today or days > MAX_DAYS:
        raise BadExportRange()
    return days


def _consenting(session: Session, *, cohort_id: int) -> dict[int, str]:
    """Study ids of the cohort's current members who agree to research use, by member id."""
    member_ids = list(session.exec(
        select(col(CohortMembership.user_id))
        .join(User, col(User.id) == col(CohortMembership.user_id))
        .where(col(CohortMembership.cohort_id) == cohort_id,
               col(CohortMembership.role) == CohortRole.MEMBER,
               col(User.role) == Role.MEMBER)))
    return consent.research_study_ids(session, member_ids=member_ids)


def ready(session: Session, *, coach: User, cohort_id: int, min_group: int) -> bool:
    """True when enough of the cohort's members agree to research use for an export."""
    services.cohort_for_coach(session, coach=coach, cohort_id=cohort_id)
    return len(_consenting(session, cohort_id=cohort_id)) >= min_group


def export_rows(session: Session, *, coach: User, cohort_id: int, start: date, end: date,
                today: date, min_group: int, kind: ExportFormat = ExportFormat.CSV,
                now: datetime | None = None) -> ExportResult:
    """The cohort's de-identified daily panel for `start`..`end`; the export is audited."""
    services.cohort_for_coach(session, coach=coach, cohort_id=cohort_id)
    days = check_range(start=start, end=end, today=today)
    study_ids = _consenting(session, cohort_id=cohort_id)
    if len(study_ids) < min_group:
        raise TooFewForExport()
    stored: dict[tuple[str, date], ExportRow] = {}
    ordered = sorted(study_ids)
    for first in range(0, len(ordered), _CHUNK):
        for row in session.exec(select(MemberDay).where(
                col(MemberDay.member_id).in_(ordered[first:first + _CHUNK]),
                col(MemberDay.day) >= start, col(MemberDay.day) <= end)):
            study_id = study_ids[row.member_id]
            stored[(study_id, row.day)] = ExportRow(
                study_id, row.day, row.steps, row.sleep_minutes, row.tracker, row.goals_total,
                row.goals_met, row.posts, row.cheers, row.comments, row.check_ins)
    now = now or utcnow()
    audit.log(session, actor_id=coach.id, action="coach.export", subject_type="cohort",
              subject_id=cohort_id,
              detail=f"{kind} {start.isoformat()}..{end.isoformat()}, {len(study_ids)} members",
              now=now)
    return ExportResult(
        cohort_id=cohort_id, start=start, end=end, generated_at=now, members=len(study_ids),
        rows=Panel(study_ids=sorted(study_ids.values()), start=start, days=days, stored=stored))


def filename(result: ExportResult, extension: str) -> str:
    """hearten-cohort-3-2026-01-01-to-2026-03-31.csv"""
    return (f"hearten-cohort-{result.cohort_id}-{result.start.isoformat()}-to-"
            f"{result.end.isoformat()}.{extension}")


# --- writing files, a chunk at a time ---


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return value


def csv_chunks(result: ExportResult, *, batch: int = 1000) -> Iterator[str]:
    """The export as CSV: a header line, then one line per row, yielded `batch` rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for n, row in enumerate(result.rows, 1):
        writer.writerow([_cell(value) for value in row])
        if n % batch == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def json_row(row: ExportRow) -> dict[str, Any]:
    values = row._asdict()
    values["day"] = row.day.isoformat()
    return values


def header(result: ExportResult) -> dict[str, str]:
    return {"start": result.start.isoformat(), "end": result.end.isoformat(),
            "generated_at": result.generated_at.isoformat()}


def json_chunks(result: ExportResult, *, columns: list[dict[str, str]], notes: list[str],
                batch: int = 1000) -> Iterator[str]:
    """The export as one JSON document: {"cohort_export", "dictionary", "notes", "rows"}.

    The dictionary comes in already translated, so that writing needs no request context."""
    yield (f'{{"cohort_export": {json.dumps(header(result))}, '
           f'"dictionary": {json.dumps(columns, ensure_ascii=False)}, '
           f'"notes": {json.dumps(notes, ensure_ascii=False)}, "rows": [')
    part: list[str] = []
    for n, row in enumerate(result.rows):
        part.append(("," if n else "") + "\n" + json.dumps(json_row(row)))
        if len(part) == batch:
            yield "".join(part)
            part = []
    part.append("\n]}\n")
    yield "".join(part)
