"""Who hears what, and when: cheers gathered, comments, milestones, crisis alerts to coaches,
quiet hours, the daily budget, the preview setting, per-kind choices, blocks and mutes; the
inbox with its unread count; subscribing a device, with bad input refused."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from sqlmodel import Session, col, func, select

from app.accounts.models import User
from app.extensions import socketio
from goals import services as goals
from goals.models import GoalSettings
from notify import services
from notify.models import (
    Delivery,
    Kind,
    Notification,
    NotificationPreference,
    NotificationState,
    PushSubscription,
    SubscriptionCreate,
    SubscriptionKeys,
)
from notify.texts import push_message
from tests.factories import api_headers, csrf_token, fresh
from tests.feed.conftest import post_story, signed_in
from wearables.services import enter_steps

pytestmark = pytest.mark.usefixtures("cohort_people")


@pytest.fixture
def cohort_people(coach: User, member: User, peer: User) -> None:
    """Coach Rosa's Morning Walkers with Sunny River and Quiet Oak."""


def _keys() -> SubscriptionKeys:
    private = ec.generate_private_key(ec.SECP256R1())
    point = private.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
    b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    return SubscriptionKeys(p256dh=b64(point), auth=b64(b"0123456789abcdef"))


def _subscribe(session: Session, user: User, endpoint: str = "https://127.0.0.1:9/push/abc") -> None:
    services.subscribe(session, member=user, data=SubscriptionCreate(endpoint=endpoint,
                                                                        keys=_keys()),
                       device="test phone", allow_http=False, now=datetime.now(UTC))
    session.commit()


def _count(session: Session, model: type, *where: object) -> int:
    return int(fresh(session).exec(select(func.count()).select_from(model).where(*where)).one())


def test_a_subscription_is_stored_and_bad_ones_are_refused(app: Flask, session: Session,
                                                           member: User) -> None:
    client = signed_in(app, "Sunny River")
    keys = _keys().model_dump()
    good = {"endpoint": "https://127.0.0.1:9/push/device-1", "keys": keys}
    assert client.post("/api/v1/push/subscriptions", json=good,
                       headers=api_headers(client)).status_code == 201
    bad = [
        {"endpoint": "not a url", "keys": keys},
        {"endpoint": "http://push.example/plain", "keys": keys},
        {"endpoint": "https://user:pw@push.example/x", "keys": keys},
        {"endpoint": "https://127.0.0.1:9/push/x", "keys": {**keys, "p256dh": "AAAA"}},
        {"endpoint": "https://127.0.0.1:9/push/x", "keys": {**keys, "auth": "!!notbase64!!"}},
        {"endpoint": "https://127.0.0.1:9/push/x"},
    ]
    for body in bad:
        response = client.post("/api/v1/push/subscriptions", json=body,
                               headers=api_headers(client))
        assert response.status_code == 400, body
    assert _count(session, PushSubscription) == 1


def test_plain_http_endpoints_only_when_allowed_outside_production(
        app: Flask, session: Session) -> None:
    app.config["PUSH_ALLOW_HTTP_ENDPOINTS"] = True
    client = signed_in(app, "Sunny River")
    body = {"endpoint": "http://127.0.0.1:9/push", "keys": _keys().model_dump()}
    assert client.post("/api/v1/push/subscriptions", json=body,
                       headers=api_headers(client)).status_code == 201


def test_someone_elses_subscription_cannot_be_removed(app: Flask, session: Session,
                                                      peer: User) -> None:
    _subscribe(session, peer)
    theirs = fresh(session).exec(select(PushSubscription)).one()
    client = signed_in(app, "Sunny River")
    assert client.delete(f"/api/v1/push/subscriptions/{theirs.id}",
                         headers=api_headers(client)).status_code == 404
    assert client.post("/api/v1/push/unsubscribe", json={"endpoint": theirs.endpoint},
                       headers=api_headers(client)).status_code == 404
    assert _count(session, PushSubscription) == 1


