"""Outside platforms played by local stand-ins on real loopback ports, and helpers to use them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server

from tests.factories import csrf_token
from tests.live import free_port
from wearables.standins.fitbit_legacy import create_fitbit_standin
from wearables.standins.google_health import create_google_standin

CLIENT_ID, CLIENT_SECRET = "hearten-test", "hearten-test-secret"


@dataclass
class Standin:
    url: str
    app: Flask
    server: BaseWSGIServer

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = requests.get(f"{self.url}/_standin/stats", timeout=5).json()
        return stats

    def configure(self, **settings: Any) -> None:
        response = requests.post(f"{self.url}/_standin/config", json=settings, timeout=5)
        assert response.status_code == 200, response.text

    def reset(self) -> None:
        requests.post(f"{self.url}/_standin/reset", timeout=5)

    def data_requests(self) -> dict[str, int]:
        """API calls by endpoint, without the OAuth ones."""
        return {k: v for k, v in self.stats()["requests"].items()
                if k not in ("authorize", "token", "revoke")}


def serve(app: Flask) -> tuple[str, BaseWSGIServer]:
    """Serve a stand-in over real HTTP on a free loopback port, in a background thread."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


@pytest.fixture
def google() -> Iterator[Standin]:
    """Google, played by the stand-in, over real HTTP on a free loopback port."""
    app = create_google_standin(seed=0, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    url, server = serve(app)
    yield Standin(url=url, app=app, server=server)
    server.shutdown()


@pytest.fixture
def fitbit() -> Iterator[Standin]:
    """The legacy Fitbit Web API, played by its stand-in, over real HTTP on a free loopback port."""
    app = create_fitbit_standin(seed=0, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    url, server = serve(app)
    yield Standin(url=url, app=app, server=server)
    server.shutdown()


def google_config(url: str) -> dict[str, object]:
    """The app's settings for a Google stand-in at `url`."""
    return {"GOOGLE_CLIENT_ID": CLIENT_ID, "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
            "GOOGLE_OAUTH_AUTHORIZE_URL": f"{url}/o/oauth2/v2/auth",
            "GOOGLE_OAUTH_TOKEN_URL": f"{url}/token", "GOOGLE_OAUTH_REVOKE_URL": f"{url}/revoke",
            "GOOGLE_HEALTH_API_BASE": url}


def fitbit_config(url: str) -> dict[str, object]:
    """The app's settings for a legacy Fitbit stand-in at `url`."""
    return {"FITBIT_CLIENT_ID": CLIENT_ID, "FITBIT_CLIENT_SECRET": CLIENT_SECRET,
            "FITBIT_AUTHORIZE_URL": f"{url}/oauth2/authorize",
            "FITBIT_TOKEN_URL": f"{url}/oauth2/token", "FITBIT_API_BASE": url}


def standin_tokens(url: str, login_hint: str = "walker") -> dict[str, Any]:
    """Tokens from a stand-in without the consent round trip (its test shortcut)."""
    grant: dict[str, Any] = requests.post(f"{url}/_standin/tokens", json={"login_hint": login_hint},
                                          timeout=5).json()
    return grant


def consent(authorize_url: str, *, allow: bool = True, login_hint: str = "") -> str:
    """Play the member on Google's consent page; returns where Google sends them back."""
    params = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    if login_hint:
        params["login_hint"] = login_hint
    page = requests.get(authorize_url, timeout=5)
    assert page.status_code == 200, page.text
    form = {**params, "granular": "1", "decision": "allow" if allow else "deny",
            "granted_scope": params["scope"].split(" ")}
    answer = requests.post(authorize_url.split("?")[0], data=form, allow_redirects=False,
                           timeout=5)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def connect_google(client: FlaskClient, *, allow: bool = True, login_hint: str = "walker") -> str:
    """Press "Connect", consent at the stand-in, follow the callback; returns the tracker page."""
    start = client.post("/tracker/connect/google", data={"csrf_token": csrf_token(client)})
    assert start.status_code == 302, start.get_data(as_text=True)
    back = consent(start.headers["Location"], allow=allow, login_hint=login_hint)
    path = back.removeprefix("http://hearten.test")
    done = client.get(path, follow_redirects=True)
    assert done.status_code == 200, done.get_data(as_text=True)
    return done.get_data(as_text=True)
