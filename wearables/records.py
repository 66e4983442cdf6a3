"""What every source of data (tracker APIs, export files, typed-in numbers) turns into.

Plain, frozen values with no database or Flask in them, so that adapters and importers stay pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class DaySteps:
    """Steps counted on one calendar day, as the source saw the day (the member's local day)."""

    day: date
    steps: int


@dataclass(frozen=True)
class SleepSession:
    """One sleep, main or nap. Times are timezone-aware; the night is the local date it ends."""

    start: datetime
    end: datetime
    minutes_asleep: int
    minutes_in_bed: int
    is_main: bool = True
    source_id: str = ""  # the source's own id for this sleep, when it has one
