"""Blocks and mutes, reports, the moderation queue and its actions, appeals, crisis resources.

Every moderation action records the reason the member sees and an audit entry, in the same
transaction as the change it makes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from app import audit
from app.accounts.models import CohortMembership, CohortRole, Role, User
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.events import record
from feed import services as feed
from feed.events import CrisisFlagged
from feed.models import Comment, EventKind, FeedItem, ItemStatus
from feed.safety.models import (
    ActionCreate,
    ActionKind,
    Appeal,
    Block,
    ModerationAction,
    Mute,
    Report,
    ReportCategory,
    ReportCreate,
    TargetType,
)
from feed.safety.screening import screen

RESOURCES_FILE = Path(__file__).with_name("resources.json")
NEEDS_REASON = frozenset({ActionKind.HIDE, ActionKind.DELETE, ActionKind.WARN,
                          ActionKind.SUSPEND, ActionKind.MISLEADING})
ITEM_ACTIONS = frozenset({ActionKind.APPROVE, ActionKind.HIDE, ActionKind.DELETE,
                          ActionKind.MISLEADING, ActionKind.DISMISS})
MEMBER_ACTIONS = frozenset({ActionKind.WARN, ActionKind.SUSPEND, ActionKind.DISMISS})
SUSPEND_DAYS = (1, 90)


def _id(row: User | FeedItem | Comment | Report | ModerationAction | Appeal) -> int:
    if row.id is None:
        raise ValueError("not saved yet")
    return row.id


# --- crisis resources ---


@dataclass(frozen=True)
class Resource:
    name: str
    contact: str
    detail: str


@cache
def _resource_table(path: str) -> dict[str, list[dict[str, object]]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {key: value for key, value in data.items() if not key.startswith("_")}


def crisis_resources(*, country: str, language: str, path: str = "") -> list[Resource]:
    """Where to get help now, for the deployment's country, in the reader's language."""
    table = _resource_table(path or str(RESOURCES_FILE))
    entries = table.get(country.upper()) or table["default"]
    found = []
    for entry in entries:
        names = entry["name"]
        details = entry["detail"]
        assert isinstance(names, dict) and isinstance(details, dict)
        found.append(Resource(name=str(names.get(language) or names["en"]),
                              contact=str(entry["contact"]),
                              detail=str(details.get(language) or details["en"])))
    return found


# --- blocks and mutes ---


def _fellow_member(session: Session, *, viewer: User, other_id: int) -> User:
    """A member who shares a cohort with the viewer; NotFound otherwise (nothing leaks)."""
    other = session.get(User, other_id)
    if other is None or other.id == viewer.id or other.role != Role.MEMBER:
        raise NotFound()
    mine = select(CohortMembership.cohort_id).where(col(CohortMembership.user_id) == viewer.id)
    shared = session.exec(select(CohortMembership.id).where(
        col(CohortMembership.user_id) == other_id,
        col(CohortMembership.cohort_id).in_(mine))).first()
    if shared is None:
        raise NotFound()
    return other


def block(session: Session, *, member: User, other_id: int, now: datetime) -> bool:
    """Neither sees nor reaches the other any more; False when already blocked."""
    if member.role != Role.MEMBER:
        raise Forbidden(_l("Blocking is for members. Coaches can use the moderation tools."))
    _fellow_member(session, viewer=member, other_id=other_id)
    try:
        with session.begin_nested():
            session.add(Block(blocker_id=_id(member), blocked_id=other_id, created_at=now))
    except IntegrityError:
        return False
    return True


def unblock(session: Session, *, member: User, other_id: int) -> bool:
    found = session.exec(select(Block).where(col(Block.blocker_id) == member.id,
                                             col(Block.blocked_id) == other_id)).first()
    if found is None:
        return False
    session.delete(found)
    session.flush()
    return True


def mute(session: Session, *, member: User, other_id: int, now: datetime) -> bool:
    """Hide someone's posts and comments from my feed, silently; False when already muted."""
    _fellow_member(session, viewer=member, other_id=other_id)
    try:
        with session.begin_nested():
            session.add(Mute(muter_id=_id(member), muted_id=other_id, created_at=now))
    except IntegrityError:
        return False
    return True


