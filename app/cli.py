"""Command-line set-up: `flask db`, `flask accounts`, `flask cohorts`, `flask demo`.

So that a deployment (or an outside test) can set itself up without the demo data.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import func, select
from sqlmodel import Session

from app import migrate
from app.accounts import services, two_factor
from app.accounts.models import Role, User
from app.crypto import app_cipher
from app.db import get_db, utcnow
from app.demo import demo_authenticators, demo_seeders, demo_sign_ins, seed_demo
from app.errors import DomainError
from app.urls import public_url

db_cli = AppGroup("db", help="Database migrations, backups and restores.")
accounts_cli = AppGroup("accounts", help="Admin and coach accounts.")
cohorts_cli = AppGroup("cohorts", help="Cohorts (peer groups) and invites.")
demo_cli = AppGroup("demo", help="Demo data for trying Hearten out.")

password_option = click.option(
    "--password", prompt=True, hide_input=True, confirmation_prompt=True,
    envvar="HEARTEN_PASSWORD", help="The password (or set HEARTEN_PASSWORD).")


def _fail(exc: DomainError) -> None:
    raise click.ClickException(str(exc.message))


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration."""
    migrate.upgrade(current_app.config["DATABASE_URL"])
    click.echo("Database is up to date.")


@db_cli.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree."""
    migrate.check(current_app.config["DATABASE_URL"])
    click.echo("Models and migrations agree.")


@db_cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def db_backup(path: Path) -> None:
    """Copy the database to PATH, safely while the app runs (SQLite: a file; PostgreSQL:
    pg_dump's custom format)."""
    try:
        migrate.backup(current_app.config["DATABASE_URL"], path)
    except migrate.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Backed up to {path}.")


@db_cli.command("restore")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds data.")
def db_restore(path: Path, force: bool) -> None:
    """Put the backup at PATH in place of the database (stop the app and the worker first)."""
    try:
        migrate.restore(current_app.config["DATABASE_URL"], path, force=force)
    except migrate.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Restored from {path}. Run `flask db upgrade` if it came from an older version "
               "of Hearten, then start the app.")


def _create(name: str, password: str, role: Role) -> User:
    try:
        with get_db().transaction() as session:
            return services.create_user(session, display_name=name, password=password, role=role)
    except DomainError as exc:
        _fail(exc)
        raise  # unreachable: _fail raises


@accounts_cli.command("create-admin")
@click.option("--name", default="admin", show_default=True)
@password_option
def create_admin(name: str, password: str) -> None:
    """Create an admin account."""
    user = _create(name, password, Role.ADMIN)
    click.echo(f"Admin {user.display_name} created.")


@accounts_cli.command("create-coach")
@click.argument("name")
@password_option
def create_coach(name: str, password: str) -> None:
    """Create a coach account called NAME."""
    user = _create(name, password, Role.COACH)
    click.echo(f"Coach {user.display_name} created.")


def _find_user(session: Session, name: str) -> User:
    user = services.find_user(session, display_name=name)
    if user is None:
        raise click.ClickException(f"No account is called {name!r}.")
    return user


@accounts_cli.command("reset-link")
@click.argument("name")
def reset_link(name: str) -> None:
    """Print a one-time password reset link for NAME (issued by the first admin)."""
    with get_db().transaction() as session:
        member = _find_user(session, name)
        admin = services.first_admin(session)
        if admin is None:
            raise click.ClickException("Create an admin first: flask accounts create-admin")
        _, token = services.issue_reset_link(session, staff=admin, member_id=member.id or 0,
                                             now=utcnow(),
                                             hours=current_app.config["RESET_LINK_HOURS"])
    with current_app.test_request_context(base_url=_base_url()):
        click.echo(public_url("accounts.reset", token=token))


@accounts_cli.command("two-factor-code")
@click.argument("name")
def two_factor_code(name: str) -> None:
    """Print the code NAME's authenticator app shows now (demo and development only)."""
    if current_app.config["APP_ENV"] == "production":
        raise click.ClickException(
            "Codes are never printed in production. Please use your authenticator app; if it is "
            "lost, an admin can run: flask accounts reset-two-factor NAME")
    with get_db().session(write=False) as session:
        user = _find_user(session, name)
        if not two_factor.is_enrolled(session, user=user):
            raise click.ClickException(f"{user.display_name} has no authenticator app set up.")
        code, seconds = two_factor.current_code(session, user=user,
                                                cipher=app_cipher(current_app), now=utcnow())
    click.echo(f"{code}  (works for about {seconds} more seconds)")


