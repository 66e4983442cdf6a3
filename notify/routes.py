"""Notification pages and API: the inbox (with a live unread count), the member's choices, this
phone's push subscription (only after a tap on a clear explanation), and a coach's message to a
cohort."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from pydantic import BaseModel
from werkzeug.wrappers import Response as BaseResponse

from app.accounts import auth
from app.accounts.models import CohortRole, Role, User
from app.accounts.services import cohorts_of, get_cohort_for_coach, members_of
from app.api import ApiBlueprint
from app.db import get_db, get_session, utcnow
from app.errors import DomainError, InvalidInput
from app.extensions import limiter
from notify import push, services, texts
from notify.models import (
    MEMBER_KINDS,
    InboxPage,
    Kind,
    Notification,
    NotificationPreference,
    NotificationPublic,
    PreferencesPublic,
    SubscriptionCreate,
    SubscriptionPublic,
)

bp = Blueprint("notify", __name__, template_folder="templates")
api = ApiBlueprint("notify_api", __name__, tag="notifications")
STAFF = (Role.COACH, Role.ADMIN)
KIND_LABELS = {
    Kind.CHEERS: _l("Cheers on my posts"),
    Kind.COMMENTS: _l("Comments on my posts"),
    Kind.MILESTONES: _l("Milestones I reach"),
    Kind.NUDGES: _l("A gentle evening nudge when a goal is within reach"),
    Kind.COACH: _l("Messages from my coach"),
    Kind.TRACKER: _l("When my tracker needs connecting again"),
}


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _public_preferences(found: NotificationPreference) -> PreferencesPublic:
    return PreferencesPublic(kinds_off=[Kind(k) for k in found.kinds_off.split(",") if k],
                             quiet_start=_clock(found.quiet_start),
                             quiet_end=_clock(found.quiet_end), daily_budget=found.daily_budget,
                             preview=found.preview, nudge_at=_clock(found.nudge_at))


def _public_notification(notification: Notification) -> NotificationPublic:
    found = texts.words(notification)
    return NotificationPublic(id=notification.id or 0, kind=Kind(notification.kind),
                              title=found.title, body=found.body, url=notification.url,
                              created_at=notification.created_at,
                              read=notification.read_at is not None)


# --- the inbox ---


@bp.get("/inbox")
@auth.login_required
def inbox_page() -> str:
    user = auth.require_user()
    db_session = get_session()
    items = [_public_notification(n) for n in services.inbox(db_session, user=user)]
    devices = len(services.subscriptions_of(db_session, member=user))
    with get_db().transaction() as write:
        services.mark_read(write, user=user, now=utcnow())
    return render_template("notify/inbox.html", items=items, devices=devices, now=utcnow())


@api.operation("GET", "/inbox", summary="My notifications, newest first, and how many are unread.",
               response=InboxPage)
def api_inbox() -> InboxPage:
    user = auth.require_user()
    db_session = get_session()
    return InboxPage(items=[_public_notification(n) for n in services.inbox(db_session,
                                                                            user=user)],
                     unread=services.unread_count(db_session, user_id=user.id or 0))


@api.operation("POST", "/inbox/read", summary="Mark all my notifications as read.",
               response=InboxPage)
def api_mark_read() -> InboxPage:
    user = auth.require_user()
    db_session = get_session()
    services.mark_read(db_session, user=user, now=utcnow())
    db_session.commit()
    return InboxPage(items=[], unread=0)


# --- the member's choices ---


def _settings_page(error: DomainError | None = None, status: int = 200) -> tuple[str, int]:
    user = auth.require_user()
    db_session = get_session()
    found = services.preferences(db_session, member_id=user.id or 0)
    return render_template(
        "notify/settings.html", preferences=_public_preferences(found),
        kinds=KIND_LABELS if user.role == Role.MEMBER else {},
        devices=services.subscriptions_of(db_session, member=user), error=error,
        public_key=push.public_key()), status


@bp.get("/settings/notifications")
@auth.login_required
def settings_page() -> tuple[str, int]:
    return _settings_page()


def _int(raw: str | None, field: str) -> int:
    try:
        return int(raw or "")
    except ValueError:
        raise InvalidInput(_l("Please enter a whole number."), field=field) from None


@bp.post("/settings/notifications")
@auth.login_required
def save_settings_page() -> Any:
    user = auth.require_user()
    form = request.form
    db_session = get_session()
    try:
        services.update_preferences(
            db_session, member=user,
            kinds_off=[k for k in MEMBER_KINDS if form.get(f"kind_{k}") != "on"]
            if user.role == Role.MEMBER else [],
            quiet_start=services.clock_minutes(form.get("quiet_start", ""), "quiet_start"),
            quiet_end=services.clock_minutes(form.get("quiet_end", ""), "quiet_end"),
            daily_budget=_int(form.get("daily_budget"), "daily_budget"),
            preview=form.get("preview") == "on",
            nudge_at=services.clock_minutes(form.get("nudge_at", ""), "nudge_at"))
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _settings_page(exc, exc.status)
    flash(_("Saved. You can change these any time."))
    return redirect(url_for("notify.settings_page"))


@bp.post("/settings/notifications/devices/<int:subscription_id>/remove")
@auth.login_required
def remove_device_page(subscription_id: int) -> BaseResponse:
    db_session = get_session()
    services.unsubscribe(db_session, member=auth.require_user(), subscription_id=subscription_id)
    db_session.commit()
    flash(_("That device will not get notifications any more."))
    return redirect(url_for("notify.settings_page"))


class PreferencesChange(BaseModel):
    kinds_off: list[str]
    quiet_start: str
    quiet_end: str
    daily_budget: int
    preview: bool
    nudge_at: str


@api.operation("GET", "/notifications/preferences", summary="My notification choices.",
               response=PreferencesPublic)
def api_preferences() -> PreferencesPublic:
    user = auth.require_user()
    return _public_preferences(services.preferences(get_session(), member_id=user.id or 0))


@api.operation("PUT", "/notifications/preferences", summary="Change my notification choices.",
               body=PreferencesChange, response=PreferencesPublic)
def api_change_preferences(body: PreferencesChange) -> PreferencesPublic:
    db_session = get_session()
    found = services.update_preferences(
        db_session, member=auth.require_user(), kinds_off=body.kinds_off,
        quiet_start=services.clock_minutes(body.quiet_start, "quiet_start"),
        quiet_end=services.clock_minutes(body.quiet_end, "quiet_end"),
        daily_budget=body.daily_budget, preview=body.preview,
        nudge_at=services.clock_minutes(body.nudge_at, "nudge_at"))
    db_session.commit()
    return _public_preferences(found)


# --- this phone's subscription ---


class PublicKey(BaseModel):
    public_key: str


class Endpoint(BaseModel):
    endpoint: str


@api.operation("GET", "/push/key", summary="The VAPID public key (applicationServerKey).",
               response=PublicKey)
def api_public_key() -> PublicKey:
    return PublicKey(public_key=push.public_key())


@api.operation("POST", "/push/subscriptions",
               summary="Store this device's push subscription (after the member chose to).",
               body=SubscriptionCreate, response=SubscriptionPublic, status=201)
@limiter.limit("20 per hour")
def api_subscribe(body: SubscriptionCreate) -> SubscriptionPublic:
    db_session = get_session()
    allow_http = bool(current_app.config.get("PUSH_ALLOW_HTTP_ENDPOINTS")) and \
        current_app.config["APP_ENV"] != "production"
    found = services.subscribe(db_session, member=auth.require_user(), data=body,
                               device=request.user_agent.string, allow_http=allow_http,
                               now=utcnow())
    db_session.commit()
    return SubscriptionPublic(id=found.id or 0, device=found.device, created_at=found.created_at)


@api.operation("DELETE", "/push/subscriptions/<int:subscription_id>",
               summary="Stop notifications on one of my devices.")
def api_unsubscribe(subscription_id: int) -> None:
    db_session = get_session()
    services.unsubscribe(db_session, member=auth.require_user(), subscription_id=subscription_id)
    db_session.commit()


@api.operation("POST", "/push/unsubscribe",
               summary="Stop notifications on this device (by its endpoint; on signing out).",
               body=Endpoint)
def api_unsubscribe_endpoint(body: Endpoint) -> None:
    db_session = get_session()
    services.unsubscribe(db_session, member=auth.require_user(), endpoint=body.endpoint)
    db_session.commit()


# --- coaches: a message to a cohort; who can get pushes ---


@bp.get("/coach/message")
@auth.roles_required(*STAFF)
def message_page(error: DomainError | None = None, status: int = 200) -> tuple[str, int]:
    cohorts = cohorts_of(get_session(), user=auth.require_user(), role=CohortRole.COACH)
    return render_template("notify/message.html", cohorts=cohorts, error=error), status


@bp.post("/coach/message")
@auth.roles_required(*STAFF)
def send_message_page() -> Any:
    db_session = get_session()
    try:
        reached = services.message_cohort(
            db_session, coach=auth.require_user(),
            cohort_id=_int(request.form.get("cohort_id"), "cohort_id"),
            text=request.form.get("text", "")[:2000], now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        if exc.status == 404:
            raise
        return message_page(exc, exc.status)
    flash(_("Sent to %(num)d members. It is in their inbox, and on their phones when they "
            "allow it.", num=reached))
    return redirect(url_for("notify.message_page"))


class MessageCreate(BaseModel):
    text: str


class MessageResult(BaseModel):
    reached: int


@api.operation("POST", "/cohorts/<int:cohort_id>/messages",
               summary="A coach's short message to every member of a cohort.",
               body=MessageCreate, response=MessageResult, status=201)
@auth.roles_required(*STAFF)
def api_message(cohort_id: int, body: MessageCreate) -> MessageResult:
    db_session = get_session()
    reached = services.message_cohort(db_session, coach=auth.require_user(), cohort_id=cohort_id,
                                      text=body.text, now=utcnow())
    db_session.commit()
    return MessageResult(reached=reached)


class PushStatusPublic(BaseModel):
    member_id: int
    display_name: str
    devices: int
    last_outcome: str
    last_outcome_at: str | None


@api.operation("GET", "/cohorts/<int:cohort_id>/push-status",
               summary="Per member: is push set up, and how the last push went (coaches).",
               response=PushStatusPublic, many=True)
@auth.roles_required(*STAFF)
def api_push_status(cohort_id: int) -> list[PushStatusPublic]:
    db_session = get_session()
    get_cohort_for_coach(db_session, coach=auth.require_user(), cohort_id=cohort_id)
    members: list[User] = [user for user, _m in members_of(db_session, cohort_id=cohort_id)]
    found = services.push_status(db_session, member_ids=[m.id or 0 for m in members])
    result = []
    for member in members:
        status = found[member.id or 0]
        at = status.last_outcome_at
        result.append(PushStatusPublic(
            member_id=member.id or 0, display_name=member.display_name, devices=status.devices,
            last_outcome=status.last_outcome, last_outcome_at=at.isoformat() if at else None))
    return result


def init_app(app: Flask) -> None:
    """The unread count in every page's header (it then moves live over the socket)."""

    @app.context_processor
    def _unread() -> dict[str, Any]:
        user = auth.current_user()
        if user is None or request.endpoint == "static":
            return {}
        # The request's own session: a second connection per page would let a busy pool
        # deadlock (every request holding one, waiting for another).
        return {"inbox_unread": services.unread_count(get_session(), user_id=user.id or 0)}
