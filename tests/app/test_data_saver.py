"""Data saver: the browser's `Save-Data: on`, or the setting on a device, makes pages smaller and
still (no live socket; a refresh link instead), and it holds across sign-ins on that device."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from app.accounts.models import Cohort, User
from app.db import utcnow
from feed import services as feed
from feed.models import ItemKind
from tests.factories import csrf_token, sign_in


def _posts(session: Session, author: User, cohort: Cohort, count: int) -> None:
    for n in range(count):
        feed.post(session, author=author, cohort_id=cohort.id, kind=ItemKind.STORY,
                  body=f"A short walk, number {n + 1}.", now=utcnow())
    session.commit()


def test_save_data_makes_the_group_page_smaller_and_still(
        client: FlaskClient, session: Session, member: User, peer: User,
        cohort: Cohort) -> None:
    _posts(session, peer, cohort, 15)
    sign_in(client, member.display_name)

    usual = client.get("/feed")
    assert usual.get_data(as_text=True).count('class="feed-item') == 15
    assert 'data-saver="on"' not in usual.get_data(as_text=True)
    assert "Save-Data" in usual.headers["Vary"]

    saving = client.get("/feed", headers={"Save-Data": "on"})
    html = saving.get_data(as_text=True)
    assert html.count('class="feed-item') == 10
    assert 'data-saver="on"' in html  # app.js then leaves the live socket out
    assert "this page does not update by itself" in html
    assert len(html.encode()) < len(usual.get_data())
    link = html.split("Older posts")[0].rsplit('href="', 1)[1].split('"')[0]
    older = client.get(link.replace("&amp;", "&"), headers={"Save-Data": "on"})
    assert older.get_data(as_text=True).count('class="feed-item') == 5


def test_the_data_saver_setting_holds_on_this_device_across_sign_ins(
        app: Flask, client: FlaskClient, member: User) -> None:
    sign_in(client, member.display_name)
    response = client.post("/settings/data-saver", data={
        "data_saver": "on", "next": "/settings/sessions", "csrf_token": csrf_token(client)})
    assert response.status_code == 302 and response.headers["Location"] == "/settings/sessions"
    page = client.get("/settings/sessions").get_data(as_text=True)
    assert "Data saver is on for this device" in page and 'data-saver="on"' in page

    client.post("/logout", data={"csrf_token": csrf_token(client)})
    client.set_cookie("session", "", domain="localhost")  # nothing survives a cleared cookie
    sign_in(client, member.display_name)
    assert 'data-saver="on"' not in client.get("/home").get_data(as_text=True)

    other = app.test_client()
    sign_in(other, member.display_name)
    other.post("/settings/data-saver", data={"data_saver": "on",
                                             "csrf_token": csrf_token(other)})
    sign_in(other, member.display_name)  # signing in again on this device keeps the choice
    assert 'data-saver="on"' in other.get("/home").get_data(as_text=True)
    other.post("/settings/data-saver", data={"csrf_token": csrf_token(other)})
    assert 'data-saver="on"' not in other.get("/home").get_data(as_text=True)
