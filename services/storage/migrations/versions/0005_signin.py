"""People sign in: a password hash on identities, and server-side sign-in sessions.

Downgrading drops every session (everyone signed in must sign in again, with a key) and
every password hash.

Revision ID: 0005_signin
Revises: 0004_indicators
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.storage.models import UtcDateTime

revision = "0005_signin"
down_revision = "0004_indicators"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN on both backends (a nullable column needs no table rebuild on SQLite)
    op.add_column("identities", sa.Column("password_hash", sa.String(255), nullable=True))
    op.create_table(
        "sign_in_sessions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("token_digest", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "identity_id",
            sa.String(40),
            sa.ForeignKey("identities.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
    )
    op.create_index("ix_sign_in_sessions_identity_id", "sign_in_sessions", ["identity_id"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_sessions_identity_id", table_name="sign_in_sessions")
    op.drop_table("sign_in_sessions")
    op.drop_column("identities", "password_hash")
