"""Case snapshots: each case's state as the worker's table last held it, with the ledger
sequence it applies next, so that a lost broker is restored from them and the ledger's
tail rather than from the whole ledger; and a partial index on the ledger entries that
have no case number (ledgered before 0002), which such a restore publishes again.
Downgrading drops both.

Revision ID: 0015_case_snapshot
Revises: 0014_dead_letter_source
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.storage.models import BigId

revision = "0015_case_snapshot"
down_revision = "0014_dead_letter_source"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_snapshots",
        sa.Column("hospital_id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("next_sequence", BigId, nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
    )
    op.create_index(
        "ix_ledger_unnumbered",
        "ingest_ledger",
        ["seq"],
        postgresql_where=sa.text("case_seq IS NULL"),
        sqlite_where=sa.text("case_seq IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_unnumbered", table_name="ingest_ledger")
    op.drop_table("case_snapshots")
