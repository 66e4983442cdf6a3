"""A member's rights over their data: download everything about them, and delete their account.

`app` imports no feature, yet every feature holds part of a member's data. So each feature adds
an *export part* (a function that writes its sections and tables into the export) with
`add_export_part`, and forgets its share of a deleted account in an in-transaction handler of
`AccountDeleted`. The user row goes last, in the same transaction; every foreign key to it either
cascades or is set to NULL, so nothing of the member is left behind.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import audit
from app.accounts import passwords, services
from app.accounts.events import AccountDeleted, MemberLeftCohort
from app.accounts.exceptions import CohortNeedsCoach, LastAdmin, NotFound, PasswordNotAccepted
from app.accounts.models import (
    Cohort,
    CohortMembership,
    CohortRole,
    Consent,
    RecoveryCode,
    ResearchConsent,
    Role,
    TwoFactor,
    User,
    UserSession,
)
from app.events import record

FOLDER = "hearten-data"
FORMAT_VERSION = 1
_PARTS = "hearten.export_parts"
# No name a person can type folds to this key (private-use characters are refused in names).
FORMER_MEMBER_KEY = "\ue000former-member"
FORMER_MEMBER_NAME = "A former member"
# Not an argon2 hash, so that no password ever matches it.
UNUSABLE_PASSWORD_HASH = "!"  # noqa: S105  (not a secret: matches nothing)
# Spreadsheet programs run cells that start with these as formulas.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- the export ---


@dataclass(frozen=True)
class Table:
    """A CSV file of the export: a header and its rows."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@dataclass
class Export:
    """What a member's download holds: JSON sections, and CSV tables by file name."""

    sections: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)


# (session, member, export) -> None: a feature writes its sections and tables into the export.
ExportPart = Callable[[Session, User, Export], None]


def add_export_part(app: Flask, part: ExportPart) -> None:
    """Let a feature add what it holds about a member to their download."""
    app.extensions.setdefault(_PARTS, []).append(part)


def export_parts(app: Flask) -> list[ExportPart]:
    """The account's own part first, then each feature's, in the order they were added."""
    return [account_part, *app.extensions.get(_PARTS, [])]


def stamp(value: datetime | date | None) -> str | None:
    """A date or UTC time as ISO 8601 text (None stays None)."""
    return value.isoformat() if value is not None else None


def account_part(session: Session, member: User, export: Export) -> None:
    """The profile, groups, signed-in devices, sharing choices, research, audit entries."""
    member_id = member.id
    export.sections["profile"] = {
        "display_name": member.display_name, "role": member.role, "timezone": member.timezone,
        "language": member.language, "created_at": stamp(member.created_at),
        "password_changed_at": stamp(member.password_changed_at)}
    export.sections["groups"] = [
        {"group": cohort.name, "role": seat.role, "joined_at": stamp(seat.joined_at)}
        for seat, cohort in session.exec(
            select(CohortMembership, Cohort).join(Cohort, col(Cohort.id) == col(CohortMembership.cohort_id))
            .where(col(CohortMembership.user_id) == member_id).order_by(col(CohortMembership.id)))]
    export.sections["signed_in_devices"] = [
        {"device": row.device, "signed_in_at": stamp(row.created_at),
         "last_used_at": stamp(row.last_seen_at), "second_step_at": stamp(row.two_factor_at)}
        for row in session.exec(select(UserSession).where(col(UserSession.user_id) == member_id)
                                .order_by(col(UserSession.id)))]
    export.sections["what_my_coach_can_see"] = [
        {"metric": row.metric, "level": row.level, "changed_at": stamp(row.changed_at)}
        for row in session.exec(select(Consent).where(col(Consent.member_id) == member_id)
                                .order_by(col(Consent.metric)))]
    research = session.get(ResearchConsent, member_id)
    export.sections["research"] = {
        "helping": research is not None and research.withdrawn_at is None,
        "study_id": research.study_id if research else None,
        "agreed_at": stamp(research.agreed_at) if research else None,
        "withdrawn_at": stamp(research.withdrawn_at) if research else None}
    if member.role in (Role.COACH, Role.ADMIN):
        factor = session.get(TwoFactor, member_id)
        export.sections["two_step_sign_in"] = {
            "set_up_at": stamp(factor.confirmed_at) if factor else None,
            "recovery_codes_left": session.scalar(select(func.count()).select_from(RecoveryCode)
                                                  .where(col(RecoveryCode.user_id) == member_id,
                                                         col(RecoveryCode.used_at).is_(None)))}
    # What was done about them (a coach opening their page, their consent, moderation), and what
    # they did to their own account; never what they did to someone else. Who did it: themselves
    # or "staff", never a name.
    entries = session.exec(select(audit.AuditEntry).where(
        (col(audit.AuditEntry.member_id) == member_id)
        | ((col(audit.AuditEntry.actor_id) == member_id) & col(audit.AuditEntry.member_id).is_(None)))
        .order_by(col(audit.AuditEntry.id)))
    export.sections["audit_log_about_me"] = [
        {"at": stamp(entry.created_at), "action": entry.action,
         "by": "me" if entry.actor_id == member_id else "staff" if entry.actor_id else "system",
         "about": entry.subject_type, "detail": entry.detail} for entry in entries]


