"""The member's own steps and sleep: the tracker page, typing numbers in, and the metrics API."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from pydantic import BaseModel

from app.accounts import auth
from app.accounts.models import Role, User
from app.api import ApiBlueprint
from app.charts import bar_chart
from app.db import get_db, get_session, utcnow
from app.errors import DomainError, InvalidInput
from wearables import services
from wearables.models import DayMetricsPublic, SleepEntry, StepsEntry

bp = Blueprint("wearables", __name__, template_folder="templates")
api = ApiBlueprint("wearables_api", __name__, tag="wearables")
CHART_DAYS = 30


class EntryResult(BaseModel):
    stored: bool


def _member() -> User:
    user = auth.require_user()
    if user.role != Role.MEMBER:
        raise InvalidInput(_l("Steps and sleep are kept for members."))
    return user


def _parse_day(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(_l("Please pick a day from the calendar."), field="day") from None


def _parse_local(raw: str, field: str) -> datetime:
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=None)
    except ValueError:
        raise InvalidInput(_l("Please enter a date and a time."), field=field) from None


def _parse_int(raw: str, field: str) -> int:
    try:
        return int(raw.replace(",", "").replace(".", "").strip())
    except ValueError:
        raise InvalidInput(_l("Please enter a whole number."), field=field) from None


def _tracker_page(error: DomainError | None = None, form: dict[str, str] | None = None,
                  status: int = 200) -> tuple[str, int]:
    member = auth.require_user()
    with get_db().session(write=False) as read:
        days = services.recent_days(read, member=member, days=CHART_DAYS, now=utcnow())
    steps_chart = bar_chart([(format_date(d.day, "d MMM"), d.steps) for d in days])
    sleep_chart = bar_chart([(format_date(d.day, "d MMM"),
                              None if d.sleep_minutes is None else d.sleep_minutes / 60)
                             for d in days], unit=" h")
    today = services.local_today(member, utcnow())
    return render_template(
        "wearables/tracker.html", days=list(reversed(days)), steps_chart=steps_chart,
        sleep_chart=sleep_chart, error=error, form=form or {}, today=today.isoformat(),
        client_key=secrets.token_urlsafe(16), has_data=any(d.steps is not None or
                                                           d.sleep_minutes is not None
                                                           for d in days)), status


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
        raise InvalidInput(_l("Please ask for 1 to 365 days."), field="days")
    return services.recent_days(get_session(), member=_member(), days=days, now=utcnow())
