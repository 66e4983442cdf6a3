"""The outbox's engine: claim the due deliveries, push them concurrently, record what happened.

A claim (status "sending", `claimed_until`, one more attempt) is committed before anything is
sent, so two senders never send the same delivery at once (FOR UPDATE SKIP LOCKED on PostgreSQL;
SQLite's write transactions take turns). A sender that dies between sending and marking leaves
claims that run out; the next run sends those deliveries again with the same key and the same
tag, so the device replaces the first copy rather than showing a second. Marks are written only
while the claim is still ours (same status and attempt count): a late sender never overwrites a
newer one. No transaction is open while a push service is asked anything.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import and_, delete, or_, update
from sqlalchemy import select as columns
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from app.accounts.models import User
from app.db import Database
from app.metrics import PUSHES
from notify.models import (
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationPreference,
    NotificationState,
    PushSubscription,
)
from notify.push import PushResult, PushTarget, Sender, host_of
from notify.texts import PushMessage, push_message

log = logging.getLogger(__name__)

CLAIM = timedelta(minutes=10)  # longer than a batch may take; a crashed sender's claims end then
DEFAULT_LIMIT = 500
DEFAULT_MAX_ATTEMPTS = 5
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
DEFAULT_RETRY_AFTER = timedelta(seconds=60)
MAX_RETRY_AFTER = timedelta(days=1)


@dataclass
class DeliveryReport:
    """What one run did: claimed, and of those sent, gone (device unsubscribed), retried later,
    failed (given up)."""

    claimed: int = 0
    sent: int = 0
    gone: int = 0
    retried: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    attempts: int              # after this claim: the claim's token
    subscription_id: int
    member_id: int
    notification: Notification
    endpoint: str
    p256dh: str
    auth: str
    language: str
    preview: bool


@dataclass(frozen=True)
class _Outcome:
    status: str                # a DeliveryStatus
    retry_at: datetime | None = None
    undo_attempt: bool = False  # a 429 is the push service's pace, not a failed attempt


def backoff(attempts: int) -> timedelta:
    """The wait after a failed attempt: 30 s, 1 min, 2 min, … up to an hour."""
    return min(BACKOFF_MAX, BACKOFF_BASE * (1 << min(20, max(0, attempts - 1))))


def retry_after(value: str | None, *, now: datetime) -> timedelta:
    """A Retry-After header (seconds, or an HTTP date) as a wait; 60 s when absent or unreadable."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    wait: timedelta
    if value.isascii() and value.isdigit():  # "²" is a digit to isdigit, not to int
        wait = MAX_RETRY_AFTER if len(value) > 9 else timedelta(seconds=int(value))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return DEFAULT_RETRY_AFTER
        if when.tzinfo is None:
            return DEFAULT_RETRY_AFTER
        wait = when.astimezone(now.tzinfo) - now
    found: timedelta = min(MAX_RETRY_AFTER, max(timedelta(seconds=1), wait))
    return found


def _max_attempts(given: int | None) -> int:
    if given is not None:
        return given
    if has_app_context():
        return int(current_app.config.get("PUSH_MAX_ATTEMPTS") or DEFAULT_MAX_ATTEMPTS)
    return DEFAULT_MAX_ATTEMPTS


def _due(now: datetime) -> Any:
    return or_(and_(col(Delivery.status) == DeliveryStatus.PENDING,
                    col(Delivery.next_attempt_at) <= now),
               and_(col(Delivery.status) == DeliveryStatus.SENDING,
                    col(Delivery.claimed_until) <= now))


def _set(session: Session, ids: Sequence[int], **values: Any) -> None:
    """One UPDATE for many deliveries."""
    if ids:
        session.execute(update(Delivery).where(col(Delivery.id).in_(ids)).values(**values)
                        .execution_options(synchronize_session=False))


