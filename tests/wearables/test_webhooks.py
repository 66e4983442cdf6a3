"""Google Health API notifications: verified, answered at once, and however often they repeat
(or in whatever order they come), one sync."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlmodel import Session

from app.accounts.models import Cohort
from app.jobs import huey
from tests import factories
from tests.factories import sign_in
from tests.standins import CLIENT_ID, CLIENT_SECRET, Standin, connect_google
from wearables.models import Connection
from wearables.standins import generator

KEY_ID = 1234567
SECRET = "endpoint-authorization-secret"
PRIVATE = ec.generate_private_key(ec.SECP256R1())


def _field(number: int, value: bytes | int) -> bytes:
    """One protobuf field (varint or bytes); enough to write a Tink EcdsaPublicKey."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def _keyset() -> str:
    numbers = PRIVATE.public_key().public_numbers()
    params = _field(1, 3) + _field(2, 3) + _field(3, 2)  # SHA256, NIST P-256, DER
    key = (_field(1, 0) + _field(2, params) + _field(3, b"\x00" + numbers.x.to_bytes(32, "big"))
           + _field(4, b"\x00" + numbers.y.to_bytes(32, "big")))
    return json.dumps({"primaryKeyId": KEY_ID, "key": [{
        "keyData": {"typeUrl": "type.googleapis.com/google.crypto.tink.EcdsaPublicKey",
                    "value": base64.b64encode(key).decode(),
                    "keyMaterialType": "ASYMMETRIC_PUBLIC"},
        "status": "ENABLED", "keyId": KEY_ID, "outputPrefixType": "TINK"}]})


def _sign(body: bytes, private: ec.EllipticCurvePrivateKey = PRIVATE) -> str:
    der = private.sign(body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(b"\x01" + KEY_ID.to_bytes(4, "big") + der).decode()


@pytest.fixture
def app_config(google: Standin, request: pytest.FixtureRequest) -> dict[str, object]:
    return {**getattr(request, "param", {}),
            "GOOGLE_CLIENT_ID": CLIENT_ID, "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
            "GOOGLE_OAUTH_AUTHORIZE_URL": f"{google.url}/o/oauth2/v2/auth",
            "GOOGLE_OAUTH_TOKEN_URL": f"{google.url}/token",
            "GOOGLE_OAUTH_REVOKE_URL": f"{google.url}/revoke",
            "GOOGLE_HEALTH_API_BASE": google.url,
            "GOOGLE_WEBHOOK_SECRET": SECRET, "GOOGLE_WEBHOOK_KEYSET": _keyset()}


def test_the_verification_handshake_needs_the_secret(client: FlaskClient) -> None:
    body = json.dumps({"type": "verification"})
    with_secret = client.post("/webhooks/google", data=body, headers={"Authorization": SECRET},
                              content_type="application/json")
    assert with_secret.status_code == 201
    without = client.post("/webhooks/google", data=body, content_type="application/json")
    assert without.status_code == 401


@pytest.mark.parametrize("app_config", [{"JOBS_IMMEDIATE": False}], indirect=True)
def test_repeated_and_out_of_order_notifications_make_one_sync(
        client: FlaskClient, session: Session, cohort: Cohort, google: Standin) -> None:
    factories.make_member(session, cohort=cohort, name="New Yorker",
                          timezone=generator.home_zone(0, 0))
    sign_in(client, "New Yorker")
    connect_google(client)
    (connection,) = factories.fresh(session).scalars(select(Connection))
    huey.flush()  # jobs queue for real here; start from an empty queue

    def notify(data_type: str, day: str, header: str = "X-HEALTHAPI-SIGNATURE") -> int:
        body = json.dumps({"healthUserId": connection.external_user_id, "dataType": data_type,
                           "operation": "UPSERT", "intervals": [{"civilStartTime": day}]})
        return client.post("/webhooks/google", data=body, content_type="application/json",
                           headers={header: _sign(body.encode())}).status_code

    answers = [notify("steps", "2026-11-20"), notify("sleep", "2026-11-19"),
               notify("steps", "2026-11-20", "GOOGLE-HEALTH-API-SIGNATURE"),
               notify("steps", "2026-11-18")]
    assert answers == [204, 204, 204, 204]
    assert huey.pending_count() == 1  # four deliveries, one sync queued
    task = huey.dequeue()
    with client.application.app_context():
        huey.execute(task)  # the worker runs it: the whole backfill comes in
    assert factories.fresh(session).get(Connection, connection.id).synced_through is not None
    assert notify("steps", "2026-11-21") == 204  # news after that sync: one more sync
    assert huey.pending_count() == 1
    huey.flush()


def test_unsigned_or_forged_notifications_are_refused(
        client: FlaskClient, session: Session, cohort: Cohort, google: Standin) -> None:
    body = json.dumps({"healthUserId": "someone", "dataType": "steps"}).encode()
    assert client.post("/webhooks/google", data=body,
                       content_type="application/json").status_code == 401
    forged = _sign(body, ec.generate_private_key(ec.SECP256R1()))
    assert client.post("/webhooks/google", data=body, headers={
        "X-HEALTHAPI-SIGNATURE": forged}, content_type="application/json").status_code == 401
    assert client.post("/webhooks/google", data=b"not json", headers={
        "X-HEALTHAPI-SIGNATURE": _sign(b"not json")}, content_type="application/json"
    ).status_code == 400
    assert google.data_requests() == {}
