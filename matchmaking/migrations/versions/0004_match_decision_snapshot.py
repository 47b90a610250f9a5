"""match: what a firm decided on, and why it declined

A firm decides on the score and explanation it was shown; a later rematch (a new model, new
listings) must not rewrite that history. A decline carries a one-click reason that the next
model learns from.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 14:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("match", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decided_score", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("decided_explanation", _json, nullable=True))
        batch_op.add_column(sa.Column("model_version", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("offer_decline_reason", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("need_decline_reason", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("match", schema=None) as batch_op:
        batch_op.drop_column("need_decline_reason")
        batch_op.drop_column("offer_decline_reason")
        batch_op.drop_column("model_version")
        batch_op.drop_column("decided_explanation")
        batch_op.drop_column("decided_score")
