"""The member's own steps and sleep: the tracker page, typing numbers in, and the metrics API."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_date, format_timedelta
from flask_babel import gettext as _
from pydantic import BaseModel
from werkzeug.wrappers import Response as BaseResponse

from app.accounts import auth
from app.accounts.models import Role, User
from app.api import ApiBlueprint
from app.charts import bar_chart
from app.db import get_db, get_session, utcnow
from app.errors import DomainError
from app.extensions import csrf, limiter
from app.urls import public_url
from wearables import imports, services, tasks, webhooks
from wearables.exceptions import (
    ConnectAttemptExpired,
    DaysOutOfRange,
    MembersOnly,
    NoFileChosen,
    NotAWholeNumber,
    TrackerNotConnectable,
    UnreadableDateTime,
    UnreadableDay,
)
from wearables.models import (
    Connection,
    ConnectionStatus,
    DayMetricsPublic,
    SleepEntry,
    Source,
    StepsEntry,
)
from wearables.providers import CONNECTABLE, LABELS
from wearables.providers.base import ProviderError, pkce_pair

bp = Blueprint("wearables", __name__, template_folder="templates")
api = ApiBlueprint("wearables_api", __name__, tag="wearables")
CHART_DAYS = 30


class EntryResult(BaseModel):
    stored: bool


def _member() -> User:
    user = auth.require_user()
    if user.role != Role.MEMBER:
        raise MembersOnly
    return user


def _parse_day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise UnreadableDay from None


def _parse_local(raw: str, field: str) -> datetime:
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=None)
    except ValueError:
        raise UnreadableDateTime(field=field) from None


def _parse_int(raw: str, field: str) -> int:
    try:
        return int(raw.replace(",", "").replace(".", "").strip())
    except ValueError:
        raise NotAWholeNumber(field=field) from None


@dataclass(frozen=True)
class ConnectionView:
    """A connection as the member's page shows it, in plain words."""

    provider: str
    label: str
    state: str  # working, syncing, needs_reconnect, move_to_google, waiting, retrying, disconnected
    last_sync_at: datetime | None
    next_attempt_at: datetime | None
    done: int
    total: int
    connection_id: int


def _view(connection: Connection, now: datetime) -> ConnectionView:
    total = max(connection.backfill_total_days, 1)
    done = 0 if connection.synced_through is None else min(
        (connection.synced_through - connection.backfill_from).days + 1, total)
    state = connection.status
    if state == ConnectionStatus.CONNECTED:
        waiting = connection.next_attempt_at is not None and connection.next_attempt_at > now
        if waiting:
            state = "retrying" if connection.failures else "waiting"
        else:
            state = "syncing" if done < total else "working"
    return ConnectionView(provider=connection.provider,
                          label=LABELS.get(connection.provider, connection.provider),
                          state=state, last_sync_at=connection.last_sync_at,
                          next_attempt_at=connection.next_attempt_at, done=done, total=total,
                          connection_id=connection.id or 0)


# Short platform names for "from Google, synced 2 hours ago" (names, so not translated).
SOURCE_NAMES: dict[str, str] = {Source.GOOGLE: "Google", Source.FITBIT: "Fitbit"}


def origin_text(source: str | None, synced_at: datetime | None, now: datetime) -> str:
    """Where a day's value came from and when it was last read, in the member's language."""
    if source is None or synced_at is None:
        return ""
    # Never "in 1 minute": a clock a little ahead still reads as just now.
    ago = format_timedelta(min(synced_at - now, -timedelta(minutes=1)), granularity="minute",
                           add_direction=True)
    if source == Source.MANUAL:
        return str(_("you typed this in %(when)s", when=ago))
    if source == Source.IMPORT:
        return str(_("from a file you brought in %(when)s", when=ago))
    return str(_("from %(source)s, synced %(when)s", source=SOURCE_NAMES.get(source, source),
                 when=ago))


def _tracker_page(error: DomainError | None = None, form: dict[str, str] | None = None,
                  status: int = 200) -> tuple[str, int]:
    member = auth.require_user()
    now = utcnow()
    with get_db().session(write=False) as read:
        days = services.recent_days(read, member=member, days=CHART_DAYS, now=now)
        connections = [_view(c, now) for c in services.connections_of(read, member=member)
                       if c.status != ConnectionStatus.DISCONNECTED]
        recent_imports = imports.imports_of(read, member=member)
    connected = {c.provider for c in connections}
    available = [(name, LABELS.get(name, name)) for name in tasks.providers()
                 if name in CONNECTABLE and name not in connected]
    steps_chart = bar_chart([(format_date(d.day, "d MMM"), d.steps) for d in days])
    sleep_chart = bar_chart([(format_date(d.day, "d MMM"),
                              None if d.sleep_minutes is None else d.sleep_minutes / 60)
                             for d in days], unit=" h")
    today = services.local_today(member, utcnow())
    return render_template(
        "wearables/tracker.html", days=list(reversed(days)), steps_chart=steps_chart,
        connections=connections, available=available, imports=recent_imports,
        refusals=imports.REFUSALS,
        sleep_chart=sleep_chart, error=error, form=form or {}, today=today.isoformat(),
        origin=lambda source, synced_at: origin_text(source, synced_at, now),
        steps_key=secrets.token_urlsafe(16), sleep_key=secrets.token_urlsafe(16),
        has_data=any(d.steps is not None or d.sleep_minutes is not None for d in days)), status


