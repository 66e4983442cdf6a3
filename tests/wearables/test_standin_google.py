"""The Google Health API stand-in: OAuth with PKCE and single-use refresh tokens, the API's formats,
pagination, limits and injected failures, and the deterministic data behind it."""

from __future__ import annotations

import base64
import itertools
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from requests_oauthlib import OAuth2Session
from werkzeug.serving import make_server

from tests.live import free_port
from wearables.standins import generator
from wearables.standins.google_health import SLEEP_SCOPE, STEPS_SCOPE, create_google_standin, s256

ROOT = Path(__file__).resolve().parents[2]
SEED = 0  # user 0 of seed 0 lives in America/New_York
TODAY = date(2026, 1, 15)
CLIENT_ID = "hearten-demo"
CLIENT_SECRET = "hearten-demo-secret"
REDIRECT_URI = "http://127.0.0.1:8000/wearables/google/callback"
ROLLUP = "/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp"
SLEEP = "/v4/users/me/dataTypes/sleep/dataPoints"
STEPS = "/v4/users/me/dataTypes/steps/dataPoints"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def standin(clock: FakeClock) -> Flask:
    return create_google_standin(seed=SEED, today=TODAY, clock=clock)


@pytest.fixture
def google(standin: Flask) -> FlaskClient:
    return standin.test_client()


def authorize_params(verifier: str, **overrides: str) -> dict[str, str]:
    """What our client sends to Google's authorization endpoint."""
    params = {
        "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "response_type": "code",
        "scope": f"{STEPS_SCOPE} {SLEEP_SCOPE}", "state": "state-123", "code_challenge": s256(verifier),
        "code_challenge_method": "S256", "access_type": "offline", "prompt": "consent",
    }
    params.update(overrides)
    return params


