"""The legacy Fitbit adapter (python-fitbit) against the Fitbit stand-in over real HTTP: OAuth with PKCE
and single-use refresh tokens, steps and v1.2 sleep from the shared generator, and every failure
turned into the domain error the sync engine acts on — above all, 410 Gone into MoveToGoogle."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.live import free_port
from tests.standins import Standin, serve
from wearables.providers.base import (
    MoveToGoogle,
    NeedsReconnect,
    ProviderError,
    RateLimited,
    TemporaryFailure,
    TokenExpired,
    TokenSet,
    pkce_pair,
)
from wearables.providers.fitbit import FitbitLegacyProvider
from wearables.records import DaySteps, SleepSession
from wearables.standins import generator
from wearables.standins.fitbit_legacy import create_fitbit_standin, elapsed_minutes

SEED = 0  # user 0 of seed 0 lives in America/New_York
ZONE = "America/New_York"
TODAY = date(2026, 1, 15)
NEW_YEAR = date(2026, 1, 1)
CLIENT_ID, CLIENT_SECRET = "hearten-test", "hearten-test-secret"
REDIRECT_URI = "http://hearten.test/tracker/callback/fitbit"
HOUR = 3600.0


class FakeClock:
    """A wall clock the test moves by hand; it starts half way through an hour."""

    def __init__(self) -> None:
        self.now = 1_767_225_600.0 + 1800  # 2026-01-01T00:30:00Z

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FitbitStandin(Standin):
    """The stand-in running on a loopback port, with its test controls and its clock."""

    clock: FakeClock = field(default_factory=lambda: FakeClock())

    def api_paths(self) -> list[str]:
        paths: list[str] = self.stats()["recent_paths"]
        return paths


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fitbit_api(clock: FakeClock) -> Iterator[FitbitStandin]:
    """Fitbit, played by the stand-in, over real HTTP on a free loopback port."""
    app = create_fitbit_standin(seed=SEED, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, today=TODAY,
                                clock=clock)
    url, server = serve(app)
    yield FitbitStandin(url=url, app=app, server=server, clock=clock)
    server.shutdown()


@pytest.fixture
def provider(fitbit_api: FitbitStandin) -> FitbitLegacyProvider:
    return FitbitLegacyProvider(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                authorize_url=f"{fitbit_api.url}/oauth2/authorize",
                                token_url=f"{fitbit_api.url}/oauth2/token", api_base=fitbit_api.url)


def consent(authorize_url: str, *, allow: bool = True, scopes: list[str] | None = None,
            login_hint: str = "walker") -> dict[str, str]:
    """Play the member on Fitbit's consent page; the query Fitbit sends back to our redirect URI."""
    page = requests.get(authorize_url, timeout=5)
    assert page.status_code == 200, page.text
    params = {key: values[0] for key, values in parse_qs(urlsplit(authorize_url).query).items()}
    form = {**params, "granular": "1", "login_hint": login_hint, "decision": "allow" if allow else "deny",
            "granted_scope": scopes if scopes is not None else params["scope"].split(" ")}
    answer = requests.post(authorize_url.split("?")[0], data=form, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?") and location.endswith("#_=_")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def connect(provider: FitbitLegacyProvider, *, scopes: list[str] | None = None) -> TokenSet:
    """The whole PKCE code flow, as the connect view runs it."""
    verifier, challenge = pkce_pair()
    url = provider.authorization_url(redirect_uri=REDIRECT_URI, state="state-1", code_challenge=challenge)
    back = consent(url, scopes=scopes)
    assert back["state"] == "state-1"
    return provider.exchange_code(code=back["code"], redirect_uri=REDIRECT_URI, code_verifier=verifier)


@pytest.fixture
def tokens(provider: FitbitLegacyProvider) -> TokenSet:
    return connect(provider)


def week_of_steps(provider: FitbitLegacyProvider, tokens: TokenSet, *, days: int = 7) -> list[DaySteps]:
    """Steps from the first days of 2026."""
    return provider.daily_steps(access_token=tokens.access_token, start=NEW_YEAR,
                                end=NEW_YEAR + timedelta(days=days))


def week_of_sleep(provider: FitbitLegacyProvider, tokens: TokenSet) -> list[SleepSession]:
    """Sleep from the first week of 2026."""
    return provider.sleep(access_token=tokens.access_token, start=NEW_YEAR, end=NEW_YEAR + timedelta(days=7),
                          tz=ZONE)


def bearer(tokens: TokenSet) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.access_token}"}


