"""Authorization as declared in app/authz.py: every endpoint has a declaration, every audience is
kept on every route, and no role reaches a member's objects unless the policy says so (the role
by object matrix: pages, API reads and every way to change each object, as eight callers)."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient
from sqlmodel import Session, SQLModel, col, func, select
from werkzeug.routing import Rule as UrlRule
from werkzeug.test import TestResponse

from app.accounts import consent
from app.accounts import services as accounts
from app.accounts.models import Cohort, ResetToken, Role, User, UserSession
from app.api import ApiBlueprint, Operation
from app.authz import ACCESS, AUDIENCES
from app.db import utcnow
from feed.models import Cheer, Comment, FeedItem, ItemStatus
from feed.safety.models import Appeal, Block, ModerationAction, Mute, Report
from goals.models import CheckIn, Goal, GoalPause, GoalStatus
from notify import services as notify
from notify.models import Kind, Notification, PushSubscription
from tests import factories
from tests.factories import csrf_token, sign_in, sign_in_password_only
from wearables.models import Connection, DailySteps, SleepNight
from wearables.services import local_today

CRISIS = "I don't want to live anymore, I keep thinking about killing myself"
SIGN_IN_PAGES = {"/login", "/login/two-factor", "/settings/two-factor/setup"}


@pytest.fixture
def app_config() -> dict[str, object]:
    # Two members who agree to research are enough for an export; reports never hide the item
    # in the middle of the matrix.
    return {"SMALL_GROUP_MIN": 2, "REPORT_HIDE_THRESHOLD": 99}


# --- the route table ---


def _routes(app: Flask) -> Iterator[tuple[UrlRule, str]]:
    """Every (rule, method) the app answers, HEAD and OPTIONS aside."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule, method


def _operations(app: Flask) -> dict[str, Operation]:
    return {op.endpoint: op for bp in app.blueprints.values() if isinstance(bp, ApiBlueprint)
            for op in bp.operations}


# Path values for building every URL: real ids where the route is about the cast's cohort or
# member; anything else only has to be well-formed (the audience check comes before any lookup).
SAMPLES: dict[str, object] = {
    "item_id": 1, "goal_id": 1, "session_id": 1, "subscription_id": 1, "invite_id": 1,
    "template_id": 1, "action_id": 1, "appeal_id": 1, "code": "ABCD2345",
    "token": "not-a-reset-token", "provider": "google", "kind": "habit",
    "filename": "css/app.css",
}


# Bodies for the operations that read their body before deciding who is calling (the steps of
# signing in): the caller is refused for who they are, not for a missing body.
BODIES: dict[str, dict[str, object]] = {"TwoFactorCode": {"code": "123456"}}


def _body(op: Operation | None) -> dict[str, object] | None:
    return BODIES[op.body.__name__] if op is not None and op.body is not None else None


def _url(app: Flask, rule: UrlRule, *, cohort_id: int, member_id: int) -> str:
    known: dict[str, Any] = {"cohort_id": cohort_id, "member_id": member_id, "other_id": member_id,
             "user_id": member_id, **SAMPLES}
    missing = set(rule.arguments) - set(known)
    assert not missing, f"add a sample value for {missing} ({rule.rule})"
    with app.test_request_context():
        return url_for(rule.endpoint, **{name: known[name] for name in rule.arguments})


def _sent_to_sign_in(response: TestResponse) -> bool:
    """A redirect to the sign-in page or to the second-factor step."""
    return (response.status_code in (302, 303)
            and urlsplit(response.headers.get("Location", "")).path in SIGN_IN_PAGES)


def _call(client: FlaskClient, method: str, path: str, token: str,
          body: dict[str, object] | None = None) -> TestResponse:
    """Call as a browser form (pages) or a script (the API), with this client's CSRF token."""
    headers = {"X-CSRFToken": token}
    if path.startswith("/api/"):
        return client.open(path, method=method, json=body, headers=headers)
    form = {key: str(value) for key, value in (body or {}).items()}
    return client.open(path, method=method, data=form, headers=headers)


