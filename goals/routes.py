"""Goal pages and API: the list with today's progress, setting a goal in a few steps, a goal's own
page with its history, check-ins, coach suggestions, and goals a member shared with others."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
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
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlmodel import Session
from werkzeug.wrappers import Response as BaseResponse

from app.accounts import auth
from app.accounts.models import CohortRole, Role, User
from app.accounts.services import cohorts_of, get_user
from app.api import ApiBlueprint
from app.charts import bar_chart
from app.db import get_session, utcnow
from app.errors import DomainError, InvalidInput, NotFound
from app.extensions import limiter
from goals import services, texts
from goals.exceptions import GoalNotFound
from goals.models import (
    WEEKLY_KINDS,
    CheckInCreate,
    CheckInResult,
    Goal,
    GoalChange,
    GoalDayPublic,
    GoalKind,
    GoalPublic,
    GoalSettings,
    GoalStatus,
    GoalTemplate,
    MilestoneKind,
    MilestonePublic,
    TemplateCreate,
    TemplatePublic,
    Visibility,
)

bp = Blueprint("goals", __name__, template_folder="templates")
api = ApiBlueprint("goals_api", __name__, tag="goals")
HISTORY_DAYS = 30
STAFF = (Role.COACH, Role.ADMIN)
DEFAULTS: dict[GoalKind, dict[str, int]] = {
    GoalKind.STEPS: {"target": 5000},
    GoalKind.ACTIVE_DAYS: {"target": 4000, "per_week": 3},
    GoalKind.SLEEP: {"target": 7 * 60},
    GoalKind.BEDTIME: {"target": 23 * 60, "per_week": 5, "window_minutes": 60},
    GoalKind.HABIT: {},
}
WINDOW_CHOICES = (15, 30, 45, 60, 90, 120, 180)


# --- reading forms ---


def _int(raw: str | None, field: str) -> int:
    try:
        return int((raw or "").replace(",", "").replace(".", "").strip())
    except ValueError:
        raise InvalidInput(_l("Please enter a whole number."), field=field) from None


def _hours(raw: str | None) -> int:
    try:
        value = float((raw or "").replace(",", ".").strip())
    except ValueError:
        raise InvalidInput(_l("Please enter a number of hours, such as 7.5."),
                           field="target") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput(_l("Please enter a number of hours, such as 7.5."), field="target")
    return round(value * 60)


def _clock(raw: str | None) -> int:
    try:
        hour, minute = (int(part) for part in (raw or "").strip().split(":")[:2])
    except ValueError:
        raise InvalidInput(_l("Please choose a bedtime, such as 22:30."), field="target") from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise InvalidInput(_l("Please choose a bedtime, such as 22:30."), field="target")
    return hour * 60 + minute


def _visibility(raw: str | None) -> Visibility:
    try:
        return Visibility(raw or Visibility.PRIVATE)
    except ValueError:
        raise InvalidInput(_l("Please choose who can see this goal."), field="visibility") from None


def _kind(raw: str) -> GoalKind:
    try:
        return GoalKind(raw)
    except ValueError:
        raise NotFound() from None


def _target_from_form(kind: GoalKind, form: dict[str, str]) -> int:
    if kind == GoalKind.SLEEP:
        return _hours(form.get("target"))
    if kind == GoalKind.BEDTIME:
        return _clock(form.get("target"))
    if kind == GoalKind.HABIT:
        return 0
    return _int(form.get("target"), "target")


def _settings_from_form(kind: GoalKind, form: dict[str, str]) -> GoalSettings:
    template = form.get("template_id") or None
    return GoalSettings(
        kind=kind, title=form.get("title", ""), target=_target_from_form(kind, form),
        per_week=_int(form.get("per_week") or "7", "per_week"),
        window_minutes=_int(form.get("window_minutes") or "0", "window_minutes"),
        visibility=_visibility(form.get("visibility")),
        template_id=_int(template, "template_id") if template else None)


# --- what pages and the API show ---


@dataclass(frozen=True)
class GoalCard:
    """A goal as a list or page shows it, with words and a share for its ring."""

    goal: Goal
    name: str
    summary: str
    streak: str
    share: float
    ring_label: str
    checked_in: bool | None


def _share(goal: Goal, progress: services.Progress) -> tuple[float, str]:
    """How full the goal's ring is today (or this week), and that in words."""
    if goal.kind in WEEKLY_KINDS:
        needed = max(progress.week_needed, 1)
        met = min(progress.week_met, needed)
        return met / needed, _("%(met)d of %(needed)d", met=met, needed=needed)
    if goal.kind == GoalKind.HABIT:
        return (1.0 if progress.today_met else 0.0), (_("done") if progress.today_met
                                                       else _("not yet"))
    value = progress.today_value or 0
    share = min(value / goal.target, 1.0) if goal.target else 0.0
    return share, _("%(percent)d%%", percent=round(share * 100))