def test_cheers_on_one_post_are_gathered_into_one_notification(
        app: Flask, session: Session, member: User) -> None:
    item = post_story(signed_in(app, "Sunny River"))
    reader = signed_in(app, "Quiet Oak")
    for kind in ("well_done", "with_you", "proud_of_you"):
        reader.post(f"/api/v1/feed/{item}/cheers", json={"kind": kind},
                    headers=api_headers(reader))
    found = fresh(session).exec(select(Notification).where(
        col(Notification.user_id) == member.id)).all()
    assert [(n.kind, n.count, n.state) for n in found] == [("cheers", 3, "waiting")]
    author = signed_in(app, "Sunny River")
    inbox = author.get("/api/v1/inbox").get_json()
    assert inbox["unread"] == 1
    assert inbox["items"][0]["body"] == "3 peers cheered your post"
    assert 'data-inbox-count>1<' in author.get("/feed").get_data(as_text=True)


def test_a_comment_reaches_the_author_but_never_across_a_block_or_mute(
        app: Flask, session: Session, member: User, peer: User) -> None:
    sunny, quiet = signed_in(app, "Sunny River"), signed_in(app, "Quiet Oak")
    item = post_story(sunny)
    quiet.post(f"/api/v1/feed/{item}/comments", json={"body": "Lovely"},
               headers=api_headers(quiet))
    assert [n["body"] for n in sunny.get("/api/v1/inbox").get_json()["items"]] == [
        "Quiet Oak commented on your post."]
    sunny.put(f"/api/v1/members/{peer.id}/mute", headers=api_headers(sunny))
    second = post_story(sunny, "Another one")
    # Quiet Oak can still see it (a mute is one way) but Sunny River hears nothing.
    quiet.post(f"/api/v1/feed/{second}/comments", json={"body": "Again"},
               headers=api_headers(quiet))
    quiet.post(f"/api/v1/feed/{second}/cheers", json={"kind": "with_you"},
               headers=api_headers(quiet))
    assert _count(session, Notification, col(Notification.user_id) == member.id) == 1


def test_a_crisis_alert_reaches_coaches_through_quiet_hours_and_past_the_budget(
        app: Flask, session: Session, coach: User) -> None:
    _subscribe(session, coach)
    session.add(NotificationPreference(member_id=coach.id, quiet_start=0, quiet_end=23 * 60 + 59,
                                       daily_budget=0))
    session.commit()
    author = signed_in(app, "Sunny River")
    author.post("/api/v1/feed", json={"kind": "story", "body": "I want to end my life"},
                headers=api_headers(author))
    alert = fresh(session).exec(select(Notification).where(
        col(Notification.user_id) == coach.id)).one()
    assert (alert.kind, alert.urgent, alert.url) == ("crisis", True, "/moderation")
    assert alert.state in (NotificationState.QUEUED, NotificationState.SENT)
    assert _count(session, Delivery) == 1


def test_quiet_hours_hold_a_push_until_they_end_in_the_members_own_time(
        app: Flask, session: Session, member: User) -> None:
    member.timezone = "Europe/Madrid"
    session.add(member)
    session.add(NotificationPreference(member_id=member.id, quiet_start=22 * 60,
                                       quiet_end=8 * 60))
    session.commit()
    _subscribe(session, member)
    late = datetime(2026, 11, 26, 22, 30, tzinfo=UTC)  # 23:30 in Madrid
    with app.app_context():
        notification = services.notify(session, user=member, kind=Kind.COMMENTS, topic="c-1",
                                       data={"name": "Quiet Oak"}, url="/feed/1", now=late)
        session.commit()
        assert notification.state == NotificationState.WAITING
        assert notification.send_after == datetime(2026, 11, 27, 7, 0, tzinfo=UTC)  # 08:00
        assert services.release_waiting(session, now=late + timedelta(hours=1)) == 0
        assert services.release_waiting(session, now=notification.send_after) == 1
        session.commit()
    assert fresh(session).get(Notification, notification.id).state == "queued"  # type: ignore[union-attr]


