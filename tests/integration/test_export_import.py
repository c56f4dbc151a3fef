"""Export and import on both backends, and moving a database from one to the other (README
"Export, import and moving to PostgreSQL").

A source database is filled as ``ttlp run`` fills one: the ingest role (the mock provider,
faithful), normalize and store, fed a recorded night: the JSON fixture session (plus a chat
whose text starts a spreadsheet formula and holds a line separator), the protobuf fixture as a
second broadcast of the same streamer a day later, a reconnect that re-sends five messages (the
store keeps them once), and a replay of the first session. Expected values are read from the
source database, never typed in.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.databases import BACKENDS, migrated_postgresql_url, sqlite_url
from tests.support.paths import FIXTURES, REPO
from tests.support.processes import Ttlp
from tests.support.readme import code_blocks, commands
from tests.support.services import delete_keys_at, new_key_prefix, run_sync
from tests.support.wait import wait_for
from ttlp.aio import as_utc, parse_iso, to_iso
from ttlp.bus.redis import RedisBus
from ttlp.cli.transfer import ImportReport, import_command
from ttlp.contracts.events import decode_event, decode_raw_frame, encode
from ttlp.db import export as ex
from ttlp.db import tables
from ttlp.db.engine import create_engine, normalize_database_url
from ttlp.db.queries import Queries
from ttlp.errors import InputError, NotFoundError
from ttlp.runtime import ROLES, Context, is_drained, open_context, supervise
from ttlp.settings import Settings

pytestmark = pytest.mark.integration

HANDLE = "luna.beats"
ROOM = "7441234567890123456"
SECOND_ROOM = "7441234567890999999"
FIRST = "3f1c2a9e-6b7d-4e21-9c55-0d8e7a41b2f6"  # the fixture session
SECOND = "5b2d3c4e-1111-4e21-9c55-0d8e7a41b2f6"
RECONNECT = "6c3e4d5f-2222-4e21-9c55-0d8e7a41b2f6"
REPLAY = "7d4f5e60-3333-4e21-9c55-0d8e7a41b2f6"
RESENT = 5
FORMULA_CHAT = '=HYPERLINK("https://example.com")\u2028second line'
WAIT_S = 90.0


def fixture_frames(name: str) -> list[dict[str, Any]]:
    text = (FIXTURES / name).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def shifted(frame: dict[str, Any], by: timedelta, **changes: Any) -> dict[str, Any]:
    out = {**frame, **changes}
    for key in ("timestamp", "ingestedAt"):
        out[key] = to_iso(parse_iso(frame[key]) + by)
    return out


def recorded_night() -> list[dict[str, Any]]:
    first = fixture_frames("raw-frames.ndjson")
    chat_at = next(i for i, f in enumerate(first) if f["type"] == "WebcastChatMessage")
    chat = json.loads(json.dumps(first[chat_at]))
    chat["seqNo"] += 17
    chat["data"]["content"] = FORMULA_CHAT
    first.insert(chat_at + 1, chat)
    second = []
    for frame in fixture_frames("raw-frames-protobuf.ndjson"):
        moved = shifted(frame, timedelta(days=1), sessionId=SECOND, streamId=SECOND_ROOM)
        if isinstance(moved["data"], dict) and "roomId" in moved["data"]:
            moved["data"] = {**moved["data"], "roomId": SECOND_ROOM}
        second.append(moved)
    # A reconnect to the first room: TikTok re-sends recent messages under the new session.
    later = timedelta(hours=2)
    lifecycle = {f["type"]: f for f in first if f["type"].startswith("ControlEvent.")}
    messages = [f for f in first if not f["type"].startswith("ControlEvent.")][:RESENT]
    reconnect = [
        shifted(lifecycle["ControlEvent.CONNECTED"], later, sessionId=RECONNECT, seqNo=1),
        *(shifted(f, later, sessionId=RECONNECT) for f in messages),
        shifted(lifecycle["ControlEvent.DISCONNECTED"], later, sessionId=RECONNECT, seqNo=2),
    ]
    return [*first, *second, *reconnect]


NIGHT = recorded_night()
FIRST_FRAMES = sum(1 for f in NIGHT if f["sessionId"] == FIRST)


def settings_for(url: str, redis_url: str | None, prefix: str, data_dir: Path) -> Settings:
    return Settings.from_env(
        {},
        **{
            "db.url": url,
            "bus.redis_url": redis_url,
            "bus.prefix": prefix,
            "bus.block_ms": 50,
            "data_dir": str(data_dir),
            "ingest.provider": "mock",
            "ingest.mock_fixture": str(data_dir / "night.ndjson"),
            "ingest.mock_loop": False,
        },
    )


async def frames_stored(ctx: Context, frames: int) -> bool:
    assert ctx.engine is not None
    async with ctx.engine.connect() as conn:
        total = await conn.scalar(select(func.count()).select_from(tables.raw_frames))
    return total == frames and await is_drained(ctx)


async def fill(settings: Settings) -> None:
    """The night through ingest (mock) + normalize + store, then a replay of the first
    session, each waited for until every frame is archived and the groups are drained."""
    async with open_context(settings, need_db=True) as ctx:
        stop = asyncio.Event()
        roles = {name: ROLES[name].load() for name in ("ingest", "normalize", "store")}
        running = asyncio.create_task(
            supervise(ctx, roles, grace_s=10, stop=stop, install_signals=False)
        )
        try:
            await wait_for(
                lambda: frames_stored(ctx, len(NIGHT)), timeout=WAIT_S, what="the night stored"
            )
            replay = {"command": "replay", "sessionId": FIRST, "newSessionId": REPLAY}
            await ctx.bus.publish(ctx.keys.control, replay)
            await wait_for(
                lambda: frames_stored(ctx, len(NIGHT) + FIRST_FRAMES),
                timeout=WAIT_S,
                what="the replay stored",
            )
        finally:
            stop.set()
        assert await running == 0


@dataclass(frozen=True)
class Source:
    backend: str
    url: str
    directory: Path


@pytest.fixture(scope="module", params=BACKENDS)
def source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Source]:
    """A database of ``backend`` filled through the pipeline (SQLite on the in-process bus,
    PostgreSQL on Redis), shared by the module's tests (those that change it restore it)."""
    backend = str(request.param)
    directory = tmp_path_factory.mktemp(f"source-{backend}")
    # ASCII JSON: the mock splits its file with str.splitlines, which breaks a line at a raw
    # U+2028 (the export escapes it for the same reason).
    (directory / "night.ndjson").write_text("".join(json.dumps(f) + "\n" for f in NIGHT))
    prefix = new_key_prefix()
    redis_url = None
    if backend == "postgresql":
        url = migrated_postgresql_url(request.getfixturevalue("pg_database_factory"))
        redis_url = str(request.getfixturevalue("redis_url"))
    else:
        url = sqlite_url(directory)
    run_sync(fill(settings_for(url, redis_url, prefix, directory)))
    yield Source(backend, url, directory)
    if redis_url is not None:
        run_sync(delete_keys_at(redis_url, prefix))


