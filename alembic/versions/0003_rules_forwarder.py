"""rules, actions_log, forward_targets, forward_deliveries; an index for typed session pages

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21

Hand-written: runs on PostgreSQL and SQLite. Mirrors ``ttlp.db.tables``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    # A session's pages filtered by a rare type no longer scan the rest of the session.
    op.create_index(
        "ix_events_session_id_event_type_id", "events", ["session_id", "event_type", "id"]
    )
    op.create_table(
        "rules",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("condition", JSON, nullable=False),
        sa.Column("action", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("cooldown_s", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("user_cooldown_s", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("skip_replay", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("streak_end_only", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_rules_enabled_event_type", "rules", ["enabled", "event_type"])
    op.create_table(
        "actions_log",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("stream_id", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("action_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("rendered", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "status IN ('success', 'failed', 'skipped')", name=op.f("ck_actions_log_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions_log")),
        sa.UniqueConstraint("rule_id", "event_id", name=op.f("uq_actions_log_rule_id_event_id")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_actions_log_rule_id_id", "actions_log", ["rule_id", "id"])
    op.create_index(
        "ix_actions_log_rule_id_user_id_created_at",
        "actions_log",
        ["rule_id", "user_id", "created_at"],
    )
    op.create_table(
        "forward_targets",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("event_types", JSON, nullable=False),
        sa.Column("scope", sa.String(128), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forward_targets")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "forward_deliveries",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("target_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_data", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'dead')",
            name=op.f("ck_forward_deliveries_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forward_deliveries")),
        sa.UniqueConstraint(
            "target_id", "event_id", name=op.f("uq_forward_deliveries_target_id_event_id")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_forward_deliveries_status_next_attempt_at",
        "forward_deliveries",
        ["status", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_forward_deliveries_status_next_attempt_at", table_name="forward_deliveries")
    op.drop_table("forward_deliveries")
    op.drop_table("forward_targets")
    op.drop_index("ix_actions_log_rule_id_user_id_created_at", table_name="actions_log")
    op.drop_index("ix_actions_log_rule_id_id", table_name="actions_log")
    op.drop_table("actions_log")
    op.drop_index("ix_rules_enabled_event_type", table_name="rules")
    op.drop_table("rules")
    op.drop_index("ix_events_session_id_event_type_id", table_name="events")
