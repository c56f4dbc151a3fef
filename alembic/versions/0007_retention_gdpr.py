"""retention and GDPR: archived raw frames, pseudonymized users, erasure audit, instance meta

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Hand-written: runs on PostgreSQL and SQLite. Mirrors ``ttlp.db.tables``.

Retention (``ttlp.db.retention``) archives events and raw frames past EVENT_RETENTION_DAYS by
TikTok time, then deletes them after the grace period, in batches: two partial indexes per
table find the rows still live by time and the archived rows by when they were archived, so a
daily run never scans the tables. ``gdpr_erasures`` audits erasures (the subject only as a
salted hash); ``ttlp_meta`` keeps the generated salt.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_ARCHIVED = "archived_at IS NULL"
ARCHIVED = "archived_at IS NOT NULL"
Timestamp = sa.DateTime(timezone=True)
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("raw_frames", sa.Column("archived_at", Timestamp, nullable=True))
    for table in ("raw_frames", "events"):
        op.create_index(
            f"ix_{table}_timestamp_live",
            table,
            ["timestamp"],
            postgresql_where=sa.text(NOT_ARCHIVED),
            sqlite_where=sa.text(NOT_ARCHIVED),
        )
        op.create_index(
            f"ix_{table}_archived_at",
            table,
            ["archived_at"],
            postgresql_where=sa.text(ARCHIVED),
            sqlite_where=sa.text(ARCHIVED),
        )
    op.add_column("users", sa.Column("pseudonymized_at", Timestamp, nullable=True))
    op.create_index("ix_users_last_seen", "users", ["last_seen"])
    op.create_index("ix_actions_log_created_at", "actions_log", ["created_at"])
    op.create_index("ix_actions_log_user_id", "actions_log", ["user_id"])
    op.create_index("ix_forward_deliveries_updated_at", "forward_deliveries", ["updated_at"])

    op.create_table(
        "gdpr_erasures",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("subject_hash", sa.String(64), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("erased_at", Timestamp, nullable=False),
        sa.Column("rows", Json, nullable=False),
        sa.Column("total_rows", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gdpr_erasures")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_gdpr_erasures_subject_hash", "gdpr_erasures", ["subject_hash"])
    op.create_table(
        "ttlp_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ttlp_meta")),
    )


def downgrade() -> None:
    op.drop_table("ttlp_meta")
    op.drop_index("ix_gdpr_erasures_subject_hash", table_name="gdpr_erasures")
    op.drop_table("gdpr_erasures")
    op.drop_index("ix_forward_deliveries_updated_at", table_name="forward_deliveries")
    op.drop_index("ix_actions_log_user_id", table_name="actions_log")
    op.drop_index("ix_actions_log_created_at", table_name="actions_log")
    op.drop_index("ix_users_last_seen", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("pseudonymized_at")
    for table in ("events", "raw_frames"):
        op.drop_index(f"ix_{table}_archived_at", table_name=table)
        op.drop_index(f"ix_{table}_timestamp_live", table_name=table)
    with op.batch_alter_table("raw_frames") as batch:
        batch.drop_column("archived_at")
