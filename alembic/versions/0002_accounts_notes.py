"""accounts (API users), user_notes (moderators' notes on TikTok users), keyset indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Hand-written: runs on PostgreSQL and SQLite. Mirrors ``ttlp.db.tables``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scopes", JSON, nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("password_changed_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "role IN ('STREAMER', 'MODERATOR', 'VIEWER')", name=op.f("ck_accounts_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("username", name=op.f("uq_accounts_username")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "user_notes",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_notes")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_user_notes_user_id_id", "user_notes", ["user_id", "id"])
    # Keyset pages (ORDER BY id) of a streamer's rooms and of one TikTok user.
    op.create_index("ix_events_stream_id_id", "events", ["stream_id", "id"])
    op.create_index("ix_events_user_id_id", "events", ["user_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_user_id_id", table_name="events")
    op.drop_index("ix_events_stream_id_id", table_name="events")
    op.drop_index("ix_user_notes_user_id_id", table_name="user_notes")
    op.drop_table("user_notes")
    op.drop_table("accounts")
