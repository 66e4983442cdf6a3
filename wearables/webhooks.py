"""Platform notifications: verify them, then ask for one sync however often they repeat.

Google Health API notifications are signed with ECDSA (Tink); legacy Fitbit ones with an HMAC of
the client secret. Both carry only metadata (who, which data type, which days); the data is
fetched again by the ordinary sync. Deliveries repeat and arrive out of order, so a notification
only sets a "sync requested" mark on the connection; the first one to set it queues a sync, later
ones find it set and do nothing until that sync has started.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import update
from sqlmodel import Session, col, select

from app.events import record
from wearables.events import SyncRequested
from wearables.models import Connection, ConnectionStatus

SIGNATURE_HEADERS = ("GOOGLE-HEALTH-API-SIGNATURE", "X-HEALTHAPI-SIGNATURE")
FITBIT_SIGNATURE_HEADER = "X-Fitbit-Signature"
# Fitbit collections that change what we show; a revoked grant is found out by the next sync.
FITBIT_COLLECTIONS = frozenset({"activities", "sleep", "userRevokedAccess"})
_ECDSA_KEY_TYPE = "type.googleapis.com/google.crypto.tink.EcdsaPublicKey"


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """The (field number, value) pairs of a protobuf message (varint and bytes fields only)."""
    at = 0
    while at < len(data):
        tag, at = _varint(data, at)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, at = _varint(data, at)
            yield number, value
        elif wire == 2:
            length, at = _varint(data, at)
            yield number, data[at:at + length]
            at += length
        else:
            raise ValueError("unexpected protobuf wire type")


def load_keyset(raw: str) -> dict[int, ec.EllipticCurvePublicKey]:
    """Tink's JSON public keyset (ECDSA P-256) as public keys by key id."""
    keys: dict[int, ec.EllipticCurvePublicKey] = {}
    for entry in json.loads(raw).get("key", []):
        data = entry.get("keyData", {})
        if entry.get("status") != "ENABLED" or data.get("typeUrl") != _ECDSA_KEY_TYPE:
            continue
        fields = dict(_fields(base64.b64decode(data["value"])))
        x, y = fields.get(3), fields.get(4)
        if not isinstance(x, bytes) or not isinstance(y, bytes):
            continue
        numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"),
                                                int.from_bytes(y, "big"), ec.SECP256R1())
        keys[int(entry["keyId"])] = numbers.public_key()
    return keys


def signature_valid(body: bytes, signature_b64: str,
                    keys: dict[int, ec.EllipticCurvePublicKey]) -> bool:
    """Tink's signature format: 0x01, the 4-byte key id, then a DER ECDSA-SHA256 signature."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except ValueError:
        return False
    if len(signature) < 6 or signature[0] != 0x01:
        return False
    key = keys.get(int.from_bytes(signature[1:5], "big"))
    if key is None:
        return False
    try:
        key.verify(signature[5:], body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def request_sync(session: Session, *, provider: str, external_user_id: str,
                 now: datetime) -> bool:
    """Mark that platform user's connection as owing a sync; True if this queued one."""
    if not external_user_id:
        return False
    connection = session.exec(select(Connection).where(
        col(Connection.provider) == provider,
        col(Connection.external_user_id) == external_user_id,
        col(Connection.status) == ConnectionStatus.CONNECTED)).first()
    if connection is None:
        return False
    claimed = session.execute(
        update(Connection).where(col(Connection.id) == connection.id,
                                 col(Connection.sync_requested_at).is_(None))
        .values(sync_requested_at=now))
    if not getattr(claimed, "rowcount", 0):
        return False  # a repeat, or one more while a sync is already on its way
    record(session, SyncRequested(member_id=connection.member_id,
                                  connection_id=connection.id or 0))
    return True


def google_notification(session: Session, *, notification: dict[str, Any],
                        now: datetime) -> bool:
    """A Google Health API notification: the member it names owes a sync."""
    return request_sync(session, provider="google",
                        external_user_id=str(notification.get("healthUserId") or ""), now=now)


def fitbit_signature(body: bytes, client_secret: str) -> str:
    """Fitbit's X-Fitbit-Signature: base64 of HMAC-SHA1 over the body, keyed "<secret>&"."""
    digest = hmac.new(f"{client_secret}&".encode(), body, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def fitbit_signature_valid(body: bytes, signature: str, client_secret: str) -> bool:
    """Whether a Fitbit notification was signed with our client secret."""
    if not signature or not client_secret:
        return False
    expected = fitbit_signature(body, client_secret)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def fitbit_notifications(session: Session, *, notifications: list[Any], now: datetime) -> int:
    """Legacy Fitbit Subscriptions API notifications; how many syncs they queued.

    Each names a Fitbit user (`ownerId`) and what changed; several may name the same member.
    """
    owners = dict.fromkeys(
        str(item.get("ownerId") or "") for item in notifications
        if isinstance(item, dict) and item.get("collectionType") in FITBIT_COLLECTIONS
        and item.get("ownerType", "user") == "user")
    return sum(request_sync(session, provider="fitbit", external_user_id=owner, now=now)
               for owner in owners)
