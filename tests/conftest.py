"""Fixtures: one app per test session on SQLite (default) or PostgreSQL (TEST_DATABASE_URL).

With TEST_DATABASE_URL pointing at a PostgreSQL server, a fresh database is created for the run
and dropped afterwards, so runs never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, text
from sqlalchemy.engine import make_url

from matchmaking import migrate
from matchmaking.app import create_app
from matchmaking.extensions import db
from matchmaking.models import (
    AuditLog,
    Exchange,
    Firm,
    FirmClaim,
    ImportJob,
    Listing,
    MailboxMessage,
    Match,
    OutboxEvent,
    Site,
    User,
)
from matchmaking.services import seeding

SHARED_DATA = Path(
    os.environ.get("MATCHMAKING_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)


def _postgres_database() -> Iterator[str]:
    server = make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql+psycopg")
    name = f"matchmaking_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("TEST_DATABASE_URL"):
        yield from _postgres_database()
    else:
        yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite3")


def make_app(url: str, **overrides: Any) -> Any:
    return create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "test", **overrides})


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Any]:
    app = make_app(database_url)
    with app.app_context():
        migrate.upgrade(db.engine)
        seeding.load_reference(db.session)
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture()
def session(app: Any) -> Iterator[Any]:
    """The app's session inside an app context; every non-reference row is removed afterwards."""
    with app.test_request_context():
        yield db.session
        db.session.rollback()
        # Registrations e-mail a confirmation link: the mailbox is emptied too.
        for model in (Exchange, Match, OutboxEvent, AuditLog, MailboxMessage, ImportJob, Listing, FirmClaim, User,
                      Site, Firm):
            db.session.execute(delete(model))
        db.session.commit()


@pytest.fixture()
def client(app: Any, session: Any) -> Any:
    return app.test_client()


@pytest.fixture()
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


@pytest.fixture()
def busy_communes(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every commune counts as having enough firms (k = 1): anonymous listings shown at commune level."""
    monkeypatch.setitem(app.config, "ANONYMITY_K", 1)
