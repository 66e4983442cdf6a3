"""Export-file importers: each format on a real-shaped sample, time-zone edges, and hostile files."""

from __future__ import annotations

import gzip
import io
import json
import random
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from wearables import importers
from wearables.importers import (
    ImportRefused,
    ImportResult,
    UntimedSleep,
    detect_and_parse,
    parse_apple_health,
    parse_csv,
    parse_takeout_fitbit,
)
from wearables.records import DaySteps, SleepSession

SAMPLES = Path(__file__).parent / "samples"
ROOT = Path(__file__).resolve().parents[2]
TZ = "America/New_York"
NEW_YORK = ZoneInfo(TZ)
TODAY = date(2026, 6, 1)
APPLE_XML = "apple_health_export/export.xml"
GLOBAL_EXPORT = "Takeout/Fitbit/Global Export Data/"
MIB = 1024 * 1024


# ---------------------------------------------------------------------------------------------------
# Builders


def _zip(files: dict[str, str | bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    buffer.seek(0)
    return buffer


def _apple_sample() -> str:
    return (SAMPLES / "apple_export.xml").read_text("utf-8")


def _apple_zip(xml: str | bytes, name: str = APPLE_XML) -> io.BytesIO:
    return _zip({name: xml, "apple_health_export/export_cda.xml": "<ClinicalDocument/>"})


def _apple_xml(records: str) -> str:
    """A small export.xml around the given records."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_US">\n'
            ' <ExportDate value="2026-05-01 09:00:00 -0400"/>\n' + records + "</HealthData>\n")


def _record(kind: str, start: str, end: str, value: str, source: str = "Sam’s Apple Watch") -> str:
    if kind == "sleep":
        kind, value = "HKCategoryTypeIdentifierSleepAnalysis", f"HKCategoryValueSleepAnalysis{value}"
    else:
        kind = "HKQuantityTypeIdentifierStepCount"
    return (f' <Record type="{kind}" sourceName="{source}" sourceVersion="10.2" creationDate="{end}" '
            f'startDate="{start}" endDate="{end}" value="{value}"/>\n')


def _takeout_zip(extra: dict[str, str | bytes] | None = None) -> io.BytesIO:
    files: dict[str, str | bytes] = {
        GLOBAL_EXPORT + path.name: path.read_bytes() for path in sorted((SAMPLES / "takeout").iterdir())}
    files["Takeout/archive_browser.html"] = "<html><body>Your Takeout</body></html>"
    files.update(extra or {})
    return _zip(files)


def _csv_sample() -> io.BytesIO:
    return io.BytesIO((SAMPLES / "steps_and_sleep.csv").read_bytes())


def _csv(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode("utf-8"))


def _local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


def _refused(parse: Callable[[], ImportResult]) -> ImportRefused:
    with pytest.raises(ImportRefused) as caught:
        parse()
    return caught.value


def _detect(fileobj: io.BytesIO, filename: str = "upload.zip") -> ImportResult:
    return detect_and_parse(fileobj, filename, TZ, today=TODAY)


def _zeros_zip(name: str, size: int) -> io.BytesIO:
    """A zip bomb in miniature: size bytes of zeros, which deflate about a thousandfold."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive, archive.open(name, "w") as member:
        for _ in range(size // MIB):
            member.write(bytes(MIB))
    buffer.seek(0)
    return buffer


def _declare_size(archive: bytes, name: str, size: int) -> io.BytesIO:
    """Rewrite the uncompressed size the central directory declares for name, as a forger would."""
    patched = bytearray(archive)
    at = patched.find(b"PK\x01\x02")
    while at >= 0:
        (name_length,) = struct.unpack_from("<H", patched, at + 28)
        if patched[at + 46:at + 46 + name_length] == name.encode():
            struct.pack_into("<L", patched, at + 24, size)
        at = patched.find(b"PK\x01\x02", at + 4)
    return io.BytesIO(bytes(patched))


# ---------------------------------------------------------------------------------------------------
# CSV


def test_a_plain_csv_gives_steps_per_day_and_sleep_with_exact_totals() -> None:
    result = parse_csv(_csv_sample(), TZ, today=TODAY)
    assert result.kind == "csv"
    assert result.steps == [DaySteps(date(2026, 1, 5), 8412), DaySteps(date(2026, 1, 6), 10233),
                            DaySteps(date(2026, 1, 7), 0)]
    assert result.sleep == [
        SleepSession(start=_local("2026-01-04T23:10"), end=_local("2026-01-05T06:55"), minutes_asleep=431,
                     minutes_in_bed=465, source_id="csv:2026-01-05"),
        SleepSession(start=_local("2026-01-06T23:40"), end=_local("2026-01-07T06:52"), minutes_asleep=402,
                     minutes_in_bed=432, source_id="csv:2026-01-07"),
    ]
    assert result.untimed_sleep == [UntimedSleep(night=date(2026, 1, 8), minutes_asleep=390)]
    assert (result.rows_read, result.rows_skipped) == (4, 0)


def test_a_spreadsheet_csv_with_a_bom_crlf_and_blank_lines_reads_the_same() -> None:
    text = (SAMPLES / "steps_and_sleep.csv").read_text("utf-8")
    from_excel = ("\ufeff" + text.replace("\n", "\r\n") + "\r\n").encode("utf-8")
    assert parse_csv(io.BytesIO(from_excel), TZ, today=TODAY) == parse_csv(_csv(text), TZ, today=TODAY)


def test_a_semicolon_csv_of_sleep_alone_is_read_and_empty_rows_are_counted_as_skipped() -> None:
    result = parse_csv(_csv("Date;Sleep Minutes\n2026-02-01;420\n2026-02-02;\n"), TZ, today=TODAY)
    assert result.untimed_sleep == [UntimedSleep(night=date(2026, 2, 1), minutes_asleep=420)]
    assert (result.steps, result.sleep) == ([], [])
    assert (result.rows_read, result.rows_skipped) == (2, 1)


def test_a_csv_row_from_exactly_ten_years_ago_is_still_accepted() -> None:
    result = parse_csv(_csv("date,steps\n2016-06-01,5000\n2026-06-01,10\n"), TZ, today=TODAY)
    assert [day.day for day in result.steps] == [date(2016, 6, 1), date(2026, 6, 1)]


@pytest.mark.parametrize(("text", "code", "words"), [
    ("date,steps\n2026-01-05,100\n2026-01-06,200,7\n", "bad_csv_row", "Row 3 has 3 cells"),
    ("date,steps\n2026-01-05,100\n2026-13-01,200\n", "bad_date",
     "Row 3: the date “2026-13-01” is not a real date"),
    ("date,steps\n01/05/2026,100\n", "bad_date", "Row 2: the date “01/05/2026”"),
    ("date,steps\n2026-06-02,100\n", "date_out_of_range", "Row 2: 2026-06-02 is in the future"),
    ("date,steps\n2016-05-31,100\n", "date_out_of_range", "more than 10 years ago"),
    ("date,steps\n2026-01-05,100001\n", "value_out_of_range", "Row 2: 100,001 steps is more than"),
    ("date,sleep_minutes\n2026-01-05,1441\n", "value_out_of_range", "1,441 minutes of sleep"),
    ("date,steps\n2026-01-05,12.5\n", "bad_value", "“12.5” is not a whole number of steps"),
    ("date,steps\n2026-01-05,-40\n", "bad_value", "Row 2"),
    ("date,steps\n2026-01-05,100\n2026-01-05,200\n", "duplicate_date", "already appears on row 2"),
    ("day,steps\n2026-01-05,100\n", "bad_csv_header", "there is no date column"),
    ("date,weight\n2026-01-05,70\n", "bad_csv_header", "no steps or sleep_minutes column"),
    ("date,sleep_minutes,bedtime,wake_time\n2026-01-05,400,2026-01-05T23:00,2026-01-05T07:00\n",
     "bad_sleep_times", "is not after the bedtime"),
    ("date,sleep_minutes,bedtime,wake_time\n2026-01-05,500,23:00,06:00\n", "bad_sleep_times",
     "500 minutes of sleep don't fit"),
    ("date,steps,bedtime,wake_time\n2026-01-05,10,late,06:00\n", "bad_sleep_times", "the bedtime “late”"),
    ("date,steps\n", "no_data", "nothing to bring in"),
])
def test_a_bad_csv_is_refused_whole_with_a_message_naming_the_problem(
        text: str, code: str, words: str) -> None:
    refusal = _refused(lambda: parse_csv(_csv(text), TZ, today=TODAY))
    assert refusal.reason_code == code
    assert words in refusal.message


def test_one_bad_row_after_many_good_ones_refuses_the_whole_csv() -> None:
    good = "".join(f"2026-01-{day:02d},{1000 + day}\n" for day in range(1, 29))
    refusal = _refused(lambda: parse_csv(_csv("date,steps\n" + good + "2026-01-29,lots\n"), TZ, today=TODAY))
    assert (refusal.reason_code, refusal.message) == (
        "bad_value", "Row 30: “lots” is not a whole number of steps.")


def test_a_csv_not_saved_as_utf8_is_refused_with_a_hint() -> None:
    latin1 = "date,steps,note\n2026-01-05,100,café\n".encode("latin-1")
    refusal = _refused(lambda: parse_csv(io.BytesIO(latin1), TZ, today=TODAY))
    assert refusal.reason_code == "bad_encoding"
    assert "UTF-8" in refusal.message


def test_a_csv_larger_than_twenty_megabytes_is_refused_unread() -> None:
    huge = io.BytesIO(b"date,steps\n" + b"2026-01-05,1\n" * (importers.MAX_CSV_BYTES // 13 + 1))
    refusal = _refused(lambda: parse_csv(huge, TZ, today=TODAY))
    assert refusal.reason_code == "too_large"
    assert "20 MB" in refusal.message


# ---------------------------------------------------------------------------------------------------
# Apple Health


def test_an_apple_export_takes_the_fuller_device_per_day_instead_of_adding_iphone_and_watch() -> None:
    result = parse_apple_health(_apple_zip(_apple_sample()), TZ, today=TODAY)
    assert result.kind == "apple_health"
    # 5 January: iPhone 412 + 1200 + 800 = 2412, Watch 450 + 1300 + 900 = 2650 for the same walks.
    assert result.steps == [DaySteps(date(2026, 1, 5), 2650), DaySteps(date(2026, 1, 6), 4500),
                            DaySteps(date(2026, 1, 7), 700)]
    assert (result.rows_read, result.rows_skipped) == (19, 0)


def test_an_apple_night_becomes_one_session_and_a_short_afternoon_sleep_is_a_nap() -> None:
    result = parse_apple_health(_apple_zip(_apple_sample()), TZ, today=TODAY)
    assert result.sleep == [
        # iPhone in bed 22:45-06:50; Watch stages asleep 85 + 50 + 55 + 240 minutes, awake ones left out.
        SleepSession(start=_local("2026-01-05T22:45"), end=_local("2026-01-06T06:50"), minutes_asleep=430,
                     minutes_in_bed=485, is_main=True, source_id="apple:2026-01-06T03:45:00Z"),
        SleepSession(start=_local("2026-01-06T14:10"), end=_local("2026-01-06T14:55"), minutes_asleep=45,
                     minutes_in_bed=45, is_main=False, source_id="apple:2026-01-06T19:10:00Z"),
        SleepSession(start=_local("2026-01-06T23:15"), end=_local("2026-01-07T07:05"), minutes_asleep=450,
                     minutes_in_bed=470, is_main=True, source_id="apple:2026-01-07T04:15:00Z"),
    ]


def test_an_evening_nap_is_not_taken_for_the_night_that_follows() -> None:
    xml = _apple_xml(
        _record("sleep", "2026-02-03 18:30:00 -0500", "2026-02-03 19:20:00 -0500", "AsleepCore")
        + _record("sleep", "2026-02-03 23:10:00 -0500", "2026-02-04 06:40:00 -0500", "AsleepCore"))
    nap, night = parse_apple_health(_apple_zip(xml), TZ, today=TODAY).sleep
    assert (nap.minutes_asleep, nap.is_main) == (50, False)
    assert (night.minutes_asleep, night.is_main) == (450, True)


def test_an_export_xml_at_any_depth_or_on_its_own_is_read_like_the_usual_zip() -> None:
    expected = parse_apple_health(_apple_zip(_apple_sample()), TZ, today=TODAY)
    nested = _zip({"Downloads/Export 2/apple_health_export/export.xml": _apple_sample(),
                   "Downloads/Export 2/apple_health_export/export_cda.xml": "<ClinicalDocument/>"})
    assert parse_apple_health(nested, TZ, today=TODAY) == expected
    assert parse_apple_health(_csv(_apple_sample()), TZ, today=TODAY) == expected


def test_apples_malformed_ios16_dtd_and_stray_control_characters_do_not_stop_an_import() -> None:
    # iOS 16 and later leave the closing '>' off an ATTLIST, and some values carry a \x0b.
    broken = _apple_sample().replace(
        "<!ELEMENT ActivitySummary EMPTY>",
        "<!ATTLIST VisionPrescription\n  type CDATA #REQUIRED\n  brand CDATA #IMPLIED\n"
        "<!ELEMENT ActivitySummary EMPTY>")
    broken = broken.replace('sourceVersion="17.2"', 'sourceVersion="17.2\x0b"', 1)
    expected = parse_apple_health(_apple_zip(_apple_sample()), TZ, today=TODAY)
    assert parse_apple_health(_apple_zip(broken), TZ, today=TODAY) == expected


def test_a_daylight_saving_night_in_apple_data_keeps_its_real_length() -> None:
    xml = _apple_xml(
        _record("sleep", "2026-03-07 23:00:00 -0500", "2026-03-08 07:00:00 -0400", "InBed", "Sam’s iPhone")
        + _record("sleep", "2026-03-07 23:20:00 -0500", "2026-03-08 06:40:00 -0400", "AsleepCore")
        + _record("steps", "2026-03-07 23:59:00 -0500", "2026-03-08 00:03:00 -0500", "50")
        + _record("steps", "2026-03-08 01:30:00 -0500", "2026-03-08 01:35:00 -0500", "100")
        + _record("steps", "2026-03-08 03:30:00 -0400", "2026-03-08 03:35:00 -0400", "200"))
    result = parse_apple_health(_apple_zip(xml), TZ, today=TODAY)
    [night] = result.sleep
    assert night.end - night.start == timedelta(hours=7)  # 23:00 to 07:00 on the clock, one hour lost
    assert (night.minutes_in_bed, night.minutes_asleep, night.is_main) == (420, 380, True)
    assert night.end.astimezone(NEW_YORK).date() == date(2026, 3, 8)
    assert result.steps == [DaySteps(date(2026, 3, 7), 50), DaySteps(date(2026, 3, 8), 300)]


def test_apple_steps_recorded_abroad_count_on_the_members_own_day() -> None:
    xml = _apple_xml(
        _record("steps", "2026-01-06 03:00:00 +0100", "2026-01-06 03:10:00 +0100", "640")  # 21:00 in New York
        + _record("steps", "2026-01-06 12:00:00 +0100", "2026-01-06 12:10:00 +0100", "900"))
    result = parse_apple_health(_apple_zip(xml), TZ, today=TODAY)
    assert result.steps == [DaySteps(date(2026, 1, 5), 640), DaySteps(date(2026, 1, 6), 900)]


def test_apple_records_that_are_unreadable_or_too_old_are_skipped_and_counted() -> None:
    xml = _apple_xml(
        _record("steps", "2014-05-01 10:00:00 -0400", "2014-05-01 10:05:00 -0400", "500")
        + _record("steps", "yesterday", "today", "5")
        + _record("steps", "2026-01-05 10:00:00 -0500", "2026-01-05 10:05:00 -0500", "-3")
        + _record("steps", "2026-01-05 11:00:00 -0500", "2026-01-05 11:05:00 -0500", "77")
        + _record("sleep", "2026-01-05 23:00:00 -0500", "2026-01-05 22:00:00 -0500", "AsleepCore"))
    result = parse_apple_health(_apple_zip(xml), TZ, today=TODAY)
    assert result.steps == [DaySteps(date(2026, 1, 5), 77)]
    assert (result.rows_read, result.rows_skipped) == (5, 4)


def test_progress_is_reported_in_bytes_while_an_apple_export_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importers, "PROGRESS_STEP_BYTES", 2048)
    seen: list[tuple[int, int]] = []
    parse_apple_health(_apple_zip(_apple_sample()), TZ, today=TODAY, progress=lambda done, total: seen.append(
        (done, total)))
    size = len(_apple_sample().encode())
    assert seen
    assert all(total == size and 0 < done <= size for done, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


# ---------------------------------------------------------------------------------------------------
# Google Takeout (Fitbit)


def test_a_takeout_archive_sums_minute_steps_per_day_and_keeps_each_sleep_log() -> None:
    result = parse_takeout_fitbit(_takeout_zip(), TZ, today=TODAY)
    assert result.kind == "fitbit_takeout"
    assert result.steps == [DaySteps(date(2026, 1, 4), 15), DaySteps(date(2026, 1, 5), 290)]
    assert result.sleep == [
        SleepSession(start=_local("2026-01-04T23:12:30"), end=_local("2026-01-05T07:01:30"),
                     minutes_asleep=431, minutes_in_bed=469, is_main=True, source_id="fitbit:49801127730"),
        SleepSession(start=_local("2026-01-05T14:03"), end=_local("2026-01-05T14:51"), minutes_asleep=44,
                     minutes_in_bed=48, is_main=False, source_id="fitbit:49812334521"),
    ]
    assert (result.rows_read, result.rows_skipped) == (9, 0)


def test_a_daylight_saving_night_in_takeout_data_keeps_its_real_length() -> None:
    night = {"logId": 51000000001, "dateOfSleep": "2025-11-02", "startTime": "2025-11-01T23:00:00.000",
             "endTime": "2025-11-02T07:00:00.000", "duration": 32400000, "minutesAsleep": 500,
             "minutesAwake": 40, "timeInBed": 540, "efficiency": 93, "type": "stages",
             "levels": {"summary": {}}, "mainSleep": True}
    minutes = [{"dateTime": "11/01/25 23:59:00", "value": "9"},
               {"dateTime": "11/02/25 01:30:00", "value": "40"},  # the clock shows 01:30 twice that night
               {"dateTime": "11/02/25 01:30:00", "value": "25"}]
    archive = _zip({GLOBAL_EXPORT + "sleep-2025-10-20.json": json.dumps([night]),
                    GLOBAL_EXPORT + "steps-2025-10-20.json": json.dumps(minutes)})
    result = parse_takeout_fitbit(archive, TZ, today=TODAY)
    [session] = result.sleep
    assert session.end - session.start == timedelta(hours=9)  # 23:00 to 07:00 on the clock, one hour gained
    assert (session.minutes_in_bed, session.minutes_asleep) == (540, 500)
    assert session.end.astimezone(NEW_YORK).date() == date(2025, 11, 2)
    assert result.steps == [DaySteps(date(2025, 11, 1), 9), DaySteps(date(2025, 11, 2), 65)]


def test_a_sleep_log_listed_in_two_takeout_files_is_kept_once() -> None:
    again = (SAMPLES / "takeout" / "sleep-2026-01-04.json").read_bytes()
    twice = parse_takeout_fitbit(_takeout_zip({GLOBAL_EXPORT + "sleep-2026-02-03.json": again}), TZ,
                                 today=TODAY)
    assert twice.sleep == parse_takeout_fitbit(_takeout_zip(), TZ, today=TODAY).sleep


# ---------------------------------------------------------------------------------------------------
# Recognising files, and parsing again


FORMATS: dict[str, Callable[[], io.BytesIO]] = {
    "apple_health": lambda: _apple_zip(_apple_sample()),
    "fitbit_takeout": lambda: _takeout_zip(),
    "csv": _csv_sample,
}


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_the_format_is_recognised_by_content_whatever_the_file_is_called(kind: str) -> None:
    result = _detect(FORMATS[kind](), "upload.bin")
    assert result.kind == kind
    parser = {"apple_health": parse_apple_health, "fitbit_takeout": parse_takeout_fitbit, "csv": parse_csv}
    assert result == parser[kind](FORMATS[kind](), TZ, today=TODAY)


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_parsing_the_same_file_again_gives_identical_results(kind: str) -> None:
    upload = FORMATS[kind]()
    first, second = _detect(upload), _detect(upload)
    assert first == second
    assert not upload.closed


# ---------------------------------------------------------------------------------------------------
# Broken and hostile files


@pytest.mark.parametrize("kind", ["apple_health", "fitbit_takeout"])
@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_a_zip_cut_short_is_refused_as_truncated(kind: str, keep: float) -> None:
    whole = FORMATS[kind]().getvalue()
    refusal = _refused(lambda: _detect(io.BytesIO(whole[: int(len(whole) * keep)])))
    assert refusal.reason_code == "truncated"
    assert refusal.message == "This file seems to be cut short. Please export it again and try once more."


@pytest.mark.parametrize("keep", [0.66, 0.995])
def test_an_export_xml_cut_short_inside_a_sound_zip_is_refused_as_truncated(keep: float) -> None:
    xml = _apple_sample()
    refusal = _refused(lambda: parse_apple_health(_apple_zip(xml[: int(len(xml) * keep)]), TZ, today=TODAY))
    assert refusal.reason_code == "truncated"


def test_an_export_xml_damaged_in_the_middle_is_refused_naming_the_line() -> None:
    damaged = _apple_sample().replace("<ActivitySummary dateComponents", "<ActivitySummary <dateComponents")
    refusal = _refused(lambda: parse_apple_health(_apple_zip(damaged), TZ, today=TODAY))
    line = 1 + _apple_sample().splitlines().index(
        next(row for row in _apple_sample().splitlines() if "<ActivitySummary" in row))
    assert refusal.reason_code == "bad_xml"
    assert f"near line {line}" in refusal.message


@pytest.mark.parametrize("name", [APPLE_XML, GLOBAL_EXPORT + "steps-2026-01-04.json"])
def test_a_zip_bomb_is_refused_before_it_is_unpacked(name: str) -> None:
    bomb = _zeros_zip(name, 16 * MIB)
    assert len(bomb.getvalue()) < 64 * 1024
    refusal = _refused(lambda: _detect(bomb))
    assert refusal.reason_code == "zip_bomb"
    assert "unpacks to far more" in refusal.message


def test_a_zip_that_understates_its_unpacked_size_is_caught_while_unpacking() -> None:
    honest = _zeros_zip(APPLE_XML, 4 * MIB).getvalue()
    forged = _declare_size(honest, APPLE_XML, 4096)
    refusal = _refused(lambda: parse_apple_health(forged, TZ, today=TODAY))
    assert refusal.reason_code == "corrupt_archive"


def test_bytes_are_counted_while_reading_so_a_stream_longer_than_allowed_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importers, "MAX_APPLE_XML_BYTES", 4096)
    refusal = _refused(lambda: parse_apple_health(_csv(_apple_sample()), TZ, today=TODAY))
    assert refusal.reason_code == "too_large"


def test_an_export_declaring_more_than_two_gigabytes_is_refused_unopened() -> None:
    forged = _declare_size(_apple_zip(_apple_sample()).getvalue(), APPLE_XML, 3 * 1024**3)
    refusal = _refused(lambda: parse_apple_health(forged, TZ, today=TODAY))
    assert refusal.reason_code == "too_large"
    assert "at most 2 GB" in refusal.message


def test_a_zip_with_more_entries_than_any_export_is_refused_before_it_is_opened() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(APPLE_XML, _apple_sample())
        for number in range(importers.MAX_ZIP_ENTRIES):
            archive.writestr(zipfile.ZipInfo(f"r/{number}"), b"")
    refusal = _refused(lambda: _detect(buffer))
    assert refusal.reason_code == "too_many_files"


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE HealthData [\n <!ENTITY lol0 "lol">\n'
    + "".join(f' <!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">\n' for n in range(1, 10))
    + ']>\n<HealthData locale="en_US">&lol9;</HealthData>\n')
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE HealthData [\n <!ENTITY secret SYSTEM "file:///etc/passwd">\n]>\n'
    '<HealthData locale="en_US">\n <Record type="HKQuantityTypeIdentifierStepCount" sourceName="&secret;" '
    'startDate="2026-01-05 10:00:00 -0500" endDate="2026-01-05 10:05:00 -0500" value="5"/>\n</HealthData>\n')
PARAMETER_ENTITY = ('<?xml version="1.0"?>\n<!DOCTYPE HealthData [\n <!ENTITY % remote SYSTEM '
                    '"http://127.0.0.1:9/evil.dtd">\n %remote;\n]>\n<HealthData locale="en_US"/>\n')
EXTERNAL_DTD = ('<?xml version="1.0"?>\n<!DOCTYPE HealthData SYSTEM "http://127.0.0.1:9/health.dtd">\n'
                '<HealthData locale="en_US"/>\n')


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY, PARAMETER_ENTITY, EXTERNAL_DTD],
                         ids=["billion-laughs", "external-entity", "parameter-entity", "external-dtd"])
@pytest.mark.parametrize("packed", [True, False], ids=["zipped", "bare"])
def test_xml_with_entity_tricks_is_refused_as_unsafe(xml: str, packed: bool) -> None:
    upload = _apple_zip(xml) if packed else _csv(xml)
    refusal = _refused(lambda: _detect(upload, "export.zip"))
    assert refusal.reason_code == "unsafe_xml"
    assert "never use" in refusal.message


def test_deeply_nested_takeout_json_is_refused_as_too_complex() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    refusal = _refused(lambda: _detect(_takeout_zip({GLOBAL_EXPORT + "steps-2026-02-01.json": deep})))
    assert refusal.reason_code == "too_complex"
    assert "“steps-2026-02-01.json”" in refusal.message


def test_a_single_enormous_takeout_entry_is_refused_before_it_is_built() -> None:
    crowded = json.dumps([{"dateTime": "02/01/26 08:00:00", "value": [[] for _ in range(200_000)]}])
    refusal = _refused(lambda: _detect(_takeout_zip({GLOBAL_EXPORT + "steps-2026-02-01.json": crowded})))
    assert refusal.reason_code == "too_complex"


def test_a_takeout_json_file_over_its_limit_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importers, "MAX_JSON_FILE_BYTES", 600)
    refusal = _refused(lambda: _detect(_takeout_zip()))
    assert refusal.reason_code == "too_large"
    assert "“sleep-2026-01-04.json”" in refusal.message


