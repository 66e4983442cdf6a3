"""What can go wrong with steps, sleep, trackers and files, in words for the member.

Each is answered by app/errors.py as JSON or as a page: the status and code of the class it
extends (invalid_input or not_found), the message below, and the form field it is about.
Platform failures (wearables.providers.base) and refused files (wearables.importers) are not
here: the sync engine and the import job turn those into a connection's or an import's state.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from app.errors import InvalidInput, NotFound


class WearablesInvalid(InvalidInput):
    """Something the member sent about their steps, sleep or trackers was not right."""

    default_field: str | None = None

    def __init__(self, message: Any = None, *, field: str | None = None) -> None:
        super().__init__(message, field=field or self.default_field)


class MembersOnly(WearablesInvalid):
    default_message = _l("Steps and sleep are kept for members.")


# --- typed-in numbers ---


class UnreadableDay(WearablesInvalid):
    default_message, default_field = _l("Please pick a day from the calendar."), "day"


class UnreadableDateTime(WearablesInvalid):
    default_message = _l("Please enter a date and a time.")


class NotAWholeNumber(WearablesInvalid):
    default_message = _l("Please enter a whole number.")


class DayInTheFuture(WearablesInvalid):
    default_message = _l("That day has not happened yet. Please pick today or an earlier day.")
    default_field = "day"


class DayTooLongAgo(WearablesInvalid):
    default_message, default_field = _l("Please pick a day within the last year."), "day"


class StepsOutOfRange(WearablesInvalid):
    default_message = _l("Please enter a number of steps from 0 to 100,000.")
    default_field = "steps"


class WokeBeforeBed(WearablesInvalid):
    default_message = _l("The time you woke up should come after the time you went to bed.")
    default_field = "wake_time"


class NightLengthOutOfRange(WearablesInvalid):
    default_message = _l("Please check the times: a night here can be from 30 minutes to 20 "
                         "hours long.")
    default_field = "wake_time"


class WakeInTheFuture(WearablesInvalid):
    default_message, default_field = _l("That wake-up time has not happened yet."), "wake_time"


class NightTooLongAgo(WearablesInvalid):
    default_message, default_field = _l("Please pick a night within the last year."), "bedtime"


class DaysOutOfRange(WearablesInvalid):
    default_message, default_field = _l("Please ask for 1 to 365 days."), "days"


# --- trackers ---


class TrackerNotConnectable(NotFound):
    default_message = _l("That tracker cannot be connected here.")


class TrackerNotConnected(NotFound):
    default_message = _l("That tracker is not connected.")


class ConnectAttemptExpired(WearablesInvalid):
    default_message = _l("This connection attempt had expired. Please try connecting again.")


# --- files ---


class NoFileChosen(WearablesInvalid):
    default_message, default_field = _l("Please pick a file to bring in."), "file"


class EmptyFile(WearablesInvalid):
    default_message = _l("That file is empty. Please pick the exported file.")
    default_field = "file"


__all__ = ["ConnectAttemptExpired", "DayInTheFuture", "DayTooLongAgo", "DaysOutOfRange", "EmptyFile",
           "MembersOnly", "NightLengthOutOfRange", "NightTooLongAgo", "NoFileChosen",
           "NotAWholeNumber", "StepsOutOfRange", "TrackerNotConnectable", "TrackerNotConnected",
           "UnreadableDateTime", "UnreadableDay", "WakeInTheFuture", "WearablesInvalid",
           "WokeBeforeBed"]
