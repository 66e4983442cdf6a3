"""The feed: posting, cheering, commenting and reading, with visibility and cohort isolation on
every path (page, API, live catch-up, sockets); bad input refused with nothing stored."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlmodel import Session, func, select

from app.accounts.models import User
from app.db import get_db, utcnow
from app.extensions import socketio
from feed import services as feed_services
from feed.events import CheerGiven, CommentAdded, FeedItemPosted
from feed.models import Cheer, Comment, FeedItem, ItemKind, ItemStatus
from tests.factories import api_headers, csrf_token, fresh
from tests.feed.conftest import post_story, signed_in

pytestmark = pytest.mark.usefixtures("cohort_people")


def _count(session: Session, model: type) -> int:
    return int(fresh(session).exec(select(func.count()).select_from(model)).one())


def test_a_story_reaches_the_group_and_its_coach_and_no_one_else(
        app: Flask, session: Session, outsider: User) -> None:
    author = signed_in(app, "Sunny River")
    item = post_story(author)
    for name in ("Quiet Oak", "Coach Rosa", "Sunny River"):
        reader = signed_in(app, name)
        assert "I walked to the park today." in reader.get("/feed").get_data(as_text=True)
        assert [i["id"] for i in reader.get("/api/v1/feed").get_json()["items"]] == [item]
        assert reader.get(f"/api/v1/feed/{item}").status_code == 200
    for name in ("Far Away", "Coach Ben"):
        stranger = signed_in(app, name)
        assert "I walked to the park" not in stranger.get("/feed").get_data(as_text=True)
        assert stranger.get("/api/v1/feed").get_json()["items"] == []
        assert stranger.get(f"/api/v1/feed/{item}").status_code == 404
        assert stranger.get(f"/feed/{item}").status_code == 404
        assert stranger.get(f"/api/v1/feed/{item}/comments").status_code == 404
        assert stranger.get("/api/v1/feed?after=0").get_json()["items"] == []
        cohort_of_item = author.get(f"/api/v1/feed/{item}").get_json()["cohort_id"]
        assert stranger.get(f"/api/v1/feed?cohort={cohort_of_item}").status_code == 404
        assert stranger.get(f"/feed/changes?cohort={cohort_of_item}&after=0").status_code == 404
        response = stranger.post(f"/api/v1/feed/{item}/cheers", json={"kind": "with_you"},
                                 headers=api_headers(stranger))
        assert response.status_code == 404
        response = stranger.post(f"/api/v1/feed/{item}/comments", json={"body": "hi"},
                                 headers=api_headers(stranger))
        assert response.status_code == 404
    assert (_count(session, Cheer), _count(session, Comment)) == (0, 0)


def test_live_news_goes_only_to_the_items_cohort(app: Flask, outsider: User) -> None:
    peer_socket = socketio.test_client(app, flask_test_client=signed_in(app, "Quiet Oak"))
    stranger_socket = socketio.test_client(app, flask_test_client=signed_in(app, "Far Away"))
    author = signed_in(app, "Sunny River")
    item = post_story(author)
    author.post(f"/api/v1/feed/{item}/cheers", json={"kind": "well_done"},
                headers=api_headers(author))
    heard = [e["args"][0] for e in peer_socket.get_received() if e["name"] == "feed"]
    assert [(e["seq"], e["kind"], e["item_id"]) for e in heard] == [(1, "item", item),
                                                                    (2, "cheer", item)]
    assert heard[1]["cheers"] == {"well_done": 1}
    assert [e for e in stranger_socket.get_received() if e["name"] == "feed"] == []


def test_a_cheer_resent_with_the_same_key_counts_once_and_can_be_taken_back(
        app: Flask, session: Session) -> None:
    item = post_story(signed_in(app, "Sunny River"))
    reader = signed_in(app, "Quiet Oak")
    url = f"/api/v1/feed/{item}/cheers"
    first = reader.post(url, json={"kind": "proud_of_you", "client_key": "cheer-key-0001"},
                        headers=api_headers(reader))
    again = reader.post(url, json={"kind": "proud_of_you", "client_key": "cheer-key-0001"},
                        headers=api_headers(reader))
    other_key = reader.post(url, json={"kind": "proud_of_you", "client_key": "cheer-key-0002"},
                            headers=api_headers(reader))
    assert [r.get_json()["stored"] for r in (first, again, other_key)] == [True, False, False]
    assert other_key.get_json()["cheers"] == {"proud_of_you": 1}
    second_kind = reader.post(url, json={"kind": "keep_going"}, headers=api_headers(reader))
    assert second_kind.get_json()["cheers"] == {"proud_of_you": 1, "keep_going": 1}
    undo = reader.delete(f"{url}/proud_of_you", headers=api_headers(reader))
    assert undo.get_json() == {"stored": True, "cheers": {"keep_going": 1}}
    assert _count(session, Cheer) == 1
    stored = fresh(session).get(FeedItem, item)
    assert stored is not None and stored.cheer_count == 1


def test_one_tap_on_the_page_cheers_and_a_second_tap_takes_it_back(
        app: Flask, session: Session) -> None:
    item = post_story(signed_in(app, "Sunny River"))
    reader = signed_in(app, "Quiet Oak")
    page = reader.get("/feed").get_data(as_text=True)
    assert 'aria-pressed="false">With you' in page
    data = {"kind": "with_you", "csrf_token": csrf_token(reader), "next": "/feed"}
    assert reader.post(f"/feed/{item}/cheer", data=data).status_code == 302
    page = reader.get("/feed").get_data(as_text=True)
    assert 'aria-pressed="true">With you <span class="count" data-count="with_you">1</span>' in page
    assert reader.post(f"/feed/{item}/cheer", data={**data, "undo": "1"}).status_code == 302
    assert _count(session, Cheer) == 0


@pytest.mark.parametrize(("body", "field_message"), [
    ("", "Please write something first."),
    ("   \n  ", "Please write something first."),
    ("x" * 1001, "1,000 characters or fewer"),
    ("hello\u0000there", "letters, numbers and punctuation"),
])
def test_empty_oversized_or_broken_posts_are_refused_and_nothing_is_stored(
        app: Flask, session: Session, body: str, field_message: str) -> None:
    author = signed_in(app, "Sunny River")
    response = author.post("/api/v1/feed", json={"kind": "story", "body": body},
                           headers=api_headers(author))
    assert response.status_code == 400
    assert field_message in response.get_json()["error"]["message"]
    page = author.post("/feed", data={"kind": "tip", "body": body,
                                      "csrf_token": csrf_token(author)})
    assert page.status_code == 400 and field_message in page.get_data(as_text=True)
    assert _count(session, FeedItem) == 0


def test_html_and_script_in_posts_and_comments_are_shown_as_text(app: Flask) -> None:
    author = signed_in(app, "Sunny River")
    item = post_story(author, "<script>alert(1)</script> <b>bold</b> see https://example.org/a?b=1&c=2")
    reader = signed_in(app, "Quiet Oak")
    response = reader.post(f"/api/v1/feed/{item}/comments",
                           json={"body": '<img src=x onerror="alert(2)"> thanks'},
                           headers=api_headers(reader))
    assert response.status_code == 201
    page = reader.get(f"/feed/{item}").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=" in page
    assert ('<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow noopener ugc">'
            "https://example.org/a?b=1&amp;c=2</a>") in page


def test_comments_refuse_bad_input_and_count_resends_once(app: Flask, session: Session) -> None:
    item = post_story(signed_in(app, "Sunny River"))
    reader = signed_in(app, "Quiet Oak")
    url = f"/api/v1/feed/{item}/comments"
    for body in ("", "y" * 501):
        assert reader.post(url, json={"body": body}, headers=api_headers(reader)).status_code == 400
    first = reader.post(url, json={"body": "Lovely!", "client_key": "comment-key-01"},
                        headers=api_headers(reader))
    again = reader.post(url, json={"body": "Lovely!", "client_key": "comment-key-01"},
                        headers=api_headers(reader))
    assert (first.status_code, again.status_code) == (201, 204)
    assert [c["body"] for c in reader.get(url).get_json()] == ["Lovely!"]
    assert _count(session, Comment) == 1


def test_a_post_sent_twice_with_its_key_is_shared_once(app: Flask, session: Session) -> None:
    """The offline outbox resends a post whose answer was lost: the page and the API share it
    once; a refused post frees its key for the corrected one."""
    author = signed_in(app, "Sunny River")
    form = {"kind": "story", "body": "Tea by the window.", "client_key": "post-key-0001",
            "csrf_token": csrf_token(author)}
    assert author.post("/feed", data=form).status_code == 302
    assert author.post("/feed", data=form).status_code == 302
    refused = author.post("/api/v1/feed", headers=api_headers(author),
                          json={"kind": "story", "body": "", "client_key": "post-key-0002"})
    assert refused.status_code == 400
    body = {"kind": "tip", "body": "A glass of water first thing.", "client_key": "post-key-0002"}
    first = author.post("/api/v1/feed", json=body, headers=api_headers(author))
    again = author.post("/api/v1/feed", json=body, headers=api_headers(author))
    assert (first.status_code, again.status_code) == (201, 204)
    bodies = [i.body for i in fresh(session).exec(select(FeedItem)).all()]
    assert sorted(bodies) == ["A glass of water first thing.", "Tea by the window."]
    bad_key = author.post("/api/v1/feed", headers=api_headers(author),
                          json={"kind": "story", "body": "Hello", "client_key": "no good!"})
    assert bad_key.status_code == 400 and _count(session, FeedItem) == 2


def test_unknown_reactions_and_unknown_items_get_clear_answers(app: Flask,
                                                               session: Session) -> None:
    item = post_story(signed_in(app, "Sunny River"))
    reader = signed_in(app, "Quiet Oak")
    response = reader.post(f"/api/v1/feed/{item}/cheers", json={"kind": "thumbs_down"},
                           headers=api_headers(reader))
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "kind"
    response = reader.post(f"/feed/{item}/cheer", data={"kind": "meh",
                                                         "csrf_token": csrf_token(reader)})
    assert response.status_code == 400
    response = reader.post("/api/v1/feed/9999/cheers", json={"kind": "with_you"},
                           headers=api_headers(reader))
    assert response.status_code == 404
    assert "could not find that post" in response.get_json()["error"]["message"]
    assert reader.get("/api/v1/feed?after=abc").status_code == 400
    assert _count(session, Cheer) == 0


def test_a_reader_who_missed_live_messages_catches_up_with_after(app: Flask) -> None:
    author = signed_in(app, "Sunny River")
    reader = signed_in(app, "Quiet Oak")
    first = post_story(author, "First")
    seen = reader.get("/api/v1/feed").get_json()["last_seq"]
    second = post_story(author, "Second")
    author.post(f"/api/v1/feed/{first}/cheers", json={"kind": "well_done"},
                headers=api_headers(author))
    reader.post(f"/api/v1/feed/{first}/comments", json={"body": "Hi"},
                headers=api_headers(reader))
    missed = reader.get(f"/api/v1/feed?after={seen}").get_json()
    assert [i["id"] for i in missed["items"]] == [second, first]
    assert missed["items"][1]["cheers"] == {"well_done": 1}
    assert missed["items"][1]["comment_count"] == 1
    assert missed["last_seq"] == seen + 3
    assert reader.get(f"/api/v1/feed?after={missed['last_seq']}").get_json()["items"] == []
    fragment = reader.get(f"/feed/changes?after={seen}").get_data(as_text=True)
    assert f'data-last-seq="{seen + 3}"' in fragment and 'id="item-' + str(second) in fragment


def test_scrolling_back_pages_by_twenty_with_a_cursor(app: Flask) -> None:
    author = signed_in(app, "Sunny River")
    ids = [post_story(author, f"Post {n}") for n in range(25)]
    reader = signed_in(app, "Quiet Oak")
    first = reader.get("/api/v1/feed").get_json()
    assert [i["id"] for i in first["items"]] == ids[::-1][:20]
    rest = reader.get(f"/api/v1/feed?before={first['next_before']}").get_json()
    assert [i["id"] for i in rest["items"]] == ids[::-1][20:]
    assert rest["next_before"] is None
    page = reader.get("/feed").get_data(as_text=True)
    assert page.count('class="feed-item') == 20 and "Older posts" in page


def test_a_held_post_is_seen_by_its_author_only(app: Flask, session: Session) -> None:
    author = signed_in(app, "Sunny River")
    item = post_story(author, "Having a hard day")
    held = fresh(session).get(FeedItem, item)
    assert held is not None
    held.status = ItemStatus.HELD  # as a moderator's hold will set it
    session.add(held)
    session.commit()
    assert "Shared with your coach first" in author.get("/feed").get_data(as_text=True)
    reader = signed_in(app, "Quiet Oak")
    assert reader.get("/api/v1/feed").get_json()["items"] == []
    assert reader.get(f"/api/v1/feed/{item}").status_code == 404


def test_just_reading_hides_every_prompt_to_post(app: Flask) -> None:
    member = signed_in(app, "Sunny River")
    goal = member.post("/api/v1/goals", json={"kind": "habit", "title": "Went outside",
                                              "visibility": "peers"},
                       headers=api_headers(member)).get_json()
    member.post(f"/api/v1/goals/{goal['id']}/check-ins", json={}, headers=api_headers(member))
    assert "Share today's progress" in member.get(f"/goals/{goal['id']}").get_data(as_text=True)
    assert "What would you like to share?" in member.get("/feed").get_data(as_text=True)
    member.post("/feed/settings", data={"just_reading": "yes", "csrf_token": csrf_token(member)})
    page = member.get("/feed").get_data(as_text=True)
    assert "What would you like to share?" not in page and "Just reading for now." in page
    assert "Share today's progress" not in member.get(f"/goals/{goal['id']}").get_data(
        as_text=True)
    item = member.get("/api/v1/feed").get_json()["items"][0]["id"]
    assert "Send comment" not in member.get(f"/feed/{item}").get_data(as_text=True)
    assert member.put("/api/v1/feed/settings", json={"just_reading": False},
                      headers=api_headers(member)).get_json() == {"just_reading": False}


def test_sharing_progress_needs_a_goal_shared_with_the_group(app: Flask, session: Session) -> None:
    member = signed_in(app, "Sunny River")
    private = member.post("/api/v1/goals", json={"kind": "habit", "title": "Private walk"},
                          headers=api_headers(member)).get_json()
    member.post(f"/api/v1/goals/{private['id']}/check-ins", json={}, headers=api_headers(member))
    refused = member.post(f"/api/v1/goals/{private['id']}/share", headers=api_headers(member))
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "visibility"
    assert _count(session, FeedItem) == 0
    member.patch(f"/api/v1/goals/{private['id']}", json={"visibility": "peers"},
                 headers=api_headers(member))
    shared = member.post(f"/api/v1/goals/{private['id']}/share", headers=api_headers(member))
    assert shared.status_code == 201
    assert shared.get_json()[0]["text"].startswith("done on ")
    reader = signed_in(app, "Quiet Oak")
    kinds = [i["kind"] for i in reader.get("/api/v1/feed").get_json()["items"]]
    assert kinds == ["progress", "goal_shared"]
    member.patch(f"/api/v1/goals/{private['id']}", json={"visibility": "private"},
                 headers=api_headers(member))
    assert reader.get("/api/v1/feed").get_json()["items"] == []  # hidden at once


def test_tips_that_worked_rank_by_cheers_and_coaches_pin_them(app: Flask) -> None:
    author = signed_in(app, "Sunny River")
    quiet = post_story(author, "Breathe in for four, out for six.", kind="tip")
    loved = post_story(author, "A short walk after lunch helps me.", kind="tip")
    reader = signed_in(app, "Quiet Oak")
    for kind in ("well_done", "with_you"):
        reader.post(f"/api/v1/feed/{loved}/cheers", json={"kind": kind},
                    headers=api_headers(reader))
    assert [t["id"] for t in reader.get("/api/v1/feed/tips").get_json()] == [loved, quiet]
    assert reader.put(f"/api/v1/feed/{quiet}/pin", headers=api_headers(reader)).status_code == 403
    coach = signed_in(app, "Coach Rosa")
    assert coach.put(f"/api/v1/feed/{quiet}/pin", headers=api_headers(coach)).status_code == 200
    tips = reader.get("/api/v1/feed/tips").get_json()
    assert [(t["id"], t["pinned"]) for t in tips] == [(quiet, True), (loved, False)]
    assert "Pinned by a coach" in reader.get("/feed").get_data(as_text=True)


def test_feed_events_are_published_only_after_commit(app: Flask) -> None:
    heard: list[object] = []
    bus = get_db(app).bus
    for event in (FeedItemPosted, CheerGiven, CommentAdded):
        bus.after_commit(event, heard.append)
    author = signed_in(app, "Sunny River")
    item = post_story(author)
    reader = signed_in(app, "Quiet Oak")
    reader.post(f"/api/v1/feed/{item}/cheers", json={"kind": "with_you"},
                headers=api_headers(reader))
    reader.post(f"/api/v1/feed/{item}/comments", json={"body": ""}, headers=api_headers(reader))
    reader.post(f"/api/v1/feed/{item}/comments", json={"body": "Yes!"},
                headers=api_headers(reader))
    assert [type(e).__name__ for e in heard] == ["FeedItemPosted", "CheerGiven", "CommentAdded"]


def test_posting_too_much_in_an_hour_gets_a_kind_message(app: Flask, session: Session) -> None:
    author = signed_in(app, "Sunny River")
    for n in range(30):
        post_story(author, f"Note {n}")
    response = author.post("/api/v1/feed", json={"kind": "story", "body": "One more"},
                           headers=api_headers(author))
    assert response.status_code == 429
    assert "You have shared a lot this hour" in response.get_json()["error"]["message"]
    assert _count(session, FeedItem) == 30


def test_a_reader_far_behind_catches_up_in_steps_and_loses_nothing(
        app: Flask, session: Session, member: User) -> None:
    reader = signed_in(app, "Quiet Oak")
    with app.app_context():
        for n in range(feed_services.CATCH_UP_EVENTS + 30):
            feed_services.post(session, author=member, cohort_id=None, kind=ItemKind.STORY,
                               body=f"Note {n}", now=utcnow())
        session.commit()
    seen: set[int] = set()
    after, rounds = 0, 0
    while True:
        page = reader.get(f"/api/v1/feed?after={after}").get_json()
        seen |= {i["id"] for i in page["items"]}
        after, rounds = page["last_seq"], rounds + 1
        if not page["more"]:
            break
    assert rounds == 2 and len(seen) == feed_services.CATCH_UP_EVENTS + 30


@pytest.mark.parametrize("cohort_id", ["²", "9" * 20])
def test_a_posting_form_with_a_strange_group_number_shares_to_the_members_own_group(
        app: Flask, session: Session, cohort_id: str) -> None:
    author = signed_in(app, "Sunny River")
    page = author.post("/feed", data={"kind": "story", "body": "A walk by the river.",
                                      "cohort_id": cohort_id, "csrf_token": csrf_token(author)})
    assert page.status_code in (200, 302)
    assert _count(session, FeedItem) == 1