def expected_steps(start: date, end: date) -> list[tuple[date, int]]:
    """What the generator says user 0 walked on each day of [start, end) that has data."""
    counts = ((day, generator.daily_steps(SEED, 0, day)) for day in generator.days(start, end - timedelta(1)))
    return [(day, count) for day, count in counts if count]


# --- OAuth ----------------------------------------------------------------------------------------


def test_the_authorization_url_asks_for_steps_and_sleep_with_pkce(provider: FitbitLegacyProvider) -> None:
    url = provider.authorization_url(redirect_uri=REDIRECT_URI, state="xyz", code_challenge="c" * 43)
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert parts.path == "/oauth2/authorize"
    assert "scope=activity%20sleep" in parts.query
    assert query == {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
                     "scope": "activity sleep", "state": "xyz", "code_challenge": "c" * 43,
                     "code_challenge_method": "S256"}


def test_a_member_who_allows_access_gets_tokens_and_a_fitbit_user_id(provider: FitbitLegacyProvider,
                                                                     fitbit_api: FitbitStandin) -> None:
    before = datetime.now(UTC)
    tokens = connect(provider)
    assert tokens.access_token and tokens.refresh_token
    assert tokens.scope == "activity sleep"
    assert before + timedelta(hours=8) <= tokens.expires_at <= datetime.now(UTC) + timedelta(hours=8)
    assert provider.user_id(access_token=tokens.access_token) == generator.legacy_user_id(SEED, 0)
    assert fitbit_api.stats()["code_grants"] == 1


def test_a_code_with_the_wrong_verifier_is_refused_and_cannot_be_used_again(
        provider: FitbitLegacyProvider) -> None:
    verifier, challenge = pkce_pair()
    url = provider.authorization_url(redirect_uri=REDIRECT_URI, state="s", code_challenge=challenge)
    code = consent(url)["code"]
    other_verifier, _ = pkce_pair()
    with pytest.raises(NeedsReconnect, match="invalid_grant"):
        provider.exchange_code(code=code, redirect_uri=REDIRECT_URI, code_verifier=other_verifier)
    with pytest.raises(NeedsReconnect):
        provider.exchange_code(code=code, redirect_uri=REDIRECT_URI, code_verifier=verifier)


def test_a_member_who_denies_access_is_sent_back_with_access_denied(provider: FitbitLegacyProvider) -> None:
    _, challenge = pkce_pair()
    url = provider.authorization_url(redirect_uri=REDIRECT_URI, state="s", code_challenge=challenge)
    back = consent(url, allow=False)
    assert back["error"] == "access_denied" and back["state"] == "s" and "code" not in back


def test_a_refresh_token_works_once_and_its_reuse_asks_the_member_to_reconnect(
        provider: FitbitLegacyProvider, tokens: TokenSet, fitbit_api: FitbitStandin) -> None:
    assert tokens.refresh_token
    fresh = provider.refresh(refresh_token=tokens.refresh_token)
    assert fresh.refresh_token and fresh.refresh_token != tokens.refresh_token
    assert fresh.access_token != tokens.access_token
    with pytest.raises(NeedsReconnect, match="invalid_grant"):
        provider.refresh(refresh_token=tokens.refresh_token)
    assert provider.user_id(access_token=fresh.access_token) == generator.legacy_user_id(SEED, 0)
    assert fitbit_api.stats()["refused_refreshes"] == 1


def test_refresh_tokens_revoked_by_fitbit_ask_the_member_to_reconnect(
        provider: FitbitLegacyProvider, tokens: TokenSet, fitbit_api: FitbitStandin) -> None:
    assert tokens.refresh_token
    fitbit_api.configure(revoke_refresh_tokens=True)
    with pytest.raises(NeedsReconnect):
        provider.refresh(refresh_token=tokens.refresh_token)


