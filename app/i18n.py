"""Languages: the member's own choice, else a cookie from the picker, else the browser's."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import (
    format_date,
    format_datetime,
    format_decimal,
    format_percent,
    format_timedelta,
    get_locale,
    gettext,
    ngettext,
)

from app.extensions import babel


def text(message: str, **values: Any) -> str:
    """gettext, typed as the str it returns (for features that write words in Python)."""
    return str(gettext(message, **values))


def plural(singular: str, plural_form: str, count: int, **values: Any) -> str:
    """ngettext, typed as the str it returns."""
    return str(ngettext(singular, plural_form, count, **values))


def select_locale() -> str | None:
    if not has_request_context():
        return None  # commands and jobs use the default, or force a locale themselves
    languages = current_app.config["LANGUAGES"]
    user = g.get("user") or g.get("pending_user")  # the second-factor page in their language
    if user is not None and user.language in languages:
        return str(user.language)
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    return request.accept_languages.best_match(languages)


def select_timezone() -> str | None:
    user = g.get("user")
    return str(user.timezone) if user is not None else None


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.globals.update(format_date=format_date, format_datetime=format_datetime,
                                  format_timedelta=format_timedelta,
                                  format_decimal=format_decimal, format_percent=format_percent)

    @app.context_processor
    def _inject_locale() -> dict[str, Any]:
        return {"locale": str(get_locale() or "en"), "languages": app.config["LANGUAGES"]}
