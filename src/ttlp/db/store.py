"""The ``Store``: the one place that writes the event tables, and the reads replay needs.

Every write is a batch in one transaction, idempotent (``INSERT ... ON CONFLICT DO NOTHING``) and
issues one statement per table, whatever the batch size (the two append-only tables: on PostgreSQL
one array per column, ``_UnnestInsert``; on SQLite a multi-row VALUES bound by the driver as it
is, ``_ValuesInsert``; the rest through SQLAlchemy). Re-delivered batches and TikTok's re-sends
after a reconnect are therefore harmless: the conflicting rows are skipped, and the derived tables
(users, sessions, streams) are updated from the rows that were actually inserted only.

A write transaction is a synchronous body (``Connection``): on SQLite it runs whole in the file's
writer thread (``ttlp.db.engine.SqliteWriter``: one trip from the event loop per batch, where
aiosqlite took three or four per statement), on PostgreSQL through ``AsyncConnection.run_sync``.

Conventions:
- timestamps arrive as ISO 8601 strings in the Structs; they are parsed once per row, stored in
  UTC and come back as aware UTC datetimes (rendered as ``...Z`` with millisecond, or
  microsecond, precision);
- ``events.event_data`` is the event's own JSON (encoded once with msgspec and handed to the
  driver as text);
- ``raw_frames.data`` is the frame's ``data`` as the JSON text it arrived in (``RawEnvelope``
  from the bus), or encoded once (a ``RawFrame`` built in Python);
- ``users`` counts live events only: a replay re-runs the same people's messages, and counting
  them again would double every count;
- a live session's ``created_at``/``ended_at`` follow the events' TikTok time; a replay session's
  follow ingest time (its events keep the original TikTok times).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any, Final, Protocol, TypeVar, cast

import msgspec
from msgspec import UNSET, UnsetType
from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Select,
    String,
    Table,
    TextClause,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.aio import as_utc, parse_iso, to_iso
from ttlp.contracts.events import (
    EVENT_CLASSES,
    RAW_SCHEMA_VERSION,
    ConnectedEvent,
    RawEnvelope,
    RawEvent,
    RawFrame,
    StreamEndEvent,
    UnifiedEvent,
    encode,
)
from ttlp.db import tables
from ttlp.db.engine import sqlite_writer
from ttlp.db.erasure import ErasedSubjects
from ttlp.errors import ConfigError, NotFoundError

NO_USER: Final = "0"
"""``user.userId`` of events without a user (lifecycle, room stats): not a TikTok user."""
_SESSION_CLOSERS: Final = frozenset({"DISCONNECTED", "STREAM_END"})
_TAGS: Final[dict[type, str]] = {cls: tag for tag, cls in EVENT_CLASSES.items()}

_Insert = postgresql.Insert | sqlite.Insert
_T = TypeVar("_T")
_Row = tuple[Any, ...]
"""One row's values in the order of ``_EVENT_COLUMNS`` / ``_FRAME_COLUMNS``."""
_TimedEvent = tuple[UnifiedEvent, datetime, datetime | None]
_TimedFrame = tuple[RawFrame | RawEnvelope, datetime, datetime]
"""A row's source with its ``timestamp`` and ``ingestedAt`` parsed (once: rows, users, sessions
and streams all need them)."""

_EVENT_COLUMNS: Final = (
    "event_id",
    "session_id",
    "stream_id",
    "event_type",
    "trigger_id",
    "schema_version",
    "user_id",
    "raw_type",
    "seq_no",
    "timestamp",
    "ingested_at",
    "source",
    "event_data",
)
_FRAME_COLUMNS: Final = (
    "session_id",
    "stream_id",
    "source",
    "type",
    "seq_no",
    "timestamp",
    "ingested_at",
    "provider",
    "unique_id",
    "data",
)
_FRAME_BATCH_COLUMNS: Final = ("received_at",)
"""Columns with one value for the whole batch (bound once on PostgreSQL)."""