def test_a_token_endpoint_outage_is_a_temporary_failure_that_keeps_the_refresh_token(
        provider: FitbitLegacyProvider, tokens: TokenSet, fitbit_api: FitbitStandin) -> None:
    assert tokens.refresh_token
    fitbit_api.configure(fail_next_token=[503])
    with pytest.raises(TemporaryFailure):
        provider.refresh(refresh_token=tokens.refresh_token)
    assert provider.refresh(refresh_token=tokens.refresh_token).access_token


def test_revoking_withdraws_the_grant(provider: FitbitLegacyProvider, tokens: TokenSet,
                                      fitbit_api: FitbitStandin) -> None:
    assert tokens.refresh_token
    provider.revoke(token=tokens.refresh_token)
    with pytest.raises(TokenExpired):
        week_of_steps(provider, tokens)
    with pytest.raises(NeedsReconnect):
        provider.refresh(refresh_token=tokens.refresh_token)
    provider.revoke(token=tokens.refresh_token)  # revoking twice is harmless
    assert fitbit_api.stats()["revocations"] == 1


# --- data -----------------------------------------------------------------------------------------


def test_steps_for_a_range_match_the_generator_and_leave_out_days_without_data(
        provider: FitbitLegacyProvider, tokens: TokenSet) -> None:
    start, end = date(2025, 12, 1), date(2026, 1, 15)
    days = provider.daily_steps(access_token=tokens.access_token, start=start, end=end)
    assert [(day.day, day.steps) for day in days] == expected_steps(start, end)
    assert date(2025, 12, 13) not in {day.day for day in days}  # the tracker was not worn that day
    assert days[-1].day == date(2026, 1, 14)  # the end of the range is not included


def test_a_year_of_steps_is_one_request_to_the_v1_time_series(
        provider: FitbitLegacyProvider, tokens: TokenSet, fitbit_api: FitbitStandin) -> None:
    start, end = TODAY - timedelta(days=365), TODAY + timedelta(days=1)
    days = provider.daily_steps(access_token=tokens.access_token, start=start, end=end)
    assert [(day.day, day.steps) for day in days] == expected_steps(start, end)
    assert fitbit_api.api_paths()[-1] == f"/1/user/-/activities/steps/date/{start}/{TODAY}.json"
    assert fitbit_api.stats()["requests"]["activities/steps"] == 1


def test_steps_ranges_longer_than_fitbit_allows_are_refused_before_any_request(
        provider: FitbitLegacyProvider, tokens: TokenSet, fitbit_api: FitbitStandin) -> None:
    with pytest.raises(ValueError, match="1095"):
        provider.daily_steps(access_token=tokens.access_token, start=date(2023, 1, 1), end=date(2026, 1, 2))
    assert "activities/steps" not in fitbit_api.stats()["requests"]


def test_sleep_for_a_range_matches_the_generator_in_the_members_zone(
        provider: FitbitLegacyProvider, tokens: TokenSet) -> None:
    start, end = date(2025, 10, 1), date(2026, 1, 1)
    sessions = provider.sleep(access_token=tokens.access_token, start=start, end=end, tz=ZONE)
    expected = sorted((sleep for night in generator.days(start, end - timedelta(1))
                       for sleep in generator.sleep_sessions(SEED, 0, night)), key=lambda sleep: sleep.start)
    assert [(s.start.astimezone(UTC), s.end.astimezone(UTC), s.minutes_asleep, s.minutes_in_bed, s.is_main,
             s.source_id) for s in sessions] == [
        (g.start.astimezone(UTC), g.end.astimezone(UTC), elapsed_minutes(g) - g.minutes_awake,
         elapsed_minutes(g), g.is_main, f"fitbit:{g.point_id}") for g in expected]
    assert any(not session.is_main for session in sessions)  # naps come through, marked as naps
    assert all(session.start.utcoffset() == session.start.astimezone(ZoneInfo(ZONE)).utcoffset()
               for session in sessions)


