"""Account and cohort services: plain functions over a session, free of Flask's request globals."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import audit
from app.accounts import passwords
from app.accounts.events import MemberJoined, MemberLeftCohort, SessionsEnded
from app.accounts.exceptions import (
    Conflict,
    DisplayNameTaken,
    Forbidden,
    InvalidCredentials,
    InvalidInput,
    InviteExpired,
    InviteNotUsable,
    InviteUsedUp,
    LastCoach,
    NotFound,
    PasswordNotAccepted,
    ResetLinkNotUsable,
)
from app.accounts.models import (
    Cohort,
    CohortMembership,
    CohortRole,
    Invite,
    ResetToken,
    Role,
    User,
    UserSession,
)
from app.events import record

LANGUAGES = ("en", "es")
INVITE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: easy to read aloud
_NAME_RE = re.compile(r"^[\w][\w .'-]*[\w.]$|^[\w]$")
_EMAIL_LIKE = re.compile(r"@|\.(com|org|net|edu|gov)\b", re.IGNORECASE)


def _id(row: User | Cohort | Invite) -> int:
    """The primary key of a row that has been flushed."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has not been saved yet")
    return row.id


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- display names, timezones, languages ---


def has_control_characters(text: str) -> bool:
    """True for text carrying control, format or unassigned characters (NUL included)."""
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in text)


_SCRIPT_GROUPS = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK"}


def _scripts(text: str) -> set[str]:
    """The scripts the letters of `text` come from (LATIN, CYRILLIC, GREEK, CJK, ...)."""
    names = (unicodedata.name(ch, "?").split()[0] for ch in text if ch.isalpha())
    return {_SCRIPT_GROUPS.get(name, name) for name in names}


def normalise_display_name(raw: str) -> str:
    """Tidy a display name: NFKC, inner runs of spaces collapsed, ends trimmed."""
    return " ".join(unicodedata.normalize("NFKC", raw).split())


def name_key(display_name: str) -> str:
    return normalise_display_name(display_name).casefold()


def check_display_name(raw: str) -> str:
    """Return the tidied display name, or raise with a message saying what to change."""
    if has_control_characters(raw):
        raise InvalidInput(_l("Please use letters, numbers, spaces, dots, dashes or "
                              "apostrophes only."), field="display_name")
    name = normalise_display_name(raw)
    if not 3 <= len(name) <= 30:
        raise InvalidInput(_l("Please pick a name of 3 to 30 characters."), field="display_name")
    if _EMAIL_LIKE.search(name):
        raise InvalidInput(_l("Please pick a nickname rather than an email address, so that you "
                              "stay private."), field="display_name")
    if not _NAME_RE.match(name) or "__" in name:
        raise InvalidInput(_l("Please use letters, numbers, spaces, dots, dashes or "
                              "apostrophes only."), field="display_name")
    if len(_scripts(name)) > 1:
        # Mixed alphabets let someone pass for another member (a Cyrillic "о" in "Coach").
        raise InvalidInput(_l("Please use letters from one alphabet only."), field="display_name")
    return name


@cache
def timezones() -> tuple[str, ...]:
    """Every IANA timezone name, sorted."""
    return tuple(sorted(available_timezones()))


@cache
def _timezone_set() -> frozenset[str]:
    return frozenset(timezones())


def check_timezone(tz: str) -> str:
    if tz not in _timezone_set():
        raise InvalidInput(_l("Please choose your timezone from the list."), field="timezone")
    return tz


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise InvalidInput(_l("Please choose English or Spanish."), field="language")
    return language


# --- users ---


def create_user(session: Session, *, display_name: str, password: str, role: Role = Role.MEMBER,
                timezone: str = "UTC", language: str = "en") -> User:
    """Create an account after checking every rule; raise before anything is written."""
    name = check_display_name(display_name)
    passwords.check_password_rules(password, display_name=name)
    user = User(display_name=name, name_key=name.casefold(), role=role,
                password_hash=passwords.hash_password(password),
                timezone=check_timezone(timezone), language=check_language(language))
    if session.scalar(select(User.id).where(col(User.name_key) == user.name_key)) is not None:
        raise DisplayNameTaken()
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError as exc:  # two people choosing the same name at the same moment
        raise DisplayNameTaken() from exc
    return user


def find_user(session: Session, *, display_name: str) -> User | None:
    return session.exec(select(User).where(col(User.name_key) == name_key(display_name))).first()