def _claim(db: Database, *, now: datetime, limit: int, report: DeliveryReport) -> list[_Job]:
    """Claim up to `limit` due deliveries in one committed transaction."""
    jobs: list[_Job] = []
    with db.transaction() as session:
        due = session.execute(
            select(Delivery.id, Delivery.notification_id, Delivery.subscription_id,
                   Delivery.attempts).where(_due(now))
            .order_by(col(Delivery.next_attempt_at), col(Delivery.id)).limit(limit)
            .with_for_update(skip_locked=True)).all()
        if not due:
            return jobs
        notifications = {n.id: n for n in session.exec(select(Notification).where(
            col(Notification.id).in_({row.notification_id for row in due})))}
        subscriptions = {row.id: row for row in session.execute(
            columns(col(PushSubscription.id), col(PushSubscription.member_id),
                    col(PushSubscription.endpoint), col(PushSubscription.p256dh),
                    col(PushSubscription.auth)).where(
                col(PushSubscription.id).in_({row.subscription_id for row in due
                                              if row.subscription_id is not None})))}
        members = {n.user_id for n in notifications.values()}
        languages = dict(session.exec(select(User.id, User.language).where(
            col(User.id).in_(members))).all())
        previews = dict(session.exec(select(NotificationPreference.member_id,
                                            NotificationPreference.preview).where(
            col(NotificationPreference.member_id).in_(members))).all())
        gone: list[int] = []
        failed: list[int] = []
        for row in due:
            notification = notifications.get(row.notification_id)
            subscription = subscriptions.get(row.subscription_id)
            if subscription is None or notification is None:
                gone.append(row.id)  # the device unsubscribed meanwhile
            elif notification.expires_at <= now:
                failed.append(row.id)
                log.info("push delivery %s expired before it could be sent", row.id)
            elif subscription.member_id != notification.user_id:
                failed.append(row.id)
                log.error("push delivery %s names another member's device; not sent", row.id)
            else:
                jobs.append(_Job(
                    delivery_id=row.id, attempts=row.attempts + 1,
                    subscription_id=subscription.id, member_id=notification.user_id,
                    notification=notification, endpoint=subscription.endpoint,
                    p256dh=subscription.p256dh, auth=subscription.auth,
                    language=languages.get(notification.user_id) or "en",
                    preview=bool(previews.get(notification.user_id, False))))
        _set(session, gone, status=DeliveryStatus.GONE, claimed_until=None)
        _set(session, failed, status=DeliveryStatus.FAILED, claimed_until=None)
        _set(session, [job.delivery_id for job in jobs], status=DeliveryStatus.SENDING,
             claimed_until=now + CLAIM, attempts=col(Delivery.attempts) + 1)
    report.claimed, report.gone, report.failed = len(jobs), len(gone), len(failed)
    PUSHES.labels(outcome="gone").inc(len(gone))
    PUSHES.labels(outcome="failed").inc(len(failed))
    return jobs


def _message(job: _Job) -> PushMessage | None:
    try:
        return push_message(job.notification, language=job.language, preview=job.preview)
    except Exception:  # one unreadable notification must not stop the batch
        log.exception("push delivery %s: its message could not be written", job.delivery_id)
        return None


def _send(sender: Sender, jobs: Sequence[_Job]) -> list[PushResult]:
    messages = [_message(job) for job in jobs]
    targets = [PushTarget(job.endpoint, job.p256dh, job.auth, message)
               for job, message in zip(jobs, messages, strict=True) if message is not None]
    sent = iter(sender.send_all(targets))
    return [next(sent) if message is not None else PushResult(None, "no message")
            for message in messages]