def test_sleep_is_read_from_the_v1_2_api(provider: FitbitLegacyProvider, tokens: TokenSet,
                                         fitbit_api: FitbitStandin) -> None:
    provider.sleep(access_token=tokens.access_token, start=date(2026, 1, 1), end=date(2026, 1, 11), tz=ZONE)
    assert fitbit_api.api_paths()[-1] == "/1.2/user/-/sleep/date/2026-01-01/2026-01-10.json"


def test_a_night_across_the_autumn_clock_change_keeps_its_true_length(
        provider: FitbitLegacyProvider, tokens: TokenSet) -> None:
    [night] = provider.sleep(access_token=tokens.access_token, start=date(2025, 11, 2),
                             end=date(2025, 11, 3), tz=ZONE)
    assert night.start.utcoffset() == timedelta(hours=-4) and night.end.utcoffset() == timedelta(hours=-5)
    assert night.end - night.start == timedelta(minutes=night.minutes_in_bed)
    assert night.minutes_in_bed == 466  # 01:15 EDT to 08:01 EST: 6 h 46 min on the wall clock, 7 h 46 min
    assert night.end.date() == date(2025, 11, 2)


def test_sleep_ranges_longer_than_100_days_are_refused_before_any_request(
        provider: FitbitLegacyProvider, tokens: TokenSet, fitbit_api: FitbitStandin) -> None:
    with pytest.raises(ValueError, match="100"):
        provider.sleep(access_token=tokens.access_token, start=date(2025, 9, 1), end=date(2025, 12, 11),
                       tz=ZONE)
    assert "sleep" not in fitbit_api.stats()["requests"]


# --- the shutdown and other failures --------------------------------------------------------------


def test_after_the_shutdown_every_api_call_asks_the_member_to_move_to_google(
        provider: FitbitLegacyProvider, tokens: TokenSet, fitbit_api: FitbitStandin) -> None:
    fitbit_api.configure(gone=True)
    with pytest.raises(MoveToGoogle):
        week_of_steps(provider, tokens)
    with pytest.raises(MoveToGoogle):
        week_of_sleep(provider, tokens)
    with pytest.raises(MoveToGoogle):
        provider.user_id(access_token=tokens.access_token)
    assert tokens.refresh_token
    assert provider.refresh(refresh_token=tokens.refresh_token).access_token  # the token host still answers
    assert fitbit_api.stats()["sent_410"] == 3


def test_a_standin_started_gone_answers_410_from_the_first_call(clock: FakeClock) -> None:
    app = create_fitbit_standin(seed=SEED, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, gone=True,
                                today=TODAY, clock=clock)
    client = app.test_client()
    answer = client.get("/1/user/-/activities/steps/date/2026-01-01/2026-01-07.json",
                        headers={"Authorization": "Bearer anything"})
    assert answer.status_code == 410
    assert answer.json is not None and answer.json["success"] is False
    assert answer.json["errors"][0]["errorType"] == "gone"


def test_an_expired_access_token_raises_token_expired_without_a_second_try(
        provider: FitbitLegacyProvider, tokens: TokenSet, fitbit_api: FitbitStandin) -> None:
    fitbit_api.clock.advance(8 * HOUR)
    with pytest.raises(TokenExpired, match="expired"):
        week_of_steps(provider, tokens)
    stats = fitbit_api.stats()
    assert stats["requests"]["activities/steps"] == 1  # the library did not retry or refresh by itself
    assert stats["refresh_grants"] == 0


def test_an_unknown_access_token_raises_token_expired(provider: FitbitLegacyProvider,
                                                      fitbit_api: FitbitStandin) -> None:
    with pytest.raises(TokenExpired):
        provider.sleep(access_token="not-a-token", start=date(2026, 1, 1), end=date(2026, 1, 8), tz=ZONE)


def test_a_grant_without_the_sleep_scope_asks_the_member_to_reconnect(provider: FitbitLegacyProvider) -> None:
    tokens = connect(provider, scopes=["activity"])
    assert tokens.scope == "activity"
    assert week_of_steps(provider, tokens, days=1)
    with pytest.raises(NeedsReconnect, match="403"):
        week_of_sleep(provider, tokens)


