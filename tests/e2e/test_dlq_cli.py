"""``ttlp dlq list|retry|purge`` as an operator runs it, next to a running forward role.

Redis + PostgreSQL (the dead-letter stream must outlive the process that wrote it): a target
that fails ends in the DLQ, ``dlq list`` shows it, ``dlq retry`` delivers it once the receiver
is healthy again, a normalizer entry goes back to ``ttlc:raw``, and ``dlq purge`` asks first.
"""

from __future__ import annotations

import asyncio
import json
import subprocess

import msgspec
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fakes.receiver import Receiver, Reply, Request
from tests.support.api import fixture_events
from tests.support.processes import Ttlp
from tests.support.wait import wait_for
from ttlp.db.tables import forward_deliveries
from ttlp.forward.store import ForwardStore

pytestmark = pytest.mark.e2e

RAW_FRAME = {"schemaVersion": "raw.v1", "type": "WebcastChatMessage", "data": "not json"}


async def run(ttlp: Ttlp, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``ttlp dlq *args`` off the event loop (the fakes this test serves live on it)."""
    return await asyncio.to_thread(ttlp.run, "dlq", *args, timeout=60, stdin=stdin, COLUMNS="200")


async def test_dlq_list_retry_and_purge(
    services: Ttlp, engine: AsyncEngine, redis: aioredis.Redis, key_prefix: str
) -> None:
    healthy = False

    def receiver(_: Request) -> Reply:
        return Reply(200) if healthy else Reply(500)

    dlq_key = f"{key_prefix}ttlc:dlq"
    async with Receiver(receiver) as rx:
        target = await ForwardStore(engine).create_target(
            {
                "name": "hook",
                "url": rx.url,
                "secret": "s" * 32,
                "event_types": [],
                "scope": "*",
                "enabled": True,
                "created_by": "e2e",
            }
        )
        forward = services.start(
            "run", "--roles", "forward", WEBHOOK_ALLOWLIST="127.0.0.1", FORWARD_MAX_ATTEMPTS="2"
        )
        event = fixture_events()[1]
        await redis.xadd(f"{key_prefix}ttlc:events", {"event": msgspec.json.encode(event).decode()})
        await wait_for(lambda: redis.xlen(dlq_key), what="a forwarder dead letter", alive=forward)
        assert len(rx.requests) == 2
        # A normalizer dead letter, as the consume loop writes it.
        await redis.xadd(
            dlq_key,
            {
                "stage": "normalizer",
                "reason": "PARSE_ERROR",
                "error": "data is not JSON",
                "payload": json.dumps(RAW_FRAME),
                "failedAt": "2026-01-01T00:00:00.000Z",
            },
        )

        listed = await run(services, "list")
        assert listed.returncode == 0, listed.stderr
        assert "FORWARD_FAILED" in listed.stdout
        assert "PARSE_ERROR" in listed.stdout
        assert f"target {target.id}" in listed.stdout
        only = await run(services, "list", "--stage", "normalizer")
        assert "PARSE_ERROR" in only.stdout
        assert "FORWARD_FAILED" not in only.stdout

        nothing = await run(services, "retry")
        assert nothing.returncode != 0
        assert "--stage" in nothing.stderr

        healthy = True
        retried = await run(services, "retry", "--stage", "forwarder")
        assert retried.returncode == 0, retried.stderr
        assert "1 entries retried" in retried.stdout

        async def delivered() -> bool:
            async with engine.connect() as conn:
                status = await conn.scalar(select(forward_deliveries.c.status))
            return status == "delivered"

        await wait_for(delivered, what="the retried delivery", alive=forward)
        assert len(rx.requests) == 3
        services.stop(forward)

    again = await run(services, "retry", "--stage", "normalizer")
    assert again.returncode == 0, again.stderr
    [(_, fields)] = await redis.xrange(f"{key_prefix}ttlc:raw")
    assert fields == RAW_FRAME
    assert await redis.xlen(dlq_key) == 0

    for _ in range(2):
        letter = {"stage": "forwarder", "reason": "FORWARD_FAILED", "error": "x", "payload": "{}"}
        await redis.xadd(dlq_key, {**letter, "failedAt": "2026-01-01T00:00:00.000Z"})
    declined = await run(services, "purge", "--all", stdin="n\n")
    assert declined.returncode == 0, declined.stderr
    assert "nothing deleted" in declined.stdout
    assert await redis.xlen(dlq_key) == 2
    purged = await run(services, "purge", "--stage", "forwarder", "--yes")
    assert purged.returncode == 0, purged.stderr
    assert "2 entries deleted" in purged.stdout
    assert await redis.xlen(dlq_key) == 0


def test_dlq_needs_redis(ttlp: Ttlp) -> None:
    result = ttlp.run("dlq", "list")
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr
