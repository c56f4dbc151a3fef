"""Export: a selection of the stored events or raw frames, streamed in arrival order.

Readers walk ``events.id`` / ``raw_frames.id`` with a keyset (``WHERE id > :after ORDER BY id
LIMIT n``), the connection returned between pages, so an export of any size holds one page in
memory and no database resources while its reader is slow (a download over a thin line).
Rows that retention archived (``archived_at`` set) are past retention and hidden from every
view: they are never exported. Writers turn pages into bytes, as an async iterator the CLI
writes to a file or stdout and the API streams as a download:

- ``ndjson``: one UnifiedEvent v1 per line, decoded from the stored row and encoded in the
  contract's field order (the same bytes from SQLite and PostgreSQL, whose JSONB reorders keys);
- ``csv``: flat columns a spreadsheet opens (``CSV_COLUMNS``), UTF-8 with a byte-order mark;
- ``parquet``: the same columns typed, plus the full event JSON (needs ``pyarrow``: the optional
  ``parquet`` extra);
- ``raw``: the archived raw.v1 frames, every one (lifecycle and control frames included), with
  exactly the fields the mock provider reads back, ``data`` as the JSON text it was archived in:
  what ``ttlp import`` re-processes.

Every NDJSON line escapes U+2028, U+2029 and U+0085 (JSON allows them raw inside strings, but
``str.splitlines`` breaks lines at them, which would cut a chat message in two).
"""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import io
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, TypeVar

import msgspec
from sqlalchemy import ColumnElement, Row, Select, Table, Text, bindparam, cast, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.aio import as_utc, to_iso
from ttlp.contracts.events import (
    EVENT_CLASSES,
    RAW_SCHEMA_VERSION,
    ChatEvent,
    GiftEvent,
    GiftPayload,
    LikeEvent,
    UnifiedEvent,
    decode_event,
    encode,
)
from ttlp.db.queries import Queries
from ttlp.db.tables import events, raw_frames, sessions, streams
from ttlp.errors import ConfigError, InputError, NotFoundError

