"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Column types come from services/storage/models.py (ExactDecimal for money, UtcDateTime
for instants, BigId for growing ids), never plain Numeric or DateTime: they are what
keeps money exact on SQLite and times in UTC. Never import the model classes: a table
changes later, a revision must not. A revision runs in one transaction on PostgreSQL
and SQLite alike; on SQLite use op.batch_alter_table for anything but adding a column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.storage.models import BigId, ExactDecimal, UtcDateTime  # noqa: F401
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