def test_takeout_json_files_over_their_joint_limit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importers, "MAX_TAKEOUT_JSON_BYTES", 2000)
    refusal = _refused(lambda: _detect(_takeout_zip()))
    assert refusal.reason_code == "too_large"
    assert "together" in refusal.message


def test_a_damaged_takeout_json_file_is_refused_naming_it() -> None:
    cut = (SAMPLES / "takeout" / "steps-2026-01-04.json").read_text()[:200]
    refusal = _refused(lambda: _detect(_takeout_zip({GLOBAL_EXPORT + "steps-2026-01-04.json": cut})))
    assert refusal.reason_code == "bad_json"
    assert "“steps-2026-01-04.json”" in refusal.message


def test_takeout_strings_holding_brackets_or_escaped_quotes_are_read_normally() -> None:
    minutes = '[{"dateTime": "02/01/26 08:00:00", "value": "30", "note": "a \\"[{\\" and a ]} \\\\"}]'
    result = _detect(_zip({GLOBAL_EXPORT + "steps-2026-02-01.json": minutes}))
    assert result.steps == [DaySteps(date(2026, 2, 1), 30)]


def test_an_unterminated_string_full_of_escapes_is_refused_quickly_as_damaged() -> None:
    hostile = '[{"dateTime": "' + '\\"' * 500_000  # just under the ratio check
    refusal = _refused(lambda: _detect(_zip({GLOBAL_EXPORT + "steps-2026-02-01.json": hostile})))
    assert refusal.reason_code == "bad_json"


