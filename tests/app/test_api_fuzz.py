"""The API fuzzed: schemathesis sends generated requests, valid and invalid, to every operation of
/api/v1/openapi.json (signed out, as a member, as a coach), then chains operations along the links
it infers between them. Any server error, or any answer the document does not describe, fails."""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response
from schemathesis.filters import HasAPIOperation
from schemathesis.generation.stateful import run_state_machine_as_test
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from app.accounts.models import Role
from app.db import get_db
from tests import factories
from tests.conftest import fresh_database
from tests.factories import csrf_token, sign_in

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# Per operation and phase; derandomized, so every run sends the same requests (FUZZ_EXAMPLES=200
# to search further by hand).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CONFIG = schemathesis.Config.from_dict({
    "generation": {
        "mode": "all",  # requests the document allows, and requests it says are invalid
        "max-examples": EXAMPLES,
        "deterministic": True,
        "database": "none",
        # The session cookie and the CSRF header come from a real sign-in, not from Hypothesis.
        "with-security-parameters": False,
    },
    # Methods the document does not list all answer 405 from Flask's router: not worth the time.
    "phases": {"coverage": {"unexpected-methods": []}},
})
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
# Scenarios depend on what the shared database holds by then, so a replay (to shrink a failure)
# would not see the same answers: they are generated only, and reported as found.
SCENARIOS = settings(FUZZ, max_examples=20, stateful_step_count=8, phases=[Phase.generate])
# Ending a session would end a scenario's sign-in: fuzzed one request at a time only.
SESSION_PATHS = r"^/api/v1/sessions"
# What a coach does that a member cannot: their cohorts, invites, staff, moderation, views.
COACH_PATHS = r"^/api/v1/(coach|cohorts|invites|members/\{member_id\}|moderation|admin|two-factor)"


def _document() -> schemathesis.BaseSchema:
    """The document as the app serves it (it needs no database); the tests call their own app."""
    instance = Path(tempfile.mkdtemp(prefix="hearten-openapi-"))
    documenting = create_app({"APP_ENV": "testing", "SECRET_KEY": "openapi",
                              "DATABASE_URL": f"sqlite:///{instance / 'unused.db'}",
                              "INSTANCE_PATH": str(instance), "JOBS_IMMEDIATE": True})
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", documenting, config=CONFIG)


schema = _document()
SEEDED_IDS = st.integers(1, 6)  # the rows the fixtures make have small ids (a fresh database)


@schema.hook
def flatmap_path_parameters(context: schemathesis.HookContext,
                            path_parameters: dict[str, Any] | None) -> st.SearchStrategy[Any]:
    """Ids that name real rows half the time (random ones almost never do): the requests then
    reach past the lookup, into what the operation does."""
    if not path_parameters:
        return st.just(path_parameters)
    return st.fixed_dictionaries({
        name: st.one_of(st.just(value), SEEDED_IDS) if isinstance(value, int) else st.just(value)
        for name, value in path_parameters.items()})


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """The same for ids in a body (`target_id`, `template_id`, `cohort_id`)."""
    if not isinstance(body, dict):
        return st.just(body)
    return st.fixed_dictionaries({
        name: st.one_of(st.just(value), SEEDED_IDS)
        if name.endswith("_id") and isinstance(value, int) and not isinstance(value, bool)
        else st.just(value)
        for name, value in body.items()})


def _signed_out(ctx: HasAPIOperation) -> bool:
    """Operations that need no session: signing in, joining, the second factor's set-up."""
    return not any("session" in need for need in ctx.operation.definition.raw.get("security", []))


