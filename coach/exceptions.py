"""What can go wrong in the coach views, in words a coach understands."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from app.errors import DomainError


class BadWindow(DomainError):
    status, code = 400, "bad_window"
    default_message = _l("Choose the last 7, 30 or 90 days.")


class BadExportRange(DomainError):
    status, code = 400, "bad_range"
    default_message = _l("Choose a start day on or before the end day, at most 366 days apart, "
                         "and not after today.")


class TooFewForExport(DomainError):
    status, code = 409, "too_few"
    default_message = _l("Fewer members than the smallest group we report on have agreed to "
                         "research use, so there is nothing to export yet. This keeps people "
                         "from being recognised.")
