"""The storage behaviour suite: the same Store semantics on SQLite and PostgreSQL (DESIGN §4, §6).

Each test states one behaviour and asserts the rows it leaves. Events and frames are built
with the contract Structs through the factories of ``tests.support.events``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.events import (
    OTHER_STREAM,
    STREAM,
    chat,
    connected,
    disconnected,
    frame,
    gift,
    new_session,
    raw_event,
    soon,
    stream_end,
    user,
    when,
)
from tests.support.paths import FIXTURES
from ttlp.aio import as_utc
from ttlp.bus.base import Entry
from ttlp.contracts import events as ev
from ttlp.db import store as store_module
from ttlp.db import tables
from ttlp.db.engine import WRITER_SWITCH_INTERVAL_S, create_engine, normalize_database_url
from ttlp.db.migrate import check_ready, head_revision
from ttlp.db.queries import Queries
from ttlp.db.store import SessionNotFoundError, Store
from ttlp.errors import DatabaseError, PermanentError
from ttlp.roles.store import make_archive_handler

pytestmark = pytest.mark.integration

DLQ_FRAMES = FIXTURES / "dlq-frames.ndjson"


# -- helpers -----------------------------------------------------------------------------------
@pytest.fixture
def store(db_engine: AsyncEngine) -> Store:
    return Store(db_engine)


@pytest.fixture
def queries(db_engine: AsyncEngine) -> Queries:
    return Queries(db_engine)


async def rows(store: Store, query: Any) -> list[Any]:
    async with store.engine.connect() as conn:
        return list((await conn.execute(query)).all())


def refusal(parse: Any, fields: dict[str, str]) -> str | None:
    """The ``PermanentError`` reason ``parse`` refuses ``fields`` with; ``None`` if accepted."""
    try:
        parse(fields)
    except PermanentError as exc:
        return exc.reason
    return None


async def event_ids(store: Store) -> list[str]:
    e = tables.events
    return [r.event_id for r in await rows(store, select(e.c.event_id).order_by(e.c.id))]


# -- schema ------------------------------------------------------------------------------------
async def test_migrated_schema_matches_the_table_definitions(db_engine: AsyncEngine) -> None:
    def compare(sync_conn: Any) -> tuple[list[Any], dict[str, Any]]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        indexes = {i["name"]: i for i in inspect(sync_conn).get_indexes("events")}
        return compare_metadata(context, tables.metadata), indexes

    async with db_engine.connect() as conn:
        diff, indexes = await conn.run_sync(compare)
    assert diff == []
    dedupe = indexes["ux_events_live_seq"]
    assert dedupe["unique"]
    assert dedupe["column_names"] == ["stream_id", "raw_type", "seq_no"]
    (where,) = [str(v) for k, v in dedupe["dialect_options"].items() if k.endswith("_where")]
    assert "live" in where
    assert "CONNECTED" in where


async def test_a_migrated_database_is_ready(db_engine: AsyncEngine) -> None:
    await check_ready(db_engine)  # raises when not
    async with db_engine.connect() as conn:
        version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    assert version == head_revision()


# -- events: idempotence and dedupe -----------------------------------------------------------
async def test_writing_the_same_batch_twice_stores_it_once(store: Store, queries: Queries) -> None:
    session = new_session()
    batch = [chat(session, 11, who=user(1)), chat(session, 12, who=user(2)), chat(session, 13)]

    first = await store.write_events(batch)
    again = await store.write_events(batch)

    assert (first.inserted, first.duplicates) == (3, 0)
    assert (again.inserted, again.duplicates) == (0, 3)
    assert await event_ids(store) == [e.event_id for e in batch]
    assert (await queries.user("1001") or {})["event_count"] == 2
    assert (await queries.user("1002") or {})["event_count"] == 1


async def test_a_batch_partly_stored_before_counts_only_its_new_events(
    store: Store, queries: Queries
) -> None:
    """The new events among known ones are told apart (on SQLite, after an INSERT that
    skipped some of its rows): only they count towards users."""
    session = new_session()
    known = [chat(session, 1, who=user(1)), chat(session, 2, who=user(2))]
    await store.write_events(known)
    fresh = [chat(session, 3, who=user(3)), chat(session, 4, who=user(4))]

    result = await store.write_events([known[0], fresh[0], known[1], fresh[1]])

    assert (result.inserted, result.duplicates) == (2, 2)
    assert await event_ids(store) == [e.event_id for e in known + fresh]
    counts = [((await queries.user(f"100{n}")) or {}).get("event_count") for n in (1, 2, 3, 4)]
    assert counts == [1, 1, 1, 1]


async def test_an_event_twice_in_one_batch_is_stored_and_counted_once(
    store: Store, queries: Queries
) -> None:
    event = chat(new_session(), 7)

    result = await store.write_events([event, event])

    assert (result.inserted, result.duplicates) == (1, 1)
    assert (await store.totals())["events"] == 1
    assert (await queries.user("1001") or {})["event_count"] == 1


async def test_a_batch_larger_than_one_statement_is_stored_whole_in_order(
    store: Store, queries: Queries, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a batch goes in statements of at most ``SQLITE_MAX_VARIABLES`` parameters
    (lowered here to 7 rows a statement; one array per column on PostgreSQL): a duplicate in
    a later statement is still found, and ids keep the batch's order."""
    monkeypatch.setattr(store_module, "SQLITE_MAX_VARIABLES", 7 * len(store_module._EVENT_COLUMNS))
    session = new_session()
    batch = [chat(session, seq, who=user(seq % 7), t=seq / 100) for seq in range(3000)]
    batch.insert(2900, batch[5])

    result = await store.write_events(batch)

    assert (result.inserted, result.duplicates) == (3000, 1)
    assert await event_ids(store) == [e.event_id for e in batch[:2900] + batch[2901:]]
    assert (await queries.user("1001") or {})["event_count"] == len(range(1, 3000, 7))
    frames = [frame(session, seq, t=seq / 100) for seq in range(3000)]
    assert await store.archive_frames(frames + frames[:10]) == 3000


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_writes_each_batch_in_one_trip_to_its_writer_thread(
    db_engine: AsyncEngine,
) -> None:
    """On SQLite a batch's statements all run in the file's writer thread, in one transaction,
    and the event loop's engine takes no part: through aiosqlite every statement was three or
    four trips between the loop and its thread (16-23 for a batch of events), each waiting for
    a busy loop to resume it."""
    engine = db_engine
    store = Store(engine)
    threads: list[threading.Thread] = []
    begins: list[object] = []
    checkouts: list[object] = []

    def executed(*_: Any) -> None:
        threads.append(threading.current_thread())

    event.listen(store.write_engine, "before_cursor_execute", executed)
    event.listen(store.write_engine, "begin", begins.append)
    event.listen(engine.sync_engine.pool, "checkout", lambda *_: checkouts.append(1))
    session = new_session()
    result = await store.write_events([chat(session, seq) for seq in range(40)])
    archived = await store.archive_frames([frame(session, seq) for seq in range(40)])

    assert (result.inserted, archived) == (40, 40)
    assert len(begins) == 2  # one transaction a batch
    assert len({thread.ident for thread in threads}) == 1
    assert threads[0].name.startswith("ttlp-sqlite-writer")
    assert threads[0] is not threading.current_thread()
    assert checkouts == []  # no connection of the loop's engine was used
    # ...and hands the GIL back and forth with the loop at a short switch interval.
    assert sys.getswitchinterval() <= WRITER_SWITCH_INTERVAL_S


