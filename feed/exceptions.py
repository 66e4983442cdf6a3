"""What can go wrong in the feed, in words for the member."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from app.errors import NotFound


class ItemNotFound(NotFound):
    default_message = _l("We could not find that post. It may have been removed.")
