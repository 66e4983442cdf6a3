"""`flask wearables sync` (with a progress bar) and `flask wearables rotate-keys`."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlmodel import col, select

from app.accounts import services as accounts
from app.accounts import two_factor
from app.db import get_db
from wearables.models import Connection, ConnectionStatus
from wearables.sync import sync_connection
from wearables.tasks import cipher, sync_context

wearables_cli = AppGroup("wearables", help="Tracker connections and sync.")


@wearables_cli.command("sync")
@click.option("--member", "member_name", default=None, help="Only this member's trackers.")
def sync(member_name: str | None) -> None:
    """Sync connected trackers now, in the foreground, with a progress bar."""
    with get_db().session(write=False) as session:
        query = select(Connection).where(col(Connection.status) == ConnectionStatus.CONNECTED)
        if member_name:
            member = accounts.find_user(session, display_name=member_name)
            if member is None:
                raise click.ClickException(f"No account is called {member_name!r}.")
            query = query.where(col(Connection.member_id) == member.id)
        connections = list(session.exec(query.order_by(col(Connection.id))))
    if not connections:
        click.echo("No connected trackers to sync.")
        return
    for connection in connections:
        label = f"{connection.provider} #{connection.id}"
        with click.progressbar(length=1, label=label, show_pos=True) as bar:
            def progress(done: int, total: int, bar: object = bar) -> None:
                bar.length = max(total, 1)  # type: ignore[attr-defined]
                bar.update(done - bar.pos)  # type: ignore[attr-defined]

            context = sync_context()
            context.progress = progress
            outcome = sync_connection(context, connection.id or 0)
        click.echo(f"{label}: {outcome.status} ({outcome.days_done} of {outcome.days_total} days)")


@wearables_cli.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt every stored token (and staff authenticator secret) with the newest key in
    TOKEN_KEYS."""
    count = 0
    with get_db().transaction() as session:
        for connection in session.exec(select(Connection)):
            for field in ("access_token_enc", "refresh_token_enc"):
                value = getattr(connection, field)
                if value:
                    setattr(connection, field, cipher().rotate(value))
                    count += 1
        secrets = two_factor.rotate_secrets(session, cipher=cipher())
    click.echo(f"Re-encrypted {count} tokens and {secrets} authenticator secrets with the newest "
               "key.")
