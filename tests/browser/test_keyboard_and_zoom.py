"""In Chromium, on every main page for members and coaches: tap targets of at least 48 x 48 CSS px
at a phone's size; text at 200% on a 320 px wide screen without sideways scrolling or clipped
words; a member's day done with the keyboard alone, with a visible focus ring on every stop and
a focus order that follows the page; and live updates in Spanish written in Spanish words and
Spanish numbers."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect

from app.accounts.models import Cohort, User
from tests.browser.conftest import PHONE, sign_in
from tests.factories import PASSWORD
from tests.live import LiveServer, api_sign_in

pytestmark = [pytest.mark.browser, pytest.mark.live]

# Every visible control smaller than 48 x 48 CSS px, as "tag.class "words" is WxH". Checkboxes and
# radios count by their label (the label is what a finger presses). Exempt, as WCAG 2.5.8 allows:
# a link inside running text, i.e. an `a` laid out inline whose block (the nearest ancestor that
# is not laid out inline) holds, in the same line flow, a text node with a letter or digit that
# is not inside another control ("·" between two links is not running text). Closed <details>
# are opened first, so that what they hide is measured too.
SMALL_TARGETS = r"""
() => {
  const CONTROLS = 'a[href], button, input, select, textarea, summary, label';
  const blockOf = (node) => {
    let box = node.parentElement;
    while (box && getComputedStyle(box).display.startsWith('inline')) box = box.parentElement;
    return box;
  };
  const inSentence = (link) => {
    if (getComputedStyle(link).display !== 'inline') return false;
    const block = blockOf(link);
    const walker = document.createTreeWalker(block, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (/[\p{L}\p{N}]/u.test(node.textContent) && blockOf(node) === block
          && !node.parentElement.closest(CONTROLS)) return true;
    }
    return false;
  };
  const describe = (el) => {
    const words = (el.innerText || el.value || el.getAttribute('aria-label') || el.name || '')
      .trim().replace(/\s+/g, ' ').slice(0, 40);
    const kind = el.getAttribute('class') || el.getAttribute('type');
    return `${el.tagName.toLowerCase()}${kind ? '.' + kind : ''} "${words}"`;
  };
  for (const details of document.querySelectorAll('details')) details.open = true;
  const small = [];
  for (const el of document.querySelectorAll(CONTROLS)) {
    if (el.type === 'hidden') continue;
    if (el.tagName === 'LABEL' && !['checkbox', 'radio'].includes(el.control?.type)) continue;
    if (['checkbox', 'radio'].includes(el.type) && el.labels?.length) continue;
    if (getComputedStyle(el).visibility !== 'visible' || !el.getClientRects().length) continue;
    const box = el.getBoundingClientRect();
    if (box.width <= 1 && box.height <= 1) continue;  // visually hidden, for screen readers
    if (el.tagName === 'A' && inSentence(el)) continue;
    if (box.width < 47.5 || box.height < 47.5) {
      small.push(`${describe(el)} is ${Math.round(box.width)}x${Math.round(box.height)}`);
    }
  }
  return small;
}
"""

# What big text breaks: the page scrolling sideways, anything sticking out of the screen, and
# words cut off by a box that hides its overflow. A region meant to scroll (a wide table) is
# fine when a keyboard can reach it and it has a name: tabindex plus aria-label(ledby).
OVERFLOW = r"""
() => {
  for (const details of document.querySelectorAll('details')) details.open = true;
  const width = document.documentElement.clientWidth;
  const found = [];
  const scroller = document.scrollingElement;
  if (scroller.scrollWidth > innerWidth + 1) {
    found.push(`the page is ${scroller.scrollWidth}px wide on a ${innerWidth}px screen`);
  }
  // A field one types in moves its words along with the caret: a long value there is not lost.
  const typed = (el) => el.matches('textarea, input:not([type]), input[type=text], '
    + 'input[type=number], input[type=email], input[type=password], input[type=search]');
  const scrolls = (el) => el.closest(
    '[tabindex][aria-label], [tabindex][aria-labelledby]');
  const describe = (el) => {
    const words = (el.innerText || el.value || '').trim().replace(/\s+/g, ' ').slice(0, 40);
    const kind = el.getAttribute('class') || el.getAttribute('type');
    return `${el.tagName.toLowerCase()}${kind ? '.' + kind : ''} "${words}"`;
  };
  const out = new Set();
  for (const el of document.body.querySelectorAll('*')) {
    const style = getComputedStyle(el);
    if (style.visibility !== 'visible' || !el.getClientRects().length) continue;
    const box = el.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue;  // visually hidden, for screen readers
    if (box.right <= 0) continue;  // parked off screen on purpose (the skip link)
    if (scrolls(el)) continue;
    if (box.right > width + 1 || box.left < -1) {
      out.add(el);
      if (out.has(el.parentElement)) continue;  // told once, for the outermost box
      found.push(`${describe(el)} sticks out: ${Math.round(box.left)} to ${Math.round(box.right)}`);
    }
    const clipsX = style.overflowX !== 'visible', clipsY = style.overflowY !== 'visible';
    if (!typed(el) && ((clipsX && el.scrollWidth > el.clientWidth + 1)
        || (clipsY && el.scrollHeight > el.clientHeight + 1))) {
      found.push(`${describe(el)} cuts off its text: ${el.scrollWidth}x${el.scrollHeight} in `
                 + `${el.clientWidth}x${el.clientHeight}`);
    }
  }
  return found;
}
"""

# The focused element: its name, where it is on the page, whether it is on screen, and whether
# something shows the focus (an outline or a box shadow).
FOCUSED = r"""
() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  const name = (el.getAttribute('aria-label') || el.labels?.[0]?.innerText || el.innerText
                || el.value || '').trim().replace(/\s+/g, ' ').slice(0, 50);
  return {
    tag: el.tagName.toLowerCase(), name,
    top: box.top + scrollY, bottom: box.bottom + scrollY, left: box.left, right: box.right,
    onScreen: box.width > 1 && box.height > 1 && box.bottom > 0 && box.top < innerHeight
      && box.right > 0 && box.left < innerWidth,
    ring: (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0)
      || style.boxShadow !== 'none',
    inMain: Boolean(el.closest('main')),
  };
}
"""


def _api(server: LiveServer, name: str) -> tuple[requests.Session, dict[str, str]]:
    http = requests.Session()
    api_sign_in(http, server.url, name, PASSWORD)
    token = http.get(f"{server.url}/api/v1/csrf-token", timeout=5).json()["csrf_token"]
    return http, {"X-CSRFToken": token}


def _call(who: tuple[requests.Session, dict[str, str]], method: str, url: str,
          **body: object) -> dict[str, Any]:
    http, headers = who
    response = http.request(method, url, json=body, headers=headers, timeout=10)
    assert response.ok, response.text
    found: dict[str, Any] = response.json() if response.content else {}
    return found


def _seed(server: LiveServer) -> dict[str, int]:
    """Something on every page: goals, a story with a cheer and a comment, a tip, a report
    waiting for the coach, notifications in the member's inbox."""
    api = f"{server.url}/api/v1"
    mine, theirs = _api(server, "Sunny River"), _api(server, "Quiet Oak")
    goal = _call(mine, "POST", f"{api}/goals", kind="habit", title="Drink water",
                 visibility="peers")
    _call(mine, "POST", f"{api}/goals", kind="steps", target=5000)
    story = _call(mine, "POST", f"{api}/feed", kind="story",
                  body="Walked to the bakery and back. See https://example.org for the route.")
    tip = _call(theirs, "POST", f"{api}/feed", kind="tip",
                body="A glass of water by the bed helps me in the morning.")
    _call(theirs, "POST", f"{api}/feed/{story['id']}/cheers", kind="well_done")
    _call(theirs, "POST", f"{api}/feed/{story['id']}/comments", body="Lovely, well done!")
    _call(mine, "POST", f"{api}/reports", target_type="item", target_id=tip["id"],
          category="other", note="Just checking this is fine.")
    return {"goal": int(goal["id"]), "story": int(story["id"]), "tip": int(tip["id"])}


