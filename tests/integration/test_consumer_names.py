"""Consumer names (ttlp.bus.names): one live process per name, stable across restarts."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from ttlp.bus.keys import Keys
from ttlp.bus.memory import MemoryBus
from ttlp.bus.names import claim
from ttlp.bus.redis import RedisBus
from ttlp.errors import ConfigError

pytestmark = pytest.mark.integration


async def test_two_processes_on_one_host_get_distinct_default_names(
    redis_url: str, key_prefix: str
) -> None:
    bus = RedisBus(redis_url)
    keys = Keys(key_prefix)
    try:
        first = await claim(bus, keys, "box", explicit=False, host="box")
        # Another live process of this host holds "box": simulate it with our parent's pid.
        assert first.lease is not None
        await bus.client.set(keys.consumer_name("box"), f"{os.getppid()}@box", px=15_000)
        second = await claim(bus, keys, "box", explicit=False, host="box")
        assert (first.name, second.name) == ("box", "box-2")
        await second.release()
    finally:
        await bus.client.delete(keys.consumer_name("box"), keys.consumer_name("box-2"))
        await bus.close()


async def test_an_explicit_name_held_by_a_live_process_is_refused(
    redis_url: str, key_prefix: str
) -> None:
    bus = RedisBus(redis_url)
    keys = Keys(key_prefix)
    try:
        await bus.client.set(keys.consumer_name("worker-a"), f"{os.getppid()}@box", px=15_000)
        with pytest.raises(ConfigError, match="CONSUMER_NAME=worker-a is in use"):
            await claim(bus, keys, "worker-a", explicit=True, host="box")
    finally:
        await bus.client.delete(keys.consumer_name("worker-a"))
        await bus.close()


async def test_a_crashed_process_name_is_taken_back_at_once(
    redis_url: str, key_prefix: str
) -> None:
    """A restarted replica re-reads its own pending entries: it must get its name back, not
    wait for the dead process's lease to expire."""
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await child.wait()
    dead_pid = child.pid  # that process has exited
    bus = RedisBus(redis_url)
    keys = Keys(key_prefix)
    try:
        await bus.client.set(keys.consumer_name("box"), f"{dead_pid}@box", px=15_000)
        name = await claim(bus, keys, "box", explicit=True, host="box")
        assert name.name == "box"
        assert await bus.client.get(keys.consumer_name("box")) == f"{os.getpid()}@box"
        await name.release()
        assert await bus.client.get(keys.consumer_name("box")) is None
    finally:
        await bus.client.delete(keys.consumer_name("box"))
        await bus.close()


async def test_the_in_process_bus_needs_no_claim() -> None:
    name = await claim(MemoryBus(), Keys(), "box", explicit=True, host="box")
    assert (name.name, name.lease) == ("box", None)
