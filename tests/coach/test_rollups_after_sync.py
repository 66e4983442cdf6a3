"""A real backfill from the Google stand-in moves the coach rollups with it, chunk by chunk."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from app.accounts.models import Cohort, ConsentLevel
from coach import rollups
from tests import factories
from tests.coach.conftest import assert_rollups_match_raw, share, stored_days, today_of
from tests.standins import connect_google
from tests.wearables.conftest import app_config  # noqa: F401  (the stand-in's settings)
from wearables.standins import generator


def test_a_google_backfill_lands_in_the_rollups_exactly(
        app: Flask, client: FlaskClient, session: Session, cohort: Cohort) -> None:
    walker = factories.make_member(session, cohort=cohort, name="New Yorker",
                                   timezone=generator.home_zone(0, 0))
    share(session, walker, ConsentLevel.DETAIL)
    factories.sign_in(client, "New Yorker")
    connect_google(client)

    with app.app_context():
        synced = stored_days(session, cohort.id or 0)
        assert len(synced) >= 300  # a year of backfill
        assert sum(day["steps_members"] for day in synced.values()) >= 300
        assert_rollups_match_raw(session, cohort.id or 0, today_of(walker))
        assert rollups.rebuild_cohort(session, cohort_id=cohort.id or 0) == 0


