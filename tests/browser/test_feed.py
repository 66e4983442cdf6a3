"""In Chromium: a story posted by one member appears live on a peer's feed; the peer's one-tap
cheer shows up live on the author's page; a story shared on another app process while Redis was
away reaches the peer once it is back; the feed reads well before any script runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from app.accounts.models import User
from scripts.cluster import RedisServer
from tests.browser.conftest import PHONE
from tests.factories import PASSWORD
from tests.live import LiveServer, start_live_server

pytestmark = [pytest.mark.browser, pytest.mark.live]


def _sign_in(context: BrowserContext, server: LiveServer, name: str) -> Page:
    page = context.new_page()
    page.goto(f"{server.url}/login")
    page.get_by_label("Nickname").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Group", exact=True).click()
    expect(page.locator("body[data-socket=connected]")).to_have_count(1, timeout=15000)
    return page


def test_a_story_and_its_cheers_arrive_live(live_server: LiveServer, browser: Browser,
                                            phone: BrowserContext, member: User, peer: User,
                                            console_errors: list[str]) -> None:
    author = _sign_in(phone, live_server, "Sunny River")
    peer_context = browser.new_context(**PHONE)  # type: ignore[arg-type]
    reader = _sign_in(peer_context, live_server, "Quiet Oak")
    expect(reader.get_by_text("Nothing here yet.")).to_be_visible()

    author.get_by_label("What would you like to share?").fill("Walked to the bakery <b>today</b>.")
    author.get_by_role("button", name="Share", exact=True).click()
    expect(author.get_by_text("Shared with your group. Thank you for sharing.")).to_be_visible()

    story = reader.locator("article.feed-item").first
    expect(story).to_contain_text("Walked to the bakery <b>today</b>.", timeout=10000)  # live
    story.get_by_role("button", name="Proud of you").click()
    expect(story.get_by_role("button", name="Proud of you")).to_have_attribute(
        "aria-pressed", "true")
    mine = author.locator("article.feed-item").first
    expect(mine.locator("[data-count=proud_of_you]")).to_have_text("1", timeout=10000)  # live
    assert reader.url.endswith("/feed")  # the tap did not leave the page
    peer_context.close()
    assert console_errors == []


def test_a_story_shared_on_another_process_while_redis_was_away_reaches_the_peer_once_it_is_back(
        database_url: str, tmp_path: Path, browser: Browser, phone: BrowserContext,
        member: User, peer: User, console_errors: list[str]) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    env = {"REDIS_URL": redis.url, "JOBS_IMMEDIATE": "0", "JOBS_IN_PROCESS": "1"}
    # Two app processes: news from one reaches the other's pages only through Redis.
    servers = [start_live_server(database_url=database_url, instance=tmp_path / f"live{n}",
                                 extra_env=env) for n in (1, 2)]
    peer_context = browser.new_context(**PHONE)  # type: ignore[arg-type]
    try:
        author = _sign_in(phone, servers[0], "Sunny River")
        reader = _sign_in(peer_context, servers[1], "Quiet Oak")
        redis.stop()
        author.get_by_label("What would you like to share?").fill("Rain, so I stretched inside.")
        author.get_by_role("button", name="Share", exact=True).click()
        expect(author.get_by_text("Shared with your group. Thank you for sharing.")).to_be_visible()
        reader.wait_for_timeout(1000)
        expect(reader.get_by_text("Rain, so I stretched inside.")).to_have_count(0)  # not yet
        redis.start()
        # Nothing more is posted: the reader's process tells its pages to catch up.
        expect(reader.locator("article.feed-item").first).to_contain_text(
            "Rain, so I stretched inside.", timeout=20000)
        assert reader.url.endswith("/feed")  # no reload
    finally:
        peer_context.close()
        for server in servers:
            server.stop()
        redis.stop()
    assert console_errors == []


def test_the_feed_is_readable_without_scripts(live_server: LiveServer, browser: Browser,
                                              member: User, peer: User) -> None:
    context = browser.new_context(**PHONE, java_script_enabled=False)  # type: ignore[arg-type]
    page = context.new_page()
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Nickname").fill("Sunny River")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/feed")
    page.get_by_label("What would you like to share?").fill("A plain form works too.")
    page.get_by_role("button", name="Share", exact=True).click()
    expect(page.get_by_text("A plain form works too.")).to_be_visible()
    page.get_by_role("button", name="Well done").click()  # a plain form post, then back
    expect(page.get_by_role("button", name="Well done")).to_have_attribute("aria-pressed", "true")
    context.close()
