"""Notifications: who hears what, when. Every notification lands in the inbox; a push goes to the
member's devices when their choices allow (the kind is on, quiet hours are over, the day's budget
is not spent), written to the outbox (`Delivery`) in the same transaction as the event.

Cheers on one post are gathered: those within a minute go out as one ("3 peers cheered your
post"), and a later one replaces the earlier push on the device (same topic and tag).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlmodel import Session, col, func, select

from app.accounts.models import CohortMembership, CohortRole, Role, User
from app.errors import InvalidInput, NotFound
from app.events import record
from goals import services as goal_services
from goals.models import Goal, GoalKind, GoalStatus
from notify.events import DeliveriesQueued, InboxChanged
from notify.models import (
    MEMBER_KINDS,
    Delivery,
    Kind,
    Notification,
    NotificationPreference,
    NotificationState,
    PushSubscription,
    SubscriptionCreate,
)

GATHER_DELAY = timedelta(seconds=60)     # cheers within this go out as one push
GATHER_WINDOW = timedelta(minutes=30)    # a later cheer replaces the earlier push
STALE_AFTER = timedelta(hours=12)        # what quiet hours outlast is not pushed any more
BUDGET_RANGE = (0, 20)
MAX_DEVICES = 10


def _id(row: User | Notification | PushSubscription) -> int:
    if row.id is None:
        raise ValueError("not saved yet")
    return row.id


# --- the member's choices ---


def preferences(session: Session, *, member_id: int) -> NotificationPreference:
    """The member's choices (the defaults until they change something)."""
    return session.get(NotificationPreference, member_id) or NotificationPreference(
        member_id=member_id)


def clock_minutes(raw: str, field: str) -> int:
    try:
        hour, minute = (int(part) for part in raw.strip().split(":")[:2])
    except ValueError:
        raise InvalidInput(_l("Please choose a time, such as 22:00."), field=field) from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise InvalidInput(_l("Please choose a time, such as 22:00."), field=field)
    return hour * 60 + minute


def update_preferences(session: Session, *, member: User, kinds_off: Iterable[str],
                       quiet_start: int, quiet_end: int, daily_budget: int, preview: bool,
                       nudge_at: int) -> NotificationPreference:
    """Save the member's choices; bad values get a clear message and change nothing."""
    known = {kind.value for kind in (*MEMBER_KINDS, Kind.CRISIS)}
    off = sorted(set(kinds_off))
    if any(kind not in known for kind in off):
        raise InvalidInput(_l("Please choose from the kinds listed."), field="kinds_off")
    if not BUDGET_RANGE[0] <= daily_budget <= BUDGET_RANGE[1]:
        raise InvalidInput(_l("Please choose from 0 to 20 notifications a day."),
                           field="daily_budget")
    for value, field in ((quiet_start, "quiet_start"), (quiet_end, "quiet_end"),
                         (nudge_at, "nudge_at")):
        if not 0 <= value < 24 * 60:
            raise InvalidInput(_l("Please choose a time, such as 22:00."), field=field)
    found = preferences(session, member_id=_id(member))
    found.kinds_off = ",".join(off)
    found.quiet_start, found.quiet_end = quiet_start, quiet_end
    found.daily_budget, found.preview, found.nudge_at = daily_budget, preview, nudge_at
    session.add(found)
    session.flush()
    return found