def _cards(session: Session, goals: list[Goal], owner: User) -> list[GoalCard]:
    today = services.local_today(owner, utcnow())
    progress = services.progress_of(session, goals=goals, today=today)
    checked = services.checked_in_today(session, goals=goals, today=today)
    cards = []
    for goal in goals:
        share, label = _share(goal, progress[goal.id or 0])
        cards.append(GoalCard(goal=goal, name=texts.name(goal),
                              summary=texts.summary(goal, progress[goal.id or 0]),
                              streak=texts.streak(goal), share=share, ring_label=label,
                              checked_in=checked.get(goal.id or 0)))
    return cards


def _public(session: Session, goals: list[Goal], owner: User) -> list[GoalPublic]:
    today = services.local_today(owner, utcnow())
    progress = services.progress_of(session, goals=goals, today=today)
    result = []
    for goal in goals:
        state = progress[goal.id or 0]
        result.append(GoalPublic(
            id=goal.id or 0, kind=GoalKind(goal.kind), name=texts.name(goal), title=goal.title,
            target=goal.target, per_week=goal.per_week, window_minutes=goal.window_minutes,
            visibility=Visibility(goal.visibility), status=GoalStatus(goal.status),
            starts_on=goal.starts_on, current_streak=goal.current_streak,
            best_streak=goal.best_streak,
            streak_unit="week" if goal.kind in WEEKLY_KINDS else "day",
            today_value=state.today_value, today_met=state.today_met, week_met=state.week_met,
            week_needed=state.week_needed, summary=texts.summary(goal, state)))
    return result


def _template_public(template: GoalTemplate) -> TemplatePublic:
    return TemplatePublic(id=template.id or 0, cohort_id=template.cohort_id,
                          kind=GoalKind(template.kind), name=texts.name(template),
                          title=template.title, note=template.note, target=template.target,
                          per_week=template.per_week, window_minutes=template.window_minutes)


def _member() -> User:
    user = auth.require_user()
    if user.role != Role.MEMBER:
        raise InvalidInput(_l("Goals are kept for members."))
    return user


# A card on a goal's own page, added by a floor above (the feed's "share with my group"):
# (session, viewer, goal) -> rendered HTML.
GoalSection = Callable[[Session, User, Goal], Markup]
_SECTIONS = "hearten.goal_sections"


def add_goal_section(app: Flask, section: GoalSection) -> None:
    app.extensions.setdefault(_SECTIONS, []).append(section)


# Whether one member may reach another's goals at all, added by a floor above (the feed's blocks):
# (session, viewer id, owner id) -> bool.
ReachCheck = Callable[[Session, int, int], bool]
_REACH = "hearten.goal_reach_checks"


def add_reach_check(app: Flask, check: ReachCheck) -> None:
    app.extensions.setdefault(_REACH, []).append(check)


