"""The peer feed: items in a cohort, cheers, comments, the cohort's event sequence, preferences."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class ItemKind(enum.StrEnum):
    GOAL_SHARED = "goal_shared"  # a goal the member shared with the group
    PROGRESS = "progress"        # a day's progress on a goal, shared by the member
    MILESTONE = "milestone"      # a milestone reached on a goal shared with the group
    STORY = "story"              # a short personal story
    TIP = "tip"                  # a coping tip


WRITTEN_KINDS = frozenset({ItemKind.STORY, ItemKind.TIP})


class ItemStatus(enum.StrEnum):
    VISIBLE = "visible"
    HELD = "held"        # waiting for a moderator; its author still sees it
    HIDDEN = "hidden"    # hidden by a moderator or by reports, until reviewed
    REMOVED = "removed"  # deleted by its author or a moderator


class CheerKind(enum.StrEnum):
    WELL_DONE = "well_done"
    KEEP_GOING = "keep_going"
    WITH_YOU = "with_you"
    PROUD_OF_YOU = "proud_of_you"


class EventKind(enum.StrEnum):
    ITEM = "item"        # an item was posted
    CHEER = "cheer"      # an item's cheers changed
    COMMENT = "comment"  # a comment was added
    REMOVED = "removed"  # an item or comment went away (or was hidden)


def _fk(target: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> Column[int]:
    return Column(Integer, ForeignKey(target, ondelete=ondelete), nullable=nullable, index=True)


def _when(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class FeedItem(SQLModel, table=True):
    """One post in a cohort's feed."""

    __tablename__ = "feed_item"
    __table_args__ = (Index("ix_feed_item_cohort_recent", "cohort_id", "id"),
                      # "Tips that worked": pinned ones, then the most cheered.
                      Index("ix_feed_item_cohort_pinned", "cohort_id", "pinned_at"),
                      Index("ix_feed_item_cohort_tips", "cohort_id", "kind", "cheer_count", "id"))

    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(sa_column=Column(Integer, ForeignKey("cohort.id", ondelete="CASCADE"),
                                            nullable=False))
    author_id: int = Field(sa_column=_fk("user.id"))
    kind: str = Field(max_length=16)
    body: str = Field(default="", max_length=1000)
    goal_id: int | None = Field(default=None, sa_column=_fk("goal.id", nullable=True,
                                                            ondelete="SET NULL"))
    milestone_id: int | None = Field(default=None, sa_column=Column(
        Integer, ForeignKey("milestone.id", ondelete="SET NULL"), nullable=True))
    # A progress share: the day and the value it showed (words are written for each reader).
    day: date | None = None
    value: int | None = None
    status: str = Field(default=ItemStatus.VISIBLE, max_length=10)
    # Text about changing or stopping medication: shown with a note to talk with one's care team.
    care_note: bool = False
    # Set by a moderator: shown to readers as "this may be misleading", with this explanation.
    misleading_note: str = Field(default="", max_length=500)
    cheer_count: int = 0
    comment_count: int = 0
    pinned_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Cheer(SQLModel, table=True):
    """A supportive reaction: at most one of each kind per member per item."""

    __table_args__ = (UniqueConstraint("item_id", "member_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(sa_column=_fk("feed_item.id"))
    member_id: int = Field(sa_column=_fk("user.id"))
    kind: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Comment(SQLModel, table=True):
    __table_args__ = (Index("ix_comment_item_recent", "item_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(sa_column=Column(Integer, ForeignKey("feed_item.id", ondelete="CASCADE"),
                                          nullable=False))
    author_id: int = Field(sa_column=_fk("user.id"))
    body: str = Field(max_length=500)
    status: str = Field(default=ItemStatus.VISIBLE, max_length=10)
    care_note: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class FeedCounter(SQLModel, table=True):
    """The last sequence number given out in a cohort; its row lock orders the cohort's events."""

    __tablename__ = "feed_counter"

    cohort_id: int = Field(sa_column=Column(Integer, ForeignKey("cohort.id", ondelete="CASCADE"),
                                            primary_key=True))
    last_seq: int = 0


class FeedEvent(SQLModel, table=True):
    """Something that changed in a cohort's feed, numbered in commit order within the cohort, so
    that a client that missed a live message asks for everything after the last number it saw."""

    __tablename__ = "feed_event"
    __table_args__ = (UniqueConstraint("cohort_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(sa_column=Column(Integer, ForeignKey("cohort.id", ondelete="CASCADE"),
                                            nullable=False))
    seq: int
    kind: str = Field(max_length=10)
    item_id: int = Field(sa_column=_fk("feed_item.id"))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class FeedPreference(SQLModel, table=True):
    """A member's feed settings: "just reading for now" hides every prompt to post."""

    __tablename__ = "feed_preference"

    member_id: int = Field(sa_column=Column(Integer, ForeignKey("user.id", ondelete="CASCADE"),
                                            primary_key=True))
    just_reading: bool = False


# --- What crosses the wire ---


class PostCreate(SQLModel):
    kind: ItemKind = Field(description="story or tip")
    body: str = Field(max_length=4000, description="Plain text, up to 1,000 characters.")
    cohort_id: int | None = Field(default=None, description="Your peer group; yours when left out.")
    client_key: str | None = Field(default=None, max_length=64,
                                   description="Random key from the device; a resend counts once.")


class CheerCreate(SQLModel):
    kind: CheerKind
    client_key: str | None = Field(default=None, max_length=64,
                                   description="Random key from the device; a resend counts once.")


class CommentCreate(SQLModel):
    body: str = Field(max_length=4000, description="Plain text, up to 500 characters.")
    client_key: str | None = Field(default=None, max_length=64)


class FeedSettings(SQLModel):
    just_reading: bool


class CommentPublic(SQLModel):
    id: int
    author: str
    body: str
    status: ItemStatus
    care_note: bool
    created_at: datetime


class ItemPublic(SQLModel):
    id: int
    care_note: bool = Field(description="Shown with a note to talk with one's care team.")
    misleading_note: str = Field(description="A moderator's note that this may be misleading.")
    cohort_id: int
    kind: ItemKind
    author: str
    author_id: int
    text: str = Field(description="The item in plain words, in the reader's language.")
    body: str
    goal_id: int | None
    status: ItemStatus
    pinned: bool
    created_at: datetime
    cheers: dict[str, int]
    my_cheers: list[CheerKind]
    comment_count: int


class FeedPage(SQLModel):
    items: list[ItemPublic]
    last_seq: int = Field(description="Ask for ?after=this to get what changes next.")
    more: bool = Field(default=False, description=(
        "With ?after=: the answer stops at last_seq although more changed; ask again."))
    next_before: int | None = Field(description="Ask for ?before=this to scroll further back.")


class CheerResult(SQLModel):
    stored: bool
    cheers: dict[str, int]
