"""Binding the wearables feature to an app: its platforms, token cipher and commands."""

from __future__ import annotations

from flask import Flask

from app.crypto import TokenCipher
from wearables.cli import wearables_cli
from wearables.providers import providers_from_config
from wearables.webhooks import load_keyset


def init_app(app: Flask) -> None:
    """Bind the configured platforms and the token cipher to `app`."""
    app.extensions["hearten.providers"] = providers_from_config(app.config)
    app.extensions["hearten.cipher"] = TokenCipher(list(app.config["TOKEN_KEYS"]))
    app.cli.add_command(wearables_cli)
    keyset = app.config.get("GOOGLE_WEBHOOK_KEYSET") or ""
    app.extensions["hearten.webhook_keys"] = load_keyset(keyset) if keyset else {}