def test_every_endpoint_has_an_access_declaration(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert sorted(endpoints - ACCESS.keys()) == [], "declare these in app/authz.py"
    assert sorted(ACCESS.keys() - endpoints) == [], "these endpoints no longer exist"
    assert {access.audience for access in ACCESS.values()} <= set(AUDIENCES)
    assert all(access.reason.strip() for access in ACCESS.values())


def test_the_api_documents_as_public_exactly_what_is_declared_public(app: Flask) -> None:
    for endpoint, op in _operations(app).items():
        public = ACCESS[endpoint].audience in ("anonymous", "second_step")
        assert op.auth is not public, endpoint


def _sent_to_sign_in_everywhere(app: Flask, client: FlaskClient, *, public: set[str],
                                cohort_id: int, member_id: int, sign_in_page: str
                                ) -> tuple[int, list[tuple[str, str, int]]]:
    """Call every route not in `public` audiences; list those that do not answer 401 (API) or
    send the browser to `sign_in_page`."""
    token = csrf_token(client)
    operations = _operations(app)
    wrong, checked = [], 0
    for rule, method in _routes(app):
        if ACCESS[rule.endpoint].audience in public:
            continue
        path = _url(app, rule, cohort_id=cohort_id, member_id=member_id)
        op = operations.get(rule.endpoint)
        response = _call(client, method, path, token, _body(op) if op and not op.auth else None)
        ok = (response.status_code == 401 if path.startswith("/api/") else
              _sent_to_sign_in(response)
              and urlsplit(response.headers["Location"]).path == sign_in_page)
        checked += 1
        if not ok:
            wrong.append((method, path, response.status_code))
    return checked, wrong


def test_anonymous_callers_are_sent_to_sign_in_from_every_route_not_declared_public(
        app: Flask, client: FlaskClient, cohort: Cohort, member: User) -> None:
    checked, wrong = _sent_to_sign_in_everywhere(
        app, client, public={"anonymous"}, cohort_id=cohort.id or 0, member_id=member.id or 0,
        sign_in_page="/login")
    assert checked > 100
    assert wrong == []


def test_each_audience_gets_through_to_every_route_declared_for_it(
        app: Flask, session: Session, cohort: Cohort, member: User) -> None:
    """The other half: no declaration is stricter than the code (GET routes, sample ids, so an
    object rule may still answer 404)."""
    factories.make_user(session, name="Admin Ada", role=Role.ADMIN)
    callers: dict[str, set[str]] = {"Sunny River": {"anonymous", "signed_in", "member"},
               "Coach Rosa": {"anonymous", "second_step", "signed_in", "staff"},
               "Admin Ada": set[str](AUDIENCES) - {"member"}}
    wrong, checked = [], 0
    for name, audiences in callers.items():
        client = app.test_client()
        sign_in(client, name)
        for rule, method in _routes(app):
            if method != "GET" or ACCESS[rule.endpoint].audience not in audiences:
                continue
            path = _url(app, rule, cohort_id=cohort.id or 0, member_id=member.id or 0)
            response = client.get(path)
            checked += 1
            if response.status_code in (401, 403) or (
                    _sent_to_sign_in(response) and rule.endpoint != "two_factor.setup"):
                wrong.append((name, path, response.status_code))
    assert checked > 150
    assert wrong == []


def test_a_coach_who_owes_the_second_factor_reaches_nothing_but_the_second_step(
        app: Flask, client: FlaskClient, cohort: Cohort, member: User) -> None:
    sign_in_password_only(client, "Coach Rosa")
    checked, wrong = _sent_to_sign_in_everywhere(
        app, client, public={"anonymous", "second_step"}, cohort_id=cohort.id or 0,
        member_id=member.id or 0, sign_in_page="/settings/two-factor/setup")
    assert checked > 100
    assert wrong == []


def _refused(app: Flask, client: FlaskClient, audiences: set[str], *, cohort_id: int,
             member_id: int) -> tuple[int, list[tuple[str, str, int]]]:
    """Call every route of `audiences` (GET, page forms, and API calls without a body: a body
    is checked before the role) and list those not answered 403 or 404."""
    token = csrf_token(client)
    operations = _operations(app)
    wrong, checked = [], 0
    for rule, method in _routes(app):
        if ACCESS[rule.endpoint].audience not in audiences:
            continue
        op = operations.get(rule.endpoint)
        if method != "GET" and op is not None and op.body is not None:
            continue
        path = _url(app, rule, cohort_id=cohort_id, member_id=member_id)
        response = _call(client, method, path, token)
        checked += 1
        if response.status_code not in (403, 404):
            wrong.append((method, path, response.status_code))
    return checked, wrong


def test_a_member_is_refused_every_staff_and_admin_route(
        app: Flask, client: FlaskClient, cohort: Cohort, member: User) -> None:
    sign_in(client, "Sunny River")
    checked, wrong = _refused(app, client, {"staff", "admin"}, cohort_id=cohort.id or 0,
                              member_id=member.id or 0)
    assert checked > 40
    assert wrong == []


def test_a_coach_is_refused_every_admin_route_and_every_member_only_route(
        app: Flask, client: FlaskClient, cohort: Cohort, member: User) -> None:
    sign_in(client, "Coach Rosa")
    checked, wrong = _refused(app, client, {"admin", "member"}, cohort_id=cohort.id or 0,
                              member_id=member.id or 0)
    assert checked > 30
    assert wrong == []


# --- the role x object matrix ---

# The moderator is a staff account seated to moderate the cohort's feed, and nothing more.
ROLES = ("owner", "peer", "outsider", "coach", "moderator", "other coach", "admin", "anonymous")
NAMES = {"owner": "Sunny River", "peer": "Quiet Oak", "outsider": "Far Away",
         "coach": "Coach Rosa", "moderator": "Mod Kim", "other coach": "Coach Ben",
         "admin": "Admin Ada"}
OWNER = frozenset({"owner"})
GROUP = frozenset({"owner", "peer", "coach"})
SEATED = GROUP | {"moderator"}  # everyone who reads the cohort's feed
MODERATORS = frozenset({"coach", "moderator"})
COACHES = frozenset({"coach", "admin"})  # the cohort's coach; admins run every cohort
NOBODY: frozenset[str] = frozenset()


@dataclass
class World:
    """The cast, each signed in on their own device, and the ids of what the owner made."""

    app: Flask
    session: Session
    clients: dict[str, FlaskClient]
    tokens: dict[str, str]
    owner: User
    ids: dict[str, Any] = field(default_factory=dict)

    def call(self, role: str, method: str, path: str,
             body: dict[str, object] | None = None) -> TestResponse:
        return _call(self.clients[role], method, path.format(**self.ids), self.tokens[role],
                     body)

    def made(self, response: TestResponse) -> int:
        """The id of what the owner just made through the API."""
        assert response.status_code == 201, response.get_data(as_text=True)
        made_id: int = response.get_json()["id"]
        return made_id

    def db(self) -> Session:
        return factories.fresh(self.session)


@dataclass(frozen=True)
class Try:
    """One way to read or change an object, and who should get through."""

    method: str
    path: str
    allowed: frozenset[str]
    body: dict[str, object] | None = None
    # A read is reached when the object's words are in the answer; `by_status`: when it answers
    # 2xx (a route about that object by its id). A change is reached when the object changed,
    # or (API, `by_status`) when it answers 2xx.
    by_status: bool = False
    write: bool = False
    seen: Callable[[World, TestResponse], bool] | None = None  # instead of the words
    reset: Callable[[World], None] | None = None  # before each caller: the object as it was

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


def read(path: str, allowed: frozenset[str], **kw: Any) -> Try:
    return Try("GET", path, allowed, **kw)


def write(method: str, path: str, allowed: frozenset[str], body: dict[str, object] | None = None,
          **kw: Any) -> Try:
    return Try(method, path, allowed, body, write=True, **kw)


@dataclass(frozen=True)
class Case:
    """One object the owner (or their cohort) has, and every way to reach it."""

    name: str
    make: Callable[[World], None]
    words: tuple[str, ...]            # patterns: any of them in an answer shows the object
    state: Callable[[World], object]  # what a change would change
    tries: tuple[Try, ...]


@dataclass(frozen=True)
class Check:
    case: str
    route: str
    role: str
    status: int
    reached: bool
    allowed: bool
    leaked: bool  # the object's words in an answer to someone else not allowed


# How each object is made (by the owner, through the API wherever there is one) and observed.


def _put_back(model: type[SQLModel], key: str, **values: object) -> Callable[[World], None]:
    """A reset: the object `world.ids[key]` of `model` gets `values` back."""
    def reset(world: World) -> None:
        db = world.db()
        row = db.get(model, world.ids[key])
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        db.add(row)
        db.commit()
    return reset


def _about(key: str, kind: str = "item") -> dict[str, object]:
    """What a report or a moderation action is about: the object `world.ids[key]`."""
    return {"target_type": kind, "target_id": f"{{{key}}}"}


def _make_private_goal(world: World) -> None:
    world.ids["goal"] = world.made(world.call("owner", "POST", "/api/v1/goals", {
        "kind": "habit", "title": "Private goal: a walk to the lighthouse",
        "visibility": "private"}))
    db = world.db()
    goal = db.get(Goal, world.ids["goal"])
    assert goal is not None
    goal.starts_on -= timedelta(days=3)  # set a few days ago: room for two days' check-ins
    db.add(goal)
    db.commit()


def _private_again(world: World) -> None:
    world.call("owner", "PATCH", "/api/v1/goals/{goal}", {"visibility": "private"})


def _make_group_goal(world: World) -> None:
    world.ids["group_goal"] = world.made(world.call("owner", "POST", "/api/v1/goals", {
        "kind": "habit", "title": "Group goal: feed the ducks at noon", "visibility": "peers"}))


def _goal_state(key: str) -> Callable[[World], object]:
    def state(world: World) -> object:
        db = world.db()
        goal = db.get(Goal, world.ids[key])
        assert goal is not None
        check_ins = db.exec(select(col(CheckIn.day), col(CheckIn.done)).where(
            col(CheckIn.goal_id) == goal.id)).all()
        pauses = db.exec(select(func.count()).select_from(GoalPause).where(
            col(GoalPause.goal_id) == goal.id)).one()
        posts = db.exec(select(func.count()).select_from(FeedItem).where(
            col(FeedItem.goal_id) == goal.id)).one()
        return (goal.title, goal.visibility, goal.status, sorted(check_ins), pauses, posts)
    return state


def _make_tip(world: World) -> None:
    world.ids["item"] = world.made(world.call("owner", "POST", "/api/v1/feed", {
        "kind": "tip", "body": "Tip: a thermos of mint tea makes the bench walk easier"}))


def _make_held_post(world: World) -> None:
    world.ids["held"] = world.made(world.call("owner", "POST", "/api/v1/feed", {
        "kind": "story", "body": f"{CRISIS}, by the quiet pond"}))
    status = world.db().get(FeedItem, world.ids["held"])
    assert status is not None and status.status == ItemStatus.HELD


def _item_state(key: str) -> Callable[[World], object]:
    def state(world: World) -> object:
        db = world.db()
        item = db.get(FeedItem, world.ids[key])
        assert item is not None
        cheers = db.exec(select(Cheer.member_id, Cheer.kind).where(
            col(Cheer.item_id) == item.id)).all()
        comments = db.exec(select(func.count()).select_from(Comment).where(
            col(Comment.item_id) == item.id)).one()
        return (item.status, item.pinned_at, item.misleading_note, sorted(cheers), comments,
                _reports_and_actions(db, "item", item.id or 0))
    return state


def _reports_and_actions(db: Session, target_type: str, target_id: int) -> tuple[int, int]:
    reports = db.exec(select(func.count()).select_from(Report).where(
        col(Report.target_type) == target_type, col(Report.target_id) == target_id)).one()
    actions = db.exec(select(func.count()).select_from(ModerationAction).where(
        col(ModerationAction.target_type) == target_type,
        col(ModerationAction.target_id) == target_id)).one()
    return reports, actions


def _make_comments(world: World) -> None:
    """The owner's comment on the peer's story."""
    world.ids["story"] = world.made(world.call("peer", "POST", "/api/v1/feed", {
        "kind": "story", "body": "Saw a heron by the canal today."}))
    world.ids["comment"] = world.made(world.call(
        "owner", "POST", "/api/v1/feed/{story}/comments",
        {"body": "Comment: herons make my whole morning"}))


def _make_held_comment(world: World) -> None:
    world.ids["held_comment"] = world.made(world.call(
        "owner", "POST", "/api/v1/feed/{story}/comments", {"body": f"{CRISIS}, near the canal"}))


def _comment_state(key: str) -> Callable[[World], object]:
    def state(world: World) -> object:
        db = world.db()
        comment = db.get(Comment, world.ids[key])
        assert comment is not None
        return comment.status, comment.body, _reports_and_actions(db, "comment", comment.id or 0)
    return state


def _make_numbers(world: World) -> None:
    today = local_today(world.owner, utcnow())
    steps = world.call("owner", "POST", "/api/v1/metrics/steps",
                       {"day": today.isoformat(), "steps": 13579})
    sleep = world.call("owner", "POST", "/api/v1/metrics/sleep", {
        "bedtime": f"{(today - timedelta(days=1)).isoformat()}T21:13",
        "wake_time": f"{today.isoformat()}T06:00"})
    assert steps.status_code == sleep.status_code == 200, sleep.get_data(as_text=True)


def _share_numbers_day_by_day(world: World) -> None:
    shared = world.call("owner", "PUT", "/api/v1/me/sharing", {"steps": "detail",
                                                               "sleep": "detail"})
    assert shared.status_code == 200, shared.get_data(as_text=True)


def _numbers_state(world: World) -> object:
    db = world.db()
    member_id = world.owner.id
    steps = db.exec(select(col(DailySteps.day), col(DailySteps.source), col(DailySteps.steps)).where(
        col(DailySteps.member_id) == member_id)).all()
    nights = db.exec(select(col(SleepNight.night), col(SleepNight.minutes_asleep)).where(
        col(SleepNight.member_id) == member_id)).all()
    return sorted(steps), sorted(nights)


def _make_connection(world: World) -> None:
    db = world.db()
    now = utcnow()
    connection = Connection(member_id=world.owner.id or 0, provider="google",
                            external_user_id="lighthouse-keeper", access_token_enc="sealed",
                            backfill_from=local_today(world.owner, now) - timedelta(days=30),
                            last_sync_at=now)
    db.add(connection)
    db.commit()
    world.ids["connection"] = connection.id


def _connection_state(world: World) -> object:
    connection = world.db().get(Connection, world.ids["connection"])
    assert connection is not None
    return connection.status, connection.access_token_enc, connection.member_id


def _member_row(world: World, response: TestResponse) -> dict[str, Any] | None:
    rows = response.get_json() if response.status_code == 200 else None
    return next((r for r in rows or [] if r["member_id"] == world.owner.id), None)


def _tracker_light_shown(world: World, response: TestResponse) -> bool:
    row = _member_row(world, response)
    return row is not None and row["tracker"] == "green"


def _devices_shown(world: World, response: TestResponse) -> bool:
    row = _member_row(world, response)
    return row is not None and row["devices"] == 1


SUBSCRIPTION = {"endpoint": "https://push.example.test/send/lighthouse-phone",
                "keys": {"p256dh": "BA" + "A" * 85, "auth": "A" * 22}}


def _subscribe(world: World) -> None:
    """The owner's phone subscribes (again, when a try took it away)."""
    db = world.db()
    found = db.exec(select(PushSubscription).where(
        col(PushSubscription.endpoint) == SUBSCRIPTION["endpoint"])).first()
    if found is not None:
        world.ids["subscription"] = found.id
        return
    response = world.clients["owner"].post(
        "/api/v1/push/subscriptions", json=SUBSCRIPTION,
        headers={"X-CSRFToken": world.tokens["owner"], "User-Agent": "Lighthouse keeper phone"})
    world.ids["subscription"] = world.made(response)


def _subscription_state(world: World) -> object:
    found = world.db().exec(select(PushSubscription.id, PushSubscription.member_id).where(
        col(PushSubscription.endpoint) == SUBSCRIPTION["endpoint"])).all()
    return sorted(found)


def _make_notification(world: World) -> None:
    with world.app.app_context():
        db = world.db()
        found = notify.notify(db, user=world.owner, kind=Kind.COACH, topic="authz",
                              data={"name": "Coach Rosa", "text": "Inbox: see you at the pier"},
                              url="/inbox", now=utcnow())
        db.commit()
        world.ids["notification"] = found.id


def _unread(world: World) -> None:
    db = world.db()
    found = db.get(Notification, world.ids["notification"])
    assert found is not None
    found.read_at = None
    db.add(found)
    db.commit()


def _inbox_state(world: World) -> object:
    db = world.db()
    rows = db.exec(select(Notification.id, Notification.read_at).where(
        col(Notification.user_id) == world.owner.id)).all()
    return sorted(rows, key=lambda r: r[0])


def _other_device(world: World) -> None:
    """The owner is signed in on a tablet too (again, when a try signed it out)."""
    db = world.db()
    if db.get(UserSession, world.ids.get("device", 0)) is None:
        record, _token = accounts.start_session(db, user=world.owner,
                                                device="Tablet by the window", now=utcnow())
        db.commit()
        world.ids["device"] = record.id


def _device_state(world: World) -> object:
    return world.db().get(UserSession, world.ids["device"]) is not None


def _agree_to_research(world: World) -> None:
    for role in ("owner", "peer"):
        agreed = world.call(role, "PUT", "/api/v1/me/sharing", {"research": True})
        assert agreed.status_code == 200, agreed.get_data(as_text=True)
    study_ids = consent.research_study_ids(world.db(), member_ids=[world.owner.id or 0])
    world.ids["study_id"] = study_ids[world.owner.id or 0]


def _resets_state(world: World) -> object:
    return world.db().exec(select(func.count()).select_from(ResetToken).where(
        col(ResetToken.user_id) == world.owner.id)).one()


def _warn_the_owner(world: World) -> None:
    world.ids["action"] = world.made(world.call("coach", "POST", "/api/v1/moderation/actions", {
        "kind": "warn", "target_type": "member", "target_id": world.ids["member"],
        "reason": "Please keep it kind down by the harbour."}))


def _no_appeal(world: World) -> None:
    db = world.db()
    for found in db.exec(select(Appeal).where(col(Appeal.action_id) == world.ids["action"])):
        db.delete(found)
    db.commit()


def _open_appeal(world: World) -> None:
    """An appeal of the warning, not answered yet."""
    _no_appeal(world)
    world.call("owner", "POST", "/api/v1/moderation/actions/{action}/appeal",
               {"text": "I was only joking with a friend."})
    found = world.db().exec(select(Appeal).where(
        col(Appeal.action_id) == world.ids["action"])).one()
    world.ids["appeal"] = found.id


def _appeal_state(world: World) -> object:
    return sorted(world.db().exec(select(Appeal.action_id, Appeal.decided_at).where(
        col(Appeal.action_id) == world.ids["action"])).all(), key=repr)


def _no_relations(world: World) -> None:
    db = world.db()
    member_id = world.ids["member"]
    for found in [*db.exec(select(Block).where(col(Block.blocked_id) == member_id)),
                  *db.exec(select(Mute).where(col(Mute.muted_id) == member_id))]:
        db.delete(found)
    db.commit()


def _relations_state(world: World) -> object:
    db = world.db()
    member_id = world.ids["member"]
    blocks = db.exec(select(Block.blocker_id).where(col(Block.blocked_id) == member_id)).all()
    mutes = db.exec(select(Mute.muter_id).where(col(Mute.muted_id) == member_id)).all()
    return sorted(blocks), sorted(mutes), _reports_and_actions(db, "member", member_id)


def _nothing(world: World) -> None:
    return None


def _study_id_shown(world: World, response: TestResponse) -> bool:
    return response.status_code == 200 and world.ids["study_id"] in response.get_data(as_text=True)


DAYS = "?start={yesterday}&end={today}"  # an export's range
# Resets: the object as it was made, before each caller tries again.
GOAL_ACTIVE = _put_back(Goal, "goal", status=GoalStatus.ACTIVE)
TIP_SHOWN = _put_back(FeedItem, "item", status=ItemStatus.VISIBLE)
POST_HELD = _put_back(FeedItem, "held", status=ItemStatus.HELD)
COMMENT_SHOWN = _put_back(Comment, "comment", status=ItemStatus.VISIBLE)

CASES: tuple[Case, ...] = (
    Case("a private goal", _make_private_goal, ("Private goal: a walk to the lighthouse",),
         _goal_state("goal"), (
             read("/goals/{goal}", OWNER),
             read("/goals", OWNER),
             read("/home", OWNER),
             read("/members/{member}/goals", OWNER),
             read("/api/v1/goals/{goal}", OWNER),
             read("/api/v1/goals/{goal}/history", OWNER, by_status=True),
             read("/api/v1/goals/{goal}/milestones", OWNER, by_status=True),
             read("/api/v1/goals", OWNER),
             read("/api/v1/members/{member}/goals", OWNER),
             read("/coach/cohorts/{cohort}/members/{member}", NOBODY),
             read("/api/v1/coach/cohorts/{cohort}/members/{member}", NOBODY),
             read("/feed", NOBODY),
             write("PATCH", "/api/v1/goals/{goal}", OWNER,
                   {"title": "Private goal: a walk to the lighthouse and back"}),
             write("PATCH", "/api/v1/goals/{goal}", OWNER, {"visibility": "peers"},
                   reset=_private_again),
             write("POST", "/goals/{goal}/edit", OWNER, {
                 "title": "Private goal: a walk to the lighthouse at dawn",
                 "visibility": "private"}),
             write("POST", "/api/v1/goals/{goal}/check-ins", OWNER, {"done": False}),
             write("POST", "/goals/{goal}/check-in", OWNER, {"done": "yes", "day": "{yesterday}"}),
             write("POST", "/api/v1/goals/{goal}/share", NOBODY),  # a private goal never is
             write("POST", "/goals/{goal}/share", NOBODY),
             # In turn: paused, back, paused, back (the owner last each time).
             write("POST", "/api/v1/goals/{goal}/pause", OWNER),
             write("POST", "/goals/{goal}/resume", OWNER),
             write("POST", "/goals/{goal}/pause", OWNER),
             write("POST", "/api/v1/goals/{goal}/resume", OWNER),
             write("POST", "/goals/{goal}/archive", OWNER, reset=GOAL_ACTIVE),
             write("POST", "/api/v1/goals/{goal}/archive", OWNER, reset=GOAL_ACTIVE),
         )),
    Case("a goal shared with the group", _make_group_goal,
         ("Group goal: feed the ducks at noon",), _goal_state("group_goal"), (
             read("/goals/{group_goal}", GROUP),
             read("/members/{member}/goals", GROUP),
             read("/api/v1/goals/{group_goal}", GROUP),
             read("/api/v1/goals/{group_goal}/history", GROUP, by_status=True),
             read("/api/v1/members/{member}/goals", GROUP),
             read("/feed", SEATED),
             read("/api/v1/feed", SEATED),
             read("/coach/cohorts/{cohort}/members/{member}", COACHES),
             read("/api/v1/coach/cohorts/{cohort}/members/{member}", COACHES),
             write("PATCH", "/api/v1/goals/{group_goal}", OWNER,
                   {"title": "Group goal: feed the ducks at noon, with oats"}),
             write("POST", "/api/v1/goals/{group_goal}/check-ins", OWNER, {"done": True}),
             write("POST", "/api/v1/goals/{group_goal}/share", OWNER),
             write("POST", "/goals/{group_goal}/pause", OWNER),
         )),
    Case("a tip in the group's feed", _make_tip,
         ("Tip: a thermos of mint tea makes the bench walk easier",), _item_state("item"), (
             read("/feed", SEATED),
             read("/feed?cohort={cohort}", SEATED),
             read("/feed/{item}", SEATED),
             read("/feed/changes?after=0&cohort={cohort}", SEATED),
             read("/api/v1/feed", SEATED),
             read("/api/v1/feed?cohort={cohort}", SEATED),
             read("/api/v1/feed/{item}", SEATED),
             read("/api/v1/feed/tips?cohort={cohort}", SEATED),
             read("/api/v1/feed/{item}/comments", SEATED, by_status=True),
             write("POST", "/api/v1/feed/{item}/cheers", SEATED, {"kind": "well_done"}),
             write("POST", "/feed/{item}/cheer", SEATED, {"kind": "with_you"}),
             write("DELETE", "/api/v1/feed/{item}/cheers/well_done", SEATED),
             write("POST", "/api/v1/feed/{item}/comments", SEATED, {"body": "Lovely idea."}),
             write("POST", "/feed/{item}/comments", SEATED, {"body": "Trying it tomorrow."}),
             write("POST", "/reports", SEATED - OWNER, {**_about("item"), "category": "spam"}),
             write("POST", "/api/v1/reports", SEATED - OWNER,
                   {**_about("item"), "category": "other"}, by_status=True),
             write("PUT", "/api/v1/feed/{item}/pin", frozenset({"coach"})),
             write("POST", "/feed/{item}/pin", frozenset({"coach"}), {"pinned": "no"}),
             write("POST", "/api/v1/moderation/actions", MODERATORS,
                   {**_about("item"), "kind": "misleading", "reason": "Ask a nurse first."}),
             write("POST", "/moderation/act", MODERATORS,
                   {**_about("item"), "kind": "hide", "reason": "Off topic."},
                   reset=TIP_SHOWN),
             write("DELETE", "/api/v1/feed/{item}", OWNER, reset=TIP_SHOWN),
             write("POST", "/feed/{item}/remove", OWNER, reset=TIP_SHOWN),
         )),
    Case("a post held for the coach", _make_held_post, ("by the quiet pond",),
         _item_state("held"), (
             read("/feed/{held}", OWNER),
             read("/feed", OWNER),
             read("/feed/changes?after=0", OWNER),
             read("/api/v1/feed", OWNER),
             read("/api/v1/feed/{held}", OWNER),
             read("/api/v1/feed/{held}/comments", OWNER, by_status=True),
             read("/moderation", MODERATORS),
             read("/api/v1/moderation/queue", MODERATORS),
             write("POST", "/api/v1/feed/{held}/cheers", NOBODY, {"kind": "well_done"}),
             write("POST", "/api/v1/feed/{held}/comments", NOBODY, {"body": "Here for you."}),
             write("POST", "/api/v1/reports", NOBODY, {**_about("held"), "category": "other"},
                   by_status=True),
             write("DELETE", "/api/v1/feed/{held}", OWNER, reset=POST_HELD),
             write("POST", "/api/v1/moderation/actions", MODERATORS,
                   {**_about("held"), "kind": "approve"}, reset=POST_HELD),
         )),
    Case("a comment", _make_comments, ("Comment: herons make my whole morning",),
         _comment_state("comment"), (
             read("/feed/{story}", SEATED),
             read("/api/v1/feed/{story}/comments", SEATED),
             write("POST", "/reports", SEATED - OWNER,
                   {**_about("comment", "comment"), "category": "spam"}),
             write("POST", "/api/v1/reports", SEATED - OWNER,
                   {**_about("comment", "comment"), "category": "other"}, by_status=True),
             write("POST", "/api/v1/moderation/actions", MODERATORS,
                   {**_about("comment", "comment"), "kind": "hide", "reason": "Off topic."},
                   reset=COMMENT_SHOWN),
             write("POST", "/moderation/act", MODERATORS,
                   {**_about("comment", "comment"), "kind": "hide", "reason": "Off topic."},
                   reset=COMMENT_SHOWN),
         )),
    Case("a comment held for the coach", _make_held_comment, ("near the canal",),
         _comment_state("held_comment"), (
             read("/feed/{story}", OWNER),
             read("/api/v1/feed/{story}/comments", OWNER),
             read("/moderation", MODERATORS),
             read("/api/v1/moderation/queue", MODERATORS),
             write("POST", "/api/v1/reports", NOBODY,
                   {**_about("held_comment", "comment"), "category": "other"},
                   by_status=True),
             write("POST", "/api/v1/moderation/actions", MODERATORS,
                   {**_about("held_comment", "comment"), "kind": "approve"}),
         )),
    Case("steps and sleep, shared with nobody", _make_numbers,
         (r"13,?579", r'"sleep_minutes":\s*527\b'), _numbers_state, (
             read("/tracker", OWNER),
             read("/api/v1/metrics", OWNER),
             read("/coach/cohorts/{cohort}/members/{member}", NOBODY),
             read("/api/v1/coach/cohorts/{cohort}/members/{member}", NOBODY),
             read("/coach/cohorts/{cohort}", NOBODY),
             read("/api/v1/coach/cohorts/{cohort}/overview", NOBODY),
         )),
    Case("steps and sleep, shared day by day", _share_numbers_day_by_day, (r"13,?579",),
         _numbers_state, (
             read("/tracker", OWNER),
             read("/api/v1/metrics", OWNER),
             read("/coach/cohorts/{cohort}/members/{member}", COACHES),
             read("/api/v1/coach/cohorts/{cohort}/members/{member}", COACHES),
             read("/coach/cohorts/{elsewhere}/members/{member}", NOBODY),
             read("/api/v1/coach/cohorts/{elsewhere}/members/{member}", NOBODY),
             write("POST", "/api/v1/metrics/steps", OWNER, {"day": "{today}", "steps": 2468}),
             write("POST", "/tracker/steps", OWNER, {"day": "{today}", "steps": "3579"}),
             write("POST", "/api/v1/metrics/sleep", OWNER,
                   {"bedtime": "{today}T00:30", "wake_time": "{today}T07:00"}),
             write("POST", "/tracker/sleep", OWNER,
                   {"bedtime": "{today}T01:00", "wake_time": "{today}T07:15"}),
         )),
    Case("a tracker connection", _make_connection, (r'data-connection="{connection}"',),
         _connection_state, (
             read("/tracker", OWNER),
             read("/api/v1/coach/cohorts/{cohort}/check-ins", COACHES, seen=_tracker_light_shown),
             read("/api/v1/coach/cohorts/{elsewhere}/check-ins", NOBODY,
                  seen=_tracker_light_shown),
             write("POST", "/tracker/disconnect/google", OWNER, {"keep_data": "yes"}),
         )),
    Case("a push subscription", _subscribe, ("Lighthouse keeper phone", "lighthouse-phone"),
         _subscription_state, (
             read("/settings/notifications", OWNER),
             read("/api/v1/cohorts/{cohort}/push-status", COACHES, seen=_devices_shown),
             read("/api/v1/cohorts/{elsewhere}/push-status", NOBODY, seen=_devices_shown),
             write("DELETE", "/api/v1/push/subscriptions/{subscription}", OWNER,
                   reset=_subscribe),
             write("POST", "/settings/notifications/devices/{subscription}/remove", OWNER,
                   reset=_subscribe),
             write("POST", "/api/v1/push/unsubscribe", OWNER,
                   {"endpoint": SUBSCRIPTION["endpoint"]}, reset=_subscribe),
         )),
    Case("an inbox notification", _make_notification, ("Inbox: see you at the pier",),
         _inbox_state, (
             read("/inbox", OWNER),
             read("/api/v1/inbox", OWNER),
             write("GET", "/inbox", OWNER, reset=_unread),  # reading the page marks it read
             write("POST", "/api/v1/inbox/read", OWNER, reset=_unread),
             write("POST", "/api/v1/cohorts/{cohort}/messages", frozenset({"coach"}),
                   {"text": "Walk at nine tomorrow."}),
             write("POST", "/coach/message", frozenset({"coach"}),
                   {"cohort_id": "{cohort}", "text": "Walk at ten, then."}),
         )),
    Case("a signed-in device", _other_device, ("Tablet by the window",), _device_state, (
        read("/settings/sessions", OWNER),
        read("/api/v1/sessions", OWNER),
        write("POST", "/settings/sessions/{device}/end", OWNER, reset=_other_device),
        write("DELETE", "/api/v1/sessions/{device}", OWNER, reset=_other_device),
        write("POST", "/settings/sessions/end-others", OWNER, reset=_other_device),
    )),
    Case("the member, as their coach sees them", _nothing, ("Sunny River",), _resets_state, (
        read("/coach/cohorts/{cohort}/members/{member}", COACHES),
        read("/api/v1/coach/cohorts/{cohort}/members/{member}", COACHES),
        read("/coach/cohorts/{cohort}/check-ins", COACHES),
        read("/api/v1/coach/cohorts/{cohort}/check-ins", COACHES),
        read("/api/v1/cohorts/{cohort}/members", COACHES),
        read("/coach/cohorts/{elsewhere}/members/{member}", NOBODY),
        read("/api/v1/coach/cohorts/{elsewhere}/members/{member}", NOBODY),
        write("POST", "/api/v1/members/{member}/reset-link", COACHES),
        write("POST", "/coach/members/{member}/reset-link", COACHES),
    )),
    Case("the member's own data download", _nothing,
         ("Private goal: a walk to the lighthouse", "Inbox: see you at the pier"), _nothing, (
             read("/api/v1/me/export", OWNER),
             Try("POST", "/settings/my-data", OWNER),  # a download, behind a form
         )),
    Case("the cohort's research export", _agree_to_research, (), _nothing, (
        read("/coach/cohorts/{cohort}/export", COACHES, by_status=True),
        read("/coach/cohorts/{cohort}/export.csv" + DAYS, COACHES, seen=_study_id_shown),
        read("/coach/cohorts/{cohort}/export.json" + DAYS, COACHES, seen=_study_id_shown),
        read("/api/v1/coach/cohorts/{cohort}/export" + DAYS, COACHES, seen=_study_id_shown),
        read("/coach/cohorts/{elsewhere}/export.csv" + DAYS, NOBODY, seen=_study_id_shown),
        read("/api/v1/coach/cohorts/{elsewhere}/export" + DAYS, NOBODY, seen=_study_id_shown),
    )),
    Case("a moderation notice and its appeal", _warn_the_owner, ("down by the harbour",),
         _appeal_state, (
             read("/safety", OWNER),
             write("POST", "/api/v1/moderation/actions/{action}/appeal", OWNER,
                   {"text": "I was only joking."}, reset=_no_appeal),
             write("POST", "/safety/notices/{action}/appeal", OWNER,
                   {"text": "It was a joke between friends."}, reset=_no_appeal),
             write("POST", "/api/v1/moderation/appeals/{appeal}/decision", MODERATORS,
                   {"upheld": True, "answer": "Thank you; the note stays."}, reset=_open_appeal),
             write("POST", "/moderation/appeals/{appeal}", MODERATORS,
                   {"upheld": "no", "answer": "Thank you; taken back."}, reset=_open_appeal),
         )),
    Case("the member, as their group sees them", _nothing, (), _relations_state, (
        write("PUT", "/api/v1/members/{member}/block", frozenset({"peer"}), reset=_no_relations),
        write("POST", "/members/{member}/block", frozenset({"peer"}), reset=_no_relations),
        write("PUT", "/api/v1/members/{member}/mute", frozenset({"peer"}), reset=_no_relations),
        write("POST", "/members/{member}/mute", frozenset({"peer"}), reset=_no_relations),
        write("POST", "/api/v1/reports", SEATED - OWNER,
              {**_about("member", "member"), "category": "harassment"}),
        write("POST", "/api/v1/moderation/actions", MODERATORS,
              {**_about("member", "member"), "kind": "warn", "reason": "Please be gentle."}),
    )),
)


def _filled(world: World, body: dict[str, object] | None) -> dict[str, object] | None:
    """The body with the world's ids in: "{item}" becomes the item's id (a number for JSON)."""
    if body is None:
        return None
    filled: dict[str, object] = {}
    for key, value in body.items():
        if isinstance(value, str) and re.fullmatch(r"\{\w+\}", value):
            filled[key] = world.ids[value[1:-1]]
        elif isinstance(value, str):
            filled[key] = value.format(**world.ids)
        else:
            filled[key] = value
    return filled


def _text(response: TestResponse) -> str:
    """What the answer says (every file of a zip download)."""
    if response.mimetype != "application/zip":
        return response.get_data(as_text=True)
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as download:
        return "\n".join(download.read(name).decode() for name in download.namelist())


def _attempt(world: World, case: Case, attempt: Try, role: str) -> Check:
    if attempt.reset is not None:
        attempt.reset(world)
    before = case.state(world) if attempt.write else None
    response = world.call(role, attempt.method, attempt.path, _filled(world, attempt.body))
    text = _text(response)
    words = [re.compile(w.format(**world.ids) if "{" in w else w) for w in case.words]
    shows = any(w.search(text) for w in words)
    ok = 200 <= response.status_code < 300
    if attempt.write:
        reached = case.state(world) != before or (attempt.by_status and ok)
    elif attempt.seen is not None:
        reached = attempt.seen(world, response)
    else:
        reached = ok and (attempt.by_status or shows)
    allowed = role in attempt.allowed
    return Check(case=case.name, route=attempt.label, role=role, status=response.status_code,
                 reached=reached, allowed=allowed,
                 leaked=shows and not allowed and role != "owner")


@pytest.fixture
def world(app: Flask, session: Session, coach: User, cohort: Cohort, member: User, peer: User,
          outsider: User) -> World:
    factories.make_user(session, name=NAMES["admin"], role=Role.ADMIN)
    factories.make_coach(session, name=NAMES["moderator"])
    accounts.add_moderator(session, coach=coach, cohort_id=cohort.id or 0,
                           display_name=NAMES["moderator"], now=utcnow())
    session.commit()
    clients, tokens = {}, {}
    for role in ROLES:
        clients[role] = app.test_client()
        if role != "anonymous":
            sign_in(clients[role], NAMES[role])
        tokens[role] = csrf_token(clients[role])
    elsewhere = next(c for c in accounts.find_cohorts(session, name="Elsewhere"))
    found = World(app=app, session=session, clients=clients, tokens=tokens, owner=member)
    found.ids.update(cohort=cohort.id, elsewhere=elsewhere.id, member=member.id)
    today = local_today(member, utcnow())
    found.ids.update(today=today.isoformat(), yesterday=(today - timedelta(days=1)).isoformat())
    return found


def test_no_role_reaches_a_members_objects_beyond_what_the_policy_allows(world: World) -> None:
    checks: list[Check] = []
    for case in CASES:
        case.make(world)
        for attempt in case.tries:
            # Those who should not get through go first, while the object is as it was made.
            for role in sorted(ROLES, key=lambda r: r in attempt.allowed):
                checks.append(_attempt(world, case, attempt, role))
    wrong = [c for c in checks if c.reached and not c.allowed]
    leaked = [c for c in checks if c.leaked]
    refused = [c for c in checks if c.allowed and not c.reached]
    print(f"\n{len(checks)} checks (role, object, route): {len(CASES)} objects, "
          f"{sum(len(c.tries) for c in CASES)} routes, {len(ROLES)} roles; "
          f"{len(wrong)} reached by the wrong role, {len(leaked)} answers with another's data, "
          f"{len(refused)} refused to a role the policy allows")
    assert len(checks) > 1000
    assert _table(wrong) == "", "reached by a role the policy does not allow"
    assert _table(leaked) == "", "answers holding another member's data"
    assert _table(refused) == "", "refused to a role the policy allows"


def _table(checks: list[Check]) -> str:
    return "".join(f"\n  {c.case} | {c.route} | {c.role} | {c.status}" for c in checks)
