"""A member's rights: download everything about them (a zip of JSON and CSV, nothing of anyone
else's, no secret), and delete their account (trackers revoked at the platform, their posts
removed or kept as "A former member", out of coach figures and research exports, no row left)."""

from __future__ import annotations

import base64
import csv
import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select

from app.accounts import consent
from app.accounts import services as accounts
from app.accounts.data_rights import FORMER_MEMBER_KEY
from app.accounts.events import SessionsEnded
from app.accounts.models import Cohort, Role, User, UserSession
from app.audit import AuditEntry
from app.db import get_db, utcnow
from coach import exports, rollups
from coach import services as coach_services
from coach.models import CohortDay
from feed import services as feed
from feed.models import CheerKind, Comment, FeedItem, ItemKind
from feed.safety import services as safety
from feed.safety.models import Report, ReportCategory, ReportCreate, TargetType
from goals import services as goals
from goals.models import GoalKind, GoalSettings, Visibility
from notify import services as notify
from notify.models import Notification, PushSubscription, SubscriptionCreate, SubscriptionKeys
from tests import factories
from tests.coach.conftest import (
    MIN_GROUP,
    assert_rollups_match_raw,
    days_back,
    make_group,
    steps,
    today_of,
)
from tests.factories import PASSWORD, csrf_token, sign_in
from tests.standins import Standin, connect_google, google_config
from wearables.models import Connection, Source
from wearables.tasks import cipher

MEMBER_STORY = "Walked to the lighthouse and back, slowly."
MEMBER_TIP = "A glass of water before coffee helps me."
MEMBER_COMMENT = "That sounds like a lovely morning."
PEER_STORY = "A hard week, in the words of the peer."
PEER_COMMENT = "Proud of you for the lighthouse walk!"
REPORT_NOTE = "This looks like a sales pitch."


@pytest.fixture
def app_config(google: Standin) -> dict[str, object]:
    return {**google_config(google.url), "BACKFILL_DAYS": 20}


def _keys() -> SubscriptionKeys:
    private = ec.generate_private_key(ec.SECP256R1())
    point = private.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return SubscriptionKeys(p256dh=b64(point), auth=b64(b"0123456789abcdef"))


@dataclass
class World:
    """Sunny River (the member) with a little of everything; Quiet Oak (a peer) who talks with
    them; Blue Heron, whom Sunny blocks; Far Away, in another group."""

    member: User
    peer: User
    blocked: User
    outsider: User
    client: FlaskClient
    story_id: int
    peer_story_id: int
    goal_item_id: int
    member_id: int = field(init=False)
    peer_id: int = field(init=False)

    @property
    def ids(self) -> tuple[int, int]:
        return self.member_id, self.peer_id

    def __post_init__(self) -> None:
        # Kept as numbers: a deleted account's row cannot be read back.
        self.member_id, self.peer_id = self.member.id or 0, self.peer.id or 0


