"""Pure, streaming parsers for the files members bring instead of connecting a tracker.

Three formats: a plain CSV, an Apple Health export (a zip holding export.xml) and a Google Takeout
Fitbit archive. Each parser reads a binary file object without loading whole documents, and either
returns an ImportResult or refuses the whole file with ImportRefused: all or nothing. No database,
no Flask. Machine-made exports skip (and count) single unreadable records; a typed-in CSV is strict.
Steps are per local day of the member's time zone; sleep times are aware UTC datetimes (subtracting two
datetimes that share a ZoneInfo gives wall-clock time, which is wrong across a daylight-saving change).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import struct
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import IO, TYPE_CHECKING
from zoneinfo import ZoneInfo

# defusedxml refuses entity declarations and external references before expat expands anything.
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError

from wearables.records import DaySteps, SleepSession

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

KIND_CSV = "csv"
KIND_APPLE_HEALTH = "apple_health"
KIND_FITBIT_TAKEOUT = "fitbit_takeout"

MAX_CSV_BYTES = 20 * 1000 * 1000
MAX_APPLE_XML_BYTES = 2 * 1024**3
MAX_TAKEOUT_JSON_BYTES = 200 * 1000 * 1000  # all the Takeout JSON files read, together
MAX_JSON_FILE_BYTES = 20 * 1000 * 1000  # any one Takeout JSON file
MAX_JSON_DEPTH = 16  # real sleep logs nest 5 deep
MAX_JSON_ENTRY_CHARS = 256 * 1024  # one entry of a JSON list, strings counted as one character
MAX_ZIP_ENTRIES = 50_000
MAX_ZIP_DIRECTORY_BYTES = 64 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200
RATIO_CHECK_FROM_BYTES = 1024 * 1024  # tiny files may compress very well without harm
MAX_XML_PROLOG_BYTES = 1024 * 1024
# The most bytes expat may take in without reporting anything: real records are a few hundred bytes,
# and expat 2.5 rescans a growing token on every feed (quadratic time, and all of it held).
MAX_XML_TOKEN_BYTES = 1024 * 1024
MAX_DAY_STEPS = 100_000
MAX_NIGHT_MINUTES = 24 * 60
HISTORY_YEARS = 10
SLEEP_GAP = timedelta(minutes=90)  # Apple sleep records closer than this belong to one sleep
NAP_MAX_MINUTES = 180
NAP_HOURS = range(9, 20)  # a short sleep starting in these local hours is a nap
PROGRESS_STEP_BYTES = 1024 * 1024

REASON_CODES = frozenset({
    "not_a_known_export", "unsupported_archive", "empty_file", "truncated", "corrupt_archive",
    "too_large", "too_many_files", "zip_bomb", "unsafe_xml", "bad_xml", "bad_json", "too_complex",
    "bad_encoding", "bad_csv_header", "bad_csv_row", "bad_date", "date_out_of_range", "bad_value",
    "value_out_of_range", "bad_sleep_times", "duplicate_date", "no_data",
})

Progress = Callable[[int, int], None]
"""Called with (bytes read so far, bytes expected) about every megabyte."""

_TRY_AGAIN = "Please export it again and try once more."


class ImportRefused(Exception):
    """A whole file refused: reason_code is stable for translation, message is for the member."""

    def __init__(self, reason_code: str, message: str) -> None:
        if reason_code not in REASON_CODES:
            raise ValueError(f"unknown import reason code {reason_code!r}")
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message


@dataclass(frozen=True)
class UntimedSleep:
    """Minutes asleep for a night whose bed and wake times the file does not give (CSV only)."""

    night: date
    minutes_asleep: int


@dataclass(frozen=True)
class ImportResult:
    """What one file held: steps per local day and sleeps (times in UTC), with counts of what was read."""

    kind: str
    steps: list[DaySteps] = field(default_factory=list)
    sleep: list[SleepSession] = field(default_factory=list)
    untimed_sleep: list[UntimedSleep] = field(default_factory=list)
    rows_read: int = 0
    rows_skipped: int = 0


# ---------------------------------------------------------------------------------------------------
# Public entry points


def detect_and_parse(fileobj: IO[bytes], filename: str, tz: str, *, today: date | None = None,
                     progress: Progress | None = None) -> ImportResult:
    """Recognise an export by its content (not its name) and parse it with the matching parser."""
    zone = ZoneInfo(tz)
    window = _Window.ending(today or datetime.now(zone).date())
    head = _peek(fileobj, 4096)
    if not head:
        raise _empty()
    if head.startswith(_ZIP_MAGIC):
        with _open_zip(fileobj) as archive:
            if _find_apple_xml(archive) is not None:
                return _parse_apple_zip(archive, zone, window, progress)
            if _takeout_members(archive):
                return _parse_takeout_zip(archive, zone, window, progress)
        raise _unknown(filename)
    if _looks_like_xml(head):
        return _parse_apple_stream(fileobj, _size_of(fileobj), zone, window, progress)
    if head.startswith(_OTHER_ARCHIVE_MAGICS):
        raise ImportRefused("unsupported_archive", _OTHER_ARCHIVE_MESSAGE)
    if _looks_like_csv_header(head):
        return _parse_csv_stream(fileobj, zone, window, progress)
    raise _unknown(filename)


def parse_csv(fileobj: IO[bytes], tz: str, *, today: date | None = None,
              progress: Progress | None = None) -> ImportResult:
    """Parse a plain CSV of date,steps and/or date,sleep_minutes (with optional bedtime,wake_time)."""
    zone = ZoneInfo(tz)
    return _parse_csv_stream(fileobj, zone, _Window.ending(today or datetime.now(zone).date()), progress)


def parse_apple_health(fileobj: IO[bytes], tz: str, *, today: date | None = None,
                       progress: Progress | None = None) -> ImportResult:
    """Parse an Apple Health export zip (or a bare export.xml), streaming, for steps and sleep."""
    zone = ZoneInfo(tz)
    window = _Window.ending(today or datetime.now(zone).date())
    head = _peek(fileobj, 1024)
    if not head:
        raise _empty()
    if not head.startswith(_ZIP_MAGIC):
        if _looks_like_xml(head):
            return _parse_apple_stream(fileobj, _size_of(fileobj), zone, window, progress)
        raise _unknown("")
    with _open_zip(fileobj) as archive:
        return _parse_apple_zip(archive, zone, window, progress)


def parse_takeout_fitbit(fileobj: IO[bytes], tz: str, *, today: date | None = None,
                         progress: Progress | None = None) -> ImportResult:
    """Parse a Google Takeout zip's Fitbit 'Global Export Data' steps and sleep files."""
    zone = ZoneInfo(tz)
    window = _Window.ending(today or datetime.now(zone).date())
    head = _peek(fileobj, 1024)
    if not head:
        raise _empty()
    if not head.startswith(_ZIP_MAGIC):
        raise _unknown("")
    with _open_zip(fileobj) as archive:
        return _parse_takeout_zip(archive, zone, window, progress)