@accounts_cli.command("reset-two-factor")
@click.argument("name")
def reset_two_factor(name: str) -> None:
    """Remove NAME's authenticator and recovery codes and sign them out everywhere (a lost
    phone): they set up a new authenticator at their next sign-in."""
    with get_db().transaction() as session:
        user = _find_user(session, name)
        if not two_factor.needs_two_factor(user):
            raise click.ClickException(f"{user.display_name} is a member; members sign in "
                                       "without a second step.")
        two_factor.reset(session, user=user, now=utcnow())
        shown = user.display_name
    click.echo(f"Two-step sign-in for {shown} is reset and every device of theirs "
               "is signed out. They set up a new authenticator app at their next sign-in.")


def _base_url() -> str:
    port = os.environ.get("PORT", "8000")
    return str(current_app.config.get("PUBLIC_URL") or f"http://127.0.0.1:{port}")


@cohorts_cli.command("create")
@click.argument("name")
@click.option("--coach", "coach_name", required=True, help="The coach's display name.")
def create_cohort(name: str, coach_name: str) -> None:
    """Create a cohort called NAME, run by --coach."""
    try:
        with get_db().transaction() as session:
            coach = _find_user(session, coach_name)
            cohort = services.create_cohort(session, coach=coach, name=name)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"Cohort {cohort.name} created (id {cohort.id}).")


@cohorts_cli.command("invite")
@click.argument("cohort_name")
@click.option("--days", default=14, show_default=True)
@click.option("--uses", "max_uses", default=25, show_default=True)
def invite(cohort_name: str, days: int, max_uses: int) -> None:
    """Print a new invite code and link for COHORT_NAME."""
    try:
        with get_db().transaction() as session:
            matches = services.find_cohorts(session, name=cohort_name)
            if not matches:
                raise click.ClickException(f"No cohort is called {cohort_name!r}.")
            if len(matches) > 1:
                ids = ", ".join(str(c.id) for c in matches)
                raise click.ClickException(f"Several cohorts are called {cohort_name!r} "
                                           f"(ids {ids}); please rename one first.")
            cohort = matches[0]
            coach = services.coaches_of(session, cohort_id=cohort.id or 0)
            if not coach:
                raise click.ClickException(f"Cohort {cohort.name!r} has no coach.")
            created = services.create_invite(session, coach=coach[0], cohort_id=cohort.id or 0,
                                             days=days, max_uses=max_uses, now=utcnow())
    except DomainError as exc:
        _fail(exc)
    with current_app.test_request_context(base_url=_base_url()):
        link = public_url("accounts.join_form", code=created.code)
    click.echo(f"Code: {services.format_code(created.code)}")
    click.echo(f"Link: {link}")


@demo_cli.command("seed")
def seed() -> None:
    """Create a demo cohort with a coach and members (only into an empty database)."""
    if current_app.config["APP_ENV"] == "production":
        raise click.ClickException("Demo data is never created in production.")
    cipher = app_cipher(current_app)
    with get_db().transaction() as session:
        if session.scalar(select(func.count()).select_from(User)):
            sign_ins = demo_sign_ins(session, now=utcnow())
            if not sign_ins:
                click.echo("The database already has accounts; no demo data added.")
                return
        else:
            sign_ins = seed_demo(session, now=utcnow(), cipher=cipher)
            session.flush()
            for seeder in demo_seeders(current_app):
                seeder(session, utcnow())
        authenticators = demo_authenticators(session, now=utcnow(), cipher=cipher)
    click.echo("Demo sign-ins (nickname / password):")
    for role, name, password in sign_ins:
        click.echo(f"  {role:<7} {name} / {password}")
    if authenticators:
        click.echo("Coaches and admins then enter a code from an authenticator app. Add these keys "
                   "to one,")
        click.echo("or print the current code with: flask accounts two-factor-code NAME")
        for name, secret in authenticators:
            click.echo(f"  {name:<11} {secret}")


def init_app(app: Flask) -> None:
    for group in (db_cli, accounts_cli, cohorts_cli, demo_cli):
        app.cli.add_command(group)
