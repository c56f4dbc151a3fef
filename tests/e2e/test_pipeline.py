"""End to end on Redis + PostgreSQL: ``ttlp run`` as a subprocess, the mock fixture in, the
database, the raw archive and the dead-letter stream checked; then a replay; then kill -9 in
the middle of a large run and a restart that loses and duplicates nothing."""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.paths import FIXTURES
from tests.support.processes import Ttlp
from tests.support.wait import wait_for
from ttlp.bus.keys import Keys
from ttlp.runtime import pipeline_groups

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def ndjson(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


RAW = ndjson(FIXTURES / "raw-frames.ndjson")
UNIFIED = ndjson(FIXTURES / "unified-events.ndjson")
MALFORMED = ndjson(FIXTURES / "dlq-frames.ndjson")


def canonical(event: dict[str, Any]) -> tuple[str, Any, Any, Any]:
    """What must survive any run or replay: type, trigger, user, payload."""
    return (event["eventType"], event["triggerId"], event["user"], event.get("payload"))


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def stored_events(engine: AsyncEngine, session_id: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT event_data FROM events WHERE session_id = :s ORDER BY id"),
            {"s": session_id},
        )
        return [r[0] if isinstance(r[0], dict) else json.loads(r[0]) for r in rows]


def mixed_fixture(tmp_path: Path) -> Path:
    """The raw fixture with the malformed frames spliced in after the 5th and 20th frames."""
    lines = [json.dumps(f) for f in RAW]
    bad = [json.dumps(m) for m in MALFORMED]
    half = len(bad) // 2
    mixed = lines[:5] + bad[:half] + lines[5:20] + bad[half:] + lines[20:]
    path = tmp_path / "mixed.ndjson"
    path.write_text("\n".join(mixed) + "\n")
    return path


async def test_fixture_through_the_pipeline_then_replay(
    services: Ttlp, engine: AsyncEngine, redis: aioredis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    proc = services.start("run", "--roles", "all", MOCK_FIXTURE=str(mixed_fixture(tmp_path)))
    expected = len(UNIFIED)
    await wait_for(
        lambda: _count_is(engine, "SELECT count(*) FROM events", expected),
        what=f"{expected} stored events",
        alive=proc,
    )
    await wait_for(
        lambda: _dlq_len_is(redis, key_prefix, len(MALFORMED)),
        what="the malformed frames in the DLQ",
        alive=proc,
    )
    session_id = await scalar(engine, "SELECT session_id FROM events LIMIT 1")

    # The database holds exactly the expected events, in arrival order: the mock published the
    # recorded session as written, so even the ids are the fixture's.
    live = await stored_events(engine, session_id)
    assert [canonical(e) for e in live] == [canonical(e) for e in UNIFIED]
    assert [e["eventId"] for e in live] == [e["eventId"] for e in UNIFIED]
    assert session_id == RAW[0]["sessionId"]
    assert {e["source"] for e in live} == {"live"}
    # The last valid frames (after both malformed runs) were processed too.
    assert live[-1]["eventType"] == UNIFIED[-1]["eventType"]

    # The raw archive holds every valid frame, in arrival order.
    async with engine.connect() as conn:
        archived = (
            (
                await conn.execute(
                    text("SELECT type FROM raw_frames WHERE session_id = :s ORDER BY id"),
                    {"s": session_id},
                )
            )
            .scalars()
            .all()
        )
    assert archived == [f["type"] for f in RAW]

    # Each malformed frame is in ttlc:dlq with its reason.
    letters = await redis.xrange(f"{key_prefix}ttlc:dlq")
    reasons = Counter(fields["reason"] for _, fields in letters)
    assert reasons == Counter(m["expectedReason"] for m in MALFORMED)
    assert {fields["stage"] for _, fields in letters} == {"normalizer"}
    for _, fields in letters:
        if fields.get("payloadTruncated") == "true":  # over DLQ_MAX_PAYLOAD_BYTES: cut, described
            assert int(fields["payloadBytes"]) > len(fields["payload"])
            assert len(fields["payloadSha256"]) == 64
        else:
            assert json.loads(fields["payload"])  # the original body is kept

    # A replay: a new session, source=replay, the same canonical events.
    replay = services.run("replay", session_id)
    assert replay.returncode == 0, replay.stderr
    new_session = replay.stdout.strip().splitlines()[-1]
    assert new_session != session_id
    await wait_for(
        lambda: _count_is(
            engine, "SELECT count(*) FROM events WHERE session_id = :s", expected, s=new_session
        ),
        what="the replayed events",
        alive=proc,
    )
    replayed = await stored_events(engine, new_session)
    assert [canonical(e) for e in replayed] == [canonical(e) for e in live]
    assert {e["source"] for e in replayed} == {"replay"}
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT type, meta FROM sessions WHERE id = :s"), {"s": new_session}
            )
        ).one()
    meta = row.meta if isinstance(row.meta, dict) else json.loads(row.meta)
    assert (row.type, meta["replayedFrom"]) == ("replay", session_id)

    # ttlp status shows the streams, every group's pending/lag, and the DLQ size.
    status = services.run("status", COLUMNS="200")
    assert status.returncode == 0, status.stderr
    for needle in (
        "ttlc:raw",
        "ttlc:events",
        f"{key_prefix}normalizer",
        f"{key_prefix}storage",
        f"{key_prefix}archive",
        f"dead-letter queue ({key_prefix}ttlc:dlq): {len(MALFORMED)} entries",
    ):
        assert needle in status.stdout, status.stdout
    # Ingest's report on the shared bus: the mock published its fixture and is done.
    [mock] = [line for line in status.stdout.splitlines() if "@mock" in line]
    assert [c.strip() for c in mock.split("│") if c.strip()][:3] == ["@mock", "mock", "finished"]

    assert services.stop(proc) == 0, services.log_of(proc)[-3000:]
    assert "Traceback" not in services.log_of(proc)


