"""Counting requests against a platform's per-member limit, so that the limit is never reached.

Pure arithmetic on a small state kept on the connection row (the sync engine reads and writes it
in short transactions, so that every process shares one count):

- aligned windows (Fitbit: the count resets at the top of each hour): at most `limit` requests in
  each window;
- otherwise any `window`-long stretch must hold at most `limit` requests. Two consecutive windows
  are counted, and a request is allowed only while both together are under the limit: any stretch
  of that length lies within two consecutive windows, so it never holds more. The price is that a
  window used to the full is followed by a quiet one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from wearables.providers.base import RequestBudget


@dataclass(frozen=True)
class BudgetState:
    """Where the current window starts, and requests made in it and in the one before."""

    window_start: datetime | None = None
    used: int = 0
    used_before: int = 0


def _aligned_start(budget: RequestBudget, now: datetime) -> datetime:
    seconds = budget.window.total_seconds()
    return datetime.fromtimestamp(now.timestamp() // seconds * seconds, UTC)


def current(state: BudgetState, budget: RequestBudget, now: datetime) -> BudgetState:
    """The state moved forward to the window that holds `now`."""
    window = budget.window
    if budget.aligned:
        start = _aligned_start(budget, now)
        if state.window_start == start:
            return state
        before = state.used if state.window_start == start - window else 0
        return BudgetState(start, 0, before)
    if state.window_start is None or now >= state.window_start + 2 * window:
        return BudgetState(now, 0, 0)
    if now >= state.window_start + window:
        return BudgetState(state.window_start + window, 0, state.used)
    return state


def remaining(state: BudgetState, budget: RequestBudget, now: datetime) -> int:
    """Requests that may still be made now."""
    moved = current(state, budget, now)
    spent = moved.used if budget.aligned else moved.used + moved.used_before
    return max(budget.limit - spent, 0)


def spend(state: BudgetState, budget: RequestBudget, now: datetime) -> BudgetState | None:
    """The state after one more request, or None when the budget does not allow it now."""
    if remaining(state, budget, now) <= 0:
        return None
    return count(state, budget, now)


def count(state: BudgetState, budget: RequestBudget, now: datetime) -> BudgetState:
    """The state after a request that was made anyway (e.g. while connecting)."""
    moved = current(state, budget, now)
    return BudgetState(moved.window_start, moved.used + 1, moved.used_before)


def resume_at(state: BudgetState, budget: RequestBudget, now: datetime, *,
              needed: int = 1) -> datetime:
    """When `needed` requests (at most the limit) will be allowed, if none is made meanwhile."""
    needed = min(needed, budget.limit)
    if remaining(state, budget, now) >= needed:
        return now
    moved = current(state, budget, now)
    if moved.window_start is None:  # never, once moved; for the type checker
        return now
    end = moved.window_start + budget.window
    if budget.aligned or budget.limit - moved.used >= needed:
        return end
    return end + budget.window  # this window's requests still count in the next one
