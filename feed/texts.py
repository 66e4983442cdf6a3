"""The feed in words, in the reader's language; links in members' text, made safe."""

from __future__ import annotations

import re

from flask_babel import format_date
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from app.i18n import text as _
from feed.models import CheerKind, FeedItem, ItemKind
from goals import texts as goal_texts
from goals.models import Goal, GoalKind, Milestone, MilestoneKind

CHEERS = {
    CheerKind.WELL_DONE: _l("Well done"),
    CheerKind.KEEP_GOING: _l("Keep going"),
    CheerKind.WITH_YOU: _l("With you"),
    CheerKind.PROUD_OF_YOU: _l("Proud of you"),
}
KIND_LABELS = {ItemKind.STORY: _l("A story"), ItemKind.TIP: _l("A tip that helps me")}
_URL = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)



def linkify(text: str) -> Markup:
    """Members' plain text as HTML: everything escaped, web addresses made into links that pass
    no ranking, no window handle and say they are user content."""
    parts: list[str] = []
    last = 0
    for match in _URL.finditer(text):
        parts.append(str(escape(text[last:match.start()])))
        url = match.group(0)
        parts.append(f'<a href="{escape(url)}" rel="nofollow noopener ugc">{escape(url)}</a>')
        last = match.end()
    parts.append(str(escape(text[last:])))
    return Markup("".join(parts))  # noqa: S704  (every piece above is escaped)


def item_text(item: FeedItem, *, goal: Goal | None, milestone: Milestone | None) -> str:
    """What an item about a goal says (stories and tips speak for themselves)."""
    if item.kind == ItemKind.GOAL_SHARED and goal is not None:
        return _("Shared a goal: %(goal)s", goal=goal_texts.name(goal))
    if item.kind == ItemKind.MILESTONE and goal is not None and milestone is not None:
        # Read by peers: the words speak about the author, not to the reader.
        if milestone.kind == MilestoneKind.FIRST_MET:
            words = _("Met this goal for the first time!")
        elif milestone.kind == MilestoneKind.WELCOME_BACK:
            words = _("Back at it after a break. Welcome back!")
        else:
            words = goal_texts.milestone(milestone.kind, milestone.streak, goal)
        return _("%(milestone)s (%(goal)s)", milestone=words, goal=goal_texts.name(goal))
    if item.kind == ItemKind.PROGRESS and goal is not None and item.day is not None:
        return _("%(value)s on %(day)s (%(goal)s)",
                 value=goal_texts.value_text(GoalKind(goal.kind), item.value),
                 day=format_date(item.day, "EEEE d MMM"), goal=goal_texts.name(goal))
    return item.body
