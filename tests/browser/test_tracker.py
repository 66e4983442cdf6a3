"""In Chromium: connect a tracker through the (stand-in) consent page and watch the backfill."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, expect
from sqlmodel import Session

from app.accounts.models import Cohort
from tests import factories
from tests.factories import PASSWORD
from tests.live import LiveServer
from tests.standins import Standin
from wearables.standins import generator

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_a_member_connects_and_watches_a_year_arrive_live(
        tracker_server: LiveServer, phone: BrowserContext, session: Session, cohort: Cohort,
        google: Standin, console_errors: list[str]) -> None:
    factories.make_member(session, cohort=cohort, name="New Yorker",
                          timezone=generator.home_zone(0, 0))
    google.configure(latency_ms=120)  # slow enough to watch the bar move
    page = phone.new_page()
    page.goto(f"{tracker_server.url}/login")
    page.get_by_label("Nickname").fill("New Yorker")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="My data").click()
    expect(page.get_by_text("No tracker is connected.")).to_be_visible()
    page.get_by_role("button", name="Connect Google Health (Fitbit, Pixel Watch)").click()
    expect(page.get_by_text("Allow Hearten to read your steps and sleep?")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_text("Connected. Your past days are on their way")).to_be_visible()
    expect(page.locator("body[data-socket=connected]")).to_have_count(1, timeout=15000)
    bar = page.locator("progress[data-sync-progress]")
    expect(bar).to_have_count(1)  # still backfilling when the page opened …
    start = bar.get_attribute("value")
    expect(bar).not_to_have_attribute("value", str(start), timeout=20000)  # … and it moves live
    expect(bar).to_have_attribute("value", "365", timeout=30000)  # the whole year, live
    page.reload()
    expect(page.get_by_text("working.")).to_be_visible()
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(30)
    assert console_errors == []
