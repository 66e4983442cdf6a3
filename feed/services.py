"""The feed: posting, cheering, commenting, pinning tips, and reading it back through one
visibility rule (`visible_clause`) that every path uses: pages, the API, live updates and pushes.

Every change to a cohort's feed takes the next number of that cohort's sequence (`FeedCounter`,
whose row lock orders the cohort's writers, so numbers appear in commit order) and is published
after commit as `FeedChanged`; a reader who missed one asks for everything after the last number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from app import idempotency
from app.accounts.models import Cohort, CohortMembership, CohortRole, User
from app.accounts.services import has_control_characters
from app.errors import Forbidden, InvalidInput, NotFound
from app.events import record
from feed.events import CheerGiven, CommentAdded, CrisisFlagged, FeedChanged, FeedItemPosted
from feed.exceptions import ItemNotFound
from feed.models import (
    WRITTEN_KINDS,
    Cheer,
    CheerKind,
    Comment,
    EventKind,
    FeedCounter,
    FeedEvent,
    FeedItem,
    FeedPreference,
    ItemKind,
    ItemStatus,
)
from feed.safety import rules
from feed.safety.screening import screen
from goals.models import Goal, GoalStatus, Visibility

MAX_POST = 1000
MAX_COMMENT = 500
PAGE_SIZE = 20


def _id(row: User | FeedItem | Comment | Cohort) -> int:
    if row.id is None:
        raise ValueError("not saved yet")
    return row.id


# --- who is in which cohort ---


@dataclass(frozen=True)
class Seat:
    """Where a viewer sits in a cohort: as a member, or as one of its coaches."""

    cohort_id: int
    coach: bool
    moderator: bool = False  # a coach or a moderator of the cohort: may moderate its feed


def seat(session: Session, *, viewer: User, cohort_id: int) -> Seat:
    """The viewer's place in the cohort; NotFound when they are not in it, so nothing leaks."""
    role = session.exec(select(CohortMembership.role).where(
        col(CohortMembership.cohort_id) == cohort_id,
        col(CohortMembership.user_id) == viewer.id)).first()
    if role is None:
        raise NotFound()
    return Seat(cohort_id=cohort_id, coach=role == CohortRole.COACH,
                moderator=role in (CohortRole.COACH, CohortRole.MODERATOR))


def cohorts_for(session: Session, *, viewer: User) -> list[Cohort]:
    """The cohorts whose feed the viewer reads (as a member or a coach), by name."""
    return list(session.exec(select(Cohort).join(
        CohortMembership, col(CohortMembership.cohort_id) == col(Cohort.id))
        .where(col(CohortMembership.user_id) == viewer.id).order_by(col(Cohort.name))))


def default_seat(session: Session, *, viewer: User, cohort_id: int | None) -> Seat:
    """The asked-for cohort, or the viewer's first one."""
    if cohort_id is not None:
        return seat(session, viewer=viewer, cohort_id=cohort_id)
    cohorts = cohorts_for(session, viewer=viewer)
    if not cohorts:
        raise NotFound(_l("You are not in a peer group yet. Your coach can send you an invite."))
    return seat(session, viewer=viewer, cohort_id=_id(cohorts[0]))


# --- the one visibility rule ---


def visible_clause(viewer: User, place: Seat) -> ColumnElement[bool]:
    """Items of the cohort the viewer may see: shown ones (their own held ones too), never from
    someone either of them blocked or the viewer muted, and for items about a goal, only while
    that goal is shared with them (read at this moment)."""
    goal_shared = (col(Goal.visibility).in_([Visibility.PEERS, Visibility.COACH]) if place.coach
                   else col(Goal.visibility) == Visibility.PEERS)
    mine = col(FeedItem.author_id) == viewer.id
    return and_(
        col(FeedItem.cohort_id) == place.cohort_id,
        col(FeedItem.author_id).not_in(rules.unseen_authors(_id(viewer))),
        or_(col(FeedItem.status) == ItemStatus.VISIBLE,
            and_(mine, col(FeedItem.status) == ItemStatus.HELD)),
        or_(col(FeedItem.goal_id).is_(None), mine,
            and_(goal_shared, col(Goal.status) != GoalStatus.ARCHIVED)),
    )


def _visible(viewer: User, place: Seat):  # type: ignore[no-untyped-def]
    return (select(FeedItem).outerjoin(Goal, col(Goal.id) == col(FeedItem.goal_id))
            .where(visible_clause(viewer, place)))


