"""`flask goals rebuild`: recompute every goal from the daily data (after a rules change)."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlmodel import col, select

from app.accounts import services as accounts
from app.accounts.models import User
from app.db import get_db, utcnow
from goals import services
from goals.models import Goal, GoalStatus

goals_cli = AppGroup("goals", help="Goals and their progress.")


@goals_cli.command("rebuild")
@click.option("--member", "member_name", default=None, help="Only this member's goals.")
def rebuild(member_name: str | None) -> None:
    """Recompute every open goal from its first day; prints how many days changed."""
    with get_db().session(write=False) as session:
        query = select(Goal.id, Goal.member_id).where(col(Goal.status) != GoalStatus.ARCHIVED)
        if member_name:
            member = accounts.find_user(session, display_name=member_name)
            if member is None:
                raise click.ClickException(f"No account is called {member_name!r}.")
            query = query.where(col(Goal.member_id) == member.id)
        goals = list(session.exec(query.order_by(col(Goal.id))))
    changed = 0
    with click.progressbar(goals, label="goals") as bar:
        for goal_id, member_id in bar:
            with get_db().transaction() as session:
                goal, owner = session.get(Goal, goal_id), session.get(User, member_id)
                if goal is not None and owner is not None:
                    changed += services.rebuild_goal(session, member=owner, goal=goal,
                                                     now=utcnow())
    click.echo(f"{len(goals)} goals rebuilt; {changed} days changed.")