def consent(google: FlaskClient, verifier: str, *, decision: str = "allow",
            **overrides: str) -> dict[str, str]:
    """Click a button on the consent page; the query parameters sent back to our redirect URI."""
    form = {**authorize_params(verifier, **overrides), "decision": decision}
    response = google.post("/o/oauth2/v2/auth", data=form)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def exchange(google: FlaskClient, code: str, verifier: str, **overrides: str) -> Any:
    """POST the authorization code to the token endpoint."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    form.update(overrides)
    return google.post("/token", data=form)


def connect(google: FlaskClient, **overrides: str) -> dict[str, Any]:
    """The whole consent and code exchange; the token response."""
    verifier = secrets.token_urlsafe(48)
    code = consent(google, verifier, **overrides)["code"]
    response = exchange(google, code, verifier)
    assert response.status_code == 200, response.json
    tokens: dict[str, Any] = response.json
    return tokens


def refresh(google: FlaskClient, refresh_token: str) -> Any:
    return google.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                       "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def civil(day: date) -> dict[str, Any]:
    return {"date": {"year": day.year, "month": day.month, "day": day.day}}


def rollup_body(start: date, end: date, **extra: Any) -> dict[str, Any]:
    return {"range": {"start": civil(start), "end": civil(end)}, "windowSizeDays": 1, "pageSize": 90, **extra}


def end_filter(low: str, high: str) -> str:
    return f'sleep.interval.civil_end_time >= "{low}" AND sleep.interval.civil_end_time < "{high}"'


def configure(google: FlaskClient, **settings: Any) -> None:
    response = google.post("/_standin/config", json=settings)
    assert response.status_code == 200, response.json


def stats(google: FlaskClient) -> dict[str, Any]:
    body: dict[str, Any] = google.get("/_standin/stats").json
    return body


def all_sleep_pages(google: FlaskClient, tokens: dict[str, Any], query: dict[str, str]) -> list[list[Any]]:
    pages: list[list[Any]] = []
    token = ""
    while True:
        response = google.get(SLEEP, headers=bearer(tokens), query_string={**query, "pageToken": token})
        assert response.status_code == 200, response.json
        pages.append(response.json["dataPoints"])
        token = response.json.get("nextPageToken", "")
        if not token:
            return pages


# --- OAuth -----------------------------------------------------------------------------------------


def test_the_consent_page_asks_about_steps_and_sleep_and_carries_every_parameter(google: FlaskClient) -> None:
    verifier = secrets.token_urlsafe(48)
    params = authorize_params(verifier, login_hint="ana@x.test")
    response = google.get("/o/oauth2/v2/auth", query_string=params)
    assert response.status_code == 200
    page = response.text
    assert "Allow Hearten to read your steps and sleep?" in page
    assert '<form method="post">' in page
    assert 'value="allow"' in page
    assert 'value="deny"' in page
    assert f'name="code_challenge" value="{s256(verifier)}"' in page
    assert 'name="login_hint" value="ana@x.test"' in page
    assert "<script" not in page
    assert "style=" not in page
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


@pytest.mark.parametrize(("override", "message"), [
    ({"client_id": "someone-else"}, "invalid_client"),
    ({"code_challenge": ""}, "code_challenge"),
    ({"code_challenge": "too-short"}, "code_challenge"),
    ({"code_challenge_method": "plain"}, "S256"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"redirect_uri": "not-a-url"}, "redirect_uri"),
    ({"scope": "https://www.googleapis.com/auth/gmail.readonly"}, "invalid_scope"),
])
def test_a_bad_authorization_request_gets_an_error_page_and_no_code(
        google: FlaskClient, override: dict[str, str], message: str) -> None:
    params = authorize_params(secrets.token_urlsafe(48), **override)
    shown = google.get("/o/oauth2/v2/auth", query_string=params)
    clicked = google.post("/o/oauth2/v2/auth", data={**params, "decision": "allow"})
    for response in (shown, clicked):
        assert response.status_code == 400
        assert message in response.text
        assert "Location" not in response.headers


def test_the_full_pkce_code_flow_gives_tokens_that_read_the_identity(google: FlaskClient) -> None:
    verifier = secrets.token_urlsafe(48)
    answer = consent(google, verifier)
    assert answer["state"] == "state-123"
    assert answer["code"].startswith("4/")

    response = exchange(google, answer["code"], verifier)

    assert response.status_code == 200
    tokens = response.json
    assert set(tokens) == {"access_token", "expires_in", "refresh_token", "scope", "token_type"}
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"].split() == [STEPS_SCOPE, SLEEP_SCOPE]
    identity = google.get("/v4/users/me/identity", headers=bearer(tokens))
    assert identity.json == {"name": "users/me/identity",
                             "healthUserId": generator.health_user_id(SEED, 0),
                             "legacyUserId": generator.legacy_user_id(SEED, 0)}


def test_a_denied_consent_sends_access_denied_and_the_state_back(google: FlaskClient) -> None:
    answer = consent(google, secrets.token_urlsafe(48), decision="deny")
    assert answer == {"error": "access_denied", "state": "state-123"}
    assert google.get("/_standin/users").json == {"users": []}


def test_the_client_secret_may_come_in_the_body_or_as_http_basic(google: FlaskClient) -> None:
    verifier = secrets.token_urlsafe(48)
    code = consent(google, verifier)["code"]
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    response = google.post("/token", headers={"Authorization": f"Basic {basic}"}, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier})
    assert response.status_code == 200, response.json


@pytest.mark.parametrize("secret", ["wrong-secret", ""])
def test_a_wrong_client_secret_is_invalid_client(google: FlaskClient, secret: str) -> None:
    verifier = secrets.token_urlsafe(48)
    code = consent(google, verifier)["code"]
    response = exchange(google, code, verifier, client_secret=secret)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_client"


@pytest.mark.parametrize("verifier", ["", "x" * 43, secrets.token_urlsafe(48)])
def test_a_wrong_or_missing_code_verifier_is_refused_and_burns_the_code(google: FlaskClient,
                                                                        verifier: str) -> None:
    right = secrets.token_urlsafe(48)
    code = consent(google, right)["code"]

    refused = exchange(google, code, verifier)

    assert refused.status_code == 400
    assert refused.json["error"] == "invalid_grant"
    assert "verifier" in refused.json["error_description"]
    assert exchange(google, code, right).json["error"] == "invalid_grant"


def test_a_code_works_only_once(google: FlaskClient) -> None:
    verifier = secrets.token_urlsafe(48)
    code = consent(google, verifier)["code"]
    assert exchange(google, code, verifier).status_code == 200
    again = exchange(google, code, verifier)
    assert again.status_code == 400
    assert again.json["error"] == "invalid_grant"


def test_a_code_for_another_redirect_uri_is_refused(google: FlaskClient) -> None:
    verifier = secrets.token_urlsafe(48)
    code = consent(google, verifier)["code"]
    response = exchange(google, code, verifier, redirect_uri="http://127.0.0.1:9999/elsewhere")
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"


def test_a_code_expires_after_ten_minutes(google: FlaskClient, clock: FakeClock) -> None:
    verifier = secrets.token_urlsafe(48)
    code = consent(google, verifier)["code"]
    clock.advance(601)
    assert exchange(google, code, verifier).json["error"] == "invalid_grant"


def test_online_access_gets_no_refresh_token(google: FlaskClient) -> None:
    tokens = connect(google, access_type="online")
    assert "refresh_token" not in tokens


def test_a_refresh_token_works_only_once(google: FlaskClient) -> None:
    tokens = connect(google)

    first = refresh(google, tokens["refresh_token"])
    second = refresh(google, tokens["refresh_token"])

    assert first.status_code == 200
    assert set(first.json) == {"access_token", "expires_in", "refresh_token", "scope", "token_type"}
    assert first.json["refresh_token"] != tokens["refresh_token"]
    assert second.status_code == 400
    assert second.json == {"error": "invalid_grant",
                           "error_description": "Token has been expired or revoked."}
    assert refresh(google, first.json["refresh_token"]).status_code == 200
    counts = stats(google)
    assert counts["refresh_grants"] == 2
    assert counts["refused_refreshes"] == 1


def test_an_access_token_expires_after_its_lifetime_with_googles_401(google: FlaskClient,
                                                                     clock: FakeClock) -> None:
    tokens = connect(google)
    clock.advance(3599)
    assert google.get("/v4/users/me/identity", headers=bearer(tokens)).status_code == 200
    clock.advance(1)

    response = google.get("/v4/users/me/identity", headers=bearer(tokens))

    assert response.status_code == 401
    assert response.json["error"]["code"] == 401
    assert response.json["error"]["status"] == "UNAUTHENTICATED"
    assert response.json["error"]["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    renewed = refresh(google, tokens["refresh_token"]).json
    assert google.get("/v4/users/me/identity", headers=bearer(renewed)).status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer ", "Bearer ya29.made-up", "Basic abc"])
def test_a_missing_or_unknown_token_gets_401(google: FlaskClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = google.get("/v4/users/me/identity", headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["status"] == "UNAUTHENTICATED"


def test_expire_access_tokens_turns_every_current_token_away(google: FlaskClient) -> None:
    tokens = connect(google)
    configure(google, expire_access_tokens=True)
    assert google.get("/v4/users/me/identity", headers=bearer(tokens)).status_code == 401
    renewed = refresh(google, tokens["refresh_token"]).json
    assert google.get("/v4/users/me/identity", headers=bearer(renewed)).status_code == 200


def test_revoke_refresh_tokens_makes_every_refresh_invalid_grant(google: FlaskClient) -> None:
    tokens = connect(google)
    configure(google, revoke_refresh_tokens=True)
    response = refresh(google, tokens["refresh_token"])
    assert response.status_code == 400
    assert response.json["error"] == "invalid_grant"
    assert stats(google)["refused_refreshes"] == 1
    assert refresh(google, connect(google)["refresh_token"]).status_code == 200


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
@pytest.mark.parametrize("where", ["query", "form"])
def test_revoking_either_token_kills_the_whole_grant(google: FlaskClient, which: str, where: str) -> None:
    tokens = connect(google)
    other = connect(google)
    if where == "query":
        response = google.post("/revoke", query_string={"token": tokens[which]})
    else:
        response = google.post("/revoke", data={"token": tokens[which]})

    assert response.status_code == 200
    assert google.get("/v4/users/me/identity", headers=bearer(tokens)).status_code == 401
    assert refresh(google, tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert google.get("/v4/users/me/identity", headers=bearer(other)).status_code == 200
    assert google.post("/revoke", query_string={"token": tokens[which]}).status_code == 400


def test_a_login_hint_brings_back_the_same_user_and_no_hint_makes_a_new_one(google: FlaskClient) -> None:
    first = connect(google, login_hint="ana@example.test")
    again = connect(google, login_hint="ana@example.test")
    stranger = connect(google)

    ids = [google.get("/v4/users/me/identity", headers=bearer(tokens)).json["healthUserId"]
           for tokens in (first, again, stranger)]

    assert ids[0] == ids[1] != ids[2]
    users = google.get("/_standin/users").json["users"]
    assert [(user["index"], user["loginHint"], user["zone"]) for user in users] == [
        (0, "ana@example.test", "America/New_York"), (1, None, "Europe/Madrid")]


def test_scopes_left_unticked_are_not_granted(google: FlaskClient) -> None:
    verifier = secrets.token_urlsafe(48)
    form = {**authorize_params(verifier), "decision": "allow", "granular": "1", "granted_scope": STEPS_SCOPE}
    location = google.post("/o/oauth2/v2/auth", data=form).headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = exchange(google, code, verifier).json

    assert tokens["scope"] == STEPS_SCOPE
    sleep = google.get(SLEEP, headers=bearer(tokens))
    assert sleep.status_code == 403
    assert sleep.json["error"]["status"] == "PERMISSION_DENIED"
    rollup = google.post(ROLLUP, headers=bearer(tokens), json=rollup_body(date(2026, 1, 1), date(2026, 1, 8)))
    assert rollup.status_code == 200


def test_another_users_path_is_forbidden(google: FlaskClient) -> None:
    tokens = connect(google)
    own = generator.health_user_id(SEED, 0)
    assert google.get(f"/v4/users/{own}/identity", headers=bearer(tokens)).status_code == 200
    response = google.get("/v4/users/12345/identity", headers=bearer(tokens))
    assert response.status_code == 403


# --- daily roll-up ---------------------------------------------------------------------------------


def test_a_90_day_rollup_returns_string_counts_that_match_the_generator(google: FlaskClient) -> None:
    tokens = connect(google)
    start, end = date(2025, 10, 1), date(2025, 12, 30)

    response = google.post(ROLLUP, headers=bearer(tokens), json=rollup_body(start, end))

    assert response.status_code == 200
    body = response.json
    assert "nextPageToken" not in body
    points = body["rollupDataPoints"]
    expected = {day: generator.daily_steps(SEED, 0, day) for day in generator.days(start, end - timedelta(1))}
    assert len(points) == sum(1 for steps in expected.values() if steps is not None) < 90
    for point in points:
        day = date(**point["civilStartTime"]["date"])
        assert point["civilStartTime"]["time"] == {}
        assert date(**point["civilEndTime"]["date"]) == day + timedelta(days=1)
        assert point["steps"]["countSum"] == str(expected[day])


@pytest.mark.parametrize("body", [
    rollup_body(date(2025, 10, 1), date(2025, 12, 31)),
    rollup_body(date(2025, 10, 1), date(2025, 10, 31), pageSize=91),
    rollup_body(date(2025, 10, 1), date(2025, 10, 1)),
    rollup_body(date(2025, 10, 2), date(2025, 10, 1)),
    {"range": {"start": {"date": {"year": 2025, "month": 2, "day": 30}}, "end": civil(date(2025, 3, 5))}},
    {"range": {"start": civil(date(2025, 3, 1))}},
    {"windowSizeDays": 1},
    rollup_body(date(2025, 10, 1), date(2025, 10, 31), pageToken="garbage"),
])
def test_a_rollup_over_90_days_or_otherwise_malformed_is_invalid_argument(google: FlaskClient,
                                                                          body: dict[str, Any]) -> None:
    response = google.post(ROLLUP, headers=bearer(connect(google)), json=body)
    assert response.status_code == 400
    assert response.json["error"]["status"] == "INVALID_ARGUMENT"
    assert response.json["error"]["message"]


def test_rollup_pages_follow_the_next_page_token(google: FlaskClient) -> None:
    tokens = connect(google)
    start, end = date(2025, 9, 1), date(2025, 11, 30)
    whole = google.post(ROLLUP, headers=bearer(tokens), json=rollup_body(start, end)).json["rollupDataPoints"]
    pages: list[Any] = []
    token = ""
    while True:
        body = google.post(ROLLUP, headers=bearer(tokens),
                           json=rollup_body(start, end, pageSize=30, pageToken=token)).json
        assert len(body["rollupDataPoints"]) <= 30
        pages.extend(body["rollupDataPoints"])
        token = body.get("nextPageToken", "")
        if not token:
            break
    assert pages == whole
    another_query = rollup_body(date(2025, 1, 1), date(2025, 2, 1), pageToken=token or "eyJvIjozMH0")
    assert google.post(ROLLUP, headers=bearer(tokens), json=another_query).status_code == 400


def test_a_rollup_window_of_seven_days_sums_the_days_it_covers(google: FlaskClient) -> None:
    tokens = connect(google)
    start = date(2025, 11, 3)
    body = rollup_body(start, start + timedelta(days=14), windowSizeDays=7)
    points = google.post(ROLLUP, headers=bearer(tokens), json=body).json["rollupDataPoints"]
    assert [point["steps"]["countSum"] for point in points] == [
        str(sum(generator.daily_steps(SEED, 0, day) or 0
                for day in generator.days(first, first + timedelta(days=6))))
        for first in (start, start + timedelta(days=7))]


def test_there_is_no_data_before_the_400_day_history_or_after_today(google: FlaskClient) -> None:
    tokens = connect(google)
    first, last = generator.data_window(TODAY)
    assert first == TODAY - timedelta(days=400)
    def rollup(start: date, end: date) -> Any:
        return google.post(ROLLUP, headers=bearer(tokens), json=rollup_body(start, end))

    before = rollup(first - timedelta(30), first)
    after = rollup(last + timedelta(1), last + timedelta(30))
    edge = rollup(last - timedelta(5), last + timedelta(5))
    assert before.json == {"rollupDataPoints": []}
    assert after.json == {"rollupDataPoints": []}
    days = [date(**point["civilStartTime"]["date"]) for point in edge.json["rollupDataPoints"]]
    assert days and max(days) <= TODAY


# --- sleep -----------------------------------------------------------------------------------------


def test_sleep_comes_in_pages_of_25_newest_first_within_the_filter(google: FlaskClient) -> None:
    tokens = connect(google)
    query = {"filter": end_filter("2025-10-01", "2026-01-01"), "pageSize": "100"}

    pages = all_sleep_pages(google, tokens, query)

    assert [len(page) for page in pages[:-1]] == [25] * (len(pages) - 1)
    assert 0 < len(pages[-1]) <= 25
    points = [point for page in pages for point in page]
    ends = [datetime.fromisoformat(point["sleep"]["interval"]["endTime"]) for point in points]
    assert ends == sorted(ends, reverse=True)
    zone = ZoneInfo("America/New_York")
    assert all(date(2025, 10, 1) <= end.astimezone(zone).date() < date(2026, 1, 1) for end in ends)
    expected = [sleep for night in generator.days(date(2025, 10, 1), date(2025, 12, 31))
                for sleep in generator.sleep_sessions(SEED, 0, night)]
    assert sorted(point["name"].rsplit("/", 1)[1] for point in points) == sorted(s.point_id for s in expected)


def test_sleep_pages_default_to_25_and_smaller_pages_are_honoured(google: FlaskClient) -> None:
    tokens = connect(google)
    whole = google.get(SLEEP, headers=bearer(tokens)).json
    small = google.get(SLEEP, headers=bearer(tokens), query_string={"pageSize": "10"}).json
    assert len(whole["dataPoints"]) == 25
    assert small["dataPoints"] == whole["dataPoints"][:10]
    following = google.get(SLEEP, headers=bearer(tokens), query_string={
        "pageSize": "10", "pageToken": small["nextPageToken"]}).json
    assert following["dataPoints"] == whole["dataPoints"][10:20]


def test_a_sleep_point_has_the_health_api_shape(google: FlaskClient) -> None:
    tokens = connect(google)
    night = date(2025, 12, 10)
    [expected] = [sleep for sleep in generator.sleep_sessions(SEED, 0, night) if sleep.is_main]
    response = google.get(SLEEP, headers=bearer(tokens), query_string={
        "filter": end_filter(night.isoformat(), (night + timedelta(1)).isoformat())})
    points = [p for p in response.json["dataPoints"] if p["sleep"]["metadata"].get("mainSleep")]
    [point] = points

    assert point["name"] == (f"users/{generator.health_user_id(SEED, 0)}/dataTypes/sleep/dataPoints/"
                             f"{expected.point_id}")
    sleep = point["sleep"]
    assert sleep["interval"] == {
        "startTime": expected.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endTime": expected.end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "startUtcOffset": "-18000s", "endUtcOffset": "-18000s"}
    assert sleep["type"] in ("STAGES", "CLASSIC")
    assert sleep["metadata"] == {"mainSleep": True}
    summary = sleep["summary"]
    assert summary["minutesAsleep"] == str(expected.minutes_asleep)
    assert summary["minutesInSleepPeriod"] == str(expected.minutes_in_period)
    assert int(summary["minutesAsleep"]) + int(summary.get("minutesAwake", "0")) == expected.minutes_in_period
    assert all(isinstance(value, str) for key, value in summary.items() if key != "stagesSummary")
    assert {entry["type"] for entry in summary["stagesSummary"]} == {stage.kind for stage in expected.stages}
    stages = sleep["stages"]
    assert stages[0]["startTime"] == sleep["interval"]["startTime"]
    assert stages[-1]["endTime"] == sleep["interval"]["endTime"]
    assert all(a["endTime"] == b["startTime"] for a, b in itertools.pairwise(stages))


def test_a_nap_is_marked_nap_and_not_main_sleep(google: FlaskClient) -> None:
    tokens = connect(google)
    nights = generator.days(*generator.data_window(TODAY))
    nap = next(s for night in nights for s in generator.sleep_sessions(SEED, 0, night) if not s.is_main)
    response = google.get(SLEEP, headers=bearer(tokens), query_string={
        "filter": end_filter(nap.night.isoformat(), (nap.night + timedelta(1)).isoformat())})
    [point] = [p for p in response.json["dataPoints"] if p["name"].endswith(nap.point_id)]
    assert point["sleep"]["metadata"] == {"nap": True}
    assert point["sleep"]["type"] == "CLASSIC"


def test_a_night_crossing_a_dst_change_has_different_start_and_end_offsets(google: FlaskClient) -> None:
    tokens = connect(google)
    night = date(2025, 11, 2)  # New York falls back at 02:00 that morning
    main = [sleep for sleep in generator.sleep_sessions(SEED, 0, night) if sleep.is_main]
    assert main, "the generator should have a main sleep on this night for seed 0"

    response = google.get(SLEEP, headers=bearer(tokens), query_string={
        "filter": end_filter("2025-11-02", "2025-11-03")})

    [interval] = [p["sleep"]["interval"] for p in response.json["dataPoints"]
                  if p["sleep"]["metadata"].get("mainSleep")]
    assert (interval["startUtcOffset"], interval["endUtcOffset"]) == ("-14400s", "-18000s")


def test_a_sleep_filter_on_rfc3339_end_time_selects_the_same_instants(google: FlaskClient) -> None:
    tokens = connect(google)
    low, high = "2025-12-01T12:00:00Z", "2025-12-05T12:00:00Z"
    response = google.get(SLEEP, headers=bearer(tokens), query_string={
        "filter": f'sleep.interval.end_time >= "{low}" AND sleep.interval.end_time < "{high}"'})
    ends = [datetime.fromisoformat(p["sleep"]["interval"]["endTime"]) for p in response.json["dataPoints"]]
    expected = [s for night in generator.days(date(2025, 11, 30), date(2025, 12, 6))
                for s in generator.sleep_sessions(SEED, 0, night)
                if datetime.fromisoformat(low) <= s.end < datetime.fromisoformat(high)]
    assert len(ends) == len(expected) > 0


@pytest.mark.parametrize("text", [
    'sleep.interval.civil_end_time <= "2025-12-01"',
    'sleep.interval.civil_end_time > "2025-12-01"',
    'sleep.interval.civil_start_time >= "2025-12-01"',
    'sleep.interval.civil_end_time >= "yesterday"',
    'sleep.interval.end_time >= "2025-12-01T00:00:00"',
    'sleep.interval.civil_end_time >= "2025-12-01" OR sleep.interval.civil_end_time < "2025-12-05"',
])
def test_an_unsupported_sleep_filter_is_invalid_argument(google: FlaskClient, text: str) -> None:
    response = google.get(SLEEP, headers=bearer(connect(google)), query_string={"filter": text})
    assert response.status_code == 400
    assert response.json["error"]["status"] == "INVALID_ARGUMENT"


def test_raw_steps_are_hourly_newest_first_and_add_up_to_the_day(google: FlaskClient) -> None:
    tokens = connect(google)
    december = generator.days(date(2025, 12, 1), date(2025, 12, 31))
    day = next(d for d in december if generator.daily_steps(SEED, 0, d))
    response = google.get(STEPS, headers=bearer(tokens), query_string={
        "filter": f'steps.interval.civil_start_time >= "{day}" AND '
                  f'steps.interval.civil_start_time < "{day + timedelta(1)}"'})
    points = response.json["dataPoints"]
    starts = [p["steps"]["interval"]["startTime"] for p in points]
    assert starts == sorted(starts, reverse=True)
    assert sum(int(p["steps"]["count"]) for p in points) == generator.daily_steps(SEED, 0, day)


# --- limits, failures, controls --------------------------------------------------------------------


def test_the_rate_limit_answers_429_with_retry_after_until_the_minute_has_passed(
        google: FlaskClient, clock: FakeClock) -> None:
    tokens = connect(google)
    other = connect(google)
    configure(google, rate_limit_per_minute=3)
    for _ in range(3):
        assert google.get("/v4/users/me/identity", headers=bearer(tokens)).status_code == 200
        clock.advance(10)

    refused = google.get("/v4/users/me/identity", headers=bearer(tokens))

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "30"
    error = refused.json["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert error["details"][0]["reason"] == "RATE_LIMIT_EXCEEDED"
    assert google.get("/v4/users/me/identity", headers=bearer(other)).status_code == 200  # per user
    clock.advance(30)
    assert google.get("/v4/users/me/identity", headers=bearer(tokens)).status_code == 200
    assert stats(google)["sent_429"] == 1


def test_the_default_limit_is_300_requests_per_user_per_minute(google: FlaskClient) -> None:
    tokens = connect(google)
    statuses = [google.get("/v4/users/me/identity", headers=bearer(tokens)).status_code for _ in range(301)]
    assert statuses == [200] * 300 + [429]


def test_queued_failures_answer_the_next_api_requests(google: FlaskClient) -> None:
    tokens = connect(google)
    configure(google, fail_next=[429, 429, 500])

    responses = [google.get("/v4/users/me/identity", headers=bearer(tokens)) for _ in range(4)]

    assert [r.status_code for r in responses] == [429, 429, 500, 200]
    assert responses[0].headers["Retry-After"] == "1"
    assert responses[0].json["error"]["details"][0]["reason"] == "RATE_LIMIT_EXCEEDED"
    assert responses[2].json["error"]["status"] == "INTERNAL"
    counts = stats(google)
    assert counts["sent_429"] == 2
    assert counts["injected_failures"] == 3
    assert counts["config"]["fail_next"] == []


def test_queued_token_failures_answer_the_next_token_requests(google: FlaskClient) -> None:
    tokens = connect(google)
    configure(google, fail_next_token=[503, 429])
    assert refresh(google, tokens["refresh_token"]).status_code == 503
    throttled = refresh(google, tokens["refresh_token"])
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert refresh(google, tokens["refresh_token"]).status_code == 200  # the token was not spent


def test_latency_delays_every_api_and_token_answer(google: FlaskClient) -> None:
    tokens = connect(google)
    configure(google, latency_ms=60)
    for call in (lambda: google.get("/v4/users/me/identity", headers=bearer(tokens)),
                 lambda: refresh(google, tokens["refresh_token"])):
        started = time.perf_counter()
        assert call().status_code == 200
        assert time.perf_counter() - started >= 0.06


def test_stats_count_requests_by_endpoint_and_reset_clears_them(google: FlaskClient) -> None:
    tokens = connect(google)
    google.get("/v4/users/me/identity", headers=bearer(tokens))
    google.get(SLEEP, headers=bearer(tokens))
    google.get(SLEEP, headers=bearer(tokens))
    google.post(ROLLUP, headers=bearer(tokens), json=rollup_body(date(2025, 12, 1), date(2025, 12, 8)))

    counts = stats(google)

    assert counts["requests"] == {"authorize": 1, "token": 1, "identity": 1, "sleep.list": 2,
                                  "steps.dailyRollUp": 1}
    assert counts["requests_by_user"] == {generator.health_user_id(SEED, 0): 4}
    assert counts["code_grants"] == 1
    cleared = google.post("/_standin/reset").json
    assert cleared["requests"] == {}
    assert cleared["code_grants"] == 0


@pytest.mark.parametrize("settings", [
    {"latency_ms": -1}, {"latency_ms": "fast"}, {"rate_limit_per_minute": 0}, {"fail_next": [200]},
    {"fail_next": 429}, {"expire_access_tokens": "yes"}, {"today": "someday"}, {"surprise": 1}, [],
])
def test_bad_settings_are_refused_and_change_nothing(google: FlaskClient, settings: Any) -> None:
    before = google.get("/_standin/config").json
    response = google.post("/_standin/config", json=settings)
    assert response.status_code == 400
    assert response.json["error"]
    assert google.get("/_standin/config").json == before


def test_an_unknown_api_path_answers_in_googles_error_shape(google: FlaskClient) -> None:
    tokens = connect(google)
    assert google.get("/v4/users/me/nothing", headers=bearer(tokens)).json["error"]["status"] == "NOT_FOUND"
    heart = google.get("/v4/users/me/dataTypes/heart-rate/dataPoints", headers=bearer(tokens))
    assert heart.status_code == 404
    assert heart.json["error"]["code"] == 404


def test_the_token_shortcut_issues_working_tokens(google: FlaskClient) -> None:
    tokens = google.post("/_standin/tokens", json={"login_hint": "bo@example.test"}).json
    assert tokens["index"] == 0
    assert google.get("/v4/users/me/identity", headers=bearer(tokens)).status_code == 200
    assert refresh(google, tokens["refresh_token"]).status_code == 200


# --- determinism and the generator -----------------------------------------------------------------


def test_the_same_seed_gives_the_same_data_and_another_seed_does_not(clock: FakeClock) -> None:
    def sample(seed: int) -> tuple[Any, Any]:
        google = create_google_standin(seed=seed, today=TODAY, clock=clock).test_client()
        tokens = connect(google)
        body = rollup_body(date(2025, 10, 1), date(2025, 12, 1))
        rollup = google.post(ROLLUP, headers=bearer(tokens), json=body)
        query = {"filter": end_filter("2025-11-01", "2025-12-01")}
        sleep = google.get(SLEEP, headers=bearer(tokens), query_string=query)
        return rollup.json, sleep.json

    assert sample(3) == sample(3)
    assert sample(3) != sample(4)


def test_daily_steps_have_a_weekday_rhythm_missing_days_and_very_low_days() -> None:
    first, last = generator.data_window(TODAY)
    for user in range(4):
        steps = {day: generator.daily_steps(SEED, user, day) for day in generator.days(first, last)}
        missing = [day for day, count in steps.items() if count is None]
        counted = {day: count for day, count in steps.items() if count is not None}
        assert 0.01 <= len(missing) / len(steps) <= 0.10
        assert any(count < 1500 for count in counted.values())
        weekdays = [count for day, count in counted.items() if day.weekday() < 5 and count >= 1500]
        weekends = [count for day, count in counted.items() if day.weekday() >= 5 and count >= 1500]
        weekday_mean = sum(weekdays) / len(weekdays)
        assert 5000 <= weekday_mean <= 10000
        assert abs(sum(weekends) / len(weekends) - weekday_mean) > 300
        for day in list(counted)[:30]:
            assert sum(generator.hourly_steps(SEED, user, day)) == counted[day]


def test_nights_cross_midnight_within_realistic_bedtimes_and_lengths() -> None:
    first, last = generator.data_window(TODAY)
    nights = list(generator.days(first, last))
    sessions = [sleep for night in nights for sleep in generator.sleep_sessions(SEED, 1, night)]
    mains = [sleep for sleep in sessions if sleep.is_main]
    naps = [sleep for sleep in sessions if not sleep.is_main]

    assert 0.01 <= 1 - len(mains) / len(nights) <= 0.08
    for sleep in mains:
        bedtime = sleep.start.hour * 60 + sleep.start.minute
        assert bedtime >= 22 * 60 or bedtime <= 90
        assert 330 <= sleep.minutes_in_period <= 540
        assert sleep.minutes_asleep + sleep.minutes_awake == sleep.minutes_in_period
    assert sum(sleep.start.date() < sleep.night for sleep in mains) > len(mains) / 3
    assert naps
    for nap in naps:
        assert 13 <= nap.start.hour <= 17
        assert 20 <= nap.minutes_in_period <= 90
        assert nap.kind == "CLASSIC"


def test_offsets_follow_daylight_saving_time_in_each_direction() -> None:
    first, last = generator.data_window(TODAY)
    changed = []
    for night in generator.days(first, last):
        for sleep in generator.sleep_sessions(SEED, 0, night):
            if sleep.start.utcoffset() != sleep.end.utcoffset():
                changed.append((night, sleep.start.utcoffset(), sleep.end.utcoffset()))
    hours = timedelta(hours=1)
    assert (date(2025, 3, 9), -5 * hours, -4 * hours) in changed
    assert (date(2025, 11, 2), -4 * hours, -5 * hours) in changed
    assert len(changed) == 2


def test_users_get_stable_ids_and_zones() -> None:
    assert generator.home_zone(0, 0) == "America/New_York"
    assert generator.home_zone(0, 1) == "Europe/Madrid"
    assert generator.health_user_id(5, 2) == generator.health_user_id(5, 2) != generator.health_user_id(5, 3)
    assert len(generator.legacy_user_id(5, 2)) == 6


# --- over real HTTP --------------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[str]:
    """The stand-in on a real local port, threaded, with the real clock."""
    server = make_server("127.0.0.1", 0, create_google_standin(seed=SEED, today=TODAY), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def test_requests_oauthlib_completes_the_pkce_flow_over_http(served: str) -> None:
    oauth = OAuth2Session(CLIENT_ID, redirect_uri=REDIRECT_URI, scope=[STEPS_SCOPE, SLEEP_SCOPE], pkce="S256")
    url, state = oauth.authorization_url(f"{served}/o/oauth2/v2/auth", access_type="offline",
                                         prompt="consent")
    page = requests.get(url, timeout=5)
    assert "Allow Hearten" in page.text
    params = dict(parse_qs(urlsplit(url).query, keep_blank_values=True))
    form = {key: values[0] for key, values in params.items()} | {"decision": "allow"}
    answer = requests.post(f"{served}/o/oauth2/v2/auth", data=form, allow_redirects=False, timeout=5)

    token = oauth.fetch_token(f"{served}/token", authorization_response=answer.headers["Location"],
                              client_secret=CLIENT_SECRET, include_client_id=True)

    assert token["refresh_token"]
    assert oauth.get(f"{served}/v4/users/me/identity", timeout=5).json()["healthUserId"]
    assert state in answer.headers["Location"]


def test_ten_concurrent_refreshes_of_one_token_give_exactly_one_success(served: str) -> None:
    tokens = requests.post(f"{served}/_standin/tokens", json={}, timeout=5).json()

    def attempt(_: int) -> int:
        return requests.post(f"{served}/token", timeout=10, data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(attempt, range(10)))

    assert sorted(statuses) == [200] + [400] * 9
    counts = requests.get(f"{served}/_standin/stats", timeout=5).json()
    assert (counts["refresh_grants"], counts["refused_refreshes"]) == (1, 9)


def test_the_module_runs_as_a_server_from_the_command_line() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "wearables.standins.google_health", "--port", str(port), "--seed", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/_standin/stats", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert response.json()["config"]["rate_limit_per_minute"] == 300
    finally:
        process.terminate()
        process.wait(timeout=10)