# ---------------------------------------------------------------------------------------------------
# Shared pieces: the date window, refusals, counted reading


@dataclass(frozen=True)
class _Window:
    """The days a file may speak for: the last HISTORY_YEARS years up to the member's today."""

    earliest: date
    latest: date

    @classmethod
    def ending(cls, today: date) -> _Window:
        """The window that ends on today."""
        try:
            earliest = today.replace(year=today.year - HISTORY_YEARS)
        except ValueError:  # 29 February
            earliest = today.replace(year=today.year - HISTORY_YEARS, day=28)
        return cls(earliest, today)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.earliest <= day <= self.latest


def _empty() -> ImportRefused:
    return ImportRefused("empty_file", "This file is empty. Please export your data again and choose the "
                                       "new file.")


def _unknown(filename: str) -> ImportRefused:
    name = f"“{filename}”" if filename else "This file"
    return ImportRefused(
        "not_a_known_export",
        f"{name} doesn't look like an export we know. We can read an Apple Health export (the zip file), "
        "a Google Takeout Fitbit zip, or a CSV file with a date column and a steps or sleep_minutes column.")


def _truncated() -> ImportRefused:
    return ImportRefused("truncated", f"This file seems to be cut short. {_TRY_AGAIN}")


def _no_data() -> ImportRefused:
    return ImportRefused("no_data", "We couldn't find any steps or sleep from the last ten years in this "
                                    "file, so there is nothing to bring in.")


def _peek(fileobj: IO[bytes], size: int) -> bytes:
    fileobj.seek(0)
    head = fileobj.read(size)
    fileobj.seek(0)
    return head


def _size_of(fileobj: IO[bytes]) -> int:
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(0)
    return size


class _Meter:
    """Counts bytes read across one import, refuses past a limit and reports progress."""

    def __init__(self, *, limit: int, refusal: Callable[[], ImportRefused], expected: int = 0,
                 progress: Progress | None = None) -> None:
        self.count = 0
        self._limit = limit
        self._refusal = refusal
        self._expected = expected
        self._progress = progress
        self._reported = 0

    def add(self, size: int) -> None:
        """Count size more bytes; refuse once the limit is passed."""
        self.count += size
        if self.count > self._limit:
            raise self._refusal()
        if self._progress is not None and self.count - self._reported >= PROGRESS_STEP_BYTES:
            self._reported = self.count
            self._progress(self.count, self._expected)


class _CountedReader(io.RawIOBase):
    """A read-only view of a stream that counts every byte actually read (decompressed)."""

    def __init__(self, raw: IO[bytes], *meters: _Meter) -> None:
        super().__init__()
        self._raw = raw
        self._meters = meters

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        for meter in self._meters:
            meter.add(len(data))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        # Leave the caller's stream open: closing is its owner's business.
        self._raw = io.BytesIO()
        super().close()


# ---------------------------------------------------------------------------------------------------
# Zip archives


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OTHER_ARCHIVE_MAGICS = (b"\x1f\x8b", b"7z\xbc\xaf\x27\x1c", b"Rar!", b"BZh", b"\xfd7zXZ")
_OTHER_ARCHIVE_MESSAGE = ("This is a compressed file of a kind we can't open. Please upload the .zip file "
                          "itself (in Google Takeout, choose the .zip file type).")
_END_RECORD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")
_DIRECTORY_ENTRY_SIZE = 46
_READABLE_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def _corrupt(detail: str = "") -> ImportRefused:
    return ImportRefused("corrupt_archive", f"This zip file is damaged{detail}. {_TRY_AGAIN}")


def _too_many_files() -> ImportRefused:
    return ImportRefused("too_many_files", f"This zip file holds far more files than any export we know "
                                           f"(more than {MAX_ZIP_ENTRIES:,}), so we didn't open it.")


def _zip_directory(fileobj: IO[bytes]) -> tuple[int, int]:
    """Find the central directory (offset, size) from the end records, refusing cut-short files."""
    size = _size_of(fileobj)
    tail_size = min(size, _END_RECORD.size + 0xFFFF)
    fileobj.seek(size - tail_size)
    tail = fileobj.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or tail_size - at < _END_RECORD.size:
        raise _truncated()
    end_at = size - tail_size + at
    fields = _END_RECORD.unpack_from(tail, at)
    directory_size, directory_end = int(fields[5]), end_at
    locator_at = at - _ZIP64_LOCATOR.size
    if locator_at >= 0 and tail[locator_at:locator_at + 4] == b"PK\x06\x07":
        record_at = _zip64_end_record(fileobj, end_at, int(_ZIP64_LOCATOR.unpack_from(tail, locator_at)[2]))
        fileobj.seek(record_at)
        record = _ZIP64_END_RECORD.unpack(fileobj.read(_ZIP64_END_RECORD.size))
        directory_size, directory_end = int(record[8]), record_at
    if directory_size > MAX_ZIP_DIRECTORY_BYTES:
        raise _too_many_files()
    if directory_size > directory_end:
        raise _truncated()
    return directory_end - directory_size, directory_size


