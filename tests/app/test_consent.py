"""What a member lets their coach see of their steps and sleep, and their separate yes to research:
private by default, changed only by the member, every change recorded once."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from app.accounts import consent
from app.accounts.events import ConsentChanged
from app.accounts.exceptions import ConsentIsForMembers, InvalidInput
from app.accounts.models import (
    Cohort,
    Consent,
    ConsentLevel,
    ConsentMetric,
    Invite,
    ResearchConsent,
    User,
)
from app.audit import AuditEntry
from app.db import get_db, utcnow
from tests import factories
from tests.factories import api_headers, csrf_token, fresh, sign_in

STUDY_ID = re.compile(r"^S-[A-Z2-7]{10}$")


@pytest.fixture
def changes(app: Flask) -> list[ConsentChanged]:
    """Every ConsentChanged that reaches a commit."""
    seen: list[ConsentChanged] = []
    get_db(app).bus.after_commit(ConsentChanged, seen.append)
    return seen


def _audit(session: Session, action: str) -> list[AuditEntry]:
    return list(fresh(session).scalars(select(AuditEntry).where(AuditEntry.action == action)
                                       .order_by(AuditEntry.id)))


def _save(client: FlaskClient, **choices: str) -> tuple[int, str]:
    response = client.post("/settings/sharing", data={**choices, "csrf_token": csrf_token(client)})
    return response.status_code, response.get_data(as_text=True)


def _research(client: FlaskClient, answer: str) -> int:
    response = client.post("/settings/sharing/research",
                           data={"research": answer, "csrf_token": csrf_token(client)})
    return response.status_code


def _study_id(session: Session, member: User) -> str:
    row = fresh(session).get(ResearchConsent, member.id)
    assert row is not None
    return row.study_id


def test_a_member_shares_nothing_until_they_choose(
        client: FlaskClient, session: Session, member: User, peer: User) -> None:
    assert member.id is not None and peer.id is not None
    nothing = dict.fromkeys(ConsentMetric, ConsentLevel.NOTHING)
    assert consent.levels_of(session, member_ids=[member.id, peer.id]) == {
        member.id: nothing, peer.id: nothing}
    assert consent.level_of(session, member_id=member.id,
                            metric=ConsentMetric.SLEEP) == ConsentLevel.NOTHING
    assert not consent.in_research(session, member_id=member.id)
    sign_in(client, "Sunny River")
    assert client.get("/api/v1/me/sharing").get_json() == {
        "steps": "nothing", "sleep": "nothing", "research": False}
    page = client.get("/settings/sharing").get_data(as_text=True)
    assert 'name="steps" value="nothing" checked' in page
    assert 'name="sleep" value="nothing" checked' in page
    assert "You are not sharing anything for research." in page


def test_the_sharing_page_explains_each_choice_and_works_without_javascript(
        client: FlaskClient, session: Session, member: User) -> None:
    sign_in(client, "Sunny River")
    page = client.get("/settings/sharing").get_data(as_text=True)
    assert "What your coach can see" in page
    assert "Your coach sees none of it, and your numbers stay out of group figures" in page
    assert "Weekly averages, and your numbers count in group figures of at least 5 people" in page
    assert "Day by day" in page
    assert "no name, no words you write" in page
    assert 'action="/settings/sharing"' in page and 'method="post"' in page
    response = client.post("/settings/sharing", data={
        "steps": "summary", "sleep": "detail", "csrf_token": csrf_token(client)})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/settings/sharing")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Saved. Your coach sees only what you chose" in page
    assert 'name="steps" value="summary" checked' in page
    assert 'name="sleep" value="detail" checked' in page


def test_a_member_changes_a_level_and_back_and_each_change_is_recorded_once(
        client: FlaskClient, session: Session, member: User,
        changes: list[ConsentChanged]) -> None:
    sign_in(client, "Sunny River")
    assert _save(client, steps="summary", sleep="nothing")[0] == 302
    assert _save(client, steps="summary", sleep="nothing")[0] == 302  # the same again: no change
    assert _save(client, steps="nothing")[0] == 302
    assert [(c.member_id, c.metric, c.before, c.after) for c in changes] == [
        (member.id, "steps", "nothing", "summary"), (member.id, "steps", "summary", "nothing")]
    assert [(e.detail, e.actor_id, e.member_id) for e in _audit(session, "consent.changed")] == [
        ("steps: nothing → summary", member.id, member.id),
        ("steps: summary → nothing", member.id, member.id)]
    assert member.id is not None
    assert consent.level_of(session, member_id=member.id,
                            metric=ConsentMetric.STEPS) == ConsentLevel.NOTHING


def test_the_api_returns_and_changes_only_the_choices_sent(
        client: FlaskClient, session: Session, member: User) -> None:
    sign_in(client, "Sunny River")
    headers = api_headers(client)
    response = client.put("/api/v1/me/sharing", json={"sleep": "detail", "research": True},
                          headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"steps": "nothing", "sleep": "detail", "research": True}
    response = client.put("/api/v1/me/sharing", json={"steps": "summary"}, headers=headers)
    assert response.get_json() == {"steps": "summary", "sleep": "detail", "research": True}
    assert client.get("/api/v1/me/sharing").get_json() == response.get_json()
    assert member.id is not None
    assert consent.levels_of(fresh(session), member_ids=[member.id])[member.id] == {
        ConsentMetric.STEPS: ConsentLevel.SUMMARY, ConsentMetric.SLEEP: ConsentLevel.DETAIL}


def test_a_bad_level_or_metric_is_refused_with_a_clear_message_and_nothing_changes(
        client: FlaskClient, session: Session, member: User,
        changes: list[ConsentChanged]) -> None:
    sign_in(client, "Sunny River")
    headers = api_headers(client)
    response = client.put("/api/v1/me/sharing", json={"steps": "everything"}, headers=headers)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["field"] == "steps"
    assert error["message"] == "Please choose nothing, summary or detail for your steps."
    # All or nothing: a good choice sent beside a metric we do not know is not saved either.
    response = client.put("/api/v1/me/sharing", json={"sleep": "detail", "mood": "detail",
                                                      "research": True}, headers=headers)
    assert response.status_code == 400
    assert "“mood” is not one of them" in response.get_json()["error"]["message"]
    status, page = _save(client, steps="summary", sleep="loads")
    assert status == 400
    assert "Please choose nothing, summary or detail for your sleep." in page
    assert _research(client, "maybe") == 400
    fresh(session)
    assert session.scalar(select(func.count()).select_from(Consent)) == 0
    assert session.scalar(select(func.count()).select_from(ResearchConsent)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0
    assert changes == []
    with pytest.raises(InvalidInput) as raised:
        consent.set_consent(session, member=member, metric="heart", level="detail", now=utcnow())
    assert raised.value.field == "heart"
    with pytest.raises(InvalidInput):
        consent.set_consent(session, member=member, metric="steps", level="all", now=utcnow())
    session.rollback()


def test_staff_cannot_set_consent(
        client: FlaskClient, session: Session, coach: User, cohort: Cohort) -> None:
    for call in (
            lambda: consent.set_consent(session, member=coach, metric=ConsentMetric.STEPS,
                                        level=ConsentLevel.DETAIL, now=utcnow()),
            lambda: consent.agree_to_research(session, member=coach, now=utcnow()),
            lambda: consent.withdraw_from_research(session, member=coach, now=utcnow()),
            lambda: consent.sharing_of(session, member=coach)):
        with pytest.raises(ConsentIsForMembers):
            call()
    session.rollback()
    sign_in(client, "Coach Rosa")
    response = client.put("/api/v1/me/sharing", json={"steps": "detail"},
                          headers=api_headers(client))
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "consent_is_for_members"
    assert client.get("/settings/sharing").status_code == 403
    assert _save(client, steps="detail")[0] == 403
    fresh(session)
    assert session.scalar(select(func.count()).select_from(Consent)) == 0


def test_agreeing_withdrawing_and_agreeing_again_keeps_the_same_study_id(
        client: FlaskClient, session: Session, member: User) -> None:
    sign_in(client, "Sunny River")
    assert _research(client, "yes") == 302
    study_id = _study_id(session, member)
    assert STUDY_ID.match(study_id)
    assert member.id is not None
    assert consent.in_research(session, member_id=member.id)
    page = client.get("/settings/sharing").get_data(as_text=True)
    assert "Thank you for helping research." in page
    assert "Stop sharing for research" in page
    response = client.put("/api/v1/me/sharing", json={"research": False},
                          headers=api_headers(client))
    assert response.get_json()["research"] is False
    assert not consent.in_research(fresh(session), member_id=member.id)
    assert consent.research_study_ids(session, member_ids=[member.id]) == {}
    assert _research(client, "yes") == 302
    assert _study_id(session, member) == study_id
    assert consent.research_study_ids(session, member_ids=[member.id]) == {member.id: study_id}
    assert [e.action for e in fresh(session).scalars(
        select(AuditEntry).where(AuditEntry.member_id == member.id).order_by(AuditEntry.id))] == [
        "research.agreed", "research.withdrawn", "research.agreed"]
    assert all(study_id not in e.detail for e in session.scalars(select(AuditEntry)))


def test_study_ids_are_given_only_for_members_who_currently_agree(
        session: Session, cohort: Cohort, member: User, peer: User) -> None:
    quiet = factories.make_member(session, cohort=cohort, name="Blue Heron")
    now = utcnow()
    mine = consent.agree_to_research(session, member=member, now=now).study_id
    theirs = consent.agree_to_research(session, member=peer, now=now).study_id
    consent.withdraw_from_research(session, member=peer, now=now)
    session.commit()
    assert mine != theirs
    assert member.id is not None and peer.id is not None and quiet.id is not None
    assert consent.research_study_ids(session, member_ids=[member.id, peer.id, quiet.id]) == {
        member.id: mine}
    assert consent.research_study_ids(session, member_ids=[]) == {}


def test_levels_cover_every_member_and_metric_asked_for(
        session: Session, member: User, peer: User) -> None:
    consent.set_consent(session, member=member, metric="sleep", level="summary", now=utcnow())
    session.commit()
    assert member.id is not None and peer.id is not None
    levels = consent.levels_of(session, member_ids={member.id, peer.id, 999_999})
    assert levels[member.id] == {ConsentMetric.STEPS: ConsentLevel.NOTHING,
                                 ConsentMetric.SLEEP: ConsentLevel.SUMMARY}
    assert levels[peer.id] == levels[999_999] == dict.fromkeys(ConsentMetric,
                                                               ConsentLevel.NOTHING)


def test_a_changed_level_rolls_back_with_its_transaction(
        app: Flask, session: Session, member: User, changes: list[ConsentChanged]) -> None:
    seen: list[ConsentChanged] = []

    def in_transaction(_session: OrmSession, event: ConsentChanged) -> None:
        seen.append(event)

    get_db(app).bus.in_transaction(ConsentChanged, in_transaction)
    with get_db(app).session() as write:
        consent.set_consent(write, member=write.get(User, member.id) or member, metric="steps",
                            level="detail", now=utcnow())
        write.rollback()
    assert len(seen) == 1  # heard inside the transaction...
    assert changes == []   # ...but never published, since it did not commit
    assert member.id is not None
    assert consent.level_of(fresh(session), member_id=member.id,
                            metric=ConsentMetric.STEPS) == ConsentLevel.NOTHING


def test_members_find_the_sharing_page_from_home_their_data_and_when_they_join(
        client: FlaskClient, invite: Invite) -> None:
    response = client.post(f"/join/{invite.code}", data={
        "display_name": "Brave Fern", "password": "tea in the garden",
        "csrf_token": csrf_token(client)}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Your steps and sleep stay private unless you choose to share them." in page
    assert 'href="/settings/sharing"' in page
    assert 'href="/settings/sharing"' in client.get("/tracker").get_data(as_text=True)
    assert 'href="/settings/sharing"' in client.get("/settings/sessions").get_data(as_text=True)
