"""Plain data factories: each builds real rows through the services, and commits."""

from __future__ import annotations

import itertools
import re
import time
from datetime import timedelta

import pyotp
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


class Authenticator:
    """The tests' authenticator app: a secret per staff account (by name), each time step used
    at most once, and the recovery codes shown at set-up for when no fresh step is left.

    The server accepts the current 30-second step and the next one (valid_window=1), each once;
    a third sign-in within the same step uses a recovery code, and only when those run out does
    it wait for the next step. Forgotten before each test (each test has a fresh database)."""

    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}
        self._last_step: dict[str, int] = {}
        self._recovery: dict[str, list[str]] = {}

    def forget(self) -> None:
        for kept in (self._secrets, self._last_step, self._recovery):
            kept.clear()

    def enrol(self, name: str, secret: str) -> None:
        key = services.name_key(name)
        self._secrets[key], self._last_step[key], self._recovery[key] = secret, 0, []

    def keep_recovery_codes(self, name: str, codes: list[str]) -> None:
        self._recovery[services.name_key(name)] = list(codes)

    def secret(self, name: str) -> str:
        return self._secrets[services.name_key(name)]

    def recovery_codes(self, name: str) -> list[str]:
        """The recovery codes not used yet by these helpers (as shown at set-up)."""
        return list(self._recovery[services.name_key(name)])

    def code(self, name: str) -> str:
        """A code the server accepts now and has not seen yet (waits for one if need be)."""
        while True:
            found = self._fresh_code(name)
            if found is not None:
                return found
            time.sleep(30.05 - time.time() % 30)

    def _fresh_code(self, name: str) -> str | None:
        key = services.name_key(name)
        totp = pyotp.TOTP(self._secrets[key])
        step = int(time.time() // 30)
        for candidate in (step, step + 1):
            if candidate > self._last_step[key]:
                self._last_step[key] = candidate
                return totp.at(candidate * 30)
        return None

    def second_factor(self, name: str) -> tuple[str, str]:
        """("code", a fresh code), else ("recovery", an unused recovery code), else waits."""
        found = self._fresh_code(name)
        if found is not None:
            return "code", found
        codes = self._recovery[services.name_key(name)]
        if codes:
            return "recovery", codes.pop()
        return "code", self.code(name)


AUTHENTICATOR = Authenticator()
_SECRET = re.compile(r"data-secret>([A-Z2-7 ]+)<")
_RECOVERY_CODE = re.compile(r"<code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{2})</code>")


def secret_on_page(html: str) -> str:
    """The authenticator key shown for manual entry on the set-up page."""
    found = _SECRET.search(html)
    assert found, html
    return found.group(1).replace(" ", "")


def recovery_codes_on_page(html: str) -> list[str]:
    return _RECOVERY_CODE.findall(html)


def second_factor(client: FlaskClient, name: str, location: str) -> None:
    """Finish signing in at `location` (the set-up or code page), as a coach with an
    authenticator app would: set it up on first sign-in, then enter its codes."""
    if location.startswith("/settings/two-factor/setup"):
        AUTHENTICATOR.enrol(name, secret_on_page(client.get(location).get_data(as_text=True)))
        response = client.post(location, data={"code": AUTHENTICATOR.code(name),
                                               "csrf_token": csrf_token(client)})
        assert response.status_code == 200, response.get_data(as_text=True)
        AUTHENTICATOR.keep_recovery_codes(name, recovery_codes_on_page(
            response.get_data(as_text=True)))
        return
    assert location.startswith("/login/two-factor"), location
    kind, code = AUTHENTICATOR.second_factor(name)
    if kind == "recovery":
        location = location.replace("/login/two-factor", "/login/two-factor/recovery", 1)
    response = client.post(location, data={"code": code, "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)


def sign_in(client: FlaskClient, name: str, password: str = PASSWORD) -> None:
    """Sign in through the real form, as a browser would (coaches and admins: then the second
    factor through its real pages)."""
    response = client.post("/login", data={"display_name": name, "password": password,
                                           "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    if location.startswith(("/settings/two-factor/setup", "/login/two-factor")):
        second_factor(client, name, location)


def sign_in_password_only(client: FlaskClient, name: str, password: str = PASSWORD) -> str:
    """Only the password step; returns where the app sends the browser next."""
    response = client.post("/login", data={"display_name": name, "password": password,
                                           "csrf_token": csrf_token(client)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return str(response.headers["Location"])


def api_headers(client: FlaskClient) -> dict[str, str]:
    return {"X-CSRFToken": csrf_token(client)}