class Caller:
    """A browser for the fuzzer: the test client's cookies, and a CSRF token to match."""

    def __init__(self, app: Flask, name: str | None = None, *, address: str = "127.0.0.1"
                 ) -> None:
        self.app, self.name = app, name
        self.client = app.test_client()
        self.client.environ_base["REMOTE_ADDR"] = address  # its own sign-in rate limits
        self.sign_in()

    def sign_in(self) -> None:
        if self.name is not None:
            sign_in(self.client, self.name)
        # Uncompressed answers: the in-process client does not undo gzip as a browser does.
        self.headers = {"X-CSRFToken": csrf_token(self.client), "Accept-Encoding": "identity"}

    def kwargs(self) -> dict[str, Any]:
        return {"app": self.app, "session": self.client, "headers": dict(self.headers)}

    def still_signed_in(self, response: Response) -> None:
        """After a 401, sign in again: the case ended this very session (or the sign-in)."""
        if response.status_code == 401 and self.name is not None:
            self.sign_in()

    def call_and_validate(self, case: Case[Any]) -> None:
        response = case.call_and_validate(checks=CHECKS, **self.kwargs())
        self.still_signed_in(response)

    def make(self, path: str, body: dict[str, Any]) -> int:
        """Create something through the API (to give the fuzzer real rows); its id."""
        response = self.client.post(path, json=body, headers=self.headers)
        assert response.status_code == 201, response.get_json()
        made: int = response.get_json()["id"]
        return made


