"""What accounts do when events arrive: tell coaches about new members, close ended sessions,
stop a removed member's sockets hearing their old cohort."""

from __future__ import annotations

from app.accounts.events import MemberJoined, MemberLeftCohort, SessionsEnded
from app.events import EventBus
from app.realtime import close_session_sockets, emit_to_coaches, leave_cohort


def on_member_joined(event: MemberJoined) -> None:
    emit_to_coaches(event.cohort_id, "member_joined",
                    {"cohort_id": event.cohort_id, "user_id": event.user_id,
                     "display_name": event.display_name})


def on_sessions_ended(event: SessionsEnded) -> None:
    for session_id in event.session_ids:
        close_session_sockets(session_id)


def on_member_left_cohort(event: MemberLeftCohort) -> None:
    leave_cohort(event.user_id, event.cohort_id)


def register(bus: EventBus) -> None:
    bus.after_commit(MemberJoined, on_member_joined)
    bus.after_commit(SessionsEnded, on_sessions_ended)
    bus.after_commit(MemberLeftCohort, on_member_left_cohort)
