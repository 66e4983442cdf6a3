"""Notifications' share of a member's rights: their choices, inbox and phones in their download;
and, when they delete their account, their name taken out of what others' inboxes kept (their
own inbox, choices, phones and outbox go with the user row)."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from app.accounts.data_rights import Export, stamp
from app.accounts.models import CohortMembership, User
from notify import services, texts
from notify.models import Kind, Notification, PushSubscription

# Kinds whose words name someone else: a cheerer, a commenter, a coach.
NAMED_KINDS = (Kind.CHEERS, Kind.COMMENTS, Kind.COACH)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def export_part(session: Session, member: User, export: Export) -> None:
    """Choices, the inbox in the member's words, and each phone by its push service's host
    only (the endpoint and its keys are the phone's secret)."""
    choice = services.preferences(session, member_id=member.id or 0)
    export.sections["notification_settings"] = {
        "turned_off": [kind for kind in choice.kinds_off.split(",") if kind],
        "quiet_from": _clock(choice.quiet_start), "quiet_until": _clock(choice.quiet_end),
        "daily_limit": choice.daily_budget, "show_details_on_lock_screen": choice.preview,
        "evening_nudge_at": _clock(choice.nudge_at)}
    inbox = []
    for notification in session.exec(select(Notification).where(
            col(Notification.user_id) == member.id).order_by(col(Notification.id))):
        words = texts.words(notification)
        inbox.append({"kind": notification.kind, "title": words.title, "text": words.body,
                      "at": stamp(notification.created_at), "read_at": stamp(notification.read_at)})
    export.sections["inbox"] = inbox
    export.sections["phones_for_notifications"] = [
        {"push_service": urlsplit(row.endpoint).hostname or "", "device": row.device,
         "signed_up_at": stamp(row.created_at), "last_push": row.last_outcome,
         "last_push_at": stamp(row.last_outcome_at)}
        for row in session.exec(select(PushSubscription).where(
            col(PushSubscription.member_id) == member.id).order_by(col(PushSubscription.id)))]


def forget_name(session: Session, *, display_name: str, cohort_ids: Collection[int]) -> int:
    """Take a deleted account's name out of the inboxes of the people of its former cohorts
    (they then read "A former member"); returns how many notifications changed."""
    if not cohort_ids:
        return 0
    people = select(CohortMembership.user_id).where(
        col(CohortMembership.cohort_id).in_(list(cohort_ids)))
    changed = 0
    for notification in session.exec(select(Notification).where(
            col(Notification.user_id).in_(people), col(Notification.kind).in_(NAMED_KINDS))):
        if notification.data.get("name") == display_name:
            notification.data = {**notification.data, "name": ""}
            session.add(notification)
            changed += 1
    session.flush()
    return changed
