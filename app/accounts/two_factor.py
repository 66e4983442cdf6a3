"""Two-factor sign-in for coaches and admins: an authenticator app (TOTP) and recovery codes.

Plain functions over a session, free of Flask's globals. The authenticator's secret is stored
encrypted with the app's cipher (TOKEN_KEYS); recovery codes only as sha256 hashes. Each code works
once: a code is refused when its 30-second step is not after the last step used.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import pyotp
from pyotp.utils import strings_equal
from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import audit
from app.accounts import services
from app.accounts.exceptions import (
    CodeAlreadyUsed,
    CodeNotAccepted,
    Forbidden,
    RecoveryCodeNotAccepted,
    TwoFactorAlreadySetUp,
    TwoFactorNotSetUp,
)
from app.accounts.models import RecoveryCode, Role, TwoFactor, User, UserSession
from app.crypto import TokenCipher

ISSUER = "Hearten"
STEP_SECONDS = 30
VALID_WINDOW = 1  # the steps just before and after count too: phone clocks drift, typing takes time
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/i/l: easy to copy by hand
STAFF = frozenset({Role.COACH, Role.ADMIN})


def needs_two_factor(user: User) -> bool:
    """Coaches and admins see other people's data, so they sign in with a second factor."""
    return user.role in STAFF


def _user_id(user: User) -> int:
    if user.id is None:
        raise ValueError("the user has not been saved yet")
    return user.id


def _require_staff(user: User) -> None:
    if not needs_two_factor(user):
        raise Forbidden()


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, interval=STEP_SECONDS)


def _row(session: Session, user: User) -> TwoFactor | None:
    return session.get(TwoFactor, _user_id(user))


def _enrolled_row(session: Session, user: User) -> TwoFactor:
    row = _row(session, user)
    if row is None or row.confirmed_at is None:
        raise TwoFactorNotSetUp()
    return row


def is_enrolled(session: Session, *, user: User) -> bool:
    """True once the user has confirmed an authenticator app with a first code."""
    row = _row(session, user)
    return row is not None and row.confirmed_at is not None


def start_setup(session: Session, *, user: User, cipher: TokenCipher) -> str:
    """The secret for a new authenticator (the same one until it is confirmed); base32."""
    _require_staff(user)
    row = _row(session, user)
    if row is not None:
        if row.confirmed_at is not None:
            raise TwoFactorAlreadySetUp()
        return cipher.decrypt(row.secret_enc)
    secret = pyotp.random_base32()
    try:
        with session.begin_nested():
            session.add(TwoFactor(user_id=_user_id(user), secret_enc=cipher.encrypt(secret)))
            session.flush()
    except IntegrityError:  # the same person opened the page twice at once: keep the first
        return start_setup(session, user=user, cipher=cipher)
    return secret


def provisioning_uri(*, secret: str, name: str) -> str:
    """The otpauth:// link an authenticator app reads from the QR code."""
    return _totp(secret).provisioning_uri(name=name, issuer_name=ISSUER)


def _digits(code: str) -> str:
    return "".join(ch for ch in code if not ch.isspace() and ch != "-")


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step `code` belongs to, within VALID_WINDOW steps of `now` (as TOTP.verify)."""
    code = _digits(code)
    if len(code) != 6 or not code.isdigit():
        return None
    totp = _totp(secret)
    base = totp.timecode(now)
    for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
        if strings_equal(totp.at(now, offset), code):
            return base + offset
    return None


def _use_code(session: Session, *, row: TwoFactor, code: str, cipher: TokenCipher,
              now: datetime) -> None:
    """Accept `code` once: refuse it when its step is not after the last one used."""
    step = _matching_step(cipher.decrypt(row.secret_enc), code, now)
    if step is None:
        raise CodeNotAccepted()
    # Claimed in one statement, so that two requests racing with the same code cannot both pass.
    claimed = session.execute(update(TwoFactor).where(col(TwoFactor.user_id) == row.user_id,
                                                      col(TwoFactor.last_step) < step)
                              .values(last_step=step))
    if not getattr(claimed, "rowcount", 0):
        raise CodeAlreadyUsed()
    session.refresh(row)


def _new_recovery_codes(session: Session, *, user_id: int) -> list[str]:
    """Replace the user's recovery codes with fresh ones; returns them, readable ("abcd-efgh-jk")."""
    session.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
        session.add(RecoveryCode(user_id=user_id, code_hash=_hash_recovery_code(raw)))
    session.flush()
    return codes


def _normalise_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.casefold() if ch.isalnum())


def _hash_recovery_code(code: str) -> str:
    return hashlib.sha256(_normalise_recovery_code(code).encode()).hexdigest()


