"""Retention benchmark (DESIGN §6, §12): ``ttlp prune`` on a PostgreSQL database of N events while
the live pipeline carries 1,000 frames/s, and the time-partition alternative for the record.

    python benchmarks/prune.py                 # 10,000,000 events (and as many raw frames)
    python benchmarks/prune.py -n 200000       # a quick check
    python benchmarks/prune.py -n 10000000 --frames-ratio 0 --no-partitions   # less disk

1. A fresh database ``ttlp_bench_prune`` (dropped first if a kept one exists; dropped at the end
   unless ``--keep``), migrated, is filled by server-side SQL (``INSERT ... SELECT
   generate_series``; secondary indexes dropped while filling and built afterwards, then VACUUM
   ANALYZE, so generation takes minutes): N events whose ``event_data`` are the fixture's
   events (about 700 bytes each) with their ids, session, user and time rewritten, spread
   evenly over ``--days`` (120) ending now, N/5,000 sessions in N/10,000 rooms, N/50 users (and
   a fifth as many users last seen 400-700 days ago, with no events left, some with notes), N/100
   rule firings, and ``--frames-ratio`` × N raw frames (the fixture's frames, about 1 kB each;
   every frame is archived in production, so 1.0 is realistic). Disk, from the 200,000-event
   run: events 1.5 kB and frames 1.3 kB per row with indexes, +40 % for the archived row
   versions until VACUUM, and the partitioned copy as much as events again: about 50 GB for
   10 M (``--frames-ratio 0`` and ``--no-partitions`` need about 20 GB).
2. The machine's own limits in the same run: PostgreSQL batched INSERT rate, Redis XADD rate.
3. The live pipeline (every role but ingest, as ``benchmarks/pipeline.py`` runs them, on Redis +
   this database) at ``--rate`` frames/s; latency ingest → committed p50/p99 before, during a
   dry run, during the first prune (now: about a quarter of the rows past 90 days archived,
   the old users pseudonymized, old rule firings deleted) and during a second one with the
   clock 8 days on (the archived rows deleted after the 7-day grace, 8 more days archived).
4. The alternative: a copy of ``events`` partitioned by month (unique indexes refused: a
   partitioned table's unique index must contain the partition key), and the time to
   DETACH (CONCURRENTLY) and DROP its oldest month, with the live latency meanwhile.

The decision this measured (``ttlp.db.retention``'s docstring): batched deletes. Dropping a
partition costs next to nothing, but events must stay unique by ``event_id`` and live events
by (stream, type, seqNo) across the whole table (re-delivered events, TikTok's re-sends after a
reconnect: both cross any time boundary), which partitioned tables cannot enforce; batches
keep the schema, run unchanged on SQLite, and keep live latency within its target.

Note: this dev server runs with autovacuum off; production keeps it on. The deleted and
updated rows' space is reclaimed by VACUUM, timed at the end. No assertions: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import asyncpg
from machine import insert_rate, pg_url, redis_url, redis_xadd_rate, scratch_prefix
from pipeline import BENCH_ROLES, Latencies, _api_env, _instrument, fixture_path

from ttlp.db.engine import normalize_database_url
from ttlp.db.migrate import upgrade
from ttlp.db.retention import BATCH_TARGET_S, STEP_KEYS, PruneReport, prune
from ttlp.runtime import ROLES, Context, open_context
from ttlp.settings import RetentionSettings, Settings
from ttlp.tiktok.providers.mock import MockProvider, load_fixture
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.supervisor import StreamerSupervisor

T = TypeVar("T")
DATABASE = "ttlp_bench_prune"
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
LIFECYCLE = {"CONNECTED", "DISCONNECTED", "ERROR", "STREAM_END"}
CHUNK = 1_000_000
"""Rows per generating INSERT (one transaction each)."""
WARM_UP_S = 3.0
GRACE_DAYS = 7
TARGET_P99_MS = 100.0
"""DESIGN §12: ingest → committed p99 at 1,000 events/s."""


# -- the database --------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def bench_database(keep: bool) -> AsyncIterator[str]:
    """``ttlp_bench_prune``, fresh and migrated; its asyncpg URL."""
    admin_url = pg_url().replace("postgresql+asyncpg://", "postgresql://")
    admin = await asyncpg.connect(admin_url)
    url = admin_url.rsplit("/", 1)[0] + "/" + DATABASE
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
        await asyncio.to_thread(upgrade, normalize_database_url(url, Path.cwd()))
        yield url
    finally:
        if keep:
            print(f"kept database {DATABASE} ({url})")
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.close()


def event_templates() -> list[tuple[str, str, int, str]]:
    """(eventType, raw type, triggerId, event JSON) of the fixture's non-lifecycle events."""
    out = []
    for line in (FIXTURES / "unified-events.ndjson").read_text().splitlines():
        event = json.loads(line)
        kind = event["eventType"]
        if kind in LIFECYCLE:
            continue
        raw_type = event["payload"].get("rawType", kind) if kind == "RAW" else kind
        out.append((kind, raw_type, int(event["triggerId"]), line))
    return out


