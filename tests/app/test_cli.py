"""The set-up commands a deployment (or an outside test) uses instead of the demo data."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import select
from sqlmodel import Session

from app.accounts.models import Role, User
from feed.models import FeedItem
from goals.models import Goal
from tests import factories
from tests.factories import csrf_token, sign_in


def test_a_deployment_sets_itself_up_from_the_command_line(app: Flask, session: Session) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["accounts", "create-admin", "--password", "an admin passphrase"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["accounts", "create-coach", "Coach Lee"],
                           env={"HEARTEN_PASSWORD": "the coach passphrase"})
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["cohorts", "create", "Night Owls", "--coach", "coach lee"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["cohorts", "invite", "Night Owls", "--uses", "2"])
    assert result.exit_code == 0, result.output
    code = re.search(r"Code: (\w{4}-\w{4})", result.output)
    link = re.search(r"Link: (\S+)", result.output)
    assert code and link and link.group(1).endswith(code.group(1).replace("-", ""))

    roles = {u.display_name: u.role for u in factories.fresh(session).scalars(select(User))}
    assert roles == {"admin": Role.ADMIN, "Coach Lee": Role.COACH}
    client = app.test_client()
    response = client.post(f"/join/{code.group(1)}", data={
        "display_name": "Night Walker", "password": "stars over the bay",
        "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    coach_client = app.test_client()
    sign_in(coach_client, "Coach Lee", "the coach passphrase")
    assert "Night Walker" in coach_client.get("/coach").get_data(as_text=True)


def test_the_commands_refuse_bad_input_with_a_clear_message(app: Flask, session: Session) -> None:
    runner = app.test_cli_runner()
    weak = runner.invoke(args=["accounts", "create-coach", "Coach Lee", "--password", "qwerty123"])
    assert weak.exit_code != 0 and "most common" in weak.output
    missing = runner.invoke(args=["cohorts", "create", "Group", "--coach", "Nobody"])
    assert missing.exit_code != 0 and "No account is called" in missing.output
    unknown = runner.invoke(args=["cohorts", "invite", "No Such Group"])
    assert unknown.exit_code != 0 and "No cohort is called" in unknown.output
    assert factories.fresh(session).scalars(select(User)).all() == []


def test_demo_data_is_seeded_once_and_never_in_production(app: Flask, session: Session) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    assert "Coach Rosa / hearten-demo-coach" in first.output
    count = len(factories.fresh(session).scalars(select(User)).all())
    demo_goals = session.scalars(select(Goal)).all()
    assert {(g.kind, g.visibility) for g in demo_goals} == {
        ("steps", "peers"), ("habit", "peers"), ("sleep", "private")}
    posts = session.scalars(select(FeedItem).order_by(FeedItem.id)).all()
    assert [p.kind for p in posts] == ["goal_shared", "goal_shared", "tip", "story"]
    assert posts[2].pinned_at is not None and posts[3].cheer_count == 2
    second = runner.invoke(args=["demo", "seed"])
    assert second.exit_code == 0 and "Sunny River" in second.output
    assert len(factories.fresh(session).scalars(select(User)).all()) == count
    app.config["APP_ENV"] = "production"
    refused = runner.invoke(args=["demo", "seed"])
    assert refused.exit_code != 0 and "never created in production" in refused.output


def test_a_printed_reset_link_lets_a_member_back_in(app: Flask, session: Session,
                                                    member: User) -> None:
    runner = app.test_cli_runner()
    runner.invoke(args=["accounts", "create-admin", "--password", "an admin passphrase"])
    result = runner.invoke(args=["accounts", "reset-link", "Sunny River"])
    assert result.exit_code == 0, result.output
    path = re.search(r"https?://[^/]+(/reset/\S+)", result.output)
    assert path, result.output
    client = app.test_client()
    response = client.post(path.group(1), data={"password": "green tea at dawn",
                                                "csrf_token": csrf_token(client)})
    assert response.status_code == 302
