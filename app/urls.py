"""Links that leave the app (invites, reset links): built on PUBLIC_URL when it is set; and
the `int` converter of every route."""

from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from werkzeug.routing import IntegerConverter

# Ids in URLs have at most 18 digits, so every one fits the largest integer a database binds
# (2**63 - 1, 19 digits).
ID_DIGITS = 18


def public_url(endpoint: str, **values: Any) -> str:
    base = str(current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    if base:
        return base + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


class IdConverter(IntegerConverter):
    """`<int:...>` of at most ID_DIGITS digits: a longer number names nothing, so no route
    matches it (404) and it never reaches the database driver, which would fail (500)."""

    regex = rf"\d{{1,{ID_DIGITS}}}"
