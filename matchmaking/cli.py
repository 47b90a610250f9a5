"""The `matchmaking` command."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup

from .extensions import db


def register(app: Flask) -> None:
    pass


def _create_app() -> Flask:
    from .app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def main() -> None:
    """Matchmaking of by-products and material needs (CC du Mont des Avaloirs)."""


@main.command("init-db")
def init_db() -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    from . import migrate

    migrate.upgrade(db.engine)
    click.echo(f"Database at revision {migrate.current(db.engine)}")


@main.command("makemigration", hidden=True)
@click.argument("message")
def make_migration(message: str) -> None:
    from . import migrate

    migrate.revision(db.engine, message)
