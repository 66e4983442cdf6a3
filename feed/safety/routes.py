"""Safety pages and API: reports, blocks and mutes, the moderation queue, notices and appeals, and
the composer's check for words that may signal a crisis."""

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
from sqlmodel import Session, col, select
from werkzeug.wrappers import Response as BaseResponse

from app.accounts import auth
from app.accounts.data_rights import shown_name
from app.accounts.models import Role, User
from app.api import ApiBlueprint
from app.db import get_session, utcnow
from app.errors import DomainError, InvalidInput
from app.extensions import limiter
from feed.safety import services
from feed.safety.models import (
    ActionCreate,
    ActionKind,
    AppealCreate,
    AppealDecision,
    CrisisResource,
    ReportCategory,
    ReportCreate,
    ReportResult,
    ScreenRequest,
    ScreenResult,
    TargetType,
)
from feed.safety.resources import resources
from feed.safety.screening import screen

bp = Blueprint("safety", __name__, template_folder="templates")
api = ApiBlueprint("safety_api", __name__, tag="safety")
STAFF = (Role.COACH, Role.ADMIN)

CATEGORY_LABELS = {
    ReportCategory.HOSTILE: _l("Hostile or hurtful"),
    ReportCategory.HARASSMENT: _l("Harassment"),
    ReportCategory.MISLEADING: _l("Misleading health information"),
    ReportCategory.SELF_HARM: _l("Someone may be at risk (self-harm)"),
    ReportCategory.SPAM: _l("Spam"),
    ReportCategory.OTHER: _l("Something else"),
}
ACTION_LABELS = {
    ActionKind.APPROVE: _l("Approve: show it to the group"),
    ActionKind.DISMISS: _l("Nothing wrong: close the reports"),
    ActionKind.HIDE: _l("Hide it"),
    ActionKind.DELETE: _l("Delete it"),
    ActionKind.MISLEADING: _l("Mark as possibly misleading"),
    ActionKind.WARN: _l("Warn the member"),
    ActionKind.SUSPEND: _l("Pause their posting for some days"),
}
NOTICE_LABELS = {
    ActionKind.HIDE: _l("A post or comment of yours was hidden."),
    ActionKind.DELETE: _l("A post or comment of yours was removed."),
    ActionKind.MISLEADING: _l("A post of yours was marked as possibly misleading."),
    ActionKind.WARN: _l("A coach sent you a note about how we talk to each other here."),
    ActionKind.SUSPEND: _l("Your posting and commenting are paused for a while."),
}


class Done(BaseModel):
    done: bool


def _back(default: str) -> str:
    target = request.form.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") else default


def _int(raw: str | None, field: str) -> int:
    try:
        return int(raw or "")
    except ValueError:
        raise InvalidInput(_l("Please enter a whole number."), field=field) from None


# --- screening, for the composer ---


@api.operation("POST", "/safety/screen",
               summary="Check words as they are written: crisis resources and care notes.",
               body=ScreenRequest, response=ScreenResult)
@limiter.limit("240 per minute")
def api_screen(body: ScreenRequest) -> ScreenResult:
    verdict = screen(body.text)
    found = resources() if verdict.crisis else []
    return ScreenResult(crisis=verdict.crisis, medication=verdict.medication,
                        resources=[CrisisResource(name=r.name, contact=r.contact, detail=r.detail)
                                   for r in found])


# --- reports ---


def _report(reporter: User, data: ReportCreate) -> bool:
    db_session = get_session()
    stored = services.report(db_session, reporter=reporter, data=data,
                             hide_after=current_app.config["REPORT_HIDE_THRESHOLD"],
                             now=utcnow())
    db_session.commit()
    return stored


@bp.post("/reports")
@auth.login_required
@limiter.limit("60 per hour")
def report_page() -> BaseResponse:
    try:
        data = ReportCreate(target_type=TargetType(request.form.get("target_type", "")),
                            target_id=_int(request.form.get("target_id"), "target_id"),
                            category=ReportCategory(request.form.get("category", "")),
                            note=request.form.get("note", "")[:2000])
    except ValueError:
        raise InvalidInput(_l("Please choose what is wrong."), field="category") from None
    _report(auth.require_user(), data)
    flash(_("Thank you for telling us. A coach will look at it; the person you reported will "
            "not know it was you."))
    return redirect(_back(url_for("feed.feed_page")))


@api.operation("POST", "/reports", summary=(
    "Report a post, a comment or a member (anonymous to them; a second report of the same thing "
    "changes nothing)."), body=ReportCreate, response=ReportResult, status=201)
