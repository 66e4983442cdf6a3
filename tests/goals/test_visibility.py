"""Who sees a goal: only me by default, my coach, or my peer group; a change holds at once in
pages, the API and live events."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from app.accounts.models import Cohort, User
from app.extensions import socketio
from tests import factories
from tests.factories import api_headers, csrf_token, sign_in


def _signed_in(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    sign_in(client, name)
    return client


def _goal(client: FlaskClient, visibility: str, title: str = "Went outside") -> int:
    response = client.post("/api/v1/goals", json={"kind": "habit", "title": title,
                                                  "visibility": visibility},
                           headers=api_headers(client))
    assert response.status_code == 201
    goal_id: int = response.get_json()["id"]
    return goal_id


def test_each_viewer_sees_exactly_what_the_goal_is_shared_with(
        app: Flask, session: Session, coach: User, cohort: Cohort, member: User,
        peer: User) -> None:
    other_coach = factories.make_coach(session, name="Coach Ben")
    elsewhere = factories.make_cohort(session, coach=other_coach, name="Elsewhere")
    factories.make_member(session, cohort=elsewhere, name="Far Away")
    owner = _signed_in(app, "Sunny River")
    goals = {v: _goal(owner, v, f"Goal for {v}") for v in ("private", "coach", "peers")}
    viewers = {"peer": _signed_in(app, "Quiet Oak"), "coach": _signed_in(app, "Coach Rosa"),
               "other coach": _signed_in(app, "Coach Ben"),
               "other member": _signed_in(app, "Far Away"), "owner": owner}
    allowed = {"owner": {"private", "coach", "peers"}, "coach": {"coach", "peers"},
               "peer": {"peers"}, "other coach": set(), "other member": set()}
    for who, viewer in viewers.items():
        seen = {v for v, goal_id in goals.items()
                if viewer.get(f"/api/v1/goals/{goal_id}").status_code == 200}
        assert seen == allowed[who], who
        pages = {v for v, goal_id in goals.items()
                 if viewer.get(f"/goals/{goal_id}").status_code == 200}
        assert pages == allowed[who], who
        for v, goal_id in goals.items():
            history = viewer.get(f"/api/v1/goals/{goal_id}/history")
            assert (history.status_code == 200) == (v in allowed[who]), (who, v)
        listed = viewer.get(f"/api/v1/members/{member.id}/goals")
        if who in ("other coach", "other member"):
            assert listed.status_code == 404
        else:
            assert {g["title"] for g in listed.get_json()} == {f"Goal for {v}"
                                                                for v in allowed[who]}
    shared_page = viewers["peer"].get(f"/members/{member.id}/goals").get_data(as_text=True)
    assert "Goal for peers" in shared_page and "Goal for private" not in shared_page


def test_making_a_goal_private_again_hides_it_at_once(app: Flask, member: User,
                                                      peer: User) -> None:
    owner = _signed_in(app, "Sunny River")
    goal_id = _goal(owner, "peers")
    reader = _signed_in(app, "Quiet Oak")
    assert reader.get(f"/api/v1/goals/{goal_id}").status_code == 200
    response = owner.post(f"/goals/{goal_id}/edit", data={
        "title": "Went outside", "visibility": "private", "csrf_token": csrf_token(owner)})
    assert response.status_code == 302
    assert reader.get(f"/api/v1/goals/{goal_id}").status_code == 404
    assert reader.get(f"/goals/{goal_id}").status_code == 404
    assert reader.get(f"/api/v1/members/{member.id}/goals").get_json() == []


def _feed_events(socket: object) -> list[dict[str, object]]:
    return [e["args"][0] for e in socket.get_received()  # type: ignore[attr-defined]
            if e["name"] == "feed"]


def test_a_milestone_reaches_the_group_live_only_when_the_goal_is_shared_with_it(
        app: Flask, coach: User, member: User, peer: User) -> None:
    owner = _signed_in(app, "Sunny River")
    reader = _signed_in(app, "Quiet Oak")
    peer_socket = socketio.test_client(app, flask_test_client=reader)
    own_socket = socketio.test_client(app, flask_test_client=owner)
    assert peer_socket.is_connected() and own_socket.is_connected()

    hidden = _goal(owner, "private", "Kept to myself")
    owner.post(f"/api/v1/goals/{hidden}/check-ins", json={}, headers=api_headers(owner))
    coach_only = _goal(owner, "coach", "For my coach")
    owner.post(f"/api/v1/goals/{coach_only}/check-ins", json={}, headers=api_headers(owner))
    shared = _goal(owner, "peers", "For everyone")
    owner.post(f"/api/v1/goals/{shared}/check-ins", json={}, headers=api_headers(owner))

    events = _feed_events(peer_socket)
    assert [e["seq"] for e in events] == [1, 2]  # the goal shared, then its first milestone
    feed = reader.get("/api/v1/feed").get_json()["items"]
    assert [(i["kind"], i["goal_id"]) for i in feed] == [("milestone", shared),
                                                         ("goal_shared", shared)]
    assert feed[0]["text"] == "Met this goal for the first time! (For everyone)"
    mine = [e["args"][0]["goal_id"] for e in own_socket.get_received()
            if e["name"] == "milestone"]
    assert sorted(mine) == sorted([hidden, coach_only, shared])
