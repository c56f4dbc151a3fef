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
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
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
STREAM_KEY_LEN: Final = 255
"""A bus stream key, REDIS_CONSUMER_GROUP_PREFIX included."""

LIVE_DEDUPE_WHERE: Final = (
    "source = 'live' AND event_type NOT IN ('CONNECTED', 'DISCONNECTED', 'ERROR')"
)
"""Rows the cross-session dedupe index covers: live, non-lifecycle events."""
NOT_ARCHIVED: Final = "archived_at IS NULL"
ARCHIVED: Final = "archived_at IS NOT NULL"

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
    Column("archived_at", Timestamp),  # set by retention; deleted after the grace period
    UniqueConstraint("session_id", "type", "seq_no"),
    Index("ix_raw_frames_session_id_id", "session_id", "id"),
    # Retention (0007): rows still live by TikTok time; archived rows by when they were.
    Index(
        "ix_raw_frames_timestamp_live",
        "timestamp",
        postgresql_where=text(NOT_ARCHIVED),
        sqlite_where=text(NOT_ARCHIVED),
    ),
    Index(
        "ix_raw_frames_archived_at",
        "archived_at",
        postgresql_where=text(ARCHIVED),
        sqlite_where=text(ARCHIVED),
    ),
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
    # Keyset pages of a streamer's rooms and of one TikTok user (0002).
    Index("ix_events_stream_id_id", "stream_id", "id"),
    Index("ix_events_user_id_id", "user_id", "id"),
    # Keyset pages of one session filtered by type, e.g. its rare SUBSCRIBE events (0003).
    Index("ix_events_session_id_event_type_id", "session_id", "event_type", "id"),
    Index(
        "ux_events_live_seq",
        "stream_id",
        "raw_type",
        "seq_no",
        unique=True,
        postgresql_where=text(LIVE_DEDUPE_WHERE),
        sqlite_where=text(LIVE_DEDUPE_WHERE),
    ),
    # Retention (0007), as on raw_frames.
    Index(
        "ix_events_timestamp_live",
        "timestamp",
        postgresql_where=text(NOT_ARCHIVED),
        sqlite_where=text(NOT_ARCHIVED),
    ),
    Index(
        "ix_events_archived_at",
        "archived_at",
        postgresql_where=text(ARCHIVED),
        sqlite_where=text(ARCHIVED),
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
    # Set when retention pseudonymized the user (0007): user_id is then the salted hash.
    Column("pseudonymized_at", Timestamp),
    Index("ix_users_unique_id", "unique_id"),
    Index("ix_users_last_seen", "last_seen"),
)

ROLE_LEN: Final = 16

accounts: Final = Table(
    "accounts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("username", String(HANDLE_LEN), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),  # scrypt, see ttlp.api.passwords
    Column("role", String(ROLE_LEN), nullable=False),  # STREAMER | MODERATOR | VIEWER
    Column("scopes", Json, nullable=False),  # streamer handles, or ["*"]
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_at", Timestamp, nullable=False),
    Column("password_changed_at", Timestamp, nullable=False),  # older tokens are refused
    CheckConstraint("role IN ('STREAMER', 'MODERATOR', 'VIEWER')", name="role"),
    sqlite_autoincrement=True,
)

account_invites: Final = Table(
    "account_invites",
    metadata,
    # A one-time link that makes an account (0005): the owner fixes the username, role and
    # scope, the invitee picks the password. Only the SHA-256 of the link's token is kept.
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("username", String(HANDLE_LEN), nullable=False),
    Column("role", String(ROLE_LEN), nullable=False),
    Column("scopes", Json, nullable=False),
    Column("created_by", String(HANDLE_LEN), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp),  # NULL until the account is made; a used link answers 410
    CheckConstraint("role IN ('STREAMER', 'MODERATOR', 'VIEWER')", name="role"),
    Index("ix_account_invites_username", "username"),
    sqlite_autoincrement=True,
)

