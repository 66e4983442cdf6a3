"""Who hears what: cheers, comments, milestones, crisis alerts and tracker trouble become
notifications (inbox and outbox) in the same transaction as the event; after commit, the sender
is started and unread counts move live. Blocks and mutes hold here too."""

from __future__ import annotations

from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from app.accounts.events import AccountDeleted
from app.accounts.models import Cohort, Role, User
from app.db import get_db, utcnow
from app.events import EventBus, sqlmodel_session
from app.realtime import emit_to_user
from feed.events import CheerGiven, CommentAdded, CrisisFlagged
from feed.safety import rules
from goals.events import MilestoneReached
from goals.models import Goal
from goals.services import milestone_is_news
from notify import data_rights, services, tasks
from notify.events import DeliveriesQueued, InboxChanged
from notify.models import Kind
from wearables.events import ReconnectNeeded


def _reachable(session: Session, *, recipient_id: int, sender_id: int) -> bool:
    """No notification across a block, either way, nor from someone the recipient muted."""
    return (recipient_id != sender_id
            and not rules.blocked_between(session, recipient_id, sender_id)
            and not rules.muted(session, muter_id=recipient_id, muted_id=sender_id))


def on_cheer_given(session: OrmSession, event: CheerGiven) -> None:
    db = sqlmodel_session(session)
    recipient, cheerer = db.get(User, event.item_author_id), db.get(User, event.member_id)
    if recipient is None or cheerer is None or recipient.role == Role.FORMER or not _reachable(
            db, recipient_id=event.item_author_id, sender_id=event.member_id):
        return
    services.notify(db, user=recipient, kind=Kind.CHEERS, topic=f"cheers-{event.item_id}",
                    data={"name": cheerer.display_name, "cheer": event.kind},
                    url=f"/feed/{event.item_id}", now=utcnow(), gather=True)


def on_comment_added(session: OrmSession, event: CommentAdded) -> None:
    db = sqlmodel_session(session)
    recipient, author = db.get(User, event.item_author_id), db.get(User, event.author_id)
    if recipient is None or author is None or recipient.role == Role.FORMER or not _reachable(
            db, recipient_id=event.item_author_id, sender_id=event.author_id):
        return
    services.notify(db, user=recipient, kind=Kind.COMMENTS, topic=f"comment-{event.comment_id}",
                    data={"name": author.display_name},
                    url=f"/feed/{event.item_id}#comments", now=utcnow())


def on_milestone_reached(session: OrmSession, event: MilestoneReached) -> None:
    db = sqlmodel_session(session)
    member = db.get(User, event.member_id)
    now = utcnow()
    if member is None or not milestone_is_news(member, reached_on=event.reached_on, now=now):
        return  # a backfill's old milestone is not news
    goal = db.get(Goal, event.goal_id)
    services.notify(db, user=member, kind=Kind.MILESTONES,
                    topic=f"milestone-{event.milestone_id}",
                    data={"milestone": event.kind, "streak": event.streak,
                          "goal_kind": goal.kind if goal else ""},
                    url=f"/goals/{event.goal_id}", now=now)


def on_crisis_flagged(session: OrmSession, event: CrisisFlagged) -> None:
    """Urgent: past quiet hours and the budget, to every coach and moderator of the cohort."""
    db = sqlmodel_session(session)
    cohort = db.get(Cohort, event.cohort_id)
    for coach in services.coaches_of(db, cohort_id=event.cohort_id):
        services.notify(db, user=coach, kind=Kind.CRISIS,
                        topic=f"crisis-{event.target_type}-{event.target_id}",
                        data={"group": cohort.name if cohort else ""}, url="/moderation",
                        now=utcnow(), urgent=True)


def on_reconnect_needed(session: OrmSession, event: ReconnectNeeded) -> None:
    db = sqlmodel_session(session)
    member = db.get(User, event.member_id)
    if member is not None:
        services.notify(db, user=member, kind=Kind.TRACKER, topic=f"tracker-{event.provider}",
                        data={"provider": event.provider}, url="/tracker", now=utcnow())


def on_account_deleted(session: OrmSession, event: AccountDeleted) -> None:
    data_rights.forget_name(sqlmodel_session(session), display_name=event.display_name,
                            cohort_ids=event.cohort_ids)


def on_deliveries_queued(_event: DeliveriesQueued) -> None:
    tasks.deliver_task()


def on_inbox_changed(event: InboxChanged) -> None:
    with get_db().session(write=False) as session:
        unread = services.unread_count(session, user_id=event.user_id)
    emit_to_user(event.user_id, "inbox", {"unread": unread})


def register(bus: EventBus) -> None:
    bus.in_transaction(CheerGiven, on_cheer_given)
    bus.in_transaction(CommentAdded, on_comment_added)
    bus.in_transaction(MilestoneReached, on_milestone_reached)
    bus.in_transaction(CrisisFlagged, on_crisis_flagged)
    bus.in_transaction(ReconnectNeeded, on_reconnect_needed)
    bus.in_transaction(AccountDeleted, on_account_deleted)
    bus.after_commit(DeliveriesQueued, on_deliveries_queued)
    bus.after_commit(InboxChanged, on_inbox_changed)
