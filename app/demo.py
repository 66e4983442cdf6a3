"""Demo data for `make run`: one coach, one cohort, a few members, an open invite."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pyotp
from flask import Flask
from sqlmodel import Session, col, select

from app.accounts import services, two_factor
from app.accounts.models import CohortMembership, Invite, Role, User
from app.crypto import TokenCipher

COACH = ("Coach Rosa", "hearten-demo-coach")
ADMIN = ("Admin Ana", "hearten-demo-admin")
MEMBERS = (
    ("Sunny River", "hearten-demo-member", "America/New_York", "en"),
    ("Quiet Oak", "hearten-demo-member", "Europe/Madrid", "es"),
    ("Blue Heron", "hearten-demo-member", "America/Los_Angeles", "en"),
)


# A feature's own demo content (goals, posts), added after the accounts: (session, now) -> None.
DemoSeeder = Callable[[Session, datetime], None]
_SEEDERS = "hearten.demo_seeders"


def add_demo_seeder(app: Flask, seeder: DemoSeeder) -> None:
    app.extensions.setdefault(_SEEDERS, []).append(seeder)


def demo_seeders(app: Flask) -> list[DemoSeeder]:
    found: list[DemoSeeder] = app.extensions.get(_SEEDERS, [])
    return found


def seed_demo(session: Session, *, now: datetime, cipher: TokenCipher) -> list[tuple[str, str, str]]:
    """Create the demo accounts; returns (role, name, password) for each sign-in."""
    services.create_user(session, display_name=ADMIN[0], password=ADMIN[1], role=Role.ADMIN)
    coach = services.create_user(session, display_name=COACH[0], password=COACH[1],
                                 role=Role.COACH, timezone="America/New_York")
    cohort = services.create_cohort(session, coach=coach, name="Morning Walkers")
    assert cohort.id is not None
    for name, password, timezone, language in MEMBERS:
        member = services.create_user(session, display_name=name, password=password,
                                      timezone=timezone, language=language)
        assert member.id is not None
        session.add(CohortMembership(cohort_id=cohort.id, user_id=member.id, joined_at=now))
    services.create_invite(session, coach=coach, cohort_id=cohort.id, days=30, max_uses=50,
                           now=now)
    demo_authenticators(session, now=now, cipher=cipher)
    return demo_sign_ins(session, now=now)


def demo_authenticators(session: Session, *, now: datetime, cipher: TokenCipher
                        ) -> list[tuple[str, str]]:
    """The demo admin's and coach's authenticator secrets (name, base32), setting one up with a
    fresh secret for either that has none yet."""
    found = []
    for name, _password in (ADMIN, COACH):
        user = services.find_user(session, display_name=name)
        if user is None or not two_factor.needs_two_factor(user):
            continue
        if not two_factor.is_enrolled(session, user=user):
            two_factor.enrol(session, user=user, secret=pyotp.random_base32(), cipher=cipher,
                             now=now)
        found.append((user.display_name, two_factor.secret_of(session, user=user, cipher=cipher)))
    return found


def demo_sign_ins(session: Session, *, now: datetime) -> list[tuple[str, str, str]]:
    """The demo sign-ins, if the demo accounts exist, with an invite code that still works."""
    coach = session.exec(select(User).where(col(User.name_key) == COACH[0].casefold())).first()
    if coach is None:
        return []
    sign_ins = [("admin", *ADMIN), ("coach", *COACH)]
    sign_ins += [("member", name, password) for name, password, _tz, _lang in MEMBERS]
    cohort = services.cohorts_of(session, user=coach)[0]
    invite = session.exec(select(Invite).where(
        col(Invite.cohort_id) == cohort.id, col(Invite.revoked_at).is_(None),
        col(Invite.expires_at) > now, col(Invite.uses) < col(Invite.max_uses))).first()
    if invite is None:
        invite = services.create_invite(session, coach=coach, cohort_id=cohort.id or 0, days=30,
                                        max_uses=50, now=now)
    sign_ins.append(("invite", services.format_code(invite.code), "(a code to join as new)"))
    return sign_ins