user_notes: Final = Table(
    "user_notes",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("user_id", String(USER_ID_LEN), nullable=False),  # the TikTok user
    Column("author", String(HANDLE_LEN), nullable=False),  # the account that wrote it
    Column("body", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    # The streamer (handle, lower case) the note was written under: only accounts scoped to
    # that streamer (or to *) read it (0004). NULL: a note from before 0004 whose author's
    # scope did not name one streamer; accounts of scope * read those.
    Column("streamer", String(HANDLE_LEN)),
    Index("ix_user_notes_user_id_id", "user_id", "id"),
    sqlite_autoincrement=True,
)

revoked_tokens: Final = Table(
    "revoked_tokens",
    metadata,
    # A token ended by POST /auth/logout (its jti claim) until it would have expired anyway;
    # in the database so every api replica refuses it (0004).
    Column("jti", String(64), primary_key=True),
    Column("username", String(HANDLE_LEN), nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp, nullable=False),
    Index("ix_revoked_tokens_username", "username"),
    Index("ix_revoked_tokens_expires_at", "expires_at"),
)

# -- rules and the forwarder (0003) ------------------------------------------------------------
rules: Final = Table(
    "rules",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("name", String(HANDLE_LEN), nullable=False),
    Column("scope", String(HANDLE_LEN), nullable=False),  # a streamer handle, or "*"
    Column("event_type", String(16), nullable=False),
    Column("condition", Json, nullable=False),  # JSON Logic over the UnifiedEvent
    Column("action", Json, nullable=False),  # {"type": announce|moderate|webhook|log, ...}
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Column("cooldown_s", Integer, nullable=False, server_default=text("0")),
    Column("user_cooldown_s", Integer, nullable=False, server_default=text("0")),
    Column("skip_replay", Boolean, nullable=False, server_default=true()),
    Column("streak_end_only", Boolean, nullable=False, server_default=true()),
    Column("created_by", String(HANDLE_LEN), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Index("ix_rules_enabled_event_type", "enabled", "event_type"),
    sqlite_autoincrement=True,
)

actions_log: Final = Table(
    "actions_log",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("rule_id", BigInteger, nullable=False),
    Column("event_id", String(EVENT_ID_LEN), nullable=False),
    Column("session_id", String(SESSION_ID_LEN), nullable=False),
    Column("stream_id", String(STREAM_ID_LEN), nullable=False),
    Column("user_id", String(USER_ID_LEN), nullable=False),
    Column("action_type", String(16), nullable=False),
    Column("status", String(8), nullable=False),  # success | failed | skipped
    Column("reason", String(32)),  # why skipped / failed: cooldown, user_cooldown, replay, ...
    Column("rendered", Text),  # the text sent (announce) or the body posted (webhook)
    Column("error", Text),
    Column("duration_ms", Integer),
    Column("created_at", Timestamp, nullable=False),
    # A rule fires at most once per event, however often the event is delivered.
    UniqueConstraint("rule_id", "event_id"),
    Index("ix_actions_log_rule_id_id", "rule_id", "id"),
    Index("ix_actions_log_rule_id_user_id_created_at", "rule_id", "user_id", "created_at"),
    Index("ix_actions_log_created_at", "created_at"),  # retention (0007)
    Index("ix_actions_log_user_id", "user_id"),  # GDPR erasure (0007)
    CheckConstraint("status IN ('success', 'failed', 'skipped')", name="status"),
    sqlite_autoincrement=True,
)

forward_targets: Final = Table(
    "forward_targets",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("name", String(HANDLE_LEN), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),  # HMAC key of X-TTLP-Signature
    Column("event_types", Json, nullable=False),  # [] = every type
    Column("scope", String(HANDLE_LEN), nullable=False),  # a streamer handle, or "*"
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("created_by", String(HANDLE_LEN), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # 0009: a gift streak forwarded once, its end frame (false: every frame, as before 0009).
    Column("streak_end_only", Boolean, nullable=False, server_default=false()),
    sqlite_autoincrement=True,
)

forward_deliveries: Final = Table(
    "forward_deliveries",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("target_id", BigInteger, nullable=False),
    Column("event_id", String(EVENT_ID_LEN), nullable=False),
    Column("event_data", Text, nullable=False),  # the UnifiedEvent JSON, posted as is
    Column("status", String(16), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", Timestamp, nullable=False),
    Column("last_error", Text),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("target_id", "event_id"),
    Index("ix_forward_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_forward_deliveries_updated_at", "updated_at"),  # retention (0007)
    Index("ix_forward_deliveries_target_id_id", "target_id", "id"),  # a target's list (0009)
    CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status"),
    sqlite_autoincrement=True,
)

dead_letters: Final = Table(
    "dead_letters",
    metadata,
    # ttlc:dlq of the embedded default (0006): the in-process bus keeps that stream here, so its
    # letters survive a restart and `ttlp dlq` in another process sees them (ttlp.db.letters).
    # One row per entry, keyed by stream (prefix included) and entry id (<ms>-<seq>).
    Column("stream", String(STREAM_KEY_LEN), primary_key=True),
    Column("ms", BigInteger, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("fields", Text, nullable=False),  # the entry's fields, JSON (ASCII-escaped)
    # Set by `ttlp dlq retry` in another process: the running ttlp publishes move_fields to
    # move_to and deletes the row (MemoryBus.relay).
    Column("move_to", String(STREAM_KEY_LEN)),
    Column("move_fields", Text),
    Index("ix_dead_letters_stream_move_to", "stream", "move_to"),
)

# -- retention and GDPR (0007) -----------------------------------------------------------------
gdpr_erasures: Final = Table(
    "gdpr_erasures",
    metadata,
    # The audit of one erasure: who asked, when, how many rows went. Never the erased data:
    # the subject is kept only as the salted hash (ttlp.db.retention), so the store can refuse
    # the user's events should a replay or a backlog bring them again.
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("subject_hash", String(64), nullable=False),
    Column("requested_by", String(HANDLE_LEN), nullable=False),  # the account, or "cli"
    Column("erased_at", Timestamp, nullable=False),
    Column("rows", Json, nullable=False),  # {"events": n, "raw_frames": n, ...}
    Column("total_rows", BigInteger, nullable=False),
    Index("ix_gdpr_erasures_subject_hash", "subject_hash"),
    sqlite_autoincrement=True,
)

ttlp_meta: Final = Table(
    "ttlp_meta",
    metadata,
    # Small instance-wide values: the generated pseudonym salt, the last prune's report.
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

# -- overlays (0008) ---------------------------------------------------------------------------
OVERLAY_TOKEN_LEN: Final = 64
OVERLAY_NAME_LEN: Final = 128
AUDIO_TYPE_LEN: Final = 32

overlay_tokens: Final = Table(
    "overlay_tokens",
    metadata,
    # An OBS browser source's key (ttlp.api.overlays): read-only, one streamer, revocable. Kept
    # in clear, like an OBS stream key, so the streamer can copy the overlay's URL again.
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("token", String(OVERLAY_TOKEN_LEN), nullable=False, unique=True),
    Column("streamer", String(HANDLE_LEN), nullable=False),  # handle, lower case, no @
    Column("name", String(OVERLAY_NAME_LEN), nullable=False),
    Column("created_by", String(HANDLE_LEN), nullable=False),  # the account
    Column("created_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp),  # NULL: active
    Column("options", Json),  # the overlays' options (ttlp.api.overlays.options); NULL: defaults
    Column("options_version", Integer, nullable=False, server_default=text("0")),
    Column("skip_seq", Integer, nullable=False, server_default=text("0")),
    Column("last_used_at", Timestamp),
    Index("ix_overlay_tokens_streamer", "streamer"),
    sqlite_autoincrement=True,
)

overlay_sounds: Final = Table(
    "overlay_sounds",
    metadata,
    # An alert sound a streamer uploaded (at most 1 MiB, MP3/Ogg/WAV/WebM by magic bytes),
    # served to that streamer's overlay tokens only.
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("streamer", String(HANDLE_LEN), nullable=False),
    Column("name", String(OVERLAY_NAME_LEN), nullable=False),
    Column("content_type", String(AUDIO_TYPE_LEN), nullable=False),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_by", String(HANDLE_LEN), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("ix_overlay_sounds_streamer", "streamer"),
    sqlite_autoincrement=True,
)