def frame_templates() -> list[tuple[str, str]]:
    """(type, data JSON text) of the fixture's TikTok frames."""
    out = []
    for line in (FIXTURES / "raw-frames.ndjson").read_text().splitlines():
        frame = json.loads(line)
        if not frame["type"].startswith("ControlEvent."):
            out.append((frame["type"], json.dumps(frame["data"], ensure_ascii=False)))
    return out


@dataclass(frozen=True)
class Shape:
    """How N events are laid out."""

    n: int
    frames: int
    start: datetime
    span_s: float
    sessions: int
    users: int
    old_users: int
    actions: int

    @classmethod
    def of(cls, n: int, frames_ratio: float, days: float, now: datetime) -> Shape:
        users = max(10, n // 50)
        return cls(
            n=n,
            frames=int(n * frames_ratio),
            start=now - timedelta(days=days),
            span_s=days * 86_400,
            sessions=max(2, n // 5_000),
            users=users,
            old_users=max(1, users // 5),
            actions=n // 100,
        )


# Expressions shared by the generating statements ($1 start, $2 span in seconds, $3 N,
# $4 sessions; g the row number): a row's time, session and room.
TIME = "$1::timestamptz + (g::float8 / $3) * $2 * interval '1 second'"
SESSION = "(g * $4 / $3)"
SESSION_ID = f"md5('s' || {SESSION})::uuid::text"
STREAM_ID = f"(7400000000000000000 + {SESSION} / 2)::text"
ISO = "to_char(({0}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

FILL_EVENTS = f"""
INSERT INTO events (event_id, session_id, stream_id, event_type, trigger_id, schema_version,
                    user_id, raw_type, seq_no, timestamp, ingested_at, source, event_data)
SELECT md5('e' || g) || md5('f' || g), {SESSION_ID}, {STREAM_ID}, t.event_type, t.trigger_id,
       '1', u.user_id, t.raw_type, g, at.ts, at.ts + interval '300 ms', 'live',
       t.data || jsonb_build_object(
           'eventId', md5('e' || g) || md5('f' || g), 'sessionId', {SESSION_ID},
           'streamId', {STREAM_ID}, 'seqNo', g,
           'timestamp', {ISO.format("at.ts")},
           'ingestedAt', {ISO.format("at.ts + interval '300 ms'")},
           'user', CASE WHEN u.user_id = '0' THEN t.data -> 'user'
                        ELSE (t.data -> 'user') || jsonb_build_object(
                            'userId', u.user_id, 'uniqueId', 'viewer' || u.n) END)
FROM generate_series($5::bigint, $6::bigint - 1) AS g
CROSS JOIN LATERAL (SELECT {TIME} AS ts) AS at
JOIN bench_event_templates t ON t.k = g % $7
CROSS JOIN LATERAL (
    SELECT CASE WHEN t.data -> 'user' ->> 'userId' = '0' THEN '0'
                ELSE (1000000 + (g * 7919) % $8)::text END AS user_id,
           (g * 7919) % $8 AS n
) AS u
"""

FILL_FRAMES = f"""
INSERT INTO raw_frames (session_id, stream_id, source, type, seq_no, timestamp, ingested_at,
                        provider, unique_id, data, received_at)
SELECT {SESSION_ID}, {STREAM_ID}, 'live', t.type, g, at.ts, at.ts + interval '250 ms', 'mock',
       'streamer' || ({SESSION} / 2), t.data, at.ts + interval '280 ms'
FROM generate_series($5::bigint, $6::bigint - 1) AS g
CROSS JOIN LATERAL (SELECT {TIME} AS ts) AS at
JOIN bench_frame_templates t ON t.k = g % $7
"""

FILL_SESSIONS = """
INSERT INTO sessions (id, stream_id, type, provider, unique_id, created_at, ended_at)
SELECT md5('s' || s)::uuid::text, (7400000000000000000 + s / 2)::text, 'live', 'mock',
       'streamer' || (s / 2),
       $1::timestamptz + ((s::float8 * $3 / $4) / $3) * $2 * interval '1 second',
       $1::timestamptz + (((s + 1)::float8 * $3 / $4 - 1) / $3) * $2 * interval '1 second'
FROM generate_series(0, $4 - 1) AS s
"""

FILL_STREAMS = """
INSERT INTO streams (id, unique_id, started_at, ended_at)
SELECT stream_id, min(unique_id), min(created_at), max(ended_at) FROM sessions GROUP BY stream_id
"""

FILL_USERS = """
INSERT INTO users (user_id, unique_id, display_name, avatar_url, first_seen, last_seen,
                   event_count)
SELECT (1000000 + i)::text, 'viewer' || i, 'Viewer ' || i, 'https://p16.example/' || i || '.jpg',
       $1::timestamptz, $1::timestamptz + $2 * interval '1 second' - (i % 72) * interval '1 hour',
       $3 / $4
FROM generate_series(0, $4 - 1) AS i
UNION ALL
SELECT (1000000 + i)::text, 'viewer' || i, 'Viewer ' || i, NULL,
       now() - (430 + i % 300) * interval '1 day', now() - (400 + i % 300) * interval '1 day', 5
FROM generate_series($4, $4 + $5 - 1) AS i
"""

FILL_NOTES = """
INSERT INTO user_notes (user_id, author, body, created_at, streamer)
SELECT (1000000 + i)::text, 'mod', 'note on viewer ' || i, now() - interval '500 days', 'streamer'
FROM generate_series($1::int, $1::int + $2::int - 1) AS i WHERE i % 10 = 0
"""

FILL_ACTIONS = """
INSERT INTO actions_log (rule_id, event_id, session_id, stream_id, user_id, action_type, status,
                         created_at)
SELECT 1, md5('a' || i) || md5('b' || i), md5('s' || i)::uuid::text, '7400000000000000000',
       (1000000 + i % $4)::text, 'log', 'success',
       $1::timestamptz + (i::float8 / $3) * $2 * interval '1 second'
FROM generate_series(0, $3 - 1) AS i
"""


async def fill(url: str, shape: Shape) -> None:
    """Generate the data set (see the module docstring)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        events = event_templates()
        frames = frame_templates()
        await conn.execute(
            "CREATE TEMP TABLE bench_event_templates"
            " (k int, event_type text, raw_type text, trigger_id smallint, data jsonb)"
        )
        await conn.executemany(
            "INSERT INTO bench_event_templates VALUES ($1, $2, $3, $4, $5::jsonb)",
            [(k, *template) for k, template in enumerate(events)],
        )
        await conn.execute("CREATE TEMP TABLE bench_frame_templates (k int, type text, data text)")
        await conn.executemany(
            "INSERT INTO bench_frame_templates VALUES ($1, $2, $3)",
            [(k, *template) for k, template in enumerate(frames)],
        )
        common = (shape.start, shape.span_s, shape.n, shape.sessions)
        for table, sql, rows, extra in (
            ("events", FILL_EVENTS, shape.n, (len(events), shape.users)),
            ("raw_frames", FILL_FRAMES, shape.frames, (len(frames),)),
        ):
            if not rows:
                continue
            recreate = await _drop_indexes(conn, table)
            started = time.perf_counter()
            for lo in range(0, rows, CHUNK):
                await conn.execute(sql, *common, lo, min(lo + CHUNK, rows), *extra)
                done = min(lo + CHUNK, rows)
                rate = done / (time.perf_counter() - started)
                print(f"  {table}: {done:,} / {rows:,} rows ({rate:,.0f} rows/s)", flush=True)
            built = time.perf_counter()
            for statement in recreate:
                await conn.execute(statement)
            print(
                f"  {table}: {len(recreate)} indexes built in {time.perf_counter() - built:.0f} s",
                flush=True,
            )
        await conn.execute(FILL_SESSIONS, *common)
        await conn.execute(FILL_STREAMS)
        await conn.execute(
            FILL_USERS, shape.start, shape.span_s, shape.n, shape.users, shape.old_users
        )
        await conn.execute(FILL_NOTES, shape.users, shape.old_users)
        await conn.execute(FILL_ACTIONS, shape.start, shape.span_s, shape.actions, shape.users)
        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE)")
        print(f"  VACUUM ANALYZE: {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        await conn.close()


async def _drop_indexes(conn: asyncpg.Connection, table: str) -> list[str]:
    """Drop ``table``'s secondary indexes and unique constraints; → the statements that build
    them again (faster after a bulk load than maintained row by row)."""
    rows = await conn.fetch(
        """
        SELECT format('ALTER TABLE %I ADD CONSTRAINT %I %s', $1::text, conname,
                      pg_get_constraintdef(oid)) AS create_sql,
               format('ALTER TABLE %I DROP CONSTRAINT %I', $1::text, conname) AS drop_sql
        FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'u'
        UNION ALL
        SELECT indexdef, format('DROP INDEX %I', indexname)
        FROM pg_indexes
        WHERE tablename = $1
          AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass)
        """,
        table,
    )
    for row in rows:
        await conn.execute(row["drop_sql"])
    return [row["create_sql"] for row in rows]


async def sizes(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT relname, pg_size_pretty(pg_total_relation_size(oid)) AS size,"
            " reltuples::bigint AS rows FROM pg_class"
            " WHERE relname IN ('events', 'raw_frames', 'users', 'actions_log') ORDER BY relname"
        )
        total = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    finally:
        await conn.close()
    parts = ", ".join(f"{r['relname']} {r['size']}" for r in rows)
    return f"{parts}; database {total}"


# -- the partitioned alternative -----------------------------------------------------------------
async def partitioned_copy(url: str) -> tuple[str, list[str]]:
    """``events_by_month``: ``events`` partitioned by month, with events' indexes (the unique
    ones refused, and built without uniqueness); → (oldest partition, the refusals)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute("SET synchronous_commit = off")
        first, last = await conn.fetchrow("SELECT min(timestamp), max(timestamp) FROM events")
        await conn.execute(
            "CREATE TABLE events_by_month (LIKE events INCLUDING DEFAULTS)"
            " PARTITION BY RANGE (timestamp)"
        )
        month = first.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        names = []
        while month <= last:
            following = (month + timedelta(days=32)).replace(day=1)
            name = f"events_by_month_{month:%Y_%m}"
            await conn.execute(
                f"CREATE TABLE {name} PARTITION OF events_by_month"
                f" FOR VALUES FROM ('{month.isoformat()}') TO ('{following.isoformat()}')"
            )
            names.append(name)
            month = following
        started = time.perf_counter()
        copied = await conn.execute("INSERT INTO events_by_month SELECT * FROM events")
        print(f"  copied {copied.split()[-1]} rows in {time.perf_counter() - started:.0f} s")
        refusals = []
        definitions = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events'"
            " AND indexname <> 'pk_events'"
        )
        started = time.perf_counter()
        for row in definitions:
            definition = row["indexdef"].replace(
                f"INDEX {row['indexname']} ON public.events ",
                f"INDEX {row['indexname']}_p ON public.events_by_month ",
            )
            try:
                await conn.execute(definition)
            except asyncpg.PostgresError as exc:
                refusals.append(f"{row['indexname']}: {exc}")
                await conn.execute(definition.replace("UNIQUE INDEX", "INDEX"))
        print(f"  its {len(definitions)} indexes built in {time.perf_counter() - started:.0f} s")
        await conn.execute("VACUUM (ANALYZE) events_by_month")
        return names[0], refusals
    finally:
        await conn.close()


