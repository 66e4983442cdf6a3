"""The installable shell: manifest, icons, service worker, offline page."""

from __future__ import annotations

import json
import re

from flask.testing import FlaskClient

from app.accounts.models import User
from tests.factories import csrf_token, sign_in


def test_the_manifest_makes_the_app_installable(client: FlaskClient) -> None:
    response = client.get("/manifest.webmanifest")
    assert response.mimetype == "application/manifest+json"
    manifest = response.get_json()
    assert manifest["name"] == "Hearten" and manifest["display"] == "standalone"
    assert manifest["start_url"].startswith("/")
    icons = {(icon["sizes"], icon.get("purpose", "any")): icon["src"] for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= set(icons)
    for src in icons.values():
        image = client.get(src)
        assert image.status_code == 200 and image.data.startswith(b"\x89PNG")


def test_the_service_worker_precaches_the_shell_under_a_versioned_cache(
        client: FlaskClient) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    source = response.get_data(as_text=True)
    version = re.search(r'const VERSION = "([0-9a-f]{12})"', source)
    assert version, "the version is filled in"
    precache = json.loads(re.search(r"const PRECACHE = (\[.*?\]);", source).group(1))  # type: ignore[union-attr]
    assert "/offline" in precache
    for url in precache:
        assert client.get(url).status_code == 200, url
    assert "caches.delete" in source  # old caches go on activate


def test_the_offline_page_holds_nothing_personal(client: FlaskClient) -> None:
    html = client.get("/offline").get_data(as_text=True)
    assert "You are offline" in html
    assert "csrf" not in html and "Sign out" not in html


def test_the_manifest_offers_shortcuts_to_check_in_and_to_the_group(client: FlaskClient) -> None:
    shortcuts = client.get("/manifest.webmanifest").get_json()["shortcuts"]
    assert [(s["short_name"], s["url"]) for s in shortcuts] == [
        ("Check in", "/goals?source=shortcut"), ("Group", "/feed?source=shortcut")]
    assert all(s["icons"] and s["icons"][0]["sizes"] == "192x192" for s in shortcuts)


def test_pages_say_who_they_were_made_for_and_signing_out_clears_the_phone(
        client: FlaskClient, member: User, peer: User) -> None:
    """The service worker keeps last-seen pages only while the same member is signed in (an
    opaque tag on each page), and the sign-out answer clears the phone's storage."""
    assert client.get("/login").headers["X-Hearten-Viewer"] == "none"
    sign_in(client, "Sunny River")
    mine = client.get("/feed").headers["X-Hearten-Viewer"]
    assert mine != "none" and len(mine) == 24  # an HMAC, not the member's id
    assert client.get("/goals").headers["X-Hearten-Viewer"] == mine
    answer = client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert answer.headers["Clear-Site-Data"] == '"storage"'
    sign_in(client, "Quiet Oak")
    assert client.get("/feed").headers["X-Hearten-Viewer"] not in ("none", mine)
