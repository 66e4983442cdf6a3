"""The audit log: who did what to whom, for moderation, coach views of member data and exports.

Written in the same transaction as the action it records; read by admins. Entries never hold
health values or message text, only what was done and to which record.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer
from sqlmodel import Field, Session, SQLModel, col, select

from app.db import UTCDateTime, utcnow


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    actor_id: int | None = Field(default=None, sa_column=Column(
        Integer, ForeignKey("user.id", ondelete="SET NULL"), nullable=True, index=True))
    action: str = Field(max_length=40)
    subject_type: str = Field(default="", max_length=20)
    subject_id: int | None = None
    member_id: int | None = Field(default=None, sa_column=Column(
        Integer, ForeignKey("user.id", ondelete="SET NULL"), nullable=True, index=True))
    detail: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(),
                                                                          nullable=False))


def log(session: Session, *, actor_id: int | None, action: str, subject_type: str = "",
        subject_id: int | None = None, member_id: int | None = None, detail: str = "",
        now: datetime | None = None) -> AuditEntry:
    """Add an entry to the caller's transaction (it commits or rolls back with the action)."""
    entry = AuditEntry(actor_id=actor_id, action=action, subject_type=subject_type,
                       subject_id=subject_id, member_id=member_id, detail=detail[:300],
                       created_at=now or utcnow())
    session.add(entry)
    return entry


def recent(session: Session, *, limit: int = 200, member_id: int | None = None
           ) -> list[AuditEntry]:
    query = select(AuditEntry)
    if member_id is not None:
        query = query.where(col(AuditEntry.member_id) == member_id)
    return list(session.exec(query.order_by(col(AuditEntry.id).desc()).limit(limit)))
