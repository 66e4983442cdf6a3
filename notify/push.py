"""Web Push: the VAPID key pair, and a sender that encrypts (RFC 8291 aes128gcm), signs (RFC 8292
VAPID) and posts each message to its push service over one pooled HTTP session.

What we take from the `webpush` package, and what we do ourselves (from reading its 1.0.6 source):

- the aes128gcm encryption (`WebPush._encrypt`: an ephemeral P-256 key per message, HKDF with the
  subscription's auth secret, one record with the 0x02 delimiter) and the applicationServerKey
  encoding (`VAPID.get_application_server_key`) are used as they are;
- `WebPush.get()` is not: it signs a new JWT for every message (we cache one per push-service
  origin), its `aud` drops the port (`scheme://host`, which a push service on a non-default port
  refuses), it prefixes the subject with "mailto:" whatever it is, a per-call `ttl=0` is ignored
  (`if ttl:`) and per-call `ttl`/`subscriber` overwrite the instance's values (a race between
  threads), and it sets neither `Urgency` nor `Topic`. So the JWT and every header are built here,
  on every message: `TTL`, `Urgency`, `Topic`, `Content-Encoding`, `Authorization`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit
from urllib.request import getproxies

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, current_app
from requests.adapters import HTTPAdapter
from webpush import WebPush
from webpush.types import WebPushKeys, WebPushSubscription
from webpush.vapid import VAPID

from app.config import ConfigError
from notify.texts import PushMessage

log = logging.getLogger(__name__)

VAPID_FILE = "vapid_private.pem"
TOKEN_LIFETIME = 12 * 3600  # seconds a VAPID JWT is valid (push services accept up to 24 h)
TOKEN_MARGIN = 3600         # a cached token is renewed when less than this is left
URGENCIES = ("very-low", "low", "normal", "high")
TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
RECORD_SIZE = 4096          # webpush's single aes128gcm record: plaintext + 17 bytes must fit
DEFAULT_CONCURRENCY = 32
DEFAULT_TIMEOUT = 10.0
_EXTENSION_KEYS, _EXTENSION_SENDER = "hearten.vapid", "hearten.push_sender"
_lock = threading.Lock()


def b64url(data: bytes) -> str:
    """Base64url without padding, as Web Push writes keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding (raises ValueError)."""
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- the VAPID key pair ---


class VapidKeys:
    """The application server's P-256 key pair and the contact push services may write to."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey, subject: str) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ConfigError("VAPID_PRIVATE_KEY must be a P-256 (prime256v1) key.")
        if not subject.startswith(("mailto:", "https://")):
            raise ConfigError("VAPID_SUBJECT must be a mailto: or https: address, for example "
                              "mailto:care@hearten.example.")
        self.private_key = private_key
        self.subject = subject
        self.public_key: str = VAPID.get_application_server_key(private_key.public_key())

    def private_raw(self) -> str:
        """The private key as base64url of its 32 bytes (one line, for the environment)."""
        return b64url(self.private_key.private_numbers().private_value.to_bytes(32, "big"))

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())


