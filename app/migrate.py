"""Alembic, driven from the app's config: `flask db upgrade`, `flask db check`."""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig

from app.config import ROOT


def alembic_config(database_url: str) -> AlembicConfig:
    config = AlembicConfig(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Raise if the models differ from what the migrations build."""
    command.check(alembic_config(database_url))