def test_a_takeout_archive_without_steps_or_sleep_is_refused_as_holding_no_data() -> None:
    archive = _zip({GLOBAL_EXPORT + "heart_rate-2026-01-05.json": "[]",
                    GLOBAL_EXPORT + "steps-2026-01-04.json": "[]"})
    assert _refused(lambda: _detect(archive)).reason_code == "no_data"


@pytest.mark.parametrize(("content", "code"), [
    (b"", "empty_file"),
    (b"\x89PNG\r\n\x1a\n" + bytes(64), "not_a_known_export"),
    (b"name,age\nSam,40\n", "not_a_known_export"),
    (_zip({"notes/today.txt": "a good day"}).getvalue(), "not_a_known_export"),
    (gzip.compress(b"date,steps\n2026-01-05,10\n"), "unsupported_archive"),
])
def test_a_file_that_is_no_export_we_know_is_refused_kindly(content: bytes, code: str) -> None:
    refusal = _refused(lambda: _detect(io.BytesIO(content), "holiday.png"))
    assert refusal.reason_code == code
    assert refusal.message


@pytest.mark.parametrize(("parser", "kind"), [(parse_apple_health, "fitbit_takeout"),
                                              (parse_takeout_fitbit, "apple_health"),
                                              (parse_takeout_fitbit, "csv")])
