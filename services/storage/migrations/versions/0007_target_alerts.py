"""Department alerts: alerts name the target they were raised on, and the worker keeps
where each department's ceiling measures stand against their targets. Downgrading drops
target alerts (and their actions): the earlier schema has no place for them.

Revision ID: 0007_target_alerts
Revises: 0006_forecast
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.storage.models import ExactDecimal, UtcDateTime

revision = "0007_target_alerts"
down_revision = "0006_forecast"
branch_labels = None
depends_on = None

alerts = sa.table("alerts", sa.column("alert_id", sa.String), sa.column("kind", sa.String))
alert_actions = sa.table("alert_actions", sa.column("alert_id", sa.String))


def upgrade() -> None:
    op.add_column("alerts", sa.Column("target_period", sa.String(7), nullable=True))
    op.add_column("alerts", sa.Column("target_measure", sa.String(16), nullable=True))
    op.create_table(
        "target_watches",
        sa.Column("hospital_id", sa.String(64), primary_key=True),
        sa.Column("department", sa.String(32), primary_key=True),
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("measure", sa.String(16), primary_key=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("ratio", ExactDecimal(12, 4), nullable=False),
        sa.Column("alerts_raised", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    target = sa.select(alerts.c.alert_id).where(alerts.c.kind == "target")
    op.execute(alert_actions.delete().where(alert_actions.c.alert_id.in_(target)))
    op.execute(alerts.delete().where(alerts.c.kind == "target"))
    op.drop_table("target_watches")
    for column in ("target_measure", "target_period"):
        op.drop_column("alerts", column)
