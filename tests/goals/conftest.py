"""Goal tests: an app pointed at the Google Health stand-in, so that progress follows real syncs."""

from __future__ import annotations

from tests.wearables.conftest import app_config  # noqa: F401  (the stand-in's settings)
