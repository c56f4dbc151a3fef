"""account_invites (one-time links that make an account; only the token's SHA-256 is kept)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Hand-written: runs on PostgreSQL and SQLite. Mirrors ``ttlp.db.tables``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "account_invites",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("scopes", JSON, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("used_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            "role IN ('STREAMER', 'MODERATOR', 'VIEWER')", name=op.f("ck_account_invites_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_invites")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_invites_token_hash")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_account_invites_username", "account_invites", ["username"])


def downgrade() -> None:
    op.drop_index("ix_account_invites_username", table_name="account_invites")
    op.drop_table("account_invites")
