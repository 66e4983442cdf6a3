"""Socket.IO: a connection is accepted only with a live session, then joins its rooms.

Rooms: `user:<id>`, `session:<id>`, `cohort:<id>` for each cohort the user belongs to, and
`coaches:<id>` for each cohort the user coaches. The socket only delivers; actions arrive over HTTP.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import socketio as python_socketio
from flask import Flask, current_app, request
from flask_socketio import join_room
from socketio.manager import Manager

from app.accounts import auth, services
from app.accounts.models import CohortRole
from app.db import get_db, utcnow
from app.extensions import socketio
from app.metrics import OPEN_SOCKETS

log = logging.getLogger(__name__)


def cohort_room(cohort_id: int) -> str:
    return f"cohort:{cohort_id}"


def coaches_room(cohort_id: int) -> str:
    return f"coaches:{cohort_id}"


def emit_to_cohort(cohort_id: int, event: str, data: dict[str, Any]) -> None:
    socketio.emit(event, data, to=cohort_room(cohort_id))


def emit_to_user(user_id: int, event: str, data: dict[str, Any]) -> None:
    socketio.emit(event, data, to=f"user:{user_id}")


def emit_to_coaches(cohort_id: int, event: str, data: dict[str, Any]) -> None:
    socketio.emit(event, data, to=coaches_room(cohort_id))


class CatchUpRedisManager(python_socketio.RedisManager):  # type: ignore[misc]
    """python-socketio's Redis message queue, and one thing more. While this process had lost
    Redis, news published by any process never reached its pages (a publish gives up, and the
    listener hears nothing): once its listener is subscribed again, it tells its own pages to
    fetch what they missed ("catch_up"), each at a random moment within `within` seconds so
    that a thousand pages do not ask at once. It also tries Redis again at least every
    MAX_PAUSE seconds (the library's pause grows to a minute)."""

    MAX_PAUSE = 5.0
    PAGES_PER_SECOND = 200  # the catch-up requests a process is asked to answer each second

    def _redis_listen_with_retries(self) -> Iterator[dict[str, Any]]:
        pause, lost = 1.0, False
        while True:
            try:
                self._redis_connect()
                self.pubsub.subscribe(self.channel)
                pause = 1.0
                if lost:
                    lost = False
                    self.tell_pages_to_catch_up()
                yield from self.pubsub.listen()
            except Exception as exc:  # the library's own loop catches everything too
                log.warning("live news: Redis unreachable (%s); listening again in %.0f s",
                            type(exc).__name__, pause)
                lost = True
                time.sleep(pause)
                pause = min(pause * 2, self.MAX_PAUSE)

    def tell_pages_to_catch_up(self) -> None:
        """To this process's sockets only: the other processes' listeners tell their own."""
        pages = sum(1 for _ in self.get_participants("/", None))
        within = max(1, round(pages / self.PAGES_PER_SECOND))
        log.info("live news: Redis is back; %d pages catch up within %d s", pages, within)
        Manager.emit(self, "catch_up", {"within": within}, namespace="/")


_OPEN = "hearten.open_sockets"
_SWEEPER = "hearten.socket_sweeper"


def _open() -> dict[str, int]:
    """This process's open sockets: socket id -> the server-side session that opened it."""
    sockets: dict[str, int] = current_app.extensions[_OPEN]
    return sockets


def _disconnect(sids: list[str]) -> None:
    for sid in sids:
        socketio.server.disconnect(sid, namespace="/")


def close_session_sockets(session_id: int) -> None:
    """An ended session's pages go to sign-in, and its sockets close (here at once; in other
    processes at their next sweep), so that they hear nothing more."""
    socketio.emit("signed_out", {}, to=f"session:{session_id}")
    _disconnect([sid for sid, owner in list(_open().items()) if owner == session_id])


def leave_cohort(user_id: int, cohort_id: int) -> None:
    """The user's sockets in this process stop hearing a cohort they were taken out of (a socket
    in another process joins its rooms afresh when it next connects)."""
    manager = socketio.server.manager
    for sid, _eio_sid in list(manager.get_participants("/", f"user:{user_id}")):
        for room in (cohort_room(cohort_id), coaches_room(cohort_id)):
            socketio.server.leave_room(sid, room, namespace="/")


def sweep_sockets() -> int:
    """Close this process's sockets whose session has ended or timed out; returns how many."""
    session_ids = set(_open().values())
    if not session_ids:
        return 0
    with get_db().session(write=False) as session:
        alive = services.live_session_ids(session, session_ids=session_ids, now=utcnow(),
                                          limits=auth.session_limits())
    dead = [sid for sid, owner in list(_open().items()) if owner not in alive]
    _disconnect(dead)
    return len(dead)


def _sweep_forever(app: Flask) -> None:
    while True:
        socketio.sleep(app.config["SOCKET_SWEEP_SECONDS"])
        with app.app_context():
            try:
                sweep_sockets()
            except Exception:
                log.exception("socket sweep failed")


@socketio.on("connect")
def on_connect(auth_data: Any = None) -> None:
    found = auth.resolve_cookie_session()
    if found is None:
        raise ConnectionRefusedError("unauthenticated")
    user_session, user = found
    _open()[request.sid] = user_session.id or 0  # type: ignore[attr-defined]
    OPEN_SOCKETS.set(len(_open()))
    sweeper: threading.Event = current_app.extensions[_SWEEPER]
    if not sweeper.is_set():
        sweeper.set()
        socketio.start_background_task(_sweep_forever, current_app._get_current_object())  # type: ignore[attr-defined]
    join_room(f"user:{user.id}")
    join_room(f"session:{user_session.id}")
    with get_db().session(write=False) as session:
        for cohort in services.cohorts_of(session, user=user, role=CohortRole.MEMBER):
            join_room(cohort_room(cohort.id or 0))
        for role in (CohortRole.COACH, CohortRole.MODERATOR):
            for cohort in services.cohorts_of(session, user=user, role=role):
                join_room(cohort_room(cohort.id or 0))
                join_room(coaches_room(cohort.id or 0))
    log.debug("socket %s joined for user %s", getattr(request, "sid", "?"), user.id)


@socketio.on("disconnect")
def on_disconnect(*_reason: Any) -> None:
    _open().pop(request.sid, None)  # type: ignore[attr-defined]
    OPEN_SOCKETS.set(len(_open()))


def init_app(app: Flask) -> None:
    """Bind Socket.IO: threading mode (SOCKETIO_ASYNC_MODE, for the worker-class benchmark),
    Redis message queue when REDIS_URL is set."""
    app.extensions[_OPEN] = {}
    app.extensions[_SWEEPER] = threading.Event()
    # Flask-SocketIO keeps an earlier app's message queue in its options (one module-level
    # object; tests and benchmarks build several apps in a process): start each app afresh.
    socketio.server_options.pop("client_manager", None)
    redis_url = app.config.get("REDIS_URL")
    queue = {"client_manager": CatchUpRedisManager(redis_url, channel="flask-socketio")
             } if redis_url else {}
    socketio.init_app(
        app,
        async_mode=app.config.get("SOCKETIO_ASYNC_MODE") or "threading",
        **queue,
        manage_session=False,
        cors_allowed_origins=app.config.get("SOCKETIO_CORS_ORIGINS"),
        max_http_buffer_size=64 * 1024,
    )
