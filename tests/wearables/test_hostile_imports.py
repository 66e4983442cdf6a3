"""Hostile files: fuzzed and hand-made exports are refused cleanly or read within bounds, in little
memory, without touching the network or the disk, and through the upload page nothing is written."""

from __future__ import annotations

import io
import json
import random
import socket
import struct
import sys
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale, gettext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlalchemy import func, select
from sqlmodel import Session, col

from app.accounts.models import Cohort, User
from tests import factories
from tests.factories import csrf_token, sign_in
from wearables.importers import (
    HISTORY_YEARS,
    MAX_DAY_STEPS,
    MAX_NIGHT_MINUTES,
    REASON_CODES,
    ImportRefused,
    ImportResult,
    detect_and_parse,
)
from wearables.imports import REFUSALS
from wearables.models import DailySteps, ImportRun, ImportStatus, SleepNight

SAMPLES = Path(__file__).parent / "samples"
TZ = "America/New_York"
TODAY = date(2026, 6, 1)
APPLE_XML = "apple_health_export/export.xml"
GLOBAL_EXPORT = "Takeout/Fitbit/Global Export Data/"
KIB, MIB, GIB = 1024, 1024**2, 1024**3
# Bounded: the same examples on every run, no example database, no per-example deadline.
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=60,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------------------------------------------
# Builders and checks


def _zip(files: dict[str, str | bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _apple_xml(records: str, prolog: str = '<?xml version="1.0" encoding="UTF-8"?>\n') -> str:
    return prolog + '<HealthData locale="en_US">\n' + records + "</HealthData>\n"


def _apple_record(start: str, end: str, value: str, kind: str = "HKQuantityTypeIdentifierStepCount") -> str:
    return (f' <Record type="{kind}" sourceName="Watch" startDate="{start}" endDate="{end}" '
            f'value="{value}"/>\n')


def _takeout(files: dict[str, str | bytes]) -> bytes:
    return _zip({GLOBAL_EXPORT + name: content for name, content in files.items()})


def _sleep_log(**changes: object) -> dict[str, object]:
    entry: dict[str, object] = {"logId": 1, "startTime": "2026-01-04T23:00:00.000",
                                "endTime": "2026-01-05T07:00:00.000", "minutesAsleep": 400,
                                "timeInBed": 480, "mainSleep": True}
    entry.update(changes)
    return entry


@dataclass(frozen=True)
class _Entry:
    """One member of a hand-made zip: its bytes as stored, and what its headers claim."""

    name: str
    data: bytes
    size: int  # the unpacked size the headers declare
    method: int = zipfile.ZIP_DEFLATED
    crc: int = 0
    at: int | None = None  # the offset of an earlier local header to share (overlapping entries)


def _raw_zip(entries: list[_Entry]) -> bytes:
    """A zip64 archive written by hand, so that its headers may say what a forger wants."""
    out = bytearray()
    central = bytearray()
    for entry in entries:
        name = entry.name.encode()
        if entry.at is None:
            at = len(out)
            local_extra = struct.pack("<HHQQ", 1, 16, entry.size, len(entry.data))
            out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, entry.method, 0, 0x21, entry.crc,
                               0xFFFFFFFF, 0xFFFFFFFF, len(name), len(local_extra)) + name + local_extra
            out += entry.data
        else:
            at = entry.at
        extra = struct.pack("<HHQQQ", 1, 24, entry.size, len(entry.data), at)
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 45, 45, 0, entry.method, 0, 0x21,
                               entry.crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra), 0, 0, 0, 0,
                               0xFFFFFFFF) + name + extra
    directory_at = len(out)
    out += central
    record_at = len(out)
    out += struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, len(entries), len(entries),
                       len(central), directory_at)
    out += struct.pack("<4sLQL", b"PK\x06\x07", 0, record_at, 1)
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return bytes(out)


def _deflated(size: int, block: bytes = bytes(MIB)) -> bytes:
    """Raw deflate of `size` bytes (whole blocks) built in milliseconds: each fully flushed block
    compresses to the same bytes, so one is made and repeated (1 GiB of zeros: about 1 MB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    once = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    ending = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    return once * (size // len(block)) + ending


def _bomb(name: str, size: int, *, declared: int | None = None) -> bytes:
    """A zip whose one member unpacks to `size` bytes of zeros (its checksum is never reached)."""
    return _raw_zip([_Entry(name, _deflated(size), size if declared is None else declared)])


Outcome = ImportResult | ImportRefused


def _parse(data: bytes, filename: str = "upload") -> Outcome:
    """Parse as the import job does; anything but a result or a refusal fails the test."""
    try:
        return detect_and_parse(io.BytesIO(data), filename, TZ, today=TODAY)
    except ImportRefused as refusal:
        return refusal


def _refusal(data: bytes) -> ImportRefused:
    outcome = _parse(data)
    assert isinstance(outcome, ImportRefused), outcome
    return outcome


def _check(outcome: Outcome) -> None:
    """A refusal the member can read in their language, or a result within what is possible."""
    if isinstance(outcome, ImportRefused):
        assert outcome.reason_code in REASON_CODES and outcome.reason_code in REFUSALS
        assert outcome.message.strip()
        return
    earliest = TODAY.replace(year=TODAY.year - HISTORY_YEARS)
    assert 0 <= outcome.rows_skipped <= outcome.rows_read
    for day in outcome.steps:
        assert earliest <= day.day <= TODAY and 0 <= day.steps <= MAX_DAY_STEPS
    for night in outcome.sleep:
        assert night.start.tzinfo is not None and night.start.utcoffset() == UTC.utcoffset(None)
        assert night.start < night.end
        assert 0 <= night.minutes_asleep <= night.minutes_in_bed <= MAX_NIGHT_MINUTES
    for untimed in outcome.untimed_sleep:
        assert earliest <= untimed.night <= TODAY and 0 <= untimed.minutes_asleep <= MAX_NIGHT_MINUTES


@contextmanager
def _peak_memory(limit: int) -> Iterator[None]:
    """Fail if the Python heap (zlib's and expat's buffers included) grows past `limit` bytes."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        yield
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit, f"peak {peak / MIB:.1f} MiB"


