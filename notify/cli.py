"""`flask push keys`: the VAPID public key, or a new key pair for production."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from notify import push

push_cli = AppGroup("push", help="Web Push.")


@push_cli.command("keys")
@click.option("--generate", is_flag=True,
              help="Make a new key pair for the environment (printed once, stored nowhere).")
def keys(generate: bool) -> None:
    """Print the VAPID public key (applicationServerKey) that devices subscribe with."""
    if not generate:
        click.echo(push.public_key())
        return
    pair = push.generate_keys()
    click.echo("A new VAPID key pair. Put the private key in the environment of every process "
               "that sends pushes and keep it secret: it is printed only this once.")
    click.echo(f"VAPID_PRIVATE_KEY={pair.private_raw()}")
    click.echo(f"Public key (applicationServerKey): {pair.public_key}")
    click.echo("Devices that subscribed with another key must subscribe again.")
