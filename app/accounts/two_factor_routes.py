"""Pages and API for the second factor of coaches and admins: setting up an authenticator app,
entering its code (or a recovery code) after the password, and renewing recovery codes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import segno
from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlmodel import Session
from werkzeug.wrappers import Response as BaseResponse

from app.accounts import auth, two_factor
from app.accounts.models import (
    RecoveryCodesPublic,
    Role,
    TwoFactorCode,
    TwoFactorSetupPublic,
    TwoFactorStatusPublic,
    User,
    UserPublic,
)
from app.api import ApiBlueprint
from app.crypto import TokenCipher, app_cipher
from app.db import get_session, utcnow
from app.errors import DomainError, Forbidden
from app.extensions import limiter

bp = Blueprint("two_factor", __name__, template_folder="templates")
api = ApiBlueprint("two_factor_api", __name__, tag="accounts")
STAFF = (Role.COACH, Role.ADMIN)


# --- throttling: failed codes use up an allowance per address and per account ---


def _account_key() -> str:
    user = auth.pending_user() or auth.current_user()
    return f"user:{user.id}" if user is not None else f"address:{request.remote_addr}"


def _ip_limit() -> str:
    return str(current_app.config["LOGIN_LIMIT_PER_IP"])


def _account_limit() -> str:
    return str(current_app.config["LOGIN_LIMIT_PER_ACCOUNT"])


def _failed(response: Response) -> bool:
    return response.status_code in (400, 401)


# Shared scopes: the pages and the API draw on one allowance.
_throttled = [
    limiter.shared_limit(_ip_limit, scope="two-factor-ip", methods=["POST"], deduct_when=_failed),
    limiter.shared_limit(_account_limit, scope="two-factor-account", key_func=_account_key,
                         methods=["POST"], deduct_when=_failed),
]


def throttle(view: Any) -> Any:
    for decorate in _throttled:
        view = decorate(view)
    return view


# --- helpers ---


def _cipher() -> TokenCipher:
    return app_cipher(current_app)


def _safe_next() -> str:
    target = request.args.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("accounts.coach_home")


def _next_arg() -> str | None:
    """The `next` to carry along, if it is one of ours."""
    target = request.args.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") else None


def _setup_user() -> User:
    """Who may set up an authenticator here: a coach or admin, signed in or owing a code."""
    user = auth.pending_user() or auth.current_user()
    if user is None:
        raise auth.not_signed_in()
    if not two_factor.needs_two_factor(user):
        raise Forbidden()
    return user


def _mark_this_device(db_session: Any) -> None:
    """Record on this device's session that it passed the second factor (before commit)."""
    record = auth.pending_session()
    if record is not None:
        two_factor.mark_session_verified(db_session, session_id=record.id or 0, now=utcnow())


def _signed_in_now() -> None:
    """After commit: this request, too, now belongs to the signed-in user."""
    if auth.pending_user() is not None:
        auth.passed_second_factor()


def _qr_svg(uri: str) -> str:
    return str(segno.make(uri, error="m").svg_inline(
        scale=5, border=4, dark="#000", light="#fff", svgclass="qr",
        title=_("QR code for your authenticator app")))


def _grouped(secret: str) -> str:
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def _render_setup(user: User, secret: str, error: DomainError | None = None,
                  status: int = 200) -> tuple[str, int]:
    uri = two_factor.provisioning_uri(secret=secret, name=user.display_name)
    return render_template("accounts/two_factor_setup.html", qr=_qr_svg(uri),
                           secret=_grouped(secret), error=error,
                           pending=auth.pending_user() is not None), status


def _render_codes(codes: list[str], *, continue_url: str) -> str:
    return render_template("accounts/two_factor_codes.html", codes=codes,
                           continue_url=continue_url)


# --- pages: the step after the password ---