# What the process opens or connects to while parsing (audit hooks cannot be removed, so one
# hook, installed once, records only while a test listens).
_AUDITED: list[tuple[str, str]] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _AUDITED is not None and event in ("open", "socket.connect", "urllib.Request",
                                          "http.client.connect"):
        _AUDITED.append((event, repr(args[:2])))


sys.addaudithook(_audit)


@contextmanager
def _audited() -> Iterator[list[tuple[str, str]]]:
    global _AUDITED
    _AUDITED = seen = []
    try:
        yield seen
    finally:
        _AUDITED = None


@pytest.fixture
def listener() -> Iterator[tuple[int, Callable[[], int]]]:
    """A real TCP port on loopback that counts who connects to it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)

        def connections() -> int:
            count = 0
            while True:
                try:
                    accepted, _ = server.accept()
                except BlockingIOError:
                    return count
                accepted.close()
                count += 1

        yield server.getsockname()[1], connections


# ---------------------------------------------------------------------------------------------------
# Fuzzed: whatever arrives, a result within bounds or a refusal, never anything else


_APPLE_SAMPLE = (SAMPLES / "apple_export.xml").read_bytes()
_SEEDS = {
    "apple zip": _zip({APPLE_XML: _APPLE_SAMPLE}),
    "apple stored zip": _zip({APPLE_XML: _APPLE_SAMPLE}, zipfile.ZIP_STORED),
    "bare export.xml": _APPLE_SAMPLE,
    "takeout zip": _takeout({path.name: path.read_bytes()
                             for path in sorted((SAMPLES / "takeout").iterdir())}),
    "csv": (SAMPLES / "steps_and_sleep.csv").read_bytes(),
}
_PREFIXES = [b"", b"PK\x03\x04", b"PK\x05\x06", b"<?xml ", b"<HealthData>", b"date,steps\n",
             b"\xef\xbb\xbfdate;sleep_minutes\r\n", b"\x1f\x8b"]


@FUZZ
@given(st.sampled_from(_PREFIXES), st.binary(max_size=4096))
def test_any_bytes_at_all_give_a_result_or_a_clean_refusal(prefix: bytes, tail: bytes) -> None:
    _check(_parse(prefix + tail))


_mutation = st.tuples(st.sampled_from(["flip", "cut", "insert", "delete"]),
                      st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=16))


def _mutate(data: bytes, mutations: list[tuple[str, float, bytes]]) -> bytes:
    for kind, where, chunk in mutations:
        at = int(where * len(data)) if data else 0
        if kind == "flip":
            flipped = bytes(b ^ c for b, c in zip(data[at:at + len(chunk)], chunk, strict=False))
            data = data[:at] + flipped + data[at + len(flipped):]
        elif kind == "cut":
            data = data[:at]
        elif kind == "insert":
            data = data[:at] + chunk + data[at:]
        else:
            data = data[:at] + data[at + len(chunk):]
    return data


@FUZZ
@given(st.sampled_from(sorted(_SEEDS)), st.lists(_mutation, min_size=1, max_size=4))
def test_damaged_real_exports_give_a_result_or_a_clean_refusal(
        seed: str, mutations: list[tuple[str, float, bytes]]) -> None:
    _check(_parse(_mutate(_SEEDS[seed], mutations)))


def _zip_with_forged_header(seed: str, field: int, value: int, directory: bool) -> bytes:
    """A real export whose local or central header, or end record, says `value` in one field."""
    data = bytearray(_SEEDS[seed])
    if directory:
        at = data.rfind(b"PK\x05\x06")
        fields = [(8, "<H"), (10, "<H"), (12, "<L"), (16, "<L")]
    else:
        at = data.find(b"PK\x01\x02")
        fields = [(10, "<H"), (16, "<L"), (20, "<L"), (24, "<L"), (28, "<H"), (30, "<H"), (42, "<L")]
    offset, shape = fields[field % len(fields)]
    struct.pack_into(shape, data, at + offset, value % (1 << (8 * struct.calcsize(shape))))
    return bytes(data)


@FUZZ
@given(st.sampled_from(["apple zip", "apple stored zip", "takeout zip"]), st.integers(0, 20),
       st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 0xFFFF, 0xFFFFFFFF, 2**31])),
       st.booleans())
def test_zip_headers_that_lie_about_sizes_offsets_or_methods_are_refused_cleanly(
        seed: str, field: int, value: int, directory: bool) -> None:
    _check(_parse(_zip_with_forged_header(seed, field, value, directory)))


_ABSURD_TEXT = ["", "NaN", "nan", "inf", "-inf", "-5", "1e12", "1000000000000", "9" * 5000, "²", "٣٤",
                "0x10", " 12 ", "12.5", "=1+2", "=cmd|' /C calc'!A0", "@SUM(A1)", "\x00", "<script>",
                "9999-12-31", "0001-01-01", "2026-02-30", "9999-12-31T23:59:59-14:00",
                "0001-01-01T00:00:00+14:00", "2026-01-05T23:00:00.000", "01/05/26 08:14:00",
                "99/99/99 99:99:99", "9999-12-31 23:59:59 -2359", "0001-01-01 00:00:00 +2359",
                "2026-01-05 08:00:00 -0500", "2026-01-05 08:00:00 +9900"]
_absurd = st.one_of(st.sampled_from(_ABSURD_TEXT), st.text(max_size=40))
_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(10**30), 10**30),
                         st.floats(allow_nan=False, allow_infinity=False), _absurd)
_json_value = st.recursive(_json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
_step_minute = st.fixed_dictionaries({"dateTime": st.one_of(_absurd, _json_scalar),
                                      "value": st.one_of(_absurd, _json_scalar)})
_sleep_entry = st.builds(lambda changes: _sleep_log(**changes), st.dictionaries(
    st.sampled_from(["logId", "startTime", "endTime", "minutesAsleep", "timeInBed", "mainSleep",
                     "isMainSleep"]), st.one_of(_absurd, _json_scalar), max_size=4))


@FUZZ
@given(st.lists(st.one_of(_step_minute, _json_value), max_size=12),
       st.lists(st.one_of(_sleep_entry, _json_value), max_size=8))
def test_takeout_entries_with_absurd_values_are_skipped_and_counted(
        steps: list[object], sleeps: list[object]) -> None:
    outcome = _parse(_takeout({"steps-2026-01-04.json": json.dumps(steps),
                               "sleep-2026-01-04.json": json.dumps(sleeps)}))
    _check(outcome)
    if isinstance(outcome, ImportResult):
        assert outcome.rows_read == len(steps) + len(sleeps)
    else:
        assert outcome.reason_code == "no_data", outcome.message


_xml_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\ufffe\uffff"),
                    max_size=40)
_attribute = st.one_of(st.sampled_from(_ABSURD_TEXT), _xml_text).map(
    lambda text: str(escape(text.replace("\x00", ""))))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["HKQuantityTypeIdentifierStepCount",
                                           "HKCategoryTypeIdentifierSleepAnalysis"]),
                          _attribute, _attribute,
                          st.one_of(_attribute, st.sampled_from(["HKCategoryValueSleepAnalysisAsleepCore",
                                                                 "HKCategoryValueSleepAnalysisInBed"]))),
                max_size=12))
def test_apple_records_with_absurd_values_are_skipped_and_counted(
        records: list[tuple[str, str, str, str]]) -> None:
    good = _apple_record("2026-01-05 08:00:00 -0500", "2026-01-05 08:10:00 -0500", "250")
    xml = _apple_xml(good + "".join(_apple_record(start, end, value, kind)
                                    for kind, start, end, value in records))
    outcome = _parse(_zip({APPLE_XML: xml}))
    _check(outcome)
    assert isinstance(outcome, ImportResult), outcome.message
    assert outcome.rows_read == 1 + len(records)
    assert date(2026, 1, 5) in {day.day for day in outcome.steps}


_cell = st.one_of(_absurd, st.integers(-(10**13), 10**13).map(str), st.dates().map(date.isoformat))


@FUZZ
@given(st.lists(st.lists(_cell, min_size=1, max_size=6), max_size=8), st.sampled_from([",", ";"]),
       st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "mixed"]),
       st.sampled_from(["\n", "\r\n", "\r"]))
def test_a_csv_of_anything_in_any_encoding_is_read_strictly_or_refused_whole(
        rows: list[list[str]], delimiter: str, encoding: str, newline: str) -> None:
    lines = [delimiter.join(["date", "steps", "sleep_minutes", "bedtime", "wake_time"])]
    lines += [delimiter.join(f'"{cell}"' if delimiter in cell else cell for cell in row) for row in rows]
    if encoding == "mixed":  # a spreadsheet that saved some rows one way and some another
        data = b"".join((line + newline).encode("utf-8" if number % 2 else "latin-1", "replace")
                        for number, line in enumerate(lines))
    else:
        data = (newline.join(lines) + newline).encode(encoding, "replace")
    _check(_parse(data, "steps.csv"))


# ---------------------------------------------------------------------------------------------------
# Absurd values, by hand


@pytest.mark.parametrize(("steps", "code"), [
    ("-5", "bad_value"), ("1000000000000", "bad_value"), ("100001", "value_out_of_range"),
    ("NaN", "bad_value"), ("12.5", "bad_value"), ("=cmd|' /C calc'!A0", "bad_value"),
])
def test_a_typed_csv_with_an_impossible_number_is_refused_whole(steps: str, code: str) -> None:
    refusal = _refusal(f"date,steps\n2026-01-04,4000\n2026-01-05,{steps}\n".encode())
    assert refusal.reason_code == code


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "2026-02-30", "+2026-01-05"])
def test_a_typed_csv_with_an_impossible_date_is_refused_whole(day: str) -> None:
    assert _refusal(f"date,steps\n{day},4000\n".encode()).reason_code in ("date_out_of_range", "bad_date")


@pytest.mark.parametrize(("bedtime", "wake_time"), [
    ("0001-01-01T00:00+14:00", "07:00"), ("23:00", "9999-12-31T23:59-14:00"),
    ("0001-01-01T00:00", "07:00"), ("23:00", "9999-12-31T23:59"),
])
def test_a_typed_csv_bedtime_at_the_edge_of_the_calendar_is_refused_as_bad_sleep_times(
        bedtime: str, wake_time: str) -> None:
    data = f"date,sleep_minutes,bedtime,wake_time\n2026-01-05,400,{bedtime},{wake_time}\n".encode()
    assert _refusal(data).reason_code == "bad_sleep_times"


@pytest.mark.parametrize(("start", "end"), [
    ("9999-12-31 23:00:00 -0500", "9999-12-31 23:30:00 -0500"),
    ("0001-01-01 00:00:00 +0500", "0001-01-01 01:00:00 +0500"),
    ("9999-12-31 22:00:00 +0000", "9999-12-31 23:59:59 +0000"),
])
@pytest.mark.parametrize("kind", ["HKQuantityTypeIdentifierStepCount",
                                  "HKCategoryTypeIdentifierSleepAnalysis"])
def test_apple_records_at_the_edge_of_the_calendar_are_skipped_and_counted(
        start: str, end: str, kind: str) -> None:
    value = "HKCategoryValueSleepAnalysisAsleepCore" if "Sleep" in kind else "40"
    xml = _apple_xml(_apple_record("2026-01-05 08:00:00 -0500", "2026-01-05 08:10:00 -0500", "250")
                     + _apple_record(start, end, value, kind))
    outcome = _parse(_zip({APPLE_XML: xml}))
    assert isinstance(outcome, ImportResult)
    assert (outcome.rows_read, outcome.rows_skipped) == (2, 1)


def test_apple_steps_of_nan_negative_or_a_trillion_are_skipped_and_counted() -> None:
    odd = "".join(_apple_record("2026-01-06 08:00:00 -0500", "2026-01-06 08:10:00 -0500", value)
                  for value in ("NaN", "-40", "inf", "abc"))
    huge = _apple_record("2026-01-07 08:00:00 -0500", "2026-01-07 08:10:00 -0500", "1e12")
    good = _apple_record("2026-01-05 08:00:00 -0500", "2026-01-05 08:10:00 -0500", "250")
    outcome = _parse(_zip({APPLE_XML: _apple_xml(good + odd + huge)}))
    assert isinstance(outcome, ImportResult)
    assert [(day.day, day.steps) for day in outcome.steps] == [(date(2026, 1, 5), 250)]
    assert (outcome.rows_read, outcome.rows_skipped) == (6, 5)  # four unreadable, one impossible day


@pytest.mark.parametrize("changes", [
    {"minutesAsleep": "²"}, {"minutesAsleep": "1" * 5000}, {"timeInBed": "٤٨٠"}, {"minutesAsleep": -1},
    {"startTime": "0001-01-01T00:00:00+14:00"}, {"endTime": "9999-12-31T23:59:59-14:00"},
    {"startTime": "9999-12-31T23:00:00", "endTime": "9999-12-31T23:59:59"}, {"minutesAsleep": float("nan")},
])
def test_takeout_sleep_logs_with_absurd_values_are_skipped_and_counted(changes: dict[str, object]) -> None:
    data = _takeout({"sleep-2026-01-04.json": json.dumps([_sleep_log(), _sleep_log(logId=2, **changes)])})
    outcome = _parse(data)
    assert isinstance(outcome, ImportResult)
    assert (outcome.rows_read, outcome.rows_skipped, len(outcome.sleep)) == (2, 1, 1)


def test_takeout_steps_that_are_negative_nan_or_a_trillion_are_skipped_and_counted() -> None:
    minutes = [{"dateTime": "01/05/26 08:00:00", "value": "40"},
               {"dateTime": "01/05/26 08:01:00", "value": "-3"},
               {"dateTime": "01/05/26 08:02:00", "value": "NaN"},
               {"dateTime": "01/06/26 08:02:00", "value": "1000000000000"},
               {"dateTime": "12/31/99 23:59:00", "value": "5"}]
    outcome = _parse(_takeout({"steps-2026-01-04.json": json.dumps(minutes)}))
    assert isinstance(outcome, ImportResult)
    assert [(day.day, day.steps) for day in outcome.steps] == [(date(2026, 1, 5), 40)]
    assert (outcome.rows_read, outcome.rows_skipped) == (5, 4)


# ---------------------------------------------------------------------------------------------------
# Zip bombs


def test_a_four_megabyte_zip_unpacking_to_four_gigabytes_is_refused_unopened() -> None:
    bomb = _bomb(APPLE_XML, 4 * GIB)
    assert len(bomb) < 5 * MIB
    with _peak_memory(16 * MIB):
        refusal = _refusal(bomb)
    assert refusal.reason_code == "too_large"


@pytest.mark.parametrize(("name", "size"), [(APPLE_XML, GIB + GIB // 2),
                                            (GLOBAL_EXPORT + "steps-2026-01-04.json", 19 * MIB)])
def test_a_member_under_the_size_limit_but_far_too_compressed_is_refused_as_a_bomb(
        name: str, size: int) -> None:
    with _peak_memory(16 * MIB):
        refusal = _refusal(_bomb(name, size))
    assert refusal.reason_code == "zip_bomb"
    assert str(REFUSALS["zip_bomb"]).startswith("This archive would unpack to far more")


def test_a_takeout_json_file_of_a_gigabyte_is_refused_by_its_declared_size() -> None:
    with _peak_memory(16 * MIB):
        refusal = _refusal(_bomb(GLOBAL_EXPORT + "steps-2026-01-04.json", GIB))
    assert refusal.reason_code == "too_large"
    assert "“steps-2026-01-04.json”" in refusal.message


@pytest.mark.parametrize("name", [APPLE_XML, GLOBAL_EXPORT + "steps-2026-01-04.json"])
def test_a_bomb_that_declares_a_small_size_is_read_only_that_far(name: str) -> None:
    with _peak_memory(16 * MIB):
        refusal = _refusal(_bomb(name, 2 * GIB, declared=512 * KIB))
    assert refusal.reason_code in ("corrupt_archive", "bad_json")


def test_overlapping_entries_sharing_one_compressed_kernel_are_refused() -> None:
    kernel = _deflated(16 * MIB, bytes(MIB - 1) + b"[")  # 16 MiB under one 0.1 MiB kernel
    entries = [_Entry(GLOBAL_EXPORT + "steps-2026-01-01.json", kernel, 16 * MIB)]
    entries += [_Entry(GLOBAL_EXPORT + f"steps-2026-{month:02}-{day:02}.json", kernel, 16 * MIB, at=0)
                for month in range(2, 13) for day in range(1, 29)]
    archive = _raw_zip(entries)
    assert len(archive) < MIB and sum(entry.size for entry in entries) > 4 * GIB
    with _peak_memory(16 * MIB):
        refusal = _refusal(archive)
    assert refusal.reason_code in ("too_large", "corrupt_archive", "zip_bomb")


def test_zips_nested_inside_zips_are_never_opened() -> None:
    inner = _bomb(APPLE_XML, GIB)
    for depth in range(4):
        inner = _zip({f"layer-{depth}/export.zip": inner, f"layer-{depth}/more.zip": inner})
    with _peak_memory(16 * MIB):
        refusal = _refusal(inner)
    assert refusal.reason_code == "not_a_known_export"


def test_an_inner_zip_bomb_named_export_xml_is_read_as_xml_and_refused() -> None:
    archive = _zip({APPLE_XML: _bomb(APPLE_XML, GIB)}, zipfile.ZIP_STORED)
    with _peak_memory(16 * MIB):
        refusal = _refusal(archive)
    assert refusal.reason_code in ("bad_xml", "unsafe_xml")


def test_an_end_record_claiming_a_terabyte_directory_is_refused_before_reading_it() -> None:
    archive = bytearray(_bomb(APPLE_XML, MIB))
    record_at = archive.rfind(b"PK\x06\x06")
    struct.pack_into("<3Q", archive, record_at + 24, 10**12, 10**12, 2**40)  # entries, entries, size
    with _peak_memory(16 * MIB):
        refusal = _refusal(bytes(archive))
    assert refusal.reason_code == "too_many_files"


def test_an_end_record_claiming_more_directory_than_the_file_holds_is_refused_as_cut_short() -> None:
    archive = bytearray(_zip({APPLE_XML: _APPLE_SAMPLE}))
    end_at = archive.rfind(b"PK\x05\x06")
    struct.pack_into("<2HL", archive, end_at + 8, 0xFFFE, 0xFFFE, 60 * MIB)
    assert _refusal(bytes(archive)).reason_code == "truncated"


@pytest.mark.parametrize("offset", [50, 10**6])
def test_a_directory_offset_pointing_before_the_file_start_is_refused_as_damaged(offset: int) -> None:
    archive = bytearray(_zip({APPLE_XML: _APPLE_SAMPLE}))
    end_at = archive.rfind(b"PK\x05\x06")
    (real,) = struct.unpack_from("<L", archive, end_at + 16)
    struct.pack_into("<L", archive, end_at + 16, real + offset)
    assert _refusal(bytes(archive)).reason_code == "corrupt_archive"


# ---------------------------------------------------------------------------------------------------
# XML: entity expansion and external references, refused without being read


BILLION_LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE HealthData [\n <!ENTITY lol0 "lol">\n'
                  + "".join(f' <!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">\n' for n in range(1, 10))
                  + ']>\n<HealthData locale="en_US">&lol9;</HealthData>\n')
QUADRATIC_BLOWUP = ('<?xml version="1.0"?>\n<!DOCTYPE HealthData [<!ENTITY a "' + "x" * 50_000 + '">]>\n'
                    '<HealthData locale="en_US">' + "&a;" * 50_000 + "</HealthData>\n")


def _xxe(target: str) -> str:
    return (f'<?xml version="1.0"?>\n<!DOCTYPE HealthData [\n <!ENTITY secret SYSTEM "{target}">\n]>\n'
            + _apple_xml(_apple_record("2026-01-05 10:00:00 -0500", "2026-01-05 10:05:00 -0500", "&secret;"),
                         prolog=""))


def _hostile_xml(kind: str, port: int) -> str:
    return {
        "billion laughs": BILLION_LAUGHS,
        "quadratic blowup": QUADRATIC_BLOWUP,
        "file entity": _xxe("file:///etc/passwd"),
        "http entity": _xxe(f"http://127.0.0.1:{port}/steal"),
        "closed port entity": _xxe("http://127.0.0.1:1/"),
        "parameter entity": ('<?xml version="1.0"?>\n<!DOCTYPE HealthData [\n <!ENTITY % remote SYSTEM '
                             f'"http://127.0.0.1:{port}/evil.dtd">\n %remote;\n]>\n<HealthData/>\n'),
        "external dtd": (f'<?xml version="1.0"?>\n<!DOCTYPE HealthData SYSTEM "http://127.0.0.1:{port}/h.dtd">\n'
                         "<HealthData/>\n"),
        "external dtd after a megabyte of comments": (
            '<?xml version="1.0"?>\n' + "".join(f"<!-- {n:06} -->\n" for n in range(80_000))
            + '<!DOCTYPE HealthData SYSTEM "file:///etc/passwd">\n<HealthData/>\n'),
        "xinclude": ('<?xml version="1.0"?>\n<HealthData xmlns:xi="http://www.w3.org/2001/XInclude">'
                     '<xi:include href="file:///etc/passwd" parse="text"/></HealthData>\n'),
    }[kind]


XML_ATTACKS = ["billion laughs", "quadratic blowup", "file entity", "http entity", "closed port entity",
               "parameter entity", "external dtd", "external dtd after a megabyte of comments", "xinclude"]


def test_the_audit_hook_and_the_listener_do_see_a_file_read_and_a_connection_made(
        listener: tuple[int, Callable[[], int]]) -> None:
    port, connections = listener
    with _audited() as seen:
        Path("/etc/passwd").read_bytes()
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert any("passwd" in args for _, args in seen) and ("socket.connect" in {e for e, _ in seen})
    assert connections() == 1


@pytest.mark.parametrize("packed", [True, False], ids=["zipped", "bare"])
@pytest.mark.parametrize("kind", XML_ATTACKS)
def test_xml_attacks_are_refused_without_reading_files_or_calling_out(
        kind: str, packed: bool, listener: tuple[int, Callable[[], int]]) -> None:
    port, connections = listener
    xml = _hostile_xml(kind, port).encode()
    with _audited() as seen, _peak_memory(32 * MIB):
        outcome = _parse(_zip({APPLE_XML: xml}) if packed else xml, "export.zip")
    assert connections() == 0
    assert not [event for event in seen if "passwd" in event[1] or event[0] != "open"], seen
    assert isinstance(outcome, ImportRefused), outcome
    # Past the first megabyte an external DTD is not looked for, but expat never fetches it, and a
    # megabyte without one element is refused anyway; ElementTree's parser knows no XInclude.
    expected = {"external dtd after a megabyte of comments": "too_complex", "xinclude": "no_data"}
    assert outcome.reason_code == expected.get(kind, "unsafe_xml"), outcome.message
    assert "root:" not in outcome.message


@pytest.mark.parametrize("encoding", ["shift_jis", "utf-32", "utf-7", "hex", "zlib", "rot13", "idna",
                                      "punycode", "undefined", "no-such-encoding"])
def test_xml_declaring_an_encoding_exports_never_use_is_refused(encoding: str) -> None:
    xml = _apple_xml(_apple_record("2026-01-05 10:00:00 -0500", "2026-01-05 10:05:00 -0500", "5"),
                     prolog=f"<?xml version='1.0' encoding = '{encoding}'?>\n").encode()
    for upload in (xml, _zip({APPLE_XML: xml})):
        assert _refusal(upload).reason_code == "bad_encoding"


def test_a_gigantic_attribute_is_refused_without_holding_it_in_memory() -> None:
    # 32 MiB of one attribute: expat 2.5 would hold it all and rescan it on every feed (a minute).
    chance = random.Random(1)
    block = bytearray(b"a" * MIB)
    for at in range(0, MIB, 100):
        block[at] = chance.randrange(98, 123)
    stream = (b'<?xml version="1.0"?>\n<HealthData locale="en_US">\n<Record type="x" value="'
              + bytes(block) * 32 + b'"/></HealthData>\n')
    archive = _zip({APPLE_XML: stream})
    del stream
    assert len(archive) < MIB  # about 45:1, under the compression-ratio check
    with _peak_memory(24 * MIB):
        refusal = _refusal(archive)
    assert refusal.reason_code == "too_complex"


# ---------------------------------------------------------------------------------------------------
# JSON in a Takeout: deeply nested and huge


@pytest.mark.parametrize(("content", "code"), [
    ("[" * 100_000 + "]" * 100_000, "too_complex"),
    ('[{"a":' * 50_000 + "1" + "}" * 50_000 + "]", "too_complex"),
    (json.dumps([{"dateTime": "01/05/26 08:00:00", "value": [0] * 300_000}]), "too_complex"),
    (json.dumps([{"dateTime": "01/05/26 08:00:00", "value": "1" * 300_000}]), "no_data"),
    ("[" + "1" * 5000 + "]", "bad_json"),
    ('[{"dateTime": "01/05/26 08:00:00", "value": 1e999999}]', "no_data"),
    (json.dumps([{"dateTime": f"01/{5 + n // 86400:02}/26 {n // 3600 % 24:02}:{n // 60 % 60:02}:{n % 60:02}",
                  "value": str(n % 2)} for n in range(30_000)]), None),
    (b"\xff\xfe[\x00]\x00", "bad_json"),
    (b'["\xc3\x28"]', "bad_json"),
])
def test_huge_or_deeply_nested_takeout_json_is_refused_or_read_in_bounded_memory(
        content: str | bytes, code: str | None) -> None:
    archive = _takeout({"steps-2026-01-04.json": content})
    with _peak_memory(16 * MIB):
        outcome = _parse(archive)
    _check(outcome)
    if code is None:
        assert isinstance(outcome, ImportResult) and outcome.rows_read == 30_000
    else:
        assert isinstance(outcome, ImportRefused) and outcome.reason_code == code


# ---------------------------------------------------------------------------------------------------
# Broken CSV


@pytest.mark.parametrize(("content", "code"), [
    (b"date,steps\n2026-01-05,\x00\x01\x02\xff\xfe\n", "bad_encoding"),
    (b"date,steps\n2026-01-05,4000\n2026-01-06,caf\xe9\n", "bad_encoding"),
    ("date,steps\n2026-01-05,4000\n".encode("utf-16"), "not_a_known_export"),
    (b"date,steps\n2026-01-05,4\x0012\n", "bad_value"),
    (b'date,steps\n"2026-01-05,4000\n' + b"x" * 200_000, "bad_csv_row"),
    (b"date,steps\n" + b"2026-01-05," + b"9" * 200_000 + b"\n", "bad_csv_row"),
    (b"date,steps,steps\n2026-01-05,1,2\n", "bad_csv_header"),
    (b"date,steps\n2026-01-05,1,2,3\n", "bad_csv_row"),
    (b"date,steps\n" + b"\n" * 100_000, "no_data"),
])
def test_a_broken_csv_is_refused_whole_naming_the_problem(content: bytes, code: str) -> None:
    refusal = _refusal(content)
    assert refusal.reason_code == code, refusal.message
    assert refusal.message


# ---------------------------------------------------------------------------------------------------
# Through the upload page and the job: a kind message, and nothing written


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"IMPORT_MAX_BYTES": 8 * MIB}


@pytest.fixture
def spanish_member(session: Session, cohort: Cohort) -> User:
    return factories.make_member(session, cohort=cohort, name="Luz Serena", language="es")


def _upload(client: FlaskClient, name: str, data: bytes) -> tuple[int, str]:
    """Post a file as the page's form does; the first answer's status, and the page it leads to."""
    response = client.post("/tracker/import", data={"csrf_token": csrf_token(client),
                                                    "file": (io.BytesIO(data), name)},
                           content_type="multipart/form-data")
    first = response.status_code
    if first in (301, 302, 303):
        response = client.get(response.headers["Location"])
    return first, response.get_data(as_text=True)


def _nothing_kept(session: Session, instance: Path) -> None:
    fresh = factories.fresh(session)
    assert fresh.scalar(select(func.count()).select_from(DailySteps)) == 0
    assert fresh.scalar(select(func.count()).select_from(SleepNight)) == 0
    uploads = instance / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir()), list(uploads.iterdir())


def _words(app: Flask, message: object, language: str) -> str:
    """A message (a msgid, or one of REFUSALS) in `language`, escaped as a page shows it."""
    with app.test_request_context(), force_locale(language):
        return str(escape(gettext(message) if isinstance(message, str) else str(message)))


HOSTILE_UPLOADS: list[tuple[str, Callable[[], bytes], str]] = [
    ("export.zip", lambda: _bomb(APPLE_XML, 4 * GIB), "too_large"),
    ("export.zip", lambda: _bomb(APPLE_XML, GIB), "zip_bomb"),
    ("export.zip", lambda: _zip({"a/export.zip": _bomb(APPLE_XML, GIB)}), "not_a_known_export"),
    ("export.zip", lambda: _zip({APPLE_XML: BILLION_LAUGHS}), "unsafe_xml"),
    ("export.xml", lambda: _xxe("file:///etc/passwd").encode(), "unsafe_xml"),
    ("export.xml", lambda: _apple_xml("", "<?xml version='1.0' encoding='gbk'?>\n").encode(), "bad_encoding"),
    ("export.zip", lambda: _zip({APPLE_XML: _apple_xml(_apple_record(
        "0001-01-01 00:00:00 +0500", "0001-01-01 01:00:00 +0500", "40"))}), "no_data"),
    ("export.zip", lambda: _zip_with_forged_header("apple zip", 3, 10**6, True), "corrupt_archive"),
    ("takeout.zip", lambda: _takeout({"steps-2026-01-04.json": "[" * 100_000}), "too_complex"),
    ("steps.csv", lambda: b"date,steps\n2026-01-05,\x00\xff\xfe\x80\n", "bad_encoding"),
    ("=HYPERLINK(1)<b>.csv", lambda: b'date,steps\n2026-01-05,=HYPERLINK("<b>hi</b>")\n', "bad_value"),
]


def _shown(page: str, run: ImportRun) -> str:
    """What the tracker page says about one import."""
    return page.split(f'data-import="{run.id}"', 1)[1].split("</div>", 1)[0]


def test_hostile_uploads_are_refused_kindly_and_nothing_is_written(
        app: Flask, client: FlaskClient, session: Session, member: User, tmp_path: Path) -> None:
    sign_in(client, "Sunny River")
    for filename, build, code in HOSTILE_UPLOADS:
        status, page = _upload(client, filename, build())
        assert status == 302, (code, page[:500])
        run = factories.fresh(session).scalars(select(ImportRun).order_by(col(ImportRun.id).desc())).first()
        assert run is not None and (run.status, run.reason_code) == (ImportStatus.REFUSED, code), run
        shown = _shown(page, run)
        assert _words(app, REFUSALS[code], "en") in shown and "Nothing from it was saved." in shown
        assert "<" not in shown.split("<span", 1)[1].split(">", 1)[1].split("</span>", 1)[0]
        _nothing_kept(session, tmp_path)
    # A formula and markup, in the file's name and in its cell: the name is defused, and the cell
    # comes back to the page only escaped (the numbers themselves are all that is ever stored).
    assert run.filename == "_HYPERLINK_1_b_.csv"
    assert "&lt;b&gt;hi&lt;/b&gt;" in shown and "<b>" not in page


def test_a_spanish_member_reads_refusals_and_the_upload_limit_in_spanish(
        app: Flask, client: FlaskClient, session: Session, spanish_member: User, tmp_path: Path) -> None:
    sign_in(client, "Luz Serena")
    status, page = _upload(client, "export.zip", _bomb(APPLE_XML, GIB))
    assert status == 302
    spanish = _words(app, REFUSALS["zip_bomb"], "es")
    assert spanish != _words(app, REFUSALS["zip_bomb"], "en") and spanish in page
    assert _words(app, "Nothing from it was saved.", "es") in page
    status, page = _upload(client, "export.zip", b"PK\x03\x04" + bytes(9 * MIB))
    assert status == 413
    assert _words(app, "That was too large to send. Please try something smaller.", "es") in page
    _nothing_kept(session, tmp_path)


def test_a_body_over_the_import_limit_is_refused_with_413_and_nothing_is_kept(
        app: Flask, client: FlaskClient, session: Session, member: User, tmp_path: Path) -> None:
    sign_in(client, "Sunny River")
    status, page = _upload(client, "export.zip", b"PK\x03\x04" + bytes(9 * MIB))
    assert status == 413
    assert _words(app, "That was too large to send. Please try something smaller.", "en") in page
    answer = client.post("/tracker/import", data={"csrf_token": csrf_token(client),
                                                  "file": (io.BytesIO(bytes(9 * MIB)), "a.csv")},
                         content_type="multipart/form-data", headers={"Accept": "application/json"})
    assert answer.status_code == 413 and answer.get_json()["error"]["code"] == "too_large"
    assert factories.fresh(session).scalar(select(func.count()).select_from(ImportRun)) == 0
    _nothing_kept(session, tmp_path)
