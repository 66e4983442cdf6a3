"""Who is signed in: the session cookie, server-side session records, and access decorators."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, current_app, g, redirect, request, session, url_for
from werkzeug.exceptions import Forbidden, Unauthorized

from app.accounts import services
from app.accounts.models import Role, User, UserSession
from app.db import get_db, utcnow
from app.errors import NotFound, wants_json

F = TypeVar("F", bound=Callable[..., Any])
TOUCH_EVERY = timedelta(minutes=1)
SESSION_KEY = "sid"
# Served the same to everyone: no need to look the visitor up (and health checks must not).
ANONYMOUS_ENDPOINTS = frozenset({"static", "shell.healthz", "shell.offline", "shell.service_worker",
                                 "shell.manifest"})


def session_limits(app: Flask | None = None) -> services.SessionLimits:
    return services.SessionLimits.from_config((app or current_app).config)


def resolve_cookie_session() -> tuple[UserSession, User] | None:
    """The live server-side session named by this request's cookie, if any."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str):
        return None
    db = get_db()
    with db.session(write=False) as read:
        return services.resolve_session(read, token=token, now=utcnow(), limits=session_limits())


def load_current_user() -> None:
    """Before each request: set g.user and g.user_session, dropping a dead session cookie."""
    g.user = None
    g.user_session = None
    if request.endpoint in ANONYMOUS_ENDPOINTS:
        return
    found = resolve_cookie_session()
    if found is None:
        session.pop(SESSION_KEY, None)
        return
    g.user_session, g.user = found
    now = utcnow()
    if now - g.user_session.last_seen_at >= TOUCH_EVERY:
        with get_db().transaction() as write:
            services.touch_session(write, session_id=g.user_session.id, now=now)


def current_user() -> User | None:
    user: User | None = g.get("user")
    return user


def current_session() -> UserSession:
    """This device's session record; for views guarded by `login_required`."""
    record: UserSession | None = g.get("user_session")
    if record is None:
        raise Unauthorized()
    return record


def require_user() -> User:
    """The signed-in user; for views already guarded by `login_required`."""
    user = current_user()
    if user is None:
        raise Unauthorized()
    return user


def login(user: User) -> None:
    """Start a new server-side session with a fresh cookie (no session fixation)."""
    lang = session.get("lang")
    previous: UserSession | None = g.get("user_session")
    session.clear()
    device = (request.user_agent.string or "")[:80]
    with get_db().transaction() as write:
        if previous is not None:  # signing in again on this device replaces its old session
            with suppress(NotFound):
                services.end_session(write, user=services.get_user(write, previous.user_id),
                                     session_id=previous.id or 0)
        record, token = services.start_session(write, user=user, device=device, now=utcnow())
    session[SESSION_KEY] = token
    session.permanent = True
    if lang:
        session["lang"] = lang
    g.user, g.user_session = user, record


def logout() -> None:
    """End this device's session."""
    user, record = g.get("user"), g.get("user_session")
    if user is not None and record is not None:
        with get_db().transaction() as write, suppress(NotFound):  # ended elsewhere
            services.end_session(write, user=user, session_id=record.id)
    session.clear()
    g.user = g.user_session = None


def login_required(view: F) -> F:
    """Send visitors who are not signed in to the sign-in page (or answer 401 to the API)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            if wants_json():
                raise Unauthorized()
            return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Only users with one of `roles` (admins always) get through."""

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = require_user()
            if user.role != Role.ADMIN and user.role not in roles:
                raise Forbidden()
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator


def init_app(app: Flask) -> None:
    app.permanent_session_lifetime = session_limits(app).absolute
    app.before_request(load_current_user)

    @app.context_processor
    def _inject_user() -> dict[str, Any]:
        return {"current_user": current_user()}
