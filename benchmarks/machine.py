"""The machine's own limits, measured in the same run as each benchmark (DESIGN §12), so a
benchmark's figures read as ratios: Redis XADD rate and batched INSERT rate.

Redis and PostgreSQL default to 127.0.0.1; ``TTLP_BENCH_REDIS_URL`` / ``TTLP_BENCH_DATABASE_URL``
point elsewhere (read when a benchmark asks, never at import).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import resource
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from ttlp.contracts.events import frame_to_fields
from ttlp.tiktok.providers.mock import bundled_fixture, load_fixture


@contextlib.asynccontextmanager
async def scratch_postgres(label: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database, migrated (its URL as ttlp takes it), dropped afterwards."""
    import asyncpg

    from ttlp.db.engine import normalize_database_url
    from ttlp.db.migrate import upgrade

    admin_url = pg_url().replace("postgresql+asyncpg://", "postgresql://")
    name = f"ttlp_bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        await asyncio.to_thread(upgrade, normalize_database_url(url, Path.cwd()))
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def scratch_prefix(label: str) -> AsyncIterator[str]:
    """A Redis key prefix of this run's own; its keys are deleted afterwards."""
    import redis.asyncio as aioredis

    prefix = f"bench-{label}-{uuid.uuid4().hex[:8]}-"
    try:
        yield prefix
    finally:
        client = aioredis.from_url(redis_url())
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def redis_url() -> str:
    return os.environ.get("TTLP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def pg_url() -> str:
    return os.environ.get(
        "TTLP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )


async def redis_xadd_rate(n: int = 50_000, url: str | None = None) -> float:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url or redis_url())
    key = f"bench-xadd-{uuid.uuid4().hex[:8]}"
    line = next(line for line in load_fixture(bundled_fixture()) if line.frame is not None)
    assert line.frame is not None
    fields = frame_to_fields(line.frame)
    started = time.perf_counter()
    for _ in range(n // 500):
        pipe = client.pipeline(transaction=False)
        for _ in range(500):
            pipe.xadd(key, fields, maxlen=100_000, approximate=True)  # type: ignore[arg-type]
        await pipe.execute()
    rate = n / (time.perf_counter() - started)
    await client.delete(key)
    await client.aclose()
    return rate


async def insert_rate(url: str, n: int = 50_000) -> float:
    """Batched INSERT of events-sized rows (500 per batch) into a scratch table."""
    from sqlalchemy import JSON, BigInteger, Column, Integer, MetaData, String, Table, insert
    from sqlalchemy.dialects.postgresql import JSONB

    from ttlp.db.engine import create_engine

    meta = MetaData()
    table = Table(
        f"bench_insert_{uuid.uuid4().hex[:8]}",
        meta,
        Column(
            "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        Column("event_id", String(64), unique=True),
        Column("session_id", String(36)),
        Column("event_type", String(16)),
        Column("seq_no", BigInteger),
        Column("event_data", JSON().with_variant(JSONB, "postgresql")),
    )
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
    payload = {"eventType": "CHAT", "payload": {"message": "hello 👋" * 4}, "user": {"userId": "1"}}
    session = str(uuid.uuid4())
    started = time.perf_counter()
    for b in range(n // 500):
        rows = [
            {
                "event_id": uuid.uuid4().hex * 2,
                "session_id": session,
                "event_type": "CHAT",
                "seq_no": b * 500 + i,
                "event_data": payload,
            }
            for i in range(500)
        ]
        async with engine.begin() as conn:
            await conn.execute(insert(table), rows)
    rate = n / (time.perf_counter() - started)
    async with engine.begin() as conn:
        await conn.run_sync(meta.drop_all)
    await engine.dispose()
    return rate


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def proc_status_mb(field: str, pid: int | None = None) -> float:
    """A memory figure of this process (or of ``pid``) from ``/proc/*/status``, in MB:
    ``VmRSS`` (resident now) or ``VmHWM`` (the peak of VmRSS); NaN where there is no /proc
    (not Linux)."""
    try:
        text = Path(f"/proc/{pid or 'self'}/status").read_text()
    except OSError:
        return float("nan")
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_now_mb() -> float:
    """Resident memory of this process now (VmRSS), MB."""
    return proc_status_mb("VmRSS")


def rss_peak_mb() -> float:
    """Peak resident memory of this process (VmHWM; ``ru_maxrss`` where /proc is missing), MB."""
    peak = proc_status_mb("VmHWM")
    return rss_mb() if math.isnan(peak) else peak