@pytest.fixture
async def engine(source: Source) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(source.url)
    try:
        yield eng
    finally:
        await eng.dispose()


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def stored_events(engine: AsyncEngine) -> list[dict[str, Any]]:
    e = tables.events.c
    query = select(e.event_data).where(e.archived_at.is_(None)).order_by(e.id)
    async with engine.connect() as conn:
        return [row.event_data for row in (await conn.execute(query)).all()]


async def stored_frames(engine: AsyncEngine) -> list[dict[str, Any]]:
    f = tables.raw_frames.c
    query = select(tables.raw_frames).where(f.archived_at.is_(None)).order_by(f.id)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [
        {
            "sessionId": r["session_id"],
            "streamId": r["stream_id"],
            "source": r["source"],
            "type": r["type"],
            "seqNo": r["seq_no"],
            "timestamp": to_iso(r["timestamp"]),
            "ingestedAt": to_iso(r["ingested_at"]),
            "provider": r["provider"],
            "uniqueId": r["unique_id"],
            "data": json.loads(r["data"]),
        }
        for r in rows
    ]


def as_dict(struct: Any) -> Any:
    return json.loads(encode(struct))


# -- formats -------------------------------------------------------------------------------------
async def test_ndjson_is_every_stored_event_in_arrival_order(engine: AsyncEngine) -> None:
    body = await collect(ex.export(engine, ex.Selection(), "ndjson", page_rows=7))
    lines = body.decode().split("\n")
    assert lines.pop() == ""  # every line ends with a newline, and there is nothing after
    assert [as_dict(decode_event(line)) for line in lines] == await stored_events(engine)
    assert len(lines) == len(NIGHT) - RESENT + FIRST_FRAMES


