"""Goals in words, in the reader's language: names, today's progress, streaks and milestones.

Warm and plain, never shaming: a day without data is "not yet", a missed day is never named.
"""

from __future__ import annotations

from flask_babel import format_decimal
from flask_babel import lazy_gettext as _l

from app.i18n import plural as ngettext
from app.i18n import text as _
from goals.models import Goal, GoalKind, GoalStatus, GoalTemplate, MilestoneKind, Visibility
from goals.services import Progress

KIND_LABELS = {
    GoalKind.STEPS: _l("Steps each day"),
    GoalKind.ACTIVE_DAYS: _l("Active days each week"),
    GoalKind.SLEEP: _l("Hours of sleep"),
    GoalKind.BEDTIME: _l("A steady bedtime"),
    GoalKind.HABIT: _l("A daily habit"),
}
KIND_HELP = {
    GoalKind.STEPS: _l("A number of steps to reach each day. Your tracker, a file or what you "
                       "type in counts."),
    GoalKind.ACTIVE_DAYS: _l("A few days a week when you move a bit more. You pick how many "
                             "days and how many steps make a day active."),
    GoalKind.SLEEP: _l("How long you would like to sleep at night."),
    GoalKind.BEDTIME: _l("Going to bed around the same time helps many people feel steadier. "
                         "You pick the time and how close counts."),
    GoalKind.HABIT: _l("Something small you would like to do each day, in your own words. You "
                       "answer with one tap."),
}
HABIT_IDEAS = (_l("Went outside"), _l("Ate a vegetable"), _l("No cigarettes today"),
               _l("Drank a glass of water"), _l("Took my medication as planned"),
               _l("Talked to someone"), _l("Took a few slow breaths"))
VISIBILITY_LABELS = {
    Visibility.PRIVATE: _l("Only me"),
    Visibility.COACH: _l("Me and my coach"),
    Visibility.PEERS: _l("My peer group"),
}




def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def duration(minutes: int) -> str:
    """7 h 10 min."""
    hours, rest = divmod(minutes, 60)
    if not rest:
        return _("%(hours)d h", hours=hours)
    return _("%(hours)d h %(minutes)d min", hours=hours, minutes=rest)


def hours(minutes: int) -> str:
    return str(format_decimal(minutes / 60, format="#,##0.#"))


def value_text(kind: GoalKind, value: int | None) -> str:
    """A day's value in words: steps, time asleep, a bedtime, or a check-in."""
    if value is None:
        return _("no data")
    if kind in (GoalKind.STEPS, GoalKind.ACTIVE_DAYS):
        return ngettext("%(steps)s step", "%(steps)s steps", value, steps=format_decimal(value))
    if kind == GoalKind.SLEEP:
        return duration(value)
    if kind == GoalKind.BEDTIME:
        return _("in bed at %(time)s", time=clock(value))
    return _("done") if value else _("not today")


def name(goal: Goal | GoalTemplate) -> str:
    """The goal in plain words: the member's own, or written from its kind and target."""
    if goal.title:
        return goal.title
    kind = GoalKind(goal.kind)
    if kind == GoalKind.STEPS:
        return _("Walk %(steps)s steps a day", steps=format_decimal(goal.target))
    if kind == GoalKind.ACTIVE_DAYS:
        return ngettext("Be active %(num)d day a week (%(steps)s steps or more)",
                        "Be active %(num)d days a week (%(steps)s steps or more)",
                        goal.per_week, steps=format_decimal(goal.target))
    if kind == GoalKind.SLEEP:
        return _("Sleep %(hours)s hours a night", hours=hours(goal.target))
    if kind == GoalKind.BEDTIME:
        return ngettext("Go to bed around %(time)s, %(num)d night a week",
                        "Go to bed around %(time)s, %(num)d nights a week",
                        goal.per_week, time=clock(goal.target))
    return str(KIND_LABELS[kind])


def streak(goal: Goal) -> str:
    if goal.kind in (GoalKind.ACTIVE_DAYS, GoalKind.BEDTIME):
        return ngettext("%(num)d week in a row", "%(num)d weeks in a row", goal.current_streak)
    return ngettext("%(num)d day in a row", "%(num)d days in a row", goal.current_streak)


def summary(goal: Goal, progress: Progress) -> str:
    """Where the goal stands today, in one kind sentence."""
    kind = GoalKind(goal.kind)
    if goal.status == GoalStatus.PAUSED or progress.paused_today:
        return _("Resting for now. Your streak is kept for when you come back.")
    if goal.status == GoalStatus.ARCHIVED:
        return _("Archived. Its history stays here for you.")
    if kind in (GoalKind.ACTIVE_DAYS, GoalKind.BEDTIME):
        return _("%(met)d of %(needed)d this week.", met=min(progress.week_met,
                                                             progress.week_needed),
                 needed=progress.week_needed) + (
            " " + _("Well done!") if progress.week_needed and
            progress.week_met >= progress.week_needed else "")
    value = progress.today_value
    if kind == GoalKind.STEPS:
        if value is None:
            return _("No steps in yet today. They will show up here.")
        if progress.today_met:
            return _("Done for today: %(steps)s. Well done!", steps=value_text(kind, value))
        return _("%(left)s steps to go today.", left=format_decimal(goal.target - value))
    if kind == GoalKind.SLEEP:
        if value is None:
            return _("Last night's sleep has not come in yet.")
        if progress.today_met:
            return _("Last night: %(time)s. That meets your goal.", time=duration(value))
        return _("Last night: %(time)s. Rest when you can.", time=duration(value))
    if value is None:
        return _("Not checked in yet today.")
    return _("Checked in today. Thank you!") if value else _(
        "Not today, and that is okay. Tomorrow is a new day.")


def milestone(kind: MilestoneKind | str, streak_length: int, goal: Goal) -> str:
    weekly = goal.kind in (GoalKind.ACTIVE_DAYS, GoalKind.BEDTIME)
    if kind == MilestoneKind.FIRST_MET:
        return _("You met this goal for the first time!")
    if kind == MilestoneKind.WELCOME_BACK:
        return _("Welcome back! It is good to see you here again.")
    if kind == MilestoneKind.PERSONAL_BEST:
        return (ngettext("A new personal best: %(num)d week in a row!",
                         "A new personal best: %(num)d weeks in a row!", streak_length)
                if weekly else
                ngettext("A new personal best: %(num)d day in a row!",
                         "A new personal best: %(num)d days in a row!", streak_length))
    return (ngettext("%(num)d week in a row!", "%(num)d weeks in a row!", streak_length)
            if weekly else
            ngettext("%(num)d day in a row!", "%(num)d days in a row!", streak_length))
