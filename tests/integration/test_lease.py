"""Several ingest replicas on Redis: each streamer held by exactly one, and a dead replica's
streamers taken over within the lease time."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from tests.support.wait import tasks_end, wait_for
from ttlp.bus.keys import Keys
from ttlp.bus.lease import Lease
from ttlp.bus.memory import MemoryBus
from ttlp.tiktok.providers.base import Session
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.supervisor import StreamerSupervisor

pytestmark = pytest.mark.integration

STREAMERS = ("alice", "bob", "carol")
TTL_MS = 600


class Holding:
    """A provider whose connections stay up until stopped; records who is connected."""

    name = "direct"

    def __init__(self) -> None:
        self.connected: set[str] = set()

    async def is_live(self, unique_id: str) -> bool:
        return True

    async def run(self, unique_id: str, session: Session, stop: asyncio.Event) -> None:
        await session.connected("1")
        self.connected.add(unique_id)
        try:
            await stop.wait()
        finally:
            self.connected.discard(unique_id)


def replica(
    client: aioredis.Redis, prefix: str, name: str, stop: asyncio.Event
) -> tuple[Holding, list[asyncio.Task[None]]]:
    provider = Holding()
    publisher = FramePublisher(MemoryBus(), "raw", paced=False)
    keys = Keys(prefix)
    tasks = [
        asyncio.create_task(
            StreamerSupervisor(
                provider,
                handle,
                publisher,
                lease=Lease(client, keys.lease(handle), owner=name, ttl_ms=TTL_MS),
            ).run(stop)
        )
        for handle in STREAMERS
    ]
    return provider, tasks


async def test_each_streamer_is_held_by_one_replica_and_moves_when_one_dies(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    a, a_tasks = replica(redis, key_prefix, "replica-a", stop_a)
    b, b_tasks = replica(redis, key_prefix, "replica-b", stop_b)
    await wait_for(
        lambda: len(a.connected | b.connected) == 3, timeout=3, poll=0.02, what="3 streamers held"
    )
    await asyncio.sleep(TTL_MS / 1000)  # renewals go on; nobody takes over a held streamer
    assert a.connected | b.connected == set(STREAMERS)
    assert not a.connected & b.connected

    # Replica A dies (no release, no DISCONNECTED): its leases expire, B takes them over.
    moving = set(a.connected)
    for task in a_tasks:
        task.cancel()
    await tasks_end(a_tasks, what="cancelled supervisors of replica A")
    started = time.monotonic()
    await wait_for(
        lambda: b.connected == set(STREAMERS), timeout=3, poll=0.02, what="B holding all three"
    )
    took = time.monotonic() - started
    assert took <= 2 * TTL_MS / 1000 + 0.5, took
    holders = {h: await redis.get(Keys(key_prefix).lease(h)) for h in STREAMERS}
    assert set(holders.values()) == {"replica-b"}
    assert moving <= b.connected

    stop_b.set()
    assert await tasks_end(b_tasks, what="supervisors of replica B") == [None] * 3
    assert [await redis.get(Keys(key_prefix).lease(h)) for h in STREAMERS] == [None] * 3
