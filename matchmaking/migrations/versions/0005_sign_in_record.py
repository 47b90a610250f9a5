"""sign_in_record: wrong passwords per account and address, and addresses an account signed in from

Guessing is slowed per account and address, with a wait that doubles; the account's owner signing
in from elsewhere is never held up by a stranger's guesses.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_record",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wait_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("known_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("account", "address", name=op.f("pk_sign_in_record")),
    )
    with op.batch_alter_table("sign_in_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sign_in_record_last_failure_at"), ["last_failure_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sign_in_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_record_last_failure_at"))
    op.drop_table("sign_in_record")
