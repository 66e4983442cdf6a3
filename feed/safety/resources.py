"""Crisis resources on the page: the deployment's lines, in the reader's language, shown at once
after a post that may signal a crisis (and always on the member's safety page)."""

from __future__ import annotations

from flask import current_app, session
from flask_babel import get_locale

from feed.safety.services import Resource, crisis_resources

_SHOW = "safety:resources"


def resources() -> list[Resource]:
    return crisis_resources(country=current_app.config["CRISIS_COUNTRY"],
                            language=str(get_locale() or "en"))


def show_next() -> None:
    """The next page this member sees opens with the crisis resources."""
    session[_SHOW] = True


def take() -> list[Resource]:
    """The resources, if the page should open with them (once)."""
    return resources() if session.pop(_SHOW, False) else []