def visible_items(session: Session, *, viewer: User, place: Seat, before: int | None = None,
                  limit: int = PAGE_SIZE) -> list[FeedItem]:
    """The newest items the viewer may see, older than `before` when scrolling back."""
    query = _visible(viewer, place)
    if before is not None:
        query = query.where(col(FeedItem.id) < before)
    return list(session.exec(query.order_by(col(FeedItem.id).desc()).limit(limit)))


def visible_item(session: Session, *, viewer: User, item_id: int) -> tuple[FeedItem, Seat]:
    """An item the viewer may see; ItemNotFound otherwise (unknown, elsewhere or hidden alike)."""
    item = session.get(FeedItem, item_id)
    if item is None:
        raise ItemNotFound()
    try:
        place = seat(session, viewer=viewer, cohort_id=item.cohort_id)
    except NotFound:
        raise ItemNotFound() from None
    found = session.exec(_visible(viewer, place).where(col(FeedItem.id) == item_id)).first()
    if found is None:
        raise ItemNotFound()
    return found, place


def last_seq(session: Session, *, cohort_id: int) -> int:
    counter = session.get(FeedCounter, cohort_id)
    return counter.last_seq if counter else 0


CATCH_UP_EVENTS = 500  # changes answered at once; a reader further behind asks again


@dataclass(frozen=True)
class CatchUp:
    """What changed after a reader's last number, complete up to `through`; `more` when the
    reader was so far behind that they should ask again after `through`."""

    items: list[FeedItem]
    removed: list[int]
    through: int
    more: bool


def changed_since(session: Session, *, viewer: User, place: Seat, after: int) -> CatchUp:
    """Items changed after sequence number `after` that the viewer may see (new ones, new cheers
    or comments, newest first) and those that went away, for at most CATCH_UP_EVENTS changes."""
    newest = last_seq(session, cohort_id=place.cohort_id)
    if after >= newest:
        return CatchUp(items=[], removed=[], through=newest, more=False)
    events = list(session.exec(select(FeedEvent.seq, FeedEvent.item_id, FeedEvent.kind).where(
        col(FeedEvent.cohort_id) == place.cohort_id, col(FeedEvent.seq) > after)
        .order_by(col(FeedEvent.seq)).limit(CATCH_UP_EVENTS)))
    through = events[-1][0] if events else newest
    ids = {item_id for _seq, item_id, _kind in events}
    items = list(session.exec(_visible(viewer, place).where(col(FeedItem.id).in_(ids))
                              .order_by(col(FeedItem.id).desc()))) if ids else []
    removed = sorted({item_id for _seq, item_id, kind in events if kind == EventKind.REMOVED})
    return CatchUp(items=items, removed=removed, through=through, more=through < newest)


# --- the sequence ---


def _next_seq(session: Session, cohort_id: int) -> int:
    bump = (update(FeedCounter).where(col(FeedCounter.cohort_id) == cohort_id)
            .values(last_seq=col(FeedCounter.last_seq) + 1).returning(col(FeedCounter.last_seq)))
    seq = session.execute(bump).scalar()
    if seq is None:  # the cohort's first event
        insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgres_insert
        session.execute(insert(FeedCounter).values(cohort_id=cohort_id, last_seq=0)
                        .on_conflict_do_nothing())
        seq = session.execute(bump).scalar()
    assert seq is not None
    return int(seq)


def changed(session: Session, *, item: FeedItem, kind: EventKind,
            cheers: dict[str, int] | None = None) -> int:
    """Number a change in the item's cohort and publish it (after commit) for live delivery."""
    seq = _next_seq(session, item.cohort_id)
    session.add(FeedEvent(cohort_id=item.cohort_id, seq=seq, kind=kind, item_id=_id(item)))
    record(session, FeedChanged(cohort_id=item.cohort_id, seq=seq, kind=kind, item_id=_id(item),
                                cheers=cheers or {}))
    return seq


# --- posting ---


def clean_text(raw: str, *, limit: int, field: str) -> str:
    """Plain text as written (lines kept), or a clear message when it cannot be posted."""
    text = "\n".join(line.rstrip() for line in raw.replace("\r\n", "\n").split("\n")).strip()
    if has_control_characters(text.replace("\n", "")):
        raise InvalidInput(_l("Please use letters, numbers and punctuation only."), field=field)
    if not text:
        raise InvalidInput(_l("Please write something first."), field=field)
    if len(text) > limit:
        raise InvalidInput(_l("Please keep it to %(limit)s characters or fewer (this is %(length)s).",
                              limit=f"{limit:,}", length=f"{len(text):,}"), field=field)
    return text


