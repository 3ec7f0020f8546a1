"""DRG groups gain the region's mean cost per case and their own high-/low-ratio limits.

`mean_cost` is the reference of the regional cost consumption index; `high_ratio` and
`low_ratio` replace the common 2 and 0.4 for a group whose catalogue sets its own (many
regions set them by weight band). Groups stored before have none.

Revision ID: 0009_drg_group_limits
Revises: 0008_drg_name_en
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.storage.models import ExactDecimal

revision = "0009_drg_group_limits"
down_revision = "0008_drg_name_en"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends (see 0003: no batch-mode table copies).
    op.add_column("drg_groups", sa.Column("mean_cost", ExactDecimal(18, 2), nullable=True))
    op.add_column("drg_groups", sa.Column("high_ratio", ExactDecimal(8, 4), nullable=True))
    op.add_column("drg_groups", sa.Column("low_ratio", ExactDecimal(8, 4), nullable=True))


def downgrade() -> None:
    for column in ("low_ratio", "high_ratio", "mean_cost"):
        op.drop_column("drg_groups", column)