async def test_batches_of_any_size_share_a_few_insert_statements(store: Store) -> None:
    """Every distinct INSERT is a statement the driver prepares and keeps (sqlite3 keeps the
    last 128 per connection, one of 450 rows holds 0.7 MB): batches of 1 to 130 rows use the
    small exact sizes and two powers of two (64, 128) per table on SQLite, one statement on
    PostgreSQL (arrays)."""
    statements: set[str] = set()

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith(("INSERT INTO events ", "INSERT INTO raw_frames ")):
            statements.add(statement)

    event.listen(store.write_engine, "before_cursor_execute", seen)
    try:
        session, seq = new_session(), 0
        for size in range(1, 131):
            await store.write_events([chat(session, seq + i) for i in range(size)])
            await store.archive_frames([frame(session, seq + i) for i in range(size)])
            seq += size
    finally:
        event.remove(store.write_engine, "before_cursor_execute", seen)

    assert (await store.totals())["events"] == seq == 130 * 131 // 2
    for table in ("events", "raw_frames"):
        shapes = [s for s in statements if s.startswith(f"INSERT INTO {table} ")]
        most = store_module.EXACT_ROWS + 2 if store.engine.dialect.name == "sqlite" else 1
        assert 1 <= len(shapes) <= most


async def test_stored_times_compare_with_bound_times_to_the_microsecond(store: Store) -> None:
    """The store writes timestamps in the form SQLAlchemy binds them (on SQLite a text
    column, compared as text): a query with a bound datetime finds exactly the event."""
    session = new_session()
    event = msgspec.structs.replace(chat(session, 1), timestamp="2025-03-01T20:00:00.123456+02:00")
    await store.write_events([event])
    await store.archive_frames(
        [msgspec.structs.replace(frame(session, 1), timestamp=event.timestamp)]
    )
    at = datetime(2025, 3, 1, 18, 0, 0, 123456, tzinfo=UTC)
    for table in (tables.events, tables.raw_frames):
        found = select(func.count()).select_from(table).where(table.c.session_id == session)
        async with store.engine.connect() as conn:
            assert await conn.scalar(found.where(table.c.timestamp == at)) == 1
            assert await conn.scalar(found.where(table.c.timestamp >= at)) == 1
            later = at + timedelta(microseconds=1)
            assert await conn.scalar(found.where(table.c.timestamp >= later)) == 0
            stored = await conn.scalar(
                select(table.c.timestamp).where(table.c.session_id == session)
            )
        assert as_utc(stored) == at