@limiter.limit("60 per hour")
def api_report(body: ReportCreate) -> ReportResult:
    return ReportResult(stored=_report(auth.require_user(), body))


# --- blocks and mutes ---


def _relation(other_id: int, change: Any, message: str) -> BaseResponse:
    db_session = get_session()
    change(db_session, member=auth.require_user(), other_id=other_id)
    db_session.commit()
    flash(message)
    return redirect(_back(url_for("safety.people_page")))


@bp.post("/members/<int:other_id>/block")
@auth.roles_required(Role.MEMBER)
def block_page(other_id: int) -> BaseResponse:
    return _relation(other_id, lambda s, **kw: services.block(s, now=utcnow(), **kw),
                     _("Blocked. You will not see each other's posts, comments or cheers."))


@bp.post("/members/<int:other_id>/unblock")
@auth.roles_required(Role.MEMBER)
def unblock_page(other_id: int) -> BaseResponse:
    return _relation(other_id, services.unblock, _("Unblocked."))


@bp.post("/members/<int:other_id>/mute")
@auth.roles_required(Role.MEMBER)
def mute_page(other_id: int) -> BaseResponse:
    return _relation(other_id, lambda s, **kw: services.mute(s, now=utcnow(), **kw),
                     _("Muted. Their posts are quietly left out of your feed; they are not told."))


@bp.post("/members/<int:other_id>/unmute")
@auth.roles_required(Role.MEMBER)
def unmute_page(other_id: int) -> BaseResponse:
    return _relation(other_id, services.unmute, _("Unmuted."))


def _api_relation(other_id: int, change: Any) -> Done:
    db_session = get_session()
    done = change(db_session, member=auth.require_user(), other_id=other_id)
    db_session.commit()
    return Done(done=bool(done))


@api.operation("PUT", "/members/<int:other_id>/block", summary="Block a member of my group.",
               response=Done)
@auth.roles_required(Role.MEMBER)
def api_block(other_id: int) -> Done:
    return _api_relation(other_id, lambda s, **kw: services.block(s, now=utcnow(), **kw))


@api.operation("DELETE", "/members/<int:other_id>/block", summary="Unblock a member.",
               response=Done)
@auth.roles_required(Role.MEMBER)
def api_unblock(other_id: int) -> Done:
    return _api_relation(other_id, services.unblock)


@api.operation("PUT", "/members/<int:other_id>/mute", summary="Mute a member of my group.",
               response=Done)
@auth.roles_required(Role.MEMBER)
def api_mute(other_id: int) -> Done:
    return _api_relation(other_id, lambda s, **kw: services.mute(s, now=utcnow(), **kw))


@api.operation("DELETE", "/members/<int:other_id>/mute", summary="Unmute a member.",
               response=Done)
@auth.roles_required(Role.MEMBER)
def api_unmute(other_id: int) -> Done:
    return _api_relation(other_id, services.unmute)


# --- the member's safety page: blocks, mutes, notices, appeals ---


@bp.get("/safety")
@auth.roles_required(Role.MEMBER)
def people_page(error: DomainError | None = None, status: int = 200) -> tuple[str, int]:
    member = auth.require_user()
    db_session = get_session()
    blocked, muted = services.blocked_and_muted(db_session, member=member)
    return render_template("safety/people.html", blocked=blocked, muted=muted,
                           notices=services.notices_of(db_session, member=member),
                           labels=NOTICE_LABELS, error=error, resources=resources()), status