def test_what_quiet_hours_outlast_expires_but_stays_in_the_inbox(
        app: Flask, session: Session, member: User) -> None:
    _subscribe(session, member)
    session.add(NotificationPreference(member_id=member.id, quiet_start=0, quiet_end=20 * 60))
    session.commit()
    start = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)
    with app.app_context():
        notification = services.notify(session, user=member, kind=Kind.COMMENTS, topic="c-2",
                                       data={"name": "Quiet Oak"}, url="/", now=start)
        services.release_waiting(session, now=start + timedelta(hours=20))
        session.commit()
    assert fresh(session).get(Notification, notification.id).state == "expired"  # type: ignore[union-attr]
    assert _count(session, Delivery) == 0


def test_the_daily_budget_keeps_the_rest_in_the_inbox(app: Flask, session: Session,
                                                      member: User) -> None:
    _subscribe(session, member)
    session.add(NotificationPreference(member_id=member.id, daily_budget=2, quiet_start=0,
                                       quiet_end=0))
    session.commit()
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    with app.app_context():
        states = [services.notify(session, user=member, kind=Kind.COMMENTS, topic=f"c-{n}",
                                  data={"name": "Quiet Oak"}, url="/", now=now).state
                  for n in range(4)]
        session.commit()
    assert states == ["queued", "queued", "inbox_only", "inbox_only"]
    assert _count(session, Notification) == 4 and _count(session, Delivery) == 2


def test_kinds_turned_off_stay_in_the_inbox_only(app: Flask, session: Session,
                                                 member: User) -> None:
    _subscribe(session, member)
    client = signed_in(app, "Sunny River")
    response = client.post("/settings/notifications", data={
        "kind_comments": "on", "quiet_start": "00:00", "quiet_end": "00:00", "daily_budget": "5",
        "nudge_at": "19:00", "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    kinds_off = fresh(session).get(NotificationPreference, member.id).kinds_off  # type: ignore[union-attr]
    assert "cheers" in kinds_off and "comments" not in kinds_off
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    with app.app_context():
        off = services.notify(session, user=member, kind=Kind.MILESTONES, topic="m-1",
                              data={"milestone": "streak_3", "streak": 3, "goal_kind": "steps"},
                              url="/", now=now)
        on = services.notify(session, user=member, kind=Kind.COMMENTS, topic="c-9",
                             data={"name": "Quiet Oak"}, url="/", now=now)
        session.commit()
    assert (off.state, on.state) == ("inbox_only", "queued")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("daily_budget", "50", "from 0 to 20"),
    ("quiet_start", "25:00", "such as 22:00"),
    ("nudge_at", "tea time", "such as 22:00"),
])
def test_bad_choices_are_refused_and_nothing_changes(app: Flask, session: Session, member: User,
                                                     field: str, value: str,
                                                     message: str) -> None:
    client = signed_in(app, "Sunny River")
    form = {"quiet_start": "22:00", "quiet_end": "08:00", "daily_budget": "5",
            "nudge_at": "19:00", "csrf_token": csrf_token(client), field: value}
    response = client.post("/settings/notifications", data=form)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert fresh(session).get(NotificationPreference, member.id) is None


def test_without_preview_the_lock_screen_shows_nothing_personal(app: Flask) -> None:
    note = Notification(user_id=1, kind="comments", topic="c", data={"name": "Quiet Oak"},
                        url="/feed/1", expires_at=datetime.now(UTC))
    with app.test_request_context():
        hidden = push_message(note, language="es", preview=False)
        shown = push_message(note, language="en", preview=True)
    assert (hidden.title, hidden.body) == ("Hearten", "Tienes ánimos esperándote.")
    assert shown.body == "Quiet Oak commented on your post."
    assert len(push_message(Notification(
        user_id=1, kind="coach", topic="x", data={"name": "C", "text": "é" * 5000}, url="/",
        expires_at=datetime.now(UTC)), language="en", preview=True).payload()) <= 2048