def parse_private_key(raw: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM, or base64url of the raw 32 bytes (or of DER)."""
    text = raw.strip().replace("\\n", "\n")
    try:
        if text.startswith("-----BEGIN"):
            key: Any = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            data = b64url_decode(text)
            if len(data) == 32:
                key = ec.derive_private_key(int.from_bytes(data, "big"), ec.SECP256R1())
            else:
                key = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ConfigError("VAPID_PRIVATE_KEY is not a key Hearten can read: give the PEM, or the "
                          "base64url private key that `flask push keys --generate` prints."
                          ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError("VAPID_PRIVATE_KEY must be an elliptic-curve (P-256) key.")
    return key


def generate_keys(subject: str = "mailto:care@hearten.example") -> VapidKeys:
    """A new key pair."""
    return VapidKeys(ec.generate_private_key(ec.SECP256R1()), subject)


def _instance_key(instance: Path) -> ec.EllipticCurvePrivateKey:
    """The development key pair in instance/, made on first use (once, whoever races for it)."""
    path = instance / VAPID_FILE
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        pem = generate_keys().private_pem()
        fd, tmp = tempfile.mkstemp(dir=instance, prefix=".vapid-")
        try:
            os.write(fd, pem)
            os.close(fd)
            os.chmod(tmp, 0o600)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # atomic, and refuses to replace another process's key
        finally:
            os.unlink(tmp)
    return parse_private_key(path.read_text())


def load_keys(config: Mapping[str, Any]) -> VapidKeys:
    """The key pair from VAPID_PRIVATE_KEY; outside production, generated into INSTANCE_PATH."""
    raw = str(config.get("VAPID_PRIVATE_KEY") or "")
    subject = str(config.get("VAPID_SUBJECT") or "")
    production = config.get("APP_ENV") == "production"
    if production and not (raw and subject):
        raise ConfigError("VAPID_PRIVATE_KEY and VAPID_SUBJECT must be set in production.")
    key = parse_private_key(raw) if raw else _instance_key(Path(str(config["INSTANCE_PATH"])))
    return VapidKeys(key, subject or "mailto:care@hearten.example")


def keys(app: Flask | None = None) -> VapidKeys:
    """The app's key pair (loaded, or generated outside production, once per app)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found: VapidKeys | None = app.extensions.get(_EXTENSION_KEYS)
    if found is None:
        with _lock:
            found = app.extensions.get(_EXTENSION_KEYS)
            if found is None:
                found = load_keys(app.config)
                app.extensions[_EXTENSION_KEYS] = found
    return found


def public_key(app: Flask | None = None) -> str:
    """The public key in the applicationServerKey form (base64url, uncompressed point)."""
    return keys(app).public_key


# --- sending ---


@dataclass(frozen=True)
class PushTarget:
    """One message for one device."""

    endpoint: str
    p256dh: str
    auth: str
    message: PushMessage


@dataclass(frozen=True)
class PushResult:
    """What the push service answered (`status`), or why nothing was answered (`error`)."""

    status: int | None
    error: str = ""              # timeout, connection, insecure endpoint, bad endpoint, bad keys
    retry_after: str | None = None


class Sender(Protocol):
    """What the delivery engine needs from a sender."""

    def send_all(self, targets: Sequence[PushTarget]) -> list[PushResult]: ...


def origin_of(endpoint: str) -> str:
    """The push service's origin (scheme, host and a non-default port): the JWT's audience."""
    parts = urlsplit(endpoint)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and (scheme, port) not in (("https", 443), ("http", 80)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def host_of(endpoint: str) -> str:
    """The push service's host alone, for logs (the path identifies a device: never logged)."""
    return (urlsplit(endpoint).hostname or "?").lower()


def topic_for(tag: str) -> str:
    """A Topic header value: the tag when it is one (≤ 32 URL-safe base64 characters), else
    a digest of it, so that the same tag always gives the same topic."""
    if TOPIC.fullmatch(tag):
        return tag
    return b64url(hashlib.sha256(tag.encode()).digest())[:32]


class PushSender:
    """Encrypts, signs and posts Web Push messages: one pooled `requests.Session`, at most
    `concurrency` requests at once, a VAPID token cached per push-service origin."""

    def __init__(self, vapid: VapidKeys, *, concurrency: int = DEFAULT_CONCURRENCY,
                 timeout: float = DEFAULT_TIMEOUT, allow_http: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.vapid = vapid
        self.concurrency = max(1, concurrency)
        self.timeout = (min(5.0, timeout), timeout)  # connect, read
        self.allow_http = allow_http
        self.clock = clock
        pem = vapid.private_pem()
        public_pem = vapid.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self._encryptor = WebPush(private_key=pem, public_key=public_pem)
        self._tokens: dict[str, tuple[str, float]] = {}
        self._tokens_lock = threading.Lock()
        self.tokens_signed = 0
        self.session = requests.Session()
        # The environment's proxies and CA bundle are read once here, not on every request:
        # requests' per-request look-up costs more CPU than the encryption does.
        self.session.trust_env = False
        self.session.proxies = {scheme: url for scheme, url in getproxies().items()
                                if scheme in ("http", "https")}
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self.session.verify = bundle
        adapter = HTTPAdapter(pool_connections=16, pool_maxsize=self.concurrency, max_retries=0,
                              pool_block=True)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def authorization(self, endpoint: str) -> str:
        """`vapid t=<JWT>, k=<public key>` for the endpoint's origin (cached up to ~12 h)."""
        audience = origin_of(endpoint)
        now = self.clock()
        with self._tokens_lock:
            cached = self._tokens.get(audience)
            if cached is not None and cached[1] - now > TOKEN_MARGIN:
                return cached[0]
        expires = int(now) + TOKEN_LIFETIME
        token = jwt.encode({"aud": audience, "exp": expires, "sub": self.vapid.subject},
                           self.vapid.private_key, algorithm="ES256")
        header = f"vapid t={token}, k={self.vapid.public_key}"
        with self._tokens_lock:
            self._tokens[audience] = (header, float(expires))
            self.tokens_signed += 1
        return header

    def refusal(self, endpoint: str) -> str:
        """Why an endpoint is not sent to ("" when it may be)."""
        parts = urlsplit(endpoint)
        if not parts.hostname or parts.scheme not in ("https", "http"):
            return "bad endpoint"
        if parts.scheme == "http" and not self.allow_http:
            return "insecure endpoint"
        return ""

    def encrypt(self, payload: bytes, *, p256dh: str, auth: str) -> bytes:
        """The aes128gcm body for one device (webpush's RFC 8291 encryption)."""
        if len(b64url_decode(auth)) != 16 or len(payload) > RECORD_SIZE - 18:
            raise ValueError("bad auth secret or payload too long")
        # _encrypt reads only the keys; model_construct skips validating an endpoint per message.
        subscription = WebPushSubscription.model_construct(
            endpoint=None, keys=WebPushKeys.model_construct(auth=auth, p256dh=p256dh))
        body: bytes = self._encryptor._encrypt(payload, subscription)
        return body

    def request(self, target: PushTarget) -> tuple[dict[str, str], bytes]:
        """The headers and encrypted body for one message (raises ValueError on bad keys)."""
        message = target.message
        body = self.encrypt(message.payload(), p256dh=target.p256dh, auth=target.auth)
        headers = {
            "TTL": str(max(0, int(message.ttl))),
            "Urgency": message.urgency if message.urgency in URGENCIES else "normal",
            "Topic": topic_for(message.tag or "hearten"),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Authorization": self.authorization(target.endpoint),
        }
        return headers, body

    def send(self, target: PushTarget) -> PushResult:
        """Post one message; network trouble comes back as a result, never as an exception."""
        refused = self.refusal(target.endpoint)
        if refused:
            return PushResult(None, refused)
        try:
            headers, body = self.request(target)
        except (ValueError, TypeError):
            return PushResult(None, "bad keys")
        try:
            response = self.session.post(target.endpoint, data=body, headers=headers,
                                         timeout=self.timeout, allow_redirects=False)
        except requests.Timeout:
            return PushResult(None, "timeout")
        except requests.RequestException:
            return PushResult(None, "connection")
        response.close()
        return PushResult(response.status_code, retry_after=response.headers.get("Retry-After"))

    def send_all(self, targets: Sequence[PushTarget]) -> list[PushResult]:
        """Post every message, `concurrency` at a time; results in the same order."""
        if len(targets) <= 1:
            return [self.send(target) for target in targets]
        return list(self._executor().map(self.send, targets))

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.concurrency,
                                                thread_name_prefix="push")
            return self._pool

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        self.session.close()


def sender_from_config(config: Mapping[str, Any], vapid: VapidKeys) -> PushSender:
    """A sender with the app's settings (plain-http endpoints only outside production)."""
    allow_http = bool(config.get("PUSH_ALLOW_HTTP_ENDPOINTS")) and \
        config.get("APP_ENV") != "production"
    return PushSender(vapid, concurrency=int(config.get("PUSH_CONCURRENCY") or DEFAULT_CONCURRENCY),
                      timeout=float(config.get("PUSH_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT),
                      allow_http=allow_http)


def sender(app: Flask | None = None) -> PushSender:
    """The app's sender (one per app and process: its pool and tokens are shared)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found: PushSender | None = app.extensions.get(_EXTENSION_SENDER)
    if found is None:
        vapid = keys(app)
        with _lock:
            found = app.extensions.get(_EXTENSION_SENDER)
            if found is None:
                found = sender_from_config(app.config, vapid)
                app.extensions[_EXTENSION_SENDER] = found
    return found
