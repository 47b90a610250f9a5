"""A portable dump of the whole database, and its restore (`matchmaking export` / `matchmaking import`).

The dump is JSON lines: a header (format, schema revision, tables), then for each table in
dependency order a line naming its columns followed by one JSON array per row. Ids are kept, so
links between rows survive, and PostgreSQL's sequences are moved past the restored ids. The same
file restores on SQLite or PostgreSQL, whichever it was taken from.

A restore is one transaction: it writes everything or nothing. It goes into a database at the same
schema revision whose tables are empty, or, with `replace`, empties them first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import IO, Any

from sqlalchemy import Connection, Date, DateTime, Engine, Table, func, inspect, select, text

from . import migrate
from .models import Base

FORMAT = "matchmaking-dump"
VERSION = 1
BATCH = 1000


class RestoreError(Exception):
    """The dump cannot go into this database; the message says why."""


@dataclass
class Summary:
    revision: str | None
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def tables() -> list[Table]:
    """Every table of the model, parents before children."""
    return list(Base.metadata.sorted_tables)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _decoder(table: Table, columns: list[str]) -> list[Any]:
    """Per column, a function turning the JSON value back into what the column type takes."""

    out: list[Any] = []
    for name in columns:
        kind = table.c[name].type
        kind = getattr(kind, "impl_instance", kind)  # a TypeDecorator stores what its implementation does
        if isinstance(kind, DateTime):
            out.append(lambda v: None if v is None else datetime.fromisoformat(v))
        elif isinstance(kind, Date):
            out.append(lambda v: None if v is None else date.fromisoformat(v))
        else:
            out.append(None)
    return out


def _unknown_tables(connection: Connection) -> list[str]:
    known = {t.name for t in tables()} | {"alembic_version"}
    return sorted(set(inspect(connection).get_table_names()) - known)


def export(engine: Engine, out: IO[str]) -> Summary:
    """Write the whole database to `out`, in one read transaction (a consistent snapshot on PostgreSQL)."""
    summary = Summary(migrate.current(engine))
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        unknown = _unknown_tables(connection)
        if unknown:
            raise RestoreError(f"tables unknown to this version of the code: {', '.join(unknown)}")
        header = {"format": FORMAT, "version": VERSION, "revision": summary.revision,
                  "created_at": datetime.now(UTC).isoformat(), "source": engine.dialect.name,
                  "tables": [t.name for t in tables()]}
        out.write(json.dumps(header) + "\n")
        for table in tables():
            columns = [c.name for c in table.columns]
            count = connection.scalar(select(func.count()).select_from(table)) or 0
            out.write(json.dumps({"table": table.name, "columns": columns, "rows": count}) + "\n")
            order = list(table.primary_key.columns) or list(table.columns)
            result = connection.execution_options(stream_results=True, yield_per=BATCH).execute(
                select(*table.columns).order_by(*order))
            written = 0
            for row in result:
                out.write(json.dumps([_encode(v) for v in row], ensure_ascii=False) + "\n")
                written += 1
            if written != count:
                raise RestoreError(f"{table.name}: {written} rows read, {count} counted")
            summary.rows[table.name] = written
    return summary


def _read(lines: Iterable[str]) -> Iterator[tuple[dict[str, Any], list[list[Any]]]]:
    """(table line, rows in batches) pairs; the header is checked by the caller."""
    current: dict[str, Any] | None = None
    batch: list[list[Any]] = []
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise RestoreError(f"line {number} is not JSON: the dump is damaged") from None
        if isinstance(item, dict):
            if current is not None:
                yield current, batch
            current, batch = item, []
        elif isinstance(item, list) and current is not None:
            batch.append(item)
            if len(batch) >= BATCH:
                yield current, batch
                batch = []
        else:
            raise RestoreError(f"line {number} is neither a table nor a row: the dump is damaged")
    if current is not None:
        yield current, batch


def _header(first: str) -> dict[str, Any]:
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RestoreError("this file is not a matchmaking dump")
    if header.get("version") != VERSION:
        raise RestoreError(f"dump format version {header.get('version')} is not read by this version of the code")
    return header


def restore(engine: Engine, source: IO[str], *, replace: bool = False) -> Summary:
    """Load a dump into the database (migrated to the dump's revision first when it is new)."""
    header = _header(source.readline())
    if migrate.current(engine) is None:
        migrate.upgrade(engine)
    revision = migrate.current(engine)
    if header.get("revision") != revision:
        raise RestoreError(f"the dump is at schema revision {header.get('revision')}, this database at {revision}: "
                           "restore it with the version of the code that wrote it, then upgrade")
    by_name = {t.name: t for t in tables()}
    missing = [name for name in header.get("tables", []) if name not in by_name]
    if missing:
        raise RestoreError(f"tables unknown to this version of the code: {', '.join(missing)}")
    summary = Summary(revision)
    with engine.begin() as connection:
        if _unknown_tables(connection):
            raise RestoreError(f"this database has tables unknown to the code: {_unknown_tables(connection)}")
        if replace:
            for table in reversed(tables()):
                connection.execute(table.delete())
        else:
            full = [t.name for t in tables() if connection.scalar(select(func.count()).select_from(t))]
            if full:
                raise RestoreError(f"the database is not empty ({', '.join(full)}): restore into an empty one, "
                                   "or replace its contents")
        expected: dict[str, int] = {}
        for meta, rows in _read(source):
            table = by_name.get(str(meta.get("table")))
            if table is None:
                raise RestoreError(f"unknown table {meta.get('table')!r}")
            columns = list(meta["columns"])
            unknown = [c for c in columns if c not in table.c]
            if unknown:
                raise RestoreError(f"{table.name}: columns unknown to this version: {', '.join(unknown)}")
            expected[table.name] = int(meta.get("rows", 0))
            summary.rows.setdefault(table.name, 0)
            if not rows:
                continue
            decoders = _decoder(table, columns)
            values = []
            for row in rows:
                if len(row) != len(columns):
                    raise RestoreError(f"{table.name}: a row has {len(row)} values for {len(columns)} columns")
                values.append({name: (decode(v) if decode else v) for name, decode, v in zip(columns, decoders, row,
                                                                                             strict=True)})
            connection.execute(table.insert(), values)
            summary.rows[table.name] += len(values)
        short = {name: (summary.rows.get(name, 0), n) for name, n in expected.items() if summary.rows.get(name, 0) != n}
        if short:
            raise RestoreError(f"the dump is incomplete (rows read, rows announced): {short}")
        if connection.dialect.name == "postgresql":
            _move_sequences(connection)
    return summary


def _move_sequences(connection: Connection) -> None:
    """Let the next generated id follow the highest restored one."""
    for table in tables():
        for column in table.primary_key.columns:
            sequence = connection.scalar(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                         {"t": table.name, "c": column.name})
            if sequence is None:
                continue
            top = connection.scalar(select(func.max(column)))
            connection.execute(text("SELECT setval(:s, :v, :called)"),
                               {"s": sequence, "v": top or 1, "called": top is not None})


def _open(path: str, mode: str, *, compressed: bool) -> IO[str]:
    if compressed:
        import gzip

        return gzip.open(path, mode + "t", encoding="utf-8")  # type: ignore[return-value]
    return open(path, mode, encoding="utf-8", newline="\n")


def export_file(engine: Engine, path: str) -> Summary:
    """Export to a file, written beside and renamed at the end: never a half-written dump under its name."""
    import os

    partial = f"{path}.part"
    try:
        with _open(partial, "w", compressed=path.endswith(".gz")) as out:
            summary = export(engine, out)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return summary


def restore_file(engine: Engine, path: str, *, replace: bool = False) -> Summary:
    with open(path, "rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
    with _open(path, "r", compressed=compressed) as source:
        return restore(engine, source, replace=replace)
