"""Notifications: devices subscribed to Web Push, each member's choices, the inbox, and the outbox
of deliveries (one per notification and device, written in the same transaction as the event)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class Kind(enum.StrEnum):
    CHEERS = "cheers"            # peers cheered my post (gathered)
    COMMENTS = "comments"        # someone commented on my post
    MILESTONES = "milestones"    # I reached a milestone
    NUDGES = "nudges"            # a gentle evening nudge when a goal is within reach
    COACH = "coach"              # a coach's message to my cohort
    TRACKER = "tracker"          # please reconnect my tracker
    CRISIS = "crisis"            # (coaches) someone may need you now


MEMBER_KINDS = (Kind.CHEERS, Kind.COMMENTS, Kind.MILESTONES, Kind.NUDGES, Kind.COACH,
                Kind.TRACKER)


class NotificationState(enum.StrEnum):
    WAITING = "waiting"          # gathering more of the same, or waiting for quiet hours to end
    QUEUED = "queued"            # deliveries written; the sender takes it from here
    SENT = "sent"
    INBOX_ONLY = "inbox_only"    # no push (turned off, no device, over the day's budget)
    EXPIRED = "expired"          # quiet hours outlasted it; it stays in the inbox


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"          # claimed by a sender (until claimed_until)
    SENT = "sent"
    FAILED = "failed"            # gave up after retries
    GONE = "gone"                # the push service said the subscription is gone (404/410)


def _user_fk() -> Column[int]:
    return Column(Integer, ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True)


def _when(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class PushSubscription(SQLModel, table=True):
    """One device's Web Push subscription (a member may have several)."""

    __tablename__ = "push_subscription"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(sa_column=_user_fk())
    endpoint: str = Field(max_length=1000, unique=True)
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)
    device: str = Field(default="", max_length=120)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    last_outcome: str = Field(default="", max_length=10)  # sent, failed
    last_outcome_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class NotificationPreference(SQLModel, table=True):
    """What a member wants to hear about, and when."""

    __tablename__ = "notification_preference"

    member_id: int = Field(sa_column=Column(Integer, ForeignKey("user.id", ondelete="CASCADE"),
                                            primary_key=True))
    kinds_off: str = Field(default="", max_length=200)  # comma-separated Kind values
    quiet_start: int = 22 * 60   # minutes after local midnight
    quiet_end: int = 8 * 60
    daily_budget: int = 5
    preview: bool = False        # show details on the lock screen
    nudge_at: int = 19 * 60      # the evening nudge, minutes after local midnight
    # The latest push outcome for this member (kept when a gone subscription is deleted), for the
    # coach's check-in list: sent, failed or gone.
    last_outcome: str = Field(default="", max_length=10)
    last_outcome_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class Notification(SQLModel, table=True):
    """A notification in a member's inbox; pushed to their devices when their choices allow."""

    __table_args__ = (Index("ix_notification_user_recent", "user_id", "id"),
                      Index("ix_notification_waiting", "state", "send_after"))

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=_user_fk())
    kind: str = Field(max_length=12)
    # Notifications with the same topic replace each other (gathered cheers, one per post).
    topic: str = Field(max_length=32)
    count: int = 1
    # What the words are made of (names, numbers); written in the reader's language when shown.
    data: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    url: str = Field(default="/", max_length=200)
    urgent: bool = False         # ignores quiet hours and the budget (crisis alerts to coaches)
    state: str = Field(default=NotificationState.WAITING, max_length=12)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    send_after: datetime = Field(default_factory=utcnow, sa_column=_when())
    expires_at: datetime = Field(sa_column=_when())
    read_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class Delivery(SQLModel, table=True):
    """The outbox: one push of one notification to one device, with its own idempotency key."""

    __table_args__ = (UniqueConstraint("key"), Index("ix_delivery_due", "status",
                                                     "next_attempt_at"))

    id: int | None = Field(default=None, primary_key=True)
    notification_id: int = Field(sa_column=Column(
        Integer, ForeignKey("notification.id", ondelete="CASCADE"), nullable=False, index=True))
    subscription_id: int | None = Field(default=None, sa_column=Column(
        Integer, ForeignKey("push_subscription.id", ondelete="SET NULL"), nullable=True,
        index=True))
    key: str = Field(max_length=64)  # notification, device and version: a retry reuses it
    status: str = Field(default=DeliveryStatus.PENDING, max_length=10)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    claimed_until: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    last_status: int | None = None
    sent_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


# --- What crosses the wire ---


class SubscriptionKeys(SQLModel):
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)


class SubscriptionCreate(SQLModel):
    """The browser's PushSubscription.toJSON()."""

    endpoint: str = Field(max_length=1000)
    keys: SubscriptionKeys
    expirationTime: int | None = None  # the browser's own name for it


class SubscriptionPublic(SQLModel):
    id: int
    device: str
    created_at: datetime


class PreferencesPublic(SQLModel):
    kinds_off: list[Kind]
    quiet_start: str = Field(description="HH:MM, the member's local time")
    quiet_end: str
    daily_budget: int
    preview: bool
    nudge_at: str


class NotificationPublic(SQLModel):
    id: int
    kind: Kind
    title: str
    body: str
    url: str
    created_at: datetime
    read: bool


class InboxPage(SQLModel):
    items: list[NotificationPublic]
    unread: int
