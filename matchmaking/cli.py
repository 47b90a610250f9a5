"""The `matchmaking` command: database, seed data, accounts, the web app, the engine's tools."""

from __future__ import annotations

import sys
import time
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from .extensions import db, db_session


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

    counts = seeding.load_reference(db_session())
    if demo:
        from .services import demo_history

        counts |= seeding.load_demo(db_session())
        counts |= demo_history.load_history(db_session())
    db.session.commit()
    for what, n in counts.items():
        click.echo(f"{what}: {n} written")
    if demo:
        click.echo(f"Demo accounts: any demo firm's contact e-mail, password {seeding.DEMO_PASSWORD!r}")


@main.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def export_dump(path: str) -> None:
    """Dump every table to PATH (JSON lines; .gz to compress), for `matchmaking import` on SQLite or PostgreSQL."""
    from . import backup

    summary = backup.export_file(db.engine, path)
    click.echo(f"{summary.total} rows of {len(summary.rows)} tables written to {path} "
               f"(schema revision {summary.revision})")


@main.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--replace", is_flag=True, help="Empty every table first (otherwise the database must be empty).")
@with_appcontext
def import_dump(path: str, replace: bool) -> None:
    """Restore a dump written by `matchmaking export`: everything or nothing, ids and sequences kept."""
    from . import backup

    try:
        summary = backup.restore_file(db.engine, path, replace=replace)
    except backup.RestoreError as exc:
        click.echo(f"Nothing restored: {exc}", err=True)
        sys.exit(2)
    click.echo(f"{summary.total} rows of {len(summary.rows)} tables restored (schema revision {summary.revision})")


@main.command("import-listings")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--firm-siret", required=True, help="The firm whose listings these are.")
@click.option("--valid-only", is_flag=True, help="Write the valid lines even when others have problems.")
@click.option("--queue", is_flag=True,
              help="A file the import page would hand to a worker is left to the workers instead of read here.")
@with_appcontext
def import_listings_command(path: str, firm_siret: str, valid_only: bool, queue: bool) -> None:
    """Import a firm's listings from a CSV or XLSX file, within the limits of the import page.

    The page's rule decides: a small file is imported at once; a larger one becomes an import job,
    run here within the worker's time and memory limits (or, with --queue, by the workers).
    """
    from pathlib import Path

    from sqlalchemy import select

    from .models import Firm, ImportJob, OutboxEvent
    from .services import import_jobs

    firm = db.session.scalar(select(Firm).where(Firm.siret == firm_siret))
    if firm is None:
        raise click.UsageError(f"no firm with SIRET {firm_siret}")
    limits = import_jobs.limits_from()
    with Path(path).open("rb") as handle:
        content = handle.read(limits.max_bytes + 1)
    outcome = import_jobs.start(db_session(), firm, None, Path(path).name, content, valid_only=valid_only,
                                locale="fr", limits=limits)
    if isinstance(outcome, ImportJob):
        job_id = outcome.id
        db.session.commit()
        if queue:
            click.echo(f"import job {job_id} queued for the workers: /listings/import/{job_id}")
            return
        from workers.tasks import run_event

        event_id = db.session.scalar(select(OutboxEvent.id).where(OutboxEvent.idempotency_key == f"import-{job_id}"))
        run_event(int(event_id or 0))  # "skipped" if a worker took it first: then wait for it
        deadline = time.monotonic() + limits.max_seconds + 120
        while True:
            db.session.expire_all()
            job = db.session.get(ImportJob, job_id)
            if job is None or job.status.value in ("done", "failed") or time.monotonic() > deadline:
                break
            time.sleep(1)
        stored = import_jobs.StoredReport.load(job.report if job is not None and job.report else {})
        _print_report(stored.file_errors, [(e.line, e.column, e.message) for e in stored.row_errors],
                      stored.warnings, stored.created, stored.updated, stored.skipped)
        if not stored.written:
            sys.exit(2)
        return
    report = outcome
    if report.written:
        db.session.commit()
    else:
        db.session.rollback()
    _print_report(report.file_errors, [(e.line, e.column, e.message) for e in report.row_errors],
                  report.warnings, report.created, report.updated, report.skipped)
    if not report.written:
        sys.exit(2)


def _print_report(file_errors: list[Any], row_errors: list[tuple[int, str, Any]], warnings: list[Any],
                  created: int, updated: int, skipped: int) -> None:
    for message in file_errors:
        click.echo(str(message), err=True)
    for line, column, message in row_errors[:50]:
        click.echo(f"{line}\t{column}\t{message}", err=True)
    for message in warnings:
        click.echo(str(message), err=True)
    click.echo(f"{created} created, {updated} updated, {skipped} left out")


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
        user = user_service.create_user(db_session(), email=email, password=password, role=role, firm=firm, name=name)
    except Exception as exc:  # noqa: BLE001 - validation errors are printed, others re-raised
        _fail(exc)
        return
    db.session.commit()
    click.echo(f"user {user.id} created: {user.email} ({user.role})")


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Do not start the embedded worker beside the web app.")
@with_appcontext
def run(host: str, port: int, no_worker: bool) -> None:
    """Serve the web app; without REDIS_URL, a worker on the embedded broker runs beside it."""
    from flask import current_app
    from werkzeug.serving import run_simple

    from workers.embedded import embedded_worker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with embedded_worker(app, enabled=not no_worker) as worker:
        if worker is not None:
            click.echo(f"Worker started on the embedded broker (pid {worker.pid})")
        click.echo(f"Serving on http://{host}:{port}/")
        run_simple(host, port, app, threaded=True)


