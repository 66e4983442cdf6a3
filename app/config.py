"""Configuration read from the environment (and an optional `.env` file)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

ENVIRONMENTS = ("development", "testing", "production")
LOG_FORMATS = ("json", "text")

# Loaded on import, so that everything reading the environment (the job queue too) sees .env.
load_dotenv(ROOT / ".env", override=False)


class ConfigError(RuntimeError):
    """The environment does not describe a runnable app."""


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}.") from exc


def _secret_key(app_env: str, instance: Path) -> str:
    """Use SECRET_KEY; outside production, generate one once into instance/."""
    key = os.environ.get("SECRET_KEY", "")
    if key:
        return key
    if app_env == "production":
        raise ConfigError(
            "SECRET_KEY is not set. In production Hearten needs a long random SECRET_KEY in the "
            "environment (for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')."
        )
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _token_keys(app_env: str, instance: Path) -> list[str]:
    """Fernet keys for tokens at rest; outside production, one is generated into instance/."""
    raw = os.environ.get("TOKEN_KEYS", "")
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    if keys:
        return keys
    if app_env == "production":
        raise ConfigError(
            "TOKEN_KEYS is not set. In production Hearten needs a Fernet key to encrypt tracker "
            "tokens (for example: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())').")
    path = instance / "token_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return [path.read_text().strip()]


def log_format(app_env: str | None = None) -> str:
    """LOG_FORMAT: "json" (one object a line, for a log shipper) or "text"; JSON in production.

    Read by gunicorn's logger too, which starts before the app is built."""
    app_env = app_env or os.environ.get("APP_ENV", "development")
    chosen = os.environ.get("LOG_FORMAT") or ("json" if app_env == "production" else "text")
    if chosen not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {chosen!r}.")
    return chosen


# The most database connections one process opens by default (see pool_limits).
MAX_DB_CONNECTIONS_PER_PROCESS = 40


