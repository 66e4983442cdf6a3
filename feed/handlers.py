"""What the feed does when events arrive: goals shared with the group and their milestones become
posts (in the same transaction); every change is delivered live to the cohort's room."""

from __future__ import annotations

from sqlalchemy.orm import Session as OrmSession

from app.accounts.events import AccountDeleted
from app.accounts.models import User
from app.db import utcnow
from app.events import EventBus, sqlmodel_session
from app.realtime import emit_to_cohort
from feed import data_rights, services
from feed.events import FeedChanged
from goals.events import GoalVisibilityChanged, MilestoneReached
from goals.models import Goal, Visibility
from goals.services import milestone_is_news


def on_goal_visibility_changed(session: OrmSession, event: GoalVisibilityChanged) -> None:
    if event.after != Visibility.PEERS:
        return
    db = sqlmodel_session(session)
    goal = db.get(Goal, event.goal_id)
    if goal is not None:
        services.share_goal(db, goal=goal, now=utcnow())


def on_milestone_reached(session: OrmSession, event: MilestoneReached) -> None:
    if event.visibility != Visibility.PEERS:
        return
    db = sqlmodel_session(session)
    goal, member = db.get(Goal, event.goal_id), db.get(User, event.member_id)
    if goal is None or member is None:
        return
    now = utcnow()
    if not milestone_is_news(member, reached_on=event.reached_on, now=now):
        return  # a backfill's old milestone: celebrated on the goal's page, not posted
    services.share_milestone(db, goal=goal, milestone_id=event.milestone_id, now=now)


def on_account_deleted(session: OrmSession, event: AccountDeleted) -> None:
    data_rights.forget_member(sqlmodel_session(session), member_id=event.user_id,
                              keep_posts=event.keep_posts)


def on_feed_changed(event: FeedChanged) -> None:
    """Every socket of the cohort hears the number, the item and its cheer counts; content is
    fetched by each reader through the visibility rule."""
    emit_to_cohort(event.cohort_id, "feed", {"seq": event.seq, "kind": event.kind,
                                             "item_id": event.item_id, "cheers": event.cheers})


def register(bus: EventBus) -> None:
    bus.in_transaction(AccountDeleted, on_account_deleted)
    bus.in_transaction(GoalVisibilityChanged, on_goal_visibility_changed)
    bus.in_transaction(MilestoneReached, on_milestone_reached)
    bus.after_commit(FeedChanged, on_feed_changed)
