"""`flask coach rebuild`: rebuild the coach rollups from the raw rows now."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from coach.tasks import rebuild_all

coach_cli = AppGroup("coach", help="Coach views and their rollups.")


@coach_cli.command("rebuild")
def rebuild() -> None:
    """Recompute every member's and cohort's day rows; prints how many cohort days were off."""
    cohorts, corrected = rebuild_all()
    click.echo(f"{cohorts} cohorts rebuilt; {corrected} cohort days corrected.")
