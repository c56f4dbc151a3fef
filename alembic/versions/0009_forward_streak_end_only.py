"""forward targets: streak_end_only; deliveries listed per target, newest first

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Hand-written: runs on PostgreSQL and SQLite. Mirrors ``ttlp.db.tables``.

``forward_targets.streak_end_only`` makes a target forward a gift streak once, its end frame,
as rules with ``streakEndOnly`` act on it (the default, false, keeps what existing targets did:
every frame). ``ix_forward_deliveries_target_id_id`` serves a target's deliveries newest first
(``GET /forward/targets/{id}/deliveries``) without scanning every target's rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "forward_targets",
        sa.Column("streak_end_only", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index("ix_forward_deliveries_target_id_id", "forward_deliveries", ["target_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_forward_deliveries_target_id_id", table_name="forward_deliveries")
    # SQLite drops a column by copying the table (batch mode); PostgreSQL alters it in place.
    with op.batch_alter_table("forward_targets") as batch:
        batch.drop_column("streak_end_only")
