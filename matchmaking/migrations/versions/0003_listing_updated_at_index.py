"""index on listing.updated_at

Each process's matching index asks, before each use, which listings changed since it last looked;
without this index that question reads the whole table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 04:15:00
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_listing_updated_at", "listing", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_listing_updated_at", table_name="listing")
