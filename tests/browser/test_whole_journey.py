"""A newcomer's first day, in Chromium on a phone, end to end: join with an invite → connect a
tracker (the Google stand-in) → watch the backfill arrive → set a goal and share it → a peer's
cheer arrives live → the notification is in the inbox → go offline → check in and cheer → back
online → both are sent once. Run as is, and again with the CPU slowed four times (a cheap
phone), with no console errors either way."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, expect
from sqlmodel import Session, col, select

from app.accounts.models import Invite, User
from app.accounts.services import format_code
from app.db import utcnow
from feed import services as feed
from feed.models import Cheer, FeedItem, ItemKind
from goals.models import CheckIn
from tests.browser.test_offline import CACHED_STATE, count_rows, wait_until
from tests.factories import PASSWORD
from tests.live import LiveServer, api_sign_in
from tests.standins import Standin

pytestmark = [pytest.mark.browser, pytest.mark.live]


def _peer_cheers(server: LiveServer, item_id: int) -> None:
    """Quiet Oak, on their own phone, cheers the newcomer's shared goal (through the API)."""
    with requests.Session() as http:
        api_sign_in(http, server.url, "Quiet Oak", PASSWORD)
        token = http.get(f"{server.url}/api/v1/csrf-token", timeout=5).json()["csrf_token"]
        answer = http.post(f"{server.url}/api/v1/feed/{item_id}/cheers", timeout=10,
                           json={"kind": "with_you"}, headers={"X-CSRFToken": token})
        assert answer.status_code in (200, 201), answer.text


def _journey(page: Page, server: LiveServer, session: Session, invite: Invite, story: FeedItem,
             wait: int) -> None:
    """`wait`: how long (ms) any one step may take to show."""
    # Join with an invite.
    page.goto(server.url)
    page.get_by_role("link", name="Join with an invite code").click()
    page.get_by_label("Invite code").fill(format_code(invite.code))
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Nickname").fill("Brave Fern")
    page.get_by_label("Password").fill("tea in the garden")
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_role("heading", name="Hello, Brave Fern")).to_be_visible(timeout=wait)

    # Connect a tracker and watch the past days arrive.
    page.get_by_role("link", name="My data").click()
    page.get_by_role("button", name="Connect Google Health (Fitbit, Pixel Watch)").click()
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_text("Connected. Your past days are on their way")).to_be_visible(
        timeout=wait)
    expect(page.locator("body[data-socket=connected]")).to_have_count(1, timeout=2 * wait)
    bar = page.locator("progress[data-sync-progress]")
    expect(bar).to_have_count(1, timeout=wait)
    page.wait_for_function("""() => {
        const bar = document.querySelector("progress[data-sync-progress]");
        return bar && bar.value > 0 && bar.value >= bar.max; }""", timeout=6 * wait)

    # Set a goal and share it with the group.
    page.get_by_role("link", name="Goals", exact=True).click()
    page.get_by_role("link", name="Set a new goal").click()
    page.get_by_role("link", name="Went outside").click()
    page.get_by_label("My peer group").check()
    page.get_by_role("button", name="Start this goal").click()
    expect(page.get_by_text("Your goal is set.")).to_be_visible(timeout=wait)

    # A peer's cheer arrives live on the group page, and the inbox count follows.
    page.get_by_role("link", name="Group", exact=True).click()
    expect(page.locator("body[data-socket=connected]")).to_have_count(1, timeout=2 * wait)
    fern = session.exec(select(User).where(col(User.display_name) == "Brave Fern")).one()
    shared = session.exec(select(FeedItem).where(col(FeedItem.author_id) == fern.id,
                                                 col(FeedItem.kind) == ItemKind.GOAL_SHARED)).one()
    session.rollback()
    _peer_cheers(server, shared.id or 0)
    mine = page.locator(f"#item-{shared.id}")
    expect(mine.locator("[data-count=with_you]")).to_have_text("1", timeout=2 * wait)
    expect(page.locator("[data-inbox-count]")).to_have_text("1", timeout=2 * wait)
    page.get_by_role("link", name="Inbox").click()
    expect(page.get_by_text("Quiet Oak")).to_be_visible(timeout=wait)

    # The pages kept for offline reading (the group page was seen above).
    page.get_by_role("link", name="Goals", exact=True).click()
    wait_until(page, lambda: {"/feed", "/goals"} <= {
        url.removeprefix(server.url) for url in page.evaluate(CACHED_STATE)["pages"]})

    # Offline: check in and cheer; both wait on the phone.
    page.context.set_offline(True)
    page.get_by_role("link", name="Goals", exact=True).click()
    expect(page.locator("#offline-note")).to_be_visible(timeout=wait)
    page.get_by_role("button", name="Yes, done today").click()
    page.get_by_role("link", name="Group", exact=True).click()
    page.locator(f"#item-{story.id}").get_by_role("button", name="Proud of you").click()
    expect(page.locator("#outbox")).to_contain_text("2 things are waiting to send.", timeout=wait)
    assert count_rows(session, CheckIn) == 0

    # Back online: both are sent, once.
    page.context.set_offline(False)
    expect(page.locator("#outbox")).to_contain_text("Sent. What you did offline has arrived.",
                                                    timeout=2 * wait)
    assert count_rows(session, CheckIn, col(CheckIn.done).is_(True)) == 1
    assert count_rows(session, Cheer, col(Cheer.item_id) == story.id,
                      col(Cheer.member_id) == fern.id) == 1
    page.reload()
    expect(page.locator("#outbox")).to_be_hidden(timeout=wait)
    assert count_rows(session, Cheer, col(Cheer.item_id) == story.id) == 1


@pytest.fixture
def story(session: Session, peer: User) -> FeedItem:
    with session.begin():
        return feed.post(session, author=peer, cohort_id=None, kind=ItemKind.STORY,
                         body="Sat in the sun for ten minutes.", now=utcnow())


@pytest.mark.parametrize("cpu_slowdown", [1, 4], ids=["phone", "cheap-phone-4x-cpu"])
def test_a_newcomers_whole_first_day(
        cpu_slowdown: int, tracker_server: LiveServer, phone: BrowserContext, session: Session,
        invite: Invite, story: FeedItem, google: Standin, console_errors: list[str]) -> None:
    google.configure(latency_ms=5)
    page = phone.new_page()
    if cpu_slowdown > 1:
        phone.new_cdp_session(page).send("Emulation.setCPUThrottlingRate",
                                         {"rate": cpu_slowdown})
    page.set_default_timeout(10000 * cpu_slowdown)
    _journey(page, tracker_server, session, invite, story, wait=10000 * cpu_slowdown)
    assert console_errors == []
