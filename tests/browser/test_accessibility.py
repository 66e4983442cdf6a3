"""axe-core (through axe-playwright-python) on every main page, as a member and as a coach, in
Debian's Chromium at a phone's size: 0 violations."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page

from app.accounts.models import Cohort, User
from tests.browser.conftest import PHONE, sign_in
from tests.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.live]

AXE = Axe()


def _violations(page: Page, path: str, server: LiveServer) -> list[str]:
    page.goto(f"{server.url}{path}")
    found = AXE.run(page).response["violations"]
    return [f"{path}: {v['id']} at {[n['target'] for n in v['nodes']]}" for v in found]


def test_every_main_page_passes_axe_for_members_and_coaches(
        live_server: LiveServer, browser: Browser, phone: BrowserContext, coach: User,
        cohort: Cohort,
        member: User, peer: User) -> None:
    page = phone.new_page()
    sign_in(page, live_server, member.display_name)
    page.goto(f"{live_server.url}/goals")
    goal = page.request.post(f"{live_server.url}/api/v1/goals", data={
        "kind": "habit", "title": "Drink water", "visibility": "coach"},
        headers={"X-CSRFToken": page.locator("meta[name=csrf-token]").get_attribute("content")
                 or ""})
    assert goal.ok, goal.text()
    member_pages = ["/home", "/feed", "/goals", f"/goals/{goal.json()['id']}", "/tracker",
                    "/inbox", "/settings/notifications", "/settings/sharing",
                    "/settings/sessions", "/safety"]
    problems = [p for path in member_pages for p in _violations(page, path, live_server)]

    coach_context = browser.new_context(**PHONE)  # type: ignore[arg-type]
    coach_page = coach_context.new_page()
    sign_in(coach_page, live_server, coach.display_name)
    coach_pages = ["/coach", f"/coach/cohorts/{cohort.id}", f"/coach/cohorts/{cohort.id}/check-ins",
                   f"/coach/cohorts/{cohort.id}/members/{member.id}",
                   f"/coach/cohorts/{cohort.id}/export", "/moderation"]
    problems += [p for path in coach_pages for p in _violations(coach_page, path, live_server)]
    coach_context.close()
    assert problems == []
