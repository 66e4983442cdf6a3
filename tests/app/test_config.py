"""Configuration from the environment, and what production insists on."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import create_app
from app.config import ConfigError, load_config
from app.crypto import new_key
from notify import push
from tests.factories import csrf_token


def test_production_refuses_to_start_without_a_secret_key(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app({"APP_ENV": "production", "INSTANCE_PATH": str(tmp_path),
                    "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})


def test_production_refuses_to_start_without_a_key_for_tracker_tokens(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECRET_KEY", "a-production-secret-from-the-environment")
    monkeypatch.delenv("TOKEN_KEYS", raising=False)
    with pytest.raises(ConfigError, match="TOKEN_KEYS is not set"):
        load_config({"APP_ENV": "production", "INSTANCE_PATH": str(tmp_path)})


def test_development_generates_a_secret_key_once_and_keeps_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = load_config({"APP_ENV": "development", "INSTANCE_PATH": str(tmp_path)})
    second = load_config({"APP_ENV": "development", "INSTANCE_PATH": str(tmp_path)})
    assert len(first["SECRET_KEY"]) >= 40
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_the_default_database_is_a_sqlite_file_in_instance(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = load_config({"APP_ENV": "development", "INSTANCE_PATH": str(tmp_path)})
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'hearten.db'}"
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"


def test_an_unknown_environment_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="APP_ENV must be one of"):
        load_config({"APP_ENV": "staging", "INSTANCE_PATH": str(tmp_path)})


def test_redis_url_switches_rate_limits_to_redis(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    config = load_config({"APP_ENV": "development", "INSTANCE_PATH": str(tmp_path)})
    assert config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/0"


def test_production_cookies_are_secure_host_only_and_pages_send_hsts(
        monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("SECRET_KEY", "a-production-secret-from-the-environment")
    monkeypatch.setenv("TOKEN_KEYS", new_key())
    monkeypatch.setenv("VAPID_PRIVATE_KEY", push.generate_keys().private_raw())
    monkeypatch.setenv("VAPID_SUBJECT", "mailto:care@hearten.example")
    app = create_app({"APP_ENV": "production", "INSTANCE_PATH": str(tmp_path),
                      "DATABASE_URL": database_url})
    client = app.test_client()
    response = client.get("/login", base_url="https://hearten.example")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-hearten=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Domain=" not in cookie and "Path=/" in cookie
    assert csrf_token(client)  # the app still works end to end
