"""Log lines: JSON (one object a line) or plain text, each stamped with the request or job it
was written in; and gunicorn's access log, without the secrets that travel in some paths."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, request
from flask.wrappers import Response
from gunicorn.glogging import Logger

from app.config import log_format

# Reset tokens and invite codes are part of their links' paths: never write them down.
SECRET_PATHS = re.compile(r"^/(reset|join)/[^/?]+")
# The same anywhere in a line, and any query string (a token a library put in a URL, as urllib3
# does in its errors: "Max retries exceeded with url: /revoke?token=..."), in messages and tracebacks.
_SECRET_PATHS_ANYWHERE = re.compile(r"/(reset|join)/[^/?\s\"'<>]+")
_QUERY_STRINGS = re.compile(r"\?[^\s\"'<>()]*=[^\s\"'<>()]*")
REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

request_id_var: ContextVar[str | None] = ContextVar("hearten_request_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("hearten_job_id", default=None)

# What a record may carry besides its message (through `extra=`); nothing else is written.
FIELDS = ("method", "path", "endpoint", "status", "duration_ms", "task", "outcome")

request_log = logging.getLogger("hearten.request")


def clean_request_id(value: str | None) -> str | None:
    """An incoming request id if it is a sane one (1–64 of `A-Z a-z 0-9 . _ -`), else None."""
    return value if value and _SANE_REQUEST_ID.fullmatch(value) else None


def masked_path(path: str) -> str:
    """The path with reset tokens and invite codes masked."""
    return SECRET_PATHS.sub(r"/\1/…", path)


def scrubbed(text: str) -> str:
    """A log line's text with query strings and reset and invite secrets masked."""
    if "?" in text:
        text = _QUERY_STRINGS.sub("?…", text)
    if "/reset/" in text or "/join/" in text:
        text = _SECRET_PATHS_ANYWHERE.sub(r"/\1/…", text)
    return text


class ContextFilter(logging.Filter):
    """Stamps each record with the request id and job id of the moment it was made."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        if getattr(record, "job_id", None) is None:
            record.job_id = job_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id (and job_id, fields)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrubbed(record.getMessage()),
            "request_id": getattr(record, "request_id", None),
        }
        job_id = getattr(record, "job_id", None)
        if job_id:
            entry["job_id"] = job_id
        for name in FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exc"] = scrubbed(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = scrubbed(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request-or-job id] message`, for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(ids)s%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = [i for i in (getattr(record, "request_id", None), getattr(record, "job_id", None))
               if i]
        record.ids = f"[{' '.join(ids)}] " if ids else ""
        return scrubbed(super().format(record))


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


class _RootHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The process's one handler on the root logger (stderr), stamping ids as it writes."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(ContextFilter())


def configure(*, fmt: str, level: str | int = "INFO") -> None:
    """Write every record of this process through one root handler in `fmt`. Like
    `logging.basicConfig`, it leaves alone a root logger that something else set up (pytest,
    an operator's own logging configuration)."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _RootHandler)]
    if root.handlers and not ours:
        return
    handler = ours[0] if ours else _RootHandler()
    handler.setFormatter(formatter(fmt))
    if not ours:
        root.addHandler(handler)
    root.setLevel(level)


def init_app(app: Flask) -> None:
    """Log lines in LOG_FORMAT; a request id for every request (`X-Request-ID`, in and out); in
    JSON, one line per request written by the app in place of gunicorn's access line."""
    configure(fmt=app.config["LOG_FORMAT"], level=app.config.get("LOG_LEVEL", "INFO"))
    log_requests = app.config["LOG_FORMAT"] == "json"

    @app.before_request
    def _begin() -> None:
        rid = clean_request_id(request.headers.get(REQUEST_ID_HEADER)) or uuid.uuid4().hex
        g.request_id, g.request_started = rid, time.perf_counter()
        g.request_id_token = request_id_var.set(rid)

    @app.after_request
    def _end(response: Response) -> Response:
        rid = g.get("request_id")
        if rid is None:
            return response
        response.headers[REQUEST_ID_HEADER] = rid
        if log_requests:
            # The route's path, never its query string (OAuth codes), with secrets masked.
            path = masked_path(request.path)
            duration_ms = round((time.perf_counter() - g.request_started) * 1000, 1)
            request_log.info("%s %s %s", request.method, path, response.status_code, extra={
                "method": request.method, "path": path, "endpoint": request.endpoint,
                "status": response.status_code, "duration_ms": duration_ms})
        return response

    @app.teardown_request
    def _forget(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            try:
                request_id_var.reset(token)
            except ValueError:  # set in another context: clear it all the same
                request_id_var.set(None)


def _has_request_id(resp: Any) -> bool:
    return any(str(name).lower() == "x-request-id" for name, _ in getattr(resp, "headers", ()))


class AccessLogger(Logger):  # type: ignore[misc]
    """The standard gunicorn logger, with secret path segments masked; in JSON when LOG_FORMAT
    says so, and then only for what the app did not log itself (Socket.IO's transport)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.json_lines = log_format() == "json"
        if self.json_lines:
            for handler in (*self.error_log.handlers, *self.access_log.handlers):
                handler.setFormatter(JsonFormatter())
                handler.addFilter(ContextFilter())

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if getattr(self, "json_lines", False) and _has_request_id(resp):
            return  # the app answered it, and wrote its line already
        token = request_id_var.set(clean_request_id(environ.get("HTTP_X_REQUEST_ID")))
        try:
            super().access(resp, req, environ, request_time)
        finally:
            request_id_var.reset(token)

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        if isinstance(atoms.get("U"), str):
            atoms["U"] = masked_path(atoms["U"])
        if isinstance(atoms.get("r"), str):  # the request line: no query (OAuth codes), no secrets
            line = re.sub(r"\?[^ ]*", "", atoms["r"])
            atoms["r"] = re.sub(r" /(reset|join)/[^/ ]+", r" /\1/…", line)
        return atoms
