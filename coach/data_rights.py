"""The coach view's share of a member's download: their days as the group figures count them.

(A deleted account leaves its cohorts first, so that `MemberLeftCohort` takes its days out of
every cohort's days; its own day rows then go with the user row, and research exports, which
read only current members who agree, no longer hold it.)"""

from __future__ import annotations

from sqlmodel import Session, col, select

from app.accounts.data_rights import Export, Table
from app.accounts.models import User
from coach.models import MemberDay, MemberPulse

DAY_COLUMNS = ("day", "steps", "sleep_minutes", "tracker", "goals_shared", "goals_met", "posts",
               "cheers", "comments", "check_ins")


def export_part(session: Session, member: User, export: Export) -> None:
    rows = [(row.day, row.steps, row.sleep_minutes, row.tracker, row.goals_total, row.goals_met,
             row.posts, row.cheers, row.comments, row.check_ins)
            for row in session.exec(select(MemberDay).where(col(MemberDay.member_id) == member.id)
                                    .order_by(col(MemberDay.day)))]
    if rows:
        export.tables["daily-summary.csv"] = Table(DAY_COLUMNS, rows)
    pulse = session.get(MemberPulse, member.id)
    export.sections["last_active_on"] = (pulse.last_active_on.isoformat()
                                         if pulse and pulse.last_active_on else None)