def _not_owing() -> BaseResponse | None:
    """Where to go instead of the code page: home when signed in, sign-in when nobody is."""
    if auth.pending_user() is not None:
        return None
    if auth.current_user() is not None:
        return redirect(_safe_next())
    return redirect(url_for("accounts.login"))


def _second_step(template: str, check: Callable[[Session, User], Any],
                 then: Callable[[Any], None] | None = None) -> Any:
    """The step after the password: show the page, or check what was typed (`check` raises a
    DomainError when it is wrong), sign this device in, and go on (`then` gets what `check`
    answered)."""
    elsewhere = _not_owing()
    if elsewhere is not None:
        return elsewhere
    if auth.second_factor_step() == "two_factor_setup":
        return redirect(url_for("two_factor.setup", next=_next_arg()))
    if request.method != "POST":
        return render_template(template, next=_next_arg())
    user = auth.pending_user()
    assert user is not None
    db_session = get_session()
    try:
        answer = check(db_session, user)
        _mark_this_device(db_session)
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return render_template(template, next=_next_arg(), error=exc), exc.status
    _signed_in_now()
    if then is not None:
        then(answer)
    return redirect(_safe_next())


@bp.route("/login/two-factor", methods=["GET", "POST"])
@throttle
def verify() -> Any:
    return _second_step("accounts/two_factor_verify.html", lambda db_session, user: (
        two_factor.verify_code(db_session, user=user, code=request.form.get("code", ""),
                               cipher=_cipher(), now=utcnow())))


def _recovery_codes_left(left: int) -> None:
    flash(ngettext("You are signed in. You have %(num)d recovery code left.",
                   "You are signed in. You have %(num)d recovery codes left.", left))
    if left <= 3:
        flash(_("When you have a moment, you can make a fresh set of recovery codes in "
                "your two-step sign-in settings."))


@bp.route("/login/two-factor/recovery", methods=["GET", "POST"])
@throttle
def recovery() -> Any:
    return _second_step("accounts/two_factor_recovery.html", lambda db_session, user: (
        two_factor.use_recovery_code(db_session, user=user, code=request.form.get("code", ""),
                                     now=utcnow())), then=_recovery_codes_left)


# --- pages: setting up, and the settings page ---


@bp.route("/settings/two-factor/setup", methods=["GET", "POST"])
@throttle
def setup() -> Any:
    if auth.pending_user() is None and auth.current_user() is None:
        return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
    user = _setup_user()
    db_session = get_session()
    if two_factor.is_enrolled(db_session, user=user):
        if auth.pending_user() is not None:
            return redirect(url_for("two_factor.verify", next=_next_arg()))
        flash(_("Your authenticator app is already set up."))
        return redirect(url_for("two_factor.settings"))
    secret = two_factor.start_setup(db_session, user=user, cipher=_cipher())
    db_session.commit()
    if request.method != "POST":
        return _render_setup(user, secret)
    try:
        codes = two_factor.confirm_setup(db_session, user=user, code=request.form.get("code", ""),
                                         cipher=_cipher(), now=utcnow())
        _mark_this_device(db_session)
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _render_setup(user, secret, exc, exc.status)
    _signed_in_now()
    return _render_codes(codes, continue_url=_safe_next())


@bp.get("/settings/two-factor")
@auth.roles_required(*STAFF)
def settings() -> str:
    user = auth.require_user()
    return render_template("accounts/two_factor_settings.html",
                           left=two_factor.recovery_codes_left(get_session(), user=user))