Format = Literal["ndjson", "csv", "parquet", "raw"]
FORMATS: Final[tuple[Format, ...]] = ("ndjson", "csv", "parquet", "raw")
PAGE_ROWS: Final = 1000
"""Rows per keyset page (a page of events is about a megabyte)."""
PARQUET_ROW_GROUP: Final = 10_000
"""Rows per Parquet row group: what the writer holds before it writes (about 10 MB)."""
CSV_COLUMNS: Final = (
    "time",
    "session",
    "type",
    "user_id",
    "handle",
    "display_name",
    "text",
    "gift",
    "count",
    "coins",
    "event_id",
)
MEDIA_TYPES: Final[dict[Format, str]] = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "raw": "application/x-ndjson",
}
SUFFIXES: Final[dict[Format, str]] = {
    "ndjson": ".ndjson",
    "csv": ".csv",
    "parquet": ".parquet",
    "raw": ".raw.ndjson",
}
PYARROW_MISSING: Final = (
    "Parquet needs pyarrow, an optional extra: pip install 'ttlp[parquet]' "
    "(or export NDJSON or CSV)"
)
_LINE_BREAKS: Final = (
    (b"\xe2\x80\xa8", b"\\u2028"),
    (b"\xe2\x80\xa9", b"\\u2029"),
    (b"\xc2\x85", b"\\u0085"),
)
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP "CSV injection")."""
_TAGS: Final[dict[type, str]] = {cls: tag for tag, cls in EVENT_CLASSES.items()}

_T = TypeVar("_T")
Progress = Callable[[int], None]
"""Called with the number of rows of each page as it is written."""


@dataclass(frozen=True)
class Selection:
    """What to export, combined with AND; nothing set = everything."""

    session_ids: tuple[str, ...] = ()
    stream_ids: tuple[str, ...] | None = None
    """Rooms (one room, or every room of a streamer); None = any."""
    since: datetime | None = None
    """From this TikTok time on (inclusive)."""
    until: datetime | None = None
    """Before this TikTok time (exclusive)."""

    def conditions(self, table: Table) -> list[ColumnElement[bool]]:
        """The WHERE of ``events`` or ``raw_frames`` (both have these columns)."""
        c = table.c
        where: list[ColumnElement[bool]] = [c.archived_at.is_(None)]
        if self.session_ids:
            where.append(c.session_id.in_(self.session_ids))
        if self.stream_ids is not None:
            where.append(c.stream_id.in_(self.stream_ids))
        if self.since is not None:
            where.append(c.timestamp >= as_utc(self.since))
        if self.until is not None:
            where.append(c.timestamp < as_utc(self.until))
        return where


async def select_what(
    engine: AsyncEngine,
    *,
    session_ids: Sequence[str] = (),
    stream_id: str | None = None,
    streamer: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Selection:
    """The ``Selection`` the CLI's options name, checked: a session, room or streamer the
    database does not know is a ``NotFoundError`` naming it (an empty export would hide a typo)."""
    if stream_id is not None and streamer is not None:
        raise InputError("give a room (--stream) or a streamer (--streamer), not both")
    if since is not None and until is not None and as_utc(since) >= as_utc(until):
        raise InputError("--since must be before --until")
    wanted = tuple(dict.fromkeys(session_ids))
    async with engine.connect() as conn:
        if wanted:
            known = set(
                (await conn.execute(select(sessions.c.id).where(sessions.c.id.in_(wanted))))
                .scalars()
                .all()
            )
            if missing := [s for s in wanted if s not in known]:
                raise NotFoundError(f"no session {', '.join(missing)} in the database")
        rooms: tuple[str, ...] | None = None
        if stream_id is not None:
            if await conn.scalar(select(streams.c.id).where(streams.c.id == stream_id)) is None:
                raise NotFoundError(f"no stream (room) {stream_id} in the database")
            rooms = (stream_id,)
    if streamer is not None:
        handle = streamer.removeprefix("@")
        rooms = tuple(await Queries(engine).rooms_of(handle))
        if not rooms:
            raise NotFoundError(f"no stream of @{handle} in the database")
    return Selection(session_ids=wanted, stream_ids=rooms, since=since, until=until)


# -- readers -----------------------------------------------------------------------------------
async def count(engine: AsyncEngine, selection: Selection, *, raw: bool) -> int:
    """How many rows the export will write (for a progress bar)."""
    table = raw_frames if raw else events
    query = select(func.count()).select_from(table).where(*selection.conditions(table))
    async with engine.connect() as conn:
        return int(await conn.scalar(query) or 0)


async def _pages(
    engine: AsyncEngine, query: Select[Any], id_column: ColumnElement[int], page_rows: int
) -> AsyncIterator[Sequence[Row[Any]]]:
    """``query``'s rows in ``id`` order, a page at a time, with a fresh connection per page;
    only rows stored when the export began (a running pipeline's new rows would make a live
    session's download endless)."""
    async with engine.connect() as conn:
        last = await conn.scalar(select(func.max(id_column)))
    if last is None:
        return
    paged = (
        query.where(id_column > bindparam("after"), id_column <= last)
        .order_by(id_column)
        .limit(page_rows)
    )
    after = 0
    while True:
        async with engine.connect() as conn:
            rows = (await conn.execute(paged, {"after": after})).all()
        if rows:
            yield rows
        if len(rows) < page_rows:
            return
        after = rows[-1].id


@dataclass(frozen=True, slots=True)
class StoredEvent:
    at: datetime
    """The row's ``timestamp`` (TikTok's time of the event)."""
    event: UnifiedEvent


async def event_pages(
    engine: AsyncEngine, selection: Selection, *, page_rows: int = PAGE_ROWS
) -> AsyncIterator[list[StoredEvent]]:
    """The selected events in arrival order, each decoded into its UnifiedEvent v1 Struct."""
    query = select(
        events.c.id, events.c.timestamp, cast(events.c.event_data, Text).label("doc")
    ).where(*selection.conditions(events))
    async for rows in _pages(engine, query, events.c.id, page_rows):
        yield [StoredEvent(row.timestamp, decode_event(row.doc)) for row in rows]


async def frame_lines(
    engine: AsyncEngine, selection: Selection, *, page_rows: int = PAGE_ROWS
) -> AsyncIterator[list[bytes]]:
    """The selected raw frames in arrival order, each as its raw.v1 NDJSON line."""
    f = raw_frames.c
    query = select(
        f.id,
        f.stream_id,
        f.session_id,
        f.source,
        f.type,
        f.seq_no,
        f.timestamp,
        f.ingested_at,
        f.data,
        f.provider,
        f.unique_id,
    ).where(*selection.conditions(raw_frames))
    async for rows in _pages(engine, query, f.id, page_rows):
        yield [raw_line(row) for row in rows]


def raw_line(row: Any) -> bytes:
    """A ``raw_frames`` row as the raw.v1 NDJSON line the mock provider reads: the fields in
    the contract's order, times as the archive renders them for replay, ``data`` verbatim."""
    frame: dict[str, Any] = {
        "schemaVersion": RAW_SCHEMA_VERSION,
        "streamId": row.stream_id,
        "sessionId": row.session_id,
        "source": row.source,
        "type": row.type,
        "seqNo": row.seq_no,
        "timestamp": to_iso(row.timestamp),
        "ingestedAt": to_iso(row.ingested_at),
        "data": msgspec.Raw(row.data),
    }
    if row.provider is not None:
        frame["provider"] = row.provider
    if row.unique_id is not None:
        frame["uniqueId"] = row.unique_id
    return line(encode(frame))


def line(document: bytes) -> bytes:
    """One NDJSON line: the document with the characters ``splitlines`` breaks at escaped."""
    return escape_line_breaks(document) + b"\n"


def escape_line_breaks(text: bytes) -> bytes:
    """U+2028, U+2029 and U+0085 as JSON escapes: valid JSON may hold them raw only inside a
    string, where the escape means the same; ``str.splitlines`` would break the line there."""
    for raw, escaped in _LINE_BREAKS:
        if raw in text:
            text = text.replace(raw, escaped)
    return text


# -- flat rows (CSV, Parquet) --------------------------------------------------------------------
FlatRow = tuple[
    datetime, str, str, str, str, str | None, str | None, str | None, int | None, int | None, str
]
"""One event in ``CSV_COLUMNS`` order."""


def counted_coins(payload: GiftPayload) -> int:
    """The coins a gift frame adds to a total, as analytics counts them
    (``Queries.analytics``): a streak once, on its end frame, which carries the streak's
    total (diamonds × repeat count); its earlier frames, and a late frame of a streak already
    closed, add nothing. A gift that says nothing of streaks is a single, complete gift."""
    if payload.streak_end is not msgspec.UNSET:
        counted = payload.streak_end
    else:
        counted = payload.streak_active is msgspec.UNSET or not payload.streak_active
    return payload.coins if counted else 0


def flat(stored: StoredEvent) -> FlatRow:
    """time, session, type, user id, handle, display name, chat text, gift name, count (a
    gift's repeat count, a like's count), coins (``counted_coins``), event id."""
    event = stored.event
    user = event.user
    text = gift = None
    number = coins = None
    if isinstance(event, ChatEvent):
        text = event.payload.message
    elif isinstance(event, GiftEvent):
        gift = event.payload.gift_name
        number = event.payload.gift_count
        coins = counted_coins(event.payload)
    elif isinstance(event, LikeEvent):
        number = event.payload.like_count
    display = user.display_name if isinstance(user.display_name, str) else None
    return (
        as_utc(stored.at),
        event.session_id,
        _TAGS[type(event)],
        user.user_id,
        user.unique_id,
        display,
        text,
        gift,
        number,
        coins,
        event.event_id,
    )


def csv_cell(value: Any) -> Any:
    """A CSV cell: times as ISO 8601 UTC; text that a spreadsheet would run as a formula gets
    a leading apostrophe (chat text and names come from anyone in a TikTok room)."""
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


# -- writers -----------------------------------------------------------------------------------
async def ndjson(pages: AsyncIterator[list[StoredEvent]]) -> AsyncIterator[bytes]:
    async for page in pages:
        yield b"".join(line(encode(stored.event)) for stored in page)


async def lines(pages: AsyncIterator[list[bytes]]) -> AsyncIterator[bytes]:
    async for page in pages:
        yield b"".join(page)


async def csv_bytes(pages: AsyncIterator[list[StoredEvent]]) -> AsyncIterator[bytes]:
    """RFC 4180 CSV (CRLF), UTF-8 with a byte-order mark: Excel reads it as UTF-8 then, and
    LibreOffice, Numbers and Python's ``utf-8-sig`` skip it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff".encode() + drain(buffer)
    async for page in pages:
        writer.writerows([csv_cell(value) for value in flat(stored)] for stored in page)
        yield drain(buffer)


def drain(buffer: io.StringIO) -> bytes:
    """What a CSV writer wrote into ``buffer`` so far, as UTF-8; the buffer starts afresh."""
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode()


def pyarrow_available() -> bool:
    """Whether ``pyarrow`` is installed (looked up, not imported: it takes a while)."""
    return importlib.util.find_spec("pyarrow") is not None


def require_pyarrow() -> None:
    """``ConfigError`` saying how to get Parquet when ``pyarrow`` is not installed."""
    if not pyarrow_available():
        raise ConfigError(PYARROW_MISSING)


class _Sink(io.RawIOBase):
    """Where the Parquet writer writes: bytes collected until ``take``, and the position it
    asks for (so the file streams out row group by row group, never seeking)."""

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


async def parquet_bytes(pages: AsyncIterator[list[StoredEvent]]) -> AsyncIterator[bytes]:
    """The CSV's columns typed (time: timestamp UTC, count and coins: int64, the rest text)
    plus ``event``, the full UnifiedEvent JSON; written a row group at a time."""
    require_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("time", pa.timestamp("us", tz="UTC")),
            *((name, pa.string()) for name in CSV_COLUMNS[1:8]),
            ("count", pa.int64()),
            ("coins", pa.int64()),
            ("event_id", pa.string()),
            ("event", pa.string()),
        ]
    )
    sink = _Sink()
    writer = pq.ParquetWriter(sink, schema)
    rows: list[tuple[Any, ...]] = []

    def write(batch: list[tuple[Any, ...]]) -> None:
        columns = [list(column) for column in zip(*batch, strict=True)]
        writer.write_table(pa.Table.from_arrays(columns, schema=schema))

    try:
        async for page in pages:
            rows.extend((*flat(stored), encode(stored.event).decode()) for stored in page)
            if len(rows) >= PARQUET_ROW_GROUP:
                await asyncio.to_thread(write, rows)
                rows = []
                yield sink.take()
        if rows:
            await asyncio.to_thread(write, rows)
    finally:
        writer.close()
    yield sink.take()


def export(
    engine: AsyncEngine,
    selection: Selection,
    fmt: Format,
    *,
    progress: Progress | None = None,
    page_rows: int = PAGE_ROWS,
) -> AsyncIterator[bytes]:
    """The export of ``selection`` as ``fmt``, in chunks of bytes (``raw``: the frames)."""
    if fmt == "parquet":
        require_pyarrow()
    if fmt == "raw":
        return lines(_counted(frame_lines(engine, selection, page_rows=page_rows), progress))
    pages = _counted(event_pages(engine, selection, page_rows=page_rows), progress)
    if fmt == "csv":
        return csv_bytes(pages)
    if fmt == "parquet":
        return parquet_bytes(pages)
    return ndjson(pages)


async def _counted(
    pages: AsyncIterator[list[_T]], progress: Progress | None
) -> AsyncIterator[list[_T]]:
    async for page in pages:
        yield page
        if progress is not None:
            progress(len(page))
