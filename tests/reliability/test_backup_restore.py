"""Backup and restore drill: `matchmaking export` on one database, `matchmaking import` into a new
one of the other kind (SQLite → PostgreSQL in the SQLite pass, PostgreSQL → SQLite in the PostgreSQL
pass, SQLite → SQLite when no PostgreSQL server answers), then the same API requests must get the
same answers, the same tokens still work, and new rows get new ids.

A restore writes everything or nothing: a damaged dump or a database that is not empty leaves the
target as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from matchmaking import backup, migrate
from matchmaking.extensions import db
from matchmaking.models import Base, Listing, Match
from matchmaking.services import decisions, facilitation, matching, seeding, tokens
from tests.conftest import make_app
from tests.factories import make_firm, make_listing, make_user

CLI = [sys.executable, "-m", "matchmaking.cli"]
POSTGRES = os.environ.get("TEST_DATABASE_URL") or os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_up() -> bool:
    try:
        engine = create_engine(make_url(POSTGRES).set(drivername="postgresql+psycopg"),
                               connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@contextmanager
def scratch_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A new empty database of this kind, dropped afterwards."""
    if kind == "sqlite":
        yield "sqlite:///" + str(tmp_path / f"{uuid.uuid4().hex[:8]}.sqlite3")
        return
    server = make_url(POSTGRES).set(drivername="postgresql+psycopg")
    name = f"matchmaking_backup_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _kinds() -> tuple[str, str]:
    source = "postgresql" if os.environ.get("TEST_DATABASE_URL") else "sqlite"
    if source == "postgresql":
        return source, "sqlite"
    return source, "postgresql" if _postgres_up() else "sqlite"


def _populate(app: Any) -> dict[str, Any]:
    """A small territory through the services: firms, listings (anonymous, priced, dated), matches
    from the engine, decisions, an accepted match with exchanges, a facilitator's note, tokens."""
    with app.app_context():
        migrate.upgrade(db.engine)
        session = db.session
        seeding.load_reference(session)
        garage = make_firm(session, name="Garage Moto du Mont", commune_insee="53271")
        pallets = make_firm(session, name="Palettes de la Mayenne", commune_insee="53147")
        sawmill = make_firm(session, name="Scierie des Avaloirs", commune_insee="53185")
        users = {name: make_user(session, firm) for name, firm in
                 (("garage", garage), ("pallets", pallets), ("sawmill", sawmill))}
        users["analyst"] = make_user(session, None, role="analyst")
        users["facilitator"] = make_user(session, None, role="facilitator")
        make_listing(session, garage, title="Chutes de chambres à air", description="Butyl, coupées",
                     low_code="16 01 03", quantity=15, unit="kg", anonymous=True, price_eur_per_unit=0.5)
        make_listing(session, pallets, kind="need", title="Caoutchouc à broyer pour patins de palettes",
                     quantity=200, unit="kg", radius_km=60)
        make_listing(session, sawmill, title="Sciure de chêne sèche", low_code="03 01 05", quantity=3, unit="t",
                     frequency="weekly", available_from="2026-09-01")
        make_listing(session, pallets, kind="need", title="Sciure pour litière de volailles", quantity=2, unit="t",
                     radius_km=40)
        make_listing(session, sawmill, title="Palettes cassées", quantity=40, unit="unit", frequency="monthly",
                     anonymous=True)
        session.commit()
        matching.reset_index()
        matching.rematch_all(session)
        session.commit()
        matches = list(session.scalars(select(Match).order_by(Match.id)))
        assert matches, "the engine found no match in the drill's territory"
        first = matches[0]
        buyer, seller = first.need.firm, first.offer.firm
        by_firm = {u.firm_id: u for u in users.values() if u.firm_id}
        decisions.express_interest(session, first, by_firm[buyer.id])
        decisions.accept(session, first, by_firm[seller.id])
        decisions.accept(session, first, by_firm[buyer.id])
        decisions.record_exchange(session, first, by_firm[buyer.id],
                                  {"quantity": 120, "unit": "kg", "date": "2026-10-02"})
        if len(matches) > 1:
            decisions.decline(session, matches[1], by_firm[matches[1].offer.firm_id])
        facilitation.add_note(session, first, users["facilitator"], "Appel fait, enlèvement jeudi")
        issued = {name: tokens.issue(session, user) for name, user in users.items()}
        session.commit()
        numbers = list(session.scalars(select(Listing.id).order_by(Listing.id)))
        listing_ids = list(session.scalars(select(Listing.public_id).order_by(Listing.id)))
        match_ids = [m.public_id for m in matches]
    return {"tokens": issued, "listings": listing_ids, "listing_numbers": numbers, "matches": match_ids}


def _requests(world: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """(who, method, path, body): what firms and staff read, plus a classification."""
    out: list[tuple[str, str, str, Any]] = []
    for who in ("garage", "pallets", "sawmill", "analyst", "facilitator"):
        out += [(who, "GET", "/api/v1/me", None), (who, "GET", "/api/v1/listings?mine=1", None),
                (who, "GET", "/api/v1/listings", None), (who, "GET", "/api/v1/matches", None),
                (who, "GET", "/api/v1/search?q=caoutchouc", None),
                (who, "GET", "/api/v1/search?q=sciure&near=53271&radius_km=80", None)]
        out += [(who, "GET", f"/api/v1/listings/{i}", None) for i in world["listings"]]
        out += [(who, "GET", f"/api/v1/listings/{i}/matches", None) for i in world["listings"]]
        out += [(who, "GET", f"/api/v1/matches/{i}", None) for i in world["matches"]]
        out += [(who, "GET", f"/api/v1/matches/{i}/exchanges", None) for i in world["matches"]]
    out += [("analyst", "GET", "/api/v1/stats/summary", None),
            ("garage", "POST", "/api/v1/classify", {"text": "chutes de chambres à air"})]
    return out


def _answers(app: Any, world: dict[str, Any]) -> list[tuple[Any, ...]]:
    matching.reset_index()  # the engine's index lives per process: build it from this database
    client = app.test_client()
    out = []
    for who, method, path, body in _requests(world):
        response = client.open(path, method=method, json=body,
                               headers={"Authorization": f"Bearer {world['tokens'][who]}"})
        payload = response.get_json() if response.is_json else response.data.decode()
        out.append((who, method, path, response.status_code, response.headers.get("X-Total-Count"), payload))
    return out


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = {t.name: conn.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables}
    engine.dispose()
    return counts


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env |= {"DATABASE_URL": url, "SECRET_KEY": "backup-drill"}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=300)


