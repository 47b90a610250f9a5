"""public ids: listings and matches are known outside the database by a random id

The integer ids are consecutive and follow creation order: listings made together get neighbouring
ids, so an anonymous listing between two named ones of the same firm was as good as named. URLs,
the API, e-mails and webhooks now use `public_id` (16 random characters); existing rows get one here.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 00:30:00
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# A copy, not an import: a migration keeps doing what it did when the models change.
_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"
_LENGTH = 16
_TABLES = ("listing", "match")


def _new_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))


def upgrade() -> None:
    conn = op.get_bind()
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("public_id", sa.String(length=_LENGTH), nullable=True))
        rows = sa.table(table, sa.column("id", sa.Integer), sa.column("public_id", sa.String))
        ids = [row[0] for row in conn.execute(sa.select(rows.c.id))]
        taken: set[str] = set()
        for row_id in ids:
            value = _new_id()
            while value in taken:
                value = _new_id()
            taken.add(value)
            conn.execute(rows.update().where(rows.c.id == row_id).values(public_id=value))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("public_id", existing_type=sa.String(length=_LENGTH), nullable=False)
            batch_op.create_index(batch_op.f(f"ix_{table}_public_id"), ["public_id"], unique=True)


def downgrade() -> None:
    for table in reversed(_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_public_id"))
            batch_op.drop_column("public_id")
