"""The delivery engine against a local push service over real HTTP: every answer a push service
gives (201, 404, 410, 413, 429, 500, 401/403, no answer at all), the VAPID signature verified and
every body decrypted, TTL/Urgency/Topic on every message, plain-http endpoints refused, and a crash
between sending and marking that the device never sees twice."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask
from sqlmodel import Session, col, select

from app.accounts.models import User
from app.config import ConfigError, load_config
from app.crypto import new_key
from app.db import get_db, utcnow
from notify import bootstrap, push
from notify.delivery import (
    CLAIM,
    MAX_RETRY_AFTER,
    DeliveryReport,
    backoff,
    deliver_due,
    next_due_at,
    retry_after,
)
from notify.models import (
    Delivery,
    DeliveryStatus,
    Kind,
    Notification,
    NotificationPreference,
    NotificationState,
    PushSubscription,
)
from notify.push import PushResult, PushSender, PushTarget, topic_for
from notify.standins.push_service import PushService, Subscription
from notify.texts import push_message
from tests.factories import fresh
from tests.live import free_port
from tests.notify.conftest import ServedPushService


@pytest.fixture
def app_config() -> dict[str, object]:
    # The stand-in listens on plain http; pushes are sent to it only because this is allowed.
    return {"PUSH_ALLOW_HTTP_ENDPOINTS": True, "PUSH_TIMEOUT_SECONDS": 5}


@pytest.fixture
def sender(app: Flask) -> PushSender:
    return push.sender(app)


def _device(session: Session, member: User, subscription: Subscription) -> PushSubscription:
    device = PushSubscription(member_id=member.id or 0, endpoint=subscription.endpoint,
                              p256dh=subscription.p256dh, auth=subscription.auth,
                              device="test phone")
    session.add(device)
    session.commit()
    return device


def _queue(session: Session, member: User, device: PushSubscription, *,
           kind: Kind = Kind.COMMENTS, topic: str = "comments-post-7",
           data: dict[str, object] | None = None, url: str = "/feed#item-7",
           expires_in: timedelta = timedelta(hours=12)) -> Delivery:
    """A queued notification and its delivery to one device, as notify's services write them."""
    now = utcnow()
    notification = Notification(user_id=member.id or 0, kind=kind, topic=topic,
                                data=data or {"name": "Quiet Oak"}, url=url,
                                urgent=kind == Kind.CRISIS, state=NotificationState.QUEUED,
                                send_after=now, expires_at=now + expires_in)
    session.add(notification)
    session.commit()
    delivery = Delivery(notification_id=notification.id or 0, subscription_id=device.id,
                        key=f"n{notification.id}-d{device.id}-v1", next_attempt_at=now)
    session.add(delivery)
    session.commit()
    return delivery


def _deliver(app: Flask, sender: push.Sender, **kwargs: object) -> DeliveryReport:
    kwargs.setdefault("now", utcnow())
    with app.app_context():
        return deliver_due(get_db(app), sender, **kwargs)  # type: ignore[arg-type]


def _reload(session: Session, delivery: Delivery) -> Delivery:
    found = fresh(session).get(Delivery, delivery.id)
    assert found is not None
    return found


def _expected(app: Flask, session: Session, delivery: Delivery, *, language: str = "en",
              preview: bool = False) -> dict[str, object]:
    notification = fresh(session).get(Notification, delivery.notification_id)
    assert notification is not None
    with app.app_context():
        found: dict[str, object] = json.loads(push_message(notification, language=language,
                                                           preview=preview).payload())
    return found


def test_a_push_reaches_the_device_signed_and_encrypted_and_is_marked_sent(
        app: Flask, session: Session, member: User, push_service: ServedPushService,
        sender: PushSender) -> None:
    subscription = push_service.subscribe(server_key=push.public_key(app))
    device = _device(session, member, subscription)
    delivery = _queue(session, member, device)

    report = _deliver(app, sender)

    assert report == DeliveryReport(claimed=1, sent=1)
    [received] = push_service.service.received(subscription.endpoint)
    assert received.status == 201
    assert received.payload == _expected(app, session, delivery)
    assert received.payload["title"] == "Hearten"  # no preview: nothing personal on a lock screen
    assert "Quiet Oak" not in json.dumps(received.payload)
    assert received.jwt_claims["aud"] == push_service.url  # the origin, port included
    assert received.jwt_claims["sub"] == "mailto:care@hearten.example"
    assert 0 < received.jwt_claims["exp"] - utcnow().timestamp() <= 24 * 3600
    assert (received.ttl, received.urgency, received.topic) == (12 * 3600, "normal",
                                                                "comments-post-7")
    stored = _reload(session, delivery)
    assert (stored.status, stored.last_status, stored.attempts) == (DeliveryStatus.SENT, 201, 1)
    assert stored.sent_at is not None and stored.claimed_until is None
    notification = session.get(Notification, delivery.notification_id)
    assert notification is not None and notification.state == NotificationState.SENT
    assert session.get(PushSubscription, device.id).last_outcome == "sent"  # type: ignore[union-attr]
    preference = session.get(NotificationPreference, member.id)
    assert preference is not None and preference.last_outcome == "sent"
    assert preference.last_outcome_at is not None
    assert _deliver(app, sender) == DeliveryReport()  # nothing is sent twice