def first_admin(session: Session) -> User | None:
    return session.exec(select(User).where(col(User.role) == Role.ADMIN)
                        .order_by(col(User.id))).first()


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound()
    return user


def authenticate(session: Session, *, display_name: str, password: str) -> User:
    """The user whose name and password match, or InvalidCredentials (same time either way)."""
    user = None
    if not has_control_characters(display_name) and len(display_name) <= 60:
        user = find_user(session, display_name=display_name)
    if not passwords.verify_password(user.password_hash if user else None, password) or not user:
        raise InvalidCredentials()
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    return user


def set_password(session: Session, *, user: User, password: str, now: datetime) -> None:
    """Change the password and sign every device out."""
    passwords.check_password_rules(password, display_name=user.display_name)
    user.password_hash = passwords.hash_password(password)
    user.password_changed_at = now
    end_all_sessions(session, user=user)


def change_password(session: Session, *, user_id: int, current: str, new: str,
                    keep_session_id: int, now: datetime) -> None:
    """Change one's own password: the current one first; every other device is signed out,
    this one stays signed in."""
    user = session.exec(select(User).where(col(User.id) == user_id).with_for_update()).first()
    if user is None:
        raise NotFound()
    if not passwords.verify_password(user.password_hash, current):
        raise PasswordNotAccepted(_l("That is not your current password, so nothing has "
                                     "changed. Please try again."), field="current_password")
    passwords.check_password_rules(new, display_name=user.display_name)
    user.password_hash = passwords.hash_password(new)
    user.password_changed_at = now
    end_all_sessions(session, user=user, except_id=keep_session_id)


# --- sessions ---


@dataclass(frozen=True)
class SessionLimits:
    """How long a signed-in device stays signed in without use, and at most."""

    idle: timedelta
    absolute: timedelta
    staff_idle: timedelta
    staff_absolute: timedelta

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SessionLimits:
        return cls(idle=timedelta(minutes=config["SESSION_IDLE_MINUTES"]),
                   absolute=timedelta(hours=config["SESSION_ABSOLUTE_HOURS"]),
                   staff_idle=timedelta(minutes=config["STAFF_SESSION_IDLE_MINUTES"]),
                   staff_absolute=timedelta(hours=config["STAFF_SESSION_ABSOLUTE_HOURS"]))

    def for_role(self, role: str) -> tuple[timedelta, timedelta]:
        if role == Role.MEMBER:
            return self.idle, self.absolute
        return self.staff_idle, self.staff_absolute


def start_session(session: Session, *, user: User, device: str, now: datetime
                  ) -> tuple[UserSession, str]:
    """A new signed-in device; returns the record and the secret token for the cookie."""
    token = secrets.token_urlsafe(32)
    record_ = UserSession(token_hash=_hash_token(token), user_id=_id(user), created_at=now,
                          last_seen_at=now, device=device[:80])
    session.add(record_)
    session.flush()
    return record_, token


def resolve_session(session: Session, *, token: str, now: datetime, limits: SessionLimits
                    ) -> tuple[UserSession, User] | None:
    """The live session and its user for `token`, or None if unknown, idle too long or too old."""
    row = session.execute(
        select(UserSession, User).join(User, col(User.id) == col(UserSession.user_id))
        .where(col(UserSession.token_hash) == _hash_token(token))
    ).first()
    if row is None:
        return None
    user_session, user = row
    idle, absolute = limits.for_role(user.role)
    if now - user_session.last_seen_at > idle or now - user_session.created_at > absolute:
        return None
    return user_session, user


def live_session_ids(session: Session, *, session_ids: set[int], now: datetime,
                     limits: SessionLimits) -> set[int]:
    """Which of `session_ids` are still signed in (not ended, not timed out)."""
    rows = session.exec(select(UserSession, User.role)
                        .join(User, col(User.id) == col(UserSession.user_id))
                        .where(col(UserSession.id).in_(session_ids)))
    alive = set()
    for user_session, role in rows:
        idle, absolute = limits.for_role(role)
        if now - user_session.last_seen_at <= idle and now - user_session.created_at <= absolute:
            alive.add(user_session.id or 0)
    return alive


def touch_session(session: Session, *, session_id: int, now: datetime) -> None:
    session.execute(update(UserSession).where(col(UserSession.id) == session_id)
                    .values(last_seen_at=now))