async def test_the_dlq_smoke_test_and_a_recorded_session_fed_twice(
    services: Ttlp, engine: AsyncEngine, redis: aioredis.Redis, key_prefix: str, tmp_path: Path
) -> None:
    """Seed 003 §9.7: inject ``dlq-frames.ndjson`` through the mock, expect ``ttlc:dlq``
    entries; lines that are not raw.v1 at all are published as they are and dead-lettered
    too, after one warning. Then the recorded session, fed twice: stored once."""
    fixture = tmp_path / "dlq.ndjson"
    lines = (FIXTURES / "dlq-frames.ndjson").read_text().splitlines()
    not_raw = ['{"schemaVersion": "raw.v1", "type": "WebcastChatMessage"}', "this is not JSON"]
    fixture.write_text("\n".join([*lines, *not_raw, json.dumps(RAW[0])]) + "\n")
    proc = services.start("run", "--roles", "all", MOCK_FIXTURE=str(fixture))
    await wait_for(
        lambda: _dlq_len_is(redis, key_prefix, len(MALFORMED) + len(not_raw)),
        what="every malformed line in the DLQ",
        alive=proc,
        timeout=30,
    )
    letters = [fields for _, fields in await redis.xrange(f"{key_prefix}ttlc:dlq")]
    reasons = Counter(fields["reason"] for fields in letters)
    # The JSON object lacks raw.v1's fields; the other line is published as a lone ``data``.
    assert reasons == Counter(m["expectedReason"] for m in MALFORMED) + Counter(
        {"VALIDATION_ERROR": 1, "PARSE_ERROR": 1}
    )
    # The lines that are not raw.v1 are in their letters as they were written.
    assert "this is not JSON" in letters[-1]["payload"]
    assert '"WebcastChatMessage"' in letters[-2]["payload"]
    log = services.log_of(proc)
    assert log.count("MOCK_FIXTURE holds lines that are not raw.v1 frames") == 1
    assert services.stop(proc) == 0, log[-3000:]

    recorded = tmp_path / "recorded.ndjson"
    recorded.write_text("\n".join(json.dumps(f) for f in RAW) + "\n")
    raw_stream = f"{key_prefix}ttlc:raw"
    before = await redis.xlen(raw_stream)
    for run in range(2):
        proc = services.start("run", "--roles", "all", MOCK_FIXTURE=str(recorded))
        published = before + (run + 1) * len(RAW)
        await wait_for(
            lambda n=published: _xlen_is(redis, raw_stream, n),  # type: ignore[misc]
            what=f"run {run} published the recorded session",
            alive=proc,
        )
        await wait_for(lambda: _drained(redis, key_prefix), what="all groups drained", alive=proc)
        assert services.stop(proc) == 0
        stored = await stored_events(engine, RAW[0]["sessionId"])
        assert [e["eventId"] for e in stored] == [e["eventId"] for e in UNIFIED], run
        archived = await scalar(
            engine, "SELECT count(*) FROM raw_frames WHERE session_id = :s", s=RAW[0]["sessionId"]
        )
        assert archived == len(RAW), run


async def _xlen_is(redis: aioredis.Redis, stream: str, n: int) -> bool:
    return bool(await redis.xlen(stream) == n)


async def _count_is(engine: AsyncEngine, sql: str, n: int, **params: Any) -> bool:
    return bool(await scalar(engine, sql, **params) == n)


async def _dlq_len_is(redis: aioredis.Redis, prefix: str, n: int) -> bool:
    return bool(await redis.xlen(f"{prefix}ttlc:dlq") == n)