def unmute(session: Session, *, member: User, other_id: int) -> bool:
    found = session.exec(select(Mute).where(col(Mute.muter_id) == member.id,
                                            col(Mute.muted_id) == other_id)).first()
    if found is None:
        return False
    session.delete(found)
    session.flush()
    return True


def blocked_and_muted(session: Session, *, member: User) -> tuple[list[User], list[User]]:
    blocked = list(session.exec(select(User).join(Block, col(Block.blocked_id) == col(User.id))
                                .where(col(Block.blocker_id) == member.id)))
    muted = list(session.exec(select(User).join(Mute, col(Mute.muted_id) == col(User.id))
                              .where(col(Mute.muter_id) == member.id)))
    return blocked, muted


# --- reports ---


@dataclass(frozen=True)
class Target:
    """What a report or an action is about, with its cohort and the member it concerns."""

    type: TargetType
    id: int
    cohort_id: int
    member_id: int
    item: FeedItem | None = None
    comment: Comment | None = None


def _visible_target(session: Session, *, viewer: User, target_type: TargetType,
                    target_id: int) -> Target:
    """A post, comment or member the viewer can see; NotFound for anything else."""
    if target_type == TargetType.ITEM:
        item, _ = feed.visible_item(session, viewer=viewer, item_id=target_id)
        return Target(type=target_type, id=target_id, cohort_id=item.cohort_id,
                      member_id=item.author_id, item=item)
    if target_type == TargetType.COMMENT:
        comment = session.get(Comment, target_id)
        if comment is None:
            raise NotFound()
        item, _ = feed.visible_item(session, viewer=viewer, item_id=comment.item_id)
        if comment not in feed.comments_of(session, viewer=viewer, item=item):
            raise NotFound()
        return Target(type=target_type, id=target_id, cohort_id=item.cohort_id,
                      member_id=comment.author_id, item=item, comment=comment)
    other = _fellow_member(session, viewer=viewer, other_id=target_id)
    mine = select(CohortMembership.cohort_id).where(col(CohortMembership.user_id) == viewer.id)
    cohort_id = session.exec(select(CohortMembership.cohort_id).where(
        col(CohortMembership.user_id) == other.id,
        col(CohortMembership.cohort_id).in_(mine))).first()
    assert cohort_id is not None
    return Target(type=target_type, id=target_id, cohort_id=cohort_id, member_id=target_id)


def report(session: Session, *, reporter: User, data: ReportCreate, hide_after: int,
           now: datetime) -> bool:
    """Report a post, comment or member one can see; False when already reported by them.
    Enough different reporters hide a post or comment until a moderator has looked."""
    note = " ".join(data.note.split())
    if len(note) > 500:
        raise InvalidInput(_l("Please keep the note to 500 characters or fewer."), field="note")
    target = _visible_target(session, viewer=reporter, target_type=data.target_type,
                             target_id=data.target_id)
    if target.member_id == reporter.id:
        raise InvalidInput(_l("You cannot report your own post. You can take it down instead."))
    try:
        with session.begin_nested():
            session.add(Report(reporter_id=_id(reporter), cohort_id=target.cohort_id,
                               target_type=target.type, target_id=target.id,
                               member_id=target.member_id, category=data.category, note=note,
                               created_at=now))
    except IntegrityError:
        return False
    if data.category == ReportCategory.SELF_HARM:
        record(session, CrisisFlagged(cohort_id=target.cohort_id, member_id=target.member_id,
                                      target_type=target.type, target_id=target.id,
                                      reason="self_harm_report"))
    reporters = session.exec(select(func.count(func.distinct(Report.reporter_id))).where(
        col(Report.target_type) == target.type, col(Report.target_id) == target.id,
        col(Report.resolved_at).is_(None))).one()
    if reporters >= hide_after:
        _set_status(session, target, ItemStatus.HIDDEN)
    return True


# --- moderation ---


def can_moderate(session: Session, *, user: User, cohort_id: int) -> bool:
    return session.exec(select(CohortMembership.id).where(
        col(CohortMembership.cohort_id) == cohort_id, col(CohortMembership.user_id) == user.id,
        col(CohortMembership.role).in_([CohortRole.COACH, CohortRole.MODERATOR]))).first() \
        is not None


def moderated_cohorts(session: Session, *, user: User) -> list[int]:
    return list(session.exec(select(CohortMembership.cohort_id).where(
        col(CohortMembership.user_id) == user.id,
        col(CohortMembership.role).in_([CohortRole.COACH, CohortRole.MODERATOR]))))


def _target_for_moderator(session: Session, *, moderator: User, target_type: TargetType,
                          target_id: int) -> Target:
    """Any post, comment or member, held or hidden included, if the user moderates its cohort;
    Forbidden for a non-moderator, NotFound for what does not exist."""
    if target_type == TargetType.ITEM:
        item = session.get(FeedItem, target_id)
        if item is None:
            raise NotFound()
        target = Target(type=target_type, id=target_id, cohort_id=item.cohort_id,
                        member_id=item.author_id, item=item)
    elif target_type == TargetType.COMMENT:
        comment = session.get(Comment, target_id)
        parent = session.get(FeedItem, comment.item_id) if comment is not None else None
        if comment is None or parent is None:
            raise NotFound()
        target = Target(type=target_type, id=target_id, cohort_id=parent.cohort_id,
                        member_id=comment.author_id, item=parent, comment=comment)
    else:
        member = session.get(User, target_id)
        cohort_ids = set(moderated_cohorts(session, user=moderator))
        shared = session.exec(select(CohortMembership.cohort_id).where(
            col(CohortMembership.user_id) == target_id,
            col(CohortMembership.cohort_id).in_(cohort_ids))).first() if member else None
        if member is None or shared is None:
            raise Forbidden(_l("Only the group's coaches and moderators can do this."))
        target = Target(type=target_type, id=target_id, cohort_id=shared, member_id=target_id)
    if not can_moderate(session, user=moderator, cohort_id=target.cohort_id):
        raise Forbidden(_l("Only the group's coaches and moderators can do this."))
    return target


def _set_status(session: Session, target: Target, status: ItemStatus) -> None:
    """Show, hide or remove a post or comment, and let every reader's page follow."""
    if target.comment is not None and target.item is not None:
        was_shown = target.comment.status == ItemStatus.VISIBLE
        target.comment.status = status
        session.add(target.comment)
        session.flush()
        if status == ItemStatus.VISIBLE and not was_shown:
            feed.publish_comment(session, item=target.item, comment=target.comment)
        elif was_shown and status != ItemStatus.VISIBLE:
            target.item.comment_count = max(0, target.item.comment_count - 1)
            session.add(target.item)
            feed.changed(session, item=target.item, kind=EventKind.COMMENT)
        return
    if target.item is not None:
        was_shown = target.item.status == ItemStatus.VISIBLE
        target.item.status = status
        session.add(target.item)
        session.flush()
        if status == ItemStatus.VISIBLE and not was_shown:
            feed.announce(session, item=target.item)
        elif was_shown and status != ItemStatus.VISIBLE:
            feed.changed(session, item=target.item, kind=EventKind.REMOVED)


def _resolve_reports(session: Session, target: Target, now: datetime) -> None:
    for found in session.exec(select(Report).where(col(Report.target_type) == target.type,
                                                   col(Report.target_id) == target.id,
                                                   col(Report.resolved_at).is_(None))):
        found.resolved_at = now
        session.add(found)


