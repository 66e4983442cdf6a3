"""The installable shell: manifest, icons, service worker, offline page."""

from __future__ import annotations

import json
import re

from flask.testing import FlaskClient


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