def list_sessions(session: Session, *, user: User, now: datetime, limits: SessionLimits
                  ) -> list[UserSession]:
    """The user's signed-in devices that have not timed out, most recently used first."""
    idle, absolute = limits.for_role(user.role)
    return list(session.exec(
        select(UserSession).where(col(UserSession.user_id) == user.id,
                                  col(UserSession.last_seen_at) > now - idle,
                                  col(UserSession.created_at) > now - absolute)
        .order_by(col(UserSession.last_seen_at).desc())))


def end_session(session: Session, *, user: User, session_id: int) -> None:
    """Sign one of the user's own devices out."""
    row = session.get(UserSession, session_id)
    if row is None or row.user_id != user.id:
        raise NotFound(_l("That device is not signed in any more."))
    session.delete(row)
    record(session, SessionsEnded(user_id=row.user_id, session_ids=(session_id,)))


def end_all_sessions(session: Session, *, user: User, except_id: int | None = None) -> None:
    query = select(UserSession.id).where(col(UserSession.user_id) == user.id)
    if except_id is not None:
        query = query.where(col(UserSession.id) != except_id)
    ids = tuple(session.scalars(query))
    if ids:
        session.execute(delete(UserSession).where(col(UserSession.id).in_(ids)))
        assert user.id is not None
        record(session, SessionsEnded(user_id=user.id, session_ids=ids))


def purge_expired_sessions(session: Session, *, now: datetime, limits: SessionLimits) -> int:
    """Delete sessions past every timeout; returns how many went."""
    oldest_idle = now - max(limits.idle, limits.staff_idle)
    oldest_start = now - max(limits.absolute, limits.staff_absolute)
    result = session.execute(delete(UserSession).where(
        (col(UserSession.last_seen_at) < oldest_idle) | (col(UserSession.created_at) < oldest_start)))
    return int(getattr(result, "rowcount", 0) or 0)


# --- cohorts ---


def _require_staff(user: User) -> None:
    if user.role not in (Role.COACH, Role.ADMIN):
        raise Forbidden()


def is_coach_of(session: Session, *, user: User, cohort_id: int) -> bool:
    if user.role == Role.ADMIN:
        return True
    return session.scalar(select(CohortMembership.id).where(
        col(CohortMembership.cohort_id) == cohort_id,
        col(CohortMembership.user_id) == user.id,
        col(CohortMembership.role) == CohortRole.COACH)) is not None


def find_cohorts(session: Session, *, name: str) -> list[Cohort]:
    """Cohorts whose name matches `name`, ignoring case (in any alphabet)."""
    folded = " ".join(name.split()).casefold()
    return [c for c in session.exec(select(Cohort)) if c.name.casefold() == folded]


def get_cohort_for_coach(session: Session, *, coach: User, cohort_id: int) -> Cohort:
    """The cohort, if `coach` runs it (or is an admin); NotFound otherwise, so nothing leaks."""
    cohort = session.get(Cohort, cohort_id)
    if cohort is None or not is_coach_of(session, user=coach, cohort_id=cohort_id):
        raise NotFound()
    return cohort


def create_cohort(session: Session, *, coach: User, name: str) -> Cohort:
    _require_staff(coach)
    name = " ".join(name.split())
    if has_control_characters(name):
        raise InvalidInput(_l("Please use letters, numbers and punctuation only."), field="name")
    if not 2 <= len(name) <= 80:
        raise InvalidInput(_l("Please give the group a name of 2 to 80 characters."), field="name")
    cohort = Cohort(name=name)
    session.add(cohort)
    session.flush()
    assert cohort.id is not None and coach.id is not None
    session.add(CohortMembership(cohort_id=cohort.id, user_id=coach.id, role=CohortRole.COACH))
    session.flush()
    return cohort


def cohorts_of(session: Session, *, user: User, role: CohortRole | None = None) -> list[Cohort]:
    """The cohorts `user` belongs to (as `role`, when given); admins see every cohort as coach."""
    if user.role == Role.ADMIN and role != CohortRole.MEMBER:
        return list(session.scalars(select(Cohort).order_by(col(Cohort.name))))
    query = (select(Cohort).join(CohortMembership, col(CohortMembership.cohort_id) == col(Cohort.id))
             .where(col(CohortMembership.user_id) == user.id))
    if role is not None:
        query = query.where(col(CohortMembership.role) == role)
    return list(session.scalars(query.order_by(col(Cohort.name))))


def member_counts(session: Session, cohort_ids: list[int]) -> dict[int, int]:
    rows = session.execute(
        select(CohortMembership.cohort_id, func.count())
        .where(col(CohortMembership.cohort_id).in_(cohort_ids),
               col(CohortMembership.role) == CohortRole.MEMBER)
        .group_by(col(CohortMembership.cohort_id)))
    return {cohort_id: count for cohort_id, count in rows}


