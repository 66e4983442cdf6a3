"""Safety: blocks, mutes, reports, moderation actions (with the reason the member sees) and
appeals."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class ReportCategory(enum.StrEnum):
    HOSTILE = "hostile"                # hostile or derogatory
    HARASSMENT = "harassment"
    MISLEADING = "misleading"          # misleading health information
    SELF_HARM = "self_harm"            # self-harm content
    SPAM = "spam"
    OTHER = "other"


class TargetType(enum.StrEnum):
    ITEM = "item"
    COMMENT = "comment"
    MEMBER = "member"


class ActionKind(enum.StrEnum):
    APPROVE = "approve"
    HIDE = "hide"
    DELETE = "delete"
    WARN = "warn"
    SUSPEND = "suspend"            # no posting or commenting until `until`
    MISLEADING = "misleading"      # shown to readers with a short explanation
    DISMISS = "dismiss"            # reports looked at; nothing wrong


def _user_fk(*, nullable: bool = False) -> Column[int]:
    return Column(Integer, ForeignKey("user.id", ondelete="CASCADE"), nullable=nullable,
                  index=True)


def _when(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class Block(SQLModel, table=True):
    """The two members no longer see or reach each other, either way."""

    __table_args__ = (UniqueConstraint("blocker_id", "blocked_id"),)

    id: int | None = Field(default=None, primary_key=True)
    blocker_id: int = Field(sa_column=_user_fk())
    blocked_id: int = Field(sa_column=_user_fk())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Mute(SQLModel, table=True):
    """Someone's posts and comments silently left out of my feed (they are not told)."""

    __table_args__ = (UniqueConstraint("muter_id", "muted_id"),)

    id: int | None = Field(default=None, primary_key=True)
    muter_id: int = Field(sa_column=_user_fk())
    muted_id: int = Field(sa_column=_user_fk())
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Report(SQLModel, table=True):
    """A member's report of a post, a comment or a member; the reported member never learns who."""

    __table_args__ = (UniqueConstraint("reporter_id", "target_type", "target_id"),)

    id: int | None = Field(default=None, primary_key=True)
    reporter_id: int = Field(sa_column=_user_fk())
    cohort_id: int = Field(sa_column=Column(Integer, ForeignKey("cohort.id", ondelete="CASCADE"),
                                            nullable=False, index=True))
    target_type: str = Field(max_length=10)
    target_id: int
    member_id: int = Field(sa_column=_user_fk())  # whose post, comment or account it is
    category: str = Field(max_length=20)
    note: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    resolved_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class ModerationAction(SQLModel, table=True):
    """What a moderator did, and why, in words the member sees."""

    __tablename__ = "moderation_action"

    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(sa_column=Column(Integer, ForeignKey("cohort.id", ondelete="CASCADE"),
                                            nullable=False, index=True))
    moderator_id: int | None = Field(default=None, sa_column=Column(
        Integer, ForeignKey("user.id", ondelete="SET NULL"), nullable=True))
    member_id: int = Field(sa_column=_user_fk())
    kind: str = Field(max_length=12)
    target_type: str = Field(max_length=10)
    target_id: int
    reason: str = Field(default="", max_length=500)
    until: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Appeal(SQLModel, table=True):
    """A member asks for a second look at an action about them, once."""

    __table_args__ = (UniqueConstraint("action_id"),)

    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(sa_column=Column(Integer, ForeignKey("moderation_action.id",
                                                                ondelete="CASCADE"),
                                            nullable=False))
    member_id: int = Field(sa_column=_user_fk())
    text: str = Field(max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    decided_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    upheld: bool | None = None
    answer: str = Field(default="", max_length=500)


# --- What crosses the wire ---


class ReportCreate(SQLModel):
    target_type: TargetType
    target_id: int
    category: ReportCategory
    note: str = Field(default="", max_length=2000, description="Optional, up to 500 characters.")


class ReportResult(SQLModel):
    stored: bool


class ActionCreate(SQLModel):
    kind: ActionKind
    target_type: TargetType
    target_id: int
    reason: str = Field(default="", max_length=2000,
                        description="What the member is told (needed except to approve).")
    days: int | None = Field(default=None, description="suspend: how many days (1-90).")


class AppealCreate(SQLModel):
    text: str = Field(max_length=4000)


class AppealDecision(SQLModel):
    upheld: bool
    answer: str = Field(default="", max_length=2000)


class ScreenRequest(SQLModel):
    text: str = Field(max_length=4000)


class CrisisResource(SQLModel):
    name: str
    contact: str
    detail: str


class ScreenResult(SQLModel):
    crisis: bool
    medication: bool
    resources: list[CrisisResource]
