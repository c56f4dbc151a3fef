"""The storage schema as SQLAlchemy Core tables (DESIGN §6), one definition for both backends.

``alembic/versions`` creates exactly this (a test compares the migrated schema with
``metadata``); change both together.

Choices that are not obvious from the columns:

- ``raw_frames.id`` and ``events.id`` are the arrival order (keyset pagination, replay order).
  On SQLite they are ``INTEGER PRIMARY KEY AUTOINCREMENT`` (a rowid alias whose values are never
  reused, so a saved cursor never skips rows); on PostgreSQL ``BIGSERIAL``.
- No foreign keys between these tables: ``raw_frames`` and ``events`` are written by two
  independent consumers (a frame can be archived before its session row exists) and pruned in
  bulk by retention; the ``Store`` keeps ``sessions`` and ``streams`` in step instead.
- ``events.raw_type`` is the TikTok message type for RAW events (``payload.rawType``) and the
  eventType for canonical ones (UnifiedEvent v1 does not carry the raw type, and one TikTok type
  always maps to the same eventType), so it is never NULL and can key the live dedupe index.
- ``ux_events_live_seq`` (partial, unique) is the cross-session dedupe of DESIGN §4: after a
  reconnect TikTok re-sends recent messages under a new session, which a live event with the
  same (stream, type, seqNo) must not store twice. Lifecycle events use per-session counters
  for seqNo and replays are new data by definition, so both are outside the index.
- Timestamps are ``timestamptz`` on PostgreSQL; SQLite keeps them as UTC text (the ``Store``
  converts to UTC before writing and reads them back as aware UTC datetimes).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata: Final = MetaData(naming_convention=NAMING_CONVENTION)

# Column types shared by the tables and the migration.
Json: Final = JSON().with_variant(JSONB(), "postgresql")
"""JSON document: JSONB on PostgreSQL (indexable, compact), JSON text on SQLite."""
RowId: Final = BigInteger().with_variant(Integer(), "sqlite")
"""Arrival-order id: BIGINT on PostgreSQL; INTEGER on SQLite so the column aliases the rowid."""
Timestamp: Final = DateTime(timezone=True)

STREAM_ID_LEN: Final = 32
SESSION_ID_LEN: Final = 36
EVENT_ID_LEN: Final = 64
USER_ID_LEN: Final = 32
HANDLE_LEN: Final = 128
RAW_TYPE_LEN: Final = 128

LIVE_DEDUPE_WHERE: Final = (
    "source = 'live' AND event_type NOT IN ('CONNECTED', 'DISCONNECTED', 'ERROR')"
)
"""Rows the cross-session dedupe index covers: live, non-lifecycle events."""

streams: Final = Table(
    "streams",
    metadata,
    Column("id", String(STREAM_ID_LEN), primary_key=True),  # TikTok room id
    Column("unique_id", String(HANDLE_LEN)),  # the streamer's @handle
    Column("title", Text),
    Column("started_at", Timestamp),
    Column("ended_at", Timestamp),
    Column("metadata", Json),
)

sessions: Final = Table(
    "sessions",
    metadata,
    Column("id", String(SESSION_ID_LEN), primary_key=True),  # uuid
    Column("stream_id", String(STREAM_ID_LEN), nullable=False),
    Column("type", String(8), nullable=False),  # live | replay
    Column("provider", String(16)),
    Column("unique_id", String(HANDLE_LEN)),
    Column("created_at", Timestamp, nullable=False),
    Column("ended_at", Timestamp),
    Column("meta", Json),  # e.g. {"replayedFrom": "<session uuid>"}
    CheckConstraint("type IN ('live', 'replay')", name="type"),
    Index("ix_sessions_stream_id_created_at", "stream_id", "created_at"),
)

raw_frames: Final = Table(
    "raw_frames",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),  # arrival order
    Column("session_id", String(SESSION_ID_LEN), nullable=False),
    Column("stream_id", String(STREAM_ID_LEN), nullable=False),
    Column("source", String(8), nullable=False),
    Column("type", String(RAW_TYPE_LEN), nullable=False),
    Column("seq_no", BigInteger, nullable=False),
    Column("timestamp", Timestamp, nullable=False),
    Column("ingested_at", Timestamp, nullable=False),
    Column("provider", String(16)),
    Column("unique_id", String(HANDLE_LEN)),
    Column("data", Text, nullable=False),  # the frame's data as the JSON text it arrived in
    Column("received_at", Timestamp, nullable=False),
    UniqueConstraint("session_id", "type", "seq_no"),
    Index("ix_raw_frames_session_id_id", "session_id", "id"),
    sqlite_autoincrement=True,
)

events: Final = Table(
    "events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),  # arrival order
    Column("event_id", String(EVENT_ID_LEN), nullable=False, unique=True),
    Column("session_id", String(SESSION_ID_LEN), nullable=False),
    Column("stream_id", String(STREAM_ID_LEN), nullable=False),
    Column("event_type", String(16), nullable=False),
    Column("trigger_id", SmallInteger, nullable=False),
    Column("schema_version", String(8), nullable=False),
    Column("user_id", String(USER_ID_LEN), nullable=False),
    Column("raw_type", String(RAW_TYPE_LEN), nullable=False),
    Column("seq_no", BigInteger),
    Column("timestamp", Timestamp, nullable=False),
    Column("ingested_at", Timestamp),
    Column("source", String(8), nullable=False),
    Column("event_data", Json, nullable=False),  # the full UnifiedEvent
    Column("archived_at", Timestamp),
    Index("ix_events_session_id_id", "session_id", "id"),
    Index("ix_events_stream_id_timestamp", "stream_id", "timestamp"),
    Index("ix_events_stream_id_event_type_timestamp", "stream_id", "event_type", "timestamp"),
    Index("ix_events_user_id_timestamp", "user_id", "timestamp"),
    Index("ix_events_raw_type", "raw_type"),
    Index(
        "ux_events_live_seq",
        "stream_id",
        "raw_type",
        "seq_no",
        unique=True,
        postgresql_where=text(LIVE_DEDUPE_WHERE),
        sqlite_where=text(LIVE_DEDUPE_WHERE),
    ),
    sqlite_autoincrement=True,
)

users: Final = Table(
    "users",
    metadata,
    Column("user_id", String(USER_ID_LEN), primary_key=True),  # TikTok user id
    Column("unique_id", String(HANDLE_LEN), nullable=False),
    Column("display_name", Text),
    Column("avatar_url", Text),
    Column("first_seen", Timestamp, nullable=False),
    Column("last_seen", Timestamp, nullable=False),
    Column("event_count", BigInteger, nullable=False),
    Index("ix_users_unique_id", "unique_id"),
)
