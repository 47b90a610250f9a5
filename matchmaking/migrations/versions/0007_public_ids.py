"""public ids: listings and matches are known outside the database by a random id

The integer ids are consecutive and follow creation order: listings made together get neighbouring
ids, so an anonymous listing between two named ones of the same firm was as good as named. URLs,
the API, e-mails and webhooks now use `public_id` (16 random characters); existing rows get one here.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 00:30:00
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# A copy, not an import: a migration keeps doing what it did when the models change.
_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"
_LENGTH = 16
_TABLES = ("listing", "match")


def _new_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))


def upgrade() -> None:
    # No table is rebuilt: on SQLite, rebuilding `listing` (a batch ALTER) drops the old table, and
    # with foreign keys on, that deletes every match, notification and exchange hanging from it. The
    # column is added NOT NULL with an empty default (SQLite accepts that in a plain ADD COLUMN),
    # filled, then indexed as unique; PostgreSQL then drops the default.
    conn = op.get_bind()
    for table in _TABLES:
        op.add_column(table, sa.Column("public_id", sa.String(length=_LENGTH), nullable=False, server_default=""))
        rows = sa.table(table, sa.column("id", sa.Integer), sa.column("public_id", sa.String))
        taken: set[str] = set()
        for (row_id,) in conn.execute(sa.select(rows.c.id)).all():
            value = _new_id()
            while value in taken:
                value = _new_id()
            taken.add(value)
            conn.execute(rows.update().where(rows.c.id == row_id).values(public_id=value))
        if conn.dialect.name != "sqlite":
            op.alter_column(table, "public_id", server_default=None, existing_type=sa.String(length=_LENGTH),
                            existing_nullable=False)
        op.create_index(op.f(f"ix_{table}_public_id"), table, ["public_id"], unique=True)


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35 and later), for the same reason: no table is rebuilt.
    for table in reversed(_TABLES):
        op.drop_index(op.f(f"ix_{table}_public_id"), table_name=table)
        op.drop_column(table, "public_id")
