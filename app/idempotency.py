"""Client keys: an action sent twice with the same key (a retry, the offline outbox) counts once."""

from __future__ import annotations

import re
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import Column, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from app.db import UTCDateTime, utcnow
from app.errors import InvalidInput

_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class ClientKey(SQLModel, table=True):
    """A key a member's device sent with an action, remembered so that a resend does nothing."""

    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=Column(Integer, ForeignKey("user.id", ondelete="CASCADE"),
                                          nullable=False, index=True))
    key: str = Field(max_length=64)
    action: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(),
                                                                          nullable=False))


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise InvalidInput(_l("This request carried a key we could not read. Please reload the "
                              "page and try again."), field="client_key")
    return key


def claim(session: Session, *, user_id: int, key: str | None, action: str) -> bool:
    """True the first time `key` is seen for this user (or when there is no key); else False.

    Runs inside the caller's transaction, so a rolled-back action releases its key.
    """
    if key is None:
        return True
    check_key(key)
    seen = session.exec(select(ClientKey.id).where(col(ClientKey.user_id) == user_id,
                                                   col(ClientKey.key) == key)).first()
    if seen is not None:
        return False
    try:
        with session.begin_nested():
            session.add(ClientKey(user_id=user_id, key=key, action=action))
    except IntegrityError:  # the same key arriving twice at the same moment
        return False
    return True
