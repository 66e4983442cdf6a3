"""Feed tests: a cohort with a member, a peer, its coach, and another cohort next door."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.accounts.models import Cohort, User
from tests.factories import api_headers, sign_in


def signed_in(app: Flask, name: str) -> FlaskClient:
    client = app.test_client()
    sign_in(client, name)
    return client


def post_story(client: FlaskClient, body: str = "I walked to the park today.",
               kind: str = "story") -> int:
    response = client.post("/api/v1/feed", json={"kind": kind, "body": body},
                           headers=api_headers(client))
    assert response.status_code == 201, response.get_json()
    item_id: int = response.get_json()["id"]
    return item_id


@pytest.fixture
def cohort_people(coach: User, cohort: Cohort, member: User, peer: User) -> None:
    """The usual cast: Coach Rosa's Morning Walkers with Sunny River and Quiet Oak."""
