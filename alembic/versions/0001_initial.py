"""initial schema: streams, sessions, raw_frames, events, users

Revision ID: 0001
Revises:
Create Date: 2025-11-21

Hand-written: runs on PostgreSQL and SQLite. Mirrors ``ttlp.db.tables`` (see its docstring for
the reasons behind the ids, the missing foreign keys and the live dedupe index); the schema
test checks that the migrated database and ``tables.metadata`` have no differences.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
LIVE_DEDUPE_WHERE = "source = 'live' AND event_type NOT IN ('CONNECTED', 'DISCONNECTED', 'ERROR')"


def upgrade() -> None:
    op.create_table(
        "streams",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("unique_id", sa.String(128), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.Column("metadata", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_streams")),
    )

    op.create_table(
        "sessions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("stream_id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("provider", sa.String(16), nullable=True),
        sa.Column("unique_id", sa.String(128), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.Column("meta", JSON, nullable=True),
        sa.CheckConstraint("type IN ('live', 'replay')", name=op.f("ck_sessions_type")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    op.create_index("ix_sessions_stream_id_created_at", "sessions", ["stream_id", "created_at"])

    op.create_table(
        "raw_frames",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("stream_id", sa.String(32), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("seq_no", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", TIMESTAMP, nullable=False),
        sa.Column("ingested_at", TIMESTAMP, nullable=False),
        sa.Column("provider", sa.String(16), nullable=True),
        sa.Column("unique_id", sa.String(128), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_frames")),
        sa.UniqueConstraint(
            "session_id", "type", "seq_no", name=op.f("uq_raw_frames_session_id_type_seq_no")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_raw_frames_session_id_id", "raw_frames", ["session_id", "id"])

    op.create_table(
        "events",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("stream_id", sa.String(32), nullable=False),
        sa.Column("event_type", sa.String(16), nullable=False),
        sa.Column("trigger_id", sa.SmallInteger(), nullable=False),
        sa.Column("schema_version", sa.String(8), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("raw_type", sa.String(128), nullable=False),
        sa.Column("seq_no", sa.BigInteger(), nullable=True),
        sa.Column("timestamp", TIMESTAMP, nullable=False),
        sa.Column("ingested_at", TIMESTAMP, nullable=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("event_data", JSON, nullable=False),
        sa.Column("archived_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_session_id_id", "events", ["session_id", "id"])
    op.create_index("ix_events_stream_id_timestamp", "events", ["stream_id", "timestamp"])
    op.create_index(
        "ix_events_stream_id_event_type_timestamp",
        "events",
        ["stream_id", "event_type", "timestamp"],
    )
    op.create_index("ix_events_user_id_timestamp", "events", ["user_id", "timestamp"])
    op.create_index("ix_events_raw_type", "events", ["raw_type"])
    op.create_index(
        "ux_events_live_seq",
        "events",
        ["stream_id", "raw_type", "seq_no"],
        unique=True,
        postgresql_where=sa.text(LIVE_DEDUPE_WHERE),
        sqlite_where=sa.text(LIVE_DEDUPE_WHERE),
    )

    op.create_table(
        "users",
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("unique_id", sa.String(128), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("avatar_url", sa.Text(), nullable=True),
        sa.Column("first_seen", TIMESTAMP, nullable=False),
        sa.Column("last_seen", TIMESTAMP, nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_users")),
    )
    op.create_index("ix_users_unique_id", "users", ["unique_id"])


def downgrade() -> None:
    op.drop_table("users")
    op.drop_table("events")
    op.drop_table("raw_frames")
    op.drop_table("sessions")
    op.drop_table("streams")
