"""Chargemaster: versions of the price list of billable items (for every hospital or one),
each with its items' prices, categories and equivalence groups. Downgrading drops them.

Revision ID: 0013_chargemaster
Revises: 0012_ledger_seal
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.storage.models import BigId, ExactDecimal, UtcDateTime

revision = "0013_chargemaster"
down_revision = "0012_ledger_seal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chargemasters",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("hospital_id", sa.String(64), nullable=True),
        sa.Column("sample", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "chargemaster_items",
        sa.Column(
            "chargemaster_id",
            BigId,
            sa.ForeignKey("chargemasters.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("item_code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_en", sa.String(200), nullable=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("unit", sa.String(32), nullable=True),
        sa.Column("unit_price", ExactDecimal(16, 4), nullable=False),
        sa.Column("equivalence_group", sa.String(32), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("chargemaster_items")
    op.drop_table("chargemasters")