def _reachable(session: Session, viewer: User, owner_id: int) -> None:
    """NotFound when someone else's goals are out of the viewer's reach (a block, either way)."""
    if viewer.id == owner_id:
        return
    if not all(check(session, viewer.id or 0, owner_id)
               for check in current_app.extensions.get(_REACH, [])):
        raise GoalNotFound()


def home_section(session: Session, user: User) -> Markup:
    """The member home's "Today" card: each goal in a sentence, habits checked in with one tap."""
    goals = [g for g in services.goals_of(session, member=user)
             if g.status == GoalStatus.ACTIVE]
    html = render_template("goals/_today.html", cards=_cards(session, goals, user),
                           key=secrets.token_urlsafe(16))
    return Markup(html)  # noqa: S704  (rendered by Jinja with autoescaping)


# --- pages: the member's goals ---


@bp.get("/goals")
@auth.roles_required(Role.MEMBER)
def goal_list() -> str:
    member = auth.require_user()
    db_session = get_session()
    goals = services.goals_of(db_session, member=member)
    archived = services.goals_of(db_session, member=member, archived=True)
    return render_template("goals/list.html", cards=_cards(db_session, goals, member),
                           archived=[(g, texts.name(g)) for g in archived],
                           key=secrets.token_urlsafe(16))


@bp.get("/goals/new")
@auth.roles_required(Role.MEMBER)
def choose_kind() -> str:
    member = auth.require_user()
    suggestions = [(t, texts.name(t)) for t in services.templates_for(get_session(),
                                                                       member=member)]
    return render_template("goals/choose.html", kinds=texts.KIND_LABELS, help=texts.KIND_HELP,
                           suggestions=suggestions, ideas=texts.HABIT_IDEAS)


def _form_defaults(kind: GoalKind, template: GoalTemplate | None) -> dict[str, str]:
    values = {"target": 0, "per_week": 7, "window_minutes": 0, **DEFAULTS[kind]}
    title = request.args.get("title", "")[:80]
    if template is not None:
        values = {"target": template.target, "per_week": template.per_week,
                  "window_minutes": template.window_minutes}
        title = template.title
    target = values["target"]
    shown = (texts.clock(target) if kind == GoalKind.BEDTIME
             else texts.hours(target) if kind == GoalKind.SLEEP else str(target))
    return {"target": shown, "per_week": str(values["per_week"]),
            "window_minutes": str(values["window_minutes"]), "title": title,
            "visibility": Visibility.PRIVATE,
            "template_id": str(template.id) if template is not None else ""}


def _render_form(kind: GoalKind, form: dict[str, str], template: GoalTemplate | None = None,
                 error: DomainError | None = None, status: int = 200) -> tuple[str, int]:
    return render_template("goals/new.html", kind=kind, form=form, error=error,
                           label=texts.KIND_LABELS[kind], help=texts.KIND_HELP[kind],
                           template=template, windows=WINDOW_CHOICES,
                           visibilities=texts.VISIBILITY_LABELS, ideas=texts.HABIT_IDEAS), status


@bp.get("/goals/new/<kind>")
@auth.roles_required(Role.MEMBER)
def new_goal_form(kind: str) -> tuple[str, int]:
    goal_kind = _kind(kind)
    template = None
    if request.args.get("template"):
        template = services.template_for(get_session(), member=auth.require_user(),
                                         template_id=_int(request.args["template"], "template"))
        if template.kind != goal_kind:
            raise NotFound()
    return _render_form(goal_kind, _form_defaults(goal_kind, template), template)