async def drop_partition(url: str, name: str) -> tuple[int, float]:
    """DETACH (CONCURRENTLY) and DROP one partition; → (its rows, seconds)."""
    conn = await asyncpg.connect(url)
    try:
        rows = int(await conn.fetchval(f"SELECT count(*) FROM {name}"))
        started = time.perf_counter()
        await conn.execute(f"ALTER TABLE events_by_month DETACH PARTITION {name} CONCURRENTLY")
        await conn.execute(f"DROP TABLE {name}")
        return rows, time.perf_counter() - started
    finally:
        await conn.close()


# -- the live pipeline ---------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def live_pipeline(
    settings: Settings, rate: float
) -> AsyncIterator[tuple[Context, Latencies]]:
    """Every role but ingest on this database, the mock provider at ``rate`` frames/s (fresh
    times and sessions: nothing the pruner touches); latencies ingest → committed."""
    latencies = Latencies()
    lines = [line for line in load_fixture(fixture_path("protobuf")) if line.frame is not None]
    async with open_context(settings, need_db=True) as ctx:
        _instrument(ctx, latencies)
        stop = asyncio.Event()
        roles = [asyncio.create_task(ROLES[name].load()(ctx, stop)) for name in BENCH_ROLES]
        provider = MockProvider(lines, rate=rate, loop=True, restamp=True)
        publisher = FramePublisher(ctx.bus, ctx.keys.raw, paced=True, downstream=(ctx.keys.events,))
        producer = asyncio.create_task(StreamerSupervisor(provider, "mock", publisher).run(stop))
        try:
            yield ctx, latencies
        finally:
            stop.set()
            await asyncio.gather(producer, *roles)


