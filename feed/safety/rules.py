"""The safety rules the feed's own queries need: whose content a viewer never sees (blocks, either
way, and mutes), and whether a member may post now (a suspension)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, union
from sqlmodel import Session, col, select

from feed.safety.models import ActionKind, Block, ModerationAction, Mute


def unseen_authors(viewer_id: int) -> Select[tuple[int]]:
    """Members the viewer has blocked or muted, and members who blocked the viewer."""
    return union(  # type: ignore[return-value]
        select(col(Block.blocked_id)).where(col(Block.blocker_id) == viewer_id),
        select(col(Block.blocker_id)).where(col(Block.blocked_id) == viewer_id),
        select(col(Mute.muted_id)).where(col(Mute.muter_id) == viewer_id),
    )


def blocked_between(session: Session, first_id: int, second_id: int) -> bool:
    """True when either has blocked the other."""
    return session.exec(select(Block.id).where(
        ((col(Block.blocker_id) == first_id) & (col(Block.blocked_id) == second_id))
        | ((col(Block.blocker_id) == second_id) & (col(Block.blocked_id) == first_id)))
    ).first() is not None


def muted(session: Session, *, muter_id: int, muted_id: int) -> bool:
    return session.exec(select(Mute.id).where(col(Mute.muter_id) == muter_id,
                                              col(Mute.muted_id) == muted_id)).first() is not None


def not_blocked(session: Session, viewer_id: int, owner_id: int) -> bool:
    """For other features' pages about a member (their shared goals): hidden across a block."""
    return not blocked_between(session, viewer_id, owner_id)


def suspended_until(session: Session, *, member_id: int, cohort_id: int, now: datetime
                    ) -> datetime | None:
    """The end of a posting suspension in force for the member in this cohort, if any."""
    until = session.exec(select(ModerationAction.until).where(
        col(ModerationAction.member_id) == member_id,
        col(ModerationAction.cohort_id) == cohort_id,
        col(ModerationAction.kind) == ActionKind.SUSPEND,
        col(ModerationAction.until) > now).order_by(col(ModerationAction.until).desc())).first()
    return until
