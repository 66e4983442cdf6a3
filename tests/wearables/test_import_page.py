"""Bringing a file in from the tracker page: a job reads it, stores it once, or refuses it whole."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlmodel import Session

from app.accounts.models import User
from tests import factories
from tests.factories import csrf_token, sign_in
from wearables.models import DailySteps, ImportRun, SleepNight

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture
def app_config() -> dict[str, object]:
    return {"IMPORT_MAX_BYTES": 2 * 1024 * 1024}


def _upload(client: FlaskClient, name: str, data: bytes) -> str:
    response = client.post("/tracker/import", data={
        "csrf_token": csrf_token(client), "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data", follow_redirects=True)
    return f"{response.status_code} {response.get_data(as_text=True)}"


def _counts(session: Session) -> tuple[int, int]:
    fresh = factories.fresh(session)
    return (int(fresh.scalar(select(func.count()).select_from(DailySteps)) or 0),
            int(fresh.scalar(select(func.count()).select_from(SleepNight)) or 0))


def test_a_csv_is_brought_in_once_and_again_changes_nothing(
        client: FlaskClient, session: Session, member: User, tmp_path: Path) -> None:
    sign_in(client, "Sunny River")
    data = (SAMPLES / "steps_and_sleep.csv").read_bytes()
    page = _upload(client, "my steps.csv", data)
    assert page.startswith("200") and "Got it. We are reading your file" in page
    assert "3 days of steps and 3 nights were new or changed" in page, page
    first = _counts(session)
    assert first == (3, 3)
    again = _upload(client, "my steps.csv", data)
    assert "0 days of steps and 0 nights were new or changed" in again
    assert _counts(session) == first
    assert not list((tmp_path / "uploads").glob("import-*")), "uploads are deleted after reading"


def test_an_apple_health_export_is_read(client: FlaskClient, session: Session,
                                        member: User) -> None:
    sign_in(client, "Sunny River")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(SAMPLES / "apple_export.xml", "apple_health_export/export.xml")
    page = _upload(client, "export.zip", archive.getvalue())
    assert "were new or changed" in page
    steps, nights = _counts(session)
    assert steps > 0 and nights > 0


def test_a_broken_file_is_refused_whole_with_a_clear_message(
        client: FlaskClient, session: Session, member: User) -> None:
    sign_in(client, "Sunny River")
    bad = b"date,steps\n2026-01-05,8412\n2026-13-01,100\n"
    page = _upload(client, "broken.csv", bad)
    assert "A date in this file is not a real date." in page
    assert "Nothing from it was saved." in page
    assert _counts(session) == (0, 0)
    (run,) = factories.fresh(session).scalars(select(ImportRun))
    assert run.status == "refused" and run.reason_code == "bad_date"


def test_files_that_are_not_exports_or_too_big_are_refused(
        client: FlaskClient, session: Session, member: User) -> None:
    sign_in(client, "Sunny River")
    assert "We do not recognise this file" in _upload(client, "photo.jpg", b"\xff\xd8\xff" * 50)
    assert "That file is empty" in _upload(client, "empty.csv", b"")
    assert _upload(client, "huge.csv", b"x" * (3 * 1024 * 1024)).startswith("413")
    assert _counts(session) == (0, 0)


def test_a_member_sees_only_their_own_imports(client: FlaskClient, session: Session,
                                              member: User, peer: User) -> None:
    sign_in(client, "Sunny River")
    _upload(client, "mine.csv", (SAMPLES / "steps_and_sleep.csv").read_bytes())
    other = client.application.test_client()
    sign_in(other, "Quiet Oak")
    assert "mine.csv" not in other.get("/tracker").get_data(as_text=True)


def test_an_export_larger_than_the_usual_request_limit_is_taken(
        client: FlaskClient, session: Session, member: User) -> None:
    sign_in(client, "Sunny River")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(SAMPLES / "apple_export.xml", "apple_health_export/export.xml")
        # Apple exports carry other files (ECGs, routes) beside export.xml.
        zf.writestr("apple_health_export/electrocardiograms/ecg.csv", os.urandom(1536 * 1024))
    assert len(archive.getvalue()) > 1024 * 1024  # past the app-wide 1 MB request limit
    page = _upload(client, "export.zip", archive.getvalue())
    assert page.startswith("200") and "were new or changed" in page, page[:300]
    assert _counts(session)[0] > 0


def test_an_upload_without_the_csrf_token_is_refused(client: FlaskClient, session: Session,
                                                     member: User) -> None:
    sign_in(client, "Sunny River")
    response = client.post("/tracker/import", data={
        "file": (io.BytesIO((SAMPLES / "steps_and_sleep.csv").read_bytes()), "a.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 400
    assert _counts(session) == (0, 0)