async def during(latencies: Latencies, work: Awaitable[T]) -> tuple[T, Window]:
    """Run ``work``; → its result and the latencies committed meanwhile."""
    latencies.samples.clear()
    result = await work
    return result, Window(Latencies(samples=list(latencies.samples)), os.getloadavg()[0])


@dataclass
class Window:
    """Latencies committed while something ran, and the machine's load then (a shared machine
    that is busy with other work shows it in every window, "before" included)."""

    latencies: Latencies
    load: float


def latency(label: str, window: Window) -> str:
    lat = window.latencies
    verdict = "within" if lat.pct(0.99) <= TARGET_P99_MS else "PAST"
    return (
        f"  live latency {label:<28} p50 {lat.pct(0.50):6.1f} ms, p99 {lat.pct(0.99):6.1f}"
        f" ms ({len(lat.samples):,} events; {verdict} the {TARGET_P99_MS:.0f} ms target;"
        f" load average {window.load:.1f})"
    )


def print_report(title: str, report: PruneReport) -> None:
    print(f"{title}: {report.total:,} rows in {report.seconds:.1f} s")
    for key in STEP_KEYS:
        rows = report.rows[key]
        seconds = report.step_seconds.get(key, 0.0)
        if rows or seconds >= 0.05:
            rate = f"{rows / seconds:>10,.0f} rows/s" if rows and seconds else ""
            print(f"  {key:<28} {rows:>12,} rows {seconds:8.2f} s {rate}")