@bp.post("/settings/two-factor/recovery-codes")
@auth.roles_required(*STAFF)
@throttle
def renew_recovery_codes() -> Any:
    user = auth.require_user()
    db_session = get_session()
    try:
        codes = two_factor.regenerate_recovery_codes(
            db_session, user=user, code=request.form.get("code", ""), cipher=_cipher(),
            now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return render_template("accounts/two_factor_settings.html", error=exc,
                               left=two_factor.recovery_codes_left(db_session, user=user)
                               ), exc.status
    return _render_codes(codes, continue_url=url_for("two_factor.settings"))


# --- JSON API ---


def _owing_user() -> User:
    user = auth.pending_user()
    if user is None:
        raise auth.not_signed_in()
    return user


@api.operation("POST", "/login/two-factor",
               summary="The second step of signing in (coaches, admins): a code from the app.",
               body=TwoFactorCode, response=UserPublic, auth=False, errors=(401, 409))
@throttle
def api_verify(body: TwoFactorCode) -> User:
    signed_in = auth.current_user()
    if signed_in is not None:
        return signed_in
    user = _owing_user()
    db_session = get_session()
    two_factor.verify_code(db_session, user=user, code=body.code, cipher=_cipher(), now=utcnow())
    _mark_this_device(db_session)
    db_session.commit()
    _signed_in_now()
    return user


@api.operation("POST", "/login/two-factor/recovery",
               summary="The second step of signing in with a one-time recovery code instead.",
               body=TwoFactorCode, response=TwoFactorStatusPublic, auth=False,
               errors=(401, 409))
@throttle
def api_recovery(body: TwoFactorCode) -> TwoFactorStatusPublic:
    user = _owing_user()
    db_session = get_session()
    left = two_factor.use_recovery_code(db_session, user=user, code=body.code, now=utcnow())
    _mark_this_device(db_session)
    db_session.commit()
    _signed_in_now()
    return TwoFactorStatusPublic(enrolled=True, recovery_codes_left=left)


@api.operation("POST", "/two-factor/setup",
               summary="Start setting up an authenticator app (coaches, admins): its secret.",
               response=TwoFactorSetupPublic, auth=False, errors=(401, 403, 409))
def api_setup() -> TwoFactorSetupPublic:
    user = _setup_user()
    db_session = get_session()
    secret = two_factor.start_setup(db_session, user=user, cipher=_cipher())
    db_session.commit()
    return TwoFactorSetupPublic(
        secret=secret, uri=two_factor.provisioning_uri(secret=secret, name=user.display_name))


@api.operation("POST", "/two-factor/setup/confirm",
               summary="Confirm the new authenticator app with its first code; "
                       "answers the recovery codes, once.",
               body=TwoFactorCode, response=RecoveryCodesPublic, status=201, auth=False,
               errors=(401, 403, 409))
@throttle
def api_confirm_setup(body: TwoFactorCode) -> RecoveryCodesPublic:
    user = _setup_user()
    db_session = get_session()
    codes = two_factor.confirm_setup(db_session, user=user, code=body.code, cipher=_cipher(),
                                     now=utcnow())
    _mark_this_device(db_session)
    db_session.commit()
    _signed_in_now()
    return RecoveryCodesPublic(codes=codes)


@api.operation("GET", "/two-factor", summary="My two-step sign-in (coaches, admins).",
               response=TwoFactorStatusPublic)
@auth.roles_required(*STAFF)
def api_status() -> TwoFactorStatusPublic:
    user = auth.require_user()
    db_session = get_session()
    return TwoFactorStatusPublic(
        enrolled=two_factor.is_enrolled(db_session, user=user),
        recovery_codes_left=two_factor.recovery_codes_left(db_session, user=user))


@api.operation("POST", "/two-factor/recovery-codes",
               summary="New recovery codes, after a current code from the app; the old ones "
                       "stop working.",
               body=TwoFactorCode, response=RecoveryCodesPublic, status=201, errors=(409,))
@auth.roles_required(*STAFF)
@throttle
def api_renew_recovery_codes(body: TwoFactorCode) -> RecoveryCodesPublic:
    db_session = get_session()
    codes = two_factor.regenerate_recovery_codes(db_session, user=auth.require_user(),
                                                 code=body.code, cipher=_cipher(), now=utcnow())
    db_session.commit()
    return RecoveryCodesPublic(codes=codes)