def act(session: Session, *, moderator: User, data: ActionCreate, now: datetime
        ) -> ModerationAction:
    """Approve, hide, delete, mark as possibly misleading, warn or suspend, with a reason the
    member sees; recorded in the audit log."""
    target = _target_for_moderator(session, moderator=moderator, target_type=data.target_type,
                                   target_id=data.target_id)
    kind = data.kind
    allowed = MEMBER_ACTIONS if target.type == TargetType.MEMBER else ITEM_ACTIONS | {
        ActionKind.WARN, ActionKind.SUSPEND}
    if kind not in allowed or (kind == ActionKind.MISLEADING and target.comment is not None):
        raise InvalidInput(_l("That action does not fit here."), field="kind")
    reason = " ".join(data.reason.split())
    if kind in NEEDS_REASON and len(reason) < 3:
        raise InvalidInput(_l("Please write a short reason: the member will see it."),
                           field="reason")
    if len(reason) > 500:
        raise InvalidInput(_l("Please keep the reason to 500 characters or fewer."),
                           field="reason")
    until = None
    if kind == ActionKind.SUSPEND:
        days = data.days or 0
        if not SUSPEND_DAYS[0] <= days <= SUSPEND_DAYS[1]:
            raise InvalidInput(_l("Please choose from 1 to 90 days."), field="days")
        until = now + timedelta(days=days)
    if kind == ActionKind.APPROVE:
        _set_status(session, target, ItemStatus.VISIBLE)
    elif kind == ActionKind.HIDE:
        _set_status(session, target, ItemStatus.HIDDEN)
    elif kind == ActionKind.DELETE:
        _set_status(session, target, ItemStatus.REMOVED)
    elif kind == ActionKind.MISLEADING and target.item is not None:
        target.item.misleading_note = reason
        session.add(target.item)
        feed.changed(session, item=target.item, kind=EventKind.ITEM)
    elif kind == ActionKind.DISMISS and target.type != TargetType.MEMBER:
        current = target.comment.status if target.comment else (
            target.item.status if target.item else ItemStatus.VISIBLE)
        if current == ItemStatus.HIDDEN:
            _set_status(session, target, ItemStatus.VISIBLE)  # hidden by reports only
    if kind in (ActionKind.APPROVE, ActionKind.HIDE, ActionKind.DELETE, ActionKind.DISMISS):
        _resolve_reports(session, target, now)
    action = ModerationAction(cohort_id=target.cohort_id, moderator_id=moderator.id,
                              member_id=target.member_id, kind=kind, target_type=target.type,
                              target_id=target.id, reason=reason, until=until, created_at=now)
    session.add(action)
    session.flush()
    audit.log(session, actor_id=moderator.id, action=f"moderation.{kind}",
              subject_type=target.type, subject_id=target.id, member_id=target.member_id,
              detail=f"action {action.id}" + (f", until {until:%Y-%m-%d}" if until else ""),
              now=now)
    return action


@dataclass(frozen=True)
class QueueEntry:
    """Something waiting for a moderator, with its context."""

    target: Target
    reports: list[Report]
    held: bool

    @property
    def crisis(self) -> bool:
        """Whether its words may signal a crisis (the reason most holds happen)."""
        text = self.target.comment.body if self.target.comment else (
            self.target.item.body if self.target.item else "")
        return screen(text).crisis


def queue(session: Session, *, moderator: User) -> list[QueueEntry]:
    """Held and reported posts and comments, and reported members, in the user's cohorts."""
    cohort_ids = moderated_cohorts(session, user=moderator)
    if not cohort_ids:
        return []
    entries: dict[tuple[str, int], QueueEntry] = {}
    held_items = session.exec(select(FeedItem).where(col(FeedItem.cohort_id).in_(cohort_ids),
                                                     col(FeedItem.status) == ItemStatus.HELD))
    for item in held_items:
        entries[(TargetType.ITEM, _id(item))] = QueueEntry(
            Target(TargetType.ITEM, _id(item), item.cohort_id, item.author_id, item=item), [],
            held=True)
    held_comments = session.exec(select(Comment, FeedItem).join(
        FeedItem, col(FeedItem.id) == col(Comment.item_id)).where(
        col(FeedItem.cohort_id).in_(cohort_ids), col(Comment.status) == ItemStatus.HELD))
    for comment, parent in held_comments:
        entries[(TargetType.COMMENT, _id(comment))] = QueueEntry(
            Target(TargetType.COMMENT, _id(comment), parent.cohort_id, comment.author_id,
                   item=parent, comment=comment), [], held=True)
    open_reports = session.exec(select(Report).where(col(Report.cohort_id).in_(cohort_ids),
                                                     col(Report.resolved_at).is_(None))
                                .order_by(col(Report.id)))
    for found in open_reports:
        key = (found.target_type, found.target_id)
        if key not in entries:
            try:
                target = _target_for_moderator(session, moderator=moderator,
                                               target_type=TargetType(found.target_type),
                                               target_id=found.target_id)
            except (NotFound, Forbidden):
                continue
            entries[key] = QueueEntry(target, [], held=False)
        entries[key].reports.append(found)
    return list(entries.values())


def waiting_count(session: Session, *, moderator: User) -> int:
    cohort_ids = moderated_cohorts(session, user=moderator)
    if not cohort_ids:
        return 0
    held = session.exec(select(func.count()).select_from(FeedItem).where(
        col(FeedItem.cohort_id).in_(cohort_ids), col(FeedItem.status) == ItemStatus.HELD)).one()
    held_comments = session.exec(select(func.count()).select_from(Comment).join(
        FeedItem, col(FeedItem.id) == col(Comment.item_id)).where(
        col(FeedItem.cohort_id).in_(cohort_ids), col(Comment.status) == ItemStatus.HELD)).one()
    reported = session.exec(select(func.count(func.distinct(Report.target_id))).where(
        col(Report.cohort_id).in_(cohort_ids), col(Report.resolved_at).is_(None))).one()
    appeals = len(open_appeals(session, moderator=moderator))
    return int(held + held_comments + reported + appeals)