def rows_per_s(report: PruneReport, action: str) -> str:
    keys = [
        k
        for k in STEP_KEYS
        if k.endswith(f".{action}") and k.split(".")[0] in ("events", "raw_frames")
    ]
    rows = sum(report.rows[k] for k in keys)
    seconds = sum(report.step_seconds.get(k, 0.0) for k in keys)
    rate = rows / seconds if seconds else 0.0
    return f"{rows:,} events and frames {action} in {seconds:.1f} s = {rate:,.0f} rows/s"


# -- the run -------------------------------------------------------------------------------------
async def bench(args: argparse.Namespace) -> None:
    now = datetime.now(UTC)
    shape = Shape.of(args.n, args.frames_ratio, args.days, now)
    retention = RetentionSettings(
        event_retention_days=args.retention,
        grace_days=GRACE_DAYS,
        actions_log_retention_days=90,
        session_retention_days=365,
        user_retention_days=365,
        batch_size=args.batch,
        pause_ratio=args.pause_ratio,
        interval_s=0,
        pseudonym_salt="bench-salt",
    )
    async with bench_database(args.keep) as url:
        inserts = await insert_rate(normalize_database_url(url, Path.cwd()))
        print(
            f"machine: PostgreSQL batched INSERT      {inserts:>12,.0f} rows/s\n"
            f"machine: Redis XADD (pipelined)        {await redis_xadd_rate():>12,.0f} entries/s",
            flush=True,
        )
        print(
            f"generating {shape.n:,} events, {shape.frames:,} raw frames over {args.days:g} days,"
            f" {shape.sessions:,} sessions, {shape.users:,} users (+{shape.old_users:,} inactive),"
            f" {shape.actions:,} rule firings",
            flush=True,
        )
        started = time.perf_counter()
        await fill(url, shape)
        print(f"generated in {time.perf_counter() - started:.0f} s: {await sizes(url)}", flush=True)
        oldest: str | None = None
        refusals: list[str] = []
        if args.partitions:
            print("partitioned copy of events (by month):", flush=True)
            oldest, refusals = await partitioned_copy(url)
        async with scratch_prefix("prune") as prefix:
            env = {
                "REDIS_URL": redis_url(),
                "DATABASE_URL": url,
                "LOG_LEVEL": "warn",
                "REDIS_CONSUMER_GROUP_PREFIX": prefix,
                "CONSUMER_NAME": "bench",
                "PRUNE_INTERVAL_S": "0",  # this benchmark prunes, not the store role
                **_api_env(),
            }
            settings = Settings.from_env(env)
            async with live_pipeline(settings, args.rate) as (ctx, live):
                assert ctx.engine is not None
                await asyncio.sleep(WARM_UP_S)
                _, before = await during(live, asyncio.sleep(args.latency_seconds))
                dry, dry_live = await during(
                    live, prune(ctx.engine, retention, now=now, dry_run=True)
                )
                target = args.batch_target_ms / 1000
                first, first_live = await during(
                    live, prune(ctx.engine, retention, now=now, batch_target_s=target)
                )
                later = now + timedelta(days=GRACE_DAYS + 1)
                second, second_live = await during(
                    live, prune(ctx.engine, retention, now=later, batch_target_s=target)
                )
                dropped = None
                if oldest is not None:
                    dropped, drop_live = await during(live, drop_partition(url, oldest))
        print(
            f"\n== ttlp prune on {shape.n:,} events (retention {args.retention} days,"
            f" grace {GRACE_DAYS}, batches of at most {args.batch:,} sized to"
            f" {args.batch_target_ms:g} ms (0: fixed), rest ×{args.pause_ratio:g})"
        )
        print(
            f"live pipeline at {args.rate:,.0f} frames/s (every role but ingest, Redis + this db):"
        )
        print(latency("before", before))
        print(latency("during the dry run", dry_live))
        print(latency("during prune 1 (archive)", first_live))
        print(latency("during prune 2 (delete)", second_live))
        print(f"dry run (counts every step): {dry.seconds:.1f} s")
        print_report("prune 1, now", first)
        print_report(f"prune 2, {GRACE_DAYS + 1} days later", second)
        print(f"  archive: {rows_per_s(first, 'archived')}")
        print(f"  delete:  {rows_per_s(second, 'deleted')}")
        if dropped is not None:
            rows, seconds = dropped
            print(
                f"time partitions: DETACH CONCURRENTLY + DROP of {oldest} ({rows:,} rows):"
                f" {seconds:.2f} s"
            )
            print(latency("during the partition drop", drop_live))
            for refusal in refusals:
                print(f"  refused: {refusal}")
        conn = await asyncpg.connect(url)
        try:
            for table in ("events", "raw_frames"):
                started = time.perf_counter()
                await conn.execute(f"VACUUM {table}")
                took = time.perf_counter() - started
                print(f"VACUUM {table} after the runs (autovacuum's work): {took:.1f} s")
        finally:
            await conn.close()
        print(f"after: {await sizes(url)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ttlp retention benchmark (DESIGN §6, §12)")
    parser.add_argument("-n", "--events", dest="n", type=int, default=10_000_000)
    parser.add_argument("--frames-ratio", type=float, default=1.0, help="raw frames per event")
    parser.add_argument("--days", type=float, default=120.0, help="the events' time span")
    parser.add_argument("--retention", type=int, default=90, help="EVENT_RETENTION_DAYS")
    parser.add_argument("--batch", type=int, default=1_000, help="PRUNE_BATCH_SIZE")
    parser.add_argument("--pause-ratio", type=float, default=1.0, help="PRUNE_PAUSE_RATIO")
    parser.add_argument(
        "--batch-target-ms",
        type=float,
        default=BATCH_TARGET_S * 1000,
        help="how long a batch may take before the next is halved (0: fixed batches)",
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="live frames/s")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--no-partitions", dest="partitions", action="store_false")
    parser.add_argument("--keep", action="store_true", help=f"keep the {DATABASE} database")
    args = parser.parse_args(argv)
    from ttlp import log
    from ttlp.runtime import tune_gc

    log.configure("warn", "json")
    tune_gc()
    print(
        f"ttlp retention benchmark: {args.n:,} events, Python {sys.version.split()[0]},"
        f" {os.cpu_count()} CPUs, PostgreSQL at {pg_url().rsplit('@', 1)[-1]}"
    )
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
