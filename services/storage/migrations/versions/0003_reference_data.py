"""Reference data: sample catalogues marked as such, import history and withdrawal.

Downgrading deletes the withdrawn catalogues: the earlier schema cannot say
"withdrawn", and keeping them would put catalogues back into force that someone took
out of force because they priced cases wrongly.

Revision ID: 0003_reference_data
Revises: 0002_ledger_case_seq
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.storage.models import BigId, UtcDateTime

revision = "0003_reference_data"
down_revision = "0002_ledger_case_seq"
branch_labels = None
depends_on = None

# The name the shipped sample catalogue has always been stored under. Written out here
# rather than imported: a migration must keep meaning what it meant when it was written.
SAMPLE_NAME = "SAMPLE CHS-DRG-style catalogue (illustrative, not for payment)"

drg_catalogues = sa.table(
    "drg_catalogues",
    sa.column("id", sa.BigInteger),
    sa.column("name", sa.String),
    sa.column("sample", sa.Boolean),
    sa.column("withdrawn_at", sa.DateTime(timezone=True)),
)
drg_groups = sa.table("drg_groups", sa.column("catalogue_id", sa.BigInteger))


def upgrade() -> None:
    # Plain ADD COLUMN on both backends. Not batch mode: on SQLite that recreates the table
    # (copy, drop, rename), and dropping drg_catalogues with foreign keys on deletes every
    # drg_groups row through ON DELETE CASCADE. A literal default keeps SQLite's ALTER.
    op.add_column(
        "drg_catalogues",
        sa.Column("sample", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("drg_catalogues", sa.Column("import_mode", sa.String(16), nullable=True))
    op.add_column("drg_catalogues", sa.Column("based_on_id", BigId, nullable=True))
    op.add_column("drg_catalogues", sa.Column("created_by", sa.String(200), nullable=True))
    op.add_column("drg_catalogues", sa.Column("withdrawn_at", UtcDateTime(), nullable=True))
    op.add_column("drg_catalogues", sa.Column("withdrawn_by", sa.String(200), nullable=True))
    op.add_column("drg_catalogues", sa.Column("withdrawn_reason", sa.Text(), nullable=True))
    op.execute(
        drg_catalogues.update().where(drg_catalogues.c.name == SAMPLE_NAME).values(sample=True)
    )


def downgrade() -> None:
    withdrawn = sa.select(drg_catalogues.c.id).where(drg_catalogues.c.withdrawn_at.is_not(None))
    op.execute(drg_groups.delete().where(drg_groups.c.catalogue_id.in_(withdrawn)))
    op.execute(drg_catalogues.delete().where(drg_catalogues.c.withdrawn_at.is_not(None)))
    # ALTER TABLE ... DROP COLUMN, which SQLite has since 3.35; not batch mode, for the
    # reason given in upgrade()
    for column in (
        "withdrawn_reason",
        "withdrawn_by",
        "withdrawn_at",
        "created_by",
        "based_on_id",
        "import_mode",
        "sample",
    ):
        op.drop_column("drg_catalogues", column)