def _outcome(job: _Job, result: PushResult, *, now: datetime, max_attempts: int) -> _Outcome:
    """What a push service's answer means for the delivery (and logs what someone must fix)."""
    code, host = result.status, host_of(job.endpoint)
    if code is not None and 200 <= code < 300:
        return _Outcome(DeliveryStatus.SENT)
    if code in (404, 410):
        log.info("push delivery %s to %s: %s, the subscription is gone; removed it",
                 job.delivery_id, host, code)
        return _Outcome(DeliveryStatus.GONE)
    if code == 429:
        wait = retry_after(result.retry_after, now=now)
        log.info("push delivery %s to %s: 429, retrying in %d s", job.delivery_id, host,
                 wait.total_seconds())
        return _Outcome(DeliveryStatus.PENDING, retry_at=now + wait, undo_attempt=True)
    if code in (401, 403):
        log.error("push delivery %s to %s: %s, the push service refused our VAPID signature: "
                  "VAPID_PRIVATE_KEY is not the key this device subscribed with (the member must "
                  "subscribe again), or VAPID_SUBJECT is not accepted", job.delivery_id, host, code)
        return _Outcome(DeliveryStatus.FAILED)
    if code == 413:
        log.error("push delivery %s to %s: 413, the payload is too large for the push service; "
                  "not retried", job.delivery_id, host)
        return _Outcome(DeliveryStatus.FAILED)
    retryable = (code is not None and code >= 500) or result.error in ("timeout", "connection")
    if retryable and job.attempts < max_attempts:
        wait = backoff(job.attempts)
        log.info("push delivery %s to %s: %s, attempt %d of %d, retrying in %d s",
                 job.delivery_id, host, code or result.error, job.attempts, max_attempts,
                 wait.total_seconds())
        return _Outcome(DeliveryStatus.PENDING, retry_at=now + wait)
    if retryable:
        log.warning("push delivery %s to %s failed after %d attempts (last: %s)",
                    job.delivery_id, host, job.attempts, code or result.error)
    elif result.error == "insecure endpoint":
        log.warning("push delivery %s to %s: a plain-http endpoint, refused (allowed only with "
                    "PUSH_ALLOW_HTTP_ENDPOINTS, outside production)", job.delivery_id, host)
    else:
        log.warning("push delivery %s to %s failed: %s", job.delivery_id, host,
                    code or result.error)
    return _Outcome(DeliveryStatus.FAILED)


def _ensure_preferences(session: Session, member_ids: set[int]) -> None:
    """A preference row (the defaults) for members who have none, to keep their last outcome."""
    if not member_ids:
        return
    bind = session.get_bind()
    insert = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(NotificationPreference).values(
        [{"member_id": member_id} for member_id in sorted(member_ids)]).on_conflict_do_nothing())