@bp.post("/safety/notices/<int:action_id>/appeal")
@auth.roles_required(Role.MEMBER)
def appeal_page(action_id: int) -> Any:
    db_session = get_session()
    try:
        services.appeal(db_session, member=auth.require_user(), action_id=action_id,
                        text=request.form.get("text", ""), now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        if exc.status == 404:
            raise
        return people_page(exc, exc.status)
    flash(_("Thank you. A coach will take a second look and answer you here."))
    return redirect(url_for("safety.people_page"))


@api.operation("POST", "/moderation/actions/<int:action_id>/appeal",
               summary="Ask once for a second look at an action about me.", body=AppealCreate,
               response=Done, status=201, errors=(409,))
@auth.roles_required(Role.MEMBER)
def api_appeal(action_id: int, body: AppealCreate) -> Done:
    db_session = get_session()
    services.appeal(db_session, member=auth.require_user(), action_id=action_id, text=body.text,
                    now=utcnow())
    db_session.commit()
    return Done(done=True)


# --- the moderation queue ---


def _queue_page(error: DomainError | None = None, status: int = 200) -> tuple[str, int]:
    moderator = auth.require_user()
    db_session = get_session()
    entries = services.queue(db_session, moderator=moderator)
    names = _names(db_session, {e.target.member_id for e in entries})
    appeals = services.open_appeals(db_session, moderator=moderator)
    names |= _names(db_session, {a.member_id for a, _ in appeals})
    return render_template("safety/queue.html", entries=entries, names=names, appeals=appeals,
                           categories=CATEGORY_LABELS, actions=ACTION_LABELS, error=error,
                           notice_labels=NOTICE_LABELS), status


def _names(db_session: Session, ids: set[int]) -> dict[int, str]:
    return {u.id or 0: shown_name(u) for u in db_session.exec(select(User).where(
        col(User.id).in_(ids)))}


@bp.get("/moderation")
@auth.roles_required(*STAFF)
def queue_page() -> tuple[str, int]:
    return _queue_page()


@bp.post("/moderation/act")
@auth.roles_required(*STAFF)
def act_page() -> Any:
    db_session = get_session()
    try:
        try:
            data = ActionCreate(kind=ActionKind(request.form.get("kind", "")),
                                target_type=TargetType(request.form.get("target_type", "")),
                                target_id=_int(request.form.get("target_id"), "target_id"),
                                reason=request.form.get("reason", "")[:2000],
                                days=_int(request.form["days"], "days")
                                if request.form.get("days") else None)
        except ValueError:
            raise InvalidInput(_l("Please choose an action."), field="kind") from None
        services.act(db_session, moderator=auth.require_user(), data=data, now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        if exc.status in (403, 404):
            raise
        return _queue_page(exc, exc.status)
    flash(_("Done. It is in the audit log."))
    return redirect(url_for("safety.queue_page"))


@bp.post("/moderation/appeals/<int:appeal_id>")
@auth.roles_required(*STAFF)
def decide_page(appeal_id: int) -> BaseResponse:
    db_session = get_session()
    services.decide_appeal(db_session, moderator=auth.require_user(), appeal_id=appeal_id,
                           upheld=request.form.get("upheld") == "yes",
                           answer=request.form.get("answer", ""), now=utcnow())
    db_session.commit()
    flash(_("Answered. The member sees your answer on their safety page."))
    return redirect(url_for("safety.queue_page"))


class QueuePublic(BaseModel):
    target_type: TargetType
    target_id: int
    cohort_id: int
    member_id: int
    text: str
    held: bool
    reports: int
    categories: list[ReportCategory]


@api.operation("GET", "/moderation/queue", summary="Held and reported items (coaches, moderators).",
               response=QueuePublic, many=True)
@auth.roles_required(*STAFF)
def api_queue() -> list[QueuePublic]:
    entries = services.queue(get_session(), moderator=auth.require_user())
    return [QueuePublic(
        target_type=e.target.type, target_id=e.target.id, cohort_id=e.target.cohort_id,
        member_id=e.target.member_id,
        text=(e.target.comment.body if e.target.comment else
              e.target.item.body if e.target.item else ""),
        held=e.held, reports=len({r.reporter_id for r in e.reports}),
        categories=sorted({ReportCategory(r.category) for r in e.reports}))
        for e in entries]


class ActionPublic(BaseModel):
    id: int
    kind: ActionKind


@api.operation("POST", "/moderation/actions",
               summary="Approve, hide, delete, mark misleading, warn or suspend, with a reason.",
               body=ActionCreate, response=ActionPublic, status=201)
def api_act(body: ActionCreate) -> ActionPublic:
    db_session = get_session()
    action = services.act(db_session, moderator=auth.require_user(), data=body, now=utcnow())
    db_session.commit()
    return ActionPublic(id=action.id or 0, kind=ActionKind(action.kind))


@api.operation("POST", "/moderation/appeals/<int:appeal_id>/decision",
               summary="Answer an appeal: keep the action, or undo it.", body=AppealDecision,
               response=Done, errors=(409,))
def api_decide(appeal_id: int, body: AppealDecision) -> Done:
    db_session = get_session()
    services.decide_appeal(db_session, moderator=auth.require_user(), appeal_id=appeal_id,
                           upheld=body.upheld, answer=body.answer, now=utcnow())
    db_session.commit()
    return Done(done=True)


def init_app(app: Flask) -> None:
    """The moderation badge in the staff navigation, and the labels the feed's menus use."""

    @app.context_processor
    def _moderation_badge() -> dict[str, Any]:
        user = auth.current_user()
        extra: dict[str, Any] = {"report_categories": CATEGORY_LABELS}
        if user is not None and user.role in STAFF and request.endpoint != "static":
            # The request's own session (see notify.routes: one connection per request).
            extra["moderation_waiting"] = services.waiting_count(get_session(), moderator=user)
        return extra
