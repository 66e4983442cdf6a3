"""Coach pages and API: a cohort's overview, its check-in list and one member's page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, render_template, request
from flask_babel import format_date
from flask_babel import gettext as _
from pydantic import BaseModel

from app.accounts import auth
from app.accounts.models import ConsentMetric, Role, User
from app.api import ApiBlueprint
from app.charts import bar_chart
from app.db import get_session, utcnow
from app.errors import InvalidInput
from coach import services
from coach.exceptions import BadWindow
from coach.services import Figure, Overview
from goals import texts as goal_texts
from wearables.services import local_today

bp = Blueprint("coach", __name__, template_folder="templates", url_prefix="/coach")
api = ApiBlueprint("coach_api", __name__, tag="coach")
COACHES = (Role.COACH,)  # admins pass every role check too


def _days() -> int:
    raw = request.args.get("days", "30")
    if not raw.isdigit():
        raise BadWindow()
    return int(raw)


def _idle_days() -> int:
    raw = request.args.get("idle", "")
    if not raw:
        return int(current_app.config["CHECK_IN_IDLE_DAYS"])
    if not raw.isdigit() or not 1 <= int(raw) <= 90:
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
