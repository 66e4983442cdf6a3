"""The arithmetic of a request budget: fixed clock-hour windows (Fitbit), and any-minute windows for a
platform that does not say how it counts (Google), where no stretch may ever hold more than the limit."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from wearables import budget
from wearables.budget import BudgetState
from wearables.providers.base import RequestBudget

HOURLY = RequestBudget(3, timedelta(hours=1), aligned=True)
PER_MINUTE = RequestBudget(5, timedelta(minutes=1))
HALF_PAST = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def test_an_hourly_budget_allows_its_limit_then_waits_for_the_top_of_the_hour() -> None:
    state = BudgetState()
    for _ in range(3):
        spent = budget.spend(state, HOURLY, HALF_PAST)
        assert spent is not None
        state = spent
    assert budget.spend(state, HOURLY, HALF_PAST + timedelta(minutes=29)) is None
    assert budget.resume_at(state, HOURLY, HALF_PAST) == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert budget.remaining(state, HOURLY, datetime(2026, 11, 20, 10, tzinfo=UTC)) == 3


def test_a_minute_budget_used_to_the_full_is_followed_by_a_quiet_minute() -> None:
    state = BudgetState()
    for _ in range(5):
        spent = budget.spend(state, PER_MINUTE, HALF_PAST)
        assert spent is not None
        state = spent
    # Those five still fall within any minute that starts before 9:31, so the next minute waits.
    assert budget.resume_at(state, PER_MINUTE, HALF_PAST) == HALF_PAST + timedelta(minutes=2)
    assert budget.remaining(state, PER_MINUTE, HALF_PAST + timedelta(seconds=90)) == 0
    assert budget.remaining(state, PER_MINUTE, HALF_PAST + timedelta(minutes=2)) == 5


def test_waiting_for_several_requests_counts_what_the_next_window_will_have() -> None:
    state = BudgetState(HALF_PAST, used=4)
    assert budget.resume_at(state, PER_MINUTE, HALF_PAST, needed=1) == HALF_PAST
    assert budget.resume_at(state, PER_MINUTE, HALF_PAST, needed=2) == (
        HALF_PAST + timedelta(minutes=2))  # the next minute would start with 1 of 5 left
    assert budget.resume_at(BudgetState(HALF_PAST, used=3), PER_MINUTE, HALF_PAST,
                            needed=3) == HALF_PAST + timedelta(minutes=2)  # 2 left, 3 wanted
    assert budget.resume_at(BudgetState(HALF_PAST, used=3), PER_MINUTE, HALF_PAST,
                            needed=2) == HALF_PAST


def test_a_request_made_while_connecting_counts_even_over_the_limit() -> None:
    nine = datetime(2026, 11, 20, 9, tzinfo=UTC)
    state = budget.count(BudgetState(nine, used=3), HOURLY, HALF_PAST)
    assert state.used == 4 and budget.remaining(state, HOURLY, HALF_PAST) == 0


def test_no_sixty_seconds_ever_hold_more_than_a_minute_budget() -> None:
    rng = random.Random(7)
    state, moment, admitted = BudgetState(), HALF_PAST, []
    for _ in range(3000):
        moment += timedelta(seconds=rng.choice([0.1, 0.5, 1, 3, 7, 20, 45]))
        spent = budget.spend(state, PER_MINUTE, moment)
        if spent is not None:
            state = spent
            admitted.append(moment)
    assert len(admitted) > 300
    for at in admitted:
        within = [t for t in admitted if at <= t < at + timedelta(minutes=1)]
        assert len(within) <= PER_MINUTE.limit, (at, within)