@pytest.fixture(scope="module")
def fuzzed_app(migrated: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One app and database for the module, so that each account is made and signed in once
    (password hashing is slow on purpose), not once per operation."""
    instance = tmp_path_factory.mktemp("fuzz")
    url = fresh_database(migrated, instance)
    app = create_app({"APP_ENV": "testing", "DATABASE_URL": url, "SECRET_KEY": "test-secret-key",
                      "INSTANCE_PATH": str(instance), "JOBS_IMMEDIATE": True,
                      "PUBLIC_URL": "http://hearten.test",
                      # The fuzzer's wrong passwords (signing in, confirming a deletion) would
                      # soon lock the accounts out of signing in again after a case ends their
                      # session; the throttling itself is tested elsewhere.
                      "LOGIN_LIMIT_PER_IP": "1000 per minute",
                      "LOGIN_LIMIT_PER_ACCOUNT": "1000 per minute"})
    with get_db(app).session(write=False) as session:
        coach = factories.make_coach(session, name="Coach Rosa")
        cohort = factories.make_cohort(session, coach=coach, name="Morning Walkers")
        factories.make_member(session, cohort=cohort, name="Sunny River")
        factories.make_member(session, cohort=cohort, name="Quiet Oak")
        factories.make_invite(session, coach=coach, cohort=cohort)
        factories.make_user(session, name="Admin Ana", role=Role.ADMIN)
    yield app
    get_db(app).dispose()


def _push_key() -> str:
    """A browser's push key (P-256, uncompressed, base64url)."""
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def signed_out(fuzzed_app: Flask) -> Caller:
    return Caller(fuzzed_app, address="192.0.2.1")


@pytest.fixture(scope="module")
def as_member(fuzzed_app: Flask) -> Caller:
    """Sunny River, with two goals, a story, a push subscription, and a peer's stories to read
    (which Sunny River cannot delete, so they are still there for the later operations)."""
    peer = Caller(fuzzed_app, "Quiet Oak", address="192.0.2.3")
    stories = [peer.make("/api/v1/feed", {"kind": "story", "body": f"Walk number {n}."})
               for n in (1, 2, 3)]
    member = Caller(fuzzed_app, "Sunny River")
    member.make("/api/v1/goals", {"kind": "steps", "target": 5000})
    member.make("/api/v1/goals", {"kind": "habit", "title": "Stretch"})
    member.make("/api/v1/feed", {"kind": "story", "body": "I walked to the park."})
    member.make(f"/api/v1/feed/{stories[0]}/comments", {"body": "Lovely, well done."})
    member.make("/api/v1/push/subscriptions", {"endpoint": "https://127.0.0.1:9/push/1", "keys": {
        "p256dh": _push_key(), "auth": "MDEyMzQ1Njc4OWFiY2RlZg"}})
    return member


@pytest.fixture(scope="module")
def as_coach(fuzzed_app: Flask) -> Caller:
    """Coach Rosa, with a goal template and a tip."""
    coach = Caller(fuzzed_app, "Coach Rosa", address="192.0.2.2")
    coach.make("/api/v1/cohorts/1/goal-templates", {"kind": "habit", "title": "Drink water"})
    coach.make("/api/v1/feed", {"kind": "tip", "body": "A short walk after lunch helps."})
    return coach


@pytest.fixture(scope="module")
def as_admin(fuzzed_app: Flask) -> Caller:
    return Caller(fuzzed_app, "Admin Ana", address="192.0.2.4")


@schema.include(_signed_out).parametrize()
@FUZZ
def test_signing_in_and_joining_answer_every_input_as_documented(
        case: Case[Any], signed_out: Caller) -> None:
    signed_out.call_and_validate(case)


@schema.exclude(_signed_out).parametrize()
@FUZZ
def test_a_member_gets_a_documented_answer_from_every_operation(
        case: Case[Any], as_member: Caller) -> None:
    as_member.call_and_validate(case)


def _scenarios(caller: Caller, operations: schemathesis.BaseSchema) -> None:
    """Chains of calls along the links schemathesis infers (the document declares none): an id
    from one answer goes into the next request, e.g. POST /goals then PATCH /goals/{goal_id}.

    Each answer depends on what the shared database holds by then, so Hypothesis may find that
    a scenario no longer draws as it did (FlakyStrategyDefinition) and stop early, as the
    schemathesis CLI does; every answer seen until then was checked, and failures are kept."""
    failures: list[str] = []
    calls: list[str] = []

    class Scenario(operations.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            return caller.kwargs()

        def after_call(self, response: Response, case: Case[Any]) -> None:
            super().after_call(response, case)
            calls.append(case.operation.label)
            caller.still_signed_in(response)

        def validate_response(self, response: Response, case: Case[Any],
                              additional_checks: Any = None, **kwargs: Any) -> None:
            try:
                case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)
            except FailureGroup as exc:
                failures.append(str(exc))

    with contextlib.suppress(FlakyStrategyDefinition):
        run_state_machine_as_test(Scenario, settings=SCENARIOS)
    assert not failures, "\n\n".join(failures)
    assert len(calls) >= 50, f"only {len(calls)} calls: {calls}"


def test_a_members_linked_calls_answer_as_documented(as_member: Caller) -> None:
    _scenarios(as_member, schema.exclude(_signed_out).exclude(path_regex=SESSION_PATHS))


# After the member's tests: a coach may take them out of the cohort.
@schema.include(path_regex=COACH_PATHS).parametrize()
@FUZZ
def test_a_coach_gets_a_documented_answer_from_the_coach_operations(
        case: Case[Any], as_coach: Caller) -> None:
    as_coach.call_and_validate(case)


def test_a_coachs_linked_calls_answer_as_documented(as_coach: Caller) -> None:
    _scenarios(as_coach, schema.include(path_regex=COACH_PATHS))


# Query strings are not in the document (the operations declare bodies and paths only), so the
# fuzzer cannot reach them: numbers int() refuses, or too long for a database, checked by hand.
@pytest.mark.parametrize("url", [
    "/api/v1/coach/cohorts/1/overview?days=²",
    "/api/v1/coach/cohorts/1/check-ins?idle=²",
    "/api/v1/admin/audit?before=²",
    "/api/v1/admin/audit?before=99999999999999999999",
])
def test_a_number_in_a_query_that_names_nothing_gets_a_clear_400(
        url: str, as_coach: Caller, as_admin: Caller) -> None:
    caller = as_admin if url.startswith("/api/v1/admin/") else as_coach
    response = caller.client.get(url, headers=caller.headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] in ("invalid_input", "bad_window") and error["message"]
