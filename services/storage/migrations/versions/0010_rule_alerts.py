"""Rule alerts: an alert raised by a monitoring rule names the rule and its version, the
finding's period, what the rule found, and one sentence in Chinese and one in English.
Downgrading drops rule alerts (and their actions): the earlier schema has no place for them.

Revision ID: 0010_rule_alerts
Revises: 0009_drg_group_limits
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_rule_alerts"
down_revision = "0009_drg_group_limits"
branch_labels = None
depends_on = None

alerts = sa.table("alerts", sa.column("alert_id", sa.String), sa.column("kind", sa.String))
alert_actions = sa.table("alert_actions", sa.column("alert_id", sa.String))
COLUMNS = ("rule_id", "rule_version", "rule_period", "detail", "text_zh", "text_en")


def upgrade() -> None:
    op.add_column("alerts", sa.Column("rule_id", sa.String(64), nullable=True))
    op.add_column("alerts", sa.Column("rule_version", sa.Integer(), nullable=True))
    op.add_column("alerts", sa.Column("rule_period", sa.String(80), nullable=True))
    op.add_column("alerts", sa.Column("detail", sa.JSON(), nullable=True))
    op.add_column("alerts", sa.Column("text_zh", sa.Text(), nullable=True))
    op.add_column("alerts", sa.Column("text_en", sa.Text(), nullable=True))


def downgrade() -> None:
    rule = sa.select(alerts.c.alert_id).where(alerts.c.kind == "rule")
    op.execute(alert_actions.delete().where(alert_actions.c.alert_id.in_(rule)))
    op.execute(alerts.delete().where(alerts.c.kind == "rule"))
    for column in reversed(COLUMNS):
        op.drop_column("alerts", column)
