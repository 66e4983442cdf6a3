"""In Chromium on a phone-sized screen: set a goal in a few steps, check in from home in one tap."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, expect
from sqlmodel import Session

from app.accounts.models import User
from tests.factories import PASSWORD
from tests.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_a_member_sets_a_habit_and_checks_in_from_home_with_one_tap(
        live_server: LiveServer, phone: BrowserContext, session: Session, member: User,
        console_errors: list[str]) -> None:
    page = phone.new_page()
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Nickname").fill("Sunny River")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("No goals yet. A small one is a fine place to start.")).to_be_visible()
    page.get_by_role("link", name="Goals", exact=True).click()
    page.get_by_role("link", name="Set a new goal").click()
    page.get_by_role("link", name="Went outside").click()              # an idea, prefilled
    expect(page.get_by_label("In your own words")).to_have_value("Went outside")
    expect(page.get_by_label("Only me")).to_be_checked()                # private by default
    page.get_by_role("button", name="Start this goal").click()
    expect(page.get_by_text("Your goal is set.")).to_be_visible()
    page.get_by_role("link", name="Home", exact=True).click()
    page.get_by_role("button", name="Yes, done today").click()          # one tap
    expect(page.get_by_text("Checked in. Thank you!")).to_be_visible()
    expect(page.get_by_text("Checked in today. Thank you!")).to_be_visible()
    expect(page.get_by_role("button", name="Yes, done today")).to_have_count(0)
    page.get_by_role("link", name="Went outside").click()
    expect(page.get_by_text("You met this goal for the first time!")).to_be_visible()
    expect(page.locator("table tbody tr").first).to_contain_text("yes")
    assert console_errors == []


def test_a_steps_goal_refuses_an_impossible_target_kindly(
        live_server: LiveServer, phone: BrowserContext, member: User) -> None:
    page = phone.new_page()
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Nickname").fill("Sunny River")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/goals/new/steps")
    field = page.get_by_label("Steps each day")
    field.evaluate("el => el.removeAttribute('max')")  # as an old browser without checks would
    field.fill("250000")
    page.get_by_role("button", name="Start this goal").click()
    expect(page.get_by_role("alert")).to_contain_text("from 100 to 100,000")
    expect(page.get_by_label("Steps each day")).to_have_attribute("aria-invalid", "true")


def test_a_goal_on_the_home_page_fills_up_live_when_steps_arrive(
        live_server: LiveServer, phone: BrowserContext, member: User,
        console_errors: list[str]) -> None:
    home = phone.new_page()
    home.goto(f"{live_server.url}/login")
    home.get_by_label("Nickname").fill("Sunny River")
    home.get_by_label("Password").fill(PASSWORD)
    home.get_by_role("button", name="Sign in").click()
    home.goto(f"{live_server.url}/goals/new/steps")
    home.get_by_label("Steps each day").fill("3000")
    home.get_by_role("button", name="Start this goal").click()
    home.goto(f"{live_server.url}/home")
    expect(home.get_by_text("No steps in yet today.")).to_be_visible()
    expect(home.locator("body[data-socket=connected]")).to_have_count(1, timeout=15000)
    other = phone.new_page()  # the same member, typing steps in on another tab
    other.goto(f"{live_server.url}/tracker")
    other.get_by_label("Steps", exact=True).fill("3500")
    other.get_by_role("button", name="Save steps").click()
    expect(other.get_by_text("Saved. Thank you for adding your steps.")).to_be_visible()
    expect(home.get_by_text("Done for today: 3,500 steps. Well done!")).to_be_visible(timeout=10000)
    assert console_errors == []
