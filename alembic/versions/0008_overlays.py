"""overlays: OBS overlay tokens (with their options) and uploaded alert sounds

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Hand-written: runs on PostgreSQL and SQLite. Mirrors ``ttlp.db.tables``.

``overlay_tokens`` are the read-only, per-streamer, revocable keys of the OBS browser sources
(``/overlay/{kind}?token=…``); each carries its overlays' options, a version bumped on every
change and a counter the skip button bumps, which open overlays watch. ``overlay_sounds`` keeps
the alert sounds streamers upload (at most 1 MiB each).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Timestamp = sa.DateTime(timezone=True)
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "overlay_tokens",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("streamer", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.Column("options", Json, nullable=True),
        sa.Column("options_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("skip_seq", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_used_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_overlay_tokens")),
        sa.UniqueConstraint("token", name=op.f("uq_overlay_tokens_token")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_overlay_tokens_streamer", "overlay_tokens", ["streamer"])
    op.create_table(
        "overlay_sounds",
        sa.Column("id", RowId, autoincrement=True, nullable=False),
        sa.Column("streamer", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_overlay_sounds")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_overlay_sounds_streamer", "overlay_sounds", ["streamer"])


def downgrade() -> None:
    op.drop_index("ix_overlay_sounds_streamer", table_name="overlay_sounds")
    op.drop_table("overlay_sounds")
    op.drop_index("ix_overlay_tokens_streamer", table_name="overlay_tokens")
    op.drop_table("overlay_tokens")
