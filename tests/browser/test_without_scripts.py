"""Without JavaScript every form still works (plain POST and redirect): a member sets a habit
goal and checks in, types in today's steps, shares a story, cheers and comments, in Chromium
with scripts turned off."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from app.accounts.models import User
from tests.browser.conftest import PHONE
from tests.factories import PASSWORD
from tests.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_a_members_day_works_with_scripts_off(live_server: LiveServer, browser: Browser,
                                              member: User, peer: User) -> None:
    context = browser.new_context(**PHONE, java_script_enabled=False)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Nickname").fill(member.display_name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.goto(f"{live_server.url}/goals/new/habit")
    page.get_by_label("In your own words").fill("Open the curtains")
    page.get_by_role("button", name="Start this goal").click()
    page.goto(f"{live_server.url}/goals")
    page.get_by_role("button", name="Yes, done today").click()
    expect(page.get_by_role("button", name="Yes, done today")).to_have_count(0)

    page.goto(f"{live_server.url}/tracker")
    page.get_by_label("Steps", exact=True).fill("4321")
    page.get_by_role("button", name="Save steps").click()
    expect(page.get_by_text("4,321").first).to_be_visible()

    page.goto(f"{live_server.url}/feed")
    page.get_by_label("What would you like to share?").fill("Curtains open, tea made.")
    page.get_by_role("button", name="Share", exact=True).click()
    expect(page.get_by_text("Curtains open, tea made.")).to_be_visible()
    page.get_by_role("button", name="Proud of you").first.click()
    expect(page.get_by_role("button", name="Proud of you").first).to_have_attribute(
        "aria-pressed", "true")
    page.get_by_role("link", name="Comment").first.click()
    page.get_by_label("Your comment").fill("Small steps count.")
    page.get_by_role("button", name="Send comment").click()
    expect(page.get_by_text("Small steps count.")).to_be_visible()
    context.close()