@bp.get("/tracker")
@auth.roles_required(Role.MEMBER)
def tracker() -> tuple[str, int]:
    return _tracker_page()


@bp.post("/tracker/steps")
@auth.roles_required(Role.MEMBER)
def enter_steps_page() -> Any:
    form = {key: request.form.get(key, "") for key in ("day", "steps")}
    db_session = get_session()
    try:
        stored = services.enter_steps(
            db_session, member=_member(), day=_parse_day(form["day"]),
            steps=_parse_int(form["steps"], "steps"), client_key=request.form.get("client_key"),
            now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _tracker_page(exc, form, exc.status)
    if stored:
        flash(_("Saved. Thank you for adding your steps."))
    return redirect(url_for("wearables.tracker"))


@bp.post("/tracker/sleep")
@auth.roles_required(Role.MEMBER)
def enter_sleep_page() -> Any:
    form = {key: request.form.get(key, "") for key in ("bedtime", "wake_time")}
    db_session = get_session()
    try:
        stored = services.enter_sleep(
            db_session, member=_member(), bedtime=_parse_local(form["bedtime"], "bedtime"),
            wake_time=_parse_local(form["wake_time"], "wake_time"),
            client_key=request.form.get("client_key"), now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _tracker_page(exc, form, exc.status)
    if stored:
        flash(_("Saved. Thank you for adding your sleep."))
    return redirect(url_for("wearables.tracker"))


# --- connecting a tracker (OAuth 2.0 with PKCE) ---


def _callback_url(provider: str) -> str:
    return public_url("wearables.oauth_callback", provider=provider)


@bp.post("/tracker/connect/<provider>")
@auth.roles_required(Role.MEMBER)
def connect_start(provider: str) -> BaseResponse:
    _member()
    platform = tasks.providers().get(provider)
    if platform is None or provider not in CONNECTABLE:
        raise TrackerNotConnectable
    state = secrets.token_urlsafe(24)
    verifier, challenge = pkce_pair()
    session[f"oauth:{provider}"] = {"state": state, "verifier": verifier}
    return redirect(platform.authorization_url(redirect_uri=_callback_url(provider),
                                               state=state, code_challenge=challenge))


@bp.get("/tracker/callback/<provider>")
@auth.roles_required(Role.MEMBER)
def oauth_callback(provider: str) -> Any:
    platform = tasks.providers().get(provider)
    pending = session.pop(f"oauth:{provider}", None)
    if platform is None or not isinstance(pending, dict):
        raise TrackerNotConnectable
    if not secrets.compare_digest(str(request.args.get("state", "")), pending["state"]):
        raise ConnectAttemptExpired
    if request.args.get("error"):
        flash(_("You chose not to connect. That is fine: you can type your numbers in or "
                "bring a file whenever you like."))
        return redirect(url_for("wearables.tracker"))
    try:
        tokens = platform.exchange_code(code=str(request.args.get("code", "")),
                                        redirect_uri=_callback_url(provider),
                                        code_verifier=pending["verifier"])
        identity = platform.identity(access_token=tokens.access_token)
    except ProviderError:
        flash(_("We could not finish connecting. Nothing was changed; please try again in a "
                "little while."))
        return redirect(url_for("wearables.tracker"))
    db_session = get_session()
    services.connect(db_session, member=_member(), provider=provider, tokens=tokens,
                     identity=identity, cipher=tasks.cipher(),
                     backfill_days=current_app.config["BACKFILL_DAYS"], now=utcnow(),
                     budget=platform.budget)
    db_session.commit()
    flash(_("Connected. Your past days are on their way; this page shows how far along they "
            "are."))
    return redirect(url_for("wearables.tracker"))


@bp.post("/tracker/disconnect/<provider>")
@auth.roles_required(Role.MEMBER)
def disconnect(provider: str) -> BaseResponse:
    keep = request.form.get("keep_data", "yes") != "no"
    db_session = get_session()
    services.disconnect(db_session, member=_member(), provider=provider, keep_data=keep)
    db_session.commit()
    flash(_("Disconnected. Your numbers so far are kept.") if keep else
          _("Disconnected, and the numbers from that tracker are deleted."))
    return redirect(url_for("wearables.tracker"))


# --- bringing a file ---


@bp.post("/tracker/import")
@auth.roles_required(Role.MEMBER)
def import_file() -> Any:
    # Exports are large: this one route takes up to IMPORT_MAX_BYTES, set before the body is read
    # (the usual CSRF check would read it first, under the app-wide 1 MB limit).
    request.max_content_length = current_app.config["IMPORT_MAX_BYTES"]
    csrf.protect()
    upload = request.files.get("file")
    db_session = get_session()
    try:
        if upload is None or not upload.filename:
            raise NoFileChosen
        imports.start_import(db_session, member=_member(), filename=upload.filename,
                             upload=upload.stream, folder=tasks.upload_folder())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _tracker_page(exc, {}, exc.status)
    flash(_("Got it. We are reading your file; this page shows how far along it is."))
    return redirect(url_for("wearables.tracker"))


csrf.exempt(import_file)  # checked in the view, once the route's own size limit is in place


# --- platform notifications ---


@bp.post("/webhooks/google")
@limiter.limit("600 per minute")
def google_webhook() -> tuple[str, int]:
    """Google Health API notifications: answered at once; the sync runs as a job."""
    body = request.get_data(cache=True)
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return "", 400
    if not isinstance(payload, dict):
        return "", 400
    if payload.get("type") == "verification":
        secret = str(current_app.config.get("GOOGLE_WEBHOOK_SECRET") or "")
        given = request.headers.get("Authorization", "")
        return ("", 201) if secret and secrets.compare_digest(given, secret) else ("", 401)
    keys = current_app.extensions["hearten.webhook_keys"]
    signature = next((request.headers[name] for name in webhooks.SIGNATURE_HEADERS
                      if name in request.headers), "")
    if not keys:
        return "", 404  # notifications are not set up here
    if not webhooks.signature_valid(body, signature, keys):
        return "", 401
    db_session = get_session()
    webhooks.google_notification(db_session, notification=payload, now=utcnow())
    db_session.commit()
    return "", 204


csrf.exempt(google_webhook)  # signed by Google instead


@bp.get("/webhooks/fitbit")
@limiter.limit("600 per minute")
def fitbit_webhook_verify() -> tuple[str, int]:
    """Fitbit's subscriber check: 204 for our verification code, 404 for any other."""
    expected = str(current_app.config.get("FITBIT_SUBSCRIBER_VERIFY_CODE") or "")
    given = str(request.args.get("verify", ""))
    if expected and secrets.compare_digest(given.encode(), expected.encode()):
        return "", 204
    return "", 404


@bp.post("/webhooks/fitbit")
@limiter.limit("600 per minute")
def fitbit_webhook() -> tuple[str, int]:
    """Legacy Fitbit Subscriptions API notifications: answered at once; syncs run as jobs."""
    body = request.get_data(cache=True)
    signature = request.headers.get(webhooks.FITBIT_SIGNATURE_HEADER, "")
    secret = str(current_app.config.get("FITBIT_CLIENT_SECRET") or "")
    if not webhooks.fitbit_signature_valid(body, signature, secret):
        return "", 404  # what Fitbit asks of a subscriber that gets a wrongly signed delivery
    try:
        payload = json.loads(body or b"[]")
    except ValueError:
        return "", 400
    if not isinstance(payload, list):
        return "", 400
    db_session = get_session()
    webhooks.fitbit_notifications(db_session, notifications=payload, now=utcnow())
    db_session.commit()
    return "", 204


csrf.exempt(fitbit_webhook)  # signed by Fitbit instead


# --- JSON API ---


@api.operation("POST", "/metrics/steps", summary="Type in steps for a day (members).",
               body=StepsEntry, response=EntryResult)
@auth.roles_required(Role.MEMBER)
def api_enter_steps(body: StepsEntry) -> EntryResult:
    db_session = get_session()
    stored = services.enter_steps(db_session, member=_member(), day=body.day, steps=body.steps,
                                  client_key=body.client_key, now=utcnow())
    db_session.commit()
    return EntryResult(stored=stored)


@api.operation("POST", "/metrics/sleep", summary="Type in a night's sleep (members).",
               body=SleepEntry, response=EntryResult)
@auth.roles_required(Role.MEMBER)
def api_enter_sleep(body: SleepEntry) -> EntryResult:
    db_session = get_session()
    stored = services.enter_sleep(db_session, member=_member(), bedtime=body.bedtime,
                                  wake_time=body.wake_time, client_key=body.client_key,
                                  now=utcnow())
    db_session.commit()
    return EntryResult(stored=stored)


@api.operation("GET", "/metrics", summary="My own steps and sleep, day by day (members).",
               response=DayMetricsPublic, many=True)
@auth.roles_required(Role.MEMBER)
def api_metrics() -> list[services.DayMetrics]:
    days = _parse_int(request.args.get("days", str(CHART_DAYS)), "days")
    if not 1 <= days <= 365:
        raise DaysOutOfRange
    return services.recent_days(get_session(), member=_member(), days=days, now=utcnow())