def _zip64_end_record(fileobj: IO[bytes], end_at: int, declared_at: int) -> int:
    """Where the zip64 end record is: just before its locator, or where the locator says."""
    for record_at in (end_at - _ZIP64_LOCATOR.size - _ZIP64_END_RECORD.size, declared_at):
        if 0 <= record_at <= end_at - _ZIP64_END_RECORD.size:
            fileobj.seek(record_at)
            if fileobj.read(4) == b"PK\x06\x06":
                return record_at
    raise _corrupt()


def _count_zip_entries(fileobj: IO[bytes]) -> int:
    """Count the central directory's entries ourselves, before zipfile builds an object for each."""
    offset, size = _zip_directory(fileobj)
    fileobj.seek(offset)
    directory = fileobj.read(size)
    count = at = 0
    while at < len(directory):
        if directory[at:at + 4] != b"PK\x01\x02" or at + _DIRECTORY_ENTRY_SIZE > len(directory):
            raise _corrupt()
        name, extra, comment = struct.unpack_from("<3H", directory, at + 28)
        at += _DIRECTORY_ENTRY_SIZE + name + extra + comment
        count += 1
        if count > MAX_ZIP_ENTRIES:
            raise _too_many_files()
    return count


@contextmanager
def _archive_errors() -> Iterator[None]:
    """Turn zipfile's failures while reading into refusals the member can act on."""
    try:
        yield
    except EOFError as error:
        raise _truncated() from error
    except (zipfile.BadZipFile, zlib.error, NotImplementedError) as error:
        raise _corrupt() from error


@contextmanager
def _open_zip(fileobj: IO[bytes]) -> Iterator[zipfile.ZipFile]:
    """Open a zip after checking its directory; any refusal leaves the caller's stream open."""
    _count_zip_entries(fileobj)
    fileobj.seek(0)
    with _archive_errors():
        try:
            archive = zipfile.ZipFile(fileobj)
        except (struct.error, ValueError) as error:
            raise _corrupt() from error
    with archive:
        # A directory offset past its real place makes zipfile compute negative member offsets.
        if any(info.header_offset < 0 for info in archive.infolist()):
            raise _corrupt()
        yield archive


def _check_member(info: zipfile.ZipInfo, limit: int, label: str) -> None:
    """Refuse a member that declares itself too big, too compressed, locked or oddly packed."""
    if info.flag_bits & 0x1:
        raise _corrupt(" (it is protected with a password)")
    if info.compress_type not in _READABLE_COMPRESSION:
        raise _corrupt(" (it uses a kind of compression we can't open)")
    if info.file_size > limit:
        raise ImportRefused("too_large", f"{label} is larger than we can take in one go "
                                         f"(at most {_megabytes(limit)}).")
    if info.file_size >= RATIO_CHECK_FROM_BYTES and (
            info.compress_size == 0 or info.file_size / info.compress_size > MAX_COMPRESSION_RATIO):
        raise _zip_bomb()


def _zip_bomb() -> ImportRefused:
    return ImportRefused("zip_bomb", "This zip file unpacks to far more than real exports do, so we didn't "
                                     "open it, to keep everyone's data safe.")


def _megabytes(size: int) -> str:
    if size >= 1024**3:
        return f"{size / 1024**3:g} GB"
    return f"{size / 1000**2:g} MB"


# ---------------------------------------------------------------------------------------------------
# Apple Health


_STEPS_TYPE = "HKQuantityTypeIdentifierStepCount"
_SLEEP_TYPE = "HKCategoryTypeIdentifierSleepAnalysis"
_ASLEEP_VALUES = frozenset({
    "HKCategoryValueSleepAnalysisAsleep",  # before iOS 16
    "HKCategoryValueSleepAnalysisAsleepUnspecified",
    "HKCategoryValueSleepAnalysisAsleepCore",
    "HKCategoryValueSleepAnalysisAsleepDeep",
    "HKCategoryValueSleepAnalysisAsleepREM",
})
_NOT_ASLEEP_VALUES = frozenset({"HKCategoryValueSleepAnalysisInBed", "HKCategoryValueSleepAnalysisAwake"})
_APPLE_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\Z")
_ROOT_START = re.compile(rb"<HealthData[\s>/]")
_EXTERNAL_DOCTYPE = re.compile(rb"<!DOCTYPE\s+[^\s\[>]+\s+(?:SYSTEM|PUBLIC)\b")
# Control characters are not allowed in XML 1.0, yet some Apple exports carry them (\x0b).
_BLANK_CONTROLS = bytes(b if b in b"\t\n\r" or b >= 0x20 else 0x20 for b in range(256))
_EXPAT_CUT_SHORT = frozenset({3, 5, 6})  # no element found, unclosed token, partial character
# expat reads these itself; any other declared encoding goes through Python codecs, where multi-byte,
# unknown or bytes-to-bytes ones fail with errors of their own.
_EXPAT_ENCODINGS = frozenset({b"utf-8", b"us-ascii", b"iso-8859-1", b"utf-16"})
_XML_ENCODING = re.compile(rb"(?:\xef\xbb\xbf)?\s*<\?xml\s[^>]*?\bencoding\s*=\s*[\"']([^\"']*)")
# A year short of the calendar's ends, so that changing zone (or adding SLEEP_GAP) can't overflow.
_USABLE_YEARS = range(datetime.min.year + 1, datetime.max.year)


def _looks_like_xml(head: bytes) -> bool:
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return start.startswith((b"<?xml", b"<!DOCTYPE HealthData", b"<HealthData"))