def big_fixture(tmp_path: Path, copies: int) -> tuple[Path, int]:
    """The raw fixture repeated as one long session: each copy of a frame with its own seqNo
    (the mock publishes lines as written, and the store keeps a (type, seqNo) once)."""
    frames = [dict(f) for _ in range(copies) for f in RAW]
    lines = [json.dumps({**f, "seqNo": n}) for n, f in enumerate(frames, 1)]
    path = tmp_path / "big.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return path, len(lines)


@pytest.mark.parametrize("restart_as", ["same-consumer", "other-consumer"])
async def test_kill_9_mid_run_then_restart_stores_every_frame_exactly_once(
    services: Ttlp,
    engine: AsyncEngine,
    redis: aioredis.Redis,
    key_prefix: str,
    tmp_path: Path,
    restart_as: str,
) -> None:
    fixture, total = big_fixture(tmp_path, copies=400)
    env = {"MOCK_FIXTURE": str(fixture), "STREAM_MAXLEN": "1000000", "BUS_BATCH_SIZE": "200"}
    proc = services.start("run", "--roles", "all", **env)
    await wait_for(
        lambda: _count_at_least(engine, "SELECT count(*) FROM events", total // 5),
        what="a fifth of the run stored",
        alive=proc,
        poll=0.05,
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    published = await redis.xlen(f"{key_prefix}ttlc:raw")
    stored_at_kill = await scalar(engine, "SELECT count(*) FROM events")
    assert 0 < stored_at_kill < published <= total

    # Restart without ingest (nothing new is published), as the same replica, which re-reads
    # its own pending entries, or as another one, which claims the dead consumer's entries.
    name = "e2e-1" if restart_as == "same-consumer" else "e2e-2"
    restarted = services.start(
        "run",
        "--roles",
        "normalize,store",
        CONSUMER_NAME=name,
        CLAIM_IDLE_MS="500",
        CLAIM_INTERVAL_S="0.5",
        **env,
    )
    await wait_for(
        lambda: _count_is(engine, "SELECT count(*) FROM events", published),
        what="every published frame stored",
        alive=restarted,
        timeout=120,
    )
    await wait_for(lambda: _drained(redis, key_prefix), what="all groups drained", alive=restarted)
    assert services.stop(restarted) == 0

    # Exactly once: one row per published frame in both tables, nothing pending anywhere.
    assert await scalar(engine, "SELECT count(*) FROM raw_frames") == published
    assert await scalar(engine, "SELECT count(DISTINCT seq_no) FROM events") == published
    entries = await redis.xrange(f"{key_prefix}ttlc:raw")
    sent = {int(fields["seqNo"]) for _, fields in entries}
    async with engine.connect() as conn:
        got = set((await conn.execute(text("SELECT seq_no FROM events"))).scalars().all())
    assert got == sent


async def _count_at_least(engine: AsyncEngine, sql: str, n: int) -> bool:
    return bool(await scalar(engine, sql) >= n)


async def _drained(redis: aioredis.Redis, prefix: str) -> bool:
    """The groups of the restarted roles (normalize, store) have read and acked everything;
    rules and forwarder, which the first run also started, are not running any more."""
    for stream, groups in pipeline_groups(Keys(prefix)).items():
        for group in await redis.xinfo_groups(stream):
            if group["name"] in groups and (group["pending"] or group.get("lag")):
                return False
    return True


def test_config_errors_are_one_line_and_exit_non_zero(
    ttlp: Ttlp, redis_url: str, pg_database_factory: Any
) -> None:
    def fails(result: subprocess.CompletedProcess[str], *needles: str) -> str:
        assert result.returncode != 0
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, result.stderr
        for needle in needles:
            assert needle in lines[0], lines[0]
        assert "Traceback" not in result.stderr
        return lines[0]

    fails(ttlp.run("run", "--roles", "normalize"), "REDIS_URL")
    fails(ttlp.run("run", "--roles", "ingest,bogus"), "bogus")
    unmigrated = pg_database_factory()
    fails(ttlp.run("run", REDIS_URL=redis_url, DATABASE_URL=unmigrated), "ttlp migrate")
    line = fails(
        ttlp.run(
            "run",
            REDIS_URL=redis_url,
            DATABASE_URL="postgresql://ttlp:hunter2secret@127.0.0.1:1/ttlp",
        ),
        "DATABASE_URL",
    )
    assert "hunter2secret" not in line
    line = fails(ttlp.run("run", REDIS_URL="redis://:hunter2secret@127.0.0.1:1/0"), "REDIS_URL")
    assert "hunter2secret" not in line
    fails(ttlp.run("run", INGEST_PROVIDER="nonsense"), "INGEST_PROVIDER")
    fails(ttlp.run("run", INGEST_PROVIDER="direct"), "TIKTOK_UNIQUE_ID")
    fails(ttlp.run("run", INGEST_PROVIDER="euler", TIKTOK_UNIQUE_ID="luna.beats"), "EULER_API_KEY")
