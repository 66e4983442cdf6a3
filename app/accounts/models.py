"""Accounts and cohorts: members, coaches and admins, peer groups, invites, sessions, reset links."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db import UTCDateTime, utcnow


class Role(enum.StrEnum):
    MEMBER = "member"
    COACH = "coach"
    ADMIN = "admin"
    # The one stand-in author of posts kept after their members deleted their accounts; it
    # belongs to no cohort and can never sign in.
    FORMER = "former"


class CohortRole(enum.StrEnum):
    MEMBER = "member"
    COACH = "coach"
    MODERATOR = "moderator"  # a staff account that moderates the cohort's feed, nothing more


def _fk(target: str, *, nullable: bool = False, index: bool = True) -> Column[int]:
    """An integer foreign key whose rows go when the row it points to goes."""
    return Column(Integer, ForeignKey(target, ondelete="CASCADE"), nullable=nullable, index=index)


def _when(*, nullable: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class User(SQLModel, table=True):
    """Anyone who signs in. Known to peers only by a pseudonymous display name."""

    id: int | None = Field(default=None, primary_key=True)
    display_name: str = Field(max_length=30)
    # Case- and width-folded form of the display name, so "Sunny" and "SUNNY" cannot both exist.
    name_key: str = Field(max_length=120, unique=True, index=True)
    password_hash: str = Field(max_length=255)
    role: str = Field(default=Role.MEMBER, max_length=10)
    timezone: str = Field(default="UTC", max_length=64)
    language: str = Field(default="en", max_length=8)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    password_changed_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Cohort(SQLModel, table=True):
    """A peer group run by one or more coaches."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class CohortMembership(SQLModel, table=True):
    """Who belongs to a cohort, as a member or as one of its coaches."""

    # The index answers "the cohort's members" from the index alone (coach figures, 10,000s).
    __table_args__ = (UniqueConstraint("cohort_id", "user_id"),
                      Index("ix_cohortmembership_cohort_role_user", "cohort_id", "role",
                            "user_id"))

    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(sa_column=_fk("cohort.id"))
    user_id: int = Field(sa_column=_fk("user.id"))
    role: str = Field(default=CohortRole.MEMBER, max_length=10)
    joined_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class Invite(SQLModel, table=True):
    """A code (and link) that lets new members join a cohort, until it expires or runs out."""

    id: int | None = Field(default=None, primary_key=True)
    cohort_id: int = Field(sa_column=_fk("cohort.id"))
    code: str = Field(max_length=16, unique=True, index=True)
    created_by_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("user.id", ondelete="SET NULL"), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    expires_at: datetime = Field(sa_column=_when())
    max_uses: int = Field(default=25)
    uses: int = Field(default=0)
    revoked_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class UserSession(SQLModel, table=True):
    """A signed-in device. The cookie holds a random token; only its hash is stored."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(sa_column=_fk("user.id"))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    last_seen_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    device: str = Field(default="", max_length=80)
    # When this device passed the second factor (coaches and admins); None: password only.
    two_factor_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class ResetToken(SQLModel, table=True):
    """A one-time link, issued by a coach or admin, to choose a new password."""

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(sa_column=_fk("user.id"))
    created_by_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("user.id", ondelete="SET NULL"), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    expires_at: datetime = Field(sa_column=_when())
    used_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class ConsentMetric(enum.StrEnum):
    STEPS = "steps"
    SLEEP = "sleep"


class ConsentLevel(enum.StrEnum):
    NOTHING = "nothing"   # the coach sees none of it, and it stays out of cohort figures
    SUMMARY = "summary"   # weekly averages, and the member counts in cohort figures
    DETAIL = "detail"     # day by day


class Consent(SQLModel, table=True):
    """What a member lets their coaches see of one metric. No row: nothing (private by default)."""

    __table_args__ = (UniqueConstraint("member_id", "metric"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(sa_column=_fk("user.id"))
    metric: str = Field(max_length=10)
    level: str = Field(default=ConsentLevel.NOTHING, max_length=10)
    changed_at: datetime = Field(default_factory=utcnow, sa_column=_when())


class ResearchConsent(SQLModel, table=True):
    """A member's separate yes to research use of their de-identified daily outcomes.

    The row stays when they withdraw, so that the study id stays the same if they agree again."""

    __tablename__ = "research_consent"

    member_id: int = Field(sa_column=Column(Integer, ForeignKey("user.id", ondelete="CASCADE"),
                                            primary_key=True))
    study_id: str = Field(max_length=16, unique=True)
    agreed_at: datetime = Field(default_factory=utcnow, sa_column=_when())
    withdrawn_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class TwoFactor(SQLModel, table=True):
    """A coach's or admin's authenticator (TOTP): the secret, encrypted at rest."""

    __tablename__ = "two_factor"

    user_id: int = Field(sa_column=Column(Integer, ForeignKey("user.id", ondelete="CASCADE"),
                                          primary_key=True))
    secret_enc: str = Field(max_length=400)
    confirmed_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    last_step: int = 0  # the last 30-second step a code was used for: each code works once


class RecoveryCode(SQLModel, table=True):
    """A one-time code for when the authenticator is lost; only its hash is stored."""

    __tablename__ = "recovery_code"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=_fk("user.id"))
    code_hash: str = Field(max_length=64)
    used_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


# --- What crosses the wire (the API validates requests and documents itself with these) ---


class JoinRequest(SQLModel):
    code: str = Field(max_length=32, description="The invite code from a coach.")
    display_name: str = Field(max_length=60, description="A pseudonym, never a real name or email.")
    password: str = Field(max_length=256)
    timezone: str = Field(default="UTC", max_length=64, description="An IANA zone, e.g. Europe/Madrid.")
    language: str = Field(default="en", max_length=8, description="en or es.")


class LoginRequest(SQLModel):
    display_name: str = Field(max_length=60)
    password: str = Field(max_length=256)


class PasswordResetRequest(SQLModel):
    password: str = Field(max_length=256)


class UserPublic(SQLModel):
    id: int
    display_name: str
    role: str
    timezone: str
    language: str


class CsrfTokenPublic(SQLModel):
    csrf_token: str = Field(description="Send it as the X-CSRFToken header.")


class LoginPublic(UserPublic):
    next_step: str | None = Field(default=None, description=(
        "null: signed in. 'two_factor': a coach or admin enters a code next "
        "(POST /api/v1/login/two-factor). 'two_factor_setup': they set up an authenticator app "
        "first (POST /api/v1/two-factor/setup)."))


class TwoFactorCode(SQLModel):
    code: str = Field(max_length=40, description=(
        "The 6-digit code from the authenticator app (a recovery code where the path says so)."))


class TwoFactorSetupPublic(SQLModel):
    secret: str = Field(description="The base32 secret, for typing into an authenticator app.")
    uri: str = Field(description="The otpauth:// link an authenticator app reads from a QR code.")


class RecoveryCodesPublic(SQLModel):
    codes: list[str] = Field(description="One-time recovery codes, shown only this once.")


class TwoFactorStatusPublic(SQLModel):
    enrolled: bool
    recovery_codes_left: int


class CohortCreate(SQLModel):
    name: str = Field(max_length=200)


class CohortPublic(SQLModel):
    id: int
    name: str
    member_count: int


class MemberPublic(SQLModel):
    id: int
    display_name: str
    joined_at: datetime


class InviteCreate(SQLModel):
    days: int = Field(default=14, description="Days until the invite expires (1 to 90).")
    max_uses: int = Field(default=25, description="How many people may join with it (1 to 500).")


class InvitePublic(SQLModel):
    id: int
    cohort_id: int
    code: str
    link: str
    expires_at: datetime
    max_uses: int
    uses: int
    revoked: bool


class SessionPublic(SQLModel):
    id: int
    device: str
    created_at: datetime
    last_seen_at: datetime
    current: bool


class ResetLinkPublic(SQLModel):
    link: str
    expires_at: datetime


class StaffAdd(SQLModel):
    display_name: str = Field(max_length=60, description="The display name of a coach (or admin) account.")


class StaffPublic(SQLModel):
    id: int
    display_name: str
    role: CohortRole = Field(description="coach or moderator")


class SharingPublic(SQLModel):
    steps: ConsentLevel = Field(description="What my coaches see of my steps.")
    sleep: ConsentLevel = Field(description="What my coaches see of my sleep.")
    research: bool = Field(description="Whether my de-identified daily numbers go to research.")


class PostsChoice(enum.StrEnum):
    REMOVE = "remove"  # my posts and comments go, with the comments on my posts
    KEEP = "keep"      # my stories, tips and comments stay, shown as "A former member"


class AccountDeletion(SQLModel):
    password: str = Field(max_length=256, description="The account's password, to confirm.")
    posts: PostsChoice = Field(description=(
        "remove: my posts and comments are deleted; keep: my stories, tips and comments stay "
        "for the group, shown as 'A former member' (posts about goals go either way)."))


class SharingUpdate(SQLModel):
    """Only what is sent changes; anything else sent is refused with a clear message."""

    model_config = {"extra": "allow"}  # read by the view, so that an unknown metric is named

    steps: str | None = Field(default=None, description="nothing, summary or detail")
    sleep: str | None = Field(default=None, description="nothing, summary or detail")
    research: bool | None = Field(default=None, description="true to agree, false to stop")