def _find_apple_xml(archive: zipfile.ZipFile) -> zipfile.ZipInfo | None:
    """The export.xml to read: apple_health_export/export.xml, else the shallowest export.xml."""
    found = [info for info in archive.infolist()
             if not info.is_dir() and info.filename.rsplit("/", 1)[-1] == "export.xml"]
    if not found:
        return None
    return min(found, key=lambda info: (info.filename != "apple_health_export/export.xml",
                                        info.filename.count("/"), info.filename))


def _parse_apple_zip(archive: zipfile.ZipFile, zone: ZoneInfo, window: _Window,
                     progress: Progress | None) -> ImportResult:
    info = _find_apple_xml(archive)
    if info is None:
        raise _unknown("")
    _check_member(info, MAX_APPLE_XML_BYTES, "The health data in this export")
    with _archive_errors(), archive.open(info) as member:
        return _parse_apple_stream(member, info.file_size, zone, window, progress)


def _parse_apple_stream(raw: IO[bytes], expected: int, zone: ZoneInfo, window: _Window,
                        progress: Progress | None) -> ImportResult:
    def too_large() -> ImportRefused:
        return ImportRefused("too_large", "The health data in this export is larger than we can take "
                                          f"(at most {_megabytes(MAX_APPLE_XML_BYTES)}).")

    meter = _Meter(limit=MAX_APPLE_XML_BYTES, refusal=too_large, expected=expected, progress=progress)
    source = _AppleXmlSource(_CountedReader(raw, meter))
    records = _AppleRecords(zone, window)
    # A target parser: expat hands each element's attributes over as it streams by, and no tree is
    # ever built, so memory stays flat however long the export is.
    parser = DefusedXMLParser(target=records, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    fed = quiet_from = events = 0
    try:
        while chunk := source.read(64 * 1024):
            parser.feed(chunk)
            fed += len(chunk)
            if records.events != events:
                events, quiet_from = records.events, fed
            elif fed - quiet_from > MAX_XML_TOKEN_BYTES:
                raise ImportRefused("too_complex", "The health data in this file holds one entry far longer "
                                                   "than real exports have, so we didn't read it.")
        parser.close()
    except DefusedXmlException as error:
        raise _unsafe_xml() from error
    except ParseError as error:
        if error.code in _EXPAT_CUT_SHORT:
            raise _truncated() from error
        line = error.position[0]
        raise ImportRefused("bad_xml", f"The health data in this file is damaged near line {line:,}. "
                                       f"{_TRY_AGAIN}") from error
    steps = _prefer_one_device(records.step_totals)
    sessions, unusable = _apple_sessions(records.sleeps, zone, window)
    kept = [day_steps for day_steps in steps if day_steps.steps <= MAX_DAY_STEPS]
    result = ImportResult(kind=KIND_APPLE_HEALTH, steps=kept, sleep=sessions, rows_read=records.read,
                          rows_skipped=records.skipped + unusable + len(steps) - len(kept))
    if not result.steps and not result.sleep:
        raise _no_data()
    return result


class _AppleRecords:
    """The parser's target: keeps the steps and sleep records that sit directly under HealthData."""

    def __init__(self, zone: ZoneInfo, window: _Window) -> None:
        self.step_totals: dict[tuple[date, str], float] = defaultdict(float)
        self.sleeps: list[tuple[datetime, datetime, bool]] = []
        self.read = 0
        self.skipped = 0
        self.events = 0  # how often expat reported anything: a long silence is one huge token
        self._zone = zone
        self._window = window
        self._depth = 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        """Take one element as it opens; its attributes are all there already."""
        self.events += 1
        self._depth += 1
        if self._depth == 1 and tag != "HealthData":
            raise _unknown("")
        # Records inside a Correlation repeat top-level ones, so only depth 2 counts.
        if self._depth != 2 or tag != "Record":
            return
        kind = attrib.get("type")
        if kind == _STEPS_TYPE:
            self.read += 1
            self.skipped += not _add_apple_steps(attrib, self.step_totals, self._zone, self._window)
        elif kind == _SLEEP_TYPE:
            self.read += 1
            self.skipped += not _add_apple_sleep(attrib, self.sleeps)

    def end(self, tag: str) -> None:
        """Note that an element closed."""
        self.events += 1
        self._depth -= 1

    def data(self, text: str) -> None:
        """Ignore text between elements (having this is cheaper than the parser's default handler)."""
        self.events += 1

    def close(self) -> None:
        """Nothing to build: the totals are read from the attributes."""


def _unsafe_xml() -> ImportRefused:
    return ImportRefused("unsafe_xml", "This file contains XML instructions that real health exports never "
                                       "use, so we didn't read it, to keep everyone's data safe.")


class _AppleXmlSource:
    """Feeds export.xml to the parser: control characters blanked, Apple's own DTD left out.

    Apple's DTD only declares elements, and iOS 16+ writes it malformed, so it is blanked (newlines kept,
    so that error line numbers stay true). A DTD declaring entities is passed through for defusedxml to
    refuse; one pointing outside the file, which expat would silently ignore, is refused here.
    """

    def __init__(self, raw: _CountedReader) -> None:
        self._raw = raw
        self._head = self._read_head()

    def _read_head(self) -> bytes:
        head = b""
        while len(head) < MAX_XML_PROLOG_BYTES and not _ROOT_START.search(head):
            chunk = self._raw.read(64 * 1024)
            if not chunk:
                break
            head += chunk
        head = head.translate(_BLANK_CONTROLS)
        declared = _XML_ENCODING.match(head)
        if declared is not None and declared.group(1).strip().lower() not in _EXPAT_ENCODINGS:
            raise ImportRefused("bad_encoding", "The health data in this file is saved in a text encoding "
                                                f"real exports never use. {_TRY_AGAIN}")
        root = _ROOT_START.search(head)
        doctype = head.find(b"<!DOCTYPE")
        if _EXTERNAL_DOCTYPE.search(head, 0, root.start() if root is not None else len(head)):
            raise _unsafe_xml()
        root_at = root.start() if root is not None else -1
        if 0 <= doctype < root_at and b"<!ENTITY" not in head[doctype:root_at]:
            head = head[:doctype] + b"\n" * head.count(b"\n", doctype, root_at) + head[root_at:]
        return head

    def read(self, size: int = -1) -> bytes:
        """Return the next bytes of the document."""
        if self._head:
            head, self._head = self._head, b""
            return head
        return self._raw.read(size if size > 0 else 64 * 1024).translate(_BLANK_CONTROLS)


@lru_cache(maxsize=128)
def _utc_offset(sign: str, hours: int, minutes: int) -> timezone:
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if sign == "-" else offset)


