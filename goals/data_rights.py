"""Goals' share of a member's download: every goal with its pauses, check-ins and milestones, and
each goal's days as CSV. (A deleted account's goals go with its user row: every goal table
cascades from it, and feed items that pointed at a goal go first, with the feed's share.)"""

from __future__ import annotations

from sqlmodel import Session, col, select

from app.accounts.data_rights import Export, Table, stamp
from app.accounts.models import User
from goals import texts
from goals.models import CheckIn, Goal, GoalDay, GoalPause, Milestone

GOAL_DAY_COLUMNS = ("goal_id", "goal", "day", "value", "met")


def export_part(session: Session, member: User, export: Export) -> None:
    goals = list(session.exec(select(Goal).where(col(Goal.member_id) == member.id)
                              .order_by(col(Goal.id))))
    ids = [goal.id for goal in goals]
    pauses = list(session.exec(select(GoalPause).where(col(GoalPause.goal_id).in_(ids))
                               .order_by(col(GoalPause.id))))
    check_ins = list(session.exec(select(CheckIn).where(col(CheckIn.goal_id).in_(ids))
                                  .order_by(col(CheckIn.day))))
    milestones = list(session.exec(select(Milestone).where(col(Milestone.goal_id).in_(ids))
                                   .order_by(col(Milestone.id))))
    export.sections["goals"] = [{
        "id": goal.id, "goal": texts.name(goal), "kind": goal.kind, "my_words": goal.title,
        "target": goal.target, "per_week": goal.per_week, "window_minutes": goal.window_minutes,
        "who_sees_it": goal.visibility, "status": goal.status, "starts_on": stamp(goal.starts_on),
        "current_streak": goal.current_streak, "best_streak": goal.best_streak,
        "set_at": stamp(goal.created_at),
        "pauses": [{"from": stamp(p.starts_on), "until": stamp(p.ends_on)}
                   for p in pauses if p.goal_id == goal.id],
        "check_ins": [{"day": stamp(c.day), "done": c.done, "at": stamp(c.created_at)}
                      for c in check_ins if c.goal_id == goal.id],
        "milestones": [{"kind": m.kind, "reached_on": stamp(m.reached_on), "streak": m.streak}
                       for m in milestones if m.goal_id == goal.id],
    } for goal in goals]
    names = {goal.id: texts.name(goal) for goal in goals}
    export.tables["goal-days.csv"] = Table(GOAL_DAY_COLUMNS, [
        (row.goal_id, names.get(row.goal_id, ""), row.day, row.value, row.met)
        for row in session.exec(select(GoalDay).where(col(GoalDay.goal_id).in_(ids))
                                .order_by(col(GoalDay.goal_id), col(GoalDay.day)))])
