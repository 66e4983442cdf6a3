"""Peak memory while reading a large Apple Health export (target: at most 100 MB RSS).

    .venv/bin/python benchmarks/import_memory.py [--megabytes 200]

Writes a zip whose export.xml is about --megabytes uncompressed (step and sleep records, written
streaming), then parses it in a fresh process and prints that process's peak resident memory,
before and after parsing, with the time taken. Figures only; not a test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

HEADER = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE HealthData [\n'
          '<!ELEMENT HealthData (ExportDate,Me,(Record|Workout)*)>\n]>\n'
          '<HealthData locale="en_US">\n <ExportDate value="2026-11-20 09:00:00 -0500"/>\n'
          ' <Me HKCharacteristicTypeIdentifierDateOfBirth=""/>\n')
STEP = (' <Record type="HKQuantityTypeIdentifierStepCount" sourceName="Phone" sourceVersion="17.1"'
        ' unit="count" creationDate="{c}" startDate="{s}" endDate="{e}" value="{v}"/>\n')
SLEEP = (' <Record type="HKCategoryTypeIdentifierSleepAnalysis" sourceName="Watch"'
         ' creationDate="{c}" startDate="{s}" endDate="{e}"'
         ' value="HKCategoryValueSleepAnalysisAsleepCore"/>\n')

PARSE = """
import resource, sys, time
from wearables.importers import parse_apple_health
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
with open(sys.argv[1], "rb") as fh:
    result = parse_apple_health(fh, "America/New_York", today=__import__("datetime").date(2026, 11, 20))
elapsed = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{before:.1f} {after:.1f} {elapsed:.2f} {len(result.steps)} {len(result.sleep)} {result.rows_read}")
"""


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S -0500")


def write_export(path: Path, megabytes: int) -> int:
    """A zip with apple_health_export/export.xml of about `megabytes` MB; returns its size."""
    target = megabytes * 1_000_000
    written = 0
    moment = datetime(2026, 11, 19, 8, 0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("apple_health_export/export.xml", "w", force_zip64=True) as out:
        out.write(HEADER.encode())
        while written < target:
            lines = []
            for _ in range(2000):
                end = moment + timedelta(minutes=4)
                lines.append(STEP.format(c=_stamp(end), s=_stamp(moment), e=_stamp(end), v=37))
                if moment.hour == 23 and moment.minute < 4:
                    wake = moment + timedelta(hours=7)
                    lines.append(SLEEP.format(c=_stamp(wake), s=_stamp(moment), e=_stamp(wake)))
                moment -= timedelta(minutes=5)
            block = "".join(lines).encode()
            out.write(block)
            written += len(block)
        out.write(b"</HealthData>\n")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hearten-import-") as folder:
        path = Path(folder) / "export.zip"
        started = time.perf_counter()
        size = write_export(path, args.megabytes)
        print(f"wrote export.xml of {size / 1e6:.0f} MB ({path.stat().st_size / 1e6:.1f} MB "
              f"zipped) in {time.perf_counter() - started:.1f} s")
        result = subprocess.run([sys.executable, "-c", PARSE, str(path)], cwd=ROOT,
                                capture_output=True, text=True, check=True)
        before, after, elapsed, days, sleeps, rows = result.stdout.split()
        print(f"peak RSS before parsing   {float(before):7.1f} MB (the interpreter and imports)")
        print(f"peak RSS after parsing    {float(after):7.1f} MB (target <= 100 MB)")
        print(f"grown while parsing       {float(after) - float(before):7.1f} MB")
        print(f"parse time                {float(elapsed):7.1f} s for {int(rows):,} records "
              f"({int(days):,} days of steps, {int(sleeps):,} sleeps)")


if __name__ == "__main__":
    main()
