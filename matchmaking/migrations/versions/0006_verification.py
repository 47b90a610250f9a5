"""verification: confirmed e-mail addresses, firms checked by the CCMA, claims on a SIRET

Anyone could register any e-mail address and any SIRET with a valid key, and the real holder of
that SIRET could then no longer register. Accounts now confirm their address; a second person
registering an already registered SIRET files a claim that CCMA staff accept or reject; a firm a
facilitator has checked carries a mark. Accounts that exist already count as confirmed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 00:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_confirmed_at", sa.DateTime(timezone=True), nullable=True))
    # Every account made before confirmation existed (staff, demo, firms already trading) is confirmed.
    op.execute("UPDATE user_account SET email_confirmed_at = created_at")
    with op.batch_alter_table("firm", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "firm_claim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("firm_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "accepted", "rejected", name="claim_status", native_enum=False,
                    create_constraint=True, length=16),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("CURRENT_TIMESTAMP"),
                  nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decision_note", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["decided_by_id"], ["user_account.id"],
                                name=op.f("fk_firm_claim_decided_by_id_user_account"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["firm_id"], ["firm.id"], name=op.f("fk_firm_claim_firm_id_firm"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"], name=op.f("fk_firm_claim_user_id_user_account"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firm_claim")),
    )
    with op.batch_alter_table("firm_claim", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_firm_claim_firm_id"), ["firm_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_firm_claim_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("firm_claim", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_firm_claim_user_id"))
        batch_op.drop_index(batch_op.f("ix_firm_claim_firm_id"))
    op.drop_table("firm_claim")
    with op.batch_alter_table("firm", schema=None) as batch_op:
        batch_op.drop_column("verified_at")
    with op.batch_alter_table("user_account", schema=None) as batch_op:
        batch_op.drop_column("email_confirmed_at")
