"""DRG groups gain an English name beside the catalogue's own.

A catalogue names its groups in its own language (a Chinese catalogue in Chinese);
`name_en` keeps the English name where the import gives one, so that an English
interface can show it. Groups stored before have none.

Revision ID: 0008_drg_name_en
Revises: 0007_target_alerts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_drg_name_en"
down_revision = "0007_target_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends (see 0003: no batch-mode table copies).
    op.add_column("drg_groups", sa.Column("name_en", sa.String(200), nullable=True))


def downgrade() -> None:
    op.drop_column("drg_groups", "name_en")