def _publish(session: Session, item: FeedItem) -> FeedItem:
    session.add(item)
    session.flush()
    announce(session, item=item)
    return item


def announce(session: Session, *, item: FeedItem) -> None:
    """An item appeared (or was held, for its author's eyes): numbered, delivered live, and,
    once shown to the group, announced for notifications."""
    changed(session, item=item, kind=EventKind.ITEM)
    if item.status == ItemStatus.VISIBLE:
        record(session, FeedItemPosted(item_id=_id(item), cohort_id=item.cohort_id,
                                       author_id=item.author_id, kind=item.kind))


def post(session: Session, *, author: User, cohort_id: int | None, kind: ItemKind, body: str,
         now: datetime, hold_first: int = 0) -> FeedItem:
    """A story or a tip, written by a member (or a coach) of the cohort. Words that may signal a
    crisis hold it for a coach; so does being among a new member's first `hold_first` posts."""
    if kind not in WRITTEN_KINDS:
        raise InvalidInput(_l("Please choose a story or a tip."), field="kind")
    place = default_seat(session, viewer=author, cohort_id=cohort_id)
    text = clean_text(body, limit=MAX_POST, field="body")
    _check_not_suspended(session, member=author, cohort_id=place.cohort_id, now=now)
    verdict = screen(text)
    held = verdict.crisis or (hold_first > 0 and not place.coach and _shown_posts(
        session, author_id=_id(author)) < hold_first)
    item = FeedItem(cohort_id=place.cohort_id, author_id=_id(author), kind=kind, body=text,
                    care_note=verdict.medication, created_at=now,
                    status=ItemStatus.HELD if held else ItemStatus.VISIBLE)
    _publish(session, item)
    if verdict.crisis:
        record(session, CrisisFlagged(cohort_id=item.cohort_id, member_id=_id(author),
                                      target_type="item", target_id=_id(item),
                                      reason="crisis_words"))
    return item


def post_once(session: Session, *, author: User, cohort_id: int | None, kind: ItemKind,
              body: str, client_key: str | None, now: datetime, hold_first: int = 0
              ) -> FeedItem | None:
    """`post`, or None when this is a resend (the offline outbox, a retry) of a post already
    made with the same client key. A post refused rolls back, and so frees its key."""
    if not idempotency.claim(session, user_id=_id(author), key=client_key, action="post"):
        return None
    return post(session, author=author, cohort_id=cohort_id, kind=kind, body=body, now=now,
                hold_first=hold_first)


def _shown_posts(session: Session, *, author_id: int) -> int:
    """How many of the member's own stories and tips the group has seen."""
    return int(session.exec(select(func.count()).select_from(FeedItem).where(
        col(FeedItem.author_id) == author_id, col(FeedItem.kind).in_(list(WRITTEN_KINDS)),
        col(FeedItem.status) == ItemStatus.VISIBLE)).one())


def _check_not_suspended(session: Session, *, member: User, cohort_id: int, now: datetime
                         ) -> None:
    until = rules.suspended_until(session, member_id=_id(member), cohort_id=cohort_id, now=now)
    if until is not None:
        raise Forbidden(_l("Posting and commenting are paused for you until %(day)s, as a "
                           "moderator explained. You can still read, and you can ask for a "
                           "second look on your Safety page.", day=f"{until:%Y-%m-%d}"))


def _member_cohorts(session: Session, member_id: int) -> list[int]:
    return list(session.exec(select(CohortMembership.cohort_id).where(
        col(CohortMembership.user_id) == member_id,
        col(CohortMembership.role) == CohortRole.MEMBER)))


def share_goal(session: Session, *, goal: Goal, now: datetime) -> list[FeedItem]:
    """A goal just shared with the peer group appears in each of the member's cohorts (once:
    sharing it again later brings the earlier post back through the visibility rule)."""
    items = []
    for cohort_id in _member_cohorts(session, goal.member_id):
        exists = session.exec(select(FeedItem.id).where(
            col(FeedItem.cohort_id) == cohort_id, col(FeedItem.goal_id) == goal.id,
            col(FeedItem.kind) == ItemKind.GOAL_SHARED)).first()
        if exists is None:
            items.append(_publish(session, FeedItem(
                cohort_id=cohort_id, author_id=goal.member_id, kind=ItemKind.GOAL_SHARED,
                goal_id=goal.id, created_at=now)))
    return items


