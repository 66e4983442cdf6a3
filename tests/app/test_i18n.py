"""Two languages from day one: the catalogs are complete and every path speaks the member's."""

from __future__ import annotations

import sys
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from app.accounts.models import User
from tests import factories
from tests.factories import csrf_token, sign_in

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import i18n


def test_every_message_in_the_code_has_a_spanish_translation(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    i18n.extract(pot)  # from the code as it is now, not from a stale template
    assert i18n.missing(pot) == []


def test_the_browser_language_is_used_before_sign_in(client: FlaskClient) -> None:
    page = client.get("/login", headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    html = page.get_data(as_text=True)
    assert '<html lang="es">' in html and "Iniciar sesión" in html


def test_the_language_picker_changes_the_language(client: FlaskClient) -> None:
    client.post("/language", data={"language": "es", "next": "/login",
                                   "csrf_token": csrf_token(client)})
    assert "Iniciar sesión" in client.get("/login").get_data(as_text=True)


def test_a_members_own_language_wins_and_the_picker_saves_it(
        client: FlaskClient, session: Session, cohort: object) -> None:
    factories.make_member(session, cohort=cohort, name="Luz Clara", language="es")  # type: ignore[arg-type]
    sign_in(client, "Luz Clara")
    home = client.get("/home", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Hola, Luz Clara" in home and "1 integrante" in home
    client.post("/language", data={"language": "en", "csrf_token": csrf_token(client)})
    assert "Hello, Luz Clara" in client.get("/home").get_data(as_text=True)
    user = factories.fresh(session).get(User, client.get("/api/v1/me").get_json()["id"])
    assert user is not None and user.language == "en"


def test_chart_gridlines_write_numbers_the_readers_way(app: Flask) -> None:
    """The value beside a chart's gridline is a number written for the page's language."""
    from app.charts import bar_chart

    chart = bar_chart([("1 Nov", 12000), ("2 Nov", None)])
    macro = app.jinja_env.get_template("_charts.html").module.bars  # type: ignore[attr-defined]
    for language, written in (("en", ("10,000", "20,000")), ("es", ("10.000", "20.000"))):
        with app.test_request_context(headers={"Accept-Language": language}):
            svg = str(macro(chart, "steps-chart", "Steps"))
        assert all(f">{number}</text>" in svg for number in written), svg
