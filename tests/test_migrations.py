"""Upgrade to head, downgrade to base and upgrade again, with data present, on the test database."""

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from matchmaking import migrate
from matchmaking.models import Base


@contextlib.contextmanager
def scratch_engine(database_url: str, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own, so the shared test schema is not disturbed; dropped afterwards."""
    if database_url.startswith("sqlite"):
        engine = create_engine("sqlite:///" + str(tmp_path / "migrations.sqlite3"))
        try:
            yield engine
        finally:
            engine.dispose()
        return
    server = make_url(database_url)
    name = f"mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(server.set(database=name))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_upgrade_downgrade_upgrade_with_data(database_url: str, tmp_path) -> None:
    with scratch_engine(database_url, tmp_path) as engine:
        migrate.upgrade(engine)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO commune (insee, name, postal_codes, lat, lon, department, ccma) "
                              "VALUES ('53271', 'Villaines-la-Juhel', '53700', 48.34, -0.29, '53', true)"))
            conn.execute(text("INSERT INTO firm (name, siret, demo) VALUES ('Scierie', '73282932000074', false)"))
        migrate.downgrade(engine)
        assert inspect(engine).get_table_names() in ([], ["alembic_version"])
        migrate.upgrade(engine)
        assert migrate.current(engine) is not None
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM firm")).scalar() == 0


def test_models_and_migrations_agree(app) -> None:
    """No model change is left without its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from matchmaking.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    assert diff == []


def test_public_ids_are_given_to_the_listings_and_matches_already_there(database_url: str, tmp_path) -> None:
    """0007 fills public_id for existing rows (random, distinct, 16 characters, then required)
    and keeps every row: rebuilding `listing` on SQLite would have cascaded into its matches."""
    with scratch_engine(database_url, tmp_path) as engine:
        migrate.upgrade(engine, "0006")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO commune (insee, name, postal_codes, lat, lon, department, ccma) "
                              "VALUES ('53271', 'Villaines-la-Juhel', '53700', 48.34, -0.29, '53', true)"))
            conn.execute(text("INSERT INTO firm (id, name, siret, demo) "
                              "VALUES (1, 'Scierie', '73282932000074', false)"))
            conn.execute(text("INSERT INTO site (id, firm_id, name, commune_insee, lat, lon, is_main) "
                              "VALUES (1, 1, 'Scierie', '53271', 48.34, -0.29, true)"))
            for n, kind in enumerate(("offer", "need", "offer"), start=1):
                conn.execute(text(
                    "INSERT INTO listing (id, firm_id, site_id, kind, title, description, hazardous, accepts_hazardous,"
                    " quantity, unit, frequency, anonymous, status, updated_at) VALUES (:id, 1, 1, :kind, 'Sciure',"
                    " '', false, false, 1, 't', 'monthly', false, 'published', CURRENT_TIMESTAMP)"),
                    {"id": n, "kind": kind})
            for n, offer in enumerate((1, 3), start=1):
                conn.execute(text(
                    "INSERT INTO match (id, offer_id, need_id, score, explanation, offer_decision, need_decision,"
                    " status, updated_at, follow_up) VALUES (:id, :offer, 2, 0.5, '{}', 'pending', 'pending',"
                    " 'proposed', CURRENT_TIMESTAMP, 'proposed')"), {"id": n, "offer": offer})
        migrate.upgrade(engine)
        with engine.connect() as conn:
            for table, count in (("listing", 3), ("match", 2)):
                ids = [row[0] for row in conn.execute(text(f"SELECT public_id FROM {table} ORDER BY id"))]
                assert len(ids) == len(set(ids)) == count and all(len(i) == 16 and i.isalnum() for i in ids)
        assert {c["name"]: c["nullable"] for c in inspect(engine).get_columns("listing")}["public_id"] is False
        migrate.downgrade(engine, "0006")
        assert "public_id" not in {c["name"] for c in inspect(engine).get_columns("match")}
        with engine.connect() as conn:  # no table rebuilt, so no cascade emptied one
            assert conn.execute(text("SELECT count(*) FROM match")).scalar() == 2