def share_milestone(session: Session, *, goal: Goal, milestone_id: int, now: datetime
                    ) -> list[FeedItem]:
    """A milestone of a goal shared with the group becomes a post in the member's cohorts."""
    if goal.visibility != Visibility.PEERS:
        return []
    return [_publish(session, FeedItem(cohort_id=cohort_id, author_id=goal.member_id,
                                       kind=ItemKind.MILESTONE, goal_id=goal.id,
                                       milestone_id=milestone_id, created_at=now))
            for cohort_id in _member_cohorts(session, goal.member_id)]


def share_progress(session: Session, *, member: User, goal: Goal, day: date, value: int,
                   now: datetime) -> list[FeedItem]:
    """The member chose to share a day's progress on a goal shared with their group."""
    if goal.member_id != member.id:
        raise NotFound()
    if goal.visibility != Visibility.PEERS:
        raise InvalidInput(_l("Share this goal with your peer group first, then its progress "
                              "can be shared too."), field="visibility")
    cohorts = _member_cohorts(session, _id(member))
    if not cohorts:
        raise InvalidInput(_l("You are not in a peer group yet. Your coach can send you an "
                              "invite."))
    return [_publish(session, FeedItem(cohort_id=cohort_id, author_id=_id(member),
                                       kind=ItemKind.PROGRESS, goal_id=goal.id, day=day,
                                       value=value, created_at=now))
            for cohort_id in cohorts]


def remove_own(session: Session, *, author: User, item_id: int) -> None:
    """The author takes their post down; it leaves every reader's page."""
    item = session.get(FeedItem, item_id)
    if item is None or item.author_id != author.id or item.status == ItemStatus.REMOVED:
        raise ItemNotFound()
    item.status = ItemStatus.REMOVED
    session.add(item)
    changed(session, item=item, kind=EventKind.REMOVED)


# --- cheers ---