def members_of(session: Session, *, cohort_id: int) -> list[tuple[User, CohortMembership]]:
    rows = session.execute(
        select(User, CohortMembership).join(CohortMembership, col(CohortMembership.user_id) == col(User.id))
        .where(col(CohortMembership.cohort_id) == cohort_id,
               col(CohortMembership.role) == CohortRole.MEMBER)
        .order_by(col(User.name_key)))
    return [(user, membership) for user, membership in rows]


def coaches_of(session: Session, *, cohort_id: int) -> list[User]:
    return list(session.scalars(
        select(User).join(CohortMembership, col(CohortMembership.user_id) == col(User.id))
        .where(col(CohortMembership.cohort_id) == cohort_id,
               col(CohortMembership.role) == CohortRole.COACH)
        .order_by(col(CohortMembership.id))))


def add_coach(session: Session, *, cohort: Cohort, coach: User) -> None:
    _require_staff(coach)
    assert cohort.id is not None and coach.id is not None
    session.add(CohortMembership(cohort_id=cohort.id, user_id=coach.id, role=CohortRole.COACH))
    session.flush()


# --- managing a cohort's people (by one of its coaches) ---


def moderators_of(session: Session, *, cohort_id: int) -> list[User]:
    """The staff accounts that moderate the cohort's feed without coaching it."""
    return list(session.scalars(
        select(User).join(CohortMembership, col(CohortMembership.user_id) == col(User.id))
        .where(col(CohortMembership.cohort_id) == cohort_id,
               col(CohortMembership.role) == CohortRole.MODERATOR)
        .order_by(col(User.name_key))))


def membership_of(session: Session, *, cohort_id: int, user_id: int) -> CohortMembership | None:
    """The user's place in the cohort (member, coach or moderator), if they have one."""
    return session.exec(select(CohortMembership).where(
        col(CohortMembership.cohort_id) == cohort_id,
        col(CohortMembership.user_id) == user_id)).first()


def _staff_named(session: Session, *, display_name: str) -> User:
    """The account called `display_name`, or NotFound saying so (on the name field)."""
    user = None
    if not has_control_characters(display_name) and len(display_name) <= 60:
        user = find_user(session, display_name=display_name)
    if user is None:
        raise NotFound(_l("We could not find anyone called “%(name)s”. Please check the "
                          "spelling.", name=normalise_display_name(display_name)[:60]),
                       field="display_name")
    return user


def _locked_cohort(session: Session, *, coach: User, cohort_id: int) -> Cohort:
    """The cohort `coach` runs, locked until commit, so that two changes to its people queue."""
    get_cohort_for_coach(session, coach=coach, cohort_id=cohort_id)
    return session.exec(select(Cohort).where(col(Cohort.id) == cohort_id).with_for_update()).one()


def _log(session: Session, *, coach: User, action: str, cohort_id: int, user_id: int,
         now: datetime) -> None:
    audit.log(session, actor_id=coach.id, action=action, subject_type="cohort",
              subject_id=cohort_id, member_id=user_id, now=now)


def remove_member(session: Session, *, coach: User, cohort_id: int, member_id: int,
                  now: datetime) -> User:
    """Take a member out of the cohort; they keep their account, goals and numbers."""
    _locked_cohort(session, coach=coach, cohort_id=cohort_id)
    seat = membership_of(session, cohort_id=cohort_id, user_id=member_id)
    if seat is None or seat.role != CohortRole.MEMBER:
        raise NotFound(_l("That person is not a member of this group."))
    member = get_user(session, member_id)
    session.delete(seat)
    session.flush()
    record(session, MemberLeftCohort(user_id=member_id, cohort_id=cohort_id))
    _log(session, coach=coach, action="cohort.member_removed", cohort_id=cohort_id,
         user_id=member_id, now=now)
    return member


