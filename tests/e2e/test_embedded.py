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


async def _at_least(engine: AsyncEngine, n: int) -> bool:
    return await count(engine, "SELECT count(*) FROM events") >= n
