"""Pages and API for joining, signing in, sessions, cohorts, invites and reset links."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import generate_csrf
from werkzeug.wrappers import Response as BaseResponse

from app.accounts import auth, consent, data_rights, services
from app.accounts.exceptions import InvalidInput, InviteNotUsable, NotFound
from app.accounts.models import (
    AccountDeletion,
    Cohort,
    CohortCreate,
    CohortPublic,
    CohortRole,
    ConsentLevel,
    ConsentMetric,
    CsrfTokenPublic,
    Invite,
    InviteCreate,
    InvitePublic,
    JoinRequest,
    LoginPublic,
    LoginRequest,
    MemberPublic,
    PostsChoice,
    ResetLinkPublic,
    Role,
    SessionPublic,
    SharingPublic,
    SharingUpdate,
    StaffAdd,
    StaffPublic,
    User,
    UserPublic,
)
from app.api import ApiBlueprint
from app.db import get_db, get_session, utcnow
from app.errors import DomainError
from app.extensions import limiter
from app.urls import public_url

bp = Blueprint("accounts", __name__, template_folder="templates")
api = ApiBlueprint("accounts_api", __name__, tag="accounts")
STAFF = (Role.COACH, Role.ADMIN)


def _account_key() -> str:
    """Throttle sign-in attempts per account as well as per address."""
    name: Any = request.form.get("display_name")
    if name is None and request.is_json:
        data = request.get_json(silent=True)
        name = data.get("display_name") if isinstance(data, dict) else None
    return "account:" + services.name_key(str(name or ""))


def _ip_limit() -> str:
    return str(current_app.config["LOGIN_LIMIT_PER_IP"])


def _account_limit() -> str:
    return str(current_app.config["LOGIN_LIMIT_PER_ACCOUNT"])


def _failed(response: Response) -> bool:
    """Only failed sign-ins use up the allowance; a member who signs in often is never blocked."""
    return response.status_code == 401


# Shared scopes: the form and the API draw on one allowance per address and one per account.
throttled = [
    limiter.shared_limit(_ip_limit, scope="login-ip", methods=["POST"], deduct_when=_failed),
    limiter.shared_limit(_account_limit, scope="login-account", key_func=_account_key,
                         methods=["POST"], deduct_when=_failed),
]


def _own_account_key() -> str:
    """The signed-in account, keyed as sign-in keys it, so that both share one allowance."""
    user = auth.current_user()
    return "account:" + (user.name_key if user else "")


def _wrong_password(response: Response) -> bool:
    return response.status_code == 403


# Wrong passwords when confirming an account's deletion use up the account's sign-in allowance.
throttle_confirm = limiter.shared_limit(_account_limit, scope="login-account",
                                        key_func=_own_account_key, methods=["POST", "DELETE"],
                                        deduct_when=_wrong_password)


def throttle(view: Any) -> Any:
    for decorate in throttled:
        view = decorate(view)
    return view


def _home_for(user: User) -> str:
    return url_for("accounts.coach_home") if user.role in STAFF else url_for("shell.member_home")


def _safe_next(default: str) -> str:
    target = request.args.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") else default


def _invite_public(invite: Invite) -> InvitePublic:
    return InvitePublic(id=invite.id or 0, cohort_id=invite.cohort_id,
                        code=services.format_code(invite.code),
                        link=public_url("accounts.join_form", code=invite.code),
                        expires_at=invite.expires_at, max_uses=invite.max_uses, uses=invite.uses,
                        revoked=invite.revoked_at is not None)


# --- pages: joining and signing in ---


@bp.get("/join")
def join_start() -> str | BaseResponse:
    code = request.args.get("code", "").strip()
    if code:
        return redirect(url_for("accounts.join_form", code=services.normalise_code(code)))
    return render_template("accounts/join_start.html")


def _render_join(code: str, form: dict[str, str], error: DomainError | None = None,
                 status: int = 200) -> tuple[str, int]:
    invite = cohort_name = None
    # A read of its own: after a refused join, the form must not hold the write lock.
    with get_db().session(write=False) as read:
        try:
            invite = services.find_invite(read, code=code, now=utcnow())
            cohort = read.get(Cohort, invite.cohort_id)
            cohort_name = cohort.name if cohort else None
        except InviteNotUsable as exc:
            error, status = exc, exc.status
    return render_template("accounts/join.html", code=services.format_code(code),
                           invite=invite, cohort_name=cohort_name, form=form, error=error,
                           timezones=services.timezones()), status


@bp.get("/join/<code>")
def join_form(code: str) -> tuple[str, int]:
    return _render_join(code, {"language": session.get("lang", "en")})


@bp.post("/join/<code>")
@limiter.limit(_ip_limit)
def join_submit(code: str) -> Any:
    form = {key: request.form.get(key, "") for key in ("display_name", "timezone", "language")}
    db_session = get_session()
    try:
        user = services.join_with_invite(
            db_session, code=code, display_name=form["display_name"],
            password=request.form.get("password", ""), timezone=form["timezone"] or "UTC",
            language=form["language"] or "en", now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _render_join(code, form, exc, exc.status)
    auth.login(user)
    flash(_("Welcome, %(name)s. We are glad you are here.", name=user.display_name))
    flash(_("Your steps and sleep stay private unless you choose to share them. You can choose "
            "at any time under “What your coach can see”."))
    return redirect(url_for("shell.member_home"))


@bp.route("/login", methods=["GET", "POST"])
@throttle
def login() -> Any:
    if request.method != "POST":
        if auth.current_user():
            return redirect(_home_for(auth.require_user()))
        return render_template("accounts/login.html", form={})
    name = request.form.get("display_name", "")
    db_session = get_session()
    try:
        user = services.authenticate(db_session, display_name=name,
                                     password=request.form.get("password", ""))
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return render_template("accounts/login.html", form={"display_name": name},
                               error=exc), exc.status
    auth.login(user)
    if auth.pending_user() is not None:  # coaches and admins: a code from their app next
        return redirect(auth.second_factor_url(_safe_next("") or None))
    return redirect(_safe_next(_home_for(user)))


@bp.post("/logout")
def logout() -> BaseResponse:
    auth.logout()
    flash(_("You are signed out. Take care."))
    response = redirect(url_for("accounts.login"))
    # Nothing of the member stays on this phone: saved pages, the outbox, the service worker.
    response.headers["Clear-Site-Data"] = '"storage"'
    return response


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_ip_limit, methods=["POST"])
def reset(token: str) -> Any:
    db_session = get_session()
    if request.method != "POST":
        try:
            services.find_reset_token(db_session, token=token, now=utcnow())
        except DomainError as exc:
            return render_template("accounts/reset.html", error=exc, usable=False), exc.status
        return render_template("accounts/reset.html", usable=True)
    try:
        user = services.reset_password(db_session, token=token,
                                       password=request.form.get("password", ""), now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        usable = exc.field == "password"
        return render_template("accounts/reset.html", error=exc, usable=usable), exc.status
    auth.login(user)
    flash(_("Your new password is set."))
    return redirect(_home_for(user))


# --- pages: signed-in devices ---


@bp.get("/settings/sessions")
@auth.login_required
def sessions_page() -> str:
    user = auth.require_user()
    rows = services.list_sessions(get_session(), user=user, now=utcnow(),
                                  limits=auth.session_limits())
    return render_template("accounts/sessions.html", sessions=rows,
                           current_id=auth.current_session().id)


@bp.route("/settings/password", methods=["GET", "POST"])
@auth.login_required
@throttle_confirm
def password_page() -> Any:
    if request.method != "POST":
        return render_template("accounts/password.html")
    db_session = get_session()
    try:
        services.change_password(db_session, user_id=auth.require_user().id or 0,
                                 current=request.form.get("current_password", ""),
                                 new=request.form.get("password", ""),
                                 keep_session_id=auth.current_session().id or 0, now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return render_template("accounts/password.html", error=exc), exc.status
    flash(_("Your password is changed. Any other device you were signed in on is signed out."))
    return redirect(url_for("accounts.sessions_page"))


@bp.post("/settings/sessions/<int:session_id>/end")
@auth.login_required
def end_session_page(session_id: int) -> BaseResponse:
    user = auth.require_user()
    db_session = get_session()
    services.end_session(db_session, user=user, session_id=session_id)
    db_session.commit()
    if session_id == auth.current_session().id:
        session.clear()
        return redirect(url_for("accounts.login"))
    flash(_("That device is signed out."))
    return redirect(url_for("accounts.sessions_page"))


@bp.post("/settings/sessions/end-others")
@auth.login_required
def end_other_sessions() -> BaseResponse:
    user = auth.require_user()
    db_session = get_session()
    services.end_all_sessions(db_session, user=user, except_id=auth.current_session().id)
    db_session.commit()
    flash(_("Every other device is signed out."))
    return redirect(url_for("accounts.sessions_page"))


# --- pages: my data, and deleting my account ---


def _readme(name: str, now: datetime) -> str:
    """The download's README, in the member's language."""
    files = [
        ("my-data.json", _("Everything Hearten holds about you, in one file: your profile, "
                           "groups, signed-in devices, sharing choices, trackers, imports, steps "
                           "and sleep, goals, posts, comments, cheers, reports, blocks and mutes, "
                           "notifications, and the audit log entries about you.")),
        ("steps.csv, sleep.csv", _("Your steps per day and your sleep per night, from each "
                                   "source.")),
        ("goal-days.csv", _("How each of your goals went, day by day.")),
        ("daily-summary.csv", _("Your days as your group's figures count them (your coach sees "
                                "only what you chose to share).")),
    ]
    lines = [_("Your data from Hearten"),
             _("Made on %(when)s for %(name)s.", when=format_datetime(now, "medium"), name=name),
             ""]
    for file_names, about in files:
        lines += [file_names, "  " + about]
    lines += ["", _("Times are in UTC. Passwords, sign-in tokens and tracker tokens are never "
                    "part of this download.")]
    return "\r\n".join(lines) + "\r\n"


def _export_response() -> Response:
    """The signed-in account's download: a zip, never cached, audited as their own export."""
    now = utcnow()
    with get_db().transaction() as write:
        member = services.get_user(write, auth.require_user().id or 0)
        readme = _readme(member.display_name, now)
        body = data_rights.export_my_data(write, member=member, now=now, readme=readme,
                                          parts=data_rights.export_parts(current_app))
    response = Response(body, mimetype="application/zip")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{data_rights.filename(now)}"')
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/settings/my-data")
@auth.login_required
def export_page() -> Response:
    return _export_response()