def _member_pages(ids: dict[str, int]) -> list[str]:
    return ["/home", "/feed", f"/feed/{ids['story']}", "/goals", f"/goals/{ids['goal']}",
            "/tracker", "/inbox", "/settings/notifications", "/settings/sharing",
            "/settings/sessions", "/safety"]


def _coach_pages(cohort: Cohort, member: User) -> list[str]:
    return ["/coach", f"/coach/cohorts/{cohort.id}", f"/coach/cohorts/{cohort.id}/check-ins",
            f"/coach/cohorts/{cohort.id}/members/{member.id}",
            f"/coach/cohorts/{cohort.id}/export", "/moderation"]


@pytest.fixture
def coach_context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(**PHONE)  # type: ignore[arg-type]
    yield context
    context.close()


def _small_targets(page: Page, server: LiveServer, paths: list[str]) -> list[str]:
    found = []
    for path in paths:
        page.goto(f"{server.url}{path}")
        page.keyboard.press("Tab")  # the skip link shows itself: then it is a target too
        found += [f"{path}: {what}" for what in page.evaluate(SMALL_TARGETS)]
    return found


def test_every_tap_target_is_at_least_48_px(live_server: LiveServer, phone: BrowserContext,
                                            coach_context: BrowserContext, coach: User,
                                            cohort: Cohort, member: User, peer: User) -> None:
    ids = _seed(live_server)
    page = phone.new_page()
    sign_in(page, live_server, member.display_name)
    problems = _small_targets(page, live_server, _member_pages(ids))
    coach_page = coach_context.new_page()
    sign_in(coach_page, live_server, coach.display_name)
    problems += _small_targets(coach_page, live_server, _coach_pages(cohort, member))
    assert not problems, "smaller than 48 x 48 CSS px:\n" + "\n".join(problems)


