"""Debian's Chromium through Playwright (no browser download), with a phone-sized screen."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, sync_playwright

from tests.live import CHROMIUM_ARGS, chromium_path

PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}


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