class SessionNotFoundError(NotFoundError):
    """A command named a session the database does not hold."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    inserted: int
    """Events stored by this call."""
    duplicates: int
    """Events already stored (re-delivery, a TikTok re-send after reconnect, or twice in the
    batch): skipped, not an error."""
    refused: int = 0
    """Events of users a GDPR erasure named: not stored (``ttlp.db.erasure``)."""


class Store:
    """Batched, idempotent writes and the session reads of replay, over one ``AsyncEngine``.

    The engine should come from ``ttlp.db.engine.create_engine`` (it encodes JSON with msgspec,
    which the event writer relies on).
    """

    def __init__(self, engine: AsyncEngine, *, pseudonym_salt: str | None = None) -> None:
        """``pseudonym_salt``: PSEUDONYM_SALT (None: the database's), to recognise the users
        GDPR erasures named (``ttlp.db.erasure.ErasedSubjects``)."""
        self.engine = engine
        self.erased = ErasedSubjects(pseudonym_salt)
        dialect = engine.dialect.name
        # The dialects' own INSERT: ON CONFLICT and RETURNING, rendered for each backend.
        self._insert: Callable[[Table], _Insert]
        # The two hot INSERTs (one statement per batch), and a timestamp's form in their rows.
        self._insert_events: _BatchInsert
        self._insert_frames: _BatchInsert
        self._time: Callable[[datetime], Any]
        # A row's time from the ISO text it was read from and its datetime (the hot rows).
        self._row_time: Callable[[str, datetime], Any]
        batch_insert: type[_UnnestInsert] | type[_ValuesInsert]
        if dialect == "postgresql":
            self._insert, batch_insert, self._time = postgresql.insert, _UnnestInsert, _same
            self._row_time = _parsed
        elif dialect == "sqlite":
            self._insert, batch_insert, self._time = sqlite.insert, _ValuesInsert, sqlite_datetime
            self._row_time = sqlite_time
        else:
            raise ConfigError(f"unsupported database {dialect!r}: use PostgreSQL or SQLite")
        self._insert_events = batch_insert.of(
            engine.dialect, tables.events, _EVENT_COLUMNS, "event_id"
        )
        self._insert_frames = batch_insert.of(
            engine.dialect, tables.raw_frames, _FRAME_COLUMNS, "id", _FRAME_BATCH_COLUMNS
        )
        # SQLite: every write transaction of ours, a trip to the file's one writer thread each.
        # SQLite takes one writer at a time; two of ours (the archive and the storage consumer)
        # meeting at its lock would wait in its busy handler's sleeps (1, 2, 5 ... 100 ms): they
        # queue in that thread instead.
        self._writer = sqlite_writer(engine) if dialect == "sqlite" else None
        self._upsert_users = self._users_upsert()
        self._upsert_sessions = self._sessions_upsert()
        self._upsert_streams = self._streams_upsert()

    @property
    def write_engine(self) -> Engine:
        """The synchronous engine the batch writes run on (its events show their statements):
        the SQLite writer's own, or the async engine's ``sync_engine`` on PostgreSQL."""
        return self._writer.engine if self._writer is not None else self.engine.sync_engine

    # -- writes ------------------------------------------------------------------------------
    async def archive_frames(self, frames: Sequence[RawFrame | RawEnvelope]) -> int:
        """Append raw frames to the archive (replay reads these); returns rows inserted.

        A ``RawEnvelope`` (a bus entry) is stored with ``data`` as received; a ``RawFrame``'s
        ``data`` is encoded. A frame already archived (same session, type and seqNo) is skipped.
        The frames' sessions and streams are created when missing, so a session can be replayed
        even if none of its frames became an event.
        """
        if not frames:
            return 0
        received = datetime.now(UTC)
        timed = [
            (frame, parse_iso(frame.timestamp), parse_iso(frame.ingested_at)) for frame in frames
        ]
        time, row_time = self._time, self._row_time
        rows = [
            _frame_row(frame, row_time(frame.timestamp, at), row_time(frame.ingested_at, ingested))
            for frame, at, ingested in timed
        ]

        def archive(conn: Connection) -> int:
            inserted = self._insert_frames.count(conn, rows, {"received_at": time(received)})
            if inserted:
                _upsert(conn, self._upsert_streams, _streams_from_frames(timed))
                _upsert(conn, self._upsert_sessions, _sessions_from_frames(timed))
            return inserted

        return await self._write(archive)

    async def write_events(self, events: Sequence[UnifiedEvent]) -> WriteResult:
        """Store a batch of events in one transaction; maintain users, sessions and streams.

        Already stored events (same eventId, or a live event whose stream, type and seqNo
        another live session holds) are skipped; only newly inserted events count towards
        users, sessions and streams, so a re-delivered batch changes nothing.

        Events of a user a GDPR erasure named are refused (``refused``), live ones included
        (the subject asked not to be processed), and count nowhere: the erased users known
        here are left out first; after the INSERT, in the same transaction, one
        ``max(gdpr_erasures.id)`` tells whether an erasure committed since they were read (a
        backlog written by a replica that had not heard of it), and what it names is taken
        back before users and sessions are counted (``ttlp.db.erasure``).
        """
        kept = self.erased.keep(events)
        refused = len(events) - len(kept)
        if not kept:
            return WriteResult(0, 0, refused)
        timed = [(event, parse_iso(event.timestamp), _ts_opt(event.ingested_at)) for event in kept]
        row_time = self._row_time
        rows = [
            _event_row(
                event,
                row_time(event.timestamp, at),
                None if ingested is None else row_time(cast(str, event.ingested_at), ingested),
            )
            for event, at, ingested in timed
        ]

        def write(conn: Connection) -> tuple[set[str], int]:
            stored = set(self._insert_events(conn, rows, {}))
            late_refused = 0
            if stored and self.erased.refresh(conn):
                late = [
                    event
                    for event, _, _ in timed
                    if event.event_id in stored and self.erased.is_erased(event.user.user_id)
                ]
                if late:
                    taken = {event.event_id for event in late}
                    conn.execute(delete(tables.events).where(tables.events.c.event_id.in_(taken)))
                    stored -= taken
                    late_refused = len(late)
            fresh = _first_of_each(timed, stored)
            _upsert(conn, self._upsert_users, _users_from_events(fresh))
            _upsert(conn, self._upsert_streams, _streams_from_events(fresh))
            _upsert(conn, self._upsert_sessions, _sessions_from_events(fresh))
            return stored, late_refused

        stored, late_refused = await self._write(write)
        refused += late_refused
        duplicates = len(events) - refused - len(stored)
        return WriteResult(inserted=len(stored), duplicates=duplicates, refused=refused)

    async def create_replay_session(self, new_session_id: str, source_session_id: str) -> None:
        """Create the replay session ``new_session_id`` of ``source_session_id``.

        Copies stream, provider and handle; ``meta = {"replayedFrom": source}``. Creating the
        same replay session twice is a no-op; an unknown source raises
        ``SessionNotFoundError``.
        """
        s = tables.sessions
        source = (
            select(
                literal(new_session_id, s.c.id.type),
                s.c.stream_id,
                literal("replay", s.c.type.type),
                s.c.provider,
                s.c.unique_id,
                bindparam("created_at", datetime.now(UTC), type_=DateTime(timezone=True)),
                bindparam("meta", {"replayedFrom": source_session_id}, type_=s.c.meta.type),
            )
            # The WHERE also keeps SQLite's parser from reading ON CONFLICT as a join clause.
            .where(s.c.id == source_session_id)
        )
        columns = ["id", "stream_id", "type", "provider", "unique_id", "created_at", "meta"]
        stmt = self._insert(s).from_select(columns, source).on_conflict_do_nothing()

        def create(conn: Connection) -> str | None:
            conn.execute(stmt)
            return conn.scalar(select(s.c.id).where(s.c.id == source_session_id))

        if await self._write(create) is None:
            raise SessionNotFoundError(
                f"session {source_session_id} is not in the database: check the session id "
                "(a replay needs a session whose frames were archived)"
            )

    async def close_interrupted_sessions(self, quiet_since: datetime | None = None) -> list[str]:
        """Close the live sessions a crash left open (no DISCONNECTED or stream end came): ended
        at their last event (their start when they have none), ``meta.interrupted`` true.

        ``quiet_since``: only sessions with nothing ingested after it (another ingest replica
        may still be feeding the others; ingest time, not TikTok's: a recorded session fed
        through the mock carries old TikTok times); None: every open live session (one process,
        just started). Returns the ids closed."""
        s, e = tables.sessions, tables.events
        mine = e.c.session_id == s.c.id
        last_event = select(func.max(e.c.timestamp)).where(mine).scalar_subquery()
        last_ingested = select(func.max(e.c.ingested_at)).where(mine).scalar_subquery()
        query = select(
            s.c.id,
            s.c.created_at,
            s.c.meta,
            last_event.label("last"),
            last_ingested.label("ingested"),
        ).where(s.c.type == "live", s.c.ended_at.is_(None))

        def close(conn: Connection) -> list[str]:
            closed: list[str] = []
            for row in conn.execute(query).all():
                ended = row.last or row.created_at
                heard = row.ingested or ended
                if quiet_since is not None and as_utc(heard) > quiet_since:
                    continue
                meta = {**(row.meta or {}), "interrupted": True}
                conn.execute(
                    update(s)
                    .where(s.c.id == row.id, s.c.ended_at.is_(None))
                    .values(ended_at=ended, meta=meta)
                )
                closed.append(row.id)
            return closed

        return await self._write(close)

    # -- reads -------------------------------------------------------------------------------
    async def iter_session_frames(
        self, session_id: str, batch_size: int = 1000
    ) -> AsyncIterator[list[RawFrame]]:
        """The archived frames of a session in arrival order, ``batch_size`` at a time.

        Keyset-paged on ``raw_frames.id``, with the connection returned between pages so a
        slow consumer (paced replay) holds no database resources.
        """
        f = tables.raw_frames
        query = (
            select(
                f.c.id,
                f.c.stream_id,
                f.c.session_id,
                f.c.source,
                f.c.type,
                f.c.seq_no,
                f.c.timestamp,
                f.c.ingested_at,
                f.c.data,
                f.c.provider,
                f.c.unique_id,
            )
            .where(
                f.c.session_id == session_id,
                f.c.id > bindparam("after"),
                f.c.archived_at.is_(None),  # retention has archived it: hidden, as from views
            )
            .order_by(f.c.id)
            .limit(batch_size)
        )
        after = 0
        while True:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query, {"after": after})).all()
            if not rows:
                return
            yield [_frame_from_row(row) for row in rows]
            if len(rows) < batch_size:
                return
            after = rows[-1].id

    async def count_session_frames(self, session_id: str) -> int:
        f = tables.raw_frames
        return await self._count(select(func.count()).where(f.c.session_id == session_id))

    async def totals(self) -> dict[str, int]:
        """Row counts per table (for ``ttlp status``)."""
        counts: dict[str, int] = {}
        async with self.engine.connect() as conn:
            for table in (
                tables.streams,
                tables.sessions,
                tables.raw_frames,
                tables.events,
                tables.users,
            ):
                counts[table.name] = int(
                    await conn.scalar(select(func.count()).select_from(table)) or 0
                )
        return counts

    # -- helpers -------------------------------------------------------------------------------
    async def _write(self, body: Callable[[Connection], _T]) -> _T:
        """``body(connection)`` in one write transaction: on SQLite in its writer's thread, a
        single trip from the event loop (``ttlp.db.engine.SqliteWriter``); on PostgreSQL
        through ``run_sync`` on an async connection."""
        if self._writer is not None:
            return await self._writer.run(body)
        async with self.engine.begin() as conn:
            return await conn.run_sync(body)

    async def _count(self, query: Select[int]) -> int:
        async with self.engine.connect() as conn:
            return int(await conn.scalar(query) or 0)

    def _users_upsert(self) -> _Insert:
        u = tables.users.c
        ins = self._insert(tables.users)
        new = ins.excluded
        newer = new.last_seen >= u.last_seen

        def latest(column: str) -> ColumnElement[Any]:
            mine, theirs = u[column], new[column]
            return case((newer, func.coalesce(theirs, mine)), else_=func.coalesce(mine, theirs))

        return ins.on_conflict_do_update(
            index_elements=[u.user_id],
            set_={
                "unique_id": case((newer, new.unique_id), else_=u.unique_id),
                "display_name": latest("display_name"),
                "avatar_url": latest("avatar_url"),
                "first_seen": _earlier(u.first_seen, new.first_seen),
                "last_seen": _later(u.last_seen, new.last_seen),
                "event_count": u.event_count + new.event_count,
            },
        )

    def _sessions_upsert(self) -> _Insert:
        s = tables.sessions.c
        ins = self._insert(tables.sessions)
        new = ins.excluded
        return ins.on_conflict_do_update(
            index_elements=[s.id],
            set_={
                "provider": func.coalesce(s.provider, new.provider),
                "unique_id": func.coalesce(s.unique_id, new.unique_id),
                "created_at": _earlier(s.created_at, new.created_at),
                "ended_at": _later(s.ended_at, new.ended_at),
            },
            # Touch the row only when something changes (most batches change nothing).
            where=or_(
                and_(s.provider.is_(None), new.provider.is_not(None)),
                and_(s.unique_id.is_(None), new.unique_id.is_not(None)),
                _is_earlier(new.created_at, s.created_at),
                _is_later(new.ended_at, s.ended_at),
            ),
        )

    def _streams_upsert(self) -> _Insert:
        t = tables.streams.c
        ins = self._insert(tables.streams)
        new = ins.excluded
        return ins.on_conflict_do_update(
            index_elements=[t.id],
            set_={
                "unique_id": func.coalesce(t.unique_id, new.unique_id),
                "started_at": _earlier(t.started_at, new.started_at),
                "ended_at": _later(t.ended_at, new.ended_at),
            },
            where=or_(
                and_(t.unique_id.is_(None), new.unique_id.is_not(None)),
                _is_earlier(new.started_at, t.started_at),
                _is_later(new.ended_at, t.ended_at),
            ),
        )


def _upsert(conn: Connection, stmt: _Insert, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(stmt, rows)


# -- SQL expressions (portable: CASE, since SQLite's MIN/MAX return NULL on a NULL argument) ----
def _is_later(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[bool]:
    """``a`` is set and ``b`` is unset or earlier."""
    return and_(a.is_not(None), or_(b.is_(None), a > b))


def _is_earlier(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[bool]:
    """``a`` is set and ``b`` is unset or later."""
    return and_(a.is_not(None), or_(b.is_(None), a < b))


def _earlier(current: ColumnElement[Any], new: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((_is_earlier(new, current), new), else_=current)


def _later(current: ColumnElement[Any], new: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((_is_later(new, current), new), else_=current)


# -- batch INSERTs: one statement per batch ------------------------------------------------------
class _BatchInsert(Protocol):
    def __call__(
        self, conn: Connection, rows: list[_Row], per_batch: dict[str, Any]
    ) -> Sequence[Any]:
        """Insert ``rows`` (``per_batch``: one value each for the whole batch), skipping
        conflicts; → the ``key`` column of the rows inserted (in no particular order)."""
        ...

    def count(self, conn: Connection, rows: list[_Row], per_batch: dict[str, Any]) -> int:
        """Insert ``rows`` as ``__call__`` does; → how many were inserted."""
        ...


@dataclass(frozen=True)
class _UnnestInsert:
    """PostgreSQL: ``INSERT INTO t (...) SELECT ... FROM unnest(<one array per column>)``.

    SQLAlchemy's insertmanyvalues renders a multi-row VALUES and processes every parameter of
    every row in Python, the largest CPU cost of a batch; with one array parameter per column,
    asyncpg encodes the whole batch in compiled code. Strings travel as ``text[]`` (the
    column's length check still applies on assignment, where a ``varchar(n)`` cast would
    truncate) and JSON as text the server parses; ``per_batch`` columns take one value for
    every row (asyncpg's timestamp encoding is comparatively slow: encode it once). ``unnest``
    yields rows in array order, so ``id`` keeps the arrival order as the VALUES list did.
    """

    statement: TextClause
    columns: tuple[str, ...]

    @classmethod
    def of(
        cls,
        dialect: Dialect,
        table: Table,
        columns: tuple[str, ...],
        key: str,
        per_batch: Sequence[str] = (),
    ) -> _UnnestInsert:
        quote = dialect.identifier_preparer.quote
        arrays, values = [], []
        for name in columns:
            column = table.c[name]
            if isinstance(column.type, JSON):
                arrays.append(f"CAST(:{name} AS text[])")
                values.append(f"{quote(name)}::jsonb")
            elif isinstance(column.type, String):
                arrays.append(f"CAST(:{name} AS text[])")
                values.append(quote(name))
            else:
                arrays.append(f"CAST(:{name} AS {column.type.compile(dialect)}[])")
                values.append(quote(name))
        for name in per_batch:
            values.append(f"CAST(:{name} AS {table.c[name].type.compile(dialect)})")
        names = ", ".join(quote(name) for name in columns)
        targets = ", ".join(quote(name) for name in (*columns, *per_batch))
        statement = text(
            f"INSERT INTO {quote(table.name)} ({targets}) SELECT {', '.join(values)} "
            f"FROM unnest({', '.join(arrays)}) AS batch({names}) "
            f"ON CONFLICT DO NOTHING RETURNING {quote(key)}"
        )
        return cls(statement, columns)

    def __call__(
        self, conn: Connection, rows: list[_Row], per_batch: dict[str, Any]
    ) -> Sequence[Any]:
        arrays = zip(*rows, strict=True)
        params = {name: list(values) for name, values in zip(self.columns, arrays, strict=True)}
        result = conn.execute(self.statement, params | per_batch)
        return result.scalars().all()

    def count(self, conn: Connection, rows: list[_Row], per_batch: dict[str, Any]) -> int:
        return len(self(conn, rows, per_batch))


SQLITE_MAX_VARIABLES: Final = 32_766
"""SQLite's default limit on a statement's parameters (since 3.32)."""
EXACT_ROWS: Final = 32
"""Batches up to this many rows go in one statement of exactly their size (``chunk_sizes``)."""


@dataclass(frozen=True)
class _ValuesInsert:
    """SQLite: a multi-row ``INSERT ... VALUES (?, ...), ... ON CONFLICT DO NOTHING`` with the
    values bound by the driver as they are.

    SQLAlchemy renders the same statement (insertmanyvalues) but type-processes every value of
    every row in Python (each datetime formatted through a dict, each JSON document through
    its serializer). Measured on 20,000 events of the bundled protobuf session in batches of
    500, three runs each: 74-77 µs of CPU per event through SQLAlchemy, 61-67 µs here; most of
    the rest is SQLite keeping the events table's ten indexes (12-14 µs per row without them).
    The rows come ready for the driver: timestamps in SQLAlchemy's own SQLite storage form
    (``sqlite_datetime``: reads parse them, and bound datetimes compare with them, as before),
    JSON documents as text; the parameters are one flat tuple, in statements under SQLite's
    parameter limit. ``per_batch`` values are repeated in every row.

    No ``RETURNING``: sqlite3 steps a statement once per row it returns, and releases the GIL
    around every step, so a batch of 500 events and its frames handed the GIL between the
    writer thread and the busy event loop about a thousand times, each hand-over waiting up to
    the interpreter's switch interval. A statement is now one step, and its change count says
    what it inserted: when that is every row of the statement (the rule), the rows' ``key``
    values are the answer; when some rows were skipped, the ``count`` newest of the rows
    holding those keys are the ones it inserted (the table's id is ``AUTOINCREMENT``: rows
    inserted later have larger ids than every row before them). Measured in the embedded
    benchmark, interleaved three runs each: see README, "Where the pipeline stands".
    """

    head: str
    row: str
    width: int
    newest: str
    """``SELECT key ... WHERE key IN (...) ORDER BY id DESC LIMIT ?``, to format with the
    ``IN`` list's placeholders (only for a statement that skipped some of its rows)."""
    key_index: int | None
    """Where ``key`` is in a row (None: not one of its columns; only ``count`` then)."""

    @classmethod
    def of(
        cls,
        dialect: Dialect,
        table: Table,
        columns: tuple[str, ...],
        key: str,
        per_batch: Sequence[str] = (),
    ) -> _ValuesInsert:
        if not table.dialect_options["sqlite"]["autoincrement"]:
            raise TypeError(f"{table.name}: the batch insert needs its id AUTOINCREMENT")
        id_column = table.autoincrement_column
        assert id_column is not None
        quote = dialect.identifier_preparer.quote
        names = (*columns, *per_batch)
        return cls(
            head=f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) VALUES ",
            row=f"({', '.join('?' * len(names))})",
            width=len(names),
            newest=(
                f"SELECT {quote(key)} FROM {quote(table.name)} WHERE {quote(key)} IN ({{}}) "
                f"ORDER BY {quote(id_column.name)} DESC LIMIT ?"
            ),
            key_index=columns.index(key) if key in columns else None,
        )

    @functools.lru_cache(maxsize=64)  # noqa: B019 (a few instances, alive for the process)
    def sql(self, rows: int) -> str:
        return self.head + ", ".join([self.row] * rows) + " ON CONFLICT DO NOTHING"

    def __call__(
        self, conn: Connection, rows: list[_Row], per_batch: dict[str, Any]
    ) -> Sequence[Any]:
        index = self.key_index
        if index is None:
            raise TypeError("this insert's key is not one of its columns: use count()")
        inserted: list[Any] = []
        for chunk, count in self._insert(conn, rows, per_batch):
            if count == len(chunk):
                inserted.extend([row[index] for row in chunk])
            elif count:
                keys = [row[index] for row in chunk]
                sql = self.newest.format(", ".join("?" * len(keys)))
                inserted.extend(conn.exec_driver_sql(sql, (*keys, count)).scalars().all())
        return inserted

    def count(self, conn: Connection, rows: list[_Row], per_batch: dict[str, Any]) -> int:
        return sum(count for _, count in self._insert(conn, rows, per_batch))

    def _insert(
        self, conn: Connection, rows: list[_Row], per_batch: dict[str, Any]
    ) -> Iterator[tuple[list[_Row], int]]:
        """Each statement's rows, and how many of them it inserted."""
        extra = tuple(per_batch.values())
        start = 0
        for size in chunk_sizes(len(rows), SQLITE_MAX_VARIABLES // self.width):
            chunk = rows[start : start + size]
            start += size
            params = tuple(chain.from_iterable([row + extra for row in chunk] if extra else chunk))
            yield chunk, conn.exec_driver_sql(self.sql(size), params).rowcount


def chunk_sizes(total: int, most: int) -> Iterator[int]:
    """``total`` rows as statements of at most ``most`` rows: up to ``EXACT_ROWS`` in one
    statement of exactly that many, more in powers of two, the largest first, down to a rest
    of at most ``EXACT_ROWS`` (500 → 256, 128, 64, 32, 20).

    Every distinct row count is a distinct statement, and sqlite3 keeps the last 128 a
    connection prepared; one of 450 rows holds 0.7 MB of SQLite's heap. With any count from 1 to
    500 (batches are as large as what was waiting), the embedded pipeline's SQLite heap grew
    from 12 to 40 MB in two minutes at 1,000 events/s, and would reach about 90 MB per
    connection and table. Here at most 32 small statements and a few powers of two are kept
    (about 2 MB a table), and the batches of a live pipeline (tens of events) still go in one
    statement. Powers of two all the way down split them in up to six, each a round trip
    through the event loop: in single runs of the benchmark's embedded pipeline, the commit
    p99 at 1,000 events/s with 100 SSE clients was 384 ms that way, 179 ms with up to 64 rows
    exact (peak RSS 205 MB), and 66-71 ms with 32 (195-196 MB)."""
    most = max(most, 1)
    top = 1 << (most.bit_length() - 1)
    while total > min(EXACT_ROWS, most):
        size = min(top, 1 << (total.bit_length() - 1))
        yield size
        total -= size
    if total:
        yield total


def sqlite_datetime(value: datetime) -> str:
    """A UTC datetime as SQLAlchemy stores it in SQLite (``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def sqlite_time(text: str, parsed: datetime) -> str:
    """``sqlite_datetime(parsed)``, where ``parsed`` is ``parse_iso(text)``: cut from the text
    when it is in ttlp's own form (``now_iso``'s UTC milliseconds, ``…T19:30:00.250Z``, which
    every frame and event carries), formatted otherwise. 0.2 against 1.5 µs for the
    datetime's ``replace`` and ``isoformat``, four times for every event on the embedded
    default (its timestamp and ingestedAt, in the frame's row and the event's)."""
    if (
        len(text) == 24
        and text[23] == "Z"
        and text[19] == "."
        and text[10] == "T"
        and text[4] == text[7] == "-"  # not a week date (2024-W47-4T…), which parses too
    ):
        return f"{text[:10]} {text[11:23]}000"
    return sqlite_datetime(parsed)


def _parsed(text: str, parsed: datetime) -> datetime:
    return parsed


def _same(value: Any) -> Any:
    return value


# -- rows --------------------------------------------------------------------------------------
def _ts_opt(value: str | UnsetType) -> datetime | None:
    return None if value is UNSET else parse_iso(value)


def _opt(value: Any) -> Any:
    return None if value is UNSET else value


def _frame_row(frame: RawFrame | RawEnvelope, at: Any, ingested: Any) -> _Row:
    data = frame.data_json if isinstance(frame, RawEnvelope) else encode(frame.data).decode()
    return (
        frame.session_id,
        frame.stream_id,
        frame.source,
        frame.type,
        frame.seq_no,
        at,
        ingested,
        _opt(frame.provider),
        _opt(frame.unique_id),
        data,
    )


_any_json: Final = msgspec.json.Decoder()


def _frame_from_row(row: Any) -> RawFrame:
    return RawFrame(
        schema_version=RAW_SCHEMA_VERSION,
        stream_id=row.stream_id,
        session_id=row.session_id,
        source=row.source,
        type=row.type,
        seq_no=row.seq_no,
        timestamp=to_iso(row.timestamp),
        ingested_at=to_iso(row.ingested_at),
        data=_any_json.decode(row.data),
        provider=UNSET if row.provider is None else row.provider,
        unique_id=UNSET if row.unique_id is None else row.unique_id,
    )


def _event_row(event: UnifiedEvent, at: Any, ingested: Any) -> _Row:
    event_type = _TAGS[type(event)]
    return (
        event.event_id,
        event.session_id,
        event.stream_id,
        event_type,
        event.trigger_id,
        event.schema_version,
        event.user.user_id,
        event.payload.raw_type if isinstance(event, RawEvent) else event_type,
        _opt(event.seq_no),
        at,
        ingested,
        event.source,
        encode(event).decode(),
    )


def _first_of_each(events: Iterable[_TimedEvent], stored: set[str]) -> list[_TimedEvent]:
    """The events whose rows were inserted, each once (a batch may carry an event twice)."""
    pending = set(stored)
    fresh = []
    for timed in events:
        if timed[0].event_id in pending:
            pending.discard(timed[0].event_id)
            fresh.append(timed)
    return fresh


def _session_time(source: str, at: datetime, ingested: datetime | None) -> datetime:
    """When a session saw something: TikTok time for live, ingest time for a replay."""
    if source == "replay" and ingested is not None:
        return ingested
    return at


def _users_from_events(events: Iterable[_TimedEvent]) -> list[dict[str, Any]]:
    users: dict[str, dict[str, Any]] = {}
    for event, at, _ in events:
        user = event.user
        if user.user_id == NO_USER or event.source != "live":
            continue
        row = users.get(user.user_id)
        if row is None:
            row = users[user.user_id] = {
                "user_id": user.user_id,
                "unique_id": user.unique_id,
                "display_name": None,
                "avatar_url": None,
                "first_seen": at,
                "last_seen": at,
                "event_count": 0,
            }
        row["event_count"] += 1
        row["first_seen"] = min(row["first_seen"], at)
        if at >= row["last_seen"]:
            row["last_seen"] = at
            row["unique_id"] = user.unique_id
            row["display_name"] = _opt(user.display_name) or row["display_name"]
            row["avatar_url"] = _opt(user.avatar_url) or row["avatar_url"]
        else:
            row["display_name"] = row["display_name"] or _opt(user.display_name) or None
            row["avatar_url"] = row["avatar_url"] or _opt(user.avatar_url) or None
    # Sorted keys: concurrent store replicas lock rows in the same order (no deadlocks).
    return [users[key] for key in sorted(users)]


def _sessions_from_events(events: Iterable[_TimedEvent]) -> list[dict[str, Any]]:
    sessions: dict[str, dict[str, Any]] = {}
    for event, timestamp, ingested in events:
        at = _session_time(event.source, timestamp, ingested)
        row = sessions.get(event.session_id)
        if row is None:
            row = sessions[event.session_id] = _session_row(
                event.session_id, event.stream_id, event.source, at
            )
        row["created_at"] = min(row["created_at"], at)
        if isinstance(event, ConnectedEvent):
            row["provider"] = event.payload.provider
            row["unique_id"] = _opt(event.payload.unique_id) or row["unique_id"]
        elif _TAGS[type(event)] in _SESSION_CLOSERS:
            row["ended_at"] = at if row["ended_at"] is None else max(row["ended_at"], at)
    return [sessions[key] for key in sorted(sessions)]


def _streams_from_events(events: Iterable[_TimedEvent]) -> list[dict[str, Any]]:
    streams: dict[str, dict[str, Any]] = {}
    for event, at, _ in events:
        row = streams.get(event.stream_id)
        if row is None:
            row = streams[event.stream_id] = _stream_row(event.stream_id, at)
        row["started_at"] = min(row["started_at"], at)
        if isinstance(event, ConnectedEvent):
            row["unique_id"] = _opt(event.payload.unique_id) or row["unique_id"]
        elif isinstance(event, StreamEndEvent):
            row["ended_at"] = at if row["ended_at"] is None else max(row["ended_at"], at)
    return [streams[key] for key in sorted(streams)]


def _sessions_from_frames(frames: Iterable[_TimedFrame]) -> list[dict[str, Any]]:
    sessions: dict[str, dict[str, Any]] = {}
    for frame, timestamp, ingested in frames:
        at = _session_time(frame.source, timestamp, ingested)
        row = sessions.get(frame.session_id)
        if row is None:
            row = sessions[frame.session_id] = _session_row(
                frame.session_id, frame.stream_id, frame.source, at
            )
        row["created_at"] = min(row["created_at"], at)
        row["provider"] = row["provider"] or _opt(frame.provider)
        row["unique_id"] = row["unique_id"] or _opt(frame.unique_id)
    return [sessions[key] for key in sorted(sessions)]


def _streams_from_frames(frames: Iterable[_TimedFrame]) -> list[dict[str, Any]]:
    streams: dict[str, dict[str, Any]] = {}
    for frame, at, _ in frames:
        row = streams.get(frame.stream_id)
        if row is None:
            row = streams[frame.stream_id] = _stream_row(frame.stream_id, at)
        row["started_at"] = min(row["started_at"], at)
        row["unique_id"] = row["unique_id"] or _opt(frame.unique_id)
    return [streams[key] for key in sorted(streams)]


def _session_row(session_id: str, stream_id: str, source: str, at: datetime) -> dict[str, Any]:
    return {
        "id": session_id,
        "stream_id": stream_id,
        "type": source,
        "provider": None,
        "unique_id": None,
        "created_at": at,
        "ended_at": None,
    }


def _stream_row(stream_id: str, at: datetime) -> dict[str, Any]:
    return {"id": stream_id, "unique_id": None, "started_at": at, "ended_at": None}
