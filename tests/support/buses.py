"""The bus on both backends: the in-process ``MemoryBus`` and ``RedisBus`` on the real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.services import delete_keys
from ttlp.bus.base import Bus
from ttlp.bus.memory import MemoryBus
from ttlp.bus.redis import RedisBus


def backend_bus(redis_url: str | None, maxlen: int) -> Bus:
    """``RedisBus`` on ``redis_url``, or the in-process bus when it is None."""
    if redis_url is None:
        return MemoryBus(maxlen=maxlen)
    return RedisBus(redis_url, maxlen=maxlen)


@pytest.fixture
def bus_maxlen() -> int:
    """The stream cap of the ``bus`` fixture (override in a module that tests trimming)."""
    return 10_000


@pytest.fixture(params=["memory", "redis"])
async def bus(
    request: pytest.FixtureRequest, key_prefix: str, bus_maxlen: int
) -> AsyncIterator[Bus]:
    """The same behaviour suite runs on each backend; Redis keys of this test are deleted."""
    if request.param == "memory":
        yield MemoryBus(maxlen=bus_maxlen)
        return
    redis_bus = RedisBus(request.getfixturevalue("redis_url"), maxlen=bus_maxlen)
    try:
        yield redis_bus
        await delete_keys(redis_bus.client, key_prefix)
    finally:
        await redis_bus.close()
