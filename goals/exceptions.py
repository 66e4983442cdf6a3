"""What can go wrong with goals, in words for the member."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from app.errors import Conflict, NotFound


class GoalNotFound(NotFound):
    default_message = _l("We could not find that goal.")


class AlreadyCheckedIn(Conflict):
    code = "already_checked_in"
    default_message = _l("You have already checked in for that day. Thank you!")
