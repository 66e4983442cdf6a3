"""Offline, in Chromium on a phone: the last-seen feed, goals and inbox stay readable; a
check-in, a cheer, a comment, a post and steps typed in wait in the outbox ("waiting to send")
and are sent once when the network is back, even when the network drops in the middle of a send;
after signing out nothing of the member is left in the phone's caches."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, Route, expect
from sqlalchemy import func
from sqlmodel import Session, col, select

from app.accounts.models import User
from app.db import utcnow
from feed import services as feed
from feed.models import Cheer, Comment, FeedItem, ItemKind
from goals import services as goals
from goals.models import CheckIn, GoalKind, GoalSettings
from tests.browser.conftest import sign_in
from tests.live import LiveServer
from wearables.models import DailySteps, Source

pytestmark = [pytest.mark.browser, pytest.mark.live]

CACHED_STATE = """async () => ({
  caches: await caches.keys(),
  pages: await (await caches.open("pages")).keys().then((keys) => keys.map((r) => r.url)),
  databases: (await indexedDB.databases()).map((d) => d.name),
})"""


def count_rows(session: Session, model: type, *where: object) -> int:
    session.rollback()  # a fresh look at what the server stored
    return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


@pytest.fixture
def story(session: Session, member: User, peer: User) -> FeedItem:
    with session.begin():
        goals.create_goal(session, member=member, now=utcnow(),
                          settings=GoalSettings(kind=GoalKind.HABIT, title="Went outside"))
        item = feed.post(session, author=peer, cohort_id=None, kind=ItemKind.STORY,
                         body="A slow walk by the river this morning.", now=utcnow())
    return item


def _online_page(phone: BrowserContext, live_server: LiveServer) -> Page:
    page = phone.new_page()
    sign_in(page, live_server, "Sunny River")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    for path in ("/home", "/feed", "/goals", "/inbox", "/tracker"):  # seen once, kept for later
        page.goto(f"{live_server.url}{path}")
    wait_until(page, lambda: len(page.evaluate(CACHED_STATE)["pages"]) >= 5)
    return page


def _waiting(page: Page, count: int) -> None:
    expect(page.locator("#outbox")).to_have_attribute("data-waiting-count", str(count))


def test_last_seen_pages_read_offline_and_actions_wait_then_go_once(
        live_server: LiveServer, phone: BrowserContext, session: Session, member: User,
        story: FeedItem, console_errors: list[str]) -> None:
    page = _online_page(phone, live_server)
    phone.set_offline(True)

    page.goto(f"{live_server.url}/goals")
    expect(page.locator("#offline-note")).to_contain_text("You are offline.")
    expect(page.get_by_role("heading", name="Went outside")).to_be_visible()
    page.get_by_role("button", name="Yes, done today").click()
    expect(page.get_by_text("Waiting to send", exact=True)).to_be_visible()
    expect(page.locator("#outbox")).to_contain_text("1 thing is waiting to send.")

    page.goto(f"{live_server.url}/feed")
    expect(page.get_by_text("A slow walk by the river this morning.")).to_be_visible()
    page.get_by_role("button", name="Proud of you").click()
    expect(page.locator("#outbox")).to_contain_text("2 things are waiting to send.")
    page.get_by_label("What would you like to share?").fill("Made tea and sat by the window.")
    page.get_by_role("button", name="Share", exact=True).click()
    _waiting(page, 3)

    page.goto(f"{live_server.url}/tracker")
    page.get_by_label("Steps", exact=True).fill("4321")
    page.get_by_role("button", name="Save steps").click()
    _waiting(page, 4)

    page.goto(f"{live_server.url}/inbox")  # readable offline too
    expect(page.locator("#offline-note")).to_be_visible()
    assert count_rows(session, CheckIn) == 0 and count_rows(session, Cheer) == 0  # nothing went yet

    phone.set_offline(False)
    expect(page.locator("#outbox")).to_contain_text("Sent. What you did offline has arrived.",
                                                    timeout=15000)
    expect(page.locator("#offline-note")).to_be_hidden()
    _waiting(page, 0)
    assert count_rows(session, CheckIn, col(CheckIn.done).is_(True)) == 1
    assert count_rows(session, Cheer, col(Cheer.item_id) == story.id) == 1
    assert count_rows(session, FeedItem, col(FeedItem.body) == "Made tea and sat by the window.") == 1
    assert count_rows(session, DailySteps, col(DailySteps.source) == Source.MANUAL,
                  col(DailySteps.steps) == 4321) == 1
    page.reload()
    expect(page.locator("#outbox")).to_be_hidden()  # nothing is sent a second time
    assert count_rows(session, CheckIn) == 1 and count_rows(session, Cheer) == 1
    assert console_errors == []


def test_a_send_cut_off_midway_is_sent_again_and_stored_once(
        live_server: LiveServer, phone: BrowserContext, session: Session, member: User,
        story: FeedItem) -> None:
    page = _online_page(phone, live_server)
    page.goto(f"{live_server.url}/feed/{story.id}")
    phone.set_offline(True)
    page.reload()
    page.get_by_label("Your comment").fill("That sounds lovely.")
    page.get_by_role("button", name="Send comment").click()
    _waiting(page, 1)

    # The network comes back, but drops just after the server took the comment: the phone never
    # hears back, so the comment stays waiting.
    cut: list[str] = []

    def lose_the_answer(route: Route) -> None:
        if cut:  # only the first send loses its answer
            route.continue_()
            return
        # The request reaches the server (sent on the phone's behalf, with its cookies) and the
        # comment is stored; then the line drops before the answer gets back to the phone.
        sent = route.request
        answer = requests.post(sent.url, data=sent.post_data, allow_redirects=False, timeout=10,
                               headers={"Content-Type": sent.headers["content-type"]},
                               cookies={c["name"]: c["value"] for c in phone.cookies()})
        cut.append(f"{answer.status_code}")
        route.abort("internetdisconnected")

    page.route("**/feed/*/comments", lose_the_answer)
    phone.set_offline(False)
    page.wait_for_function("() => true")  # let the online event run
    wait_until(page, lambda: len(cut) == 1)
    assert cut == ["302"]  # the server took it
    _waiting(page, 1)
    assert count_rows(session, Comment, col(Comment.item_id) == story.id) == 1

    page.unroute("**/feed/*/comments")
    phone.set_offline(True)   # and back: the outbox tries again with the same key
    phone.set_offline(False)
    expect(page.locator("#outbox")).to_contain_text("Sent.", timeout=15000)
    _waiting(page, 0)
    assert count_rows(session, Comment, col(Comment.item_id) == story.id) == 1  # once, not twice


def test_signing_out_leaves_nothing_of_the_member_on_the_phone(
        live_server: LiveServer, phone: BrowserContext, member: User, story: FeedItem) -> None:
    page = _online_page(phone, live_server)
    phone.set_offline(True)
    page.goto(f"{live_server.url}/goals")
    page.get_by_role("button", name="Yes, done today").click()
    _waiting(page, 1)
    before = page.evaluate(CACHED_STATE)
    assert len(before["pages"]) >= 5 and "hearten" in before["databases"]
    phone.set_offline(False)
    page.goto(f"{live_server.url}/home")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out. Take care.")).to_be_visible()

    after = page.evaluate(CACHED_STATE)
    assert after["pages"] == [] and "hearten" not in after["databases"], after
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")  # the login page's worker
    phone.set_offline(True)
    page.goto(f"{live_server.url}/feed")
    expect(page.get_by_text("A slow walk by the river this morning.")).to_have_count(0)
    expect(page.get_by_role("heading", level=1)).to_contain_text("offline")


def wait_until(page: Page, condition: Callable[[], bool], seconds: float = 15) -> None:
    for _ in range(int(seconds * 10)):
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError("waited in vain")