def _mark(db: Database, jobs: Sequence[_Job], results: Sequence[PushResult], *, now: datetime,
          max_attempts: int, report: DeliveryReport) -> None:
    """Record every answer in one short transaction, for the claims that are still ours."""
    with db.transaction() as session:
        held = dict(session.execute(
            select(Delivery.id, Delivery.attempts).where(
                col(Delivery.id).in_([job.delivery_id for job in jobs]),
                col(Delivery.status) == DeliveryStatus.SENDING).with_for_update()).all())
        finished: dict[tuple[str, int | None], list[int]] = {}
        sent_notifications: set[int] = set()
        outcome_of_subscription: dict[int, str] = {}
        gone_subscriptions: set[int] = set()
        outcome_of_member: dict[int, str] = {}
        counted: list[str] = []  # for hearten_push_total, once this transaction has committed
        for job, result in zip(jobs, results, strict=True):
            if held.get(job.delivery_id) != job.attempts:
                continue  # another sender took this claim over after ours ran out
            outcome = _outcome(job, result, now=now, max_attempts=max_attempts)
            counted.append("rate_limited" if outcome.undo_attempt
                           else "retry" if outcome.status == DeliveryStatus.PENDING
                           else str(outcome.status))
            if outcome.status == DeliveryStatus.PENDING:
                _set(session, [job.delivery_id], status=DeliveryStatus.PENDING, claimed_until=None,
                     last_status=result.status, next_attempt_at=outcome.retry_at or now,
                     attempts=job.attempts - 1 if outcome.undo_attempt else job.attempts)
                report.retried += 1
                continue
            finished.setdefault((outcome.status, result.status), []).append(job.delivery_id)
            if outcome.status == DeliveryStatus.SENT:
                sent_notifications.add(job.notification.id or 0)
                outcome_of_subscription[job.subscription_id] = "sent"
                report.sent += 1
            elif outcome.status == DeliveryStatus.GONE:
                gone_subscriptions.add(job.subscription_id)
                report.gone += 1
            else:
                outcome_of_subscription.setdefault(job.subscription_id, "failed")
                report.failed += 1
            # One device reached counts for the member, whatever became of another.
            if outcome_of_member.get(job.member_id) != "sent":
                outcome_of_member[job.member_id] = (
                    "sent" if outcome.status == DeliveryStatus.SENT
                    else "gone" if outcome.status == DeliveryStatus.GONE else "failed")
        for (status, code), ids in finished.items():
            _set(session, ids, status=status, last_status=code, claimed_until=None,
                 **({"sent_at": now} if status == DeliveryStatus.SENT else {}))
        if sent_notifications:
            session.execute(update(Notification)
                            .where(col(Notification.id).in_(sent_notifications))
                            .values(state=NotificationState.SENT)
                            .execution_options(synchronize_session=False))
        for outcome_name in ("sent", "failed"):
            ids = [sid for sid, found in outcome_of_subscription.items()
                   if found == outcome_name and sid not in gone_subscriptions]
            if ids:
                session.execute(update(PushSubscription)
                                .where(col(PushSubscription.id).in_(ids))
                                .values(last_outcome=outcome_name, last_outcome_at=now)
                                .execution_options(synchronize_session=False))
        if gone_subscriptions:
            # Its other deliveries keep a NULL device (the foreign key): they end as gone.
            session.execute(delete(PushSubscription)
                            .where(col(PushSubscription.id).in_(gone_subscriptions))
                            .execution_options(synchronize_session=False))
        _ensure_preferences(session, set(outcome_of_member))
        for outcome_name in ("sent", "failed", "gone"):
            member_ids = [m for m, found in outcome_of_member.items() if found == outcome_name]
            if member_ids:
                session.execute(update(NotificationPreference)
                                .where(col(NotificationPreference.member_id).in_(member_ids))
                                .values(last_outcome=outcome_name, last_outcome_at=now)
                                .execution_options(synchronize_session=False))
    for outcome_name in counted:
        PUSHES.labels(outcome=outcome_name).inc()


def deliver_due(db: Database, sender: Sender, *, now: datetime, limit: int = DEFAULT_LIMIT,
                max_attempts: int | None = None) -> DeliveryReport:
    """Send up to `limit` due deliveries (pending and due, or claimed by a sender whose claim ran
    out) and record each outcome. Run inside the app context: the words are translated."""
    report = DeliveryReport()
    jobs = _claim(db, now=now, limit=limit, report=report)
    if not jobs:
        return report
    results = _send(sender, jobs)
    _mark(db, jobs, results, now=now, max_attempts=_max_attempts(max_attempts), report=report)
    return report


def next_due_at(db: Database) -> datetime | None:
    """When the earliest waiting delivery (a retry, or a claim that may run out) falls due."""
    with db.session(write=False) as session:
        pending = session.exec(select(Delivery.next_attempt_at)
                               .where(col(Delivery.status) == DeliveryStatus.PENDING)
                               .order_by(col(Delivery.next_attempt_at)).limit(1)).first()
        claimed = session.exec(select(Delivery.claimed_until)
                               .where(col(Delivery.status) == DeliveryStatus.SENDING)
                               .order_by(col(Delivery.claimed_until)).limit(1)).first()
    found = [when for when in (pending, claimed) if when is not None]
    return min(found) if found else None