def test_a_parser_given_another_format_refuses_it_as_unknown(
        parser: Callable[..., ImportResult], kind: str) -> None:
    refusal = _refused(lambda: parser(FORMATS[kind](), TZ, today=TODAY))
    assert refusal.reason_code == "not_a_known_export"


def test_every_reason_code_must_be_one_the_web_layer_knows() -> None:
    with pytest.raises(ValueError, match="unknown import reason code"):
        ImportRefused("something_new", "…")


# ---------------------------------------------------------------------------------------------------
# Memory


_DTD = _apple_sample()[: _apple_sample().index("<HealthData locale")]
_WATCH = ("&lt;&lt;HKDevice: 0x283e1b2d0&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, "
          "hardware:Watch6,1, software:10.2&gt;")
_MEASURE = """
import json, resource, sys
from datetime import date
from wearables.importers import parse_apple_health

def status(key):
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) for line in lines if line.startswith(key + ":"))

try:  # reset the peak, so that importing the app's packages doesn't count
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
except OSError:
    pass
before = status("VmRSS")
with open(sys.argv[1], "rb") as upload:
    result = parse_apple_health(upload, "America/New_York", today=date(2026, 6, 1))
peak = min(status("VmHWM"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # both KiB
print(json.dumps({"growth_kib": peak - before, "read": result.rows_read, "days": len(result.steps)}))
"""