def add_co_coach(session: Session, *, coach: User, cohort_id: int, display_name: str,
                 now: datetime) -> User:
    """Let another coach account co-run the cohort (a moderator of it becomes a coach)."""
    cohort = _locked_cohort(session, coach=coach, cohort_id=cohort_id)
    new = _staff_named(session, display_name=display_name)
    if new.role != Role.COACH:
        raise InvalidInput(_l("%(name)s does not have a coach account. Only coaches can co-run "
                              "a group.", name=new.display_name), field="display_name")
    seat = membership_of(session, cohort_id=cohort_id, user_id=_id(new))
    if seat is not None and seat.role != CohortRole.MODERATOR:
        raise Conflict(_l("%(name)s already coaches this group.", name=new.display_name),
                       field="display_name")
    if seat is not None:
        seat.role = CohortRole.COACH
        session.add(seat)
        session.flush()
    else:
        add_coach(session, cohort=cohort, coach=new)
    _log(session, coach=coach, action="cohort.coach_added", cohort_id=cohort_id,
         user_id=_id(new), now=now)
    return new


def _remove_seat(session: Session, *, coach: User, cohort_id: int, user_id: int,
                 role: CohortRole, action: str, now: datetime) -> User:
    """Take a staff account's seat (coach or moderator) in the cohort away."""
    seat = membership_of(session, cohort_id=cohort_id, user_id=user_id)
    if seat is None or seat.role != role:
        raise NotFound(_l("That person does not coach this group.") if role == CohortRole.COACH
                       else _l("That person does not moderate this group."))
    if role == CohortRole.COACH and len(coaches_of(session, cohort_id=cohort_id)) <= 1:
        raise LastCoach()
    removed = get_user(session, user_id)
    session.delete(seat)
    session.flush()
    _log(session, coach=coach, action=action, cohort_id=cohort_id, user_id=user_id, now=now)
    # Their open sockets leave the cohort's rooms too (no more live coach alerts).
    record(session, MemberLeftCohort(user_id=user_id, cohort_id=cohort_id))
    return removed


def remove_coach(session: Session, *, coach: User, cohort_id: int, user_id: int,
                 now: datetime) -> User:
    """Take a coach off the cohort (oneself included), as long as another coach remains."""
    _locked_cohort(session, coach=coach, cohort_id=cohort_id)
    return _remove_seat(session, coach=coach, cohort_id=cohort_id, user_id=user_id,
                        role=CohortRole.COACH, action="cohort.coach_removed", now=now)


def add_moderator(session: Session, *, coach: User, cohort_id: int, display_name: str,
                  now: datetime) -> User:
    """Let a coach or admin account moderate the cohort's feed (and nothing more)."""
    _locked_cohort(session, coach=coach, cohort_id=cohort_id)
    new = _staff_named(session, display_name=display_name)
    if new.role not in (Role.COACH, Role.ADMIN):
        raise InvalidInput(_l("%(name)s is not a coach or admin account. Only staff can "
                              "moderate a group.", name=new.display_name), field="display_name")
    seat = membership_of(session, cohort_id=cohort_id, user_id=_id(new))
    if seat is not None and seat.role == CohortRole.MODERATOR:
        raise Conflict(_l("%(name)s already moderates this group.", name=new.display_name),
                       field="display_name")
    if seat is not None:
        raise Conflict(_l("%(name)s already coaches this group, and coaches moderate it "
                          "already.", name=new.display_name), field="display_name")
    session.add(CohortMembership(cohort_id=cohort_id, user_id=_id(new),
                                 role=CohortRole.MODERATOR, joined_at=now))
    session.flush()
    _log(session, coach=coach, action="cohort.moderator_added", cohort_id=cohort_id,
         user_id=_id(new), now=now)
    return new


def remove_moderator(session: Session, *, coach: User, cohort_id: int, user_id: int,
                     now: datetime) -> User:
    """Stop a staff account moderating the cohort."""
    _locked_cohort(session, coach=coach, cohort_id=cohort_id)
    return _remove_seat(session, coach=coach, cohort_id=cohort_id, user_id=user_id,
                        role=CohortRole.MODERATOR, action="cohort.moderator_removed", now=now)


# --- invites ---


def normalise_code(raw: str) -> str:
    return "".join(ch for ch in raw.upper() if ch.isalnum())


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}" if len(code) == 8 else code


def create_invite(session: Session, *, coach: User, cohort_id: int, days: int, max_uses: int,
                  now: datetime) -> Invite:
    """A new invite code for a cohort the coach runs."""
    get_cohort_for_coach(session, coach=coach, cohort_id=cohort_id)
    if not 1 <= days <= 90:
        raise InvalidInput(_l("An invite can last from 1 to 90 days."), field="days")
    if not 1 <= max_uses <= 500:
        raise InvalidInput(_l("An invite can be used from 1 to 500 times."), field="max_uses")
    code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(8))
    invite = Invite(cohort_id=cohort_id, code=code, created_by_id=coach.id, created_at=now,
                    expires_at=now + timedelta(days=days), max_uses=max_uses)
    session.add(invite)
    session.flush()
    return invite