async def test_csv_has_the_named_columns_and_a_chat_and_a_gift(engine: AsyncEngine) -> None:
    body = await collect(ex.export(engine, ex.Selection(), "csv", page_rows=7))
    assert body.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    stored = {e["eventId"]: e for e in await stored_events(engine)}
    assert tuple(rows[0]) == ex.CSV_COLUMNS
    assert [r["event_id"] for r in rows] == list(stored)
    chat = next(r for r in rows if stored[r["event_id"]]["payload"].get("message") == FORMULA_CHAT)
    event = stored[chat["event_id"]]
    assert chat == {
        "time": to_iso(parse_iso(event["timestamp"])),
        "session": FIRST,
        "type": "CHAT",
        "user_id": event["user"]["userId"],
        "handle": event["user"]["uniqueId"],
        "display_name": event["user"]["displayName"],
        "text": "'" + FORMULA_CHAT,  # a spreadsheet shows it, never runs it
        "gift": "",
        "count": "",
        "coins": "",
        "event_id": event["eventId"],
    }
    ends = [
        r for r in rows if r["type"] == "GIFT" and stored[r["event_id"]]["payload"].get("streakEnd")
    ]
    big = max(ends, key=lambda r: int(r["coins"]))
    payload = stored[big["event_id"]]["payload"]
    assert (big["gift"], int(big["count"]), int(big["coins"])) == (
        payload["giftName"],
        payload["giftCount"],
        payload["coins"],
    )
    # The coins column adds up as analytics counts coins (a streak once, on its end frame).
    for session in (FIRST, SECOND):
        analytics = await Queries(engine).analytics(
            session_id=session, stream_ids=None, bucket_s=3600, since=None, until=None
        )
        column = sum(int(r["coins"]) for r in rows if r["session"] == session and r["coins"])
        assert column == analytics["coins"] > 0


async def test_parquet_has_typed_columns_and_the_full_event(engine: AsyncEngine) -> None:
    if not ex.pyarrow_available():
        pytest.skip("pyarrow is not installed (the optional extra `ttlp[parquet]`)")
    import pyarrow as pa
    import pyarrow.parquet as pq

    body = await collect(ex.export(engine, ex.Selection(), "parquet", page_rows=7))
    table = pq.read_table(io.BytesIO(body))
    assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("count").type == pa.int64()
    assert table.schema.field("coins").type == pa.int64()
    stored = await stored_events(engine)
    assert [json.loads(doc) for doc in table.column("event").to_pylist()] == stored
    times = table.column("time").to_pylist()
    assert times == [parse_iso(e["timestamp"]) for e in stored]
    csv_body = await collect(ex.export(engine, ex.Selection(), "csv"))
    coins = [r["coins"] for r in csv.DictReader(io.StringIO(csv_body.decode("utf-8-sig")))]
    assert table.column("coins").to_pylist() == [int(c) if c else None for c in coins]


async def test_raw_is_every_archived_frame_as_the_mock_reads_it(engine: AsyncEngine) -> None:
    body = await collect(ex.export(engine, ex.Selection(), "raw", page_rows=7))
    lines = body.decode().splitlines()
    frames = [decode_raw_frame(line) for line in lines]  # raw.v1, as the mock's loader reads
    exported = [{"provider": None, "uniqueId": None, **as_dict(f)} for f in frames]
    assert [{k: v for k, v in f.items() if k != "schemaVersion"} for f in exported] == (
        await stored_frames(engine)
    )
    # The recorded night comes out as it went in, lifecycle frames included.
    written = [json.loads(line) for line in lines if json.loads(line)["sessionId"] != REPLAY]
    assert written == NIGHT
    replayed = [f for f in frames if f.session_id == REPLAY]
    assert len(replayed) == FIRST_FRAMES
    assert {f.source for f in replayed} == {"replay"}


