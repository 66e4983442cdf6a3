"""With data saver on, Chromium opens no live socket on the group page (a refresh link instead);
without it, the page goes live as usual."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from app.accounts.models import User
from tests.browser.conftest import PHONE, sign_in
from tests.live import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.mark.parametrize("saving", [True, False])
def test_the_group_page_goes_live_only_without_data_saver(
        live_server: LiveServer, browser: Browser, member: User, saving: bool) -> None:
    headers = {"Save-Data": "on"} if saving else {}
    context = browser.new_context(**PHONE, extra_http_headers=headers)  # type: ignore[arg-type]
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    sign_in(page, live_server, member.display_name)
    page.goto(f"{live_server.url}/feed")
    page.wait_for_load_state("load")
    if saving:
        expect(page.get_by_role("link", name="Refresh")).to_be_visible()
        page.wait_for_timeout(1500)
        assert not [url for url in requested if "socket.io" in url or "live.js" in url]
    else:
        page.wait_for_timeout(1500)
        assert any("socket.io" in url for url in requested)
    context.close()
