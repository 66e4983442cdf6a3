"""Setting, changing, pausing and checking in on goals, through the pages and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, col, func, select

from app.accounts.models import Cohort, User
from app.db import utcnow
from goals.models import CheckIn, Goal, GoalPause, GoalTemplate
from tests import factories
from tests.factories import api_headers, csrf_token, fresh, sign_in


def _count(session: Session, model: type) -> int:
    return int(fresh(session).exec(select(func.count()).select_from(model)).one())


def _create(client: FlaskClient, **body: object) -> dict:
    response = client.post("/api/v1/goals", json=body, headers=api_headers(client))
    assert response.status_code == 201, response.get_json()
    data: dict = response.get_json()
    return data


def test_a_member_sets_a_steps_goal_in_a_few_steps_and_sees_it_on_the_list(
        client: FlaskClient, member: User, session: Session) -> None:
    sign_in(client, "Sunny River")
    choose = client.get("/goals/new").get_data(as_text=True)
    assert "Steps each day" in choose and "A daily habit" in choose
    form = client.get("/goals/new/steps").get_data(as_text=True)
    assert 'value="5000"' in form and "Only me" in form
    response = client.post("/goals/new/steps", data={
        "target": "6,000", "visibility": "private", "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    goal = fresh(session).exec(select(Goal)).one()
    assert (goal.kind, goal.target, goal.visibility) == ("steps", 6000, "private")
    page = client.get("/goals").get_data(as_text=True)
    assert "Walk 6,000 steps a day" in page
    assert "No steps in yet today" in page


def test_the_list_says_in_words_how_today_is_going(client: FlaskClient, member: User) -> None:
    sign_in(client, "Sunny River")
    goal = _create(client, kind="steps", target=3000)
    today = utcnow().date().isoformat()
    client.post("/api/v1/metrics/steps", json={"day": today, "steps": 1800},
                headers=api_headers(client))
    assert "1,200 steps to go today." in client.get("/goals").get_data(as_text=True)
    client.post("/api/v1/metrics/steps", json={"day": today, "steps": 3500},
                headers=api_headers(client))
    page = client.get("/goals").get_data(as_text=True)
    assert "Done for today: 3,500 steps. Well done!" in page
    assert client.get(f"/api/v1/goals/{goal['id']}").get_json()["today_met"] is True


@pytest.mark.parametrize(("kind", "fields", "message"), [
    ("steps", {"target": "99"}, "from 100 to 100,000"),
    ("steps", {"target": "100001"}, "from 100 to 100,000"),
    ("steps", {"target": "lots"}, "whole number"),
    ("sleep", {"target": "2.5"}, "from 3 to 14 hours"),
    ("sleep", {"target": "14.5"}, "from 3 to 14 hours"),
    ("sleep", {"target": "nan"}, "number of hours"),
    ("bedtime", {"target": "23:00", "window_minutes": "0", "per_week": "5"}, "from 15 minutes"),
    ("bedtime", {"target": "23:00", "window_minutes": "600", "per_week": "5"}, "from 15 minutes"),
    ("bedtime", {"target": "25:00", "window_minutes": "60", "per_week": "5"}, "such as 22:30"),
    ("active_days", {"target": "4000", "per_week": "8"}, "from 1 to 7 days"),
    ("active_days", {"target": "4000", "per_week": "0"}, "from 1 to 7 days"),
    ("habit", {"title": "  "}, "in a few words"),
    ("habit", {"title": "walk\u0000"}, "letters, numbers and punctuation"),
])
def test_targets_out_of_range_get_a_clear_message_and_change_nothing(
        client: FlaskClient, member: User, session: Session, kind: str,
        fields: dict[str, str], message: str) -> None:
    sign_in(client, "Sunny River")
    response = client.post(f"/goals/new/{kind}", data={**fields, "visibility": "private",
                                                       "csrf_token": csrf_token(client)})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _count(session, Goal) == 0


def test_the_api_refuses_bad_settings_with_the_field_named(client: FlaskClient, member: User,
                                                           session: Session) -> None:
    sign_in(client, "Sunny River")
    response = client.post("/api/v1/goals", json={"kind": "sleep", "target": 60},
                           headers=api_headers(client))
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "target"
    response = client.post("/api/v1/goals", json={"kind": "swimming"},
                           headers=api_headers(client))
    assert response.status_code == 400
    assert _count(session, Goal) == 0


def test_editing_someone_elses_goal_is_not_found_and_changes_nothing(
        client: FlaskClient, member: User, peer: User, session: Session) -> None:
    sign_in(client, "Quiet Oak")
    goal = _create(client, kind="steps", target=4000, visibility="peers")
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    sign_in(client, "Sunny River")
    response = client.patch(f"/api/v1/goals/{goal['id']}", json={"target": 100},
                            headers=api_headers(client))
    assert response.status_code == 404
    response = client.post(f"/goals/{goal['id']}/edit", data={
        "target": "100", "visibility": "private", "csrf_token": csrf_token(client)})
    assert response.status_code == 404
    for action in ("pause", "archive"):
        assert client.post(f"/api/v1/goals/{goal['id']}/{action}",
                           headers=api_headers(client)).status_code == 404
    stored = fresh(session).get(Goal, goal["id"])
    assert stored is not None
    assert (stored.target, stored.visibility, stored.status) == (4000, "peers", "active")


def test_a_member_changes_the_target_and_who_can_see_it(client: FlaskClient, member: User,
                                                        session: Session) -> None:
    sign_in(client, "Sunny River")
    goal = _create(client, kind="sleep", target=420)
    response = client.post(f"/goals/{goal['id']}/edit", data={
        "target": "7.5", "visibility": "coach", "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    stored = fresh(session).get(Goal, goal["id"])
    assert stored is not None and (stored.target, stored.visibility) == (450, "coach")
    response = client.post(f"/goals/{goal['id']}/edit", data={
        "target": "20", "visibility": "peers", "csrf_token": csrf_token(client)})
    assert response.status_code == 400
    assert "from 3 to 14 hours" in response.get_data(as_text=True)
    stored = fresh(session).get(Goal, goal["id"])
    assert stored is not None and (stored.target, stored.visibility) == (450, "coach")


def test_a_habit_check_in_takes_one_tap_from_home(client: FlaskClient, member: User,
                                                  session: Session) -> None:
    sign_in(client, "Sunny River")
    goal = _create(client, kind="habit", title="Went outside")
    home = client.get("/home").get_data(as_text=True)
    assert "Went outside" in home and "Yes, done today" in home
    key = home.split('name="client_key" value="')[1].split('"')[0]
    response = client.post(f"/goals/{goal['id']}/check-in", data={
        "done": "yes", "client_key": key, "next": "/home", "csrf_token": csrf_token(client)})
    assert response.status_code == 302 and response.headers["Location"] == "/home"
    home = client.get("/home").get_data(as_text=True)
    assert "Checked in today. Thank you!" in home
    assert "Yes, done today" not in home
    assert _count(session, CheckIn) == 1


def test_a_resent_check_in_counts_once_and_a_second_one_is_refused_kindly(
        client: FlaskClient, member: User, session: Session) -> None:
    sign_in(client, "Sunny River")
    goal = _create(client, kind="habit", title="Ate a vegetable")
    url = f"/api/v1/goals/{goal['id']}/check-ins"
    first = client.post(url, json={"client_key": "outbox-key-0001"}, headers=api_headers(client))
    again = client.post(url, json={"client_key": "outbox-key-0001"}, headers=api_headers(client))
    assert first.status_code == again.status_code == 200
    assert (first.get_json()["stored"], again.get_json()["stored"]) == (True, False)
    assert first.get_json()["goal"]["current_streak"] == 1
    other = client.post(url, json={"client_key": "outbox-key-0002", "done": False},
                        headers=api_headers(client))
    assert other.status_code == 409
    assert "already checked in" in other.get_json()["error"]["message"]
    checks = fresh(session).exec(select(CheckIn)).all()
    assert [(c.done) for c in checks] == [True]


def test_checking_in_for_a_future_day_or_a_data_goal_is_refused(
        client: FlaskClient, member: User, session: Session) -> None:
    sign_in(client, "Sunny River")
    habit = _create(client, kind="habit", title="Drank water")
    steps = _create(client, kind="steps", target=3000)
    tomorrow = (utcnow() + timedelta(days=2)).date().isoformat()
    response = client.post(f"/api/v1/goals/{habit['id']}/check-ins", json={"day": tomorrow},
                           headers=api_headers(client))
    assert response.status_code == 400
    assert "has not happened yet" in response.get_json()["error"]["message"]
    response = client.post(f"/api/v1/goals/{steps['id']}/check-ins", json={},
                           headers=api_headers(client))
    assert response.status_code == 400
    assert "follows your steps or sleep by itself" in response.get_json()["error"]["message"]
    assert _count(session, CheckIn) == 0


def test_pausing_and_resuming_keeps_the_streak(client: FlaskClient, member: User,
                                               session: Session) -> None:
    from goals import services

    start = utcnow() - timedelta(days=9)
    with session.begin():
        goal = services.create_goal(session, member=member, now=start,
                                    settings=_settings(kind="habit", title="Went outside"))
        for day in range(3):
            services.check_in(session, member=member, goal_id=goal.id or 0, day=None, done=True,
                              client_key=None, now=start + timedelta(days=day))
        services.pause_goal(session, member=member, goal_id=goal.id or 0,
                            now=start + timedelta(days=3))
    assert goal.current_streak == 3
    with session.begin():
        services.resume_goal(session, member=member, goal_id=goal.id or 0,
                             now=start + timedelta(days=8))
        services.check_in(session, member=member, goal_id=goal.id or 0, day=None, done=True,
                          client_key=None, now=start + timedelta(days=8))
    assert (goal.current_streak, goal.status) == (4, "active")
    pauses = fresh(session).exec(select(GoalPause)).all()
    assert [(p.ends_on - p.starts_on).days for p in pauses if p.ends_on] == [5]
    sign_in(client, "Sunny River")
    page = client.get(f"/goals/{goal.id}").get_data(as_text=True)
    assert page.count("resting") == 5
    assert "4 days in a row" in page


def test_pausing_twice_or_resuming_an_active_goal_is_refused(client: FlaskClient, member: User,
                                                             session: Session) -> None:
    sign_in(client, "Sunny River")
    goal = _create(client, kind="steps", target=3000)
    url = f"/api/v1/goals/{goal['id']}"
    assert client.post(f"{url}/resume", headers=api_headers(client)).status_code == 400
    assert client.post(f"{url}/pause", headers=api_headers(client)).get_json()["status"] == "paused"
    assert client.post(f"{url}/pause", headers=api_headers(client)).status_code == 400
    assert _count(session, GoalPause) == 1


def test_archived_goals_leave_the_list_and_keep_their_page(client: FlaskClient, member: User,
                                                           session: Session) -> None:
    sign_in(client, "Sunny River")
    goal = _create(client, kind="habit", title="Talked to someone")
    response = client.post(f"/goals/{goal['id']}/archive",
                           data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302
    assert [g["id"] for g in client.get("/api/v1/goals").get_json()] == []
    page = client.get("/goals").get_data(as_text=True)
    assert "Archived goals" in page and "Talked to someone" in page
    assert client.get(f"/goals/{goal['id']}").status_code == 200
    response = client.post(f"/api/v1/goals/{goal['id']}/check-ins", json={},
                           headers=api_headers(client))
    assert response.status_code == 400


def test_a_coach_suggests_a_goal_and_a_member_adopts_it_in_two_taps(
        client: FlaskClient, coach: User, cohort: Cohort, member: User, session: Session) -> None:
    sign_in(client, "Coach Rosa")
    response = client.post("/coach/suggestions", data={
        "cohort_id": str(cohort.id), "kind": "active_days", "target": "3000", "per_week": "3",
        "note": "Three short walks a week is a great start.", "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    template = fresh(session).exec(select(GoalTemplate)).one()
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    sign_in(client, "Sunny River")
    choose = client.get("/goals/new").get_data(as_text=True)
    assert "Suggested by your coach" in choose and "Three short walks" in choose
    link = f"/goals/new/active_days?template={template.id}"
    assert link.replace("&", "&amp;") in choose or link in choose
    form = client.get(link).get_data(as_text=True)                       # first tap
    assert 'value="3000"' in form
    response = client.post("/goals/new/active_days", data={               # second tap
        "target": "3000", "per_week": "3", "template_id": str(template.id),
        "visibility": "private", "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    goal = fresh(session).exec(select(Goal)).one()
    assert (goal.template_id, goal.target, goal.per_week) == (template.id, 3000, 3)


def test_suggestions_stay_inside_their_cohort(client: FlaskClient, coach: User, cohort: Cohort,
                                              session: Session) -> None:
    other_coach = factories.make_coach(session, name="Coach Ben")
    elsewhere = factories.make_cohort(session, coach=other_coach, name="Elsewhere")
    outsider = factories.make_member(session, cohort=elsewhere, name="Far Away")
    sign_in(client, "Coach Ben")
    response = client.post(f"/api/v1/cohorts/{cohort.id}/goal-templates",
                           json={"kind": "steps", "target": 4000}, headers=api_headers(client))
    assert response.status_code == 404
    assert _count(session, GoalTemplate) == 0
    fresh(session).add(GoalTemplate(cohort_id=cohort.id or 0, kind="steps", target=4000))
    session.commit()
    template = fresh(session).exec(select(GoalTemplate)).one()
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    sign_in(client, outsider.display_name)
    assert client.get("/api/v1/goal-templates").get_json() == []
    assert client.get(f"/goals/new/steps?template={template.id}").status_code == 404
    response = client.post("/api/v1/goals", json={"kind": "steps", "target": 4000,
                                                  "template_id": template.id},
                           headers=api_headers(client))
    assert response.status_code == 404
    assert fresh(session).exec(select(func.count()).select_from(Goal)
                               .where(col(Goal.member_id) == outsider.id)).one() == 0


def _settings(**values: object):  # type: ignore[no-untyped-def]
    from goals.models import GoalSettings

    return GoalSettings.model_validate(values)