def _apple_time(text: str | None) -> datetime | None:
    """Read '2026-01-05 08:14:00 -0500' as an aware datetime, or None."""
    match = _APPLE_TIME.match(text or "")
    if match is None:
        return None
    year, month, day, hour, minute, second, sign, off_h, off_m = match.groups()
    if int(year) not in _USABLE_YEARS:
        return None
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        tzinfo=_utc_offset(sign, int(off_h), int(off_m)))
    except ValueError:
        return None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _add_apple_steps(attrib: dict[str, str], totals: dict[tuple[date, str], float], zone: ZoneInfo,
                     window: _Window) -> bool:
    started = _apple_time(attrib.get("startDate"))
    count = _number(attrib.get("value"))
    if started is None or count is None or count < 0:
        return False
    day = started.astimezone(zone).date()
    if day not in window:
        return False
    totals[(day, attrib.get("sourceName") or "")] += count
    return True


def _add_apple_sleep(attrib: dict[str, str], sleeps: list[tuple[datetime, datetime, bool]]) -> bool:
    start = _apple_time(attrib.get("startDate"))
    end = _apple_time(attrib.get("endDate"))
    value = attrib.get("value")
    if start is None or end is None or end <= start:
        return False
    if value in _ASLEEP_VALUES:
        sleeps.append((start.astimezone(UTC), end.astimezone(UTC), True))
    elif value in _NOT_ASLEEP_VALUES:
        sleeps.append((start.astimezone(UTC), end.astimezone(UTC), False))
    else:
        return False
    return True


def _prefer_one_device(totals: dict[tuple[date, str], float]) -> list[DaySteps]:
    """Per day, the device with the most steps: iPhone and Watch count the same walk twice."""
    best: dict[date, float] = {}
    for (day, _source), total in totals.items():
        best[day] = max(best.get(day, 0.0), total)
    return [DaySteps(day=day, steps=round(best[day])) for day in sorted(best)]


def _minutes(span: timedelta) -> int:
    return (int(span.total_seconds()) + 30) // 60


def _asleep_minutes(intervals: list[tuple[datetime, datetime]]) -> int:
    """Minutes covered by the union of the asleep intervals (two devices may record the same sleep)."""
    total = timedelta()
    current: tuple[datetime, datetime] | None = None
    for start, end in sorted(intervals):
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            total += current[1] - current[0]
        current = (start, end)
    if current is not None:
        total += current[1] - current[0]
    return _minutes(total)


def _apple_sessions(sleeps: list[tuple[datetime, datetime, bool]], zone: ZoneInfo,
                    window: _Window) -> tuple[list[SleepSession], int]:
    """Merge one night's records (UTC) into one session; return the sessions and the records left out."""
    clusters: list[list[tuple[datetime, datetime, bool]]] = []
    cluster_end = datetime.min.replace(tzinfo=UTC)
    for record in sorted(sleeps):
        if clusters and record[0] <= cluster_end + SLEEP_GAP:
            clusters[-1].append(record)
        else:
            clusters.append([record])
            cluster_end = record[1]
        cluster_end = max(cluster_end, record[1])
    sessions: list[SleepSession] = []
    skipped = 0
    for cluster in clusters:
        start = min(record[0] for record in cluster)
        end = max(record[1] for record in cluster)
        in_bed = _minutes(end - start)
        if in_bed > MAX_NIGHT_MINUTES or end.astimezone(zone).date() not in window:
            skipped += len(cluster)
            continue
        asleep = _asleep_minutes([(s, e) for s, e, is_asleep in cluster if is_asleep])
        sessions.append(SleepSession(start=start, end=end, minutes_asleep=asleep, minutes_in_bed=in_bed,
                                     source_id=f"apple:{start:%Y-%m-%dT%H:%M:%SZ}"))
    return _mark_naps(sessions, zone), skipped


def _mark_naps(sessions: list[SleepSession], zone: ZoneInfo) -> list[SleepSession]:
    """The longest sleep ending on a local date is its main sleep, unless it is a short daytime one."""
    longest: dict[date, SleepSession] = {}
    for session in sessions:
        night = session.end.astimezone(zone).date()
        if night not in longest or session.minutes_in_bed > longest[night].minutes_in_bed:
            longest[night] = session
    marked = []
    for session in sessions:
        starts_by_day = session.start.astimezone(zone).hour in NAP_HOURS
        daytime = session.minutes_in_bed < NAP_MAX_MINUTES and starts_by_day
        is_main = longest[session.end.astimezone(zone).date()] is session and not daytime
        marked.append(replace(session, is_main=is_main))
    return marked


# ---------------------------------------------------------------------------------------------------
# Google Takeout (Fitbit)


_TAKEOUT_MEMBER = re.compile(r"(?:^|/)Global Export Data/(steps|sleep)-\d{4}-\d{2}-\d{2}\.json\Z")
_PLAIN_JSON_STRING = re.compile(r'"[^"]*"')
_QUOTE_OR_BACKSLASH = re.compile(r'["\\]')
_JSON_BRACKET = re.compile(r"[\[\]{}]")
_FITBIT_MINUTE = re.compile(r"(\d\d)/(\d\d)/(\d\d) \d\d:\d\d:\d\d\Z")


