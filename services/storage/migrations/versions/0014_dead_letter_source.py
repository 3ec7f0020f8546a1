"""Dead letters gain `source_key`: where a refusal came from when it can be read again
(the Kafka intake's `topic/partition/offset#n`), unique, so that a record read again
after a crash is kept once. Downgrading drops it.

Revision ID: 0014_dead_letter_source
Revises: 0013_chargemaster
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_dead_letter_source"
down_revision = "0013_chargemaster"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends (see 0003: no batch-mode table copies).
    op.add_column("dead_letters", sa.Column("source_key", sa.String(300), nullable=True))
    op.create_index("uq_dead_letters_source_key", "dead_letters", ["source_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_dead_letters_source_key", table_name="dead_letters")
    op.drop_column("dead_letters", "source_key")
