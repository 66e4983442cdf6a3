"""Reading the audit log for admins: recent entries with names and plain words, newest first.

Reading it is not itself audited; it holds who did what to whom, never health values or text.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlmodel import Session, col, select

from app.accounts.models import User
from app.audit import AuditEntry

PAGE_SIZE = 50

# The filters offered on the page, by what an action's name starts with.
GROUPS: dict[str, Any] = {
    "coach.": _l("Coaches looking at members and exporting"),
    "moderation.": _l("Moderation"),
    "cohort.": _l("Changes to who is in a group"),
    "consent.": _l("What members share with their coach"),
    "research.": _l("Research use"),
    "two_factor.": _l("Two-step sign-in"),
}

ACTIONS: dict[str, Any] = {
    "coach.viewed_member": _l("Coach looked at a member's page"),
    "coach.export": _l("Coach exported data for research"),
    "consent.changed": _l("Member changed what their coach can see"),
    "research.agreed": _l("Member agreed to research use"),
    "research.withdrawn": _l("Member stopped research use"),
    "cohort.member_removed": _l("Member taken out of a group"),
    "cohort.coach_added": _l("Coach added to a group"),
    "cohort.coach_removed": _l("Coach taken off a group"),
    "cohort.moderator_added": _l("Moderator added to a group"),
    "cohort.moderator_removed": _l("Moderator taken off a group"),
    "two_factor.set_up": _l("Two-step sign-in set up"),
    "two_factor.recovery_code_used": _l("Signed in with a recovery code"),
    "two_factor.recovery_codes_renewed": _l("New recovery codes made"),
    "two_factor.reset": _l("Two-step sign-in reset"),
    "moderation.approve": _l("Moderator approved a post or comment"),
    "moderation.hide": _l("Moderator hid a post or comment"),
    "moderation.delete": _l("Moderator removed a post or comment"),
    "moderation.warn": _l("Moderator sent a member a warning"),
    "moderation.suspend": _l("Moderator paused a member's posting"),
    "moderation.misleading": _l("Moderator marked a post as maybe misleading"),
    "moderation.dismiss": _l("Moderator looked at reports and found nothing wrong"),
    "moderation.appeal": _l("Member appealed a moderation decision"),
    "moderation.appeal_decided": _l("Moderator decided an appeal"),
}


def describe(action: str) -> str:
    """An action in plain words (its stored name when it is new to this list)."""
    label = ACTIONS.get(action)
    return str(label) if label is not None else action


@dataclass(frozen=True)
class Line:
    """One entry, with the names of the people in it (None when they are no longer here)."""

    id: int
    created_at: datetime
    actor_id: int | None
    actor: str | None
    action: str
    subject_type: str
    subject_id: int | None
    member_id: int | None
    member: str | None
    detail: str

    @property
    def label(self) -> str:
        return describe(self.action)


@dataclass(frozen=True)
class LogPage:
    lines: list[Line]
    older: int | None  # pass as `before` for the next page; None on the last page


def _names(session: Session, ids: Collection[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.exec(select(col(User.id), col(User.display_name)).where(
        col(User.id).in_(sorted(ids))))
    return {user_id: name for user_id, name in rows if user_id is not None}


def entries(session: Session, *, action_prefix: str = "", member_id: int | None = None,
            before: int | None = None, limit: int = PAGE_SIZE) -> LogPage:
    """A page of entries, newest first: those whose action starts with `action_prefix`, about
    `member_id`, older than the entry `before`."""
    query = select(AuditEntry)
    if action_prefix:
        query = query.where(col(AuditEntry.action).startswith(action_prefix, autoescape=True))
    if member_id is not None:
        query = query.where(col(AuditEntry.member_id) == member_id)
    if before is not None:
        query = query.where(col(AuditEntry.id) < before)
    found = list(session.exec(query.order_by(col(AuditEntry.id).desc()).limit(limit + 1)))
    more, found = len(found) > limit, found[:limit]
    names = _names(session, {i for e in found for i in (e.actor_id, e.member_id)
                             if i is not None})
    lines = [Line(id=e.id or 0, created_at=e.created_at, actor_id=e.actor_id,
                  actor=names.get(e.actor_id) if e.actor_id is not None else None,
                  action=e.action, subject_type=e.subject_type, subject_id=e.subject_id,
                  member_id=e.member_id,
                  member=names.get(e.member_id) if e.member_id is not None else None,
                  detail=e.detail)
             for e in found]
    return LogPage(lines=lines, older=lines[-1].id if more and lines else None)
