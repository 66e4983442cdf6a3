"""Socket.IO: a connection is accepted only with a live session, then joins its rooms.

Rooms: `user:<id>`, `session:<id>`, `cohort:<id>` for each cohort the user belongs to, and
`coaches:<id>` for each cohort the user coaches. The socket only delivers; actions arrive over HTTP.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, request
from flask_socketio import join_room

from app.accounts import auth, services
from app.accounts.models import CohortRole
from app.db import get_db
from app.extensions import socketio

log = logging.getLogger(__name__)


def cohort_room(cohort_id: int) -> str:
    return f"cohort:{cohort_id}"


def coaches_room(cohort_id: int) -> str:
    return f"coaches:{cohort_id}"


def emit_to_cohort(cohort_id: int, event: str, data: dict[str, Any]) -> None:
    socketio.emit(event, data, to=cohort_room(cohort_id))


def emit_to_coaches(cohort_id: int, event: str, data: dict[str, Any]) -> None:
    socketio.emit(event, data, to=coaches_room(cohort_id))


def close_session_sockets(session_id: int) -> None:
    """Tell the sockets of an ended session that it ended; the page then goes to sign-in."""
    socketio.emit("signed_out", {}, to=f"session:{session_id}")


@socketio.on("connect")
def on_connect(auth_data: Any = None) -> None:
    found = auth.resolve_cookie_session()
    if found is None:
        raise ConnectionRefusedError("unauthenticated")
    user_session, user = found
    join_room(f"user:{user.id}")
    join_room(f"session:{user_session.id}")
    with get_db().session(write=False) as session:
        for cohort in services.cohorts_of(session, user=user, role=CohortRole.MEMBER):
            join_room(cohort_room(cohort.id or 0))
        for cohort in services.cohorts_of(session, user=user, role=CohortRole.COACH):
            join_room(cohort_room(cohort.id or 0))
            join_room(coaches_room(cohort.id or 0))
    log.debug("socket %s joined for user %s", getattr(request, "sid", "?"), user.id)


def init_app(app: Flask) -> None:
    """Bind Socket.IO: threading mode, Redis message queue when REDIS_URL is set."""
    socketio.init_app(
        app,
        async_mode="threading",
        message_queue=app.config.get("REDIS_URL"),
        manage_session=False,
        cors_allowed_origins=app.config.get("SOCKETIO_CORS_ORIGINS"),
        max_http_buffer_size=64 * 1024,
    )
