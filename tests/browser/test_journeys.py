"""Real Chromium on a phone-sized screen against the app under gunicorn."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, BrowserContext, expect
from sqlmodel import Session

from app.accounts.models import Invite, User
from app.accounts.services import format_code
from tests.browser.conftest import sign_in as _sign_in
from tests.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_a_newcomer_joins_with_an_invite_signs_in_and_sees_their_home(
        live_server: LiveServer, phone: BrowserContext, invite: Invite,
        console_errors: list[str]) -> None:
    page = phone.new_page()
    page.goto(live_server.url)
    page.get_by_role("link", name="Join with an invite code").click()
    page.get_by_label("Invite code").fill(format_code(invite.code).lower())
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Join Morning Walkers")).to_be_visible()
    page.get_by_label("Nickname").fill("Brave Fern")
    page.get_by_label("Password").fill("tea in the garden")
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_role("heading", name="Hello, Brave Fern")).to_be_visible()
    expect(page.get_by_text("Welcome, Brave Fern.")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out. Take care.")).to_be_visible()
    _sign_in(page, live_server, "Brave Fern", "tea in the garden")
    expect(page.get_by_role("heading", name="Hello, Brave Fern")).to_be_visible()
    expect(page.get_by_text("Morning Walkers")).to_be_visible()
    # Nothing overflows a 360 px wide screen, and the buttons are big enough to tap.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    box = page.get_by_role("button", name="Sign out").bounding_box()
    assert box is not None and box["height"] >= 48
    assert console_errors == []


def test_a_kept_page_or_the_offline_page_shows_when_the_server_has_gone(
        live_server: LiveServer, phone: BrowserContext, member: User,
        console_errors: list[str]) -> None:
    page = phone.new_page()
    _sign_in(page, live_server, "Sunny River")
    expect(page.get_by_role("heading", name="Hello, Sunny River")).to_be_visible()
    page.evaluate("navigator.serviceWorker.ready")
    page.reload()  # the worker now controls the page and has cached the shell
    assert page.evaluate("navigator.serviceWorker.controller !== null")
    live_server.stop()
    page.goto(f"{live_server.url}/home")  # seen before: the kept copy, which says so
    expect(page.locator("#offline-note")).to_contain_text("You are offline.")
    expect(page.get_by_role("heading", name="Hello, Sunny River")).to_be_visible()
    page.goto(f"{live_server.url}/settings/notifications")  # never seen: the offline page
    expect(page.get_by_role("heading", name="You are offline")).to_be_visible()
    expect(page.get_by_text("nothing you did is lost")).to_be_visible()
    # The styles came from the shell cache, too.
    color = page.evaluate("getComputedStyle(document.querySelector('.button')).backgroundColor")
    assert color not in ("rgba(0, 0, 0, 0)", "")


def test_the_coach_home_shows_the_group_and_a_new_member_appears_live(
        live_server: LiveServer, browser: Browser, phone: BrowserContext, coach: User,
        invite: Invite, member: User, session: Session, console_errors: list[str]) -> None:
    laptop = browser.new_context()
    try:
        page = laptop.new_page()
        _sign_in(page, live_server, "Coach Rosa")
        expect(page.get_by_role("heading", name="Your groups")).to_be_visible()
        expect(page.get_by_role("heading", name="Morning Walkers")).to_be_visible()
        expect(page.get_by_text("Sunny River")).to_be_visible()
        expect(page.get_by_text(format_code(invite.code))).to_be_visible()
        expect(page.locator("body[data-socket=connected]")).to_have_count(1, timeout=15000)

        newcomer = phone.new_page()
        newcomer.goto(f"{live_server.url}/join/{invite.code}")
        newcomer.get_by_label("Nickname").fill("Live Wren")
        newcomer.get_by_label("Password").fill("tea in the garden")
        newcomer.get_by_role("button", name="Join").click()
        expect(newcomer.get_by_role("heading", name="Hello, Live Wren")).to_be_visible()

        expect(page.get_by_text("Live Wren")).to_be_visible(timeout=5000)  # no reload
        expect(page.locator("[data-member-count]")).to_have_text("2")
    finally:
        laptop.close()
    assert console_errors == []
