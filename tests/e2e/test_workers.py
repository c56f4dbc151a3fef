"""``ttlp run --workers 2`` on Redis + PostgreSQL: the normalizer runs in a worker process that
``ttlp run`` starts, stops and watches, and to whoever runs it ``ttlp run`` stays one process
(signals, exit codes, logs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.paths import FIXTURES
from tests.support.processes import Ttlp
from tests.support.wait import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

RAW = FIXTURES / "raw-frames.ndjson"
EXPECTED = len((FIXTURES / "unified-events.ndjson").read_text().splitlines())
WORKER_NAME = "e2e-1-w1"  # CONSUMER_NAME of the ttlp fixture, "-w1"


def command_of(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (its main thread's children, from /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def log_lines(ttlp: Ttlp, proc: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ttlp.log_of(proc).splitlines() if line.startswith("{")]


async def all_stored(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM events"))).scalar_one()
    return bool(count == EXPECTED)


async def normalizers(redis: aioredis.Redis, key_prefix: str) -> dict[str, int]:
    """The normalizer group's consumers on ttlc:raw → entries each holds unacknowledged."""
    try:
        found = await redis.xinfo_consumers(f"{key_prefix}ttlc:raw", f"{key_prefix}normalizer")
    except aioredis.ResponseError:
        return {}
    return {c["name"]: c["pending"] for c in found}


async def running_with_a_worker(
    services: Ttlp, engine: AsyncEngine
) -> tuple[subprocess.Popen[bytes], int]:
    """``ttlp run --roles all --workers 2`` with the raw fixture, once every event is stored;
    → (the process, its worker's pid)."""
    proc = services.start(
        "run", "--roles", "all", "--workers", "2", MOCK_FIXTURE=str(RAW), LOG_FORMAT="json"
    )
    await wait_for(
        lambda: all_stored(engine),
        what=f"{EXPECTED} stored events",
        alive=proc,
        timeout=90,
    )
    (worker,) = children(proc.pid)
    return proc, worker


async def test_the_normalizer_runs_in_a_worker_and_ctrl_c_stops_both(
    services: Ttlp, engine: AsyncEngine, redis: aioredis.Redis, key_prefix: str
) -> None:
    proc, worker = await running_with_a_worker(services, engine)

    # The worker process is the normalizer, under its own consumer name; ttlp run is not.
    command = command_of(worker)
    assert b"--worker-of-parent" in command
    assert command[command.index(b"--roles") + 1] == b"normalize"
    assert await normalizers(redis, key_prefix) == {WORKER_NAME: 0}

    # A Ctrl-C in a terminal signals the whole foreground process group: ttlp run passes it on
    # once, so the worker stops as on a first signal, not "at once" as on a second.
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(60) == 0
    assert not alive(worker)
    lines = log_lines(services, proc)
    worker_lines = [line for line in lines if line.get("worker") == WORKER_NAME]
    stops = [line for line in worker_lines if line["message"].startswith("stopping")]
    assert [line["signal"] for line in stops] == ["SIGTERM"]
    assert not any("second signal" in str(line["message"]) for line in lines)
    assert {"message": "ttlp stopped", "exit_code": 0} in [
        {k: line.get(k) for k in ("message", "exit_code")} for line in worker_lines
    ]
    assert any(line["message"] == "worker process stopped" for line in lines)


async def test_a_worker_that_dies_stops_ttlp_run_with_an_error(
    services: Ttlp, engine: AsyncEngine
) -> None:
    proc, worker = await running_with_a_worker(services, engine)

    os.kill(worker, signal.SIGKILL)

    assert proc.wait(60) == 1
    crashed = [line for line in log_lines(services, proc) if line["message"].startswith("role cr")]
    assert [line["role"] for line in crashed] == ["worker-1"]
    assert f"worker process {worker} (normalize) was killed by SIGKILL" in str(crashed[0]["error"])


async def test_a_worker_stops_by_itself_when_ttlp_run_is_killed(
    services: Ttlp, engine: AsyncEngine, redis: aioredis.Redis, key_prefix: str
) -> None:
    proc, worker = await running_with_a_worker(services, engine)

    proc.kill()
    proc.wait(10)

    await wait_for(lambda: not alive(worker), what="the worker to stop", timeout=60)
    lines = [line for line in log_lines(services, proc) if line.get("worker") == WORKER_NAME]
    assert any(line["message"] == "ttlp run is gone; stopping this worker" for line in lines)
    assert lines[-1]["message"] == "ttlp stopped"
    assert lines[-1]["exit_code"] == 0
    assert await normalizers(redis, key_prefix) == {WORKER_NAME: 0}  # it acked what it read


def test_workers_are_refused_on_the_in_process_bus(ttlp: Ttlp) -> None:
    result = ttlp.run("run", "--workers", "2")

    assert result.returncode == 2
    assert "TTLP_WORKERS=2 needs REDIS_URL: the in-process bus lives in one process" in (
        result.stderr
    )