async def test_live_resend_after_reconnect_is_not_stored_again(
    store: Store, queries: Queries
) -> None:
    old, new = new_session(), new_session()
    await store.write_events([chat(old, 500, t=1), raw_event(old, 501, "WebcastHourlyRank")])

    # The reconnect starts a new session; TikTok re-sends the recent messages.
    result = await store.write_events(
        [
            chat(new, 500, t=1),
            raw_event(new, 501, "WebcastHourlyRank"),
            chat(new, 502, t=2),
        ]
    )

    assert (result.inserted, result.duplicates) == (1, 2)
    assert await queries.session_event_count(old) == 2
    assert await event_ids(store) == [
        chat(old, 500).event_id,
        raw_event(old, 501, "WebcastHourlyRank").event_id,
        chat(new, 502).event_id,
    ]
    assert (await queries.user("1001") or {})["event_count"] == 2


async def test_same_seq_no_in_another_stream_or_raw_type_is_stored(store: Store) -> None:
    session = new_session()
    result = await store.write_events(
        [
            chat(session, 42),
            chat(new_session(), 42, stream=OTHER_STREAM),
            raw_event(session, 42, "WebcastPollMessage"),
        ]
    )

    assert (result.inserted, result.duplicates) == (3, 0)


async def test_replay_events_are_stored_although_their_seq_nos_are_known(
    store: Store, queries: Queries
) -> None:
    live, replay = new_session(), new_session()
    await store.write_events([chat(live, 900), chat(live, 901)])

    result = await store.write_events(
        [chat(replay, 900, source="replay"), chat(replay, 901, source="replay")]
    )

    assert (result.inserted, result.duplicates) == (2, 0)
    assert await queries.session_event_count(replay) == 2