def test_a_dump_restored_into_the_other_kind_of_database_answers_the_same_requests(tmp_path: Path) -> None:
    source_kind, target_kind = _kinds()
    dump = tmp_path / "matchmaking.jsonl.gz"
    with scratch_database(source_kind, tmp_path) as source_url, \
            scratch_database(target_kind, tmp_path) as target_url:
        source = make_app(source_url)
        world = _populate(source)
        before = _answers(source, world)
        assert sum(1 for answer in before if answer[3] == 200) >= 70

        exported = _cli(source_url, "export", str(dump))
        assert exported.returncode == 0, exported.stderr
        assert not Path(f"{dump}.part").exists()
        restored = _cli(target_url, "import", str(dump))
        assert restored.returncode == 0, restored.stderr
        assert _counts(target_url) == _counts(source_url)

        target = make_app(target_url)
        after = _answers(target, world)
        for expected, got in zip(before, after, strict=True):
            assert got == expected, f"{expected[:3]} differs after the restore ({source_kind} → {target_kind})"

        # New rows follow the restored ids (PostgreSQL's sequences were moved past them).
        client = target.test_client()
        created = client.post("/api/v1/listings", headers={"Authorization": f"Bearer {world['tokens']['garage']}"},
                              json={"kind": "offer", "title": "Pneus usagés", "quantity": 2, "unit": "t",
                                    "frequency": "yearly"})
        assert created.status_code == 201, created.get_json()
        with target.app_context():
            number = db.session.scalar(select(Listing.id).where(Listing.public_id == created.get_json()["id"]))
        assert number is not None and number > max(world["listing_numbers"])
        rows = sum(_counts(source_url).values())
        identical = sum(a == b for a, b in zip(before, after, strict=True))
        report = Path(__file__).resolve().parents[2] / "test-output" / "backup-drill.txt"
        report.parent.mkdir(exist_ok=True)
        with report.open("a") as out:
            out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {source_kind} -> {target_kind}: rows={rows} "
                      f"requests_compared={len(before)} identical={identical} "
                      f"dump_bytes_gz={dump.stat().st_size}\n")
        with target.app_context():
            db.engine.dispose()
        with source.app_context():
            db.engine.dispose()


def test_a_restore_writes_everything_or_nothing(tmp_path: Path) -> None:
    kind = "postgresql" if os.environ.get("TEST_DATABASE_URL") else "sqlite"
    dump = tmp_path / "dump.jsonl"
    with scratch_database(kind, tmp_path) as source_url, scratch_database(kind, tmp_path) as target_url:
        source = make_app(source_url)
        _populate(source)
        with source.app_context():
            summary = backup.export_file(db.engine, str(dump))
            db.engine.dispose()
        lines = dump.read_text(encoding="utf-8").splitlines(keepends=True)
        assert summary.total == len(lines) - 1 - len(summary.rows)

        target = make_app(target_url)
        with target.app_context():
            engine = db.engine
            # Cut in the middle of the exchanges, then a line damaged: nothing at all is written.
            cut = next(i for i, line in enumerate(lines) if line.startswith('{"table": "exchange"')) + 1
            for damaged in (lines[:cut], [*lines[:cut], "[1, 2\n", *lines[cut:]]):
                broken = tmp_path / "broken.jsonl"
                broken.write_text("".join(damaged), encoding="utf-8")
                with pytest.raises(backup.RestoreError):
                    backup.restore_file(engine, str(broken))
                assert set(_counts(target_url).values()) == {0}

            # A database with rows is refused unless told to replace them.
            seeding.load_reference(db.session)
            db.session.commit()
            refused = _cli(target_url, "import", str(dump))
            assert refused.returncode == 2 and "not empty" in refused.stderr
            assert _counts(target_url)["listing"] == 0
            replaced = _cli(target_url, "import", "--replace", str(dump))
            assert replaced.returncode == 0, replaced.stderr
            assert _counts(target_url) == _counts(source_url)

            # A file that is not a dump, or of another schema revision, is refused as a whole.
            other = tmp_path / "other.jsonl"
            header = json.loads(lines[0]) | {"revision": "0000_elsewhere"}
            other.write_text(json.dumps(header) + "\n" + "".join(lines[1:]), encoding="utf-8")
            for path in (other, tmp_path / "junk.txt"):
                if path.name == "junk.txt":
                    path.write_text("id;name\n1;x\n")
                with pytest.raises(backup.RestoreError):
                    backup.restore_file(engine, str(path), replace=True)
            assert _counts(target_url) == _counts(source_url)
            engine.dispose()


def test_every_table_of_the_model_is_in_the_dump() -> None:
    names = [t.name for t in backup.tables()]
    assert set(names) == set(Base.metadata.tables)
    # Parents first: each table comes after the tables it refers to.
    for position, table in enumerate(backup.tables()):
        for key in table.foreign_keys:
            assert names.index(key.column.table.name) <= position, (table.name, key.column.table.name)