def collect(session: Session, *, member: User, parts: Sequence[ExportPart], now: datetime
            ) -> Export:
    """Everything the parts hold about `member`."""
    export = Export(sections={"about_this_file": {
        "format": "hearten-export", "version": FORMAT_VERSION, "generated_at": stamp(now)}})
    for part in parts:
        part(session, member, export)
    return export


def _json_value(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _cell(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def _csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    writer.writerows(tuple(_cell(value) for value in row) for row in table.rows)
    return out.getvalue()


def to_zip(export: Export, *, readme: str) -> bytes:
    """The download: a folder with a README, my-data.json and one CSV file per table."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{FOLDER}/README.txt", readme)
        archive.writestr(f"{FOLDER}/my-data.json", json.dumps(
            export.sections, ensure_ascii=False, indent=2, default=_json_value))
        for name, table in export.tables.items():
            archive.writestr(f"{FOLDER}/{name}", _csv(table))
    return buffer.getvalue()


def filename(now: datetime) -> str:
    return f"{FOLDER}-{now:%Y-%m-%d}.zip"


def export_my_data(session: Session, *, member: User, parts: Sequence[ExportPart], now: datetime,
                   readme: str) -> bytes:
    """The member's own download, audited in the caller's transaction."""
    export = collect(session, member=member, parts=parts, now=now)
    audit.log(session, actor_id=member.id, action="account.exported", subject_type="account",
              member_id=member.id, detail=f"{len(export.tables)} tables", now=now)
    return to_zip(export, readme=readme)


# --- the former member: who kept posts belong to ---


def former_member(session: Session) -> User:
    """The one account that kept posts of deleted accounts move to (made on first use)."""
    query = select(User).where(col(User.name_key) == FORMER_MEMBER_KEY)
    found = session.exec(query).first()
    if found is not None:
        return found
    former = User(display_name=FORMER_MEMBER_NAME, name_key=FORMER_MEMBER_KEY, role=Role.FORMER,
                  password_hash=UNUSABLE_PASSWORD_HASH)
    try:
        with session.begin_nested():
            session.add(former)
            session.flush()
    except IntegrityError:  # another deletion made it at the same moment
        return session.exec(query).one()
    return former


def shown_name(user: User) -> str:
    """The name to show for an author: theirs, or "A former member" in the reader's language."""
    return str(_l("A former member")) if user.role == Role.FORMER else user.display_name


# --- deleting an account ---


def _check_can_leave(session: Session, *, user: User) -> None:
    """Staff may delete their account unless a group would be left with no coach, or no admin
    would be left."""
    if user.role == Role.ADMIN and (session.scalar(
            select(func.count()).select_from(User).where(col(User.role) == Role.ADMIN)) or 0) <= 1:
        raise LastAdmin()
    coached = session.exec(select(Cohort).join(
        CohortMembership, col(CohortMembership.cohort_id) == col(Cohort.id)).where(
        col(CohortMembership.user_id) == user.id, col(CohortMembership.role) == CohortRole.COACH)
        .order_by(col(Cohort.name)))
    for cohort in coached:
        if len(services.coaches_of(session, cohort_id=cohort.id or 0)) <= 1:
            raise CohortNeedsCoach(_l("“%(group)s” has no other coach. Please add another coach "
                                      "to it first, then delete your account.", group=cohort.name))


def delete_account(session: Session, *, user_id: int, password: str, keep_posts: bool,
                   now: datetime) -> None:
    """Delete one's own account after checking the password, all in the caller's transaction:
    out of every cohort (so out of coach figures and research exports), each feature's share
    forgotten (tracker tokens revoked after commit), signed out everywhere, the audit log kept
    but no longer pointing at them, and the user row deleted."""
    user = session.exec(select(User).where(col(User.id) == user_id).with_for_update()).first()
    if user is None or user.role == Role.FORMER:
        raise NotFound()
    if not passwords.verify_password(user.password_hash, password):
        raise PasswordNotAccepted()
    _check_can_leave(session, user=user)
    seats = list(session.exec(select(CohortMembership).where(
        col(CohortMembership.user_id) == user_id).order_by(col(CohortMembership.cohort_id))))
    for seat in seats:
        session.delete(seat)
    session.flush()
    for seat in seats:  # coach rollups take the member's days out of each cohort's days
        record(session, MemberLeftCohort(user_id=user_id, cohort_id=seat.cohort_id))
    record(session, AccountDeleted(user_id=user_id, display_name=user.display_name,
                                   cohort_ids=tuple(seat.cohort_id for seat in seats),
                                   keep_posts=keep_posts))
    services.end_all_sessions(session, user=user)  # their open sockets close after commit
    # The entries stay (what was done, and when), but none points at the account any more;
    # they never held names or health values.
    entry = audit.AuditEntry
    session.execute(update(entry).where(col(entry.actor_id) == user_id).values(actor_id=None))
    session.execute(update(entry).where(col(entry.member_id) == user_id).values(member_id=None))
    session.execute(update(entry).where(col(entry.subject_type).in_(("member", "user")),
                                        col(entry.subject_id) == user_id).values(subject_id=None))
    audit.log(session, actor_id=None, action="account.deleted", subject_type="account",
              detail=f"by its owner ({user.role}); posts "
                     + ("kept as a former member's" if keep_posts else "removed"), now=now)
    session.delete(user)
    session.flush()