def _big_record(kind: str, stamp: str, value: object, child: str = "") -> str:
    opening = (f' <Record type="{kind}" sourceName="Sam’s Apple Watch" sourceVersion="10.2" '
               f'device="{_WATCH}" creationDate="{stamp}" startDate="{stamp}" endDate="{stamp}" '
               f'value="{value}"')
    return f"{opening}>\n  {child}\n </Record>\n" if child else f"{opening}/>\n"


def _write_big_apple_export(path: Path, size: int) -> int:
    """Write, streaming, an Apple export of about size bytes; return how many step and sleep records."""
    chance = random.Random(7)
    moment = datetime(2025, 6, 1, 5, tzinfo=UTC)
    written = records = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open(APPLE_XML, "w", force_zip64=True) as member:
        member.write((_DTD + '<HealthData locale="en_US">\n').encode())
        while written < size:
            lines = []
            for _ in range(500):
                moment += timedelta(seconds=chance.randint(60, 400))
                stamp = moment.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M:%S %z")
                roll = chance.random()
                if roll < 0.45:
                    record = _big_record("HKQuantityTypeIdentifierStepCount", stamp, chance.randint(1, 180))
                elif roll < 0.5:
                    record = _big_record("HKCategoryTypeIdentifierSleepAnalysis", stamp,
                                         "HKCategoryValueSleepAnalysisAsleepCore",
                                         '<MetadataEntry key="HKTimeZone" value="America/New_York"/>')
                else:
                    record = _big_record("HKQuantityTypeIdentifierHeartRate", stamp, chance.randint(48, 150),
                                         '<MetadataEntry key="HKMetadataKeyHeartRateMotionContext" '
                                         f'value="{chance.randint(0, 2)}"/>')
                lines.append(record)
                records += roll < 0.5
            chunk = "".join(lines).encode()
            member.write(chunk)
            written += len(chunk)
        member.write(b"</HealthData>\n")
    return records


def test_a_large_apple_export_is_parsed_in_flat_memory(tmp_path: Path) -> None:
    upload = tmp_path / "export.zip"
    records = _write_big_apple_export(upload, 60 * 1000 * 1000)
    finished = subprocess.run([sys.executable, "-c", _MEASURE, str(upload)], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, check=True)
    measured = json.loads(finished.stdout)
    print(f"peak RSS growth parsing a 60 MB export.xml: {measured['growth_kib']} KiB")
    assert measured["read"] == records
    assert measured["days"] > 250
    assert measured["growth_kib"] < 100 * 1024