def pool_limits() -> tuple[int, int]:
    """DB_POOL_SIZE and DB_MAX_OVERFLOW: a connection for each gunicorn thread, at most 40.

    A thread serves one request at a time, and a request holds one connection while it reads or
    writes (a second one briefly, for the header's counts), so with a connection per thread no
    request waits for another's. Most of the threads hold open sockets, which hold none, so a
    process stops at MAX_DB_CONNECTIONS_PER_PROCESS, keeping DB_POOL_SIZE of them open. Keep

        app processes × (DB_POOL_SIZE + DB_MAX_OVERFLOW) + job worker threads + 1 + 5

    (the 5 for `flask`, `pg_dump` and psql) under PostgreSQL's `max_connections` less the 3 it
    keeps for superusers: with its default of 100, 2 × 40 + 4 + 1 + 5 = 90 ≤ 97.
    """
    most = min(_int("GUNICORN_THREADS", 100), MAX_DB_CONNECTIONS_PER_PROCESS)
    size = _int("DB_POOL_SIZE", min(10, most))
    return size, _int("DB_MAX_OVERFLOW", max(most - size, 0))


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the app's settings from the environment, then apply `overrides`."""
    overrides = dict(overrides or {})
    app_env = str(overrides.get("APP_ENV") or os.environ.get("APP_ENV", "development"))
    if app_env not in ENVIRONMENTS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {app_env!r}.")
    instance = Path(str(overrides.get("INSTANCE_PATH") or os.environ.get("INSTANCE_PATH") or INSTANCE))
    production = app_env == "production"
    redis_url = os.environ.get("REDIS_URL") or None
    pool_size, max_overflow = pool_limits()
    config: dict[str, Any] = {
        "APP_ENV": app_env,
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'hearten.db'}",
        "REDIS_URL": redis_url,
        # Database connections per process (pool_limits() gives the rule); a request that finds
        # none free within DB_POOL_TIMEOUT seconds, or a database that does not answer within
        # DB_CONNECT_TIMEOUT, gets a clear 503. Pooled connections are replaced after
        # DB_POOL_RECYCLE seconds, before a firewall or the server drops them unseen.
        "DB_POOL_SIZE": pool_size,
        "DB_MAX_OVERFLOW": max_overflow,
        "DB_POOL_TIMEOUT": _int("DB_POOL_TIMEOUT", 10),
        "DB_CONNECT_TIMEOUT": _int("DB_CONNECT_TIMEOUT", 5),
        "DB_POOL_RECYCLE": _int("DB_POOL_RECYCLE", 1800),
        "JOBS_IMMEDIATE": os.environ.get("JOBS_IMMEDIATE", "") == "1",
        # Run the job worker inside the app process (the embedded set-up of `make run`).
        "JOBS_IN_PROCESS": os.environ.get("JOBS_IN_PROCESS", "") == "1",
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 1024 * 1024),
        # Members stay signed in on their own phone for a while; staff, who see others' data, less.
        "SESSION_IDLE_MINUTES": _int("SESSION_IDLE_MINUTES", 7 * 24 * 60),
        "SESSION_ABSOLUTE_HOURS": _int("SESSION_ABSOLUTE_HOURS", 30 * 24),
        "STAFF_SESSION_IDLE_MINUTES": _int("STAFF_SESSION_IDLE_MINUTES", 60),
        "STAFF_SESSION_ABSOLUTE_HOURS": _int("STAFF_SESSION_ABSOLUTE_HOURS", 12),
        "INVITE_DAYS": _int("INVITE_DAYS", 14),
        "INVITE_MAX_USES": _int("INVITE_MAX_USES", 25),
        "RESET_LINK_HOURS": _int("RESET_LINK_HOURS", 24),
        # Safety: whose crisis lines to show (feed/safety/resources.json), and how many different
        # members' reports hide a post until a moderator has looked.
        "CRISIS_COUNTRY": os.environ.get("CRISIS_COUNTRY", "US"),
        "REPORT_HIDE_THRESHOLD": _int("REPORT_HIDE_THRESHOLD", 3),
        # New-member care: hold this many of a new member's first posts for a coach (0: off).
        "HOLD_NEW_MEMBER_POSTS": _int("HOLD_NEW_MEMBER_POSTS", 0),
        # Coach views: figures resting on fewer members than this show "fewer than K"; members
        # not seen for this many days appear on the check-in list.
        "SMALL_GROUP_MIN": _int("SMALL_GROUP_MIN", 5),
        "CHECK_IN_IDLE_DAYS": _int("CHECK_IN_IDLE_DAYS", 7),
        # Text answers go out gzipped when the browser accepts it (Flask-Compress), static files
        # and streamed downloads too; Socket.IO's own transport never passes through Flask.
        "COMPRESS_ALGORITHM": ["gzip"],
        "COMPRESS_ALGORITHM_STREAMING": ["gzip"],
        "COMPRESS_MIMETYPES": ["text/html", "text/css", "text/javascript", "application/javascript",
                               "application/json", "application/manifest+json", "image/svg+xml"],
        "LOGIN_LIMIT_PER_IP": os.environ.get("LOGIN_LIMIT_PER_IP", "25 per 5 minutes"),
        "LOGIN_LIMIT_PER_ACCOUNT": os.environ.get("LOGIN_LIMIT_PER_ACCOUNT", "25 per hour"),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        # Redis away for a moment (a restart): limits count in this process until it is back,
        # rather than every request failing.
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "PUBLIC_URL": os.environ.get("PUBLIC_URL", ""),
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "LANGUAGES": ("en", "es"),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "SESSION_COOKIE_NAME": "__Host-hearten" if production else "hearten",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        "TRUST_PROXY_HOPS": _int("TRUST_PROXY_HOPS", 0),
        "SOCKET_SWEEP_SECONDS": _int("SOCKET_SWEEP_SECONDS", 60),
        # Operations: how log lines are written; who may read /metrics (a bearer token for the
        # scraper; without one, only a direct loopback peer); the job worker's own metrics port
        # on 127.0.0.1 (0: none).
        "LOG_FORMAT": log_format(app_env),
        "METRICS_TOKEN": os.environ.get("METRICS_TOKEN", ""),
        "WORKER_METRICS_PORT": _int("WORKER_METRICS_PORT", 0),
        # Socket.IO's async mode: "threading" (what gunicorn's gthread worker serves); "gevent"
        # only under `GUNICORN_WORKER_CLASS=gevent`, for benchmarks/worker_class.py.
        "SOCKETIO_ASYNC_MODE": os.environ.get("SOCKETIO_ASYNC_MODE") or "threading",
        # Wearables: every platform URL can point at a local stand-in (tests, the demo).
        "GOOGLE_CLIENT_ID": os.environ.get("GOOGLE_CLIENT_ID", ""),
        "GOOGLE_CLIENT_SECRET": os.environ.get("GOOGLE_CLIENT_SECRET", ""),
        "GOOGLE_OAUTH_AUTHORIZE_URL": os.environ.get(
            "GOOGLE_OAUTH_AUTHORIZE_URL", "https://accounts.google.com/o/oauth2/v2/auth"),
        "GOOGLE_OAUTH_TOKEN_URL": os.environ.get(
            "GOOGLE_OAUTH_TOKEN_URL", "https://oauth2.googleapis.com/token"),
        "GOOGLE_OAUTH_REVOKE_URL": os.environ.get(
            "GOOGLE_OAUTH_REVOKE_URL", "https://oauth2.googleapis.com/revoke"),
        "GOOGLE_HEALTH_API_BASE": os.environ.get(
            "GOOGLE_HEALTH_API_BASE", "https://health.googleapis.com"),
        "FITBIT_CLIENT_ID": os.environ.get("FITBIT_CLIENT_ID", ""),
        "FITBIT_CLIENT_SECRET": os.environ.get("FITBIT_CLIENT_SECRET", ""),
        "FITBIT_AUTHORIZE_URL": os.environ.get(
            "FITBIT_AUTHORIZE_URL", "https://www.fitbit.com/oauth2/authorize"),
        "FITBIT_TOKEN_URL": os.environ.get("FITBIT_TOKEN_URL", "https://api.fitbit.com/oauth2/token"),
        "FITBIT_REVOKE_URL": os.environ.get("FITBIT_REVOKE_URL", ""),
        "FITBIT_API_BASE": os.environ.get("FITBIT_API_BASE", "https://api.fitbit.com"),
        # Optional legacy Fitbit notifications (Subscriptions API) at /webhooks/fitbit: the
        # subscriber verification code; deliveries are signed with FITBIT_CLIENT_SECRET.
        "FITBIT_SUBSCRIBER_VERIFY_CODE": os.environ.get("FITBIT_SUBSCRIBER_VERIFY_CODE", ""),
        # Requests per member and window that the sync engine allows itself: the platforms'
        # own per-user limits (0 turns our count off; then only their 429s slow us down).
        "FITBIT_REQUESTS_PER_HOUR": _int("FITBIT_REQUESTS_PER_HOUR", 150),
        "GOOGLE_REQUESTS_PER_MINUTE": _int("GOOGLE_REQUESTS_PER_MINUTE", 300),
        # Optional Google Health API notifications: the endpoint-authorization secret and the
        # Tink JSON public keyset that signs them (polling works without them).
        "GOOGLE_WEBHOOK_SECRET": os.environ.get("GOOGLE_WEBHOOK_SECRET", ""),
        "GOOGLE_WEBHOOK_KEYSET": os.environ.get("GOOGLE_WEBHOOK_KEYSET", ""),
        "BACKFILL_DAYS": _int("BACKFILL_DAYS", 365),
        "IMPORT_MAX_BYTES": _int("IMPORT_MAX_BYTES", 512 * 1024 * 1024),
        "SYNC_EVERY_MINUTES": _int("SYNC_EVERY_MINUTES", 30),
        "RESYNC_DAYS": _int("RESYNC_DAYS", 3),
        # Web Push: the VAPID private key (PEM or base64url; the public key is derived from it;
        # outside production one is generated into instance/ on first use), the contact push
        # services may write to, and how the sender behaves.
        "VAPID_PRIVATE_KEY": os.environ.get("VAPID_PRIVATE_KEY", ""),
        "VAPID_SUBJECT": os.environ.get("VAPID_SUBJECT", "" if production
                                        else "mailto:care@hearten.example"),
        "PUSH_CONCURRENCY": _int("PUSH_CONCURRENCY", 32),
        "PUSH_MAX_ATTEMPTS": _int("PUSH_MAX_ATTEMPTS", 5),
        "PUSH_TIMEOUT_SECONDS": _int("PUSH_TIMEOUT_SECONDS", 10),
        # Plain-http push endpoints (local stand-ins only); refused in production.
        "PUSH_ALLOW_HTTP_ENDPOINTS": os.environ.get("PUSH_ALLOW_HTTP_ENDPOINTS", "") == "1",
    }
    config.update(overrides)
    config["TESTING"] = bool(config.get("TESTING")) or app_env == "testing"
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = _secret_key(app_env, instance)
    if not config.get("TOKEN_KEYS"):
        config["TOKEN_KEYS"] = _token_keys(app_env, instance)
    if production:
        _check_push(config)
    return config


def _check_push(config: dict[str, Any]) -> None:
    """Production pushes need a VAPID key pair and a contact, and no plain-http endpoints."""
    missing = [name for name in ("VAPID_PRIVATE_KEY", "VAPID_SUBJECT") if not config.get(name)]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set. In "
            "production Hearten needs a VAPID key pair for Web Push (make one with `flask push "
            "keys --generate` on any machine and set VAPID_PRIVATE_KEY) and a contact address for "
            "push services (for example VAPID_SUBJECT=mailto:care@hearten.example).")
    if config.get("PUSH_ALLOW_HTTP_ENDPOINTS"):
        raise ConfigError("PUSH_ALLOW_HTTP_ENDPOINTS is for local stand-ins and cannot be set in "
                          "production.")