async def test_lifecycle_events_of_each_new_session_are_stored(
    store: Store, queries: Queries
) -> None:
    first, second = new_session(), new_session()
    await store.write_events([connected(first, seq=0), disconnected(first, seq=1, t=60)])

    # Lifecycle seqNos are per-session counters: the same numbers come back every session.
    result = await store.write_events([connected(second, seq=0, t=61)])

    assert (result.inserted, result.duplicates) == (1, 0)
    assert await queries.session_event_count(second) == 1


async def test_event_data_holds_the_full_unified_event(store: Store) -> None:
    event = gift(new_session(), 3, who=user(4, name="Four"))
    await store.write_events([event])

    e = tables.events
    (row,) = await rows(
        store, select(e.c.event_data, e.c.event_type, e.c.raw_type, e.c.trigger_id, e.c.seq_no)
    )
    assert msgspec.convert(row.event_data, ev.UnifiedEvent) == event
    assert (row.event_type, row.raw_type, row.trigger_id, row.seq_no) == ("GIFT", "GIFT", 2, 3)


async def test_raw_events_keep_their_tiktok_type_in_raw_type(store: Store) -> None:
    await store.write_events([raw_event(new_session(), 1, "WebcastGoalUpdateMessage")])

    e = tables.events
    assert await rows(store, select(e.c.event_type, e.c.raw_type)) == [
        ("RAW", "WebcastGoalUpdateMessage")
    ]


async def test_concurrent_writes_of_one_batch_store_it_once(store: Store, queries: Queries) -> None:
    session = new_session()
    batch = [chat(session, seq, who=user(seq % 3)) for seq in range(50)]

    results = await asyncio.gather(*(store.write_events(batch) for _ in range(3)))

    assert sum(r.inserted for r in results) == 50
    assert (await store.totals())["events"] == 50
    counts = [(await queries.user(str(1000 + n)) or {})["event_count"] for n in range(3)]
    assert counts == [17, 17, 16]


# -- users -------------------------------------------------------------------------------------
async def test_users_track_first_and_last_seen_count_and_latest_name(
    store: Store, queries: Queries
) -> None:
    session = new_session()
    await store.write_events(
        [
            chat(session, 1, who=user(1, name="Old Name", avatar="https://a/1.png"), t=10),
            chat(session, 2, who=user(1, name="New Name"), t=20),
        ]
    )
    # A late batch with an older event: counted, but its name does not win.
    await store.write_events([chat(session, 3, who=user(1, name="Ancient Name"), t=5)])
    # A newer event without a display name keeps the one we have.
    await store.write_events([chat(session, 4, who=user(1), t=30)])

    row = await queries.user("1001")
    assert row is not None
    assert (row["first_seen"], row["last_seen"], row["event_count"]) == (when(5), when(30), 4)
    assert (row["display_name"], row["avatar_url"]) == ("New Name", "https://a/1.png")
    assert row["unique_id"] == "viewer1"


async def test_the_no_user_id_and_replays_do_not_count_as_users(store: Store) -> None:
    await store.write_events([connected(new_session())])
    await store.write_events([chat(new_session(), 77, who=user(9), source="replay")])

    assert await rows(store, select(tables.users.c.user_id)) == []


# -- sessions and streams ----------------------------------------------------------------------
async def test_connected_and_disconnected_maintain_the_session(
    store: Store, queries: Queries
) -> None:
    session = new_session()
    await store.write_events([connected(session, seq=0, t=2), chat(session, 100, t=3)])
    opened = await queries.session(session)
    await store.write_events([chat(session, 101, t=40), disconnected(session, seq=1, t=50)])
    closed = await queries.session(session)

    assert opened is not None
    assert closed is not None
    assert (opened["type"], opened["provider"], opened["unique_id"]) == (
        "live",
        "euler",
        "streamer",
    )
    assert (opened["stream_id"], opened["created_at"], opened["ended_at"]) == (
        STREAM,
        when(2),
        None,
    )
    assert (closed["created_at"], closed["ended_at"]) == (when(2), when(50))
    stream = await queries.stream(STREAM)
    assert stream is not None
    assert (stream["unique_id"], stream["started_at"], stream["ended_at"]) == (
        "streamer",
        when(2),
        None,
    )


