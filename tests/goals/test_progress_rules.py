"""The streak rules on their own: grace days, pauses, weeks, and what is worth celebrating."""

from __future__ import annotations

from datetime import date, timedelta

from goals.models import MilestoneKind
from goals.progress import Pause, minute_distance, streaks, units

START = date(2026, 11, 2)  # a Monday


def _days(pattern: str, *, pauses: tuple[Pause, ...] = ()) -> tuple[int, int, list[str]]:
    """Streaks of a daily goal whose days read like "yy.yp" (y met, . missed, p paused, ? today)."""
    met = {START + timedelta(days=i): ch == "y" for i, ch in enumerate(pattern)}
    pause_list = list(pauses) + [Pause(START + timedelta(days=i), START + timedelta(days=i + 1))
                                 for i, ch in enumerate(pattern) if ch == "p"]
    today = START + timedelta(days=len(pattern) - 1)
    result = streaks(units(weekly=False, per_week=7, starts_on=START, today=today,
                           met_days=met, pauses=pause_list), unit="day")
    return result.current, result.best, [f"{c.kind}@{(c.reached_on - START).days}"
                                         for c in result.candidates]


def test_met_days_in_a_row_make_a_streak_with_milestones_at_three_and_seven() -> None:
    current, best, found = _days("yyyyyyy")
    assert (current, best) == (7, 7)
    assert found == ["first_met@0", "streak_3@2", "streak_7@6"]


def test_one_missed_day_is_forgiven_but_two_in_a_row_end_the_streak() -> None:
    assert _days("yyy.yy")[:2] == (5, 5)
    assert _days("yyy..y")[:2] == (1, 3)


def test_only_one_forgiven_day_a_week() -> None:
    assert _days("yy.yy.yy")[:2] == (2, 4)        # the second miss came too soon
    assert _days("yy.yyyyyyy.yy")[:2] == (11, 11)  # over a week later, another is forgiven


def test_today_not_met_yet_does_not_break_anything() -> None:
    assert _days("yyyy.")[:2] == (4, 4)
    assert _days("yyyy")[0] == 4


def test_paused_days_neither_count_nor_break_the_streak() -> None:
    current, best, _ = _days("yyypppppyy")
    assert (current, best) == (5, 5)


def test_a_run_after_a_long_break_is_welcomed_back_and_celebrated_again() -> None:
    current, _, found = _days("yyy........yyy")
    assert current == 3
    assert found == ["first_met@0", "streak_3@2", "welcome_back@11", "streak_3@13"]


def test_beating_the_longest_run_is_a_personal_best_once_per_run() -> None:
    _, best, found = _days("yyy..yyyyy")
    assert best == 5
    assert [f for f in found if f.startswith("personal_best")] == ["personal_best@8"]


def test_weekly_goals_count_weeks_and_the_first_partial_week_asks_for_less() -> None:
    starts = START + timedelta(days=4)  # a Friday: three days left in the first week
    met = {starts + timedelta(days=i): True for i in range(10)}
    found = units(weekly=True, per_week=3, starts_on=starts, today=starts + timedelta(days=16),
                  met_days=met, pauses=[])
    assert [(u.met, u.in_progress) for u in found] == [(True, False), (True, False),
                                                       (False, True)]
    result = streaks(found, unit="week")
    assert (result.current, result.best) == (2, 2)
    assert result.candidates[0].kind == MilestoneKind.FIRST_MET


def test_bedtimes_are_compared_across_midnight() -> None:
    assert minute_distance(23 * 60 + 50, 10) == 20
    assert minute_distance(22 * 60, 23 * 60) == 60
