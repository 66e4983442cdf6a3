"""Text answers go out gzipped to browsers that accept it, and plain to those that do not."""

from __future__ import annotations

import gzip

from flask.testing import FlaskClient

from app.accounts.models import User
from tests.factories import sign_in


def _stylesheet(client: FlaskClient) -> str:
    html = client.get("/offline").get_data(as_text=True)
    start = html.index("/static/css/app.css")
    return html[start:html.index('"', start)]


def test_a_page_and_a_stylesheet_come_gzipped_when_the_browser_accepts_it(
        client: FlaskClient, member: User) -> None:
    sign_in(client, member.display_name)
    page = client.get("/home", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert page.status_code == 200
    assert page.headers["Content-Encoding"] == "gzip"
    assert int(page.headers["Content-Length"]) == len(page.data)
    assert gzip.decompress(page.data).startswith(b"<!doctype html>")
    vary = {v.strip() for v in page.headers["Vary"].split(",")}
    assert {"Accept-Encoding", "Cookie", "Save-Data"} <= vary  # compression kept the others

    css = client.get(_stylesheet(client), headers={"Accept-Encoding": "gzip"})
    plain_css = client.get(_stylesheet(client))
    assert css.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in css.headers["Vary"]
    assert gzip.decompress(css.data) == plain_css.data
    assert len(css.data) < len(plain_css.data) / 2


def test_a_browser_that_does_not_ask_gets_plain_text(client: FlaskClient, member: User) -> None:
    sign_in(client, member.display_name)
    for headers in ({}, {"Accept-Encoding": "identity"}):
        page = client.get("/home", headers=headers)
        css = client.get(_stylesheet(client), headers=headers)
        assert "Content-Encoding" not in page.headers and "Content-Encoding" not in css.headers
        assert page.data.startswith(b"<!doctype html>")
        assert b"body" in css.data


def test_the_service_worker_comes_gzipped_and_intact(client: FlaskClient) -> None:
    plain = client.get("/sw.js")
    packed = client.get("/sw.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.headers["Service-Worker-Allowed"] == "/"
    assert gzip.decompress(packed.data) == plain.data
