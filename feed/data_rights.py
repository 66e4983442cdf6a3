"""The feed's share of a member's rights (safety included): their posts, comments, cheers,
reports, blocks, mutes and moderation notices in their download; and, when they delete their
account, their posts and comments removed or kept as "A former member", as they chose.

What happens to each row of a deleted account:
- cheers they gave: deleted (the counts on peers' posts go down, live);
- their posts and comments: deleted with "remove" (a post takes the comments and cheers on it
  along); with "keep", their shown stories, tips and comments move to the former-member account,
  words unchanged; posts about their goals, and anything held or hidden, go either way;
- reports they made: still open ones stay for the moderators, moved to the former-member account
  (a safety concern outlives its reporter, and the reported member never learns who reported);
  resolved ones are deleted;
- reports about their kept posts and comments follow those to the former-member account; every
  other report about them, their blocks and mutes either way, moderation actions about them and
  their appeals go with the user row.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from app.accounts.data_rights import Export, former_member, stamp
from app.accounts.models import Cohort, User
from app.events import record
from feed.events import ActivityRemoved
from feed.models import WRITTEN_KINDS, Cheer, Comment, EventKind, FeedItem, ItemStatus
from feed.safety.models import ActionKind, Appeal, Block, ModerationAction, Mute, Report, TargetType
from feed.services import changed, cheer_counts, just_reading


def export_part(session: Session, member: User, export: Export) -> None:
    member_id = member.id
    groups = {c.id: c.name for c in session.exec(select(Cohort).where(col(Cohort.id).in_(
        select(FeedItem.cohort_id).where(col(FeedItem.author_id) == member_id))))}
    export.sections["posts"] = [
        {"id": item.id, "group": groups.get(item.cohort_id, ""), "kind": item.kind,
         "text": item.body, "day": stamp(item.day), "value": item.value, "status": item.status,
         "moderator_note": item.misleading_note, "cheers": item.cheer_count,
         "comments": item.comment_count, "pinned": item.pinned_at is not None,
         "posted_at": stamp(item.created_at)}
        for item in session.exec(select(FeedItem).where(col(FeedItem.author_id) == member_id)
                                 .order_by(col(FeedItem.id)))]
    export.sections["comments"] = [
        {"id": comment.id, "on_post": comment.item_id, "text": comment.body,
         "status": comment.status, "written_at": stamp(comment.created_at)}
        for comment in session.exec(select(Comment).where(col(Comment.author_id) == member_id)
                                    .order_by(col(Comment.id)))]
    export.sections["cheers_given"] = [
        {"on_post": cheer.item_id, "cheer": cheer.kind, "given_at": stamp(cheer.created_at)}
        for cheer in session.exec(select(Cheer).where(col(Cheer.member_id) == member_id)
                                  .order_by(col(Cheer.id)))]
    export.sections["reports_i_made"] = [
        {"about": report.target_type, "id": report.target_id, "category": report.category,
         "note": report.note, "made_at": stamp(report.created_at),
         "looked_at": stamp(report.resolved_at)}
        for report in session.exec(select(Report).where(col(Report.reporter_id) == member_id)
                                   .order_by(col(Report.id)))]
    export.sections["blocked"] = [
        {"name": name, "since": stamp(when)} for name, when in session.exec(
            select(User.display_name, Block.created_at).join(Block, col(Block.blocked_id) == col(User.id))
            .where(col(Block.blocker_id) == member_id).order_by(col(Block.id)))]
    export.sections["muted"] = [
        {"name": name, "since": stamp(when)} for name, when in session.exec(
            select(User.display_name, Mute.created_at).join(Mute, col(Mute.muted_id) == col(User.id))
            .where(col(Mute.muter_id) == member_id).order_by(col(Mute.id)))]
    appeals = {a.action_id: a for a in session.exec(select(Appeal).where(
        col(Appeal.member_id) == member_id))}
    export.sections["moderation_notices"] = [
        {"action": action.kind, "about": action.target_type, "reason": action.reason,
         "until": stamp(action.until), "at": stamp(action.created_at),
         "my_appeal": None if (appeal := appeals.get(action.id or 0)) is None else {
             "text": appeal.text, "at": stamp(appeal.created_at),
             "decided_at": stamp(appeal.decided_at), "upheld": appeal.upheld,
             "answer": appeal.answer}}
        for action in session.exec(select(ModerationAction).where(
            col(ModerationAction.member_id) == member_id,
            col(ModerationAction.kind).not_in([ActionKind.APPROVE, ActionKind.DISMISS]))
            .order_by(col(ModerationAction.id)))]
    export.sections["feed_settings"] = {"just_reading": just_reading(session, member=member)}


class _Former:
    """The former-member account's id, made only when something moves to it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._id: int | None = None

    @property
    def id(self) -> int:
        if self._id is None:
            self._id = former_member(self.session).id or 0
        return self._id


