"""Safety: the crisis-aware composer, reports, the moderation queue with reasons and appeals,
blocks and mutes on every path, and care notes about medication."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, func, select

from app.accounts.models import CohortMembership, CohortRole, User
from app.audit import AuditEntry
from app.extensions import socketio
from feed.models import FeedItem, ItemStatus
from feed.safety.models import Appeal, Block, Report
from tests import factories
from tests.factories import api_headers, csrf_token, fresh
from tests.feed.conftest import post_story, signed_in

pytestmark = pytest.mark.usefixtures("cohort_people")
CRISIS = "I don't want to live anymore, I keep thinking about killing myself"


def _count(session: Session, model: type) -> int:
    return int(fresh(session).exec(select(func.count()).select_from(model)).one())


def _moderation_log(session: Session) -> list[str]:
    """The audit log's moderation entries (signing in writes its own, e.g. two-factor set-up)."""
    return list(fresh(session).exec(select(AuditEntry.action).where(
        col(AuditEntry.action).startswith("moderation.")).order_by(col(AuditEntry.id))).all())


def _act(client: FlaskClient, **body: object) -> int:
    response = client.post("/api/v1/moderation/actions", json=body, headers=api_headers(client))
    assert response.status_code == 201, response.get_json()
    action_id: int = response.get_json()["id"]
    return action_id


