"""Feed pages and API: the cohort's feed (its first page rendered on the server), posting, cheers,
comments, tips that worked, "just reading", sharing a goal's progress, and catching up after a
missed live message (`?after=SEQ`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlmodel import Session, col, select
from werkzeug.wrappers import Response as BaseResponse

from app.accounts import auth
from app.accounts.data_rights import shown_name
from app.accounts.models import Role, User
from app.api import ApiBlueprint
from app.db import get_session, utcnow
from app.errors import DomainError, InvalidInput
from app.extensions import limiter
from app.shell import data_saver
from feed import services, texts
from feed.models import (
    CheerCreate,
    CheerKind,
    CheerResult,
    Comment,
    CommentCreate,
    CommentPublic,
    FeedItem,
    FeedPage,
    FeedSettings,
    ItemKind,
    ItemPublic,
    ItemStatus,
    PostCreate,
)
from feed.safety import resources as crisis
from feed.safety.screening import screen
from goals import services as goals
from goals.models import Goal, GoalStatus, Milestone, Visibility

SAVER_PAGE_SIZE = 10  # posts a page with data saver on

bp = Blueprint("feed", __name__, template_folder="templates")
api = ApiBlueprint("feed_api", __name__, tag="feed")


def _member_key() -> str:
    user = auth.current_user()
    return f"member:{user.id}" if user is not None else f"ip:{request.remote_addr}"


# One allowance per member, shared by the pages and the API.
posts_limit = limiter.shared_limit(
    "30 per hour", scope="feed-posts", key_func=_member_key, methods=["POST"],
    error_message=_l("You have shared a lot this hour. Please take a rest and share more a "
                     "little later."))
cheers_limit = limiter.shared_limit(
    "300 per hour", scope="feed-cheers", key_func=_member_key, methods=["POST", "DELETE"],
    error_message=_l("That is a lot of cheering this hour! Please wait a little before "
                     "cheering more."))
comments_limit = limiter.shared_limit(
    "60 per hour", scope="feed-comments", key_func=_member_key, methods=["POST"],
    error_message=_l("You have written a lot of comments this hour. Please take a rest and "
                     "write more a little later."))


# --- what the pages and the API show ---


@dataclass(frozen=True)
class ItemView:
    item: FeedItem
    author: str
    author_is_member: bool
    text: str
    cheers: dict[str, int]
    mine: set[str]


def _views(session: Session, viewer: User, items: list[FeedItem]) -> list[ItemView]:
    """Items with their author's name, their words, cheer counts and the viewer's own cheers,
    in a handful of queries however many items there are."""
    ids = [item.id or 0 for item in items]
    people = _by_id(session, User, {item.author_id for item in items})
    authors = {user_id: shown_name(user) for user_id, user in people.items()}
    goal_rows = _by_id(session, Goal, {item.goal_id for item in items if item.goal_id})
    milestones = _by_id(session, Milestone,
                        {item.milestone_id for item in items if item.milestone_id})
    counts = services.cheer_counts(session, ids)
    mine = services.my_cheers(session, member=viewer, item_ids=ids)
    return [ItemView(item=item, author=authors.get(item.author_id, ""),
                     author_is_member=getattr(people.get(item.author_id), "role", "")
                     == Role.MEMBER,
                     text=texts.item_text(item, goal=goal_rows.get(item.goal_id),
                                          milestone=milestones.get(item.milestone_id)),
                     cheers=counts.get(item.id or 0, {}), mine=mine.get(item.id or 0, set()))
            for item in items]


Row = TypeVar("Row", User, Goal, Milestone)


def _by_id(session: Session, model: type[Row], ids: set[int | None]) -> dict[int | None, Row]:
    """Rows of `model` by id, without a query when there are none to read."""
    if not ids:
        return {}
    return {row.id: row for row in session.exec(select(model).where(col(model.id).in_(ids)))}


def _public(view: ItemView) -> ItemPublic:
    item = view.item
    return ItemPublic(id=item.id or 0, care_note=item.care_note,
                      misleading_note=item.misleading_note, cohort_id=item.cohort_id,
                      kind=ItemKind(item.kind),
                      author=view.author, author_id=item.author_id, text=view.text,
                      body=item.body, goal_id=item.goal_id, status=ItemStatus(item.status),
                      pinned=item.pinned_at is not None, created_at=item.created_at,
                      cheers=view.cheers, my_cheers=[CheerKind(k) for k in sorted(view.mine)],
                      comment_count=item.comment_count)


def _comment_public(comment: Comment, authors: dict[int | None, str]) -> CommentPublic:
    return CommentPublic(id=comment.id or 0, author=authors.get(comment.author_id, ""),
                         body=comment.body, status=ItemStatus(comment.status),
                         care_note=comment.care_note, created_at=comment.created_at)


def _small_number(raw: str) -> bool:
    """Plain ASCII digits a database id can hold ("²" is a digit to str.isdigit, not to int)."""
    return raw.isascii() and raw.isdigit() and len(raw) <= 18


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(_l("This is not in the expected form: %(name)s.", name=name),
                           field=name) from None
    if not 0 <= value <= 2**62:
        raise InvalidInput(_l("This is not in the expected form: %(name)s.", name=name),
                           field=name)
    return value


def _back(default: str) -> str:
    target = request.form.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") else default


# --- pages ---


def _feed_page(error: DomainError | None = None, form: dict[str, str] | None = None,
               status: int = 200) -> tuple[str, int]:
    viewer = auth.require_user()
    db_session = get_session()
    place = services.default_seat(db_session, viewer=viewer, cohort_id=_int_arg("cohort"))
    before = _int_arg("before")
    size = SAVER_PAGE_SIZE if data_saver() else services.PAGE_SIZE
    items = services.visible_items(db_session, viewer=viewer, place=place, before=before,
                                   limit=size)
    tips = services.tips_that_worked(db_session, viewer=viewer, place=place) if before is None \
        else []
    reading = services.just_reading(db_session, member=viewer)
    views = _views(db_session, viewer, items + tips)  # one set of reads for both lists
    return render_template(
        "feed/feed.html", place=place, views=views[:len(items)], tips=views[len(items):],
        cohorts=services.cohorts_for(db_session, viewer=viewer),
        last_seq=services.last_seq(db_session, cohort_id=place.cohort_id),
        next_before=items[-1].id if items and len(items) == size else None,
        before=before, just_reading=reading, cheer_labels=texts.CHEERS,
        kinds=texts.KIND_LABELS, error=error, form=form or {}, key=secrets.token_urlsafe(16),
        now=utcnow(), crisis_resources=crisis.take(), all_resources=crisis.resources()), status


@bp.get("/feed")
@auth.login_required
def feed_page() -> tuple[str, int]:
    return _feed_page()


@bp.get("/feed/changes")
@auth.login_required
def feed_changes() -> str:
    """What changed after ?after=SEQ, as the same HTML the page uses (for live updates)."""
    viewer = auth.require_user()
    db_session = get_session()
    place = services.default_seat(db_session, viewer=viewer, cohort_id=_int_arg("cohort"))
    after = _int_arg("after") or 0
    found = services.changed_since(db_session, viewer=viewer, place=place, after=after)
    return render_template("feed/_changes.html", views=_views(db_session, viewer, found.items),
                           last_seq=found.through, more=found.more, place=place,
                           cheer_labels=texts.CHEERS, removed=found.removed,
                           key=secrets.token_urlsafe(16), now=utcnow())


@bp.post("/feed")
@auth.login_required
@posts_limit
def post_page() -> Any:
    form = {key: request.form.get(key, "") for key in ("kind", "body", "cohort_id")}
    db_session = get_session()
    try:
        try:
            kind = ItemKind(form["kind"] or ItemKind.STORY)
        except ValueError:
            raise InvalidInput(_l("Please choose a story or a tip."), field="kind") from None
        item = services.post_once(db_session, author=auth.require_user(), kind=kind,
                                  body=form["body"], client_key=request.form.get("client_key")
                                  or None, cohort_id=int(form["cohort_id"])
                                  if _small_number(form["cohort_id"]) else None, now=utcnow(),
                                  hold_first=current_app.config["HOLD_NEW_MEMBER_POSTS"])
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        return _feed_page(exc, form, exc.status)
    if item is None:  # a resend of a post already shared
        return redirect(url_for("feed.feed_page"))
    if item.status == ItemStatus.HELD and screen(item.body).crisis:
        crisis.show_next()
        flash(_("Thank you for sharing this. It goes to your coach first, and they will be in "
                "touch. If you need someone right now, the lines below are there for you."))
        return redirect(url_for("feed.feed_page", cohort=item.cohort_id))
    if item.status == ItemStatus.HELD:
        flash(_("Thank you for sharing. As you are new here, your first posts go to your coach "
                "first; the group will see it soon."))
        return redirect(url_for("feed.feed_page", cohort=item.cohort_id))
    flash(_("Shared with your group. Thank you for sharing."))
    return redirect(url_for("feed.feed_page", cohort=item.cohort_id))


@bp.get("/feed/<int:item_id>")
@auth.login_required
def item_page(item_id: int, error: DomainError | None = None, status: int = 200
              ) -> tuple[str, int]:
    viewer = auth.require_user()
    db_session = get_session()
    item, place = services.visible_item(db_session, viewer=viewer, item_id=item_id)
    comments = services.comments_of(db_session, viewer=viewer, item=item)
    authors = {u.id: shown_name(u) for u in db_session.exec(select(User).where(
        col(User.id).in_({c.author_id for c in comments})))}
    return render_template(
        "feed/item.html", view=_views(db_session, viewer, [item])[0], place=place,
        comments=[(c, authors.get(c.author_id, "")) for c in comments], error=error,
        cheer_labels=texts.CHEERS, key=secrets.token_urlsafe(16), now=utcnow(),
        last_seq=services.last_seq(db_session, cohort_id=place.cohort_id),
        crisis_resources=crisis.take(), all_resources=crisis.resources(),
        just_reading=services.just_reading(db_session, member=viewer)), status


@bp.post("/feed/<int:item_id>/cheer")
@auth.login_required
@cheers_limit
def cheer_page(item_id: int) -> BaseResponse:
    """One tap: give this cheer, or take it back if it was given."""
    db_session = get_session()
    try:
        kind = CheerKind(request.form.get("kind", ""))
    except ValueError:
        raise InvalidInput(_l("Please choose one of the cheers."), field="kind") from None
    viewer = auth.require_user()
    if request.form.get("undo"):
        services.undo_cheer(db_session, member=viewer, item_id=item_id, kind=kind)
    else:
        services.give_cheer(db_session, member=viewer, item_id=item_id, kind=kind,
                            client_key=request.form.get("client_key") or None, now=utcnow())
    db_session.commit()
    return redirect(_back(url_for("feed.feed_page")) + f"#item-{item_id}")


@bp.post("/feed/<int:item_id>/comments")
@auth.login_required
@comments_limit
def comment_page(item_id: int) -> Any:
    db_session = get_session()
    try:
        comment = services.add_comment(db_session, author=auth.require_user(), item_id=item_id,
                                       body=request.form.get("body", ""),
                                       client_key=request.form.get("client_key") or None,
                                       now=utcnow())
        db_session.commit()
    except DomainError as exc:
        db_session.rollback()
        if exc.status == 404:
            raise
        return item_page(item_id, exc, exc.status)
    if comment is not None and comment.status == ItemStatus.HELD:
        crisis.show_next()
        flash(_("Thank you for sharing this. It goes to your coach first, and they will be in "
                "touch. If you need someone right now, the lines below are there for you."))
    return redirect(url_for("feed.item_page", item_id=item_id) + "#comments")


@bp.post("/feed/<int:item_id>/remove")
@auth.login_required
def remove_page(item_id: int) -> BaseResponse:
    db_session = get_session()
    services.remove_own(db_session, author=auth.require_user(), item_id=item_id)
    db_session.commit()
    flash(_("Your post is taken down."))
    return redirect(url_for("feed.feed_page"))


@bp.post("/feed/<int:item_id>/pin")
@auth.roles_required(Role.COACH)
def pin_page(item_id: int) -> BaseResponse:
    db_session = get_session()
    pinned = request.form.get("pinned", "yes") != "no"
    item = services.pin_tip(db_session, coach=auth.require_user(), item_id=item_id,
                            pinned=pinned, now=utcnow())
    db_session.commit()
    flash(_("Pinned to the tips that worked.") if pinned else _("Taken out of the tips that "
                                                                  "worked."))
    return redirect(url_for("feed.feed_page", cohort=item.cohort_id))


@bp.post("/feed/settings")
@auth.roles_required(Role.MEMBER)
def settings_page() -> BaseResponse:
    db_session = get_session()
    on = request.form.get("just_reading") == "yes"
    services.set_just_reading(db_session, member=auth.require_user(), on=on)
    db_session.commit()
    flash(_("Just reading for now. Nothing here will ask you to post.") if on else
          _("Welcome back to sharing, whenever you like."))
    return redirect(url_for("feed.feed_page"))


def _share_progress(member: User, goal_id: int, now: datetime) -> list[FeedItem]:
    db_session = get_session()
    goal = goals.own_goal(db_session, member=member, goal_id=goal_id)
    today = goals.local_today(member, now)
    latest = next((d for d in goals.history(db_session, goal=goal, today=today, days=2)
                   if d.value is not None), None)
    if latest is None:
        raise InvalidInput(_l("There is no progress to share yet today. It will be here once "
                              "your numbers come in."))
    items = services.share_progress(db_session, member=member, goal=goal, day=latest.day,
                                    value=latest.value or 0, now=now)
    db_session.commit()
    return items


@bp.post("/goals/<int:goal_id>/share")
@auth.roles_required(Role.MEMBER)
@posts_limit
def share_progress_page(goal_id: int) -> BaseResponse:
    try:
        _share_progress(auth.require_user(), goal_id, utcnow())
    except InvalidInput as exc:
        get_session().rollback()
        flash(str(exc.message))
        return redirect(url_for("goals.goal_page", goal_id=goal_id))
    flash(_("Shared with your group."))
    return redirect(url_for("goals.goal_page", goal_id=goal_id))


def goal_section(session: Session, viewer: User, goal: Goal) -> Markup:
    """On a goal shared with the group, its owner may share the day's progress (unless they are
    just reading for now: then nothing asks them to post)."""
    if (goal.member_id != viewer.id or goal.visibility != Visibility.PEERS
            or goal.status != GoalStatus.ACTIVE
            or services.just_reading(session, member=viewer)):
        return Markup("")
    html = render_template("feed/_share_goal.html", goal=goal)
    return Markup(html)  # noqa: S704  (rendered by Jinja with autoescaping)


# --- JSON API ---


@api.operation("GET", "/feed", summary=(
    "My peer group's feed: the newest items (?before=ID to scroll back), or what changed after "
    "?after=SEQ (to catch up after a missed live message)."), response=FeedPage)
def api_feed() -> FeedPage:
    viewer = auth.require_user()
    db_session = get_session()
    place = services.default_seat(db_session, viewer=viewer, cohort_id=_int_arg("cohort"))
    after = _int_arg("after")
    more = False
    if after is not None:
        found = services.changed_since(db_session, viewer=viewer, place=place, after=after)
        items, newest, more, next_before = found.items, found.through, found.more, None
    else:
        limit = _int_arg("limit") or services.PAGE_SIZE
        if not 1 <= limit <= 100:
            raise InvalidInput(_l("Please ask for 1 to 100 items."), field="limit")
        items = services.visible_items(db_session, viewer=viewer, place=place,
                                       before=_int_arg("before"), limit=limit)
        newest = services.last_seq(db_session, cohort_id=place.cohort_id)
        next_before = items[-1].id if len(items) == limit else None
    return FeedPage(items=[_public(v) for v in _views(db_session, viewer, items)],
                    last_seq=newest, more=more, next_before=next_before)


@api.operation("POST", "/feed", summary="Share a story or a tip with my peer group.",
               body=PostCreate, response=ItemPublic, status=201, resend=True)
@posts_limit
def api_post(body: PostCreate) -> ItemPublic | None:
    viewer = auth.require_user()
    db_session = get_session()
    item = services.post_once(db_session, author=viewer, cohort_id=body.cohort_id,
                              kind=body.kind, body=body.body, client_key=body.client_key,
                              now=utcnow(), hold_first=current_app.config["HOLD_NEW_MEMBER_POSTS"])
    db_session.commit()
    if item is None:
        return None  # a resend: already shared
    return _public(_views(db_session, viewer, [item])[0])


@api.operation("GET", "/feed/<int:item_id>", summary="One item of my peer group's feed.",
               response=ItemPublic)
def api_item(item_id: int) -> ItemPublic:
    viewer = auth.require_user()
    db_session = get_session()
    item, _place = services.visible_item(db_session, viewer=viewer, item_id=item_id)
    return _public(_views(db_session, viewer, [item])[0])


@api.operation("DELETE", "/feed/<int:item_id>", summary="Take down my own post.")
def api_remove(item_id: int) -> None:
    db_session = get_session()
    services.remove_own(db_session, author=auth.require_user(), item_id=item_id)
    db_session.commit()


@api.operation("POST", "/feed/<int:item_id>/cheers",
               summary="Cheer an item (one of each kind; a resend with the same key counts once).",
               body=CheerCreate, response=CheerResult)
@cheers_limit
def api_cheer(item_id: int, body: CheerCreate) -> CheerResult:
    viewer = auth.require_user()
    db_session = get_session()
    stored = services.give_cheer(db_session, member=viewer, item_id=item_id, kind=body.kind,
                                 client_key=body.client_key, now=utcnow())
    # Counted inside the transaction: after the commit, a busy pool could make the member wait
    # (and see an error) for a cheer that is already stored.
    counts = services.cheer_counts(db_session, [item_id]).get(item_id, {})
    db_session.commit()
    return CheerResult(stored=stored, cheers=counts)


@api.operation("DELETE", "/feed/<int:item_id>/cheers/<kind>", summary="Take my cheer back.",
               response=CheerResult)
@cheers_limit
def api_undo_cheer(item_id: int, kind: str) -> CheerResult:
    try:
        cheer = CheerKind(kind)
    except ValueError:
        raise InvalidInput(_l("Please choose one of the cheers."), field="kind") from None
    viewer = auth.require_user()
    db_session = get_session()
    stored = services.undo_cheer(db_session, member=viewer, item_id=item_id, kind=cheer)
    counts = services.cheer_counts(db_session, [item_id]).get(item_id, {})
    db_session.commit()
    return CheerResult(stored=stored, cheers=counts)


@api.operation("GET", "/feed/<int:item_id>/comments", summary="An item's comments, oldest first.",
               response=CommentPublic, many=True)
def api_comments(item_id: int) -> list[CommentPublic]:
    viewer = auth.require_user()
    db_session = get_session()
    item, _place = services.visible_item(db_session, viewer=viewer, item_id=item_id)
    comments = services.comments_of(db_session, viewer=viewer, item=item)
    authors = {u.id: shown_name(u) for u in db_session.exec(select(User).where(
        col(User.id).in_({c.author_id for c in comments})))}
    return [_comment_public(c, authors) for c in comments]


@api.operation("POST", "/feed/<int:item_id>/comments",
               summary="Comment on an item (plain text; a resend with the same key counts once).",
               body=CommentCreate, response=CommentPublic, status=201, resend=True)
@comments_limit
def api_comment(item_id: int, body: CommentCreate) -> Any:
    viewer = auth.require_user()
    db_session = get_session()
    comment = services.add_comment(db_session, author=viewer, item_id=item_id, body=body.body,
                                   client_key=body.client_key, now=utcnow())
    db_session.commit()
    if comment is None:
        return None  # a resend: already stored
    return _comment_public(comment, {viewer.id: viewer.display_name})


@api.operation("GET", "/feed/tips", summary="Tips that worked: pinned by coaches, then most cheered.",
               response=ItemPublic, many=True)
def api_tips() -> list[ItemPublic]:
    viewer = auth.require_user()
    db_session = get_session()
    place = services.default_seat(db_session, viewer=viewer, cohort_id=_int_arg("cohort"))
    tips = services.tips_that_worked(db_session, viewer=viewer, place=place)
    return [_public(v) for v in _views(db_session, viewer, tips)]


@api.operation("PUT", "/feed/<int:item_id>/pin", summary="Pin a tip (the group's coaches).",
               response=ItemPublic)
@auth.roles_required(Role.COACH)
def api_pin(item_id: int) -> ItemPublic:
    viewer = auth.require_user()
    db_session = get_session()
    item = services.pin_tip(db_session, coach=viewer, item_id=item_id, pinned=True, now=utcnow())
    db_session.commit()
    return _public(_views(db_session, viewer, [item])[0])


@api.operation("PUT", "/feed/settings", summary="Just reading for now (hides every prompt to post).",
               body=FeedSettings, response=FeedSettings)
@auth.roles_required(Role.MEMBER)
def api_settings(body: FeedSettings) -> FeedSettings:
    db_session = get_session()
    services.set_just_reading(db_session, member=auth.require_user(), on=body.just_reading)
    db_session.commit()
    return body


@api.operation("POST", "/goals/<int:goal_id>/share",
               summary="Share my latest progress on a goal shared with my group.",
               response=ItemPublic, many=True, status=201)
@auth.roles_required(Role.MEMBER)
@posts_limit
def api_share_progress(goal_id: int) -> list[ItemPublic]:
    viewer = auth.require_user()
    items = _share_progress(viewer, goal_id, utcnow())
    return [_public(v) for v in _views(get_session(), viewer, items)]
