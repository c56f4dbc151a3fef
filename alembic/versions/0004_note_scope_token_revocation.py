"""user_notes.streamer (a note is private to the streamer it was written under), revoked_tokens

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

Hand-written: runs on PostgreSQL and SQLite. Mirrors ``ttlp.db.tables``.

Notes written before this revision get the streamer of their author's scope when that scope
names exactly one streamer; the others keep NULL, which only accounts of scope ``*`` read.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("user_notes", sa.Column("streamer", sa.String(128), nullable=True))
    _backfill_streamers()
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(64), nullable=False),
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_tokens")),
    )
    op.create_index("ix_revoked_tokens_username", "revoked_tokens", ["username"])
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])


def _backfill_streamers() -> None:
    """Existing notes: the one streamer of the author's scope, where there is one. In Python
    (the accounts' scopes are JSON, read differently by each database); notes are few."""
    accounts = sa.table("accounts", sa.column("username", sa.String), sa.column("scopes", JSON))
    notes = sa.table("user_notes", sa.column("author", sa.String), sa.column("streamer", sa.String))
    bind = op.get_bind()
    for username, scopes in bind.execute(sa.select(accounts.c.username, accounts.c.scopes)):
        if isinstance(scopes, list) and len(scopes) == 1 and scopes[0] != "*":
            bind.execute(
                notes.update()
                .where(notes.c.author == username, notes.c.streamer.is_(None))
                .values(streamer=str(scopes[0]).lower())
            )


def downgrade() -> None:
    op.drop_index("ix_revoked_tokens_expires_at", table_name="revoked_tokens")
    op.drop_index("ix_revoked_tokens_username", table_name="revoked_tokens")
    op.drop_table("revoked_tokens")
    op.drop_column("user_notes", "streamer")