def _takeout_members(archive: zipfile.ZipFile) -> list[tuple[str, zipfile.ZipInfo]]:
    """The steps and sleep files of the Fitbit 'Global Export Data' folder, in name order."""
    found = []
    for info in archive.infolist():
        match = _TAKEOUT_MEMBER.search(info.filename)
        if match and not info.is_dir():
            found.append((match.group(1), info))
    return sorted(found, key=lambda pair: pair[1].filename)


def _parse_takeout_zip(archive: zipfile.ZipFile, zone: ZoneInfo, window: _Window,
                       progress: Progress | None) -> ImportResult:
    members = _takeout_members(archive)
    if not members:
        if any("Global Export Data/" in name for name in archive.namelist()):
            raise _no_data()
        raise _unknown("")
    for _, info in members:
        _check_member(info, MAX_JSON_FILE_BYTES, f"The file {_short_name(info)}")
    declared = sum(info.file_size for _, info in members)
    if declared > MAX_TAKEOUT_JSON_BYTES:
        raise _takeout_too_large()
    overall = _Meter(limit=MAX_TAKEOUT_JSON_BYTES, refusal=_takeout_too_large, expected=declared,
                     progress=progress)
    step_days: dict[date, int] = defaultdict(int)
    sleeps: dict[str, SleepSession] = {}
    read = skipped = 0
    for kind, info in members:
        for entry in _json_entries(archive, info, overall):
            read += 1
            if kind == "steps":
                skipped += not _add_fitbit_minute(entry, step_days, window)
            else:
                skipped += not _add_fitbit_sleep(entry, sleeps, zone, window)
    steps = [DaySteps(day=day, steps=total) for day, total in sorted(step_days.items())
             if total <= MAX_DAY_STEPS]
    skipped += len(step_days) - len(steps)
    result = ImportResult(kind=KIND_FITBIT_TAKEOUT, steps=steps,
                          sleep=sorted(sleeps.values(), key=lambda s: (s.start, s.source_id)),
                          rows_read=read, rows_skipped=skipped)
    if not result.steps and not result.sleep:
        raise _no_data()
    return result


def _short_name(info: zipfile.ZipInfo) -> str:
    return f"“{info.filename.rsplit('/', 1)[-1]}”"


def _takeout_too_large() -> ImportRefused:
    return ImportRefused("too_large", "The Fitbit files in this archive are larger than we can take in one "
                                      f"go (at most {_megabytes(MAX_TAKEOUT_JSON_BYTES)} together).")


