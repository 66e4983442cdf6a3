"""Who is signed in: the session cookie, server-side session records, and access decorators.

A coach or admin whose device has not passed the second factor is not signed in for anything:
`g.user` stays None (they wait in `g.pending_user`), so every `login_required` page, API route and
socket refuses them until they enter a code (app/accounts/two_factor_routes.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, current_app, g, redirect, request, session, url_for
from werkzeug.exceptions import Forbidden, Unauthorized

from app.accounts import services, two_factor
from app.accounts.exceptions import TwoFactorRequired
from app.accounts.models import Role, User, UserSession
from app.db import SAFE_METHODS, get_db, get_session, utcnow
from app.errors import NotFound, wants_json

F = TypeVar("F", bound=Callable[..., Any])
TOUCH_EVERY = timedelta(minutes=1)
SESSION_KEY = "sid"
# This device's own choices, kept when someone signs in on it: language and data saver.
DEVICE_SETTINGS = ("lang", "data_saver")
# Served the same to everyone: no need to look the visitor up (and health checks must not).
ANONYMOUS_ENDPOINTS = frozenset({"static", "shell.healthz", "shell.readyz", "shell.offline",
                                 "shell.service_worker", "shell.manifest", "metrics"})


def session_limits(app: Flask | None = None) -> services.SessionLimits:
    return services.SessionLimits.from_config((app or current_app).config)


def awaits_second_factor(user: User, record: UserSession) -> bool:
    """A coach or admin whose device has given the password but not yet a code."""
    return two_factor.needs_two_factor(user) and record.two_factor_at is None


def _cookie_session() -> tuple[UserSession, User] | None:
    """The live server-side session named by this request's cookie, second factor or not.

    A page or read is looked up through the request's own session (one connection for the whole
    request); a change through a short read of its own, so that on SQLite the request's write
    transaction does not begin before the route has checked the form."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str):
        return None
    now, limits = utcnow(), session_limits()
    if request.method in SAFE_METHODS:
        return services.resolve_session(get_session(), token=token, now=now, limits=limits)
    with get_db().session(write=False) as read:
        return services.resolve_session(read, token=token, now=now, limits=limits)


def resolve_cookie_session() -> tuple[UserSession, User] | None:
    """The signed-in session named by this request's cookie: live, and past the second factor
    where one is needed (what the socket accepts)."""
    found = _cookie_session()
    if found is None or awaits_second_factor(found[1], found[0]):
        return None
    return found


def _set_current(user: User, record: UserSession) -> None:
    """Who this request is for: the user, or, before their second factor, nobody yet."""
    if awaits_second_factor(user, record):
        g.user = g.user_session = None
        g.pending_user, g.pending_session = user, record
    else:
        g.user, g.user_session = user, record
        g.pending_user = g.pending_session = None


def load_current_user() -> None:
    """Before each request: set g.user and g.user_session (or g.pending_user and
    g.pending_session), dropping a dead session cookie."""
    g.user = g.user_session = g.pending_user = g.pending_session = None
    if request.endpoint in ANONYMOUS_ENDPOINTS:
        return
    found = _cookie_session()
    if found is None:
        session.pop(SESSION_KEY, None)
        return
    record, user = found
    _set_current(user, record)
    now = utcnow()
    if now - record.last_seen_at >= TOUCH_EVERY:
        with get_db().transaction() as write:
            services.touch_session(write, session_id=record.id or 0, now=now)


def current_user() -> User | None:
    user: User | None = g.get("user")
    return user


def pending_user() -> User | None:
    """A coach or admin who gave their password on this device and still owes a code."""
    user: User | None = g.get("pending_user")
    return user


def pending_session() -> UserSession | None:
    record: UserSession | None = g.get("pending_session")
    return record


def not_signed_in() -> Exception:
    """What to answer someone who is not signed in: sign in, or finish the second factor."""
    return TwoFactorRequired() if pending_user() is not None else Unauthorized()


def current_session() -> UserSession:
    """This device's session record; for views guarded by `login_required`."""
    record: UserSession | None = g.get("user_session")
    if record is None:
        raise not_signed_in()
    return record


def require_user() -> User:
    """The signed-in user; for views already guarded by `login_required`."""
    user = current_user()
    if user is None:
        raise not_signed_in()
    return user


def second_factor_step() -> str | None:
    """None when nothing is owed; else "two_factor" (enter a code) or "two_factor_setup"."""
    user = pending_user()
    if user is None:
        return None
    with get_db().session(write=False) as read:
        enrolled = two_factor.is_enrolled(read, user=user)
    return "two_factor" if enrolled else "two_factor_setup"


def second_factor_url(next_url: str | None = None) -> str:
    """Where a pending coach or admin goes next: set up an authenticator, or enter a code."""
    endpoint = "two_factor.setup" if second_factor_step() == "two_factor_setup" else "two_factor.verify"
    return url_for(endpoint, next=next_url) if next_url else url_for(endpoint)


def login(user: User) -> None:
    """Start a new server-side session with a fresh cookie (no session fixation)."""
    kept = {key: session[key] for key in DEVICE_SETTINGS if key in session}
    previous: UserSession | None = g.get("user_session") or g.get("pending_session")
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
    session.update(kept)
    _set_current(user, record)


def passed_second_factor() -> None:
    """This device's code was accepted: its pending user is now signed in (the caller has
    marked the session record)."""
    user, record = pending_user(), pending_session()
    if user is None or record is None:
        raise Unauthorized()
    record.two_factor_at = utcnow()
    _set_current(user, record)


def logout() -> None:
    """End this device's session (also before the second factor)."""
    user = g.get("user") or g.get("pending_user")
    record = g.get("user_session") or g.get("pending_session")
    if user is not None and record is not None:
        with get_db().transaction() as write, suppress(NotFound):  # ended elsewhere
            services.end_session(write, user=user, session_id=record.id)
    session.clear()
    g.user = g.user_session = g.pending_user = g.pending_session = None


def login_required(view: F) -> F:
    """Send visitors who are not signed in to the sign-in page, and coaches and admins who owe
    a code to the second-factor page (the API answers 401 instead)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            if wants_json():
                raise not_signed_in()
            here = request.full_path.rstrip("?")
            if pending_user() is not None:
                return redirect(second_factor_url(here))
            return redirect(url_for("accounts.login", next=here))
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