@main.command("worker", context_settings={"ignore_unknown_options": True})
@click.option("--beat", is_flag=True, help="Also run the periodic scheduler (one per deployment).")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@with_appcontext
def worker(beat: bool, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker (extra arguments go to `celery worker`)."""
    from flask import current_app

    argv = ["worker", "--loglevel=info", *(["--beat"] if beat else []), *celery_args]
    current_app.extensions["celery"].worker_main(argv)


@main.command("beat", context_settings={"ignore_unknown_options": True})
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
@with_appcontext
def beat(celery_args: tuple[str, ...]) -> None:
    """Run the periodic scheduler: outbox sweep, digests, expiry, weekly full rematch."""
    from flask import current_app

    current_app.extensions["celery"].start(["beat", "--loglevel=info", *celery_args])


@main.group("outbox")
def outbox_group() -> None:
    """The outbox of events owed to the workers."""


@outbox_group.command("status")
@click.option("--failed", "show_failed", is_flag=True, help="List the failed rows with their last error.")
@with_appcontext
def outbox_status(show_failed: bool) -> None:
    """Count rows by status (pending, done, failed)."""
    from sqlalchemy import select

    from .models import OutboxEvent, OutboxStatus
    from .services import outbox

    for status, n in outbox.counts(db_session()).items():
        click.echo(f"{status}: {n}")
    if show_failed:
        for row in db.session.scalars(select(OutboxEvent).where(OutboxEvent.status == OutboxStatus.failed)):
            click.echo(f"{row.id} {row.kind} {row.idempotency_key} attempts={row.attempts}: {row.last_error}")


@outbox_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@with_appcontext
def outbox_retry(ids: tuple[int, ...]) -> None:
    """Put failed rows (all, or the given ids) back in the queue."""
    from .services import outbox

    n = outbox.retry(db_session(), list(ids) or None)
    db.session.commit()
    click.echo(f"{n} row(s) queued again")


@main.command("bench-notify")
@click.option("--broker", type=click.Choice(["embedded", "redis"]), default="embedded", show_default=True)
@click.option("--redis-url", default="redis://127.0.0.1:6379/15", show_default=True)
@click.option("--listings", default=50, show_default=True, type=int, help="Listings published one by one.")
@click.option("--deliveries", default=500, show_default=True, type=int, help="E-mails for the throughput run.")
def bench_notify(broker: str, redis_url: str, listings: int, deliveries: int) -> None:
    """Publish-to-inbox latency (p50/p95) and deliveries per second, on a scratch database."""
    from workers.bench import run_bench

    click.echo(run_bench(broker=broker, redis_url=redis_url, listings=listings, deliveries=deliveries))


@main.command("evaluate")
@click.argument("path", type=click.Path(exists=True, dir_okay=False), required=False)
@click.option("--cv", is_flag=True, help="Grouped cross-validation (no source document both trained and tested on).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(path: str | None, cv: bool, as_json: bool) -> None:
    """Rank all needs for every offer of an exchanges file: the engine beside plain TF-IDF (hit@k, MRR).

    With --cv and no file: the repository's training data (seed/training)."""
    from .matching.evaluate import run_evaluate

    if path is None and not cv:
        raise click.UsageError("give an exchanges file, or --cv for the repository's training data")
    click.echo(run_evaluate(path, as_json, cv=cv))


@main.command("train")
@click.option("--out", type=click.Path(dir_okay=False), help="Where to write the model (default: seed/model.json).")
@click.option("--with-decisions", is_flag=True,
              help="Also learn from the territory's accepted, completed and declined matches; keep the new model "
                   "only if its grouped-CV figures on the reference data do not drop.")
@click.option("--seed", "seed_", default=None, type=int, help="Random seed (default: the model's fixed seed).")
def train(out: str | None, with_decisions: bool, seed_: int | None) -> None:
    """Fit the ranker on the repository's labelled exchanges and write it as versioned data."""
    from pathlib import Path

    from .matching import training
    from .matching.text import seed_dir

    target = Path(out) if out else seed_dir() / "model.json"
    decisions = []
    if with_decisions:
        from flask.cli import ScriptInfo

        from .services.learning import decided_pairs

        with click.get_current_context().ensure_object(ScriptInfo).load_app().app_context():
            decisions = decided_pairs(db_session())
    message, written = training.train_and_write(target, seed=seed_, decisions=decisions)
    click.echo(message)
    if not written:
        sys.exit(1)


@main.command("score")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Write the scored CSV here (default: standard output).")
def score(path: str, out: str | None) -> None:
    """Score each pair of a CSV (waste_description, ewc_code, source_industry, input_description,
    receiving_industry) in the context of the file: probability, shown, reasons."""
    from .matching.evaluate import score_file

    text = score_file(path)
    if out:
        with open(out, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        click.echo(f"{out}: {text.count(chr(10)) - 1} rows scored")
    else:
        click.echo(text, nl=False)


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