def _signed_out_after_deletion(response: BaseResponse) -> BaseResponse:
    """Sign this device out; nothing of the member stays on it (as after signing out)."""
    language = auth.require_user().language
    auth.logout()  # the session row is gone already; this forgets the cookie and `g`
    session["lang"] = language  # the goodbye is said in their language
    response.headers["Clear-Site-Data"] = '"storage"'
    return response


def _delete_view(error: DomainError | None = None, status: int = 200) -> tuple[str, int]:
    return render_template("accounts/delete_account.html", error=error,
                           chosen=request.form.get("posts", "")), status


@bp.route("/settings/delete-account", methods=["GET", "POST"])
@auth.login_required
@throttle_confirm
def delete_account_page() -> Any:
    if request.method != "POST":
        return _delete_view()
    choice = request.form.get("posts", "")
    db_session = get_session()
    try:
        if choice not in (PostsChoice.REMOVE, PostsChoice.KEEP):
            raise InvalidInput(_l("Please choose what happens to your posts and comments."),
                               field="posts")
        data_rights.delete_account(db_session, user_id=auth.require_user().id or 0,
                                   password=request.form.get("password", ""),
                                   keep_posts=choice == PostsChoice.KEEP, now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _delete_view(exc, exc.status)
    return _signed_out_after_deletion(redirect(url_for("accounts.goodbye")))


@bp.get("/goodbye")
def goodbye() -> str | BaseResponse:
    if auth.current_user() is not None:
        return redirect(url_for("shell.index"))
    return render_template("accounts/goodbye.html")


# --- pages: what a member shares with their coaches, and with research ---

METRIC_LABELS = {ConsentMetric.STEPS: _l("My steps"), ConsentMetric.SLEEP: _l("My sleep")}
LEVEL_LABELS = {
    ConsentLevel.NOTHING: (_l("Nothing"), _l("Your coach sees none of it, and your numbers stay "
                                             "out of group figures.")),
    ConsentLevel.SUMMARY: (_l("A weekly summary"), _l("Weekly averages, and your numbers count in "
                                                      "group figures of at least 5 people.")),
    ConsentLevel.DETAIL: (_l("Day by day"), _l("Your coach sees your numbers day by day, and they "
                                               "count in group figures of at least 5 people.")),
}


def _sharing_view(error: DomainError | None = None, status: int = 200) -> tuple[str, int]:
    member = auth.require_user()
    with get_db().session(write=False) as read:
        sharing = consent.sharing_of(read, member=member)
    return render_template("accounts/sharing.html", sharing=sharing, metrics=METRIC_LABELS,
                           levels=LEVEL_LABELS, error=error), status


def _sharing_public(sharing: consent.Sharing) -> SharingPublic:
    return SharingPublic(steps=sharing.levels[ConsentMetric.STEPS],
                         sleep=sharing.levels[ConsentMetric.SLEEP], research=sharing.research)


@bp.get("/settings/sharing")
@auth.login_required
def sharing_page() -> tuple[str, int]:
    return _sharing_view()


@bp.post("/settings/sharing")
@auth.login_required
def save_sharing_page() -> Any:
    db_session = get_session()
    chosen = {metric.value: request.form[metric.value] for metric in ConsentMetric
              if metric.value in request.form}
    try:
        consent.update_sharing(db_session, member=auth.require_user(), levels=chosen,
                               research=None, now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _sharing_view(exc, exc.status)
    flash(_("Saved. Your coach sees only what you chose, and you can change it at any time."))
    return redirect(url_for("accounts.sharing_page"))


@bp.post("/settings/sharing/research")
@auth.login_required
def save_research_page() -> Any:
    answer = request.form.get("research", "")
    db_session = get_session()
    try:
        if answer not in ("yes", "no"):
            raise InvalidInput(_l("Please choose whether to help research."), field="research")
        consent.update_sharing(db_session, member=auth.require_user(), levels={},
                               research=answer == "yes", now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _sharing_view(exc, exc.status)
    if answer == "yes":
        flash(_("Thank you for helping research. You can stop at any time."))
    else:
        flash(_("You have stopped sharing for research. Nothing more goes to the evaluation."))
    return redirect(url_for("accounts.sharing_page"))


# --- pages: coach home (cohorts, invites, members, reset links) ---


def _coach_view(**extra: Any) -> str:
    coach = auth.require_user()
    with get_db().session(write=False) as read:
        cohorts = services.cohorts_of(read, user=coach, role=CohortRole.COACH)
        groups = [{"cohort": cohort,
                   "members": services.members_of(read, cohort_id=cohort.id or 0),
                   "coaches": services.coaches_of(read, cohort_id=cohort.id or 0),
                   "moderators": services.moderators_of(read, cohort_id=cohort.id or 0),
                   "invites": [_invite_public(i) for i in
                               services.invites_of(read, cohort_id=cohort.id or 0)]}
                  for cohort in cohorts]
    return render_template("accounts/coach_home.html", groups=groups, now=utcnow(), **extra)


@bp.get("/coach")
@auth.roles_required(*STAFF)
def coach_home() -> str:
    return _coach_view()


@bp.post("/coach/cohorts")
@auth.roles_required(*STAFF)
def create_cohort_page() -> Any:
    db_session = get_session()
    try:
        cohort = services.create_cohort(db_session, coach=auth.require_user(),
                                        name=request.form.get("name", ""))
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _coach_view(error=exc), exc.status
    flash(_("The group “%(name)s” is ready. Create an invite to bring people in.",
            name=cohort.name))
    return redirect(url_for("accounts.coach_home"))


def _form_int(name: str, default: int) -> int:
    raw = request.form.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        return -1  # out of range on purpose: the service explains the allowed range


@bp.post("/coach/cohorts/<int:cohort_id>/invites")
@auth.roles_required(*STAFF)
def create_invite_page(cohort_id: int) -> Any:
    db_session = get_session()
    try:
        invite = services.create_invite(
            db_session, coach=auth.require_user(), cohort_id=cohort_id,
            days=_form_int("days", current_app.config["INVITE_DAYS"]),
            max_uses=_form_int("max_uses", current_app.config["INVITE_MAX_USES"]), now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _coach_view(error=exc), exc.status
    flash(_("New invite code: %(code)s", code=services.format_code(invite.code)))
    return redirect(url_for("accounts.coach_home"))


@bp.post("/coach/invites/<int:invite_id>/revoke")
@auth.roles_required(*STAFF)
def revoke_invite_page(invite_id: int) -> BaseResponse:
    db_session = get_session()
    services.revoke_invite(db_session, coach=auth.require_user(), invite_id=invite_id,
                           now=utcnow())
    db_session.commit()
    flash(_("The invite no longer works."))
    return redirect(url_for("accounts.coach_home"))


@bp.post("/coach/members/<int:member_id>/reset-link")
@auth.roles_required(*STAFF)
def reset_link_page(member_id: int) -> str:
    db_session = get_session()
    reset_row, token = services.issue_reset_link(
        db_session, staff=auth.require_user(), member_id=member_id, now=utcnow(),
        hours=current_app.config["RESET_LINK_HOURS"])
    member = services.get_user(db_session, member_id)
    db_session.commit()
    return render_template("accounts/reset_link.html", member=member,
                           link=public_url("accounts.reset", token=token),
                           expires_at=reset_row.expires_at)


# --- pages: a cohort's people (removing members, co-coaches, moderators) ---


def _confirm_removal(cohort_id: int, user_id: int, role: CohortRole) -> str:
    """The page that asks a coach to confirm taking someone out of a group."""
    with get_db().session(write=False) as read:
        cohort = services.get_cohort_for_coach(read, coach=auth.require_user(),
                                               cohort_id=cohort_id)
        seat = services.membership_of(read, cohort_id=cohort_id, user_id=user_id)
        if seat is None or seat.role != role:
            raise NotFound()
        person = services.get_user(read, user_id)
    names = {"name": person.display_name, "group": cohort.name}
    if role == CohortRole.MEMBER:
        title = _("Remove %(name)s from %(group)s?", **names)
        explanation = _("%(name)s will no longer see the group's posts or take part in them. They "
                        "keep their account, their goals and their own numbers, and you can "
                        "invite them back at any time.", **names)
        action = url_for("accounts.remove_member_page", cohort_id=cohort_id, member_id=user_id)
    else:
        title = _("Take %(name)s off coaching %(group)s?", **names)
        explanation = _("%(name)s will no longer see this group or its members. The group keeps "
                        "its other coaches.", **names)
        action = url_for("accounts.remove_coach_page", cohort_id=cohort_id, user_id=user_id)
    return render_template("accounts/confirm_remove.html", title=title, explanation=explanation,
                           action=action)


def _manage(change: Callable[..., User], message: Callable[[User], str]) -> Any:
    """Run one change to a group's people; then back to the coach home, or its error there."""
    db_session = get_session()
    try:
        person = change(db_session, coach=auth.require_user(), now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _coach_view(error=exc), exc.status
    flash(message(person))
    return redirect(url_for("accounts.coach_home"))


@bp.get("/coach/cohorts/<int:cohort_id>/members/<int:member_id>/remove")
@auth.roles_required(*STAFF)
def confirm_remove_member_page(cohort_id: int, member_id: int) -> str:
    return _confirm_removal(cohort_id, member_id, CohortRole.MEMBER)


@bp.post("/coach/cohorts/<int:cohort_id>/members/<int:member_id>/remove")
@auth.roles_required(*STAFF)
def remove_member_page(cohort_id: int, member_id: int) -> Any:
    return _manage(
        lambda db, **kw: services.remove_member(db, cohort_id=cohort_id, member_id=member_id, **kw),
        lambda person: _("%(name)s is no longer in the group. Their account and their own data "
                         "stay as they are.", name=person.display_name))


@bp.post("/coach/cohorts/<int:cohort_id>/coaches")
@auth.roles_required(*STAFF)
def add_coach_page(cohort_id: int) -> Any:
    name = request.form.get("display_name", "")
    return _manage(
        lambda db, **kw: services.add_co_coach(db, cohort_id=cohort_id, display_name=name, **kw),
        lambda person: _("%(name)s now coaches this group too.", name=person.display_name))


@bp.get("/coach/cohorts/<int:cohort_id>/coaches/<int:user_id>/remove")
@auth.roles_required(*STAFF)
def confirm_remove_coach_page(cohort_id: int, user_id: int) -> str:
    return _confirm_removal(cohort_id, user_id, CohortRole.COACH)


@bp.post("/coach/cohorts/<int:cohort_id>/coaches/<int:user_id>/remove")
@auth.roles_required(*STAFF)
def remove_coach_page(cohort_id: int, user_id: int) -> Any:
    return _manage(
        lambda db, **kw: services.remove_coach(db, cohort_id=cohort_id, user_id=user_id, **kw),
        lambda person: _("%(name)s no longer coaches this group.", name=person.display_name))


@bp.post("/coach/cohorts/<int:cohort_id>/moderators")
@auth.roles_required(*STAFF)
def add_moderator_page(cohort_id: int) -> Any:
    name = request.form.get("display_name", "")
    return _manage(
        lambda db, **kw: services.add_moderator(db, cohort_id=cohort_id, display_name=name, **kw),
        lambda person: _("%(name)s now moderates this group.", name=person.display_name))


@bp.post("/coach/cohorts/<int:cohort_id>/moderators/<int:user_id>/remove")
@auth.roles_required(*STAFF)
def remove_moderator_page(cohort_id: int, user_id: int) -> Any:
    return _manage(
        lambda db, **kw: services.remove_moderator(db, cohort_id=cohort_id, user_id=user_id, **kw),
        lambda person: _("%(name)s no longer moderates this group.", name=person.display_name))


# --- JSON API ---


@api.operation("GET", "/csrf-token", summary="A CSRF token for the X-CSRFToken header.",
               response=CsrfTokenPublic, auth=False)
def csrf_token() -> CsrfTokenPublic:
    return CsrfTokenPublic(csrf_token=generate_csrf())


@api.operation("POST", "/join", summary="Join a cohort with an invite code (signs in).",
               body=JoinRequest, response=UserPublic, status=201, auth=False, errors=(409,))
@limiter.limit(_ip_limit)
def api_join(body: JoinRequest) -> User:
    db_session = get_session()
    user = services.join_with_invite(
        db_session, code=body.code, display_name=body.display_name, password=body.password,
        timezone=body.timezone, language=body.language, now=utcnow())
    db_session.commit()
    auth.login(user)
    return user


@api.operation("POST", "/login", summary="Sign in (coaches and admins: then a code, see next_step).",
               body=LoginRequest, response=LoginPublic, auth=False, errors=(401,))
@throttle
def api_login(body: LoginRequest) -> LoginPublic:
    db_session = get_session()
    user = services.authenticate(db_session, display_name=body.display_name,
                                 password=body.password)
    db_session.commit()
    auth.login(user)
    return LoginPublic.model_validate(user, from_attributes=True,
                                      update={"next_step": auth.second_factor_step()})


@api.operation("POST", "/logout", summary="Sign this device out (also before its second factor).",
               auth=False, errors=(401,))
def api_logout() -> None:
    if auth.current_user() is None and auth.pending_user() is None:
        raise auth.not_signed_in()
    auth.logout()


@api.operation("GET", "/me", summary="The signed-in account.", response=UserPublic)
@auth.login_required
def api_me() -> User:
    return auth.require_user()


@api.operation("GET", "/me/export", produces="application/zip",
               summary="Everything Hearten holds about me: a zip of JSON and CSV files.")
@auth.login_required
def api_export() -> Response:
    return _export_response()


@api.operation("DELETE", "/me", body=AccountDeletion, errors=(409,), summary=(
    "Delete my account (password to confirm): signed out everywhere, trackers revoked, my data "
    "deleted, my posts removed or kept as 'A former member'."))
@auth.login_required
@throttle_confirm
def api_delete_me(body: AccountDeletion) -> BaseResponse:
    db_session = get_session()
    data_rights.delete_account(db_session, user_id=auth.require_user().id or 0,
                               password=body.password, keep_posts=body.posts == PostsChoice.KEEP,
                               now=utcnow())
    db_session.commit()
    return _signed_out_after_deletion(Response(status=204))


@api.operation("GET", "/sessions", summary="The devices signed in to this account.",
               response=SessionPublic, many=True)
@auth.login_required
def api_sessions() -> list[SessionPublic]:
    current_id = auth.current_session().id
    return [SessionPublic(id=row.id or 0, device=row.device, created_at=row.created_at,
                          last_seen_at=row.last_seen_at, current=row.id == current_id)
            for row in services.list_sessions(get_session(), user=auth.require_user(),
                                              now=utcnow(), limits=auth.session_limits())]


@api.operation("DELETE", "/sessions/<int:session_id>", summary="Sign one device out.")
@auth.login_required
def api_end_session(session_id: int) -> None:
    db_session = get_session()
    services.end_session(db_session, user=auth.require_user(), session_id=session_id)
    db_session.commit()


@api.operation("GET", "/cohorts", summary="The cohorts I belong to or coach.",
               response=CohortPublic, many=True)
@auth.login_required
def api_cohorts() -> list[CohortPublic]:
    user = auth.require_user()
    db_session = get_session()
    cohorts = services.cohorts_of(db_session, user=user)
    counts = services.member_counts(db_session, [c.id for c in cohorts if c.id is not None])
    return [CohortPublic(id=c.id or 0, name=c.name, member_count=counts.get(c.id or 0, 0))
            for c in cohorts]


@api.operation("POST", "/cohorts", summary="Create a cohort (coaches).", body=CohortCreate,
               response=CohortPublic, status=201)
@auth.roles_required(*STAFF)
def api_create_cohort(body: CohortCreate) -> CohortPublic:
    db_session = get_session()
    cohort = services.create_cohort(db_session, coach=auth.require_user(), name=body.name)
    db_session.commit()
    return CohortPublic(id=cohort.id or 0, name=cohort.name, member_count=0)


@api.operation("GET", "/cohorts/<int:cohort_id>/members", summary="A cohort's members (coaches).",
               response=MemberPublic, many=True)
@auth.roles_required(*STAFF)
def api_cohort_members(cohort_id: int) -> list[MemberPublic]:
    db_session = get_session()
    services.get_cohort_for_coach(db_session, coach=auth.require_user(), cohort_id=cohort_id)
    return [MemberPublic(id=user.id or 0, display_name=user.display_name,
                         joined_at=membership.joined_at)
            for user, membership in services.members_of(db_session, cohort_id=cohort_id)]


@api.operation("GET", "/cohorts/<int:cohort_id>/invites", summary="A cohort's invites (coaches).",
               response=InvitePublic, many=True)
@auth.roles_required(*STAFF)
def api_invites(cohort_id: int) -> list[InvitePublic]:
    db_session = get_session()
    services.get_cohort_for_coach(db_session, coach=auth.require_user(), cohort_id=cohort_id)
    return [_invite_public(i) for i in services.invites_of(db_session, cohort_id=cohort_id)]


@api.operation("POST", "/cohorts/<int:cohort_id>/invites", summary="Create an invite (coaches).",
               body=InviteCreate, response=InvitePublic, status=201)
@auth.roles_required(*STAFF)
def api_create_invite(cohort_id: int, body: InviteCreate) -> InvitePublic:
    db_session = get_session()
    invite = services.create_invite(db_session, coach=auth.require_user(), cohort_id=cohort_id,
                                    days=body.days, max_uses=body.max_uses, now=utcnow())
    db_session.commit()
    return _invite_public(invite)


@api.operation("DELETE", "/invites/<int:invite_id>", summary="Revoke an invite (coaches).")
@auth.roles_required(*STAFF)
def api_revoke_invite(invite_id: int) -> None:
    db_session = get_session()
    services.revoke_invite(db_session, coach=auth.require_user(), invite_id=invite_id,
                           now=utcnow())
    db_session.commit()


@api.operation("POST", "/members/<int:member_id>/reset-link",
               summary="A one-time password reset link for a member (coaches, admins).",
               response=ResetLinkPublic, status=201)
@auth.roles_required(*STAFF)
def api_reset_link(member_id: int) -> ResetLinkPublic:
    db_session = get_session()
    reset_row, token = services.issue_reset_link(
        db_session, staff=auth.require_user(), member_id=member_id, now=utcnow(),
        hours=current_app.config["RESET_LINK_HOURS"])
    db_session.commit()
    return ResetLinkPublic(link=public_url("accounts.reset", token=token),
                           expires_at=reset_row.expires_at)


@api.operation("DELETE", "/cohorts/<int:cohort_id>/members/<int:member_id>",
               summary="Remove a member from a cohort; they keep their account (coaches).")
@auth.roles_required(*STAFF)
def api_remove_member(cohort_id: int, member_id: int) -> None:
    db_session = get_session()
    services.remove_member(db_session, coach=auth.require_user(), cohort_id=cohort_id,
                           member_id=member_id, now=utcnow())
    db_session.commit()


def _staff_public(user: User, role: CohortRole) -> StaffPublic:
    return StaffPublic(id=user.id or 0, display_name=user.display_name, role=role)


@api.operation("GET", "/cohorts/<int:cohort_id>/staff",
               summary="A cohort's coaches and moderators (coaches).", response=StaffPublic,
               many=True)
@auth.roles_required(*STAFF)
def api_cohort_staff(cohort_id: int) -> list[StaffPublic]:
    db_session = get_session()
    services.get_cohort_for_coach(db_session, coach=auth.require_user(), cohort_id=cohort_id)
    return ([_staff_public(u, CohortRole.COACH)
             for u in services.coaches_of(db_session, cohort_id=cohort_id)]
            + [_staff_public(u, CohortRole.MODERATOR)
               for u in services.moderators_of(db_session, cohort_id=cohort_id)])


@api.operation("POST", "/cohorts/<int:cohort_id>/coaches",
               summary="Add a co-coach by display name (coaches).", body=StaffAdd,
               response=StaffPublic, status=201, errors=(409,))
@auth.roles_required(*STAFF)
def api_add_coach(cohort_id: int, body: StaffAdd) -> StaffPublic:
    db_session = get_session()
    added = services.add_co_coach(db_session, coach=auth.require_user(), cohort_id=cohort_id,
                                  display_name=body.display_name, now=utcnow())
    db_session.commit()
    return _staff_public(added, CohortRole.COACH)


@api.operation("DELETE", "/cohorts/<int:cohort_id>/coaches/<int:user_id>",
               summary="Take a coach off a cohort; never its last one (coaches).",
               errors=(409,))
@auth.roles_required(*STAFF)
def api_remove_coach(cohort_id: int, user_id: int) -> None:
    db_session = get_session()
    services.remove_coach(db_session, coach=auth.require_user(), cohort_id=cohort_id,
                          user_id=user_id, now=utcnow())
    db_session.commit()


@api.operation("POST", "/cohorts/<int:cohort_id>/moderators",
               summary="Add a moderator (a coach or admin account) by display name (coaches).",
               body=StaffAdd, response=StaffPublic, status=201, errors=(409,))
@auth.roles_required(*STAFF)
def api_add_moderator(cohort_id: int, body: StaffAdd) -> StaffPublic:
    db_session = get_session()
    added = services.add_moderator(db_session, coach=auth.require_user(), cohort_id=cohort_id,
                                   display_name=body.display_name, now=utcnow())
    db_session.commit()
    return _staff_public(added, CohortRole.MODERATOR)


@api.operation("DELETE", "/cohorts/<int:cohort_id>/moderators/<int:user_id>",
               summary="Stop someone moderating a cohort (coaches).")
@auth.roles_required(*STAFF)
def api_remove_moderator(cohort_id: int, user_id: int) -> None:
    db_session = get_session()
    services.remove_moderator(db_session, coach=auth.require_user(), cohort_id=cohort_id,
                              user_id=user_id, now=utcnow())
    db_session.commit()


@api.operation("GET", "/me/sharing",
               summary="What my coaches see of my steps and sleep, and whether I help research.",
               response=SharingPublic)
@auth.login_required
def api_sharing() -> SharingPublic:
    return _sharing_public(consent.sharing_of(get_session(), member=auth.require_user()))


@api.operation("PUT", "/me/sharing",
               summary="Change what my coaches see, and my research choice (only what is sent).",
               body=SharingUpdate, response=SharingPublic)
@auth.login_required
def api_update_sharing(body: SharingUpdate) -> SharingPublic:
    db_session = get_session()
    levels = {name: str(value) for name, value in (body.model_extra or {}).items()}
    levels.update({metric.value: value for metric, value in
                   ((ConsentMetric.STEPS, body.steps), (ConsentMetric.SLEEP, body.sleep))
                   if value is not None})
    sharing = consent.update_sharing(db_session, member=auth.require_user(), levels=levels,
                                     research=body.research, now=utcnow())
    db_session.commit()
    return _sharing_public(sharing)
