"""The projection to discharge: projected cost on cases and alerts, and the alert's kind.

Cases gain their projected total and ratio, cost per local day and per orderer, and the
local days of admission and discharge (to sort by days over the average stay); alerts
gain `kind` (every existing alert is a level alert) and the projection a forecast alert
carries; webhook subscriptions may name the kinds they want. Downgrading drops forecast
alerts (and their actions): the earlier schema cannot tell them from level alerts.

Revision ID: 0006_forecast
Revises: 0005_signin
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.storage.models import ExactDecimal

revision = "0006_forecast"
down_revision = "0005_signin"
branch_labels = None
depends_on = None

alerts = sa.table("alerts", sa.column("alert_id", sa.String), sa.column("kind", sa.String))
alert_actions = sa.table("alert_actions", sa.column("alert_id", sa.String))
CASE_COLUMNS = (
    "discharged_day",
    "admitted_day",
    "cost_by_orderer",
    "cost_by_day",
    "projected_ratio",
    "projected_total",
)


def upgrade() -> None:
    # Plain ADD COLUMN on both backends (see 0003: no batch-mode table copies).
    op.add_column("cases", sa.Column("projected_total", ExactDecimal(18, 2), nullable=True))
    op.add_column("cases", sa.Column("projected_ratio", ExactDecimal(12, 4), nullable=True))
    op.add_column("cases", sa.Column("cost_by_day", sa.JSON(), nullable=True))
    op.add_column("cases", sa.Column("cost_by_orderer", sa.JSON(), nullable=True))
    op.add_column("cases", sa.Column("admitted_day", sa.Integer(), nullable=True))
    op.add_column("cases", sa.Column("discharged_day", sa.Integer(), nullable=True))
    op.add_column(
        "alerts",
        sa.Column("kind", sa.String(16), nullable=False, server_default="level"),
    )
    op.add_column("alerts", sa.Column("projected_total", ExactDecimal(18, 2), nullable=True))
    op.add_column("alerts", sa.Column("projected_ratio", ExactDecimal(12, 4), nullable=True))
    op.add_column("webhook_subscriptions", sa.Column("kinds", sa.JSON(), nullable=True))


def downgrade() -> None:
    forecast = sa.select(alerts.c.alert_id).where(alerts.c.kind != "level")
    op.execute(alert_actions.delete().where(alert_actions.c.alert_id.in_(forecast)))
    op.execute(alerts.delete().where(alerts.c.kind != "level"))
    op.drop_column("webhook_subscriptions", "kinds")
    for column in ("projected_ratio", "projected_total", "kind"):
        op.drop_column("alerts", column)
    for column in CASE_COLUMNS:
        op.drop_column("cases", column)
