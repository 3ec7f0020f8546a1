"""Departments (their names), department targets (by year or month), and an index on
the cases by discharge time for the indicators.

Revision ID: 0004_indicators
Revises: 0003_reference_data
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.storage.models import ExactDecimal, UtcDateTime

revision = "0004_indicators"
down_revision = "0003_reference_data"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "departments",
        sa.Column("hospital_id", sa.String(64), primary_key=True),
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name_zh", sa.String(200), nullable=True),
        sa.Column("name_en", sa.String(200), nullable=True),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "department_targets",
        sa.Column("hospital_id", sa.String(64), primary_key=True),
        sa.Column("department", sa.String(32), primary_key=True),
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("cases", sa.Integer(), nullable=True),
        sa.Column("cost_per_case", ExactDecimal(18, 2), nullable=True),
        sa.Column("total_cost", ExactDecimal(18, 2), nullable=True),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )

    op.create_index("ix_cases_discharged", "cases", ["hospital_id", "discharged_at"])


def downgrade() -> None:
    op.drop_index("ix_cases_discharged", table_name="cases")
    op.drop_table("department_targets")
    op.drop_table("departments")
