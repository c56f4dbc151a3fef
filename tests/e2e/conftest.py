"""End-to-end helpers: ``ttlp`` as a subprocess against real services."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.db.engine import create_engine, normalize_database_url

TTLP = [sys.executable, "-m", "ttlp"]


class Ttlp:
    """Start ``ttlp`` commands with one environment; stop what is still running at the end."""

    def __init__(self, env: dict[str, str], cwd: Path, logs: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        with open(self.logs / f"ttlp-{len(self.procs)}.log", "wb") as log:
            # The child keeps its own copy of the descriptor; ours can close at once.
            proc = subprocess.Popen(
                [*TTLP, *args],
                env={**self.env, **env},
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def run(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*TTLP, *args],
            env={**self.env, **env},
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def log_of(self, proc: subprocess.Popen[bytes]) -> str:
        index = self.procs.index(proc)
        return (self.logs / f"ttlp-{index}.log").read_text(errors="replace")

    def stop(
        self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30
    ) -> int:
        if proc.poll() is None:
            proc.send_signal(sig)
        return proc.wait(timeout)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def ttlp_env(tmp_path: Path, key_prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_"))}
    env.update(
        {
            "TTLP_DATA_DIR": str(tmp_path / "data"),
            "REDIS_CONSUMER_GROUP_PREFIX": key_prefix,
            "INGEST_PROVIDER": "mock",
            "LOG_LEVEL": "info",
            "CONSUMER_NAME": "e2e-1",
            "SHUTDOWN_GRACE_S": "10",
            "PYTHONUNBUFFERED": "1",
            "API_HOST": "127.0.0.1",
            "JWT_SECRET": "e2e-jwt-secret-long-enough-for-hs256",
            "API_PORT": str(free_port()),
        }
    )
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ttlp(ttlp_env: dict[str, str], tmp_path: Path) -> Iterator[Ttlp]:
    runner = Ttlp(ttlp_env, tmp_path, tmp_path)
    yield runner
    runner.close()


async def wait_for(
    check: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 60,  # noqa: ASYNC109 - a polling deadline, not a cancel scope
    what: str = "condition",
    poll: float = 0.25,
    alive: subprocess.Popen[bytes] | None = None,
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        if alive is not None and alive.poll() is not None:
            pytest.fail(f"ttlp exited with {alive.returncode} while waiting for {what}")
        await asyncio.sleep(poll)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


# -- Redis + PostgreSQL for ttlp subprocesses -------------------------------------------------
@pytest.fixture
def database_url(pg_database_factory: Any) -> str:
    url: str = pg_database_factory()
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(normalize_database_url(database_url, Path(".")))
    yield eng
    await eng.dispose()


@pytest.fixture
async def redis(redis_url: str, key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{key_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def services(ttlp: Ttlp, redis_url: str, database_url: str) -> Ttlp:
    ttlp.env.update({"REDIS_URL": redis_url, "DATABASE_URL": database_url})
    migrated = ttlp.run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    return ttlp