@bp.post("/goals/new/<kind>")
@auth.roles_required(Role.MEMBER)
def create_goal_page(kind: str) -> Any:
    goal_kind = _kind(kind)
    form = {key: request.form.get(key, "") for key in
            ("title", "target", "per_week", "window_minutes", "visibility", "template_id")}
    db_session = get_session()
    try:
        goal = services.create_goal(db_session, member=_member(),
                                    settings=_settings_from_form(goal_kind, form), now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _render_form(goal_kind, form, error=exc, status=exc.status)
    flash(_("Your goal is set. Go at your own pace; every bit counts."))
    return redirect(url_for("goals.goal_page", goal_id=goal.id))


def _goal_page(goal_id: int, error: DomainError | None = None,
               status: int = 200) -> tuple[str, int]:
    viewer = auth.require_user()
    db_session = get_session()
    goal = services.visible_goal(db_session, viewer=viewer, goal_id=goal_id)
    _reachable(db_session, viewer, goal.member_id)
    owner = viewer if goal.member_id == viewer.id else get_user(db_session, goal.member_id)
    card = _cards(db_session, [goal], owner)[0]
    today = services.local_today(owner, utcnow())
    days = services.history(db_session, goal=goal, today=today, days=HISTORY_DAYS)
    kind = GoalKind(goal.kind)
    chart = bar_chart([(format_date(d.day, "d MMM"), None if d.value is None else
                        (d.value / 60 if kind == GoalKind.SLEEP else d.value))
                       for d in reversed(days)], unit=" h" if kind == GoalKind.SLEEP else "") \
        if kind in (GoalKind.STEPS, GoalKind.ACTIVE_DAYS, GoalKind.SLEEP) else None
    milestones = [(m, texts.milestone(m.kind, m.streak, goal))
                  for m in services.milestones_of(db_session, goal=goal)]
    sections = [section(db_session, viewer, goal)
                for section in current_app.extensions.get(_SECTIONS, [])]
    return render_template(
        "goals/goal.html", card=card, goal=goal, owner=owner, mine=owner.id == viewer.id,
        days=[(d, texts.value_text(kind, d.value)) for d in days], chart=chart,
        milestones=milestones, sections=sections, error=error, form=_form_defaults(kind, None) | {
            "target": (texts.clock(goal.target) if kind == GoalKind.BEDTIME else
                       texts.hours(goal.target) if kind == GoalKind.SLEEP else str(goal.target)),
            "per_week": str(goal.per_week), "window_minutes": str(goal.window_minutes),
            "title": goal.title, "visibility": goal.visibility},
        windows=WINDOW_CHOICES, visibilities=texts.VISIBILITY_LABELS,
        key=secrets.token_urlsafe(16), today=today), status


@bp.get("/goals/<int:goal_id>")
@auth.login_required
def goal_page(goal_id: int) -> tuple[str, int]:
    return _goal_page(goal_id)


def _goal_action(goal_id: int, action: Any, message: str) -> Any:
    db_session = get_session()
    try:
        action(db_session)
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        if isinstance(exc, NotFound):
            raise
        return _goal_page(goal_id, exc, exc.status)
    flash(message)
    return redirect(_next_or(url_for("goals.goal_page", goal_id=goal_id)))


def _next_or(default: str) -> str:
    target = request.form.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") else default


@bp.post("/goals/<int:goal_id>/edit")
@auth.roles_required(Role.MEMBER)
def edit_goal(goal_id: int) -> Any:
    member = _member()

    def change(db_session: Session) -> None:
        goal = services.own_goal(db_session, member=member, goal_id=goal_id)
        kind = GoalKind(goal.kind)
        form = request.form
        services.change_goal(db_session, member=member, goal_id=goal_id, now=utcnow(),
                             change=GoalChange(
                                 title=form.get("title"),
                                 target=_target_from_form(kind, dict(form))
                                 if kind != GoalKind.HABIT else None,
                                 per_week=_int(form["per_week"], "per_week")
                                 if form.get("per_week") else None,
                                 window_minutes=_int(form["window_minutes"], "window_minutes")
                                 if form.get("window_minutes") else None,
                                 visibility=_visibility(form.get("visibility"))))

    return _goal_action(goal_id, change, _("Saved."))


@bp.post("/goals/<int:goal_id>/pause")
@auth.roles_required(Role.MEMBER)
def pause_goal(goal_id: int) -> Any:
    member = _member()
    return _goal_action(goal_id, lambda s: services.pause_goal(
        s, member=member, goal_id=goal_id, now=utcnow()),
        _("Paused. Take the time you need; your streak is kept."))


@bp.post("/goals/<int:goal_id>/resume")
@auth.roles_required(Role.MEMBER)
def resume_goal(goal_id: int) -> Any:
    member = _member()
    return _goal_action(goal_id, lambda s: services.resume_goal(
        s, member=member, goal_id=goal_id, now=utcnow()), _("Welcome back. Your goal is on again."))


@bp.post("/goals/<int:goal_id>/archive")
@auth.roles_required(Role.MEMBER)
def archive_goal(goal_id: int) -> Any:
    member = _member()
    db_session = get_session()
    services.archive_goal(db_session, member=member, goal_id=goal_id, now=utcnow())
    db_session.commit()
    flash(_("Archived. Its history stays with you."))
    return redirect(url_for("goals.goal_list"))


def _day_or_none(raw: str | None) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(_l("Please pick a day from the calendar."), field="day") from None


@bp.post("/goals/<int:goal_id>/check-in")
@auth.roles_required(Role.MEMBER)
@limiter.limit("120 per hour")
def check_in_page(goal_id: int) -> Any:
    member = _member()
    done = request.form.get("done", "yes") != "no"
    stored: list[bool] = []

    def answer(db_session: Session) -> None:
        stored.append(services.check_in(
            db_session, member=member, goal_id=goal_id, day=_day_or_none(request.form.get("day")),
            done=done, client_key=request.form.get("client_key") or None, now=utcnow()))

    message = _("Checked in. Thank you!") if done else _(
        "Noted. Thank you for being honest with yourself.")
    return _goal_action(goal_id, answer, message)


# --- pages: goals others shared, and coach suggestions ---


@bp.get("/members/<int:member_id>/goals")
@auth.login_required
def shared_goals(member_id: int) -> str:
    viewer = auth.require_user()
    db_session = get_session()
    _reachable(db_session, viewer, member_id)
    goals = services.visible_goals(db_session, viewer=viewer, owner_id=member_id)
    owner = get_user(db_session, member_id)
    return render_template("goals/shared.html", owner=owner,
                           cards=_cards(db_session, goals, owner))


def _suggestions_page(error: DomainError | None = None, form: dict[str, str] | None = None,
                      status: int = 200) -> tuple[str, int]:
    coach = auth.require_user()
    db_session = get_session()
    cohorts = cohorts_of(db_session, user=coach, role=CohortRole.COACH)
    templates = services.templates_of_cohorts(db_session,
                                              cohort_ids=[c.id or 0 for c in cohorts])
    names = {c.id: c.name for c in cohorts}
    return render_template("goals/suggestions.html", cohorts=cohorts, error=error,
                           templates=[(t, texts.name(t), names.get(t.cohort_id, ""))
                                      for t in templates],
                           kinds=texts.KIND_LABELS, windows=WINDOW_CHOICES,
                           form=form or {"kind": GoalKind.STEPS}), status


@bp.get("/coach/suggestions")
@auth.roles_required(*STAFF)
def suggestions() -> tuple[str, int]:
    return _suggestions_page()


@bp.post("/coach/suggestions")
@auth.roles_required(*STAFF)
def create_suggestion() -> Any:
    form = {key: request.form.get(key, "") for key in
            ("cohort_id", "kind", "title", "note", "target", "per_week", "window_minutes")}
    db_session = get_session()
    try:
        try:
            kind = GoalKind(form["kind"])
        except ValueError:
            raise InvalidInput(_l("Please choose a kind of goal."), field="kind") from None
        services.create_template(
            db_session, coach=auth.require_user(), cohort_id=_int(form["cohort_id"], "cohort_id"),
            now=utcnow(), data=TemplateCreate(
                kind=kind, title=form["title"][:80], note=form["note"][:300],
                target=_target_from_form(kind, form),
                per_week=_int(form["per_week"] or "7", "per_week"),
                window_minutes=_int(form["window_minutes"] or "0", "window_minutes")))
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _suggestions_page(exc, form, exc.status)
    flash(_("Suggested. Members of the group see it when they set a new goal."))
    return redirect(url_for("goals.suggestions"))


@bp.post("/coach/suggestions/<int:template_id>/archive")
@auth.roles_required(*STAFF)
def archive_suggestion(template_id: int) -> BaseResponse:
    db_session = get_session()
    services.archive_template(db_session, coach=auth.require_user(), template_id=template_id,
                              now=utcnow())
    db_session.commit()
    flash(_("The suggestion is withdrawn. Goals already set from it carry on."))
    return redirect(url_for("goals.suggestions"))


# --- JSON API ---


@api.operation("GET", "/goals", summary="My open goals with today's progress (members).",
               response=GoalPublic, many=True)
@auth.roles_required(Role.MEMBER)
def api_goals() -> list[GoalPublic]:
    member = auth.require_user()
    db_session = get_session()
    return _public(db_session, services.goals_of(db_session, member=member), member)


@api.operation("POST", "/goals", summary="Set a new goal (members).", body=GoalSettings,
               response=GoalPublic, status=201)
@auth.roles_required(Role.MEMBER)
def api_create_goal(body: GoalSettings) -> GoalPublic:
    member = _member()
    db_session = get_session()
    goal = services.create_goal(db_session, member=member, settings=body, now=utcnow())
    db_session.commit()
    return _public(db_session, [goal], member)[0]


def _visible_public(goal_id: int) -> GoalPublic:
    viewer = auth.require_user()
    db_session = get_session()
    goal = services.visible_goal(db_session, viewer=viewer, goal_id=goal_id)
    _reachable(db_session, viewer, goal.member_id)
    owner = viewer if goal.member_id == viewer.id else get_user(db_session, goal.member_id)
    return _public(db_session, [goal], owner)[0]


@api.operation("GET", "/goals/<int:goal_id>", summary="One goal: mine, or one shared with me.",
               response=GoalPublic)
def api_goal(goal_id: int) -> GoalPublic:
    return _visible_public(goal_id)


@api.operation("PATCH", "/goals/<int:goal_id>", summary="Change my goal.", body=GoalChange,
               response=GoalPublic)
@auth.roles_required(Role.MEMBER)
def api_change_goal(goal_id: int, body: GoalChange) -> GoalPublic:
    member = _member()
    db_session = get_session()
    goal = services.change_goal(db_session, member=member, goal_id=goal_id, change=body,
                                now=utcnow())
    db_session.commit()
    return _public(db_session, [goal], member)[0]


def _api_action(goal_id: int, action: Any) -> GoalPublic:
    member = _member()
    db_session = get_session()
    goal = action(db_session, member=member, goal_id=goal_id, now=utcnow())
    db_session.commit()
    return _public(db_session, [goal], member)[0]


@api.operation("POST", "/goals/<int:goal_id>/pause", summary="Pause my goal from today.",
               response=GoalPublic)
@auth.roles_required(Role.MEMBER)
def api_pause_goal(goal_id: int) -> GoalPublic:
    return _api_action(goal_id, services.pause_goal)


@api.operation("POST", "/goals/<int:goal_id>/resume", summary="Resume my paused goal.",
               response=GoalPublic)
@auth.roles_required(Role.MEMBER)
def api_resume_goal(goal_id: int) -> GoalPublic:
    return _api_action(goal_id, services.resume_goal)


@api.operation("POST", "/goals/<int:goal_id>/archive", summary="Archive my goal.",
               response=GoalPublic)
@auth.roles_required(Role.MEMBER)
def api_archive_goal(goal_id: int) -> GoalPublic:
    return _api_action(goal_id, services.archive_goal)


@api.operation("POST", "/goals/<int:goal_id>/check-ins",
               summary="Check in on a habit goal (a resend with the same client key counts once).",
               body=CheckInCreate, response=CheckInResult, errors=(409,))
@auth.roles_required(Role.MEMBER)
@limiter.limit("120 per hour")
def api_check_in(goal_id: int, body: CheckInCreate) -> CheckInResult:
    member = _member()
    db_session = get_session()
    stored = services.check_in(db_session, member=member, goal_id=goal_id, day=body.day,
                               done=body.done, client_key=body.client_key, now=utcnow())
    db_session.commit()
    goal = services.own_goal(db_session, member=member, goal_id=goal_id)
    return CheckInResult(stored=stored, goal=_public(db_session, [goal], member)[0])


@api.operation("GET", "/goals/<int:goal_id>/history",
               summary="A goal's days, newest first (?days=1-365).", response=GoalDayPublic,
               many=True)
def api_goal_history(goal_id: int) -> list[services.HistoryDay]:
    days = _int(request.args.get("days", str(HISTORY_DAYS)), "days")
    if not 1 <= days <= 365:
        raise InvalidInput(_l("Please ask for 1 to 365 days."), field="days")
    viewer = auth.require_user()
    db_session = get_session()
    goal = services.visible_goal(db_session, viewer=viewer, goal_id=goal_id)
    _reachable(db_session, viewer, goal.member_id)
    owner = viewer if goal.member_id == viewer.id else get_user(db_session, goal.member_id)
    return services.history(db_session, goal=goal, today=services.local_today(owner, utcnow()),
                            days=days)


@api.operation("GET", "/goals/<int:goal_id>/milestones", summary="A goal's milestones.",
               response=MilestonePublic, many=True)
def api_goal_milestones(goal_id: int) -> list[MilestonePublic]:
    db_session = get_session()
    viewer = auth.require_user()
    goal = services.visible_goal(db_session, viewer=viewer, goal_id=goal_id)
    _reachable(db_session, viewer, goal.member_id)
    return [MilestonePublic(kind=MilestoneKind(m.kind), reached_on=m.reached_on, streak=m.streak,
                            text=texts.milestone(m.kind, m.streak, goal))
            for m in services.milestones_of(db_session, goal=goal)]


@api.operation("GET", "/members/<int:member_id>/goals",
               summary="The goals a member shared with me (peers and coaches).",
               response=GoalPublic, many=True)
def api_shared_goals(member_id: int) -> list[GoalPublic]:
    db_session = get_session()
    viewer = auth.require_user()
    _reachable(db_session, viewer, member_id)
    goals = services.visible_goals(db_session, viewer=viewer, owner_id=member_id)
    return _public(db_session, goals, get_user(db_session, member_id))


@api.operation("GET", "/goal-templates",
               summary="Goals suggested by coaches: to me (members) or by me (coaches).",
               response=TemplatePublic, many=True)
def api_templates() -> list[TemplatePublic]:
    user = auth.require_user()
    db_session = get_session()
    if user.role == Role.MEMBER:
        templates = services.templates_for(db_session, member=user)
    else:
        cohorts = cohorts_of(db_session, user=user, role=CohortRole.COACH)
        templates = services.templates_of_cohorts(db_session,
                                                  cohort_ids=[c.id or 0 for c in cohorts])
    return [_template_public(t) for t in templates]


@api.operation("POST", "/cohorts/<int:cohort_id>/goal-templates",
               summary="Suggest a goal to a cohort (its coaches).", body=TemplateCreate,
               response=TemplatePublic, status=201)
@auth.roles_required(*STAFF)
def api_create_template(cohort_id: int, body: TemplateCreate) -> TemplatePublic:
    db_session = get_session()
    template = services.create_template(db_session, coach=auth.require_user(),
                                        cohort_id=cohort_id, data=body, now=utcnow())
    db_session.commit()
    return _template_public(template)