async def test_stream_end_closes_the_session_and_the_stream(store: Store, queries: Queries) -> None:
    session = new_session()
    await store.write_events([connected(session, t=0), chat(session, 5, t=1)])
    await store.write_events([stream_end(session, seq=6, t=3600)])

    session_row = await queries.session(session)
    stream = await queries.stream(STREAM)
    assert session_row is not None
    assert stream is not None
    assert session_row["ended_at"] == when(3600)
    assert (stream["started_at"], stream["ended_at"]) == (when(0), when(3600))


async def test_events_from_before_the_first_batch_move_created_at_back(
    store: Store, queries: Queries
) -> None:
    session = new_session()
    await store.write_events([chat(session, 2, t=100)])
    await store.write_events([chat(session, 1, t=90)])

    row = await queries.session(session)
    assert row is not None
    assert row["created_at"] == when(90)


# -- raw archive -------------------------------------------------------------------------------
async def test_archive_keeps_arrival_order_and_skips_frames_it_has(store: Store) -> None:
    session = new_session()
    first = await store.archive_frames([frame(session, 30), frame(session, 10), frame(session, 20)])
    second = await store.archive_frames([frame(session, 10), frame(session, 40)])

    f = tables.raw_frames
    stored = await rows(store, select(f.c.seq_no).order_by(f.c.id))
    assert (first, second) == (3, 1)
    assert [r.seq_no for r in stored] == [30, 10, 20, 40]
    assert await store.count_session_frames(session) == 4


async def test_archive_stores_data_as_the_json_text_it_arrived_in(store: Store) -> None:
    session = new_session()
    obj = {"content": "héllo 👋", "n": 12345678901234567, "nested": {"a": [1, 2]}}
    await store.archive_frames([frame(session, 1, data=obj), frame(session, 2, data="CgQIARAB")])

    f = tables.raw_frames
    stored = await rows(store, select(f.c.data).order_by(f.c.id))
    assert [r.data for r in stored] == [ev.encode(obj).decode(), '"CgQIARAB"']


async def test_archive_creates_the_session_and_stream_when_missing(
    store: Store, queries: Queries
) -> None:
    session = new_session()
    await store.archive_frames([frame(session, 2, t=5), frame(session, 1, t=4)])

    row = await queries.session(session)
    stream = await queries.stream(STREAM)
    assert row is not None
    assert stream is not None
    assert (row["type"], row["provider"], row["unique_id"]) == ("live", "mock", "streamer")
    assert row["created_at"] == when(4)
    assert (stream["unique_id"], stream["started_at"]) == ("streamer", when(4))


async def test_iter_session_frames_returns_the_session_in_pages_as_archived(store: Store) -> None:
    session, other = new_session(), new_session()
    frames = [
        frame(session, seq, t=seq, data="AAEC" if seq % 5 == 0 else None)
        for seq in (7, 3, *range(10, 33))
    ]
    await store.archive_frames(frames[:12])
    await store.archive_frames([frame(other, 1)])
    await store.archive_frames(frames[12:])

    pages = [page async for page in store.iter_session_frames(session, batch_size=10)]

    assert [len(p) for p in pages] == [10, 10, 5]
    assert [f for page in pages for f in page] == frames


async def test_iter_session_frames_of_an_unknown_session_is_empty(store: Store) -> None:
    assert [page async for page in store.iter_session_frames(new_session())] == []


