"""The embedded default end to end: no Redis, no PostgreSQL, `ttlp run` just works."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.paths import FIXTURES
from tests.support.processes import Ttlp
from tests.support.wait import wait_for
from ttlp.db.engine import create_engine
from ttlp.forward.store import ForwardStore

pytestmark = pytest.mark.e2e

EXPECTED = sum(
    1 for line in (FIXTURES / "unified-events.ndjson").read_text().splitlines() if line.strip()
)


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'ttlp.db'}")
    yield engine
    await engine.dispose()


async def count(engine: AsyncEngine, sql: str, **params: str) -> int:
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(sql), params)).scalar() or 0)
    except Exception:  # the file or the tables may not exist yet
        return 0


async def test_run_replay_and_status_on_the_embedded_default(
    ttlp: Ttlp, sqlite: AsyncEngine
) -> None:
    proc = ttlp.start("run")
    await wait_for(
        lambda: _at_least(sqlite, EXPECTED), what=f"{EXPECTED} events in SQLite", alive=proc
    )
    assert ttlp.stop(proc, signal.SIGINT) == 0, ttlp.log_of(proc)[-2000:]
    log = ttlp.log_of(proc)
    assert "Traceback" not in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line.get("role") == "store" for line in lines)
    assert all("time" in line and "level" in line for line in lines)

    async with sqlite.connect() as conn:
        session_id = (await conn.execute(text("SELECT id FROM sessions"))).scalar_one()
    replay = ttlp.run("replay", session_id)
    assert replay.returncode == 0, replay.stderr
    new_session = replay.stdout.strip().splitlines()[-1]
    assert (
        await count(sqlite, "SELECT count(*) FROM events WHERE session_id = :s", s=new_session)
        == EXPECTED
    )
    assert await count(sqlite, "SELECT count(*) FROM events WHERE source = 'replay'") == EXPECTED

    # A forward target with two queued deliveries: status shows its outcomes, not its URL.
    store = ForwardStore(sqlite)
    target = await store.create_target(
        {
            "name": "crm",
            "url": "https://hooks.example/T0K3N",
            "secret": "s",
            "event_types": [],
            "scope": "*",
            "enabled": True,
            "created_by": "owner",
        }
    )
    await store.enqueue([(target.id, "e1", "{}"), (target.id, "e2", "{}")])

    status = ttlp.run("status", COLUMNS="200")
    assert status.returncode == 0, status.stderr
    assert "events" in status.stdout
    assert str(2 * EXPECTED) in status.stdout
    assert "forward targets" in status.stdout
    [row] = [line for line in status.stdout.splitlines() if " crm " in line]
    cells = [cell.strip() for cell in row.split("│") if cell.strip()]
    # id, name, enabled, delivered, retried, dead, pending
    assert cells == [str(target.id), "crm", "yes", "0", "0", "0", "2"], row
    assert "T0K3N" not in status.stdout
    # Ingest's last report, read from the file the in-process bus kept it in.
    [mock] = [line for line in status.stdout.splitlines() if "@mock" in line]
    cells = [cell.strip() for cell in mock.split("│") if cell.strip()]
    assert cells[:3] == ["@mock", "mock", "finished"], mock
    assert cells[-1] == "fixture published", mock


async def _at_least(engine: AsyncEngine, n: int) -> bool:
    return await count(engine, "SELECT count(*) FROM events") >= n


async def test_a_session_a_crash_left_open_is_closed_at_the_next_start(
    ttlp: Ttlp, sqlite: AsyncEngine, tmp_path: Path
) -> None:
    """kill -9 while a recorded session is open (it never got its DISCONNECTED or stream end):
    the next `ttlp run` closes it at its last event, marked interrupted."""
    frames = [
        json.loads(line) for line in (FIXTURES / "raw-frames.ndjson").read_text().splitlines()
    ]
    closers = {"ControlEvent.DISCONNECTED", "WebcastControlMessage"}
    open_session = [f for f in frames if f["type"] not in closers]
    fixture = tmp_path / "open.ndjson"
    fixture.write_text("\n".join(json.dumps(f) for f in open_session) + "\n")
    session = open_session[0]["sessionId"]
    raw = "SELECT count(*) FROM raw_frames WHERE session_id = :s"

    proc = ttlp.start("run", MOCK_FIXTURE=str(fixture))
    await wait_for(
        lambda: _is(sqlite, raw, len(open_session), s=session), alive=proc, what="stored"
    )
    events = "SELECT count(*) FROM events WHERE session_id = :s"
    await wait_for(
        lambda: _is(sqlite, events, len(open_session), s=session), alive=proc, what="events"
    )
    await wait_for(
        lambda: _is(sqlite, "SELECT count(*) FROM sessions WHERE ended_at IS NULL", 1),
        alive=proc,
        what="the open session",
    )
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)

    empty = tmp_path / "nothing.ndjson"  # the next run publishes nothing of its own
    empty.write_text('{"fields": {"not": "a frame"}}\n')
    restarted = ttlp.start("run", MOCK_FIXTURE=str(empty))
    await wait_for(
        lambda: _is(sqlite, "SELECT count(*) FROM sessions WHERE ended_at IS NULL", 0),
        alive=restarted,
        what="the interrupted session closed",
    )
    assert ttlp.stop(restarted) == 0
    async with sqlite.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT ended_at, meta FROM sessions WHERE id = :s"), {"s": session}
            )
        ).one()
        last = (
            await conn.execute(
                text("SELECT max(timestamp) FROM events WHERE session_id = :s"), {"s": session}
            )
        ).scalar()
    meta = row.meta if isinstance(row.meta, dict) else json.loads(row.meta)
    assert meta["interrupted"] is True
    assert str(row.ended_at)[:19] == str(last)[:19]
    assert "closed sessions a crash left open" in ttlp.log_of(restarted)


async def _is(engine: AsyncEngine, sql: str, n: int, **params: str) -> bool:
    return await count(engine, sql, **params) == n
