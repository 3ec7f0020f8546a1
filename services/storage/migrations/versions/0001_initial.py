"""The schema of the first release: every table, before the ledger's per-case numbering.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-30

A database made before migrations existed (by `create_all` at start) has these tables;
services/storage/schema.py records this revision for it instead of running this one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.storage.models import BigId, ExactDecimal, UtcDateTime

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_ledger",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("hospital_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("hospital_id", "event_id", name="uq_ledger_event"),
    )
    op.create_index("ix_ledger_unpublished", "ingest_ledger", ["published", "seq"])

    op.create_table(
        "dead_letters",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("hospital_id", sa.String(64), nullable=True),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_dead_letters_hospital", "dead_letters", ["hospital_id", "id"])

    op.create_table(
        "cases",
        sa.Column("hospital_id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("department", sa.String(32), nullable=True),
        sa.Column("drg_code", sa.String(32), nullable=True),
        sa.Column("drg_name", sa.String(200), nullable=True),
        sa.Column("insurance_scheme", sa.String(32), nullable=True),
        sa.Column("standard_cost", ExactDecimal(18, 2), nullable=True),
        sa.Column("total_cost", ExactDecimal(18, 2), nullable=False),
        sa.Column("ratio", ExactDecimal(12, 4), nullable=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("ratio_flag", sa.String(8), nullable=True),
        sa.Column("cost_by_category", sa.JSON(), nullable=False),
        sa.Column("top_contributors", sa.JSON(), nullable=False),
        sa.Column("admitted_at", UtcDateTime(), nullable=True),
        sa.Column("discharged_at", UtcDateTime(), nullable=True),
        sa.Column("utc_offset_minutes", sa.Integer(), nullable=False),
        sa.Column("avg_los_days", ExactDecimal(8, 1), nullable=True),
        sa.Column("events_applied", sa.Integer(), nullable=False),
        sa.Column("last_event_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_cases_department", "cases", ["hospital_id", "department", "case_id"])
    op.create_index("ix_cases_level", "cases", ["hospital_id", "level", "case_id"])

    op.create_table(
        "alerts",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(36), nullable=False, unique=True),
        sa.Column("hospital_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("department", sa.String(32), nullable=True),
        sa.Column("drg_code", sa.String(32), nullable=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("previous_level", sa.String(16), nullable=False),
        sa.Column("transition", sa.String(16), nullable=False),
        sa.Column("total_cost", ExactDecimal(18, 2), nullable=False),
        sa.Column("standard_cost", ExactDecimal(18, 2), nullable=False),
        sa.Column("ratio", ExactDecimal(12, 4), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("raised_at", UtcDateTime(), nullable=False),
        sa.Column("top_contributors", sa.JSON(), nullable=False),
    )
    op.create_index("ix_alerts_case", "alerts", ["hospital_id", "case_id", "seq"])
    op.create_index("ix_alerts_department", "alerts", ["hospital_id", "department", "seq"])

    op.create_table(
        "alert_actions",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "alert_id",
            sa.String(36),
            sa.ForeignKey("alerts.alert_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("hospital_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("from_status", sa.String(16), nullable=False),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(40), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("actor_role", sa.String(32), nullable=False),
        sa.Column("acted_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("alert_id", "step", name="uq_alert_actions_step"),
    )
    op.create_index("ix_alert_actions_case", "alert_actions", ["hospital_id", "case_id", "seq"])

    op.create_table(
        "drg_catalogues",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("hospital_id", sa.String(64), nullable=True),
        sa.Column("base_rates", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "drg_groups",
        sa.Column(
            "catalogue_id",
            BigId,
            sa.ForeignKey("drg_catalogues.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("drg_code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("weight", ExactDecimal(10, 4), nullable=False),
        sa.Column("avg_los_days", ExactDecimal(8, 1), nullable=True),
        sa.Column("standard_cost", ExactDecimal(18, 2), nullable=True),
    )
    op.create_table(
        "alert_thresholds",
        sa.Column("hospital_id", sa.String(64), primary_key=True),
        sa.Column("drg_code", sa.String(32), primary_key=True),
        sa.Column("blue", ExactDecimal(6, 4), nullable=False),
        sa.Column("yellow", ExactDecimal(6, 4), nullable=False),
        sa.Column("red", ExactDecimal(6, 4), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    reference_version = op.create_table(
        "reference_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    # the one row that workers poll (create_schema used to insert it at every start)
    op.bulk_insert(reference_version, [{"id": 1, "version": 0}])

    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(128), primary_key=True),
        sa.Column("ready", sa.Boolean(), nullable=False),
        sa.Column("partitions", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )

    op.create_table(
        "identities",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("hospitals", sa.JSON(), nullable=False),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("disabled_at", UtcDateTime(), nullable=True),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "identity_id",
            sa.String(40),
            sa.ForeignKey("identities.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key_digest", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_api_keys_identity_id", "api_keys", ["identity_id"])

    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("identity_id", sa.String(40), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(80), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("hospitals", sa.JSON(), nullable=False),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.Column("min_level", sa.String(16), nullable=False),
        sa.Column("blue_digest", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("disabled_at", UtcDateTime(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("after_seq", BigId, nullable=False),
        sa.Column("digest_due_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index(
        "ix_webhook_subscriptions_owner", "webhook_subscriptions", ["identity_id", "created_at"]
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "subscription_id",
            sa.String(40),
            sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("alert_id", sa.String(36), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("lease_until", UtcDateTime(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index(
        "ix_webhook_deliveries_subscription", "webhook_deliveries", ["subscription_id", "seq"]
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "delivery_seq",
            BigId,
            sa.ForeignKey("webhook_deliveries.seq", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempted_at", UtcDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
    )
    op.create_index("ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_seq", "id"])
    op.create_table(
        "webhook_digest_entries",
        sa.Column(
            "subscription_id",
            sa.String(40),
            sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("alert_seq", BigId, primary_key=True),
    )


def downgrade() -> None:
    # every table, dependants first: only `drgwatch db downgrade base` comes here
    for table in (
        "webhook_digest_entries",
        "webhook_attempts",
        "webhook_deliveries",
        "webhook_subscriptions",
        "api_keys",
        "identities",
        "worker_heartbeats",
        "reference_version",
        "alert_thresholds",
        "drg_groups",
        "drg_catalogues",
        "alert_actions",
        "alerts",
        "cases",
        "dead_letters",
        "ingest_ledger",
    ):
        op.drop_table(table)
