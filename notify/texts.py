"""Notifications in words: short, warm, in the member's language, and on a lock screen only as
much as the member allows (without "preview", just "You have encouragement waiting")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from flask_babel import force_locale, format_decimal

from app.i18n import plural as ngettext
from app.i18n import text as _
from feed.models import CheerKind
from feed.texts import CHEERS
from goals import texts as goal_texts
from goals.models import Goal
from notify.models import Kind, Notification

MAX_PAYLOAD = 2048  # bytes of plaintext: the push service's 4 KB, after encryption, with room
URGENCY = {Kind.CRISIS: "high", Kind.COACH: "normal", Kind.TRACKER: "normal",
           Kind.NUDGES: "low", Kind.CHEERS: "normal", Kind.COMMENTS: "normal",
           Kind.MILESTONES: "normal"}
TTL_SECONDS = {Kind.CRISIS: 24 * 3600, Kind.NUDGES: 3 * 3600}
DEFAULT_TTL = 12 * 3600




def _cheer(kind: str) -> str:
    try:
        return str(CHEERS[CheerKind(kind)])
    except ValueError:
        return ""


@dataclass(frozen=True)
class Words:
    title: str
    body: str


def words(notification: Notification) -> Words:
    """The notification's full words (as the inbox shows them), in the current locale."""
    data = notification.data
    kind = notification.kind
    who = str(data.get("name") or _("A former member"))  # a deleted account's name is gone
    if kind == Kind.CHEERS:
        count = notification.count
        return Words(_("Cheers for you"), ngettext(
            "%(name)s cheered your post: %(cheer)s", "%(num)d peers cheered your post",
            count, name=who, cheer=_cheer(str(data.get("cheer", "")))))
    if kind == Kind.COMMENTS:
        return Words(_("A new comment"), _("%(name)s commented on your post.", name=who))
    if kind == Kind.MILESTONES:
        goal = Goal(kind=str(data.get("goal_kind", "")), member_id=0, starts_on=date.today())
        return Words(_("A moment to celebrate"), goal_texts.milestone(
            str(data.get("milestone", "")), int(str(data.get("streak", 0))), goal))
    if kind == Kind.NUDGES:
        left = int(str(data.get("left", 0)))
        return Words(_("Nearly there"), _("%(left)s steps to go today, if you feel like a short "
                                          "walk.", left=format_decimal(left)))
    if kind == Kind.COACH:
        return Words(_("A message from %(name)s", name=who), str(data.get("text", "")))
    if kind == Kind.TRACKER:
        return Words(_("Your tracker"), _("Please connect your tracker again when you have a "
                                          "moment. Your numbers so far are safe."))
    return Words(_("Someone may need you"), _("A post in %(group)s is waiting for you in "
                                              "Moderation.", group=str(data.get("group", ""))))


@dataclass(frozen=True)
class PushMessage:
    """What a push carries: the words to show, where a tap leads, how it collapses, how urgent."""

    title: str
    body: str
    url: str
    tag: str          # the notification's topic: a newer one replaces the older on the device
    urgency: str      # very-low, low, normal or high (the Urgency header)
    ttl: int          # seconds the push service keeps it (the TTL header)

    def payload(self) -> bytes:
        """The plaintext JSON (at most MAX_PAYLOAD bytes; a long body is shortened)."""
        body = self.body
        while True:
            data = json.dumps({"title": self.title, "body": body, "url": self.url,
                               "tag": self.tag}, ensure_ascii=False).encode()
            if len(data) <= MAX_PAYLOAD:
                return data
            body = body[: max(0, len(body) - (len(data) - MAX_PAYLOAD) - 1)] + "…"


def push_message(notification: Notification, *, language: str, preview: bool) -> PushMessage:
    """The push for a notification, in the member's language. Without preview (the default),
    nothing personal shows on a lock screen; crisis alerts to coaches name no one either."""
    with force_locale(language):
        if preview and notification.kind != Kind.CRISIS:
            found = words(notification)
            title, body = found.title, found.body
        elif notification.kind == Kind.CRISIS:
            title, body = _("Hearten"), _("Someone may need you. Please open Moderation.")
        else:
            title, body = _("Hearten"), _("You have encouragement waiting.")
    kind = Kind(notification.kind)
    return PushMessage(title=title, body=body, url=notification.url, tag=notification.topic,
                       urgency=URGENCY.get(kind, "normal"),
                       ttl=TTL_SECONDS.get(kind, DEFAULT_TTL))