async def test_the_archive_handler_stores_data_as_received_and_skips_invalid_frames(
    store: Store,
) -> None:
    session = new_session()
    fields = ev.frame_to_fields(frame(session, 1))
    # Not msgspec's own spelling: whitespace and an escape survive as they arrived.
    spaced = '{ "content": "h\\u00e9llo", "n": 1.5e3 }'
    entries = [
        Entry("1-0", {**fields, "seqNo": "1", "data": spaced}),
        Entry("2-0", {**fields, "seqNo": "2", "data": '"CgQIARAB"'}),
        Entry("3-0", {**fields, "seqNo": "3", "data": "{not json"}),
        Entry("4-0", {**fields, "seqNo": "4", "data": "[1, 2]"}),
        Entry("5-0", {**fields, "seqNo": "5", "data": '{"n": 1e999}'}),
        Entry("6-0", {**fields, "seqNo": "abc"}),
        Entry("7-0", {**fields, "seqNo": "7", "surprise": "field"}),
        Entry("8-0", {k: v for k, v in fields.items() if k != "data"} | {"seqNo": "8"}),
        Entry("9-0", None),
    ]

    failures = await make_archive_handler(store, 1_048_576)(entries)

    # The normalizer dead-letters the invalid ones; the archive only skips them.
    assert failures == ()
    f = tables.raw_frames
    stored = await rows(store, select(f.c.seq_no, f.c.data).order_by(f.c.id))
    assert stored == [(1, spaced), (2, '"CgQIARAB"')]
    (page,) = [page async for page in store.iter_session_frames(session)]
    assert [p.data for p in page] == [{"content": "héllo", "n": 1500.0}, "CgQIARAB"]
    assert page[0] == msgspec.structs.replace(frame(session, 1), data=page[0].data)


async def test_archive_keeps_an_oversized_frame_as_its_size_and_hash(store: Store) -> None:
    session = new_session()
    fields = ev.frame_to_fields(frame(session, 1))
    big = json.dumps({"blob": "x" * 5000})
    entries = [Entry("1-0", {**fields, "data": big}), Entry("2-0", {**fields, "seqNo": "2"})]

    assert await make_archive_handler(store, 4096)(entries) == ()

    f = tables.raw_frames
    stored = await rows(store, select(f.c.seq_no, f.c.data).order_by(f.c.id))
    assert json.loads(stored[0][1]) == {
        "ttlpOmitted": {"bytes": len(big), "sha256": hashlib.sha256(big.encode()).hexdigest()}
    }
    assert stored[1] == (2, fields["data"])


def test_raw_envelope_mirrors_raw_frame() -> None:
    """The archive validates with ``RawEnvelope``: every field as in ``RawFrame`` but ``data``."""

    def fields(cls: type[msgspec.Struct]) -> dict[str, Any]:
        info = msgspec.inspect.type_info(cls)
        assert isinstance(info, msgspec.inspect.StructType)
        return {f.encode_name: (f.type, f.required, f.default) for f in info.fields}

    frame_fields, envelope_fields = fields(ev.RawFrame), fields(ev.RawEnvelope)
    assert envelope_fields.pop("data")[0] == msgspec.inspect.StrType()
    frame_fields.pop("data")
    assert envelope_fields == frame_fields


@pytest.mark.parametrize(
    "case",
    [json.loads(line) for line in DLQ_FRAMES.read_text(encoding="utf-8").splitlines()],
    ids=lambda case: case["case"],
)
def test_envelope_from_fields_refuses_what_frame_from_fields_refuses(
    case: dict[str, Any],
) -> None:
    fields = case["fields"]
    variants = [
        fields,
        {**fields, "data": "[1]"},
        {**fields, "data": "null"},
        {**fields, "data": '{"n": 2e308}'},
        {**fields, "data": ""},
        {**fields, "data": " {} "},
        {**fields, "seqNo": "-1"},
        {k: v for k, v in fields.items() if k != "data"},
    ]
    for variant in variants:
        reason = refusal(ev.frame_from_fields, variant)
        ev._validated.clear()  # each validates in full, not from what the other found
        assert refusal(ev.envelope_from_fields, variant) == reason, variant
        if reason is None:
            assert ev.envelope_from_fields(variant).data_json == variant["data"]


