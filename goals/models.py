"""Goals: what a member aims for, each day's result, pauses, check-ins, milestones, coach templates."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Column, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class GoalKind(enum.StrEnum):
    STEPS = "steps"              # at least `target` steps a day
    ACTIVE_DAYS = "active_days"  # `per_week` days a week with at least `target` steps
    SLEEP = "sleep"              # at least `target` minutes asleep a night
    BEDTIME = "bedtime"          # in bed within `window` minutes of `target` (minute of the day),
                                 # on `per_week` nights a week
    HABIT = "habit"              # a yes each day, checked in by the member


WEEKLY_KINDS = frozenset({GoalKind.ACTIVE_DAYS, GoalKind.BEDTIME})
STEP_KINDS = frozenset({GoalKind.STEPS, GoalKind.ACTIVE_DAYS})
SLEEP_KINDS = frozenset({GoalKind.SLEEP, GoalKind.BEDTIME})


class Visibility(enum.StrEnum):
    PRIVATE = "private"  # only me (the default)
    COACH = "coach"      # me and the coaches of my peer group
    PEERS = "peers"      # my peer group, its coaches included


class GoalStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class MilestoneKind(enum.StrEnum):
    FIRST_MET = "first_met"
    STREAK_3 = "streak_3"
    STREAK_7 = "streak_7"
    STREAK_30 = "streak_30"
    PERSONAL_BEST = "personal_best"
    WELCOME_BACK = "welcome_back"


def _fk(target: str, *, nullable: bool = False) -> Column[int]:
    return Column(Integer, ForeignKey(target, ondelete="CASCADE"), nullable=nullable, index=True)


def _when(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class Goal(SQLModel, table=True):
    """One member's goal, with its streak kept up to date as data arrives."""

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(sa_column=_fk("user.id"))
    kind: str = Field(max_length=16)
    # The member's own words; empty for data goals, whose name is written from kind and target.
    title: str = Field(default="", max_length=80)
    target: int = 0
    per_week: int = 7
    window_minutes: int = 0
    visibility: str = Field(default=Visibility.PRIVATE, max_length=10)
    status: str = Field(default=GoalStatus.ACTIVE, max_length=10, index=True)
    template_id: int | None = Field(default=None, sa_column=Column(
        Integer, ForeignKey("goal_template.id", ondelete="SET NULL"), nullable=True))
    starts_on: date  # the member's local day it was set; days before it do not count
    current_streak: int = 0  # in days, or in weeks for the weekly kinds
    best_streak: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class GoalDay(SQLModel, table=True):
    """A goal's result on one of the member's local days (only days with data or a check-in)."""

    __tablename__ = "goal_day"
    __table_args__ = (UniqueConstraint("goal_id", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    goal_id: int = Field(sa_column=_fk("goal.id"))
    day: date
    # Steps, minutes asleep, bedtime as minutes from midnight, or 1/0 for a check-in.
    value: int
    met: bool


class GoalPause(SQLModel, table=True):
    """Days a goal rests (a hospital stay, a hard week): they neither count nor break a streak."""

    __tablename__ = "goal_pause"

    id: int | None = Field(default=None, primary_key=True)
    goal_id: int = Field(sa_column=_fk("goal.id"))
    starts_on: date
    ends_on: date | None = None  # the day the goal came back (not paused); None while paused


class CheckIn(SQLModel, table=True):
    """A member's yes (or not today) for a habit goal on one day."""

    __tablename__ = "check_in"
    __table_args__ = (UniqueConstraint("goal_id", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    goal_id: int = Field(sa_column=_fk("goal.id"))
    day: date
    done: bool
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Milestone(SQLModel, table=True):
    """Something worth celebrating, recorded once: the key tells one streak from another."""

    __table_args__ = (UniqueConstraint("goal_id", "kind", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    goal_id: int = Field(sa_column=_fk("goal.id"))
    member_id: int = Field(sa_column=_fk("user.id"))
    kind: str = Field(max_length=20)
    key: str = Field(max_length=20)
    reached_on: date
    streak: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class GoalTemplate(SQLModel, table=True):
    """A goal a coach suggests to a cohort, in plain words; members adopt and adjust it."""

    __tablename__ = "goal_template"

    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(sa_column=_fk("cohort.id"))
    created_by_id: int | None = Field(default=None, sa_column=Column(
        Integer, ForeignKey("user.id", ondelete="SET NULL"), nullable=True))
    kind: str = Field(max_length=16)
    title: str = Field(default="", max_length=80)
    note: str = Field(default="", max_length=300)
    target: int = 0
    per_week: int = 7
    window_minutes: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    archived_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


# --- What crosses the wire ---


class GoalSettings(SQLModel):
    """A goal's settings, as sent to create or change one."""

    kind: GoalKind
    title: str = Field(default="", max_length=80,
                       description="The member's own words (habit goals); optional otherwise.")
    target: int = Field(default=0, description=(
        "steps: steps a day (100-100,000); active_days: steps that make a day active; "
        "sleep: minutes asleep (180-840); bedtime: minutes after midnight (0-1439); habit: 0."))
    per_week: int = Field(default=7, description="Days (or nights) a week, 1-7, for the weekly kinds.")
    window_minutes: int = Field(default=0, description="bedtime: minutes either side, 15-180.")
    visibility: Visibility = Visibility.PRIVATE
    template_id: int | None = None


class GoalChange(SQLModel):
    """What may change on a goal; fields left out stay as they are."""

    title: str | None = Field(default=None, max_length=80)
    target: int | None = None
    per_week: int | None = None
    window_minutes: int | None = None
    visibility: Visibility | None = None


class CheckInCreate(SQLModel):
    day: date | None = Field(default=None, description="The local day; today when left out.")
    done: bool = True
    client_key: str | None = Field(default=None, max_length=64,
                                   description="Random key from the device; a resend counts once.")


class TemplateCreate(SQLModel):
    kind: GoalKind
    title: str = Field(default="", max_length=80)
    note: str = Field(default="", max_length=300, description="Plain-language help for members.")
    target: int = 0
    per_week: int = 7
    window_minutes: int = 0


class GoalDayPublic(SQLModel):
    day: date
    value: int | None
    met: bool
    paused: bool


class MilestonePublic(SQLModel):
    kind: MilestoneKind
    reached_on: date
    streak: int
    text: str


class GoalPublic(SQLModel):
    id: int
    kind: GoalKind
    name: str = Field(description="The goal in plain words, in the reader's language.")
    title: str
    target: int
    per_week: int
    window_minutes: int
    visibility: Visibility
    status: GoalStatus
    starts_on: date
    current_streak: int
    best_streak: int
    streak_unit: str = Field(description="day or week")
    today_value: int | None
    today_met: bool
    week_met: int = Field(description="Days (or nights) met this week, Monday to today.")
    week_needed: int
    summary: str = Field(description="Today's progress in plain words.")


class TemplatePublic(SQLModel):
    id: int
    cohort_id: int
    kind: GoalKind
    name: str
    title: str
    note: str
    target: int
    per_week: int
    window_minutes: int


class CheckInResult(SQLModel):
    stored: bool
    goal: GoalPublic
