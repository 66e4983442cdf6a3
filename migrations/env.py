"""Alembic environment: the models' metadata, the URL from the app's config."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlmodel import SQLModel

# Every package's models, so that their tables are on SQLModel.metadata.
import app.accounts.models
import app.audit
import app.idempotency  # noqa: F401
import coach.models  # noqa: F401
import feed.models
import feed.safety.models  # noqa: F401
import goals.models  # noqa: F401
import notify.models  # noqa: F401
import wearables.models  # noqa: F401
from app.config import load_config
from app.db import make_engine, normalise_url

config = context.config
if config.config_file_name is not None and not config.attributes.get("quiet"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def _url() -> str:
    return normalise_url(config.get_main_option("sqlalchemy.url") or load_config()["DATABASE_URL"])


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url())
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
