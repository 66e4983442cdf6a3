"""A local Web Push service for the tests, the demo and the benchmark, over real HTTP.

It plays the push service and the browser at once. `subscribe()` (or `POST
/_standin/subscriptions`) makes what a browser's `pushManager.subscribe()` gives: a P-256 key pair
and a 16-byte auth secret, kept here, and an endpoint on this server. A push to an endpoint must
carry a VAPID `Authorization: vapid t=<JWT>, k=<key>` whose ES256 JWT verifies with `k`, is meant
for this server's origin (`aud`), expires within 24 h and names a contact (`sub`); when the
subscription was made with an applicationServerKey, `k` must be that key (403 otherwise, as a real
service answers a key mismatch). `TTL` is required, `Urgency` and `Topic` are checked when given,
the body must be aes128gcm and is decrypted with the subscription's keys. Every push is recorded
(the decrypted JSON and the headers). Then the endpoint answers 201, or what a test asked for:
404, 410, 413, 429 (with Retry-After) or 500, after an optional added latency.

    .venv/bin/python -m notify.standins.push_service --port 8602 [--latency 0.02]
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import http_ece  # type: ignore[import-untyped]
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, Response, jsonify, request
from werkzeug.serving import run_simple

URGENCIES = ("very-low", "low", "normal", "high")
TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_BODY = 4096
MAX_EXP = 24 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Subscription:
    """What a browser hands the app: `PushSubscription.toJSON()` without expirationTime."""

    endpoint: str
    p256dh: str
    auth: str

    def to_json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


@dataclass(frozen=True)
class Received:
    """One push as the push service received it."""

    payload: dict[str, Any]      # the decrypted JSON
    ttl: int
    urgency: str | None
    topic: str | None
    jwt_claims: dict[str, Any]
    status: int                  # what the stand-in answered
    at: float


@dataclass
class _Device:
    token: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    server_key: str | None
    answers: list[int] = field(default_factory=list)  # scripted, used in order
    default: int = 201
    retry_after: str = "60"
    latency: float = 0.0
    received: list[Received] = field(default_factory=list)


class PushService:
    """The stand-in's state: subscriptions and what each received. Thread-safe."""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self._devices: dict[str, _Device] = {}
        self._lock = threading.RLock()
        self.rejected: list[tuple[int, str]] = []  # (status, reason) for refused requests
        # Tokens already verified, as a push service caches them (a sender reuses one for hours).
        self._verified: dict[tuple[str, str], dict[str, Any]] = {}

    # --- as the browser ---

    def subscribe(self, base_url: str, *, server_key: str | None = None) -> Subscription:
        """A new subscription with an endpoint on this server (at `base_url`)."""
        key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._devices[token] = _Device(token=token, private_key=key, auth=auth,
                                           server_key=server_key)
        public = key.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint)
        return Subscription(endpoint=f"{base_url.rstrip('/')}/push/{token}", p256dh=_b64(public),
                            auth=_b64(auth))

    # --- as a test ---

    def answer(self, endpoint: str, *statuses: int, default: int | None = None,
               retry_after: str | None = None, latency: float | None = None) -> None:
        """The next answers for an endpoint (then `default`, 201 unless changed)."""
        device = self._device(endpoint)
        with self._lock:
            device.answers.extend(statuses)
            if default is not None:
                device.default = default
            if retry_after is not None:
                device.retry_after = retry_after
            if latency is not None:
                device.latency = latency

    def received(self, endpoint: str) -> list[Received]:
        """Every push the endpoint received, in order."""
        with self._lock:
            return list(self._device(endpoint).received)

    def shown(self, endpoint: str) -> list[dict[str, Any]]:
        """What the device shows: the accepted pushes, a newer one replacing an older one with
        the same tag (as the service worker's showNotification does)."""
        shown: dict[str, dict[str, Any]] = {}
        for index, push in enumerate(self.received(endpoint)):
            if 200 <= push.status < 300:
                tag = str(push.payload.get("tag") or f"untagged-{index}")
                shown.pop(tag, None)
                shown[tag] = push.payload
        return list(shown.values())

    def stats(self) -> dict[str, Any]:
        with self._lock:
            answered: dict[str, int] = {}
            for device in self._devices.values():
                for push in device.received:
                    answered[str(push.status)] = answered.get(str(push.status), 0) + 1
            return {"subscriptions": len(self._devices), "answered": answered,
                    "received": sum(answered.values()), "rejected": len(self.rejected)}

    def reset(self) -> None:
        with self._lock:
            self._devices.clear()
            self.rejected.clear()

    def _device(self, endpoint: str) -> _Device:
        token = endpoint.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            return self._devices[token]

    # --- as the push service ---

    def _refuse(self, status: int, reason: str) -> Response:
        with self._lock:
            self.rejected.append((status, reason))
        response = jsonify({"error": reason})
        response.status_code = status
        return response

    def _verify_vapid(self, header: str, origin: str) -> tuple[dict[str, Any], str] | str:
        """The JWT's claims and the `k` key, or why the Authorization header is refused."""
        match = re.fullmatch(r"vapid\s+(.+)", header.strip(), re.IGNORECASE)
        if not match:
            return "Authorization must be `vapid t=…, k=…`"
        params = dict(part.strip().split("=", 1) for part in match.group(1).split(",")
                      if "=" in part)
        token, key = params.get("t", ""), params.get("k", "")
        with self._lock:
            known = self._verified.get((token, key))
        if known is not None:  # verified before: only the time and audience can have changed
            if known["exp"] <= time.time():
                return "the VAPID JWT has expired"
            if known["aud"] != origin:
                return "the VAPID JWT is meant for another origin"
            return known, key
        try:
            raw = _unb64(key)
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            return "k is not an uncompressed P-256 point"
        if len(raw) != 65:
            return "k is not an uncompressed P-256 point"
        try:
            claims: dict[str, Any] = jwt.decode(
                token, public, algorithms=["ES256"], audience=origin,
                options={"require": ["aud", "exp", "sub"]})
        except jwt.PyJWTError as exc:
            return f"the VAPID JWT does not verify: {exc}"
        if claims["exp"] > time.time() + MAX_EXP:
            return "the VAPID JWT expires more than 24 h from now"
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            return "the VAPID sub must be a mailto: or https: address"
        with self._lock:
            if len(self._verified) > 1000:
                self._verified.clear()
            self._verified[(token, key)] = claims
        return claims, key

    def receive(self, token: str) -> Response:
        """A push to one endpoint."""
        with self._lock:
            device = self._devices.get(token)
        if device is None:
            return self._refuse(404, "no such subscription")
        origin = f"{request.scheme}://{request.host}"
        verified = self._verify_vapid(request.headers.get("Authorization", ""), origin)
        if isinstance(verified, str):
            return self._refuse(401, verified)
        claims, key = verified
        if device.server_key is not None and key != device.server_key:
            return self._refuse(403, "the VAPID key is not the one this subscription was made with")
        ttl = request.headers.get("TTL", "")
        if not ttl.isdigit():
            return self._refuse(400, "TTL is required (whole seconds)")
        urgency = request.headers.get("Urgency")
        if urgency is not None and urgency not in URGENCIES:
            return self._refuse(400, "Urgency must be very-low, low, normal or high")
        topic = request.headers.get("Topic")
        if topic is not None and not TOPIC.fullmatch(topic):
            return self._refuse(400, "Topic must be at most 32 URL-safe base64 characters")
        if request.headers.get("Content-Encoding", "").lower() != "aes128gcm":
            return self._refuse(400, "Content-Encoding must be aes128gcm")
        body = request.get_data()
        if len(body) > MAX_BODY:
            return self._refuse(413, "payload too large")
        try:
            plain = http_ece.decrypt(body, private_key=device.private_key,
                                     auth_secret=device.auth, version="aes128gcm")
            payload = json.loads(plain)
        except Exception as exc:  # what the body was does not matter: it did not decrypt
            return self._refuse(400, f"the body does not decrypt: {type(exc).__name__}")
        with self._lock:
            status = device.answers.pop(0) if device.answers else device.default
            latency = device.latency or self.latency
            device.received.append(Received(payload=payload, ttl=int(ttl), urgency=urgency,
                                            topic=topic, jwt_claims=claims, status=status,
                                            at=time.time()))
        if latency:
            time.sleep(latency)
        response = Response(status=status)
        if 200 <= status < 300:
            response.headers["Location"] = f"{origin}/message/{secrets.token_urlsafe(8)}"
        if status == 429 and device.retry_after:
            response.headers["Retry-After"] = device.retry_after
        return response