def invites_of(session: Session, *, cohort_id: int) -> list[Invite]:
    return list(session.scalars(select(Invite).where(col(Invite.cohort_id) == cohort_id)
                                .order_by(col(Invite.created_at).desc())))


def revoke_invite(session: Session, *, coach: User, invite_id: int, now: datetime) -> Invite:
    invite = session.get(Invite, invite_id)
    if invite is None or not is_coach_of(session, user=coach, cohort_id=invite.cohort_id):
        raise NotFound()
    if invite.revoked_at is None:
        invite.revoked_at = now
    return invite


def find_invite(session: Session, *, code: str, now: datetime) -> Invite:
    """The invite for `code` if it can still be used; otherwise say why not."""
    invite = session.scalar(select(Invite).where(col(Invite.code) == normalise_code(code)))
    if invite is None or invite.revoked_at is not None:
        raise InviteNotUsable(field="code")
    if invite.expires_at <= now:
        raise InviteExpired(field="code")
    if invite.uses >= invite.max_uses:
        raise InviteUsedUp(field="code")
    return invite


def join_with_invite(session: Session, *, code: str, display_name: str, password: str,
                     timezone: str, language: str, now: datetime) -> User:
    """Create a member and add them to the invite's cohort, all or nothing."""
    invite = find_invite(session, code=code, now=now)
    user = create_user(session, display_name=display_name, password=password,
                       timezone=timezone, language=language)
    # Count the use atomically, so that two people racing for the last place cannot both join.
    claimed = session.execute(
        update(Invite).where(col(Invite.id) == invite.id, col(Invite.uses) < col(Invite.max_uses),
                             col(Invite.revoked_at).is_(None))
        .values(uses=col(Invite.uses) + 1))
    if not getattr(claimed, "rowcount", 0):
        raise InviteUsedUp(field="code")
    assert user.id is not None
    session.add(CohortMembership(cohort_id=invite.cohort_id, user_id=user.id, joined_at=now))
    session.flush()
    record(session, MemberJoined(user_id=user.id, cohort_id=invite.cohort_id,
                                 display_name=user.display_name))
    return user


# --- password reset links ---


def issue_reset_link(session: Session, *, staff: User, member_id: int, now: datetime,
                     hours: int) -> tuple[ResetToken, str]:
    """A one-time reset token for a member of a cohort `staff` runs (admins: anyone)."""
    _require_staff(staff)
    member = session.get(User, member_id)
    if member is None:
        raise NotFound()
    if staff.role != Role.ADMIN:
        shared = session.scalar(
            select(CohortMembership.id)
            .where(col(CohortMembership.user_id) == member.id,
                   col(CohortMembership.role) == CohortRole.MEMBER,
                   col(CohortMembership.cohort_id).in_(
                       select(CohortMembership.cohort_id).where(
                           col(CohortMembership.user_id) == staff.id,
                           col(CohortMembership.role) == CohortRole.COACH))))
        if shared is None:
            raise NotFound()
    # Only the newest link works: any earlier unused one for this member stops working now.
    session.execute(update(ResetToken).where(col(ResetToken.user_id) == member.id,
                                             col(ResetToken.used_at).is_(None))
                    .values(expires_at=now))
    token = secrets.token_urlsafe(32)
    reset = ResetToken(token_hash=_hash_token(token), user_id=_id(member), created_by_id=staff.id,
                       created_at=now, expires_at=now + timedelta(hours=hours))
    session.add(reset)
    session.flush()
    return reset, token


def find_reset_token(session: Session, *, token: str, now: datetime) -> ResetToken:
    reset = session.scalar(select(ResetToken).where(col(ResetToken.token_hash) == _hash_token(token)))
    if reset is None or reset.used_at is not None or reset.expires_at <= now:
        raise ResetLinkNotUsable()
    return reset


def reset_password(session: Session, *, token: str, password: str, now: datetime) -> User:
    """Use a reset link once: set the new password and sign every device out."""
    reset = find_reset_token(session, token=token, now=now)
    user = get_user(session, reset.user_id)
    set_password(session, user=user, password=password, now=now)
    claimed = session.execute(update(ResetToken).where(
        col(ResetToken.id) == reset.id, col(ResetToken.used_at).is_(None))
        .values(used_at=now))
    if not getattr(claimed, "rowcount", 0):
        raise ResetLinkNotUsable()
    return user
