"""Speed budgets (issue 9): Lighthouse 12.2.3 in Debian's Chromium at its default mobile settings,
once on each main page, for a member and a coach (`benchmarks/page_budgets.py`, which `make audit`
runs on its own): performance >= 95, accessibility 100, best practices >= 95; the feed's first load
<= 35 KB compressed and its Largest Contentful Paint <= 2.0 s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.page_budgets import (
    FEED_MAX_KB,
    FEED_MAX_LCP_MS,
    MIN_ACCESSIBILITY,
    MIN_BEST_PRACTICES,
    MIN_PERFORMANCE,
    Row,
    audit_pages,
    serving,
    table,
)

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Row]]:
    """Every main page audited once, one after another (each run has the 2 cores to itself)."""
    workdir: Path = tmp_path_factory.mktemp("audit")
    with serving(workdir) as (server, site):
        yield audit_pages(server, site, workdir=workdir)


def test_every_main_page_scores_within_the_budgets(rows: list[Row]) -> None:
    assert len(rows) == 9
    broken = [f"{r.page} ({r.path}): performance {r.performance}" for r in rows
              if r.performance < MIN_PERFORMANCE]
    broken += [f"{r.page} ({r.path}): accessibility {r.accessibility}" for r in rows
               if r.accessibility < MIN_ACCESSIBILITY]
    broken += [f"{r.page} ({r.path}): best practices {r.best_practices}" for r in rows
               if r.best_practices < MIN_BEST_PRACTICES]
    assert broken == [], f"under budget:\n{table(rows)}"


def test_the_feed_loads_light_and_paints_its_largest_content_in_time(rows: list[Row]) -> None:
    feed = next(r for r in rows if r.path == "/feed")
    assert feed.transfer_kb <= FEED_MAX_KB, (
        f"the feed's first load is {feed.transfer_kb:.1f} KB (HTML, CSS, JS, compressed), over "
        f"{FEED_MAX_KB:.0f} KB:\n{table(rows)}")
    assert feed.lcp_ms <= FEED_MAX_LCP_MS, (
        f"the feed's LCP is {feed.lcp_ms:.0f} ms, over {FEED_MAX_LCP_MS:.0f} ms:\n{table(rows)}")
