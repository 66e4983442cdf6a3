"""The PWA shell: landing, member home, offline page, manifest, service worker, liveness and
readiness, language."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import redis
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import text
from sqlmodel import Session
from werkzeug.wrappers import Response as BaseResponse

from app import jobs
from app.accounts import auth, services
from app.accounts.models import CohortRole, Role, User
from app.db import get_db, get_session, utcnow

bp = Blueprint("shell", __name__)
# A card on the member home, added by a feature: (session, member) -> rendered HTML.
HomeSection = Callable[[Session, User], Markup]
_SECTIONS = "hearten.home_sections"
_COHORT_LINKS = "hearten.cohort_links"
DATA_SAVER = "data_saver"  # the session key of the per-device setting
_ADMIN_LINKS = "hearten.admin_links"
# Files the service worker keeps so that the shell and the offline page open without a network.
SHELL_ASSETS = ("css/app.css", "js/app.js", "js/outbox.js", "icons/icon-192.png",
                "icons/icon-512.png")


@cache
def _file_hash(static_folder: str, filename: str) -> str:
    return hashlib.sha256((Path(static_folder) / filename).read_bytes()).hexdigest()[:12]


def asset_url(filename: str) -> str:
    """A fingerprinted static URL, cached for a year by browsers and the service worker."""
    static = current_app.static_folder or ""
    return url_for("static", filename=filename, v=_file_hash(static, filename))


def shell_version(app: Flask) -> str:
    """Changes whenever a shell file changes, so that the service worker installs a new cache."""
    static = app.static_folder or ""
    digest = hashlib.sha256()
    for name in (*SHELL_ASSETS, "sw.js", "vendor/socket.io-4.8.4.esm.min.js"):
        digest.update(_file_hash(static, name).encode())
    templates = Path(app.root_path) / "templates"
    digest.update((templates / "offline.html").read_bytes())
    digest.update((templates / "base.html").read_bytes())
    return digest.hexdigest()[:12]


@bp.get("/")
def index() -> Any:
    user = auth.current_user()
    if user is not None:
        return redirect(url_for("accounts.coach_home") if user.role != Role.MEMBER
                        else url_for("shell.member_home"))
    return render_template("index.html")


@bp.get("/home")
@auth.login_required
def member_home() -> Any:
    user = auth.require_user()
    if user.role != Role.MEMBER:
        return redirect(url_for("accounts.coach_home"))
    db_session = get_session()
    cohorts = services.cohorts_of(db_session, user=user, role=CohortRole.MEMBER)
    counts = services.member_counts(db_session, [c.id for c in cohorts if c.id is not None])
    sections = [section(db_session, user) for section in current_app.extensions[_SECTIONS]]
    return render_template("home.html", cohorts=cohorts, counts=counts, sections=sections)


@bp.get("/offline")
def offline() -> str:
    return render_template("offline.html")


@bp.get("/manifest.webmanifest")
def manifest() -> Response:
    icons = [
        {"src": asset_url("icons/icon-192.png"), "sizes": "192x192", "type": "image/png"},
        {"src": asset_url("icons/icon-512.png"), "sizes": "512x512", "type": "image/png"},
        {"src": asset_url("icons/maskable-512.png"), "sizes": "512x512", "type": "image/png",
         "purpose": "maskable"},
    ]
    body = {
        "name": "Hearten",
        "short_name": "Hearten",
        "description": _("Peer support for your wellness goals."),
        "lang": "en",
        "start_url": "/?source=pwa",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#f7f4ee",
        "theme_color": "#2f6f62",
        "icons": icons,
        # Long-press shortcuts on the home-screen icon: straight to checking in, or to the group.
        "shortcuts": [
            {"name": _("Check in on my goals"), "short_name": _("Check in"),
             "url": "/goals?source=shortcut", "icons": icons[:1]},
            {"name": _("My group's feed"), "short_name": _("Group"),
             "url": "/feed?source=shortcut", "icons": icons[:1]},
        ],
    }
    response = jsonify(body)
    response.mimetype = "application/manifest+json"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/sw.js")
def service_worker() -> Response:
    """The service worker, served from the root so that it controls every page."""
    static = Path(current_app.static_folder or "")
    source = (static / "sw.js").read_text(encoding="utf-8")
    precache = [url_for("shell.offline"), *(asset_url(name) for name in SHELL_ASSETS)]
    source = source.replace("__VERSION__", current_app.extensions["hearten.shell_version"])
    source = source.replace('"__PRECACHE__"', jsonify(precache).get_data(as_text=True).strip())
    response = Response(source, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers. Touches neither the database nor Redis (for supervisors)."""
    return jsonify({"status": "ok"})