def _overflow(page: Page, server: LiveServer, paths: list[str]) -> list[str]:
    found = []
    for path in paths:
        page.goto(f"{server.url}{path}")
        found += [f"{path}: {what}" for what in page.evaluate(OVERFLOW)]
    return found


@pytest.fixture
def big_text(browser: Browser) -> Iterator[Callable[[], Page]]:
    """Pages on a 320 px wide phone whose browser is set to 200% text.

    The setting is Chromium's own: its default font size doubled (16 px to 32 px) through the
    DevTools protocol (`Page.setFontSizes`), which is what the browser's "font size" setting (and
    Android's text scaling, for pages that size text relative to the root) does: text and
    everything measured in rem or em grows, px stays. That is the case WCAG 1.4.4 asks about
    (text resized, not the page zoomed). CSS zoom or a device scale factor would grow px too,
    which is page zoom: at 200% it makes a 640 px screen lay out like this 320 px one (WCAG
    1.4.10, reflow), so the 320 px width covers it as well.
    """
    contexts: list[BrowserContext] = []

    def open_page() -> Page:
        context = browser.new_context(**{**PHONE, "viewport": {"width": 320, "height": 640}})  # type: ignore[arg-type]
        contexts.append(context)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Page.enable")
        cdp.send("Page.setFontSizes", {"fontSizes": {"standard": 32, "fixed": 26}})
        return page

    yield open_page
    for context in contexts:
        context.close()


def test_text_at_200_percent_on_a_320_px_screen_needs_no_sideways_scrolling(
        live_server: LiveServer, big_text: Callable[[], Page], coach: User, cohort: Cohort,
        member: User, peer: User) -> None:
    ids = _seed(live_server)
    page = big_text()
    sign_in(page, live_server, member.display_name)
    page.goto(f"{live_server.url}/home")
    assert page.evaluate("getComputedStyle(document.body).fontSize") == "32px"
    problems = _overflow(page, live_server, _member_pages(ids))
    page.get_by_label("Language").select_option("es")  # Spanish words run longer
    page.get_by_role("button", name="Change").click()
    expect(page.locator("html[lang=es]")).to_have_count(1)
    problems += [f"(es) {p}" for p in _overflow(page, live_server, _member_pages(ids))]
    coach_page = big_text()
    sign_in(coach_page, live_server, coach.display_name)
    problems += _overflow(coach_page, live_server, _coach_pages(cohort, member))
    assert not problems, "with 200% text at 320 px:\n" + "\n".join(problems)