def confirm_setup(session: Session, *, user: User, code: str, cipher: TokenCipher,
                  now: datetime) -> list[str]:
    """Confirm the new authenticator with its first code; returns fresh recovery codes."""
    _require_staff(user)
    row = _row(session, user)
    if row is None:
        raise TwoFactorNotSetUp()
    if row.confirmed_at is not None:
        raise TwoFactorAlreadySetUp()
    _use_code(session, row=row, code=code, cipher=cipher, now=now)
    row.confirmed_at = now
    session.add(row)
    codes = _new_recovery_codes(session, user_id=row.user_id)
    audit.log(session, actor_id=row.user_id, action="two_factor.set_up", subject_type="user",
              subject_id=row.user_id, detail=f"{len(codes)} recovery codes issued", now=now)
    return codes


def verify_code(session: Session, *, user: User, code: str, cipher: TokenCipher,
                now: datetime) -> None:
    """Check a code from the user's authenticator app; each code works once."""
    _use_code(session, row=_enrolled_row(session, user), code=code, cipher=cipher, now=now)


def use_recovery_code(session: Session, *, user: User, code: str, now: datetime) -> int:
    """Use one recovery code instead of the app, once; returns how many are left."""
    user_id = _enrolled_row(session, user).user_id
    found = session.scalar(select(RecoveryCode.id).where(
        col(RecoveryCode.user_id) == user_id, col(RecoveryCode.used_at).is_(None),
        col(RecoveryCode.code_hash) == _hash_recovery_code(code)))
    if found is None:
        raise RecoveryCodeNotAccepted()
    claimed = session.execute(update(RecoveryCode).where(col(RecoveryCode.id) == found,
                                                         col(RecoveryCode.used_at).is_(None))
                              .values(used_at=now))
    if not getattr(claimed, "rowcount", 0):
        raise RecoveryCodeNotAccepted()
    left = recovery_codes_left(session, user=user)
    audit.log(session, actor_id=user_id, action="two_factor.recovery_code_used",
              subject_type="user", subject_id=user_id, detail=f"{left} recovery codes left",
              now=now)
    return left


def regenerate_recovery_codes(session: Session, *, user: User, code: str, cipher: TokenCipher,
                              now: datetime) -> list[str]:
    """New recovery codes, after a current code from the app; the old ones stop working."""
    verify_code(session, user=user, code=code, cipher=cipher, now=now)
    codes = _new_recovery_codes(session, user_id=_user_id(user))
    audit.log(session, actor_id=user.id, action="two_factor.recovery_codes_renewed",
              subject_type="user", subject_id=user.id,
              detail=f"{len(codes)} recovery codes issued", now=now)
    return codes


def recovery_codes_left(session: Session, *, user: User) -> int:
    return int(session.scalar(select(func.count()).select_from(RecoveryCode).where(
        col(RecoveryCode.user_id) == _user_id(user), col(RecoveryCode.used_at).is_(None))) or 0)


def mark_session_verified(session: Session, *, session_id: int, now: datetime) -> None:
    """This device has passed the second factor."""
    session.execute(update(UserSession).where(col(UserSession.id) == session_id)
                    .values(two_factor_at=now))


def enrol(session: Session, *, user: User, secret: str, cipher: TokenCipher,
          now: datetime) -> None:
    """Set up an authenticator with a known secret, confirmed at once (the demo accounts)."""
    _require_staff(user)
    row = _row(session, user) or TwoFactor(user_id=_user_id(user), secret_enc="")
    row.secret_enc, row.confirmed_at, row.last_step = cipher.encrypt(secret), now, 0
    session.add(row)
    session.flush()


def secret_of(session: Session, *, user: User, cipher: TokenCipher) -> str:
    """The user's authenticator secret (for demo accounts and their printed codes only)."""
    return cipher.decrypt(_enrolled_row(session, user).secret_enc)


def current_code(session: Session, *, user: User, cipher: TokenCipher, now: datetime
                 ) -> tuple[str, int]:
    """The code the user's app shows at `now` (or the next one, if this one was used), and the
    seconds it stays valid."""
    row = _enrolled_row(session, user)
    totp = _totp(cipher.decrypt(row.secret_enc))
    step = max(totp.timecode(now), row.last_step + 1)
    valid_until = (step + VALID_WINDOW + 1) * STEP_SECONDS
    return totp.generate_otp(step), max(0, int(valid_until - now.timestamp()))


def reset(session: Session, *, user: User, now: datetime, actor_id: int | None = None) -> None:
    """Remove the user's authenticator and recovery codes and sign every device out: they set up
    a new one at their next sign-in (an admin's help for a lost phone)."""
    _require_staff(user)
    user_id = _user_id(user)
    session.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))
    session.execute(delete(TwoFactor).where(col(TwoFactor.user_id) == user_id))
    services.end_all_sessions(session, user=user)
    audit.log(session, actor_id=actor_id, action="two_factor.reset", subject_type="user",
              subject_id=user_id, now=now)


def rotate_secrets(session: Session, *, cipher: TokenCipher) -> int:
    """Re-encrypt every stored authenticator secret with the newest key; returns how many."""
    rows = list(session.exec(select(TwoFactor)))
    for row in rows:
        row.secret_enc = cipher.rotate(row.secret_enc)
        session.add(row)
    return len(rows)
