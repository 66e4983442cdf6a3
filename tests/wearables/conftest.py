"""Wearable tests run against an app pointed at the Google Health stand-in."""

from __future__ import annotations

import pytest

from tests.standins import (
    Standin,
    fitbit,  # noqa: F401  (the legacy Fitbit stand-in fixture)
    google_config,
)


@pytest.fixture
def app_config(google: Standin, request: pytest.FixtureRequest) -> dict[str, object]:
    return {**google_config(google.url), **getattr(request, "param", {})}
