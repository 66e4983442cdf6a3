"""The offer to add Hearten to the home screen, in Debian's Chromium: never on the first day of
use, offered from the second day when the browser says the app can be installed, and quiet for a
month after "Not now".

Headless Chromium never decides on its own that a page is installable, so the browser's
`beforeinstallprompt` is dispatched by the test, with `prompt()` and `userChoice` as Chromium
gives them; everything after that is the page's own code."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, expect

from app.accounts.models import User
from tests.browser.conftest import sign_in
from tests.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.live]

BROWSER_SAYS_INSTALLABLE = """(outcome) => {
  const event = new Event("beforeinstallprompt", { cancelable: true });
  event.prompt = () => { window.__prompted = (window.__prompted || 0) + 1; };
  event.userChoice = Promise.resolve({ outcome });
  window.dispatchEvent(event);
}"""



def test_the_install_offer_waits_for_a_second_day_and_then_for_a_month_after_not_now(
        live_server: LiveServer, phone: BrowserContext, member: User,
        console_errors: list[str]) -> None:
    page = phone.new_page()
    sign_in(page, live_server, member.display_name)
    page.goto(f"{live_server.url}/goals")
    page.evaluate(BROWSER_SAYS_INSTALLABLE, "dismissed")
    page.wait_for_timeout(300)
    expect(page.locator("#install-offer")).to_be_hidden()  # the first day: no offer

    page.evaluate("""() => {  // the member also used the app yesterday
      const state = JSON.parse(localStorage.getItem("hearten.install"));
      state.days.unshift("2026-01-01");
      localStorage.setItem("hearten.install", JSON.stringify(state));
    }""")
    page.goto(f"{live_server.url}/goals")
    page.evaluate(BROWSER_SAYS_INSTALLABLE, "dismissed")
    offer = page.get_by_role("complementary", name="Keep Hearten on your home screen")
    expect(offer).to_be_visible()
    offer.get_by_role("button", name="Not now").click()
    expect(offer).to_be_hidden()

    page.goto(f"{live_server.url}/feed")
    page.evaluate(BROWSER_SAYS_INSTALLABLE, "dismissed")
    page.wait_for_timeout(300)
    expect(page.locator("#install-offer")).to_be_hidden()  # not again so soon
    assert page.evaluate("() => window.__prompted || 0") == 0
    assert console_errors == []


def test_add_it_opens_the_browsers_own_install_question_and_after_yes_never_again(
        live_server: LiveServer, phone: BrowserContext, member: User) -> None:
    page = phone.new_page()
    sign_in(page, live_server, member.display_name)
    page.evaluate("""() => localStorage.setItem("hearten.install",
                                               JSON.stringify({ days: ["2026-01-01"] }))""")
    page.goto(f"{live_server.url}/goals")
    page.evaluate(BROWSER_SAYS_INSTALLABLE, "accepted")
    page.get_by_role("button", name="Add it").click()
    assert page.evaluate("() => window.__prompted") == 1
    page.wait_for_function("""() => JSON.parse(localStorage.getItem("hearten.install"))
                                       .installed === true""")
    page.goto(f"{live_server.url}/goals")
    page.evaluate(BROWSER_SAYS_INSTALLABLE, "accepted")
    page.wait_for_timeout(300)
    expect(page.locator("#install-offer")).to_be_hidden()
