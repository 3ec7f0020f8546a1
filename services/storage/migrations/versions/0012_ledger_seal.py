"""Ledger seal: the key with which the API seals every event it publishes from the ingest
ledger, and the worker checks them (a record produced straight into the events topic is
refused). Made here, one row of 32 random bytes; downgrading drops it, and the worker of
the previous revision applies any record again, sealed or not.

Revision ID: 0012_ledger_seal
Revises: 0011_rule_registry
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from services.storage.models import UtcDateTime
from services.wire import SEAL_KEY_BYTES

revision = "0012_ledger_seal"
down_revision = "0011_rule_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    seal = op.create_table(
        "ingest_seal",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.LargeBinary(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.bulk_insert(
        seal,
        [{"id": 1, "key": secrets.token_bytes(SEAL_KEY_BYTES), "created_at": datetime.now(UTC)}],
    )


def downgrade() -> None:
    op.drop_table("ingest_seal")
