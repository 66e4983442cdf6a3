"""Rollups the coach views read: each member's day, each cohort's day, and when members were last active.

`MemberDay` holds one member's figures for a day (the values that won by source precedence, the
goals they share with their coach, their engagement); `CohortDay` holds the sums over a cohort's
members, with each metric counted only for members whose consent allows it. Both are kept in the
same transaction as the change that moves them, and rebuilt from the raw rows every night.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Column, ForeignKey, Integer
from sqlmodel import Field, SQLModel


def _key(target: str) -> Column[int]:
    return Column(Integer, ForeignKey(target, ondelete="CASCADE"), primary_key=True)


class MemberDay(SQLModel, table=True):
    """One member's day. A row exists only for days with something in them."""

    __tablename__ = "member_day"

    member_id: int = Field(sa_column=_key("user.id"))
    day: date = Field(primary_key=True)
    steps: int | None = None
    sleep_minutes: int | None = None
    tracker: bool = False         # steps or sleep came from a tracker or its export, not typed in
    goals_total: int = 0          # goals shared with the coach that counted this day
    goals_met: int = 0
    posts: int = 0
    cheers: int = 0
    comments: int = 0
    check_ins: int = 0


class CohortDay(SQLModel, table=True):
    """A cohort's day: sums over its members' days (the dashboards read only these)."""

    __tablename__ = "cohort_day"

    cohort_id: int = Field(sa_column=_key("cohort.id"))
    day: date = Field(primary_key=True)
    steps_total: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    steps_members: int = 0
    sleep_total: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    sleep_members: int = 0
    tracker_members: int = 0
    goal_members: int = 0
    goals_total: int = 0
    goals_met: int = 0
    active_members: int = 0
    posts: int = 0
    cheers: int = 0
    comments: int = 0
    check_ins: int = 0


class MemberPulse(SQLModel, table=True):
    """The last day a member posted, cheered, commented or checked in (for "active members")."""

    __tablename__ = "member_pulse"

    member_id: int = Field(sa_column=_key("user.id"))
    last_active_on: date | None = Field(default=None, index=True)
