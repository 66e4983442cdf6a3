"""What safety does when events arrive: an urgent alert to the cohort's coaches and moderators
(a badge and a live message now; a push that ignores quiet hours once notifications exist)."""

from __future__ import annotations

from app.events import EventBus
from app.realtime import emit_to_coaches
from feed.events import CrisisFlagged


def on_crisis_flagged(event: CrisisFlagged) -> None:
    # No words of the post travel: coaches open the moderation queue to read it.
    emit_to_coaches(event.cohort_id, "crisis_alert", {
        "cohort_id": event.cohort_id, "target_type": event.target_type,
        "target_id": event.target_id, "reason": event.reason})


def register(bus: EventBus) -> None:
    bus.after_commit(CrisisFlagged, on_crisis_flagged)