async def test_an_overlong_value_is_refused_not_truncated(store: Store, backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    long_type = "WebcastX" + "x" * 200  # raw_type is VARCHAR(128)

    with pytest.raises(DBAPIError, match="too long"):
        await store.write_events([raw_event(new_session(), 1, long_type)])
    with pytest.raises(DBAPIError, match="too long"):
        await store.archive_frames([frame(new_session(), 1, type_=long_type)])
    assert await store.totals() == dict.fromkeys(
        ("streams", "sessions", "raw_frames", "events", "users"), 0
    )


async def test_frame_times_come_back_in_utc(store: Store) -> None:
    session = new_session()
    original = msgspec.structs.replace(frame(session, 1), timestamp="2025-03-01T20:00:00.123+02:00")
    await store.archive_frames([original])

    (page,) = [page async for page in store.iter_session_frames(session)]
    assert page[0].timestamp == "2025-03-01T18:00:00.123Z"


# -- replay sessions ---------------------------------------------------------------------------
async def test_create_replay_session_copies_the_source_session(
    store: Store, queries: Queries
) -> None:
    source, replay = new_session(), new_session()
    await store.write_events([connected(source)])

    await store.create_replay_session(replay, source)
    await store.create_replay_session(replay, source)  # twice is harmless

    row = await queries.session(replay)
    assert row is not None
    assert (row["type"], row["stream_id"], row["provider"], row["unique_id"]) == (
        "replay",
        STREAM,
        "euler",
        "streamer",
    )
    assert row["meta"] == {"replayedFrom": source}
    assert row["ended_at"] is None
    assert (await store.totals())["sessions"] == 2


async def test_replay_session_times_follow_ingest_not_tiktok_time(
    store: Store, queries: Queries
) -> None:
    source, replay = new_session(), new_session()
    await store.write_events([connected(source)])
    await store.create_replay_session(replay, source)
    created = (await queries.session(replay) or {})["created_at"]

    # Replayed frames keep TikTok's time (T0) and get a new ingest time.
    replayed = msgspec.structs.replace(connected(replay, source="replay"), ingested_at=soon())
    await store.write_events([replayed])

    assert (await queries.session(replay) or {})["created_at"] == created
    assert created > when(0)


async def test_create_replay_session_of_an_unknown_session_raises(store: Store) -> None:
    missing = new_session()
    with pytest.raises(SessionNotFoundError, match=missing):
        await store.create_replay_session(new_session(), missing)
    assert (await store.totals())["sessions"] == 0


# -- readiness ---------------------------------------------------------------------------------
@pytest.fixture
def empty_database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return normalize_database_url(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path)
    factory = request.getfixturevalue("pg_database_factory")
    return normalize_database_url(factory(), tmp_path)


async def test_an_unmigrated_database_is_refused_with_what_to_run(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        with pytest.raises(DatabaseError, match="ttlp migrate") as raised:
            await check_ready(engine)
    finally:
        await engine.dispose()
    assert f"is not migrated (at revision none, need {head_revision()})" in str(raised.value)


async def test_a_database_of_a_newer_ttlp_is_refused(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
            await conn.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
        with pytest.raises(DatabaseError, match=r"at revision 9999, which this version of ttlp"):
            await check_ready(engine)
    finally:
        await engine.dispose()


async def test_an_unreachable_database_is_reported_without_the_password() -> None:
    url = normalize_database_url("postgresql://ttlp:Sup3r-s3cret@127.0.0.1:1/ttlp", Path())
    engine = create_engine(url)
    try:
        with pytest.raises(DatabaseError) as raised:
            await check_ready(engine, timeout_s=5)
    finally:
        await engine.dispose()
    message = str(raised.value)
    assert message.startswith("cannot reach the database at postgresql+asyncpg://ttlp:***@")
    assert "check DATABASE_URL" in message
    assert "Sup3r-s3cret" not in message
    assert "\n" not in message


async def test_an_unopenable_sqlite_file_is_reported_as_unreachable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}")  # a directory, not a file
    try:
        with pytest.raises(DatabaseError, match="cannot reach the database"):
            await check_ready(engine)
    finally:
        await engine.dispose()