# -- selectors -----------------------------------------------------------------------------------
async def exported_ids(engine: AsyncEngine, **what: Any) -> list[str]:
    selection = await ex.select_what(engine, **what)
    body = await collect(ex.export(engine, selection, "ndjson"))
    return [decode_event(line).event_id for line in body.decode().splitlines()]


async def test_selectors_narrow_the_export(engine: AsyncEngine) -> None:
    stored = await stored_events(engine)

    def ids(keep: Any) -> list[str]:
        return [e["eventId"] for e in stored if keep(e)]

    assert await exported_ids(engine, session_ids=[SECOND]) == ids(
        lambda e: e["sessionId"] == SECOND
    )
    both = await exported_ids(engine, session_ids=[REPLAY, FIRST])
    assert both == ids(lambda e: e["sessionId"] in (FIRST, REPLAY))
    assert await exported_ids(engine, stream_id=SECOND_ROOM) == ids(
        lambda e: e["streamId"] == SECOND_ROOM
    )
    assert await exported_ids(engine, streamer=f"@{HANDLE}") == ids(lambda e: True)
    day = parse_iso(NIGHT[0]["timestamp"]) + timedelta(hours=12)
    later = await exported_ids(engine, since=day)
    assert later == ids(lambda e: parse_iso(e["timestamp"]) >= day)
    assert later
    assert set(later) == set(ids(lambda e: e["sessionId"] == SECOND))
    earlier = await exported_ids(engine, until=day, session_ids=[FIRST, RECONNECT])
    assert earlier == ids(lambda e: e["sessionId"] in (FIRST, RECONNECT))
    raw = await ex.select_what(engine, session_ids=[RECONNECT])
    frames = (await collect(ex.export(engine, raw, "raw"))).decode().splitlines()
    assert len(frames) == RESENT + 2  # the re-sent messages are archived, stored once


async def test_unknown_selectors_are_errors(engine: AsyncEngine) -> None:
    with pytest.raises(NotFoundError, match="no session 00000000-0000-4000-8000-000000000000"):
        await ex.select_what(engine, session_ids=[FIRST, "00000000-0000-4000-8000-000000000000"])
    with pytest.raises(NotFoundError, match=r"no stream \(room\) 123 "):
        await ex.select_what(engine, stream_id="123")
    with pytest.raises(NotFoundError, match="no stream of @nobody"):
        await ex.select_what(engine, streamer="@nobody")
    now = datetime.now(UTC)
    with pytest.raises(InputError, match="--since must be before --until"):
        await ex.select_what(engine, since=now, until=now)


async def test_archived_rows_are_never_exported(engine: AsyncEngine) -> None:
    e, f = tables.events, tables.raw_frames
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(e).where(e.c.session_id == SECOND).values(archived_at=now))
            await conn.execute(update(f).where(f.c.session_id == SECOND).values(archived_at=now))
        events = (await collect(ex.export(engine, ex.Selection(), "ndjson"))).decode()
        frames = (await collect(ex.export(engine, ex.Selection(), "raw"))).decode()
        csv_body = (await collect(ex.export(engine, ex.Selection(), "csv"))).decode()
        assert events
        assert SECOND not in events
        assert SECOND not in frames
        assert SECOND not in csv_body
        assert await ex.count(engine, ex.Selection(), raw=True) == len(frames.splitlines())
    finally:
        async with engine.begin() as conn:
            await conn.execute(update(e).values(archived_at=None))
            await conn.execute(update(f).values(archived_at=None))


# -- moving a database ---------------------------------------------------------------------------
@dataclass
class Snapshot:
    events: dict[str, Any]
    frames: list[str]
    sessions: dict[str, dict[str, Any]]
    streams: dict[str, tuple[Any, ...]]
    users: dict[str, tuple[Any, ...]]