def test_the_hourly_limit_raises_rate_limited_until_the_top_of_the_hour(
        provider: FitbitLegacyProvider, tokens: TokenSet, fitbit_api: FitbitStandin) -> None:
    fitbit_api.configure(rate_limit_per_hour=2)
    for _ in range(2):
        week_of_steps(provider, tokens, days=1)
    with pytest.raises(RateLimited) as limited:
        week_of_steps(provider, tokens, days=1)
    assert limited.value.retry_after == 1800  # the clock stands at half past
    fitbit_api.clock.advance(1800)
    assert week_of_steps(provider, tokens, days=1)


def test_a_429_without_retry_after_waits_for_the_quota_reset(
        provider: FitbitLegacyProvider, tokens: TokenSet, fitbit_api: FitbitStandin) -> None:
    fitbit_api.configure(rate_limit_per_hour=1, send_retry_after=False)
    week_of_steps(provider, tokens, days=1)
    fitbit_api.clock.advance(600)
    with pytest.raises(RateLimited) as limited:
        week_of_steps(provider, tokens, days=1)
    assert limited.value.retry_after == 1200


def test_a_bare_429_with_no_hint_at_all_waits_a_minute(provider: FitbitLegacyProvider, tokens: TokenSet,
                                                       fitbit_api: FitbitStandin) -> None:
    fitbit_api.configure(fail_next=[429], send_retry_after=False)
    with pytest.raises(RateLimited) as limited:
        week_of_sleep(provider, tokens)
    assert limited.value.retry_after == 60


def test_a_429_with_retry_after_waits_that_long(provider: FitbitLegacyProvider, tokens: TokenSet,
                                                fitbit_api: FitbitStandin) -> None:
    fitbit_api.configure(fail_next=[429])
    with pytest.raises(RateLimited) as limited:
        provider.user_id(access_token=tokens.access_token)
    assert limited.value.retry_after == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_temporary_failures(provider: FitbitLegacyProvider, tokens: TokenSet,
                                              fitbit_api: FitbitStandin, status: int) -> None:
    fitbit_api.configure(fail_next=[status])
    with pytest.raises(TemporaryFailure, match=str(status)):
        week_of_steps(provider, tokens)
    assert week_of_steps(provider, tokens)


def test_a_slow_answer_is_a_temporary_failure(fitbit_api: FitbitStandin, tokens: TokenSet) -> None:
    impatient = FitbitLegacyProvider(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                     authorize_url=f"{fitbit_api.url}/oauth2/authorize",
                                     token_url=f"{fitbit_api.url}/oauth2/token", api_base=fitbit_api.url,
                                     timeout=(1, 0.2))
    fitbit_api.configure(latency_ms=600)
    with pytest.raises(TemporaryFailure, match="Timeout"):
        week_of_steps(impatient, tokens)
    fitbit_api.configure(latency_ms=0)


def test_an_unreachable_fitbit_is_a_temporary_failure() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    nowhere = FitbitLegacyProvider(client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                   authorize_url=f"{url}/oauth2/authorize", token_url=f"{url}/oauth2/token",
                                   api_base=url)
    with pytest.raises(TemporaryFailure):
        nowhere.daily_steps(access_token="t", start=date(2026, 1, 1), end=date(2026, 1, 8))
    with pytest.raises(TemporaryFailure):
        nowhere.refresh(refresh_token="r")


def test_other_client_errors_are_plain_provider_errors(provider: FitbitLegacyProvider, tokens: TokenSet,
                                                       fitbit_api: FitbitStandin) -> None:
    fitbit_api.configure(fail_next=[404])
    with pytest.raises(ProviderError) as failed:
        week_of_steps(provider, tokens)
    assert type(failed.value) is ProviderError


# --- the stand-in itself --------------------------------------------------------------------------