# --- notices and appeals ---


def notices_of(session: Session, *, member: User) -> list[tuple[ModerationAction, Appeal | None]]:
    """Moderation actions about the member that they should know of, with any appeal."""
    actions = session.exec(select(ModerationAction).where(
        col(ModerationAction.member_id) == member.id,
        col(ModerationAction.kind).not_in([ActionKind.APPROVE, ActionKind.DISMISS]))
        .order_by(col(ModerationAction.id).desc()))
    appeals = {a.action_id: a for a in session.exec(select(Appeal).where(
        col(Appeal.member_id) == member.id))}
    return [(action, appeals.get(_id(action))) for action in actions]


def appeal(session: Session, *, member: User, action_id: int, text: str, now: datetime
           ) -> Appeal:
    """Ask for a second look at an action about oneself, once."""
    action = session.get(ModerationAction, action_id)
    if action is None or action.member_id != member.id or action.kind in (
            ActionKind.APPROVE, ActionKind.DISMISS):
        raise NotFound()
    words = feed.clean_text(text, limit=1000, field="text")
    existing = session.exec(select(Appeal.id).where(col(Appeal.action_id) == action_id)).first()
    if existing is not None:
        raise Conflict(_l("You have already asked for a second look at this. A coach will "
                          "answer you."))
    try:
        with session.begin_nested():
            found = Appeal(action_id=action_id, member_id=_id(member), text=words,
                           created_at=now)
            session.add(found)
    except IntegrityError:
        raise Conflict(_l("You have already asked for a second look at this. A coach will "
                          "answer you.")) from None
    audit.log(session, actor_id=member.id, action="moderation.appeal", subject_type="action",
              subject_id=action_id, member_id=member.id, now=now)
    return found


def open_appeals(session: Session, *, moderator: User) -> list[tuple[Appeal, ModerationAction]]:
    cohort_ids = moderated_cohorts(session, user=moderator)
    return [(found, action) for found, action in session.exec(
        select(Appeal, ModerationAction).join(
            ModerationAction, col(ModerationAction.id) == col(Appeal.action_id))
        .where(col(ModerationAction.cohort_id).in_(cohort_ids), col(Appeal.decided_at).is_(None))
        .order_by(col(Appeal.id)))]


def decide_appeal(session: Session, *, moderator: User, appeal_id: int, upheld: bool,
                  answer: str, now: datetime) -> Appeal:
    """Keep the action (upheld) or undo it, with an answer the member sees."""
    found = session.get(Appeal, appeal_id)
    action = session.get(ModerationAction, found.action_id) if found else None
    if found is None or action is None:
        raise NotFound()
    if not can_moderate(session, user=moderator, cohort_id=action.cohort_id):
        raise Forbidden(_l("Only the group's coaches and moderators can do this."))
    if found.decided_at is not None:
        raise Conflict(_l("This appeal has already been answered."))
    words = " ".join(answer.split())[:500]
    if not upheld:
        if action.kind == ActionKind.SUSPEND:
            action.until = now
            session.add(action)
        elif action.kind in (ActionKind.HIDE, ActionKind.DELETE, ActionKind.MISLEADING):
            target = _target_for_moderator(session, moderator=moderator,
                                           target_type=TargetType(action.target_type),
                                           target_id=action.target_id)
            if action.kind == ActionKind.MISLEADING and target.item is not None:
                target.item.misleading_note = ""
                session.add(target.item)
                feed.changed(session, item=target.item, kind=EventKind.ITEM)
            else:
                _set_status(session, target, ItemStatus.VISIBLE)
    found.decided_at, found.upheld, found.answer = now, upheld, words
    session.add(found)
    audit.log(session, actor_id=moderator.id, action="moderation.appeal_decided",
              subject_type="appeal", subject_id=appeal_id, member_id=found.member_id,
              detail="upheld" if upheld else "overturned", now=now)
    return found
