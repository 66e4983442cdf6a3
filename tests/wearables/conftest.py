"""Wearable tests run against an app pointed at the Google Health stand-in."""

from __future__ import annotations

import pytest

from tests.standins import CLIENT_ID, CLIENT_SECRET, Standin


@pytest.fixture
def app_config(google: Standin) -> dict[str, object]:
    return {"GOOGLE_CLIENT_ID": CLIENT_ID, "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
            "GOOGLE_OAUTH_AUTHORIZE_URL": f"{google.url}/o/oauth2/v2/auth",
            "GOOGLE_OAUTH_TOKEN_URL": f"{google.url}/token",
            "GOOGLE_OAUTH_REVOKE_URL": f"{google.url}/revoke",
            "GOOGLE_HEALTH_API_BASE": google.url}
