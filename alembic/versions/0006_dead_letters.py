"""dead_letters: ttlc:dlq of the embedded default, kept in the database

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Hand-written: runs on PostgreSQL and SQLite. Mirrors ``ttlp.db.tables``.

The in-process bus keeps its dead-letter stream in this table (``ttlp.db.letters``): letters
survive a restart, and ``ttlp dlq`` in another process lists, retries and purges them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("stream", sa.String(255), nullable=False),
        sa.Column("ms", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("move_to", sa.String(255), nullable=True),
        sa.Column("move_fields", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("stream", "ms", "seq", name=op.f("pk_dead_letters")),
    )
    op.create_index("ix_dead_letters_stream_move_to", "dead_letters", ["stream", "move_to"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_stream_move_to", table_name="dead_letters")
    op.drop_table("dead_letters")