def cheer_counts(session: Session, item_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    if item_ids:
        for item_id, kind, count in session.exec(
                select(col(Cheer.item_id), col(Cheer.kind), func.count())
                .where(col(Cheer.item_id).in_(item_ids))
                .group_by(col(Cheer.item_id), col(Cheer.kind))):
            counts[item_id][kind] = count
    return counts


def my_cheers(session: Session, *, member: User, item_ids: Sequence[int]) -> dict[int, set[str]]:
    mine: dict[int, set[str]] = defaultdict(set)
    if item_ids:
        for item_id, kind in session.exec(select(col(Cheer.item_id), col(Cheer.kind)).where(
                col(Cheer.member_id) == member.id, col(Cheer.item_id).in_(item_ids))):
            mine[item_id].add(kind)
    return mine


def give_cheer(session: Session, *, member: User, item_id: int, kind: CheerKind,
               client_key: str | None, now: datetime) -> bool:
    """Cheer an item one can see; False when it was already given (or this was a resend)."""
    item, _ = visible_item(session, viewer=member, item_id=item_id)
    if item.status != ItemStatus.VISIBLE:
        raise InvalidInput(_l("This post is waiting to be shared, so it cannot be cheered yet."))
    if not idempotency.claim(session, user_id=_id(member), key=client_key, action="cheer"):
        return False
    try:
        with session.begin_nested():
            session.add(Cheer(item_id=item_id, member_id=_id(member), kind=kind, created_at=now))
    except IntegrityError:  # this kind was already given by this member
        return False
    session.execute(update(FeedItem).where(col(FeedItem.id) == item_id)
                    .values(cheer_count=col(FeedItem.cheer_count) + 1))
    changed(session, item=item, kind=EventKind.CHEER,
             cheers=cheer_counts(session, [item_id])[item_id])
    record(session, CheerGiven(item_id=item_id, cohort_id=item.cohort_id, member_id=_id(member),
                               item_author_id=item.author_id, kind=kind))
    return True


def undo_cheer(session: Session, *, member: User, item_id: int, kind: CheerKind) -> bool:
    """Take a cheer back; False when there was none."""
    item, _ = visible_item(session, viewer=member, item_id=item_id)
    cheer = session.exec(select(Cheer).where(col(Cheer.item_id) == item_id,
                                             col(Cheer.member_id) == member.id,
                                             col(Cheer.kind) == kind)).first()
    if cheer is None:
        return False
    session.delete(cheer)
    session.flush()
    session.execute(update(FeedItem).where(col(FeedItem.id) == item_id)
                    .values(cheer_count=col(FeedItem.cheer_count) - 1))
    changed(session, item=item, kind=EventKind.CHEER,
             cheers=cheer_counts(session, [item_id]).get(item_id, {}))
    return True


# --- comments ---


def add_comment(session: Session, *, author: User, item_id: int, body: str,
                client_key: str | None, now: datetime) -> Comment | None:
    """A plain-text comment on an item one can see; None when this was a resend."""
    item, _ = visible_item(session, viewer=author, item_id=item_id)
    if item.status != ItemStatus.VISIBLE:
        raise InvalidInput(_l("This post is waiting to be shared, so it cannot take comments "
                              "yet."))
    text = clean_text(body, limit=MAX_COMMENT, field="body")
    _check_not_suspended(session, member=author, cohort_id=item.cohort_id, now=now)
    if not idempotency.claim(session, user_id=_id(author), key=client_key, action="comment"):
        return None
    verdict = screen(text)
    comment = Comment(item_id=item_id, author_id=_id(author), body=text, created_at=now,
                      care_note=verdict.medication,
                      status=ItemStatus.HELD if verdict.crisis else ItemStatus.VISIBLE)
    session.add(comment)
    session.flush()
    if verdict.crisis:
        record(session, CrisisFlagged(cohort_id=item.cohort_id, member_id=_id(author),
                                      target_type="comment", target_id=_id(comment),
                                      reason="crisis_words"))
        return comment
    publish_comment(session, item=item, comment=comment)
    return comment


def publish_comment(session: Session, *, item: FeedItem, comment: Comment) -> None:
    """A comment now shown to the group: counted, delivered live, and announced."""
    session.execute(update(FeedItem).where(col(FeedItem.id) == item.id)
                    .values(comment_count=col(FeedItem.comment_count) + 1))
    changed(session, item=item, kind=EventKind.COMMENT)
    record(session, CommentAdded(comment_id=_id(comment), item_id=_id(item),
                                 cohort_id=item.cohort_id, author_id=comment.author_id,
                                 item_author_id=item.author_id))


def comments_of(session: Session, *, viewer: User, item: FeedItem) -> list[Comment]:
    """An item's comments the viewer may see: shown ones and their own held ones, never from
    someone either of them blocked or the viewer muted."""
    return list(session.exec(select(Comment).where(
        col(Comment.item_id) == item.id,
        col(Comment.author_id).not_in(rules.unseen_authors(_id(viewer))),
        or_(col(Comment.status) == ItemStatus.VISIBLE,
            and_(col(Comment.author_id) == viewer.id, col(Comment.status) == ItemStatus.HELD)))
        .order_by(col(Comment.id))))


# --- tips that worked ---


def pin_tip(session: Session, *, coach: User, item_id: int, pinned: bool, now: datetime
            ) -> FeedItem:
    """A coach keeps a tip in the cohort's "tips that worked" (or takes it out)."""
    item, place = visible_item(session, viewer=coach, item_id=item_id)
    if not place.coach:
        raise Forbidden(_l("Only the group's coaches can pin tips."))
    if item.kind != ItemKind.TIP:
        raise InvalidInput(_l("Only tips can be pinned."))
    item.pinned_at = now if pinned else None
    session.add(item)
    changed(session, item=item, kind=EventKind.ITEM)
    return item


def tips_that_worked(session: Session, *, viewer: User, place: Seat, limit: int = 10
                     ) -> list[FeedItem]:
    """Pinned tips first, then the most cheered (two small indexed reads, not a sort of the
    cohort's every item)."""
    tips = _visible(viewer, place).where(col(FeedItem.kind) == ItemKind.TIP)
    pinned = list(session.exec(tips.where(col(FeedItem.pinned_at).is_not(None))
                               .order_by(col(FeedItem.pinned_at).desc()).limit(limit)))
    cheered = list(session.exec(tips.where(col(FeedItem.pinned_at).is_(None))
                                .order_by(col(FeedItem.cheer_count).desc(),
                                          col(FeedItem.id).desc()).limit(limit)))
    return (pinned + cheered)[:limit]


# --- preferences ---


def just_reading(session: Session, *, member: User) -> bool:
    preference = session.get(FeedPreference, member.id)
    return bool(preference and preference.just_reading)


def set_just_reading(session: Session, *, member: User, on: bool) -> None:
    preference = session.get(FeedPreference, member.id) or FeedPreference(member_id=_id(member))
    preference.just_reading = on
    session.add(preference)
    session.flush()