class Keyboard:
    """Tab through a page as someone without a mouse would, checking every stop on the way."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []

    def stop(self) -> dict[str, Any]:
        here: dict[str, Any] = self.page.evaluate(FOCUSED)
        where = f"{self.page.url.split('/', 3)[-1]}: {here['tag']} \"{here['name']}\""
        if here["tag"] == "body":  # past the last stop: the browser's own bar would be next
            return here
        if not here["ring"]:
            self.problems.append(f"{where} shows no focus ring")
        if not here["onScreen"]:
            self.problems.append(f"{where} has focus but is not on screen")
        return here

    def tab(self, *, back: bool = False) -> dict[str, Any]:
        self.page.keyboard.press("Shift+Tab" if back else "Tab")
        return self.stop()

    def tab_to(self, name: str | re.Pattern[str], *, within: str = "body", back: bool = False,
               limit: int = 80) -> dict[str, Any]:
        for _ in range(limit):
            here = self.tab(back=back)
            if ((name.search(here["name"]) if isinstance(name, re.Pattern)
                 else here["name"] == name)
                    and self.page.evaluate("s => Boolean(document.activeElement.closest(s))",
                                           within)):
                return here
        raise AssertionError(f"Tab never reached {name!r} on {self.page.url}")


def _reading_order(stops: list[dict[str, Any]]) -> list[str]:
    """Each stop after the one before it: lower down, or on the same line further right."""
    wrong = []
    for before, after in pairwise(stops):
        same_line = after["top"] < before["bottom"] - 2 and after["bottom"] > before["top"] + 2
        if same_line and after["left"] < before["left"] - 2:
            wrong.append(f"{after['name']!r} is left of {before['name']!r} but comes after it")
        elif not same_line and after["top"] < before["top"] - 2:
            wrong.append(f"{after['name']!r} is above {before['name']!r} but comes after it")
    return wrong


def test_a_members_day_works_with_the_keyboard_alone(
        live_server: LiveServer, phone: BrowserContext, member: User, peer: User,
        console_errors: list[str]) -> None:
    ids = _seed(live_server)
    page = phone.new_page()
    sign_in(page, live_server, member.display_name)
    keys = Keyboard(page)

    # The skip link comes first, shows itself, and takes the next Tab into the page's content.
    page.goto(f"{live_server.url}/home")
    first = keys.tab()
    assert first["name"] == "Skip to content", first
    page.keyboard.press("Enter")
    assert keys.tab()["inMain"]

    # Check in on a habit goal from home.
    keys.tab_to("Yes, done today")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Checked in. Thank you!")).to_be_visible()
    expect(page.get_by_text("Checked in today. Thank you!")).to_be_visible()

    # To the group through the menu; cheer a peer's tip with the space bar.
    keys.tab_to("Group")
    page.keyboard.press("Enter")
    page.wait_for_url("**/feed")
    expect(page.locator("body[data-socket=connected]")).to_have_count(1, timeout=15000)
    tip = page.locator(f"#item-{ids['tip']}")
    keys.tab_to(re.compile(r"^Proud of you"), within=f"#item-{ids['tip']}")
    page.keyboard.press(" ")
    expect(tip.get_by_role("button", name="Proud of you")).to_have_attribute(
        "aria-pressed", "true")
    expect(tip.locator("[data-count=proud_of_you]")).to_have_text("1")
    assert page.url.endswith("/feed")
    assert keys.stop()["name"].startswith("Proud of you")  # focus stayed on the button

    # Shift+Tab goes back the way it came.
    keys.tab(back=True)
    assert keys.tab()["name"].startswith("Proud of you")

    # Comment on the tip: open its page, write, send.
    keys.tab_to("Comment", within=f"#item-{ids['tip']}")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/feed/{ids['tip']}#comments")
    keys.tab_to("Your comment")
    page.keyboard.type("This helps me too, thank you.")
    keys.tab_to("Send comment")
    page.keyboard.press("Enter")
    expect(page.locator("ol.comments")).to_contain_text("This helps me too, thank you.")

    # Focus follows the page from top to bottom on the group page.
    page.goto(f"{live_server.url}/feed")
    stops = [keys.tab()]
    while stops[-1]["tag"] != "body" and len(stops) < 100:
        stops.append(keys.tab())
    stops.pop()
    assert len(stops) > 15, stops
    assert _reading_order(stops) == []

    # The language picker: choose Spanish with the arrow keys, then "Change".
    keys.tab_to("Language", back=True)
    page.keyboard.press("ArrowDown")
    keys.tab_to("Change")
    page.keyboard.press("Enter")
    expect(page.locator("html[lang=es]")).to_have_count(1)
    expect(page.get_by_role("link", name="Grupo", exact=True)).to_be_visible()
    assert keys.problems == []
    assert console_errors == []


def test_live_news_on_a_spanish_page_comes_in_spanish_words_and_numbers(
        live_server: LiveServer, phone: BrowserContext, member: User, peer: User,
        console_errors: list[str]) -> None:
    ids = _seed(live_server)
    page = phone.new_page()
    sign_in(page, live_server, member.display_name)
    page.goto(f"{live_server.url}/feed")
    page.get_by_label("Language").select_option("es")
    page.get_by_role("button", name="Change").click()
    expect(page.locator("html[lang=es]")).to_have_count(1)
    expect(page.locator("body[data-socket=connected]")).to_have_count(1, timeout=15000)
    expect(page.locator("#live-state")).to_have_text("En vivo")
    story, news = page.locator(f"#item-{ids['story']}"), page.locator("#feed-news")
    theirs = _api(live_server, "Quiet Oak")

    # A peer's cheer: the count moves, and a screen reader hears it in Spanish.
    _call(theirs, "POST", f"{live_server.url}/api/v1/feed/{ids['story']}/cheers",
          kind="proud_of_you")
    expect(story.locator("[data-count=proud_of_you]")).to_have_text("1", timeout=10000)
    expect(news).to_have_text("Nuevos ánimos para la publicación de Sunny River.")

    # A peer's new post arrives with Spanish words around it.
    _call(theirs, "POST", f"{live_server.url}/api/v1/feed", kind="story",
          body="Hoy salí a caminar un rato.")
    expect(news).to_have_text("Nuevo en tu grupo: una publicación de Quiet Oak.", timeout=10000)
    fresh = page.locator("article.feed-item").first
    expect(fresh).to_contain_text("Hoy salí a caminar un rato.")
    expect(fresh.locator("time")).to_contain_text("hace")

    # Counts as a big group would reach them, through the page's own socket listener: written
    # the Spanish way (no separator in four digits, a point in five).
    page.evaluate("""(item) => {
        const seq = Number(document.querySelector("[data-feed]").dataset.lastSeq) + 1;
        const cheers = { proud_of_you: 12345, well_done: 1234 };
        for (const listener of window.hearten.socket.listeners("feed")) {
          listener({ seq, kind: "cheer", item_id: item, cheers });
        }
    }""", ids["story"])
    expect(story.locator("[data-count=proud_of_you]")).to_have_text("12.345")
    expect(story.locator("[data-count=well_done]")).to_have_text("1234")

    # "… ago" stays true while the page is open: written by Intl, in Spanish.
    page.evaluate("""(item) => {
        const time = document.querySelector(`#item-${item} time[data-ago]`);
        time.dateTime = new Date(Date.now() - 3 * 3600 * 1000).toISOString();
        document.dispatchEvent(new Event("visibilitychange"));
    }""", ids["story"])
    expect(story.locator("time")).to_have_text("hace 3 horas")
    assert console_errors == []
