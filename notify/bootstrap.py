"""Binding the notify feature's push machinery to an app: the VAPID keys and `flask push`."""

from __future__ import annotations

from flask import Flask

from notify import push
from notify.cli import push_cli


def init_app(app: Flask) -> None:
    """Register `flask push`; in production, read the VAPID key now, so a bad one stops the start
    (elsewhere the key is made in instance/ on first use)."""
    app.cli.add_command(push_cli)
    if app.config.get("APP_ENV") == "production":
        push.keys(app)
