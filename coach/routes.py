"""Coach pages and API: a cohort's overview, its check-in list, one member's page and exports for
evaluation; and the audit log for admins."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from pydantic import BaseModel
from werkzeug.wrappers import Response as BaseResponse

from app.accounts import auth
from app.accounts import services as accounts
from app.accounts.models import ConsentMetric, Role, User
from app.api import ApiBlueprint
from app.charts import bar_chart
from app.db import get_session, utcnow
from app.errors import DomainError, InvalidInput, NotFound
from app.urls import ID_DIGITS
from coach import audit_log, exports, services
from coach.exceptions import BadWindow
from coach.services import Figure, Overview
from goals import texts as goal_texts
from wearables.services import local_today

bp = Blueprint("coach", __name__, template_folder="templates", url_prefix="/coach")
api = ApiBlueprint("coach_api", __name__, tag="coach")
COACHES = (Role.COACH,)  # admins pass every role check too


def _days() -> int:
    raw = request.args.get("days", "30")
    if not raw.isdecimal():  # not isdigit(): int() refuses "²"
        raise BadWindow()
    return int(raw)


def _idle_days() -> int:
    raw = request.args.get("idle", "")
    if not raw:
        return int(current_app.config["CHECK_IN_IDLE_DAYS"])
    if not raw.isdecimal() or not 1 <= int(raw) <= 90:
        raise InvalidInput(_("Choose between 1 and 90 days."), field="idle")
    return int(raw)


def _min_group() -> int:
    return max(2, int(current_app.config["SMALL_GROUP_MIN"]))


def _now_today(coach: User) -> tuple[datetime, Any]:
    now = utcnow()
    return now, local_today(coach, now)


def _overview(cohort_id: int, days: int) -> tuple[Any, Overview]:
    coach = auth.require_user()
    session = get_session()
    cohort = services.cohort_for_coach(session, coach=coach, cohort_id=cohort_id)
    _, today = _now_today(coach)
    return cohort, services.overview(session, cohort_id=cohort_id, days=days, today=today,
                                     min_group=_min_group())


def _chart(found: Overview, name: str) -> Any:
    points = [(format_date(point.day, "d MMM"), getattr(point, name).value)
              for point in found.daily]
    return bar_chart(points, width=max(140, 8 * len(points)))


@bp.get("/cohorts/<int:cohort_id>")
@auth.roles_required(*COACHES)
def overview_page(cohort_id: int) -> str:
    cohort, found = _overview(cohort_id, _days())
    return render_template("coach/overview.html", cohort=cohort, o=found,
                           windows=services.WINDOWS, steps_chart=_chart(found, "steps"),
                           sleep_chart=_chart(found, "sleep_minutes"))


@bp.get("/cohorts/<int:cohort_id>/check-ins")
@auth.roles_required(*COACHES)
def check_ins_page(cohort_id: int) -> str:
    coach = auth.require_user()
    session = get_session()
    cohort = services.cohort_for_coach(session, coach=coach, cohort_id=cohort_id)
    now, today = _now_today(coach)
    idle = _idle_days()
    rows = services.check_in_list(session, cohort_id=cohort_id, now=now, today=today,
                                  idle_days=idle)
    return render_template("coach/check_ins.html", cohort=cohort, rows=rows, idle=idle, now=now,
                           needing=[r for r in rows if r.needs_check_in],
                           well=[r for r in rows if not r.needs_check_in])


@bp.get("/cohorts/<int:cohort_id>/members/<int:member_id>")
@auth.roles_required(*COACHES)
def member_page(cohort_id: int, member_id: int) -> str:
    coach = auth.require_user()
    session = get_session()
    now, today = _now_today(coach)
    view = services.member_view(session, coach=coach, cohort_id=cohort_id, member_id=member_id,
                                now=now, today=today, idle_days=_idle_days())
    session.commit()  # the audit entry of this look
    charts = {m.metric: bar_chart([(format_date(day, "d MMM"), value) for day, value in m.days],
                                  width=224)
              for m in view.metrics if m.days}
    return render_template("coach/member.html", view=view, charts=charts, now=now,
                           goal_name=goal_texts.name, goal_streak=goal_texts.streak,
                           metric_names={ConsentMetric.STEPS: _("Steps"),
                                         ConsentMetric.SLEEP: _("Sleep")})


# --- JSON API ---


class FigurePublic(BaseModel):
    value: float | None
    suppressed: bool


class DayPublic(BaseModel):
    day: str
    steps: FigurePublic
    sleep_minutes: FigurePublic


class OverviewPublic(BaseModel):
    cohort_id: int
    days: int
    first: str
    last: str
    min_group: int
    members: int | None
    average_steps: FigurePublic
    average_sleep_minutes: FigurePublic
    goals_met_share: FigurePublic
    active_members: FigurePublic
    sync_coverage: FigurePublic
    posts: FigurePublic
    cheers: FigurePublic
    comments: FigurePublic
    check_ins: FigurePublic
    daily: list[DayPublic]


def _figure(found: Figure) -> FigurePublic:
    return FigurePublic(value=None if found.suppressed else found.value,
                        suppressed=found.suppressed)


@api.operation("GET", "/coach/cohorts/<int:cohort_id>/overview",
               summary="A cohort's figures for the last 7, 30 or 90 days (?days=); figures "
                       "resting on too few members are suppressed.", response=OverviewPublic)
@auth.roles_required(*COACHES)
def api_overview(cohort_id: int) -> OverviewPublic:
    _, o = _overview(cohort_id, _days())
    names = ("average_steps", "average_sleep_minutes", "goals_met_share", "active_members",
             "sync_coverage", "posts", "cheers", "comments", "check_ins")
    return OverviewPublic(
        cohort_id=o.cohort_id, days=o.days, first=o.first.isoformat(), last=o.last.isoformat(),
        min_group=o.min_group, members=None if o.too_small else o.members,
        daily=[DayPublic(day=p.day.isoformat(), steps=_figure(p.steps),
                         sleep_minutes=_figure(p.sleep_minutes)) for p in o.daily],
        **{name: _figure(getattr(o, name)) for name in names})


class ChangePublic(BaseModel):
    metric: str
    recent: float
    usual: float


class CheckInPublic(BaseModel):
    member_id: int
    display_name: str
    tracker: str
    last_sync_at: datetime | None
    reconnect: bool
    last_seen_at: datetime | None
    idle: bool
    changes: list[ChangePublic]
    held_posts: int
    needs_check_in: bool


@api.operation("GET", "/coach/cohorts/<int:cohort_id>/check-ins",
               summary="The cohort's members with what may call for a check-in, most in need "
                       "first (?idle= days not seen, 1-90).", response=CheckInPublic, many=True)
@auth.roles_required(*COACHES)
def api_check_ins(cohort_id: int) -> list[CheckInPublic]:
    coach = auth.require_user()
    session = get_session()
    services.cohort_for_coach(session, coach=coach, cohort_id=cohort_id)
    now, today = _now_today(coach)
    rows = services.check_in_list(session, cohort_id=cohort_id, now=now, today=today,
                                  idle_days=_idle_days())
    return [_check_in_public(r) for r in rows]


def _check_in_public(r: services.CheckInRow) -> CheckInPublic:
    return CheckInPublic(
        member_id=r.member_id, display_name=r.display_name, tracker=r.tracker,
        last_sync_at=r.last_sync_at, reconnect=r.reconnect, last_seen_at=r.last_seen_at,
        idle=r.idle, held_posts=r.held_posts, needs_check_in=r.needs_check_in,
        changes=[ChangePublic(metric=c.metric, recent=round(c.recent, 1),
                              usual=round(c.usual, 1)) for c in r.changes])


class MetricPublic(BaseModel):
    metric: str
    level: str
    week_average: float | None
    month_average: float | None
    days: list[tuple[str, int | None]]


class GoalSummary(BaseModel):
    id: int
    kind: str
    title: str
    current_streak: int
    status: str


class MemberPagePublic(BaseModel):
    member_id: int
    display_name: str
    check_in: CheckInPublic
    metrics: list[MetricPublic]
    goals: list[GoalSummary]


@api.operation("GET", "/coach/cohorts/<int:cohort_id>/members/<int:member_id>",
               summary="What one member allowed their coach to see (each look is audited).",
               response=MemberPagePublic)
@auth.roles_required(*COACHES)
def api_member(cohort_id: int, member_id: int) -> MemberPagePublic:
    coach = auth.require_user()
    session = get_session()
    now, today = _now_today(coach)
    view = services.member_view(session, coach=coach, cohort_id=cohort_id, member_id=member_id,
                                now=now, today=today, idle_days=_idle_days())
    session.commit()
    return MemberPagePublic(
        member_id=member_id, display_name=view.member.display_name,
        check_in=_check_in_public(view.row),
        metrics=[MetricPublic(metric=m.metric, level=m.level, week_average=m.week,
                              month_average=m.month,
                              days=[(day.isoformat(), value) for day, value in m.days])
                 for m in view.metrics],
        goals=[GoalSummary(id=g.id or 0, kind=g.kind, title=g.title,
                           current_streak=g.current_streak, status=g.status)
               for g in view.goals])


# --- exports for evaluation ---


def _day_arg(name: str) -> date:
    raw = request.args.get(name, "").strip()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        message = (_("Please choose a start day, as a date like 2026-01-31.") if name == "start"
                   else _("Please choose an end day, as a date like 2026-03-31."))
        raise InvalidInput(message, field=name) from None


def _export_range() -> tuple[date, date]:
    return _day_arg("start"), _day_arg("end")


def _export_kind() -> exports.ExportFormat:
    raw = request.args.get("format", "")
    if raw not in (exports.ExportFormat.CSV, exports.ExportFormat.JSON):
        raise InvalidInput(_("Please choose a spreadsheet (CSV) or JSON."), field="format")
    return exports.ExportFormat(raw)


def _export(cohort_id: int, kind: exports.ExportFormat) -> exports.ExportResult:
    """Run the export; its audit entry is committed only once the export has succeeded."""
    coach = auth.require_user()
    session = get_session()
    services.cohort_for_coach(session, coach=coach, cohort_id=cohort_id)  # 404 before anything
    start, end = _export_range()
    _, today = _now_today(coach)
    result = exports.export_rows(session, coach=coach, cohort_id=cohort_id, start=start, end=end,
                                 today=today, min_group=_min_group(), kind=kind)
    session.commit()
    return result


def _streamed(chunks: Iterator[str], mimetype: str, attachment: str | None = None) -> Response:
    # The rows are read and the audit entry committed before this: writing needs no database.
    response = Response(chunks, mimetype=mimetype)
    if attachment:
        response.headers["Content-Disposition"] = f'attachment; filename="{attachment}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _json_chunks(result: exports.ExportResult) -> Iterator[str]:
    columns, notes = exports.dictionary(min_group=_min_group())  # translated now, in the request
    return exports.json_chunks(result, columns=columns, notes=notes)


@bp.get("/cohorts/<int:cohort_id>/export")
@auth.roles_required(*COACHES)
def export_page(cohort_id: int) -> BaseResponse | tuple[str, int]:
    coach = auth.require_user()
    session = get_session()
    cohort = services.cohort_for_coach(session, coach=coach, cohort_id=cohort_id)
    _, today = _now_today(coach)
    min_group = _min_group()
    form = {"start": request.args.get("start", (today - timedelta(days=89)).isoformat()),
            "end": request.args.get("end", today.isoformat()),
            "format": request.args.get("format", exports.ExportFormat.CSV)}
    error: DomainError | None = None
    if "format" in request.args:  # the form was sent: check it here, then go to the download
        try:
            kind = _export_kind()
            start, end = _export_range()
            exports.check_range(start=start, end=end, today=today)
        except DomainError as exc:
            error = exc
        else:
            endpoint = ("coach.export_csv" if kind == exports.ExportFormat.CSV
                        else "coach.export_json")
            return redirect(url_for(endpoint, cohort_id=cohort_id, start=start.isoformat(),
                                    end=end.isoformat()), 303)
    columns, notes = exports.dictionary(min_group=min_group)
    ready = exports.ready(session, coach=coach, cohort_id=cohort_id, min_group=min_group)
    page = render_template("coach/export.html", cohort=cohort, form=form, error=error,
                           today=today, ready=ready, min_group=min_group, columns=columns,
                           notes=notes, max_days=exports.MAX_DAYS)
    return page, 400 if error else 200


@bp.get("/cohorts/<int:cohort_id>/export.csv")
@auth.roles_required(*COACHES)
def export_csv(cohort_id: int) -> Response:
    result = _export(cohort_id, exports.ExportFormat.CSV)
    return _streamed(exports.csv_chunks(result), "text/csv",
                     exports.filename(result, "csv"))


@bp.get("/cohorts/<int:cohort_id>/export.json")
@auth.roles_required(*COACHES)
def export_json(cohort_id: int) -> Response:
    result = _export(cohort_id, exports.ExportFormat.JSON)
    return _streamed(_json_chunks(result), "application/json", exports.filename(result, "json"))


class ExportHeaderPublic(BaseModel):
    start: str
    end: str
    generated_at: str


class ColumnPublic(BaseModel):
    name: str
    type: str
    unit: str
    meaning: str


class ExportRowPublic(BaseModel):
    study_id: str
    day: str
    steps: int | None
    sleep_minutes: int | None
    tracker_data: bool
    goals_tracked: int
    goals_met: int
    posts: int
    cheers: int
    comments: int
    check_ins: int


class ExportPublic(BaseModel):
    cohort_export: ExportHeaderPublic
    dictionary: list[ColumnPublic]
    notes: list[str]
    rows: list[ExportRowPublic]


class ExportDictionaryPublic(BaseModel):
    columns: list[ColumnPublic]
    notes: list[str]


@api.operation("GET", "/coach/cohorts/<int:cohort_id>/export",
               summary="The cohort's de-identified daily rows for research (?start=&end=, "
                       "YYYY-MM-DD, at most 366 days): only members who agreed to research use, "
                       "and only when enough of them did. Each export is audited.",
               response=ExportPublic, errors=(409,))
@auth.roles_required(*COACHES)
def api_export(cohort_id: int) -> Response:
    result = _export(cohort_id, exports.ExportFormat.API)
    return _streamed(_json_chunks(result), "application/json")


@api.operation("GET", "/coach/export-dictionary",
               summary="What each column of an export holds, and who is included.",
               response=ExportDictionaryPublic)
@auth.roles_required(*COACHES)
def api_export_dictionary() -> ExportDictionaryPublic:
    columns, notes = exports.dictionary(min_group=_min_group())
    return ExportDictionaryPublic(columns=[ColumnPublic(**c) for c in columns], notes=notes)


# --- the audit log, for admins ---

admin = Blueprint("admin", __name__, template_folder="templates", url_prefix="/admin")
admin_api = ApiBlueprint("admin_api", __name__, tag="admin")


def _audit_filters() -> tuple[str, str, int | None]:
    action = request.args.get("action", "").strip()[:40]
    member = request.args.get("member", "").strip()[:60]
    raw = request.args.get("before", "").strip()
    if raw and not (raw.isdecimal() and len(raw) <= ID_DIGITS):  # an id a database can hold
        raise InvalidInput(_("Please use the links at the bottom of the page to see older "
                             "entries."), field="before")
    return action, member, int(raw) if raw else None


def _audit_page() -> tuple[audit_log.LogPage, str, str, bool]:
    """The entries the filters ask for, and False when nobody has the member name asked for."""
    action, member, before = _audit_filters()
    session = get_session()
    member_id = None
    if member:
        person = accounts.find_user(session, display_name=member)
        if person is None:
            return audit_log.LogPage(lines=[], older=None), action, member, False
        member_id = person.id
    found = audit_log.entries(session, action_prefix=action, member_id=member_id, before=before)
    return found, action, member, True


@admin.get("/audit")
@auth.roles_required(Role.ADMIN)
def audit_page() -> str:
    found, action, member, known = _audit_page()
    return render_template("coach/audit.html", page=found, action=action, member=member,
                           known=known, groups=audit_log.GROUPS)


class AuditLinePublic(BaseModel):
    id: int
    created_at: datetime
    actor_id: int | None
    actor: str | None
    action: str
    label: str
    subject_type: str
    subject_id: int | None
    member_id: int | None
    member: str | None
    detail: str


class AuditPagePublic(BaseModel):
    entries: list[AuditLinePublic]
    older: int | None


@admin_api.operation("GET", "/admin/audit",
                     summary="Recent audit entries, newest first (?action= a prefix such as "
                             "coach., ?member= a display name, ?before= an entry id).",
                     response=AuditPagePublic)
@auth.roles_required(Role.ADMIN)
def api_audit() -> AuditPagePublic:
    found, _action, member, known = _audit_page()
    if not known:
        raise NotFound(_("We could not find anyone called “%(name)s”.", name=member),
                       field="member")
    return AuditPagePublic(
        entries=[AuditLinePublic(
            id=line.id, created_at=line.created_at, actor_id=line.actor_id, actor=line.actor,
            action=line.action, label=line.label, subject_type=line.subject_type,
            subject_id=line.subject_id, member_id=line.member_id, member=line.member,
            detail=line.detail) for line in found.lines],
        older=found.older)
