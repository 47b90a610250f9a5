"""The `matchmaking` command: database, seed data, accounts, the web app, the engine's tools."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from .extensions import db


def register(app: Flask) -> None:
    """Hook for commands that need the app object itself (none yet)."""


def _create_app() -> Flask:
    from .app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def main() -> None:
    """Matchmaking of by-products and material needs (CC du Mont des Avaloirs)."""


def _fail(exc: Exception) -> None:
    from .services.errors import ValidationError

    if isinstance(exc, ValidationError):
        for field, message in exc.messages().items():
            click.echo(f"{field}: {message}", err=True)
        sys.exit(2)
    raise exc


@main.command("init-db")
def init_db() -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    from . import migrate

    migrate.upgrade(db.engine)
    click.echo(f"Database at revision {migrate.current(db.engine)}")


@main.command("makemigration", hidden=True)
@click.argument("message")
def make_migration(message: str) -> None:
    """Autogenerate a migration from the models (developers)."""
    from . import migrate

    migrate.revision(db.engine, message)


@main.command("seed")
@click.option("--demo", is_flag=True, help="Also load the fictitious CCMA demo territory.")
def seed(demo: bool) -> None:
    """Load the nomenclatures and communes (and the demo territory). Running it twice changes nothing."""
    from .services import seeding

    counts = seeding.load_reference(db.session)
    if demo:
        counts |= seeding.load_demo(db.session)
    db.session.commit()
    for what, n in counts.items():
        click.echo(f"{what}: {n} written")
    if demo:
        click.echo(f"Demo accounts: any demo firm's contact e-mail, password {seeding.DEMO_PASSWORD!r}")


@main.group("users")
def users() -> None:
    """User accounts."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", type=click.Choice(["member", "facilitator", "analyst", "admin"]), default="member")
@click.option("--firm-siret", help="The firm a member belongs to.")
@click.option("--name")
@with_appcontext
def users_create(email: str, password: str, role: str, firm_siret: str | None, name: str | None) -> None:
    """Create an account (staff accounts are created this way)."""
    from sqlalchemy import select

    from .models import Firm
    from .services import users as user_service

    firm = None
    if firm_siret:
        firm = db.session.scalar(select(Firm).where(Firm.siret == firm_siret))
        if firm is None:
            raise click.UsageError(f"no firm with SIRET {firm_siret}")
    try:
        user = user_service.create_user(db.session, email=email, password=password, role=role, firm=firm, name=name)
    except Exception as exc:  # noqa: BLE001 - validation errors are printed, others re-raised
        _fail(exc)
        return
    db.session.commit()
    click.echo(f"user {user.id} created: {user.email} ({user.role})")


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def run(host: str, port: int) -> None:
    """Serve the web app."""
    from flask import current_app
    from werkzeug.serving import run_simple

    click.echo(f"Serving on http://{host}:{port}/")
    run_simple(host, port, current_app._get_current_object(), threaded=True)  # type: ignore[attr-defined]


@main.command("evaluate")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(path: str, as_json: bool) -> None:
    """Rank all needs for every offer of an exchanges file and print hit@k and MRR."""
    from .matching.evaluate import run_evaluate

    click.echo(run_evaluate(path, as_json))


@main.command("bench")
@click.option("--offers", default=10_000, show_default=True, type=int)
@click.option("--needs", default=10_000, show_default=True, type=int)
@click.option("--seed", "seed_", default=1, show_default=True, type=int)
def bench(offers: int, needs: int, seed_: int) -> None:
    """Measure the engine on synthetic listings (index, rematch, latencies, memory, recall)."""
    from .matching.bench import run_bench

    click.echo(run_bench(offers, needs, seed_))


if __name__ == "__main__":
    main()
