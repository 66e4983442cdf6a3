"""Daily metrics: steps per local day and sleep per night, one row per member, day and source."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Column, ForeignKey, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class Source(enum.StrEnum):
    MANUAL = "manual"
    GOOGLE = "google"
    FITBIT = "fitbit"
    IMPORT = "import"


# When several sources have a value for the same day, the first in this list wins: what the
# member typed in (they know best), then a connected tracker, then an imported file.
PRECEDENCE: tuple[Source, ...] = (Source.MANUAL, Source.GOOGLE, Source.FITBIT, Source.IMPORT)


def _member_fk() -> Column[int]:
    return Column(Integer, ForeignKey("user.id", ondelete="CASCADE"), nullable=False, index=True)


def _when(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class DailySteps(SQLModel, table=True):
    """Steps on one local day from one source."""

    __table_args__ = (UniqueConstraint("member_id", "day", "source"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(sa_column=_member_fk())
    day: date
    source: str = Field(max_length=16)
    steps: int
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class SleepNight(SQLModel, table=True):
    """The main sleep that ended on a local date, from one source, with that day's naps apart."""

    __table_args__ = (UniqueConstraint("member_id", "night", "source"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(sa_column=_member_fk())
    night: date
    source: str = Field(max_length=16)
    # Unknown when a file gives only minutes asleep for a night.
    bedtime: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    wake_time: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    # The UTC offset at bedtime, so that "bedtime around 23:00" still holds after travel.
    bed_offset_minutes: int = 0
    minutes_asleep: int
    minutes_in_bed: int
    nap_minutes: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class ConnectionStatus(enum.StrEnum):
    CONNECTED = "connected"
    NEEDS_RECONNECT = "needs_reconnect"
    MOVE_TO_GOOGLE = "move_to_google"
    DISCONNECTED = "disconnected"


class Connection(SQLModel, table=True):
    """A member's link to a tracker platform, with its encrypted tokens and sync cursor."""

    __tablename__ = "tracker_connection"
    __table_args__ = (UniqueConstraint("member_id", "provider"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(sa_column=_member_fk())
    provider: str = Field(max_length=16)
    status: str = Field(default=ConnectionStatus.CONNECTED, max_length=20)
    external_user_id: str = Field(default="", max_length=128)
    access_token_enc: str = Field(default="", max_length=4096)
    refresh_token_enc: str = Field(default="", max_length=4096)
    token_expires_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    # Backfill walks forward from backfill_from; synced_through is the last day fully fetched.
    backfill_from: date
    synced_through: date | None = None
    backfill_total_days: int = 0
    last_sync_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    next_attempt_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    failures: int = 0
    # Who is syncing this connection now ("host:pid:thread"), and until when at the latest.
    sync_owner: str = Field(default="", max_length=120)
    sync_lease_until: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    # Set by a platform notification; cleared when a sync starts (so repeats queue one sync).
    sync_requested_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    # Who is refreshing the tokens now, and until when at the latest: the refresh request goes
    # out with no transaction open, and everyone else waits for the tokens it stores.
    refresh_owner: str = Field(default="", max_length=120)
    refresh_claimed_until: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    # Requests made to the platform's data API in the current window (and in the one before,
    # for platforms counted over any stretch of time), so that its per-member limit is never
    # reached, whichever process syncs.
    budget_window_start: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    budget_used: int = 0
    budget_used_before: int = 0
    # Days of sleep fetched at once when a request budget is tight; halved when a stream of
    # pages did not fit, forgotten once the sync is done. None: the platform's longest span.
    sleep_span_days: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class ImportStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    REFUSED = "refused"


class ImportRun(SQLModel, table=True):
    """A file a member brought in, processed by a job; the file itself is deleted afterwards."""

    __tablename__ = "import_run"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(sa_column=_member_fk())
    filename: str = Field(max_length=120)
    sha256: str = Field(max_length=64, index=True)
    size_bytes: int = 0
    kind: str = Field(default="", max_length=20)
    status: str = Field(default=ImportStatus.QUEUED, max_length=10)
    bytes_done: int = 0
    reason_code: str = Field(default="", max_length=40)
    detail: str = Field(default="", max_length=300)
    days_changed: int = 0
    nights_changed: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    finished_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


# --- What crosses the wire ---


class StepsEntry(SQLModel):
    day: date = Field(description="The local day, YYYY-MM-DD.")
    steps: int
    client_key: str | None = Field(default=None, max_length=64,
                                   description="Random key from the device; a resend counts once.")


class SleepEntry(SQLModel):
    bedtime: datetime = Field(description="Local time the member went to bed, without a zone.")
    wake_time: datetime = Field(description="Local time the member woke up, without a zone.")
    client_key: str | None = Field(default=None, max_length=64)


class DayMetricsPublic(SQLModel):
    day: date
    steps: int | None
    steps_source: str | None
    sleep_minutes: int | None
    time_in_bed_minutes: int | None
    nap_minutes: int | None
    sleep_source: str | None
    bedtime: str | None = Field(description="Local HH:MM")
    wake_time: str | None = Field(description="Local HH:MM")
    steps_synced_at: datetime | None = Field(
        default=None, description="When the steps shown were last read from their source (UTC).")
    sleep_synced_at: datetime | None = Field(
        default=None, description="When the sleep shown was last read from its source (UTC).")