def quiet_until(preference: NotificationPreference, *, timezone: str, at: datetime
                ) -> datetime | None:
    """When the member's quiet hours end, if `at` falls inside them (in their own timezone)."""
    start, end = preference.quiet_start, preference.quiet_end
    if start == end:
        return None
    local = at.astimezone(ZoneInfo(timezone))
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    end_day = local.date() if minute < end else local.date() + timedelta(days=1)
    ending = datetime.combine(end_day, time(end // 60, end % 60), ZoneInfo(timezone))
    return ending.astimezone(UTC)


# --- devices ---


def _b64(raw: str, length: int, field: str) -> bytes:
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        raise InvalidInput(_l("This phone sent a subscription we could not read. Please try "
                              "again."), field=field) from None
    if len(decoded) != length:
        raise InvalidInput(_l("This phone sent a subscription we could not read. Please try "
                              "again."), field=field)
    return decoded


def subscribe(session: Session, *, member: User, data: SubscriptionCreate, device: str,
              allow_http: bool, now: datetime) -> PushSubscription:
    """Store this device's subscription (a device that was someone else's moves to this member,
    as happens when a shared phone signs in as someone else)."""
    parts = urlsplit(data.endpoint)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname or parts.username or parts.password:
        raise InvalidInput(_l("This phone sent a subscription we could not use. Please try "
                              "again."), field="endpoint")
    point = _b64(data.keys.p256dh, 65, "keys.p256dh")
    if point[0] != 4:
        raise InvalidInput(_l("This phone sent a subscription we could not read. Please try "
                              "again."), field="keys.p256dh")
    _b64(data.keys.auth, 16, "keys.auth")
    found = session.exec(select(PushSubscription).where(
        col(PushSubscription.endpoint) == data.endpoint)).first()
    if found is None:
        devices = session.exec(select(func.count()).select_from(PushSubscription).where(
            col(PushSubscription.member_id) == member.id)).one()
        if devices >= MAX_DEVICES:
            raise InvalidInput(_l("You have notifications on 10 devices already. Please remove "
                                  "one in your settings first."))
        found = PushSubscription(endpoint=data.endpoint, member_id=_id(member), p256dh="",
                                 auth="", created_at=now)
    found.member_id = _id(member)
    found.p256dh, found.auth = data.keys.p256dh, data.keys.auth
    found.device = device[:120]
    session.add(found)
    session.flush()
    return found


def subscriptions_of(session: Session, *, member: User) -> list[PushSubscription]:
    return list(session.exec(select(PushSubscription).where(
        col(PushSubscription.member_id) == member.id).order_by(col(PushSubscription.id))))


def unsubscribe(session: Session, *, member: User, subscription_id: int | None = None,
                endpoint: str | None = None) -> None:
    """Stop pushing to one of the member's devices; NotFound for anyone else's."""
    query = select(PushSubscription).where(col(PushSubscription.member_id) == member.id)
    if subscription_id is not None:
        query = query.where(col(PushSubscription.id) == subscription_id)
    elif endpoint is not None:
        query = query.where(col(PushSubscription.endpoint) == endpoint)
    else:
        raise NotFound()
    found = session.exec(query).first()
    if found is None:
        raise NotFound()
    session.delete(found)
    session.flush()


# --- making notifications ---


def notify(session: Session, *, user: User, kind: Kind, topic: str, data: dict[str, object],
           url: str, now: datetime, gather: bool = False, urgent: bool = False
           ) -> Notification:
    """Put a notification in the user's inbox, and queue its push when their choices allow."""
    user_id = _id(user)
    latest: Notification | None = None
    if gather:
        latest = session.exec(select(Notification).where(
            col(Notification.user_id) == user_id, col(Notification.topic) == topic,
            col(Notification.created_at) >= now - GATHER_WINDOW)
            .order_by(col(Notification.id).desc())).first()
        if latest is not None and latest.state == NotificationState.WAITING:
            latest.count += 1
            latest.data, latest.updated_at = data, now
            session.add(latest)
            return latest
    notification = Notification(
        user_id=user_id, kind=kind, topic=topic[:32], data=data, url=url[:200], urgent=urgent,
        count=(latest.count + 1) if gather and latest is not None else 1,
        created_at=now, updated_at=now, expires_at=now + STALE_AFTER,
        send_after=now + GATHER_DELAY if gather else now)
    if not urgent:
        preference = preferences(session, member_id=user_id)
        notification.send_after = quiet_until(
            preference, timezone=user.timezone, at=notification.send_after) \
            or notification.send_after
    session.add(notification)
    session.flush()
    record(session, InboxChanged(user_id=user_id))
    if notification.send_after <= now:
        queue(session, notification=notification, user=user, now=now)
    return notification


def _sent_today(session: Session, *, user: User, now: datetime) -> int:
    zone = ZoneInfo(user.timezone)
    midnight = datetime.combine(now.astimezone(zone).date(), time(), zone).astimezone(UTC)
    return int(session.exec(select(func.count()).select_from(Notification).where(
        col(Notification.user_id) == user.id, col(Notification.urgent).is_(False),
        col(Notification.state).in_([NotificationState.QUEUED, NotificationState.SENT]),
        col(Notification.send_after) >= midnight)).one())


def queue(session: Session, *, notification: Notification, user: User, now: datetime) -> None:
    """Write the outbox rows for a notification whose time has come (or say why there is no
    push: the kind is off, no device, stale, or the day's budget is spent)."""
    preference = preferences(session, member_id=_id(user))
    devices = subscriptions_of(session, member=user)
    state = NotificationState.QUEUED
    if notification.kind in preference.kinds_off.split(",") and not notification.urgent:
        state = NotificationState.INBOX_ONLY
    elif now > notification.expires_at:
        state = NotificationState.EXPIRED
    elif not devices or (not notification.urgent and _sent_today(
            session, user=user, now=now) >= preference.daily_budget):
        state = NotificationState.INBOX_ONLY  # no device, or the day's budget is spent
    notification.state, notification.updated_at = state, now
    notification.send_after = min(notification.send_after, now)
    session.add(notification)
    if state != NotificationState.QUEUED:
        return
    for device in devices:
        session.add(Delivery(notification_id=_id(notification), subscription_id=device.id,
                             key=f"n{notification.id}-d{device.id}", next_attempt_at=now,
                             created_at=now))
    session.flush()
    record(session, DeliveriesQueued(notification_id=_id(notification)))


def release_waiting(session: Session, *, now: datetime, limit: int = 500) -> int:
    """Notifications whose wait is over (gathering, quiet hours): queue their pushes now."""
    due = list(session.exec(select(Notification).where(
        col(Notification.state) == NotificationState.WAITING,
        col(Notification.send_after) <= now).order_by(col(Notification.id)).limit(limit)))
    users = {u.id: u for u in session.exec(select(User).where(
        col(User.id).in_({n.user_id for n in due})))}
    for notification in due:
        queue(session, notification=notification, user=users[notification.user_id], now=now)
    return len(due)


# --- the inbox ---


def inbox(session: Session, *, user: User, limit: int = 50) -> list[Notification]:
    return list(session.exec(select(Notification).where(col(Notification.user_id) == user.id)
                             .order_by(col(Notification.id).desc()).limit(limit)))


def unread_count(session: Session, *, user_id: int) -> int:
    return int(session.exec(select(func.count()).select_from(Notification).where(
        col(Notification.user_id) == user_id, col(Notification.read_at).is_(None))).one())


def mark_read(session: Session, *, user: User, now: datetime) -> int:
    unread = list(session.exec(select(Notification).where(
        col(Notification.user_id) == user.id, col(Notification.read_at).is_(None))))
    for notification in unread:
        notification.read_at = now
        session.add(notification)
    if unread:
        record(session, InboxChanged(user_id=_id(user)))
    return len(unread)


# --- who to tell ---


def coaches_of(session: Session, *, cohort_id: int) -> list[User]:
    """The cohort's coaches and moderators (for urgent alerts)."""
    return list(session.exec(select(User).join(
        CohortMembership, col(CohortMembership.user_id) == col(User.id)).where(
        col(CohortMembership.cohort_id) == cohort_id,
        col(CohortMembership.role).in_([CohortRole.COACH, CohortRole.MODERATOR]))))


def members_of(session: Session, *, cohort_id: int) -> list[User]:
    return list(session.exec(select(User).join(
        CohortMembership, col(CohortMembership.user_id) == col(User.id)).where(
        col(CohortMembership.cohort_id) == cohort_id,
        col(CohortMembership.role) == CohortRole.MEMBER)))


MAX_MESSAGE = 300


def message_cohort(session: Session, *, coach: User, cohort_id: int, text: str, now: datetime
                   ) -> int:
    """A coach's short message to everyone in a cohort they run; how many it reached."""
    # Only its coaches: a moderator's seat is for moderating the feed, and nothing more.
    seat = session.exec(select(CohortMembership.role).where(
        col(CohortMembership.cohort_id) == cohort_id,
        col(CohortMembership.user_id) == coach.id)).first()
    if coach.role == Role.MEMBER or seat != CohortRole.COACH:
        raise NotFound()
    words = " ".join(text.split())
    if not words:
        raise InvalidInput(_l("Please write something first."), field="text")
    if len(words) > MAX_MESSAGE:
        raise InvalidInput(_l("Please keep the message to 300 characters or fewer."),
                           field="text")
    members = members_of(session, cohort_id=cohort_id)
    stamp = now.strftime("%y%m%d%H%M%S")
    for member in members:
        notify(session, user=member, kind=Kind.COACH, topic=f"coach-{cohort_id}-{stamp}",
               data={"name": coach.display_name, "text": words}, url="/inbox", now=now)
    return len(members)


# --- for coaches: is push set up, and how did it go ---


@dataclass(frozen=True)
class PushStatus:
    devices: int
    last_outcome: str  # sent, failed, gone, or "" before any push
    last_outcome_at: datetime | None


def push_status(session: Session, *, member_ids: list[int]) -> dict[int, PushStatus]:
    devices = dict(session.exec(select(col(PushSubscription.member_id), func.count()).where(
        col(PushSubscription.member_id).in_(member_ids))
        .group_by(col(PushSubscription.member_id))).all())
    outcomes = {p.member_id: p for p in session.exec(select(NotificationPreference).where(
        col(NotificationPreference.member_id).in_(member_ids)))}
    return {member_id: PushStatus(
        devices=int(devices.get(member_id, 0)),
        last_outcome=outcomes[member_id].last_outcome if member_id in outcomes else "",
        last_outcome_at=outcomes[member_id].last_outcome_at if member_id in outcomes else None)
        for member_id in member_ids}


# --- the evening nudge ---

NUDGE_WITHIN = 0.6      # a goal is "within reach" from 60% of its target
NUDGE_EVERY = timedelta(minutes=15)


def nudge(session: Session, *, now: datetime) -> int:
    """Members whose nudge time has just come, with a steps goal within reach today, get one
    gentle word ("1,200 steps to go"), at most once a goal a day. Returns how many."""
    sent = 0
    goals = session.exec(select(Goal, User).join(User, col(User.id) == col(Goal.member_id))
                         .where(col(Goal.kind) == GoalKind.STEPS,
                                col(Goal.status) == GoalStatus.ACTIVE))
    for goal, member in goals:
        preference = preferences(session, member_id=_id(member))
        local = now.astimezone(ZoneInfo(member.timezone))
        minute = local.hour * 60 + local.minute
        if not 0 <= minute - preference.nudge_at < NUDGE_EVERY.total_seconds() // 60:
            continue
        if Kind.NUDGES in preference.kinds_off.split(","):
            continue
        today = goal_services.progress_of(session, goals=[goal], today=local.date())[
            goal.id or 0]
        value = today.today_value or 0
        if today.today_met or value < goal.target * NUDGE_WITHIN:
            continue
        topic = f"nudge-{goal.id}-{local.date():%m%d}"
        if session.exec(select(Notification.id).where(col(Notification.user_id) == member.id,
                                                      col(Notification.topic) == topic)).first():
            continue
        notify(session, user=member, kind=Kind.NUDGES, topic=topic,
               data={"left": goal.target - value}, url=f"/goals/{goal.id}", now=now)
        sent += 1
    return sent