def test_words_of_crisis_are_held_for_a_coach_and_bring_up_help_at_once(
        app: Flask, session: Session) -> None:
    coach = signed_in(app, "Coach Rosa")
    coach_socket = socketio.test_client(app, flask_test_client=coach)
    peer = signed_in(app, "Quiet Oak")
    peer_socket = socketio.test_client(app, flask_test_client=peer)
    author = signed_in(app, "Sunny River")

    screened = author.post("/api/v1/safety/screen", json={"text": CRISIS},
                           headers=api_headers(author)).get_json()
    assert screened["crisis"] is True and screened["resources"][0]["contact"] == "988"
    response = author.post("/feed", data={"kind": "story", "body": CRISIS,
                                          "csrf_token": csrf_token(author)},
                           follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "You do not have to go through this alone" in page and 'href="tel:988"' in page
    assert "goes to your coach first" in page
    item = fresh(session).exec(select(FeedItem)).one()
    assert item.status == ItemStatus.HELD

    alerts = [e["args"][0] for e in coach_socket.get_received() if e["name"] == "crisis_alert"]
    assert alerts == [{"cohort_id": item.cohort_id, "target_type": "item", "target_id": item.id,
                       "reason": "crisis_words"}]
    assert not [e for e in peer_socket.get_received() if e["name"] == "crisis_alert"]
    assert peer.get("/api/v1/feed").get_json()["items"] == []
    assert 'data-moderation-count>1<' in coach.get("/coach").get_data(as_text=True)
    queue = coach.get("/api/v1/moderation/queue").get_json()
    assert [(q["target_id"], q["held"]) for q in queue] == [(item.id, True)]

    _act(coach, kind="approve", target_type="item", target_id=item.id)
    assert [i["id"] for i in peer.get("/api/v1/feed").get_json()["items"]] == [item.id]
    assert _moderation_log(session) == ["moderation.approve"]


def test_a_comment_with_crisis_words_is_held_too(app: Flask, session: Session) -> None:
    item = post_story(signed_in(app, "Quiet Oak"))
    author = signed_in(app, "Sunny River")
    response = author.post(f"/api/v1/feed/{item}/comments", json={"body": "i want to die"},
                           headers=api_headers(author))
    assert response.status_code == 201 and response.get_json()["status"] == "held"
    reader = signed_in(app, "Quiet Oak")
    assert reader.get(f"/api/v1/feed/{item}/comments").get_json() == []
    assert reader.get(f"/api/v1/feed/{item}").get_json()["comment_count"] == 0
    assert [c["status"] for c in author.get(f"/api/v1/feed/{item}/comments").get_json()] == [
        "held"]


def test_talk_of_stopping_medication_gets_a_gentle_care_note(app: Flask) -> None:
    author = signed_in(app, "Sunny River")
    item = post_story(author, "I stopped taking my meds last week and feel fine.")
    reader = signed_in(app, "Quiet Oak")
    assert reader.get(f"/api/v1/feed/{item}").get_json()["care_note"] is True
    assert "best talked over with your care team" in reader.get("/feed").get_data(as_text=True)


def test_reports_are_anonymous_idempotent_and_three_hide_a_post_until_reviewed(
        app: Flask, session: Session, cohort: object) -> None:
    author = signed_in(app, "Sunny River")
    item = post_story(author, "You are all idiots")
    reporters = ["Quiet Oak"] + [factories.make_member(session, cohort=cohort,  # type: ignore[arg-type]
                                                       name=n).display_name
                                 for n in ("Brave Fern", "Calm Lake")]
    body = {"target_type": "item", "target_id": item, "category": "hostile", "note": "rude"}
    first = signed_in(app, reporters[0])
    assert first.post("/api/v1/reports", json=body, headers=api_headers(first)).get_json() == {
        "stored": True}
    assert first.post("/api/v1/reports", json=body, headers=api_headers(first)).get_json() == {
        "stored": False}
    assert _count(session, Report) == 1
    assert first.get("/api/v1/feed").get_json()["items"] != []
    for name in reporters[1:]:
        client = signed_in(app, name)
        client.post("/api/v1/reports", json=body, headers=api_headers(client))
    assert first.get("/api/v1/feed").get_json()["items"] == []   # hidden until reviewed
    own = author.get("/safety").get_data(as_text=True)
    assert all(name not in own for name in reporters)
    coach = signed_in(app, "Coach Rosa")
    queue = coach.get("/api/v1/moderation/queue").get_json()
    assert [(q["reports"], q["categories"]) for q in queue] == [(3, ["hostile"])]
    assert all(name not in str(queue) for name in reporters)
    _act(coach, kind="dismiss", target_type="item", target_id=item)
    assert [i["id"] for i in first.get("/api/v1/feed").get_json()["items"]] == [item]


def test_reporting_what_one_cannot_see_or_ones_own_post_is_refused(
        app: Flask, session: Session, outsider: User) -> None:
    item = post_story(signed_in(app, "Sunny River"))
    stranger = signed_in(app, "Far Away")
    for body in ({"target_type": "item", "target_id": item, "category": "spam"},
                 {"target_type": "item", "target_id": 999, "category": "spam"},
                 {"target_type": "comment", "target_id": 5, "category": "spam"},
                 {"target_type": "member", "target_id": 2, "category": "harassment"}):
        response = stranger.post("/api/v1/reports", json=body, headers=api_headers(stranger))
        assert response.status_code == 404, body
    author = signed_in(app, "Sunny River")
    response = author.post("/api/v1/reports", json={"target_type": "item", "target_id": item,
                                                    "category": "spam"},
                           headers=api_headers(author))
    assert response.status_code == 400
    response = author.post("/api/v1/reports", json={"target_type": "item", "target_id": item,
                                                    "category": "meh"},
                           headers=api_headers(author))
    assert response.status_code == 400
    assert _count(session, Report) == 0


def test_only_the_groups_coaches_and_moderators_can_moderate(
        app: Flask, session: Session, outsider: User, cohort: object) -> None:
    item = post_story(signed_in(app, "Sunny River"))
    body = {"kind": "hide", "target_type": "item", "target_id": item, "reason": "Not kind"}
    for name in ("Quiet Oak", "Coach Ben", "Far Away"):
        client = signed_in(app, name)
        response = client.post("/api/v1/moderation/actions", json=body, headers=api_headers(client))
        assert response.status_code == 403, name
    assert fresh(session).get(FeedItem, item).status == "visible"  # type: ignore[union-attr]
    moderator = factories.make_coach(session, name="Mod Kim")
    session.add(CohortMembership(cohort_id=cohort.id, user_id=moderator.id,  # type: ignore[attr-defined]
                                 role=CohortRole.MODERATOR))
    session.commit()
    kim = signed_in(app, "Mod Kim")
    _act(kim, **body)
    assert fresh(session).get(FeedItem, item).status == "hidden"  # type: ignore[union-attr]
    assert len(_moderation_log(session)) == 1


def test_a_hidden_post_tells_its_author_why_and_one_appeal_can_undo_it(
        app: Flask, session: Session) -> None:
    author = signed_in(app, "Sunny River")
    item = post_story(author, "Skip your pills, they are poison")
    coach = signed_in(app, "Coach Rosa")
    response = coach.post("/api/v1/moderation/actions", json={
        "kind": "hide", "target_type": "item", "target_id": item}, headers=api_headers(coach))
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "reason"
    action = _act(coach, kind="hide", target_type="item", target_id=item,
                  reason="Advice about medication belongs with a care team.")
    notices = author.get("/safety").get_data(as_text=True)
    assert "A post or comment of yours was hidden." in notices
    assert "Advice about medication belongs with a care team." in notices
    url = f"/api/v1/moderation/actions/{action}/appeal"
    assert author.post(url, json={"text": "I meant my own pills"},
                       headers=api_headers(author)).status_code == 201
    again = author.post(url, json={"text": "Please"}, headers=api_headers(author))
    assert again.status_code == 409 and "already asked" in again.get_json()["error"]["message"]
    assert _count(session, Appeal) == 1
    stranger = signed_in(app, "Quiet Oak")
    assert stranger.post(url, json={"text": "x"}, headers=api_headers(stranger)).status_code == 404
    appeal = fresh(session).exec(select(Appeal)).one()
    coach.post(f"/api/v1/moderation/appeals/{appeal.id}/decision",
               json={"upheld": False, "answer": "Thank you for explaining."},
               headers=api_headers(coach))
    assert fresh(session).get(FeedItem, item).status == "visible"  # type: ignore[union-attr]
    assert "undid this" in author.get("/safety").get_data(as_text=True)
    assert _moderation_log(session) == ["moderation.hide", "moderation.appeal",
                                        "moderation.appeal_decided"]


def test_a_posting_pause_stops_posts_and_comments_with_a_clear_message(
        app: Flask, session: Session, member: User) -> None:
    item = post_story(signed_in(app, "Quiet Oak"))
    coach = signed_in(app, "Coach Rosa")
    bad = coach.post("/api/v1/moderation/actions", json={
        "kind": "suspend", "target_type": "member", "target_id": member.id, "reason": "Cool off",
        "days": 0}, headers=api_headers(coach))
    assert bad.status_code == 400 and bad.get_json()["error"]["field"] == "days"
    _act(coach, kind="suspend", target_type="member", target_id=member.id,
         reason="A few days to cool off.", days=3)
    author = signed_in(app, "Sunny River")
    response = author.post("/api/v1/feed", json={"kind": "story", "body": "Hello"},
                           headers=api_headers(author))
    assert response.status_code == 403 and "paused for you until" in response.get_json()[
        "error"]["message"]
    response = author.post(f"/api/v1/feed/{item}/comments", json={"body": "Hi"},
                           headers=api_headers(author))
    assert response.status_code == 403
    assert author.get("/api/v1/feed").status_code == 200  # reading goes on
    assert _count(session, FeedItem) == 1


def test_a_post_marked_possibly_misleading_says_so_to_readers(app: Flask) -> None:
    item = post_story(signed_in(app, "Sunny River"), "Vitamin C cures depression")
    coach = signed_in(app, "Coach Rosa")
    _act(coach, kind="misleading", target_type="item", target_id=item,
         reason="Vitamins do not treat depression; talk with your care team.")
    reader = signed_in(app, "Quiet Oak")
    page = reader.get("/feed").get_data(as_text=True)
    assert "may be misleading" in page and "Vitamins do not treat depression" in page


def test_blocked_members_no_longer_see_or_reach_each_other(
        app: Flask, session: Session, member: User, peer: User) -> None:
    sunny, quiet = signed_in(app, "Sunny River"), signed_in(app, "Quiet Oak")
    theirs = post_story(quiet, "From Quiet Oak")
    mine = post_story(sunny, "From Sunny River")
    goal = quiet.post("/api/v1/goals", json={"kind": "habit", "title": "Walk", "visibility":
                                             "peers"}, headers=api_headers(quiet)).get_json()
    assert sunny.put(f"/api/v1/members/{peer.id}/block",
                     headers=api_headers(sunny)).get_json() == {"done": True}
    for viewer, hidden in ((sunny, theirs), (quiet, mine)):
        assert hidden not in [i["id"] for i in viewer.get("/api/v1/feed").get_json()["items"]]
        assert viewer.get(f"/api/v1/feed/{hidden}").status_code == 404
        assert viewer.post(f"/api/v1/feed/{hidden}/cheers", json={"kind": "with_you"},
                           headers=api_headers(viewer)).status_code == 404
        assert viewer.post(f"/api/v1/feed/{hidden}/comments", json={"body": "hey"},
                           headers=api_headers(viewer)).status_code == 404
        assert f'id="item-{hidden}"' not in viewer.get("/feed/changes?after=0").get_data(
            as_text=True)
    assert sunny.get(f"/api/v1/goals/{goal['id']}").status_code == 404
    assert sunny.get(f"/members/{peer.id}/goals").status_code == 404
    assert quiet.get(f"/api/v1/members/{member.id}/goals").status_code == 404
    assert "Quiet Oak" in sunny.get("/safety").get_data(as_text=True)
    sunny.delete(f"/api/v1/members/{peer.id}/block", headers=api_headers(sunny))
    assert sunny.get(f"/api/v1/feed/{theirs}").status_code == 200
    assert _count(session, Block) == 0


def test_a_mute_quietly_hides_one_way_only(app: Flask, peer: User) -> None:
    sunny, quiet = signed_in(app, "Sunny River"), signed_in(app, "Quiet Oak")
    theirs = post_story(quiet, "From Quiet Oak")
    mine = post_story(sunny, "From Sunny River")
    comment_on_mine = quiet.post(f"/api/v1/feed/{mine}/comments", json={"body": "Nice"},
                                 headers=api_headers(quiet))
    assert comment_on_mine.status_code == 201
    sunny.post(f"/members/{peer.id}/mute", data={"csrf_token": csrf_token(sunny)})
    assert [i["id"] for i in sunny.get("/api/v1/feed").get_json()["items"]] == [mine]
    assert sunny.get(f"/api/v1/feed/{mine}/comments").get_json() == []
    assert {i["id"] for i in quiet.get("/api/v1/feed").get_json()["items"]} == {theirs, mine}


def test_coaches_cannot_be_blocked_and_strangers_cannot_be_muted(
        app: Flask, coach: User, outsider: User) -> None:
    sunny = signed_in(app, "Sunny River")
    assert sunny.put(f"/api/v1/members/{coach.id}/block",
                     headers=api_headers(sunny)).status_code == 404
    assert sunny.put(f"/api/v1/members/{outsider.id}/mute",
                     headers=api_headers(sunny)).status_code == 404


def test_a_new_members_first_posts_can_be_held_for_review(app: Flask, session: Session) -> None:
    app.config["HOLD_NEW_MEMBER_POSTS"] = 1  # off by default; a deployment turns it on
    author = signed_in(app, "Sunny River")
    first = post_story(author, "Hello everyone, I am new here.")
    reader = signed_in(app, "Quiet Oak")
    assert reader.get("/api/v1/feed").get_json()["items"] == []
    coach = signed_in(app, "Coach Rosa")
    page = coach.get("/moderation").get_data(as_text=True)
    assert "a new member&#39;s first post" in page or "a new member's first post" in page
    _act(coach, kind="approve", target_type="item", target_id=first)
    second = post_story(author, "Second post, straight to the group.")
    assert [i["id"] for i in reader.get("/api/v1/feed").get_json()["items"]] == [second, first]
