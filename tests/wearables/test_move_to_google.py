"""An old Fitbit connection meets the 410 of the switched-off API, and moves to Google with its
history: the Google backfill starts where Fitbit stopped, so no day is fetched or shown twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlmodel import Session

from app.accounts.models import Cohort, User
from app.db import get_db, utcnow
from tests import factories
from tests.factories import sign_in
from tests.standins import CLIENT_ID, CLIENT_SECRET, Standin, connect_google, serve
from wearables import services
from wearables.models import Connection, ConnectionStatus, DailySteps
from wearables.providers.base import Identity, TokenSet
from wearables.standins import generator
from wearables.standins.fitbit_legacy import create_fitbit_standin
from wearables.sync import sync_connection
from wearables.tasks import cipher, sync_context


@pytest.fixture
def fitbit_url() -> Iterator[str]:
    url, server = serve(create_fitbit_standin(seed=0, client_id=CLIENT_ID,
                                              client_secret=CLIENT_SECRET))
    yield url
    server.shutdown()


@pytest.fixture
def app_config(google: Standin, fitbit_url: str) -> dict[str, object]:
    return {"GOOGLE_CLIENT_ID": CLIENT_ID, "GOOGLE_CLIENT_SECRET": CLIENT_SECRET,
            "GOOGLE_OAUTH_AUTHORIZE_URL": f"{google.url}/o/oauth2/v2/auth",
            "GOOGLE_OAUTH_TOKEN_URL": f"{google.url}/token",
            "GOOGLE_OAUTH_REVOKE_URL": f"{google.url}/revoke",
            "GOOGLE_HEALTH_API_BASE": google.url,
            "FITBIT_CLIENT_ID": CLIENT_ID, "FITBIT_CLIENT_SECRET": CLIENT_SECRET,
            "FITBIT_AUTHORIZE_URL": f"{fitbit_url}/oauth2/authorize",
            "FITBIT_TOKEN_URL": f"{fitbit_url}/oauth2/token", "FITBIT_API_BASE": fitbit_url}


def _legacy_connection(app: Flask, member: User, fitbit_url: str) -> int:
    grant = requests.post(f"{fitbit_url}/_standin/tokens", json={"login_hint": "walker"},
                          timeout=5).json()
    with app.app_context(), get_db().transaction() as session:
        connection = services.connect(
            session, member=member, provider="fitbit",
            tokens=TokenSet(grant["access_token"], grant["refresh_token"],
                            utcnow() + timedelta(hours=8)),
            identity=Identity(generator.legacy_user_id(0, 0)), cipher=cipher(),
            backfill_days=365, now=utcnow())
        return connection.id or 0


def test_a_gone_fitbit_api_prompts_a_move_and_google_continues_the_history(
        app: Flask, session: Session, cohort: Cohort, google: Standin, fitbit_url: str) -> None:
    member = factories.make_member(session, cohort=cohort, name="New Yorker",
                                   timezone=generator.home_zone(0, 0))
    legacy_id = _legacy_connection(app, member, fitbit_url)  # backfills a year from Fitbit
    fitbit_days = factories.fresh(session).scalar(
        select(func.count()).select_from(DailySteps).where(DailySteps.source == "fitbit"))
    assert fitbit_days and fitbit_days > 300

    requests.post(f"{fitbit_url}/_standin/config", json={"gone": True}, timeout=5)
    with app.app_context():
        assert sync_connection(sync_context(), legacy_id).status == "move_to_google"
    client: FlaskClient = app.test_client()
    sign_in(client, "New Yorker")
    page = client.get("/tracker").get_data(as_text=True)
    assert "Fitbit closed this old way of connecting" in page
    assert "Connect through Google Health" in page

    google.reset()
    connect_google(client)
    calls = google.data_requests()
    assert sum(v for k, v in calls.items() if k.startswith("steps.")) == 1, calls  # recent days
    connections = {c.provider: c for c in factories.fresh(session).scalars(select(Connection))}
    assert connections["fitbit"].status == ConnectionStatus.DISCONNECTED
    assert connections["google"].status == ConnectionStatus.CONNECTED
    days = client.get("/api/v1/metrics?days=365").get_json()
    assert len({d["day"] for d in days}) == len(days) == 365  # one value per day, no repeats
    sources = {d["steps_source"] for d in days if d["steps"] is not None}
    assert sources == {"fitbit", "google"}
