"""The ledger numbers each case's events: ingest_ledger.case_seq and case_sequences.

Revision ID: 0002_ledger_case_seq
Revises: 0001_initial
Create Date: 2026-11-30

Before migrations existed, start-up added the column with ALTER TABLE (BIGINT on
SQLite too) and create_all added the table, but nothing ever added the constraint to an
existing ledger. A database adopted at 0001 may therefore have the column or the table
already: each part is added only if it is missing, and the column takes the models'
type. Rows ledgered before have no number (NULL), which the worker accepts.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.storage.exceptions import SchemaError
from services.storage.models import BigId

revision = "0002_ledger_case_seq"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

CASE_SEQ_COLUMNS = ["hospital_id", "case_id", "case_seq"]


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if not inspector.has_table("case_sequences"):
        op.create_table(
            "case_sequences",
            sa.Column("hospital_id", sa.String(64), primary_key=True),
            sa.Column("case_id", sa.String(64), primary_key=True),
            sa.Column("last_seq", BigId, nullable=False),
        )
    columns = {column["name"]: column for column in inspector.get_columns("ingest_ledger")}
    has_constraint = any(
        unique["name"] == "uq_ledger_case_seq" or list(unique["column_names"]) == CASE_SEQ_COLUMNS
        for unique in inspector.get_unique_constraints("ingest_ledger")
    )
    existing = columns.get("case_seq")
    # the ad-hoc ALTER TABLE said BIGINT; the models say INTEGER on SQLite (same storage)
    retype = (
        existing is not None
        and bind.dialect.name == "sqlite"
        and not isinstance(existing["type"], sa.INTEGER)
    )
    if existing is not None and has_constraint and not retype:
        return
    if existing is not None and not has_constraint:
        _refuse_duplicate_numbers(bind)
    with op.batch_alter_table("ingest_ledger") as batch:
        if existing is None:
            batch.add_column(sa.Column("case_seq", BigId, nullable=True))
        elif retype:
            batch.alter_column("case_seq", type_=BigId, existing_nullable=True)
        if not has_constraint:
            batch.create_unique_constraint("uq_ledger_case_seq", CASE_SEQ_COLUMNS)


def downgrade() -> None:
    with op.batch_alter_table("ingest_ledger") as batch:
        batch.drop_constraint("uq_ledger_case_seq", type_="unique")
        batch.drop_column("case_seq")
    op.drop_table("case_sequences")


def _refuse_duplicate_numbers(bind: sa.Connection) -> None:
    """Stop with a clear message (nothing changed) if two events share a case number."""
    clashes = bind.execute(
        sa.text(
            "SELECT hospital_id, case_id, case_seq FROM ingest_ledger"
            " WHERE case_seq IS NOT NULL GROUP BY hospital_id, case_id, case_seq"
            " HAVING COUNT(*) > 1"
        )
    ).all()
    if clashes:
        hospital_id, case_id, case_seq = clashes[0]
        raise SchemaError(
            f"ingest_ledger holds {len(clashes)} case sequence numbers given twice (e.g."
            f" hospital {hospital_id}, case {case_id}, number {case_seq}); the unique"
            " constraint uq_ledger_case_seq cannot be added until they are resolved"
        )
