"""Upgrade to head, downgrade to base and upgrade again, with data present, on the test database."""

from sqlalchemy import create_engine, inspect, text

from matchmaking import migrate
from matchmaking.models import Base


def test_upgrade_downgrade_upgrade_with_data(database_url: str, tmp_path) -> None:
    # A database of its own, so the shared test schema is not disturbed.
    if database_url.startswith("sqlite"):
        url = "sqlite:///" + str(tmp_path / "migrations.sqlite3")
        engine = create_engine(url)
    else:
        import uuid

        from sqlalchemy.engine import make_url

        server = make_url(database_url)
        name = f"mig_{uuid.uuid4().hex[:8]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine = create_engine(server.set(database=name))
    try:
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
    finally:
        engine.dispose()
        if not database_url.startswith("sqlite"):
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def test_models_and_migrations_agree(app) -> None:
    """No model change is left without its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from matchmaking.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    assert diff == []