def test_a_coach_message_reaches_every_member_of_the_cohort(
        app: Flask, session: Session, member: User, peer: User, outsider: User) -> None:
    coach = signed_in(app, "Coach Rosa")
    response = coach.post("/coach/message", data={"cohort_id": "1", "text": "Well done this week!",
                                                  "csrf_token": csrf_token(coach)})
    assert response.status_code == 302
    for name in ("Sunny River", "Quiet Oak"):
        items = signed_in(app, name).get("/api/v1/inbox").get_json()["items"]
        assert [(i["title"], i["body"]) for i in items] == [
            ("A message from Coach Rosa", "Well done this week!")]
    assert signed_in(app, "Far Away").get("/api/v1/inbox").get_json()["items"] == []
    other = signed_in(app, "Coach Ben")
    assert other.post("/api/v1/cohorts/1/messages", json={"text": "hi"},
                      headers=api_headers(other)).status_code == 404


def test_coaches_see_who_can_get_pushes_and_how_the_last_one_went(
        app: Flask, session: Session, member: User) -> None:
    _subscribe(session, member)
    coach = signed_in(app, "Coach Rosa")
    status = coach.get("/api/v1/cohorts/1/push-status").get_json()
    assert {(s["display_name"], s["devices"]) for s in status} == {("Sunny River", 1),
                                                                  ("Quiet Oak", 0)}
    member_client = signed_in(app, "Sunny River")
    assert member_client.get("/api/v1/cohorts/1/push-status").status_code == 403


def test_opening_the_inbox_marks_it_read(app: Flask, session: Session, member: User) -> None:
    with app.app_context():
        services.notify(session, user=member, kind=Kind.TRACKER, topic="tracker-google",
                        data={}, url="/tracker", now=datetime.now(UTC))
        session.commit()
    client = signed_in(app, "Sunny River")
    page = client.get("/inbox").get_data(as_text=True)
    assert "Please connect your tracker again" in page
    assert client.get("/api/v1/inbox").get_json()["unread"] == 0


def test_the_unread_count_moves_live(app: Flask, member: User) -> None:
    author = signed_in(app, "Sunny River")
    socket = socketio.test_client(app, flask_test_client=author)
    item = post_story(author)
    reader = signed_in(app, "Quiet Oak")
    reader.post(f"/api/v1/feed/{item}/comments", json={"body": "Hi"}, headers=api_headers(reader))
    counts = [e["args"][0]["unread"] for e in socket.get_received() if e["name"] == "inbox"]
    assert counts == [1]
    author.get("/inbox")
    assert [e["args"][0]["unread"] for e in socket.get_received() if e["name"] == "inbox"] == [0]


def test_the_evening_nudge_comes_once_when_a_goal_is_within_reach(
        app: Flask, session: Session, member: User) -> None:
    evening = datetime(2026, 11, 26, 19, 5, tzinfo=UTC)  # the default nudge time, 19:00 UTC
    with app.app_context():
        goal = goals.create_goal(session, member=member, now=evening - timedelta(days=1),
                                 settings=GoalSettings(kind="steps", target=5000))
        enter_steps(session, member=member, day=evening.date(), steps=3800, client_key=None,
                    now=evening)
        session.commit()
        assert services.nudge(session, now=evening - timedelta(hours=2)) == 0  # not yet
        assert services.nudge(session, now=evening) == 1
        assert services.nudge(session, now=evening + timedelta(minutes=3)) == 0  # once a day
        session.commit()
    found = fresh(session).exec(select(Notification).where(
        col(Notification.kind) == Kind.NUDGES)).one()
    assert found.data == {"left": 1200} and found.url == f"/goals/{goal.id}"
    with app.test_request_context():
        assert push_message(found, language="en", preview=True).body == (
            "1,200 steps to go today, if you feel like a short walk.")