def _json_entries(archive: zipfile.ZipFile, info: zipfile.ZipInfo, overall: _Meter) -> Iterator[object]:
    """Yield the entries of a JSON list one at a time, after checking its size and nesting."""
    name = _short_name(info)
    limit = _megabytes(MAX_JSON_FILE_BYTES)
    per_file = _Meter(limit=MAX_JSON_FILE_BYTES, refusal=lambda: ImportRefused(
        "too_large", f"The file {name} is larger than we can take (at most {limit})."))
    with _archive_errors(), archive.open(info) as member:
        data = _CountedReader(member, per_file, overall).read()
    damaged = ImportRefused("bad_json", f"The file {name} in this archive is damaged. {_TRY_AGAIN}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise damaged from error
    del data
    _check_json_shape(text, name)
    decoder = json.JSONDecoder()
    at = _skip_space(text, 0)
    if not text.startswith("[", at):
        raise damaged
    at = _skip_space(text, at + 1)
    if text.startswith("]", at):
        at += 1
    else:
        while True:
            try:
                entry, at = decoder.raw_decode(text, at)
            except ValueError as error:
                raise damaged from error
            except RecursionError as error:  # the shape check should have caught this already
                raise _too_complex(name) from error
            yield entry
            at = _skip_space(text, at)
            if text.startswith(",", at):
                at = _skip_space(text, at + 1)
                continue
            if not text.startswith("]", at):
                raise damaged
            at += 1
            break
    if _skip_space(text, at) != len(text):
        raise damaged


def _skip_space(text: str, at: int) -> int:
    """The position of the first non-whitespace character at or after at."""
    while at < len(text) and text[at] in " \t\n\r":
        at += 1
    return at


def _too_complex(name: str) -> ImportRefused:
    return ImportRefused("too_complex", f"The file {name} in this archive is built in a way real Fitbit "
                                        "exports never are, so we didn't read it.")


def _json_skeleton(text: str) -> str:
    """The JSON text with each string replaced by 0, so brackets in strings don't count; linear time."""
    if "\\" not in text:
        return _PLAIN_JSON_STRING.sub("0", text)
    # With escapes about, walk the quotes and backslashes once (a regex could backtrack quadratically).
    pieces: list[str] = []
    outside_from = 0
    in_string = False
    escaped_at = -1
    for match in _QUOTE_OR_BACKSLASH.finditer(text):
        at = match.start()
        if at == escaped_at:
            continue
        if text[at] == "\\":
            escaped_at = at + 1 if in_string else -1
        elif in_string:
            in_string = False
            outside_from = at + 1
            pieces.append("0")
        else:
            pieces.append(text[outside_from:at])
            in_string = True
    if not in_string:
        pieces.append(text[outside_from:])
    return "".join(pieces)


def _check_json_shape(text: str, name: str) -> None:
    """Refuse JSON nested deeper, or with single entries bigger, than real exports ever have."""
    too_complex = _too_complex(name)
    skeleton = _json_skeleton(text)
    depth = 0
    entry_start = 0
    for match in _JSON_BRACKET.finditer(skeleton):
        if match.group() in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise too_complex
            if depth == 2:
                entry_start = match.start()
        else:
            depth -= 1
            if depth == 1 and match.start() - entry_start > MAX_JSON_ENTRY_CHARS:
                raise too_complex


def _add_fitbit_minute(entry: object, step_days: dict[date, int], window: _Window) -> bool:
    """Add one minute of steps ({"dateTime": "01/05/26 08:14:00", "value": "12"}, local time)."""
    if not isinstance(entry, dict):
        return False
    stamp, value = entry.get("dateTime"), entry.get("value")
    day = _fitbit_day(stamp) if isinstance(stamp, str) else None
    try:
        count = int(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else -1
    except ValueError:
        return False
    if day is None or count < 0 or day not in window:
        return False
    step_days[day] += count
    return True


def _fitbit_day(stamp: str) -> date | None:
    """The local day of '01/05/26 08:14:00' (month/day/two-digit year), or of an ISO timestamp."""
    if _FITBIT_MINUTE.match(stamp):
        return _fitbit_calendar_day(stamp[:8])
    try:
        return datetime.fromisoformat(stamp).date()
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _fitbit_calendar_day(month_day_year: str) -> date | None:
    month, day, year = month_day_year.split("/")
    try:
        return date(2000 + int(year), int(month), int(day))
    except ValueError:
        return None


def _add_fitbit_sleep(entry: object, sleeps: dict[str, SleepSession], zone: ZoneInfo,
                      window: _Window) -> bool:
    """Add one v1.2 sleep log; times are local to the member, without a zone."""
    if not isinstance(entry, dict):
        return False
    log_id = entry.get("logId")
    start = _local_time(entry.get("startTime"), zone)
    end = _local_time(entry.get("endTime"), zone)
    asleep = _whole(entry.get("minutesAsleep"))
    in_bed = _whole(entry.get("timeInBed"))
    main = entry.get("mainSleep", entry.get("isMainSleep", True))
    if (not isinstance(log_id, (int, str)) or isinstance(log_id, bool) or start is None or end is None
            or asleep is None or in_bed is None or not isinstance(main, bool)):
        return False
    if not (start < end and 0 <= asleep <= in_bed <= MAX_NIGHT_MINUTES and end.date() in window):
        return False
    source_id = f"fitbit:{log_id}"
    sleeps.setdefault(source_id, SleepSession(start=start.astimezone(UTC), end=end.astimezone(UTC),
                                              minutes_asleep=asleep,
                                              minutes_in_bed=in_bed, is_main=main, source_id=source_id))
    return True


def _local_time(value: object, zone: tzinfo) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.year not in _USABLE_YEARS:
        return None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)


def _whole(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    # ASCII only, and short: "²".isdigit() is true, and int() refuses over 4,300 digits.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    return None


# ---------------------------------------------------------------------------------------------------
# CSV


_CSV_VALUE_COLUMNS = ("steps", "sleep_minutes")
_CSV_COLUMNS = frozenset({"date", "steps", "sleep_minutes", "bedtime", "wake_time"})
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_WHOLE_NUMBER = re.compile(r"\d{1,9}\Z")


def _looks_like_csv_header(head: bytes) -> bool:
    first = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", "replace")
    names = {_column_name(name) for name in re.split(r"[,;]", first)}
    return "date" in names and bool(names & {"steps", "sleep_minutes", "bedtime"})


def _column_name(text: str) -> str:
    return text.strip().strip('"').strip().lower().replace(" ", "_")


def _parse_csv_stream(fileobj: IO[bytes], zone: ZoneInfo, window: _Window,
                      progress: Progress | None) -> ImportResult:
    size = _size_of(fileobj)
    if size == 0:
        raise _empty()
    too_large = ImportRefused("too_large", f"This CSV file is larger than we can take "
                                           f"(at most {_megabytes(MAX_CSV_BYTES)}). Please split it into "
                                           "smaller files.")
    if size > MAX_CSV_BYTES:
        raise too_large
    meter = _Meter(limit=MAX_CSV_BYTES, refusal=lambda: too_large, expected=size, progress=progress)
    text = io.TextIOWrapper(io.BufferedReader(_CountedReader(fileobj, meter)), encoding="utf-8-sig",
                            newline="")
    rows = _CsvRows(zone, window)
    line = 1
    try:
        first = text.readline()
        delimiter = ";" if first.count(";") > first.count(",") else ","
        reader = csv.reader(itertools.chain([first], text), delimiter=delimiter)
        header = [_column_name(name) for name in next(reader, [])]
        rows.check_header(header)
        for row in reader:
            line = reader.line_num
            rows.add(line, header, row)
    except UnicodeDecodeError as error:
        raise ImportRefused("bad_encoding", f"Row {line + 1}: this file isn't saved as UTF-8 text. In your "
                                            "spreadsheet, choose “CSV UTF-8” when saving, then try "
                                            "again.") from error
    except csv.Error as error:
        raise ImportRefused("bad_csv_row", f"Row {line + 1} can't be read as CSV ({error}). Please check "
                                           "that row and try again.") from error
    finally:
        text.detach()  # leave the caller's file object open
    return rows.result()


class _CsvRows:
    """Checks and collects CSV rows; any bad row refuses the whole file."""

    def __init__(self, zone: ZoneInfo, window: _Window) -> None:
        self._zone = zone
        self._window = window
        self._seen: dict[date, int] = {}
        self._steps: list[DaySteps] = []
        self._sleep: list[SleepSession] = []
        self._untimed: list[UntimedSleep] = []
        self._read = 0
        self._skipped = 0

    @staticmethod
    def check_header(header: list[str]) -> None:
        """Refuse a first row that doesn't name a date and at least one value column."""
        names = set(header)
        problem = ""
        if len(names) != len(header):
            problem = "a column is named twice"
        elif "date" not in names:
            problem = "there is no date column"
        elif not names & {"steps", "sleep_minutes", "bedtime", "wake_time"}:
            problem = "there is no steps or sleep_minutes column"
        elif ("bedtime" in names) != ("wake_time" in names):
            problem = "bedtime and wake_time must come together"
        if problem:
            raise ImportRefused("bad_csv_header", f"The first row should name the columns, like "
                                                  f"“date,steps” or “date,sleep_minutes”, but {problem}.")

    def add(self, line: int, header: list[str], row: list[str]) -> None:
        """Check one row and keep its values."""
        if not any(cell.strip() for cell in row):
            return
        self._read += 1
        if len(row) != len(header):
            raise ImportRefused("bad_csv_row", f"Row {line} has {len(row)} cells, but the first row names "
                                               f"{len(header)} columns. Please check for a missing or extra "
                                               "comma.")
        cells = {name: cell.strip() for name, cell in zip(header, row, strict=True) if name in _CSV_COLUMNS}
        day = self._day(line, cells["date"])
        steps = self._whole(line, cells.get("steps", ""), "steps", MAX_DAY_STEPS)
        minutes = self._whole(line, cells.get("sleep_minutes", ""), "minutes of sleep", MAX_NIGHT_MINUTES)
        bedtime, wake_time = cells.get("bedtime", ""), cells.get("wake_time", "")
        if steps is None and minutes is None and not bedtime and not wake_time:
            self._skipped += 1
            return
        if steps is not None:
            self._steps.append(DaySteps(day=day, steps=steps))
        if bedtime or wake_time:
            self._sleep.append(self._session(line, day, bedtime, wake_time, minutes))
        elif minutes is not None:
            self._untimed.append(UntimedSleep(night=day, minutes_asleep=minutes))

    def _day(self, line: int, text: str) -> date:
        try:
            if not _ISO_DAY.match(text):
                raise ValueError(text)
            day = date.fromisoformat(text)
        except ValueError:
            raise ImportRefused("bad_date", f"Row {line}: the date “{text}” is not a real date. Please write "
                                            "dates like 2026-01-31.") from None
        if day > self._window.latest:
            raise ImportRefused("date_out_of_range", f"Row {line}: {day.isoformat()} is in the future, so "
                                                     "there is nothing to bring in for it yet.")
        if day < self._window.earliest:
            raise ImportRefused("date_out_of_range", f"Row {line}: {day.isoformat()} is more than "
                                                     f"{HISTORY_YEARS} years ago. We can only bring in the "
                                                     f"last {HISTORY_YEARS} years.")
        if day in self._seen:
            raise ImportRefused("duplicate_date", f"Row {line}: {day.isoformat()} already appears on row "
                                                  f"{self._seen[day]}. Please keep one row per day.")
        self._seen[day] = line
        return day

    @staticmethod
    def _whole(line: int, text: str, what: str, most: int) -> int | None:
        if not text:
            return None
        if not _WHOLE_NUMBER.match(text):
            raise ImportRefused("bad_value", f"Row {line}: “{text}” is not a whole number of {what}.")
        value = int(text)
        if value > most:
            raise ImportRefused("value_out_of_range", f"Row {line}: {value:,} {what} is more than we can "
                                                      f"accept for one day (at most {most:,}).")
        return value

    def _session(self, line: int, day: date, bedtime: str, wake_time: str,
                 minutes: int | None) -> SleepSession:
        if not bedtime or not wake_time:
            raise ImportRefused("bad_sleep_times", f"Row {line}: please give both a bedtime and a wake time, "
                                                   "or leave both empty.")
        wake = self._moment(line, day, wake_time, "wake time")
        start = self._moment(line, day, bedtime, "bedtime")
        if _ISO_DAY.match(bedtime[:10]) is None and start >= wake:
            # A bedtime given as a time of day, later than the wake time: bed the evening before.
            start = self._moment(line, day - timedelta(days=1), bedtime, "bedtime")
        if abs((wake.date() - day).days) > 1:
            raise ImportRefused("bad_sleep_times", f"Row {line}: the wake time “{wake_time}” is more than a "
                                                   f"day away from {day.isoformat()}.")
        if start >= wake:
            raise ImportRefused("bad_sleep_times", f"Row {line}: the wake time “{wake_time}” is not after "
                                                   f"the bedtime “{bedtime}”.")
        in_bed = _minutes(wake.astimezone(UTC) - start.astimezone(UTC))
        if in_bed > MAX_NIGHT_MINUTES:
            raise ImportRefused("bad_sleep_times", f"Row {line}: from “{bedtime}” to “{wake_time}” is longer "
                                                   "than a whole day.")
        asleep = in_bed if minutes is None else minutes
        if asleep > in_bed:
            raise ImportRefused("bad_sleep_times", f"Row {line}: {asleep:,} minutes of sleep don't fit "
                                                   f"between “{bedtime}” and “{wake_time}”.")
        return SleepSession(start=start.astimezone(UTC), end=wake.astimezone(UTC), minutes_asleep=asleep,
                            minutes_in_bed=in_bed,
                            source_id=f"csv:{day.isoformat()}")

    def _moment(self, line: int, day: date, text: str, what: str) -> datetime:
        """A local ISO date-time, or a time of day taken on the given day."""
        try:
            if _ISO_DAY.match(text[:10]):
                moment = datetime.fromisoformat(text)
            else:
                moment = datetime.combine(day, time.fromisoformat(text))
            if moment.year not in _USABLE_YEARS:
                raise ValueError(text)
        except ValueError:
            raise ImportRefused("bad_sleep_times", f"Row {line}: the {what} “{text}” is not a time we can "
                                                   "read. Please write it like 2026-01-31T23:15 or "
                                                   "23:15.") from None
        if moment.tzinfo is None:
            return moment.replace(tzinfo=self._zone)
        return moment.astimezone(self._zone)

    def result(self) -> ImportResult:
        """The collected rows, or a refusal when nothing was in them."""
        if not self._steps and not self._sleep and not self._untimed:
            raise _no_data()
        return ImportResult(kind=KIND_CSV, steps=sorted(self._steps, key=lambda s: s.day),
                            sleep=sorted(self._sleep, key=lambda s: s.start),
                            untimed_sleep=sorted(self._untimed, key=lambda s: s.night),
                            rows_read=self._read, rows_skipped=self._skipped)