async def snapshot(url: str) -> Snapshot:
    engine = create_engine(normalize_database_url(url, Path.cwd()))
    try:
        frames = sorted(json.dumps(f, sort_keys=True) for f in await stored_frames(engine))
        events = {e["eventId"]: e for e in await stored_events(engine)}
        async with engine.connect() as conn:
            sessions = {
                r["id"]: {
                    **r,
                    "created_at": as_utc(r["created_at"]),
                    "ended_at": r["ended_at"] and as_utc(r["ended_at"]),
                }
                for r in (await conn.execute(select(tables.sessions))).mappings()
            }
            s = tables.streams.c
            streams = {
                r.id: (r.unique_id, as_utc(r.started_at), r.ended_at and as_utc(r.ended_at))
                for r in await conn.execute(select(s.id, s.unique_id, s.started_at, s.ended_at))
            }
            users = {
                r.user_id: (
                    r.unique_id,
                    r.display_name,
                    as_utc(r.first_seen),
                    as_utc(r.last_seen),
                    r.event_count,
                )
                for r in await conn.execute(select(tables.users))
            }
    finally:
        await engine.dispose()
    return Snapshot(events, frames, sessions, streams, users)


def assert_moved(before: Snapshot, after: Snapshot) -> None:
    """Everything the pipeline derives from the frames came along; a replay session lost only
    the link to the session it replayed (raw.v1 has no field for it)."""
    assert after.events == before.events
    assert after.frames == before.frames
    assert after.streams == before.streams
    assert after.users == before.users
    assert set(after.sessions) == set(before.sessions) == {FIRST, SECOND, RECONNECT, REPLAY}
    for session_id, was in before.sessions.items():
        now = after.sessions[session_id]
        if was["type"] == "live":
            assert now == was
            continue
        assert was["meta"] == {"replayedFrom": FIRST}
        assert now["meta"] is None
        # Its start is its first frame's ingest time, moments after the replay was asked for.
        assert timedelta(0) <= now["created_at"] - was["created_at"] < timedelta(seconds=5)
        same = ("stream_id", "type", "provider", "unique_id", "ended_at")
        assert {k: now[k] for k in same} == {k: was[k] for k in same}


def expected_report(before: Snapshot, *, again: bool = False) -> ImportReport:
    frames = len(before.frames)
    return ImportReport(
        lines=frames,
        frames=frames,
        archived=0 if again else frames,
        stored=0 if again else len(before.events),
        duplicates=frames if again else RESENT,
    )


def parse_report(stdout: str) -> ImportReport:
    """The counts ``ttlp import`` prints (its last lines: a recipe prints more before)."""
    numbers = [
        [int(word) for word in line.replace("(", " ").split() if word.isdigit()]
        for line in stdout.splitlines()[-5:]
    ]
    (frames, lines, invalid), (archived, _), (stored, refused), (duplicates,), (dead,) = numbers
    return ImportReport(
        lines=lines,
        frames=frames,
        invalid=invalid,
        archived=archived,
        stored=stored,
        duplicates=duplicates,
        refused=refused,
        dead_lettered=dead,
    )


README_URL = "postgresql://ttlp:secret@db.example/ttlp"


