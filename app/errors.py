"""Domain errors, and how every error is answered: JSON for the API, a friendly page otherwise."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A rule of the domain was not met; `message` is written for the member."""

    status = 400
    code = "invalid"
    default_message: Any = _l("Something in the request was not right.")

    def __init__(self, message: Any = None, *, field: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        self.field = field
        super().__init__(str(self.code))


class InvalidInput(DomainError):
    status, code = 400, "invalid_input"


class NotFound(DomainError):
    status, code = 404, "not_found"
    default_message = _l("We could not find that.")


class Forbidden(DomainError):
    status, code = 403, "forbidden"
    default_message = _l("This is not available to your account.")


class Conflict(DomainError):
    status, code = 409, "conflict"


# Messages for HTTP errors raised by Flask and its extensions, by status.
HTTP_MESSAGES: dict[int, Any] = {
    400: _l("Something in the request was not right."),
    401: _l("Please sign in first."),
    403: _l("This is not available to your account."),
    404: _l("We could not find that page."),
    405: _l("That action is not possible here."),
    413: _l("That was too large to send. Please try something smaller."),
    415: _l("Please send JSON."),
    429: _l("That was a lot of tries in a short time. Please wait a few minutes and try again."),
    500: _l("Something went wrong on our side. Your data is safe; please try again soon."),
    503: _l("Hearten is busy for a moment. Please try again soon."),
}
HTTP_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
              429: "rate_limited", 500: "server_error", 503: "unavailable"}


def wants_json() -> bool:
    """API calls and scripts asking for JSON get JSON errors; browsers get a page."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(status: int, code: str, message: Any, *, field: str | None = None,
                   details: Any = None) -> tuple[Response | str, int]:
    """Answer an error in the shape the caller understands."""
    if wants_json():
        body: dict[str, Any] = {"code": code, "message": str(message)}
        if field:
            body["field"] = field
        if details is not None:
            body["details"] = details
        return jsonify({"error": body}), status
    return render_template("error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError) -> Any:
        return error_response(exc.status, exc.code, exc.message, field=exc.field)

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError) -> Any:
        return error_response(400, "csrf", _l(
            "This form had expired or was sent from somewhere else. Please reload the page "
            "and try again."))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        # A rate limit may carry its own words (e.g. "You have shared a lot this hour").
        limit_message = getattr(getattr(exc, "limit", None), "error_message", None)
        message = limit_message or HTTP_MESSAGES.get(status, exc.description)
        return error_response(status, HTTP_CODES.get(status, "http_error"), message)

    @app.errorhandler(DataError)
    def _data_error(exc: DataError) -> Any:
        # Input the checks let through but the database refused: the member's fault, not ours.
        log.warning("database refused a value on %s %s", request.method, request.path)
        return error_response(400, "bad_request", HTTP_MESSAGES[400])

    @app.errorhandler(SQLAlchemyTimeoutError)
    def _database_busy(exc: SQLAlchemyTimeoutError) -> Any:
        # Every pooled connection stayed busy for the pool's whole wait: overloaded, not broken.
        log.error("no database connection free on %s %s", request.method, request.path)
        g.user = None  # the page must not wait for a connection again (the header's counts)
        return error_response(503, "unavailable", HTTP_MESSAGES[503])

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_unavailable(exc: DBAPIError) -> Any:
        # The server is down, out of reach or dropped the connection mid-request (a pooled
        # connection is tested before each use, so a stale one never ends here): the request's
        # transaction never committed, and the next request connects afresh.
        log.error("database unavailable on %s %s: %s", request.method, request.path,
                  type(exc.orig).__name__)
        # The page must not need the database it apologises for (the header's counts would).
        g.user = None
        return error_response(503, "unavailable", HTTP_MESSAGES[503])

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        g.user = None  # the request's transaction may be broken: the page reads nothing more
        return error_response(500, "server_error", HTTP_MESSAGES[500])