def redis_state(url: str | None) -> str:
    """Redis's state: "ok" if it answers a PING within a second, else "unavailable" ("not used"
    without REDIS_URL)."""
    if not url:
        return "not used"
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except Exception:  # the readiness check reports, it must not fail
        return "unavailable"
    finally:
        client.close()
    return "ok"


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: the database, Redis (with REDIS_URL) and the job queue each answer."""
    database = "ok"
    try:
        with get_db().session(write=False) as session:
            session.execute(text("SELECT 1"))
    except Exception:
        database = "unavailable"
    queue = jobs.queue_state()
    parts = {"database": database, "redis": redis_state(current_app.config.get("REDIS_URL")),
             "jobs": queue["state"]}
    down = [name for name, state in parts.items() if state == "unavailable"]
    body = {"status": "unavailable" if down else "ok", "down": down,
            "database": database, "redis": parts["redis"], "jobs": queue}
    return jsonify(body), 503 if down else 200


@bp.post("/language")
def set_language() -> BaseResponse:
    language = request.form.get("language", "")
    if language in current_app.config["LANGUAGES"]:
        session["lang"] = language
        user = auth.current_user()
        if user is not None:
            with get_db().transaction() as write:
                stored = services.get_user(write, user.id or 0)
                stored.language = language
    target = request.form.get("next", "/")
    return redirect(target if target.startswith("/") and not target.startswith("//") else "/")


def add_home_section(app: Flask, section: HomeSection) -> None:
    """Let a feature add a card to the member home (features sit above `app`, so they register)."""
    app.extensions[_SECTIONS].append(section)


def add_cohort_link(app: Flask, endpoint: str, label: Any) -> None:
    """Let a feature add a link to each group on the coach home (`endpoint` takes `cohort_id`)."""
    app.extensions[_COHORT_LINKS].append((endpoint, label))


def add_admin_link(app: Flask, endpoint: str, label: Any) -> None:
    """Let a feature add a link for admins at the top of the staff home."""
    app.extensions[_ADMIN_LINKS].append((endpoint, label))


def data_saver() -> bool:
    """This device asks for fewer bytes: the browser's `Save-Data: on`, or the setting here."""
    return (request.headers.get("Save-Data", "").strip().lower() == "on"
            or bool(session.get(DATA_SAVER)))


@bp.post("/settings/data-saver")
def set_data_saver() -> BaseResponse:
    """Data saver on this device (kept in its cookie, so it holds across sign-ins)."""
    session[DATA_SAVER] = request.form.get("data_saver") == "on"
    flash(_("Data saver is on for this device: pages stay still until you refresh them.")
          if session[DATA_SAVER] else _("Data saver is off: pages update by themselves again."))
    target = request.form.get("next", "/")
    return redirect(target if target.startswith("/") and not target.startswith("//") else "/")


def viewer_tag() -> str:
    """Who a page was made for, as an opaque tag: the service worker keeps last-seen pages for
    offline reading only while this stays the same, and forgets them when it changes (another
    member signed in on this phone, or nobody is)."""
    user = auth.current_user()
    if user is None:
        return "none"
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"viewer:{user.id}".encode(), hashlib.sha256).hexdigest()[:24]


def _page_headers(response: Response) -> Response:
    if response.mimetype == "text/html":
        response.vary.add("Save-Data")
        response.headers["X-Hearten-Viewer"] = viewer_tag()
    return response


def init_app(app: Flask) -> None:
    app.after_request(_page_headers)
    app.jinja_env.globals["data_saver"] = data_saver
    app.extensions[_SECTIONS] = []
    app.extensions[_COHORT_LINKS] = []
    app.extensions[_ADMIN_LINKS] = []
    app.jinja_env.globals["cohort_links"] = lambda: app.extensions[_COHORT_LINKS]
    app.jinja_env.globals["admin_links"] = lambda: app.extensions[_ADMIN_LINKS]
    app.extensions["hearten.shell_version"] = shell_version(app)
    app.jinja_env.globals["asset"] = asset_url
    app.jinja_env.globals["rendered_at"] = lambda: utcnow().isoformat(timespec="seconds")
    app.jinja_env.globals["viewer_tag"] = viewer_tag