def signed_in(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    sign_in(client, name)
    return client


@pytest.fixture
def world(app: Flask, session: Session, cohort: Cohort, member: User, peer: User,
          outsider: User, google: Standin) -> World:
    blocked = factories.make_member(session, cohort=cohort, name="Blue Heron")
    client = signed_in(app, "Sunny River")
    connect_google(client)  # a real grant at the Google stand-in, and 20 days of data
    now = utcnow()
    with app.app_context():
        for person in (member, peer):
            consent.update_sharing(session, member=person, levels={"steps": "summary"},
                                   research=True, now=now)
        goal = goals.create_goal(session, member=member, settings=GoalSettings(
            kind=GoalKind.HABIT, title="No cigarettes today", visibility=Visibility.PEERS),
            now=now)
        session.commit()
        goals.check_in(session, member=member, goal_id=goal.id or 0, day=None, done=True,
                       client_key=None, now=now)
        story = feed.post(session, author=member, cohort_id=cohort.id, kind=ItemKind.STORY,
                          body=MEMBER_STORY, now=now)
        feed.post(session, author=member, cohort_id=cohort.id, kind=ItemKind.TIP,
                  body=MEMBER_TIP, now=now)
        peer_story = feed.post(session, author=peer, cohort_id=cohort.id, kind=ItemKind.STORY,
                               body=PEER_STORY, now=now)
        outsider_cohort = accounts.cohorts_of(session, user=outsider)[0]
        feed.post(session, author=outsider, cohort_id=outsider_cohort.id, kind=ItemKind.STORY,
                  body="Far Away's story, in another group.", now=now)
        session.commit()
        feed.give_cheer(session, member=member, item_id=peer_story.id or 0,
                        kind=CheerKind.WITH_YOU, client_key=None, now=now)
        feed.add_comment(session, author=member, item_id=peer_story.id or 0, body=MEMBER_COMMENT,
                         client_key=None, now=now)
        feed.give_cheer(session, member=peer, item_id=story.id or 0, kind=CheerKind.WELL_DONE,
                        client_key=None, now=now)
        feed.add_comment(session, author=peer, item_id=story.id or 0, body=PEER_COMMENT,
                         client_key=None, now=now)
        safety.report(session, reporter=member, data=ReportCreate(
            target_type=TargetType.ITEM, target_id=peer_story.id or 0,
            category=ReportCategory.SPAM, note=REPORT_NOTE), hide_after=3, now=now)
        safety.report(session, reporter=peer, data=ReportCreate(
            target_type=TargetType.ITEM, target_id=story.id or 0,
            category=ReportCategory.OTHER, note="Not sure about this one."), hide_after=3, now=now)
        safety.block(session, member=member, other_id=blocked.id or 0, now=now)
        notify.subscribe(session, member=member, data=SubscriptionCreate(
            endpoint="https://push.example.net/send/secret-endpoint-path", keys=_keys()),
            device="test phone", allow_http=False, now=now)
        notify.update_preferences(session, member=member, kinds_off=["nudges"],
                                  quiet_start=21 * 60, quiet_end=7 * 60, daily_budget=3,
                                  preview=False, nudge_at=19 * 60)
        session.commit()
        goal_item = session.exec(select(FeedItem).where(
            col(FeedItem.kind) == ItemKind.GOAL_SHARED)).one()
    return World(member=member, peer=peer, blocked=blocked, outsider=outsider, client=client,
                 story_id=story.id or 0, peer_story_id=peer_story.id or 0,
                 goal_item_id=goal_item.id or 0)


def unzip(body: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def secrets_of(app: Flask, session: Session, client: FlaskClient, member: User) -> list[str]:
    """Everything that must never leave the server: the password hash, the session token and
    its hash, the tracker tokens (stored and plain), the phone's push endpoint and keys."""
    fresh = factories.fresh(session)
    found = [fresh.get(User, member.id).password_hash]  # type: ignore[union-attr]
    with client.session_transaction() as cookie:
        token = cookie["sid"]
    found += [token, accounts._hash_token(token)]
    found += [row.token_hash for row in fresh.exec(select(UserSession).where(
        col(UserSession.user_id) == member.id))]
    with app.app_context():
        for connection in fresh.exec(select(Connection)):
            for stored in (connection.access_token_enc, connection.refresh_token_enc):
                found += [stored, cipher().decrypt(stored)]
    for device in fresh.exec(select(PushSubscription)):
        found += [device.endpoint, device.p256dh, device.auth]
    return [value for value in found if value]


def all_rows_as_text(session: Session) -> str:
    """Every row of every table, as text (to look for a name or words anywhere at all)."""
    fresh = factories.fresh(session)
    return "\n".join(str(tuple(row)) for table in SQLModel.metadata.sorted_tables
                     for row in fresh.execute(table.select()))


def rows_pointing_at(session: Session, user_id: int) -> dict[str, int]:
    """For every column that references a user, how many rows point at `user_id`."""
    fresh = factories.fresh(session)
    found = {}
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            if any(fk.column.table.name == "user" for fk in column.foreign_keys):
                count = fresh.scalar(select(func.count()).select_from(table)
                                     .where(column == user_id)) or 0
                if count:
                    found[f"{table.name}.{column.name}"] = count
    entries = fresh.scalar(select(func.count()).select_from(AuditEntry).where(
        col(AuditEntry.subject_type).in_(("member", "user")), col(AuditEntry.subject_id) == user_id))
    if entries:
        found["audit_entry.subject_id"] = entries
    if fresh.get(User, user_id) is not None:
        found["user.id"] = 1
    return found


def delete_form(client: FlaskClient, posts: str, password: str = PASSWORD) -> Any:
    return client.post("/settings/delete-account", data={
        "posts": posts, "password": password, "csrf_token": csrf_token(client)})


# --- download my data ---


def test_the_download_holds_the_members_data_and_nothing_of_anyone_else_and_no_secret(
        app: Flask, session: Session, world: World) -> None:
    response = world.client.post("/settings/my-data", data={"csrf_token": csrf_token(world.client)})
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="hearten-data-')
    assert "no-store" in response.headers["Cache-Control"]
    files = unzip(response.data)
    assert sorted(files) == ["hearten-data/README.txt", "hearten-data/daily-summary.csv",
                             "hearten-data/goal-days.csv", "hearten-data/my-data.json",
                             "hearten-data/sleep.csv", "hearten-data/steps.csv"]
    data = json.loads(files["hearten-data/my-data.json"])

    assert data["profile"]["display_name"] == "Sunny River"
    assert [g["group"] for g in data["groups"]] == ["Morning Walkers"]
    assert data["signed_in_devices"] and "token" not in json.dumps(data["signed_in_devices"])
    assert data["research"]["helping"] and data["research"]["study_id"].startswith("S-")
    assert {c["metric"]: c["level"] for c in data["what_my_coach_can_see"]} == {"steps": "summary"}
    assert [(t["provider"], t["status"]) for t in data["trackers"]] == [("google", "connected")]
    assert len(data["steps"]) >= 15 and {s["source"] for s in data["steps"]} == {"google"}
    assert len(data["sleep"]) >= 10
    steps_csv = list(csv.DictReader(io.StringIO(files["hearten-data/steps.csv"])))
    assert len(steps_csv) == len(data["steps"]) and steps_csv[0]["source"] == "google"
    (goal,) = data["goals"]
    assert goal["goal"] == "No cigarettes today" and len(goal["check_ins"]) == 1
    assert "No cigarettes today" in files["hearten-data/goal-days.csv"]
    assert {p["text"] for p in data["posts"] if p["kind"] in ("story", "tip")} == {
        MEMBER_STORY, MEMBER_TIP}
    assert [c["text"] for c in data["comments"]] == [MEMBER_COMMENT]
    assert [c["cheer"] for c in data["cheers_given"]] == ["with_you"]
    assert [(r["category"], r["note"]) for r in data["reports_i_made"]] == [("spam", REPORT_NOTE)]
    assert [b["name"] for b in data["blocked"]] == ["Blue Heron"]
    assert data["notification_settings"]["turned_off"] == ["nudges"]
    assert data["phones_for_notifications"] == [{
        "push_service": "push.example.net", "device": "test phone",
        "signed_up_at": data["phones_for_notifications"][0]["signed_up_at"], "last_push": "",
        "last_push_at": None}]
    assert any("cheered your post" in n["text"] for n in data["inbox"])
    assert {e["action"] for e in data["audit_log_about_me"]} >= {"consent.changed",
                                                                "research.agreed"}

    everything = "\n".join(files.values())
    # Nothing of anyone else: a peer's words, the report about Sunny's post and who made it,
    # another group's story; the peer's name only where Sunny saw it (their inbox).
    for foreign in (PEER_STORY, PEER_COMMENT, "Not sure about this one.", "Far Away"):
        assert foreign not in everything
    assert "Quiet Oak" not in json.dumps({k: v for k, v in data.items() if k != "inbox"})
    assert "Quiet Oak" not in "".join(v for k, v in files.items() if k.endswith(".csv"))
    for secret in secrets_of(app, session, world.client, world.member):
        assert secret not in everything and secret.encode() not in response.data

    factories.fresh(session)
    (entry,) = session.exec(select(AuditEntry).where(col(AuditEntry.action) == "account.exported"))
    assert entry.actor_id == entry.member_id == world.member.id


def test_the_api_gives_the_same_download_and_the_openapi_document_declares_it(
        app: Flask, world: World) -> None:
    response = world.client.get("/api/v1/me/export")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "no-store" in response.headers["Cache-Control"]
    data = json.loads(unzip(response.data)["hearten-data/my-data.json"])
    assert data["profile"]["display_name"] == "Sunny River"
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    assert "application/zip" in spec["paths"]["/api/v1/me/export"]["get"]["responses"]["200"][
        "content"]
    assert "delete" in spec["paths"]["/api/v1/me"]
    assert app.test_client().get("/api/v1/me/export").status_code == 401


def test_each_member_downloads_only_their_own_data(app: Flask, world: World) -> None:
    peer = signed_in(app, "Quiet Oak")
    files = unzip(peer.post("/settings/my-data", data={"csrf_token": csrf_token(peer)}).data)
    data = json.loads(files["hearten-data/my-data.json"])
    assert data["profile"]["display_name"] == "Quiet Oak"
    assert {p["text"] for p in data["posts"]} == {PEER_STORY}
    everything = "\n".join(files.values())
    assert MEMBER_STORY not in everything and MEMBER_COMMENT not in everything
    assert REPORT_NOTE not in everything and "google" not in everything
    # Sunny reported Quiet Oak's post: Quiet Oak never learns who (nor that anyone did).
    assert "spam" not in everything
    anonymous = app.test_client()
    assert anonymous.post("/settings/my-data", data={"csrf_token": csrf_token(anonymous)}
                          ).status_code == 302


def test_the_download_is_a_post_with_csrf(world: World) -> None:
    assert world.client.get("/settings/my-data").status_code == 405
    assert world.client.post("/settings/my-data").status_code == 400


# --- delete my account ---


def test_deleting_with_remove_leaves_no_row_of_the_member_and_revokes_the_tracker(
        app: Flask, session: Session, world: World, google: Standin, coach: User) -> None:
    ended: list[SessionsEnded] = []
    get_db(app).bus.after_commit(SessionsEnded, ended.append)
    other_device = signed_in(app, "Sunny River")
    assert google.stats()["revocations"] == 0
    member_id = world.member_id
    page = world.client.get("/settings/delete-account")
    assert page.status_code == 200 and "A former member" in page.get_data(as_text=True)

    response = delete_form(world.client, "remove")
    assert response.status_code == 302 and response.headers["Location"] == "/goodbye"
    assert response.headers["Clear-Site-Data"] == '"storage"'
    assert "Your account is deleted" in world.client.get("/goodbye").get_data(as_text=True)
    assert google.stats()["revocations"] == 1  # the grant is withdrawn at Google
    assert rows_pointing_at(session, member_id) == {}
    everything = all_rows_as_text(session)
    for gone in ("Sunny River", MEMBER_STORY, MEMBER_TIP, MEMBER_COMMENT,
                 "No cigarettes today", PEER_COMMENT):  # a peer's comment went with the post
        assert gone not in everything
    assert PEER_STORY in everything
    fresh = factories.fresh(session)
    peer_story = fresh.get(FeedItem, world.peer_story_id)
    assert peer_story is not None and (peer_story.cheer_count, peer_story.comment_count) == (0, 0)
    # The report Sunny made is still open: it stays for the moderators, without Sunny.
    former = fresh.exec(select(User).where(col(User.name_key) == FORMER_MEMBER_KEY)).one()
    (report,) = fresh.exec(select(Report))
    assert (report.reporter_id, report.note) == (former.id, REPORT_NOTE)
    (entry,) = fresh.exec(select(AuditEntry).where(col(AuditEntry.action) == "account.deleted"))
    assert entry.actor_id is None and entry.member_id is None and "removed" in entry.detail

    # Signed out everywhere: both devices' sockets are told to close; neither opens a page.
    assert sorted(len(e.session_ids) for e in ended) == [2]
    for device in (world.client, other_device):
        assert device.get("/home").status_code == 302
        assert device.get("/api/v1/me").status_code == 401
    # The peer's page shows the post gone, and the coach's rollups equal the raw rows again.
    peer_page = signed_in(app, "Quiet Oak").get("/feed").get_data(as_text=True)
    assert MEMBER_STORY not in peer_page and PEER_STORY in peer_page
    fresh = factories.fresh(session)  # a new snapshot, before writing
    with app.app_context():
        for cohort in accounts.cohorts_of(fresh, user=coach):
            assert rollups.rebuild_cohort(fresh, cohort_id=cohort.id or 0) == 0
        fresh.rollback()


def test_deleting_with_keep_leaves_the_words_as_a_former_members_and_no_link_to_them(
        app: Flask, session: Session, world: World) -> None:
    member_id = world.member_id
    response = delete_form(world.client, "keep")
    assert response.status_code == 302
    assert rows_pointing_at(session, member_id) == {}
    everything = all_rows_as_text(session)
    assert "Sunny River" not in everything
    for kept in (MEMBER_STORY, MEMBER_TIP, MEMBER_COMMENT, PEER_COMMENT):
        assert kept in everything
    fresh = factories.fresh(session)
    former = fresh.exec(select(User).where(col(User.name_key) == FORMER_MEMBER_KEY)).one()
    assert former.role == Role.FORMER
    story = fresh.get(FeedItem, world.story_id)
    assert story is not None and story.author_id == former.id and story.body == MEMBER_STORY
    assert fresh.get(FeedItem, world.goal_item_id) is None  # posts about goals go either way
    comment = fresh.exec(select(Comment).where(col(Comment.body) == MEMBER_COMMENT)).one()
    assert comment.author_id == former.id
    # The open report Sunny made stays for the moderators, without Sunny; the one about Sunny's
    # kept post now concerns the former member.
    reports = {r.target_id: r for r in fresh.exec(select(Report))}
    assert reports[world.peer_story_id].reporter_id == former.id
    assert reports[world.story_id].member_id == former.id
    # The former member can never sign in, whatever is typed.
    for name in ("A former member", FORMER_MEMBER_KEY):
        assert app.test_client().post("/login", data={
            "display_name": name, "password": PASSWORD,
            "csrf_token": csrf_token(app.test_client())}).status_code in (400, 401)

    peer = signed_in(app, "Quiet Oak")
    page = peer.get(f"/feed/{world.story_id}").get_data(as_text=True)
    assert MEMBER_STORY in page and "A former member" in page and "Sunny River" not in page
    assert "Block or mute" not in page  # nobody to block any more
    item = peer.get("/api/v1/feed").get_json()["items"]
    assert {i["author"] for i in item if i["body"] == MEMBER_STORY} == {"A former member"}
    inbox = peer.get("/inbox").get_data(as_text=True)
    assert "A former member cheered your post" in inbox and "Sunny River" not in inbox
    # A cheer on the kept post reaches no one's inbox (the former member has none).
    fresh = factories.fresh(session)  # a new snapshot, before writing
    with app.app_context():
        feed.give_cheer(fresh, member=world.peer, item_id=world.story_id,
                        kind=CheerKind.KEEP_GOING, client_key=None, now=utcnow())
        fresh.commit()
    assert fresh.scalar(select(func.count()).select_from(Notification).where(
        col(Notification.user_id) == former.id)) == 0


def test_a_deleted_member_leaves_the_coach_figures_and_the_research_export(
        app: Flask, session: Session, cohort: Cohort, coach: User) -> None:
    with app.app_context():
        people = make_group(session, cohort, 6)
        today = today_of(people[0])
        for n, person in enumerate(people):
            steps(session, person, dict.fromkeys(days_back(5, today), 4000 + 6000 * (n == 5)),
                  source=Source.MANUAL)
            consent.agree_to_research(session, member=person, now=utcnow())
        session.commit()
        leaving = people[5]
        leaving_id, leaving_name = leaving.id or 0, leaving.display_name
        study_id = consent.research_study_ids(session, member_ids=[leaving_id])[leaving_id]
        before = coach_services.overview(session, cohort_id=cohort.id or 0, days=7, today=today,
                                         min_group=MIN_GROUP)
        assert before.members == 6 and before.average_steps.value == 5000
        assert study_id in {row.study_id for row in exports.export_rows(
            session, coach=coach, cohort_id=cohort.id or 0, start=today - timedelta(days=6),
            end=today, today=today, min_group=MIN_GROUP).rows}
        session.rollback()

    client = signed_in(app, leaving_name)
    assert delete_form(client, "remove").status_code == 302

    fresh = factories.fresh(session)
    with app.app_context():
        after = coach_services.overview(fresh, cohort_id=cohort.id or 0, days=7, today=today,
                                        min_group=MIN_GROUP)
        assert after.members == 5 and after.average_steps.value == 4000
        assert_rollups_match_raw(fresh, cohort.id or 0, today)
        assert {row.steps_members for row in fresh.exec(select(CohortDay).where(
            col(CohortDay.cohort_id) == cohort.id))} == {5}
        result = exports.export_rows(fresh, coach=coach, cohort_id=cohort.id or 0,
                                     start=today - timedelta(days=6), end=today, today=today,
                                     min_group=MIN_GROUP)
        fresh.rollback()
    exported = {row.study_id for row in result.rows}
    assert result.members == 5 and len(exported) == 5 and study_id not in exported
    assert study_id not in all_rows_as_text(session)


def test_a_wrong_password_refuses_and_changes_nothing(app: Flask, session: Session,
                                                        world: World, google: Standin) -> None:
    before = all_rows_as_text(session)
    response = delete_form(world.client, "remove", password="not my password at all")
    assert response.status_code == 403
    assert "That password is not right, so nothing has changed" in response.get_data(as_text=True)
    missing = world.client.post("/settings/delete-account", data={
        "password": PASSWORD, "csrf_token": csrf_token(world.client)})
    assert missing.status_code == 400
    assert "Please choose what happens to your posts" in missing.get_data(as_text=True)
    api = world.client.delete("/api/v1/me", json={"password": "wrong", "posts": "remove"},
                              headers=factories.api_headers(world.client))
    assert api.status_code == 403 and api.get_json()["error"]["code"] == "password_not_accepted"
    assert all_rows_as_text(session) == before
    assert google.stats()["revocations"] == 0
    assert world.client.get("/home").status_code == 200  # still signed in


def test_get_never_deletes_and_csrf_is_required(app: Flask, session: Session,
                                                 world: World) -> None:
    before = all_rows_as_text(session)
    page = world.client.get("/settings/delete-account?posts=remove&password=" + PASSWORD)
    assert page.status_code == 200
    assert world.client.post("/settings/delete-account", data={
        "posts": "remove", "password": PASSWORD}).status_code == 400  # no CSRF token
    assert world.client.delete("/api/v1/me", json={
        "password": PASSWORD, "posts": "remove"}).status_code == 400  # no X-CSRFToken
    assert world.client.get("/api/v1/me").status_code == 200
    assert all_rows_as_text(session) == before


def test_another_member_cannot_delete_someone_else(app: Flask, session: Session,
                                                    world: World) -> None:
    peer = signed_in(app, "Quiet Oak")
    # Sunny's password does not delete Quiet Oak's account, and nothing names another account.
    assert delete_form(peer, "remove", password=PASSWORD + " (Sunny's)").status_code == 403
    member_id, peer_id = world.ids
    assert factories.fresh(session).get(User, member_id) is not None
    response = peer.delete("/api/v1/me", json={"password": PASSWORD, "posts": "keep"},
                           headers=factories.api_headers(peer))
    assert response.status_code == 204 and response.headers["Clear-Site-Data"] == '"storage"'
    fresh = factories.fresh(session)
    assert fresh.get(User, peer_id) is None
    assert fresh.get(User, member_id) is not None
    assert world.client.get("/home").status_code == 200  # Sunny is still signed in
    assert peer.get("/api/v1/me").status_code == 401


def test_a_groups_only_coach_and_the_only_admin_are_asked_to_hand_over_first(
        app: Flask, session: Session, cohort: Cohort, coach: User) -> None:
    coach_id = coach.id
    client = signed_in(app, "Coach Rosa")
    response = delete_form(client, "remove")
    assert response.status_code == 409
    assert "“Morning Walkers” has no other coach" in response.get_data(as_text=True)
    co_coach = factories.make_coach(session, name="Coach Ben")
    with app.app_context():
        accounts.add_co_coach(session, coach=coach, cohort_id=cohort.id or 0,
                              display_name="Coach Ben", now=utcnow())
        session.commit()
    assert delete_form(client, "remove").status_code == 302
    fresh = factories.fresh(session)
    assert fresh.get(User, coach_id) is None
    assert [c.id for c in accounts.coaches_of(fresh, cohort_id=cohort.id or 0)] == [co_coach.id]

    factories.make_user(session, name="Admin Ana", role=Role.ADMIN)
    admin = signed_in(app, "Admin Ana")
    refused = admin.delete("/api/v1/me", json={"password": PASSWORD, "posts": "remove"},
                           headers=factories.api_headers(admin))
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "last_admin"

