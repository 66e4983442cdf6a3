"""Plain data factories: each builds real rows through the services, and commits."""

from __future__ import annotations

import itertools
from datetime import timedelta

from flask.testing import FlaskClient
from sqlmodel import Session

from app.accounts import services
from app.accounts.models import Cohort, CohortMembership, Invite, Role, User
from app.db import utcnow

PASSWORD = "a walk by the river"
_seq = itertools.count(1)


def fresh(session: Session) -> Session:
    """End the session's transaction, so that the next query sees what the app has written."""
    session.commit()
    session.expire_all()
    return session


def make_user(session: Session, *, name: str | None = None, role: Role = Role.MEMBER,
              password: str = PASSWORD, timezone: str = "UTC", language: str = "en") -> User:
    user = services.create_user(session, display_name=name or f"Person {next(_seq)}",
                                password=password, role=role, timezone=timezone,
                                language=language)
    session.commit()
    return user


def make_coach(session: Session, *, name: str | None = None) -> User:
    return make_user(session, name=name or f"Coach {next(_seq)}", role=Role.COACH)


def make_cohort(session: Session, *, coach: User, name: str = "Evening Walkers") -> Cohort:
    cohort = services.create_cohort(session, coach=coach, name=name)
    session.commit()
    return cohort


def make_member(session: Session, *, cohort: Cohort | None = None, name: str | None = None,
                **kwargs: object) -> User:
    user = make_user(session, name=name, **kwargs)  # type: ignore[arg-type]
    if cohort is not None:
        assert cohort.id is not None and user.id is not None
        session.add(CohortMembership(cohort_id=cohort.id, user_id=user.id))
        session.commit()
    return user


def make_invite(session: Session, *, coach: User, cohort: Cohort, days: int = 14,
                max_uses: int = 25) -> Invite:
    invite = services.create_invite(session, coach=coach, cohort_id=cohort.id or 0, days=days,
                                    max_uses=max_uses, now=utcnow())
    session.commit()
    return invite


def expire(session: Session, invite: Invite) -> None:
    invite.expires_at = utcnow() - timedelta(minutes=1)
    session.add(invite)
    session.commit()


def csrf_token(client: FlaskClient) -> str:
    token: str = client.get("/api/v1/csrf-token").get_json()["csrf_token"]
    return token


def sign_in(client: FlaskClient, name: str, password: str = PASSWORD) -> None:
    """Sign in through the real form, as a browser would."""
    response = client.post("/login", data={"display_name": name, "password": password,
                                           "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)


def api_headers(client: FlaskClient) -> dict[str, str]:
    return {"X-CSRFToken": csrf_token(client)}
