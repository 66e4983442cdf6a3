"""Realtime: sockets need a live session, join their cohort's rooms, and only hear committed news."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
import socketio
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlmodel import Session

from app import realtime
from app.accounts.models import Cohort, Invite, User, UserSession
from app.db import utcnow
from app.extensions import socketio as server_socketio
from tests import factories
from tests.factories import PASSWORD, csrf_token, sign_in
from tests.live import LiveServer, api_sign_in


def _join(client: FlaskClient, code: str, name: str) -> int:
    response = client.post(f"/join/{code}", data={
        "display_name": name, "password": "tea in the garden", "csrf_token": csrf_token(client)})
    return response.status_code


def test_a_socket_without_a_session_is_refused(app: Flask, client: FlaskClient) -> None:
    socket = server_socketio.test_client(app, flask_test_client=client)
    assert not socket.is_connected()


def test_a_signed_in_coach_hears_when_someone_joins_their_cohort(
        app: Flask, client: FlaskClient, invite: Invite, coach: User) -> None:
    sign_in(client, "Coach Rosa")
    socket = server_socketio.test_client(app, flask_test_client=client)
    assert socket.is_connected()
    assert _join(app.test_client(), invite.code, "Brave Fern") == 302
    events = [e for e in socket.get_received() if e["name"] == "member_joined"]
    assert [e["args"][0]["display_name"] for e in events] == ["Brave Fern"]


def test_a_join_that_fails_broadcasts_nothing(app: Flask, client: FlaskClient, invite: Invite,
                                              coach: User, member: User) -> None:
    sign_in(client, "Coach Rosa")
    socket = server_socketio.test_client(app, flask_test_client=client)
    assert _join(app.test_client(), invite.code, "Sunny River") == 409  # the name is taken
    assert [e for e in socket.get_received() if e["name"] == "member_joined"] == []


def test_another_cohorts_coach_hears_nothing(app: Flask, client: FlaskClient, session: Session,
                                             invite: Invite) -> None:
    other = factories.make_coach(session, name="Coach Ben")
    factories.make_cohort(session, coach=other, name="Elsewhere")
    sign_in(client, "Coach Ben")
    socket = server_socketio.test_client(app, flask_test_client=client)
    assert _join(app.test_client(), invite.code, "Brave Fern") == 302
    assert socket.get_received() == []


# --- against the app under real gunicorn, with the python-socketio client ---


def _signed_in_http(server: LiveServer, name: str, password: str = PASSWORD) -> requests.Session:
    http = requests.Session()
    response = api_sign_in(http, server.url, name, password)
    assert response.status_code == 200, response.text
    http.headers["X-CSRFToken"] = http.get(f"{server.url}/api/v1/csrf-token",
                                           timeout=5).json()["csrf_token"]
    return http


def _cookie_header(http: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


@pytest.fixture
def live_socket_factory(live_server: LiveServer) -> Iterator[list[socketio.Client]]:
    clients: list[socketio.Client] = []
    yield clients
    for client in clients:
        client.disconnect()


@pytest.mark.live
def test_a_live_socket_without_a_session_is_refused(live_server: LiveServer) -> None:
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(live_server.url, transports=["websocket"], wait_timeout=5)
    forged = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        forged.connect(live_server.url, headers={"Cookie": "hearten=forged.value.here"},
                       transports=["websocket"], wait_timeout=5)


@pytest.mark.live
def test_live_sockets_under_gunicorn_hear_joins_and_their_own_sign_out(
        live_server: LiveServer, invite: Invite, cohort: Cohort, coach: User,
        live_socket_factory: list[socketio.Client]) -> None:
    coach_http = _signed_in_http(live_server, "Coach Rosa")
    joined = threading.Event()
    signed_out = threading.Event()
    names: list[str] = []
    client = socketio.Client(reconnection=False)
    live_socket_factory.append(client)

    @client.on("member_joined")
    def _on_join(data: dict[str, object]) -> None:
        names.append(str(data["display_name"]))
        joined.set()

    @client.on("signed_out")
    def _on_signed_out(data: object) -> None:
        signed_out.set()

    client.connect(live_server.url, headers={"Cookie": _cookie_header(coach_http)},
                   transports=["websocket"], wait_timeout=5)
    newcomer = requests.Session()
    token = newcomer.get(f"{live_server.url}/api/v1/csrf-token", timeout=5).json()["csrf_token"]
    response = newcomer.post(f"{live_server.url}/api/v1/join", json={
        "code": invite.code, "display_name": "Live Wren", "password": "tea in the garden",
        "timezone": "UTC", "language": "en"}, headers={"X-CSRFToken": token}, timeout=10)
    assert response.status_code == 201, response.text
    assert joined.wait(5) and names == ["Live Wren"]

    assert coach_http.post(f"{live_server.url}/api/v1/logout", timeout=5).status_code == 204
    assert signed_out.wait(5)


def test_sockets_of_a_timed_out_session_are_closed_by_the_sweep(
        app: Flask, client: FlaskClient, session: Session, coach: User) -> None:
    sign_in(client, "Coach Rosa")
    socket = server_socketio.test_client(app, flask_test_client=client)
    assert socket.is_connected()
    with app.app_context():
        assert realtime.sweep_sockets() == 0
        session.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(hours=2)))
        session.commit()
        assert realtime.sweep_sockets() == 1
    assert not socket.is_connected()


@pytest.mark.live
def test_a_socket_that_ignores_signed_out_is_closed_by_the_server(
        live_server: LiveServer, coach: User, live_socket_factory: list[socketio.Client]) -> None:
    coach_http = _signed_in_http(live_server, "Coach Rosa")
    closed = threading.Event()
    client = socketio.Client(reconnection=False)
    live_socket_factory.append(client)
    client.on("disconnect", lambda *args: closed.set())
    client.connect(live_server.url, headers={"Cookie": _cookie_header(coach_http)},
                   transports=["websocket"], wait_timeout=5)
    assert coach_http.post(f"{live_server.url}/api/v1/logout", timeout=5).status_code == 204
    assert closed.wait(5), "the server closed the socket itself"