def test_the_words_are_in_the_members_language_with_details_only_when_they_allow_it(
        app: Flask, session: Session, member: User, push_service: ServedPushService,
        sender: PushSender) -> None:
    member.language = "es"
    session.add(member)
    session.add(NotificationPreference(member_id=member.id or 0, preview=True))
    session.commit()
    subscription = push_service.subscribe()
    delivery = _queue(session, member, _device(session, member, subscription))

    assert _deliver(app, sender).sent == 1

    [received] = push_service.service.received(subscription.endpoint)
    assert received.payload == _expected(app, session, delivery, language="es", preview=True)
    assert "Quiet Oak" in received.payload["body"]
    english = _expected(app, session, delivery, language="en", preview=True)
    assert received.payload["title"] != english["title"]


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_deleted_and_its_other_deliveries_are_not_sent(
        app: Flask, session: Session, member: User, push_service: ServedPushService,
        sender: PushSender, status: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    subscription = push_service.subscribe()
    device = _device(session, member, subscription)
    first = _queue(session, member, device)
    push_service.service.answer(subscription.endpoint, status)

    device_id = device.id
    report = _deliver(app, sender, limit=1)

    assert report == DeliveryReport(claimed=1, gone=1)
    assert fresh(session).get(PushSubscription, device_id) is None
    stored = _reload(session, first)
    assert (stored.status, stored.last_status, stored.subscription_id) == (
        DeliveryStatus.GONE, status, None)
    preference = session.get(NotificationPreference, member.id)
    assert preference is not None and preference.last_outcome == "gone"
    # A delivery queued to that device before it went is closed without a push.
    second = Delivery(notification_id=first.notification_id, subscription_id=None,
                      key="n-other-v2", next_attempt_at=utcnow())
    session.add(second)
    session.commit()
    assert _deliver(app, sender) == DeliveryReport(gone=1)
    assert _reload(session, second).status == DeliveryStatus.GONE
    assert len(push_service.service.received(subscription.endpoint)) == 1
    _assert_private_logs(caplog, subscription)


def _assert_private_logs(caplog: pytest.LogCaptureFixture, subscription: Subscription) -> None:
    """Our logs name the push service's host, never the device's endpoint path or the words
    (the stand-in's own access log, as a push service's would, shows its paths)."""
    ours = "\n".join(record.getMessage() for record in caplog.records
                     if record.name != "werkzeug")
    assert "push delivery" in ours
    device_path = subscription.endpoint.rsplit("/", 1)[-1]
    assert device_path not in ours
    assert subscription.auth not in ours and subscription.p256dh not in ours
    assert "encouragement waiting" not in ours and "Quiet Oak" not in ours


def test_a_payload_too_large_fails_without_retries_and_says_so_in_the_log(
        app: Flask, session: Session, member: User, push_service: ServedPushService,
        sender: PushSender, caplog: pytest.LogCaptureFixture) -> None:
    subscription = push_service.subscribe()
    device = _device(session, member, subscription)
    delivery = _queue(session, member, device)
    push_service.service.answer(subscription.endpoint, 413)

    assert _deliver(app, sender) == DeliveryReport(claimed=1, failed=1)

    stored = _reload(session, delivery)
    assert (stored.status, stored.last_status) == (DeliveryStatus.FAILED, 413)
    assert "413" in caplog.text and "too large" in caplog.text
    assert session.get(PushSubscription, device.id).last_outcome == "failed"  # type: ignore[union-attr]
    assert session.get(NotificationPreference, member.id).last_outcome == "failed"  # type: ignore[union-attr]
    assert _deliver(app, sender, now=utcnow() + timedelta(hours=1)) == DeliveryReport()
    _assert_private_logs(caplog, subscription)


def test_too_many_requests_waits_for_retry_after_then_sends(
        app: Flask, session: Session, member: User, push_service: ServedPushService,
        sender: PushSender) -> None:
    subscription = push_service.subscribe()
    delivery = _queue(session, member, _device(session, member, subscription))
    push_service.service.answer(subscription.endpoint, 429, retry_after="120")
    now = utcnow()

    assert _deliver(app, sender, now=now) == DeliveryReport(claimed=1, retried=1)

    stored = _reload(session, delivery)
    assert (stored.status, stored.last_status) == (DeliveryStatus.PENDING, 429)
    assert stored.next_attempt_at == now + timedelta(seconds=120)
    assert stored.attempts == 0  # the push service's pace is not a failed attempt
    assert next_due_at(get_db(app)) == now + timedelta(seconds=120)
    assert _deliver(app, sender, now=now + timedelta(seconds=119)) == DeliveryReport()
    assert _deliver(app, sender, now=now + timedelta(seconds=120)).sent == 1
    assert [r.status for r in push_service.service.received(subscription.endpoint)] == [429, 201]


def test_retry_after_may_be_an_http_date_and_defaults_to_a_minute(
        app: Flask, session: Session, member: User, push_service: ServedPushService,
        sender: PushSender) -> None:
    subscription = push_service.subscribe()
    delivery = _queue(session, member, _device(session, member, subscription))
    now = (utcnow() + timedelta(seconds=1)).replace(microsecond=0)
    push_service.service.answer(subscription.endpoint, 429,
                                retry_after=format_datetime(now + timedelta(minutes=5),
                                                            usegmt=True))
    _deliver(app, sender, now=now)
    assert _reload(session, delivery).next_attempt_at == now + timedelta(minutes=5)

    push_service.service.answer(subscription.endpoint, 429, retry_after="")
    _deliver(app, sender, now=now + timedelta(minutes=5))
    assert _reload(session, delivery).next_attempt_at == now + timedelta(minutes=6)
    assert retry_after("soon", now=now) == timedelta(seconds=60)
    assert retry_after("999999999", now=now) == timedelta(days=1)


def test_server_errors_are_retried_with_back_off_then_marked_failed(
        app: Flask, session: Session, member: User, push_service: ServedPushService,
        sender: PushSender) -> None:
    subscription = push_service.subscribe()
    device = _device(session, member, subscription)
    delivery = _queue(session, member, device)
    push_service.service.answer(subscription.endpoint, default=500)
    now = utcnow()
    waits = []
    for attempt in range(1, 5):
        assert _deliver(app, sender, now=now) == DeliveryReport(claimed=1, retried=1)
        stored = _reload(session, delivery)
        assert (stored.status, stored.attempts, stored.last_status) == (
            DeliveryStatus.PENDING, attempt, 500)
        waits.append(stored.next_attempt_at - now)
        assert _deliver(app, sender, now=stored.next_attempt_at - timedelta(seconds=1)) == \
            DeliveryReport()
        now = stored.next_attempt_at
    assert waits == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert waits == [backoff(n) for n in range(1, 5)]

    assert _deliver(app, sender, now=now) == DeliveryReport(claimed=1, failed=1)

    stored = _reload(session, delivery)
    assert (stored.status, stored.attempts) == (DeliveryStatus.FAILED, 5)
    assert len(push_service.service.received(subscription.endpoint)) == 5
    assert session.get(PushSubscription, device.id).last_outcome == "failed"  # type: ignore[union-attr]
    assert session.get(NotificationPreference, member.id).last_outcome == "failed"  # type: ignore[union-attr]
    assert _deliver(app, sender, now=now + timedelta(days=1)) == DeliveryReport()


def test_a_push_service_that_does_not_answer_in_time_is_retried(
        app: Flask, session: Session, member: User, push_service: ServedPushService) -> None:
    slow = PushSender(push.keys(app), timeout=0.3, allow_http=True)
    subscription = push_service.subscribe()
    delivery = _queue(session, member, _device(session, member, subscription))
    push_service.service.answer(subscription.endpoint, latency=1.5)
    now = utcnow()

    assert _deliver(app, slow, now=now) == DeliveryReport(claimed=1, retried=1)

    stored = _reload(session, delivery)
    assert (stored.status, stored.last_status, stored.attempts) == (DeliveryStatus.PENDING,
                                                                    None, 1)
    assert stored.next_attempt_at == now + timedelta(seconds=30)
    push_service.service.answer(subscription.endpoint, latency=0.0)
    assert _deliver(app, slow, now=now + timedelta(seconds=30)).sent == 1
    slow.close()


def test_a_push_service_that_cannot_be_reached_is_retried(
        app: Flask, session: Session, member: User, sender: PushSender) -> None:
    keys = PushService().subscribe("http://127.0.0.1:1")  # a device's real keys
    unreachable = Subscription(endpoint=f"http://127.0.0.1:{free_port()}/push/nobody",
                               p256dh=keys.p256dh, auth=keys.auth)
    delivery = _queue(session, member, _device(session, member, unreachable))

    assert _deliver(app, sender) == DeliveryReport(claimed=1, retried=1)
    assert _reload(session, delivery).status == DeliveryStatus.PENDING


def test_a_vapid_key_mismatch_fails_and_names_the_cause_in_the_log(
        app: Flask, session: Session, member: User, push_service: ServedPushService,
        sender: PushSender, caplog: pytest.LogCaptureFixture) -> None:
    # The device subscribed with another server's key (the keys changed since).
    other = push.generate_keys().public_key
    subscription = push_service.subscribe(server_key=other)
    device = _device(session, member, subscription)
    delivery = _queue(session, member, device)

    assert _deliver(app, sender) == DeliveryReport(claimed=1, failed=1)

    stored = _reload(session, delivery)
    assert (stored.status, stored.last_status) == (DeliveryStatus.FAILED, 403)
    assert "VAPID" in caplog.text and "subscribe again" in caplog.text
    assert push_service.service.rejected == [
        (403, "the VAPID key is not the one this subscription was made with")]
    _assert_private_logs(caplog, subscription)


def test_ttl_urgency_and_topic_go_with_every_message(
        app: Flask, session: Session, member: User, push_service: ServedPushService,
        sender: PushSender) -> None:
    cases = [(Kind.CRISIS, "crisis-cohort-1", "high", 24 * 3600),
             (Kind.NUDGES, "nudge-2026-11-26", "low", 3 * 3600),
             (Kind.CHEERS, "cheers:post:12", "normal", 12 * 3600),
             (Kind.COACH, "coach-message-3", "normal", 12 * 3600)]
    endpoints = []
    for kind, topic, _urgency, _ttl in cases:
        subscription = push_service.subscribe()
        endpoints.append(subscription.endpoint)
        _queue(session, member, _device(session, member, subscription), kind=kind, topic=topic,
               data={"name": "Quiet Oak", "cheer": "👏", "left": 1200, "text": "Hi all",
                     "group": "Morning Walkers"})

    assert _deliver(app, sender).sent == len(cases)

    for endpoint, (_kind, topic, urgency, ttl) in zip(endpoints, cases, strict=True):
        [received] = push_service.service.received(endpoint)
        assert (received.ttl, received.urgency) == (ttl, urgency)
        assert received.topic == topic_for(topic) and received.payload["tag"] == topic
        assert received.topic is not None and len(received.topic) <= 32
    assert topic_for("cheers:post:12") != "cheers:post:12"  # a colon is not allowed in a Topic
    assert topic_for("cheers:post:12") == topic_for("cheers:post:12")


def test_a_plain_http_endpoint_is_refused_unless_allowed(
        app: Flask, session: Session, member: User, push_service: ServedPushService,
        caplog: pytest.LogCaptureFixture) -> None:
    strict = PushSender(push.keys(app), allow_http=False)
    subscription = push_service.subscribe()
    delivery = _queue(session, member, _device(session, member, subscription))

    assert _deliver(app, strict) == DeliveryReport(claimed=1, failed=1)

    assert push_service.service.received(subscription.endpoint) == []
    assert _reload(session, delivery).status == DeliveryStatus.FAILED
    assert "plain-http" in caplog.text
    production = {"APP_ENV": "production", "PUSH_ALLOW_HTTP_ENDPOINTS": True}
    assert push.sender_from_config(production, push.keys(app)).allow_http is False
    assert push.sender_from_config({"PUSH_ALLOW_HTTP_ENDPOINTS": True},
                                   push.keys(app)).allow_http is True


class Crash(Exception):
    """The sender's process dies."""


class CrashAfterSending:
    """Sends for real, then dies before the outcome can be written."""

    def __init__(self, real: PushSender) -> None:
        self.real = real

    def send_all(self, targets: Sequence[PushTarget]) -> list[PushResult]:
        self.real.send_all(targets)
        raise Crash("killed between send and mark")


def test_a_crash_between_sending_and_marking_never_shows_the_message_twice(
        app: Flask, session: Session, member: User, push_service: ServedPushService,
        sender: PushSender) -> None:
    subscription = push_service.subscribe()
    delivery = _queue(session, member, _device(session, member, subscription),
                      kind=Kind.CHEERS, topic="cheers-post-12",
                      data={"name": "Quiet Oak", "cheer": "👏"})
    now = utcnow()

    with pytest.raises(Crash):
        _deliver(app, CrashAfterSending(sender), now=now)

    stored = _reload(session, delivery)
    assert (stored.status, stored.sent_at, stored.attempts) == (DeliveryStatus.SENDING, None, 1)
    # While the dead sender's claim lasts, nobody sends it again.
    assert _deliver(app, sender, now=now + CLAIM - timedelta(seconds=1)) == DeliveryReport()
    # Once it runs out, the delivery goes again, with the same key and the same tag.
    assert _deliver(app, sender, now=now + CLAIM) == DeliveryReport(claimed=1, sent=1)

    first, second = push_service.service.received(subscription.endpoint)
    assert first.payload == second.payload and first.payload["tag"] == "cheers-post-12"
    assert first.topic == second.topic == "cheers-post-12"
    # The push service got it twice; the device, which collapses by tag, shows it once.
    assert push_service.service.shown(subscription.endpoint) == [first.payload]
    rows = list(fresh(session).exec(select(Delivery).where(
        col(Delivery.notification_id) == delivery.notification_id)))
    assert [(row.key, row.status, row.attempts) for row in rows] == [
        (delivery.key, DeliveryStatus.SENT, 2)]
    assert _deliver(app, sender, now=now + 2 * CLAIM) == DeliveryReport()


def test_two_senders_at_once_send_each_delivery_once(
        app: Flask, session: Session, member: User, push_service: ServedPushService,
        sender: PushSender) -> None:
    endpoints = []
    for n in range(20):
        subscription = push_service.subscribe()
        endpoints.append(subscription.endpoint)
        _queue(session, member, _device(session, member, subscription), topic=f"t{n}")
    reports: list[DeliveryReport] = []
    runners = [threading.Thread(target=lambda: reports.append(_deliver(app, sender, limit=15)))
               for _ in range(2)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(30)

    assert sum(report.sent for report in reports) == 20
    assert [len(push_service.service.received(e)) for e in endpoints] == [1] * 20


def test_a_notification_that_expired_while_waiting_is_not_pushed(
        app: Flask, session: Session, member: User, push_service: ServedPushService,
        sender: PushSender) -> None:
    subscription = push_service.subscribe()
    delivery = _queue(session, member, _device(session, member, subscription),
                      expires_in=timedelta(minutes=1))

    assert _deliver(app, sender, now=utcnow() + timedelta(minutes=2)) == DeliveryReport(failed=1)
    assert _reload(session, delivery).status == DeliveryStatus.FAILED
    assert push_service.service.received(subscription.endpoint) == []


def test_malformed_device_keys_fail_without_a_request(
        app: Flask, session: Session, member: User, push_service: ServedPushService,
        sender: PushSender) -> None:
    subscription = push_service.subscribe()
    broken = Subscription(endpoint=subscription.endpoint, p256dh="bm90IGEga2V5",
                          auth=subscription.auth)
    delivery = _queue(session, member, _device(session, member, broken))

    assert _deliver(app, sender) == DeliveryReport(claimed=1, failed=1)
    assert _reload(session, delivery).status == DeliveryStatus.FAILED
    assert push_service.service.received(subscription.endpoint) == []


def test_one_vapid_token_serves_a_push_service_for_hours(
        app: Flask, push_service: ServedPushService) -> None:
    clock = [1_000_000.0]
    sender = PushSender(push.keys(app), allow_http=True, clock=lambda: clock[0])
    endpoint = push_service.subscribe().endpoint
    first = sender.authorization(endpoint)
    assert sender.authorization(endpoint) == first
    clock[0] += 10 * 3600
    assert sender.authorization(endpoint) == first and sender.tokens_signed == 1
    clock[0] += 2 * 3600  # less than an hour left: a fresh one
    assert sender.authorization(endpoint) != first and sender.tokens_signed == 2
    assert sender.authorization("https://push.example/a") != sender.authorization(endpoint)
    assert push.origin_of("https://Push.Example:443/x/y") == "https://push.example"
    assert push.origin_of("http://127.0.0.1:8602/push/t") == "http://127.0.0.1:8602"


# --- keys and configuration ---


def test_outside_production_a_key_pair_is_made_once_in_instance(
        app: Flask, tmp_path: Path) -> None:
    first = push.public_key(app)
    path = tmp_path / push.VAPID_FILE
    assert path.exists() and path.stat().st_mode & 0o077 == 0
    again = push.load_keys({"INSTANCE_PATH": str(tmp_path), "APP_ENV": "development"})
    assert again.public_key == first
    raw = push.b64url_decode(first)
    assert len(raw) == 65 and raw[0] == 4  # an uncompressed P-256 point


def test_the_private_key_may_be_pem_or_base64url(tmp_path: Path) -> None:
    pair = push.generate_keys()
    config = {"INSTANCE_PATH": str(tmp_path), "VAPID_SUBJECT": "mailto:a@b.example"}
    from_raw = push.load_keys({**config, "VAPID_PRIVATE_KEY": pair.private_raw()})
    from_pem = push.load_keys({**config, "VAPID_PRIVATE_KEY": pair.private_pem().decode()})
    escaped = pair.private_pem().decode().replace("\n", "\\n")  # one line in a .env file
    from_env = push.load_keys({**config, "VAPID_PRIVATE_KEY": escaped})
    assert from_raw.public_key == from_pem.public_key == from_env.public_key == pair.public_key
    assert not (tmp_path / push.VAPID_FILE).exists()
    with pytest.raises(ConfigError, match="VAPID_PRIVATE_KEY is not a key"):
        push.load_keys({**config, "VAPID_PRIVATE_KEY": "not a key"})
    with pytest.raises(ConfigError, match="VAPID_SUBJECT must be"):
        push.load_keys({**config, "VAPID_PRIVATE_KEY": pair.private_raw(),
                        "VAPID_SUBJECT": "care@hearten.example"})


def test_production_refuses_to_start_without_vapid_keys_or_with_plain_http_allowed(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECRET_KEY", "a-production-secret-from-the-environment")
    monkeypatch.setenv("TOKEN_KEYS", new_key())
    monkeypatch.delenv("VAPID_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("VAPID_SUBJECT", raising=False)
    monkeypatch.delenv("PUSH_ALLOW_HTTP_ENDPOINTS", raising=False)
    production = {"APP_ENV": "production", "INSTANCE_PATH": str(tmp_path)}
    with pytest.raises(ConfigError, match="VAPID_PRIVATE_KEY and VAPID_SUBJECT are not set"):
        load_config(production)
    monkeypatch.setenv("VAPID_PRIVATE_KEY", push.generate_keys().private_raw())
    with pytest.raises(ConfigError, match="VAPID_SUBJECT is not set"):
        load_config(production)
    monkeypatch.setenv("VAPID_SUBJECT", "mailto:care@hearten.example")
    config = load_config(production)
    assert push.load_keys(config).subject == "mailto:care@hearten.example"
    monkeypatch.setenv("PUSH_ALLOW_HTTP_ENDPOINTS", "1")
    with pytest.raises(ConfigError, match="PUSH_ALLOW_HTTP_ENDPOINTS"):
        load_config(production)
    assert not (tmp_path / push.VAPID_FILE).exists()  # production never writes a key


def test_flask_push_keys_prints_the_public_key_or_a_new_pair(app: Flask) -> None:
    bootstrap.init_app(app)
    runner = app.test_cli_runner()
    shown = runner.invoke(args=["push", "keys"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.strip() == push.public_key(app)
    made = runner.invoke(args=["push", "keys", "--generate"])
    assert made.exit_code == 0, made.output
    line = next(ln for ln in made.output.splitlines() if ln.startswith("VAPID_PRIVATE_KEY="))
    pair = push.load_keys({"VAPID_PRIVATE_KEY": line.split("=", 1)[1],
                           "VAPID_SUBJECT": "mailto:a@b.example"})
    assert pair.public_key in made.output and pair.public_key != push.public_key(app)
    pem = pair.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert pem.startswith(b"-----BEGIN PUBLIC KEY")


@pytest.mark.parametrize(("header", "wait"), [("²", timedelta(minutes=1)),
                                              ("9" * 40, MAX_RETRY_AFTER),
                                              ("120", timedelta(minutes=2))])
def test_a_strange_retry_after_header_is_read_safely(header: str, wait: timedelta) -> None:
    assert retry_after(header, now=utcnow()) == wait