def forget_member(session: Session, *, member_id: int, keep_posts: bool) -> None:
    """A deleted account's share of the feed, as the module docstring says; readers' pages
    follow live."""
    former = _Former(session)
    recounted: dict[int, EventKind] = {}  # surviving posts whose counts changed

    cheered: dict[int, int] = defaultdict(int)
    for item_id in session.exec(select(Cheer.item_id).where(col(Cheer.member_id) == member_id)):
        cheered[item_id] += 1
    session.execute(delete(Cheer).where(col(Cheer.member_id) == member_id))
    for item_id, count in cheered.items():
        session.execute(update(FeedItem).where(col(FeedItem.id) == item_id)
                        .values(cheer_count=col(FeedItem.cheer_count) - count))
        recounted[item_id] = EventKind.CHEER

    comments = list(session.exec(select(Comment).where(col(Comment.author_id) == member_id)))
    kept_comments = [c.id or 0 for c in comments
                     if keep_posts and c.status == ItemStatus.VISIBLE]
    gone_comments = [c for c in comments if (c.id or 0) not in kept_comments]
    if kept_comments:
        session.execute(update(Comment).where(col(Comment.id).in_(kept_comments))
                        .values(author_id=former.id))
    for comment in gone_comments:
        if comment.status == ItemStatus.VISIBLE:
            session.execute(update(FeedItem).where(col(FeedItem.id) == comment.item_id)
                            .values(comment_count=col(FeedItem.comment_count) - 1))
            recounted.setdefault(comment.item_id, EventKind.COMMENT)
    _delete_comments(session, [c.id or 0 for c in gone_comments])

    items = list(session.exec(select(FeedItem).where(col(FeedItem.author_id) == member_id)))
    kept_items = [i.id or 0 for i in items if keep_posts and i.kind in WRITTEN_KINDS
                  and i.status == ItemStatus.VISIBLE]
    gone_items = [i for i in items if (i.id or 0) not in kept_items]
    if kept_items:
        session.execute(update(FeedItem).where(col(FeedItem.id).in_(kept_items))
                        .values(author_id=former.id))
    _remove_items(session, gone_items, member_id=member_id)

    for report in list(session.exec(select(Report).where(col(Report.reporter_id) == member_id))):
        duplicate = report.resolved_at is None and session.exec(select(Report.id).where(
            col(Report.reporter_id) == former.id, col(Report.target_type) == report.target_type,
            col(Report.target_id) == report.target_id)).first() is not None
        if report.resolved_at is not None or duplicate:
            session.delete(report)
        else:
            report.reporter_id = former.id
            session.add(report)
    for target_type, kept in ((TargetType.ITEM, kept_items), (TargetType.COMMENT, kept_comments)):
        if kept:
            session.execute(update(Report).where(
                col(Report.member_id) == member_id, col(Report.target_type) == target_type,
                col(Report.target_id).in_(kept)).values(member_id=former.id))
    session.flush()

    gone = {i.id for i in gone_items}
    for item_id, kind in recounted.items():
        item = session.get(FeedItem, item_id)
        if item is not None and item_id not in gone:
            session.refresh(item)
            changed(session, item=item, kind=kind,
                    cheers=cheer_counts(session, [item_id]).get(item_id, {})
                    if kind == EventKind.CHEER else None)


def _delete_comments(session: Session, comment_ids: list[int]) -> None:
    """Comments, and the reports about them (a report points at its target by number only)."""
    if comment_ids:
        session.execute(delete(Report).where(col(Report.target_type) == TargetType.COMMENT,
                                             col(Report.target_id).in_(comment_ids)))
        session.execute(delete(Comment).where(col(Comment.id).in_(comment_ids)))


def _remove_items(session: Session, items: list[FeedItem], *, member_id: int) -> None:
    """Posts removed for good, with the comments and cheers on them; the days others' cheers and
    comments counted on are counted again, and readers' pages drop the posts live."""
    if not items:
        return
    ids = [item.id or 0 for item in items]
    activity: dict[int, list[datetime]] = defaultdict(list)
    for who, when in session.exec(select(Cheer.member_id, Cheer.created_at).where(
            col(Cheer.item_id).in_(ids), col(Cheer.member_id) != member_id)):
        activity[who].append(when)
    for who, when in session.exec(select(Comment.author_id, Comment.created_at).where(
            col(Comment.item_id).in_(ids), col(Comment.author_id) != member_id)):
        activity[who].append(when)
    _delete_comments(session, [comment_id for comment_id in session.exec(
        select(Comment.id).where(col(Comment.item_id).in_(ids))) if comment_id])
    session.execute(delete(Report).where(col(Report.target_type) == TargetType.ITEM,
                                         col(Report.target_id).in_(ids)))
    for item in items:
        if item.status == ItemStatus.VISIBLE:
            changed(session, item=item, kind=EventKind.REMOVED)  # its event row goes with it
    session.execute(delete(FeedItem).where(col(FeedItem.id).in_(ids)))
    for who, stamps in sorted(activity.items()):
        record(session, ActivityRemoved(member_id=who, at=tuple(stamps)))