def test_the_standin_answers_every_day_of_a_steps_range_as_strings_with_rate_headers(
        fitbit_api: FitbitStandin, tokens: TokenSet) -> None:
    answer = requests.get(f"{fitbit_api.url}/1/user/-/activities/steps/date/2025-12-12/2025-12-14.json",
                          headers=bearer(tokens), timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {"activities-steps": [
        {"dateTime": "2025-12-12", "value": str(generator.daily_steps(SEED, 0, date(2025, 12, 12)))},
        {"dateTime": "2025-12-13", "value": "0"},
        {"dateTime": "2025-12-14", "value": str(generator.daily_steps(SEED, 0, date(2025, 12, 14)))}]}
    assert answer.headers["Fitbit-Rate-Limit-Limit"] == "150"
    assert answer.headers["Fitbit-Rate-Limit-Remaining"] == "149"
    assert answer.headers["Fitbit-Rate-Limit-Reset"] == "1800"


def test_the_standin_writes_sleep_logs_in_the_v1_2_shape(fitbit_api: FitbitStandin, tokens: TokenSet) -> None:
    answer = requests.get(f"{fitbit_api.url}/1.2/user/-/sleep/date/2026-01-04/2026-01-04.json",
                          headers=bearer(tokens), timeout=5)
    [log] = answer.json()["sleep"]
    [sleep] = generator.sleep_sessions(SEED, 0, date(2026, 1, 4))
    assert log["dateOfSleep"] == "2026-01-04" and log["isMainSleep"] is True
    assert log["startTime"] == sleep.start.strftime("%Y-%m-%dT%H:%M:%S.000")
    assert log["duration"] == log["timeInBed"] * 60_000
    assert log["minutesAsleep"] + log["minutesAwake"] == log["timeInBed"]
    assert log["logId"] == int(sleep.point_id) and log["type"] in ("stages", "classic")
    assert sum(level["minutes"] for level in log["levels"]["summary"].values()) == log["timeInBed"]


@pytest.mark.parametrize(("path", "field"), [
    ("/1/user/-/activities/steps/date/2023-01-01/2026-01-01.json", "end-date"),
    ("/1.2/user/-/sleep/date/2025-09-01/2025-12-10.json", "end-date"),
    ("/1/user/-/activities/steps/date/2026-13-01/2026-12-31.json", "base-date"),
])
def test_the_standin_refuses_bad_ranges_in_fitbits_error_shape(fitbit_api: FitbitStandin, tokens: TokenSet,
                                                               path: str, field: str) -> None:
    answer = requests.get(f"{fitbit_api.url}{path}", headers=bearer(tokens), timeout=5)
    assert answer.status_code == 400
    body = answer.json()
    assert body["success"] is False
    assert body["errors"][0]["errorType"] == "validation" and body["errors"][0]["fieldName"] == field


def test_the_standin_profile_needs_the_profile_scope(fitbit_api: FitbitStandin, tokens: TokenSet) -> None:
    answer = requests.get(f"{fitbit_api.url}/1/user/-/profile.json",
                          headers=bearer(tokens), timeout=5)
    assert answer.status_code == 403
    granted = requests.post(f"{fitbit_api.url}/_standin/tokens", timeout=5,
                            json={"login_hint": "walker", "scopes": ["profile"]}).json()
    answer = requests.get(f"{fitbit_api.url}/1/user/-/profile.json",
                          headers={"Authorization": f"Bearer {granted['access_token']}"}, timeout=5)
    assert answer.json()["user"]["encodedId"] == generator.legacy_user_id(SEED, 0)
    assert answer.json()["user"]["timezone"] == ZONE


def test_the_standin_refuses_bad_test_settings(fitbit_api: FitbitStandin) -> None:
    for settings in ({"gone": "yes"}, {"rate_limit_per_hour": 0}, {"fail_next": [200]}, {"colour": "red"}):
        answer = requests.post(f"{fitbit_api.url}/_standin/config", json=settings, timeout=5)
        assert answer.status_code == 400, settings
    assert requests.get(f"{fitbit_api.url}/_standin/config", timeout=5).json()["gone"] is False


def test_the_command_line_serves_a_gone_api_on_the_given_port() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "wearables.standins.fitbit_legacy", "--port", str(port),
                                "--gone", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/1/user/-/profile.json", timeout=1)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, "the stand-in did not start"
                time.sleep(0.1)
        assert answer.status_code == 410
    finally:
        process.terminate()
        process.wait(timeout=10)
