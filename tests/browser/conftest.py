"""Debian's Chromium through Playwright (no browser download), with a phone-sized screen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from tests.factories import AUTHENTICATOR, PASSWORD
from tests.live import CHROMIUM_ARGS, LiveServer, chromium_path, start_live_server
from tests.standins import CLIENT_ID, CLIENT_SECRET, Standin

PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}


def sign_in(page: Page, server: LiveServer, name: str, password: str = PASSWORD) -> None:
    """Sign in through the real pages; coaches and admins then set up their authenticator app
    on first sign-in (reading the key shown for manual entry) or type its current code."""
    page.goto(f"{server.url}/login")
    page.get_by_label("Nickname").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: urlsplit(url).path != "/login")
    path = urlsplit(page.url).path
    if path == "/settings/two-factor/setup":
        AUTHENTICATOR.enrol(name, page.locator("[data-secret]").inner_text().replace(" ", ""))
        page.get_by_label("Code from your authenticator app").fill(AUTHENTICATOR.code(name))
        page.get_by_role("button", name="Turn on two-step sign-in").click()
        codes = page.locator("[data-recovery-codes] code")
        codes.first.wait_for()
        AUTHENTICATOR.keep_recovery_codes(name, codes.all_inner_texts())
        page.get_by_role("link", name="I have saved them, continue").click()
    elif path == "/login/two-factor":
        kind, code = AUTHENTICATOR.second_factor(name)
        if kind == "recovery":
            page.get_by_role("link", name="No phone with you? Use a recovery code instead").click()
            page.get_by_label("Recovery code").fill(code)
        else:
            page.get_by_label("Code from your authenticator app").fill(code)
        page.get_by_role("button", name="Continue").click()
    else:
        return
    page.wait_for_url(lambda url: "two-factor" not in urlsplit(url).path)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def console_errors() -> list[str]:
    return []


@pytest.fixture
def phone(browser: Browser, console_errors: list[str]) -> Iterator[BrowserContext]:
    context = browser.new_context(**PHONE)  # type: ignore[arg-type]

    def watch(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    context.on("console", watch)
    context.on("page", lambda page: page.on("console", watch))
    yield context
    context.close()


@pytest.fixture
def tracker_server(database_url: str, tmp_path: Path, google: Standin) -> Iterator[LiveServer]:
    """The app under gunicorn with its job worker in-process, pointed at the Google stand-in."""
    server = start_live_server(database_url=database_url, instance=tmp_path / "live", extra_env={
        "JOBS_IMMEDIATE": "0", "JOBS_IN_PROCESS": "1",
        "GOOGLE_CLIENT_ID": CLIENT_ID, "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
        "GOOGLE_OAUTH_AUTHORIZE_URL": f"{google.url}/o/oauth2/v2/auth",
        "GOOGLE_OAUTH_TOKEN_URL": f"{google.url}/token",
        "GOOGLE_OAUTH_REVOKE_URL": f"{google.url}/revoke",
        "GOOGLE_HEALTH_API_BASE": google.url})
    yield server
    server.stop()
