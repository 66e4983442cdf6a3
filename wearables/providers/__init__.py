"""Wearable platforms, each behind the WearableProvider interface; which ones run comes from config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wearables.providers import fitbit, google
from wearables.providers.base import WearableProvider
from wearables.providers.fitbit import FitbitLegacyProvider
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
            api_base=config["GOOGLE_HEALTH_API_BASE"],
            requests_per_minute=config.get("GOOGLE_REQUESTS_PER_MINUTE", google.REQUESTS_PER_MINUTE))
    if config.get("FITBIT_CLIENT_ID"):
        # The legacy Fitbit Web API is switched off: this adapter only serves old connections
        # until they move to Google (it turns the API's 410 into that prompt).
        providers["fitbit"] = FitbitLegacyProvider(
            client_id=config["FITBIT_CLIENT_ID"], client_secret=config["FITBIT_CLIENT_SECRET"],
            authorize_url=config["FITBIT_AUTHORIZE_URL"], token_url=config["FITBIT_TOKEN_URL"],
            api_base=config["FITBIT_API_BASE"], revoke_url=config.get("FITBIT_REVOKE_URL") or None,
            requests_per_hour=config.get("FITBIT_REQUESTS_PER_HOUR", fitbit.REQUESTS_PER_HOUR))
    return providers


# Platforms a member may newly connect; the others only keep existing connections going.
CONNECTABLE = ("google",)