def recipe() -> list[str]:
    """The README's code blocks of the move to PostgreSQL (with a file, with a pipe)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("**Moving from the embedded default to PostgreSQL.**")
    blocks = code_blocks(text[start : text.index("\n## ", start)])
    assert len(blocks) == 2
    assert all(README_URL in block for block in blocks)
    return blocks


def run_recipe(
    block: str, url: str, source: Source, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``block`` run by bash as written, ``ttlp`` being this checkout's, the database URL
    this test's, the embedded default the source's data directory."""
    script = "\n".join(
        [
            "set -euo pipefail",
            f'ttlp() {{ {shlex.quote(sys.executable)} -m ttlp "$@"; }}',
            *commands(block.replace(README_URL, url)),
        ]
    )
    result = subprocess.run(
        ["bash", "-c", script],
        env={**env, "TTLP_DATA_DIR": str(source.directory)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


async def test_a_database_moves_to_the_other_backend_and_back_unchanged(
    source: Source, ttlp: Ttlp, tmp_path: Path, pg_database_factory: Any
) -> None:
    before = await snapshot(source.url)
    assert len(before.events) == len(NIGHT) - RESENT + FIRST_FRAMES
    export = tmp_path / "all.ndjson"
    if source.backend == "sqlite":
        # The README's recipe as written, on the embedded default (TTLP_DATA_DIR), into
        # PostgreSQL: with a file, then with a pipe.
        with_file, with_pipe = recipe()
        target = pg_database_factory()  # empty: the recipe migrates it
        done = run_recipe(with_file, target, source, ttlp.env, tmp_path)
        assert parse_report(done.stdout) == expected_report(before)
        assert_moved(before, await snapshot(target))
        again = ttlp.run("import", str(tmp_path / "all.ndjson"), DATABASE_URL=target)
        assert again.returncode == 0, again.stderr
        assert parse_report(again.stdout) == expected_report(before, again=True)
        assert_moved(before, await snapshot(target))
        piped = migrated_postgresql_url(pg_database_factory)
        done = run_recipe(with_pipe, piped, source, ttlp.env, tmp_path)
        assert parse_report(done.stdout) == expected_report(before)
        assert_moved(before, await snapshot(piped))
        return
    # PostgreSQL (on Redis) to a fresh embedded default, in this process.
    engine = create_engine(source.url)
    try:
        with export.open("wb") as out:
            async for chunk in ex.export(engine, ex.Selection(), "raw"):
                out.write(chunk)
    finally:
        await engine.dispose()
    target = sqlite_url(tmp_path / "target")
    (tmp_path / "target").mkdir()
    settings = Settings.from_env({}, **{"db.url": target, "data_dir": str(tmp_path / "data")})
    for again in (False, True):
        with export.open("rb") as stream:
            report = await import_command(settings, stream, "all.ndjson")
        assert report == expected_report(before, again=again)
        assert_moved(before, await snapshot(target))


@pytest.fixture
def empty_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database of ``backend`` of this test's own."""
    if backend == "postgresql":
        return migrated_postgresql_url(request.getfixturevalue("pg_database_factory"))
    return sqlite_url(tmp_path)


async def test_import_counts_and_dead_letters_lines_that_are_not_raw_v1(
    empty_database: str, backend_redis_url: str | None, tmp_path: Path, key_prefix: str
) -> None:
    frames = fixture_frames("raw-frames.ndjson")
    broken_gift = {**next(f for f in frames if f["type"] == "WebcastGiftMessage")}
    broken_gift.update(seqNo=42, data={"gift": "not an object"})  # archived, not normalizable
    lines = [json.dumps(f) for f in frames]
    lines[3:3] = ["this is not JSON", json.dumps({"schemaVersion": "raw.v1"})]
    lines.append(json.dumps(broken_gift))
    data = tmp_path / "mixed.ndjson"
    data.write_text("\n".join(lines) + "\n")
    url, redis_url = empty_database, backend_redis_url
    settings = Settings.from_env(
        {},
        **{
            "db.url": url,
            "bus.redis_url": redis_url,
            "bus.prefix": key_prefix,
            "data_dir": str(tmp_path),
        },
    )
    with data.open("rb") as stream:
        report = await import_command(settings, stream, "mixed.ndjson")
    assert (report.lines, report.frames, report.invalid) == (len(lines), len(frames) + 1, 2)
    assert (report.archived, report.stored, report.duplicates) == (len(frames) + 1, len(frames), 0)
    assert report.dead_lettered == 3
    assert [p.split(": ")[0] for p in report.problems] == ["mixed.ndjson:4", "mixed.ndjson:5"]
    # The letters are where `ttlp dlq` looks: Redis's stream, or the embedded default's table.
    if redis_url is not None:
        bus = RedisBus(redis_url)
        try:
            letters = await bus.range(f"{key_prefix}ttlc:dlq")
        finally:
            await bus.close()
        reasons = sorted(entry.fields["reason"] for entry in letters if entry.fields)
    else:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(select(tables.dead_letters.c.fields))).scalars().all()
        finally:
            await engine.dispose()
        reasons = sorted(msgspec.json.decode(row)["reason"] for row in rows)
    assert reasons == ["PARSE_ERROR", "VALIDATION_ERROR", "VALIDATION_ERROR"]
