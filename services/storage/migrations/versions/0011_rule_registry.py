"""Rule registry: every version of every monitoring rule (from the rule files or the API,
who changed it and when), each rule's newest version and whether it is in force, the
switches that turn a rule off for a hospital or a department (with their history), and
the generation that workers poll to reload the rules. Downgrading drops the registry:
the rule files remain the rules.

Revision ID: 0011_rule_registry
Revises: 0010_rule_alerts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.storage.models import BigId, UtcDateTime

revision = "0011_rule_registry"
down_revision = "0010_rule_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_versions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.UniqueConstraint("rule_id", "version", name="uq_rule_version"),
    )
    op.create_table(
        "rule_heads",
        sa.Column("rule_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("in_force", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "rule_switches",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("hospital_id", sa.String(64), nullable=False),
        sa.Column("department", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=True),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("changed_at", UtcDateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_rule_switches_key", "rule_switches", ["rule_id", "hospital_id", "department", "id"]
    )
    generation = op.create_table(
        "rule_generation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("generation", BigId, nullable=False),
    )
    op.bulk_insert(generation, [{"id": 1, "generation": 0}])


def downgrade() -> None:
    op.drop_table("rule_generation")
    op.drop_index("ix_rule_switches_key", table_name="rule_switches")
    op.drop_table("rule_switches")
    op.drop_table("rule_heads")
    op.drop_table("rule_versions")
