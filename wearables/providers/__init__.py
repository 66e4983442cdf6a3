"""Wearable platforms, each behind the WearableProvider interface; which ones run comes from config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wearables.providers.base import WearableProvider
from wearables.providers.google import GoogleHealthProvider

LABELS = {"google": "Google Health (Fitbit, Pixel Watch)", "fitbit": "Fitbit (old connection)"}


def providers_from_config(config: Mapping[str, Any]) -> dict[str, WearableProvider]:
    """The platforms with credentials in the config, by name."""
    providers: dict[str, WearableProvider] = {}
    if config.get("GOOGLE_CLIENT_ID"):
        providers["google"] = GoogleHealthProvider(
            client_id=config["GOOGLE_CLIENT_ID"], client_secret=config["GOOGLE_CLIENT_SECRET"],
            authorize_url=config["GOOGLE_OAUTH_AUTHORIZE_URL"],
            token_url=config["GOOGLE_OAUTH_TOKEN_URL"],
            revoke_url=config["GOOGLE_OAUTH_REVOKE_URL"],
            api_base=config["GOOGLE_HEALTH_API_BASE"])
    return providers