def create_push_standin(*, latency: float = 0.0, service: PushService | None = None) -> Flask:
    """The stand-in as a Flask app; its state is `app.extensions["push_service"]`."""
    app = Flask(__name__)
    push = service or PushService(latency=latency)
    app.extensions["push_service"] = push

    @app.post("/push/<token>")
    def receive(token: str) -> Response:
        return push.receive(token)

    @app.post("/_standin/subscriptions")
    def subscribe() -> Response:
        options = request.get_json(silent=True) or {}
        found = push.subscribe(request.host_url, server_key=options.get("server_key"))
        return jsonify(found.to_json())

    @app.post("/_standin/answer")
    def answer() -> Response:
        options = request.get_json(silent=True) or {}
        push.answer(str(options.get("endpoint", "")), *[int(s) for s in options.get("statuses", [])],
                    default=options.get("default"), retry_after=options.get("retry_after"),
                    latency=options.get("latency"))
        return jsonify({"ok": True})

    @app.get("/_standin/stats")
    def stats() -> Response:
        return jsonify(push.stats())

    @app.post("/_standin/reset")
    def reset() -> Response:
        push.reset()
        return jsonify({"ok": True})

    return app


def main(argv: Iterable[str] | None = None) -> None:
    """Serve the stand-in on a local port until interrupted."""
    parser = argparse.ArgumentParser(description="Local stand-in for a Web Push service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8602)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    parser.add_argument("--quiet", action="store_true", help="do not log every request")
    args = parser.parse_args(None if argv is None else list(argv))
    app = create_push_standin(latency=args.latency)
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
