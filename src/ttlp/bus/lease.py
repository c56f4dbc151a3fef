"""Which ingest replica holds which streamer: a renewed Redis lease per streamer.

``SET key owner NX PX ttl`` takes a free lease; the holder renews it every ``ttl/3`` with a
compare-and-expire script, and releases it with compare-and-delete. A replica that dies stops
renewing, its leases expire, and another replica takes the streamer within ``ttl``.
"""

from __future__ import annotations

from typing import Final

import redis.asyncio as aioredis

_RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_TAKE_OVER: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return false
"""
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Lease:
    """The lease on one streamer, held by ``owner`` (this replica)."""

    def __init__(self, client: aioredis.Redis, key: str, owner: str, ttl_ms: int) -> None:
        self.client = client
        self.key = key
        self.owner = owner
        self.ttl_ms = ttl_ms
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._take_over = client.register_script(_TAKE_OVER)

    async def acquire(self) -> bool:
        """Take the lease if it is free (or already ours); True when we hold it."""
        if await self.client.set(self.key, self.owner, nx=True, px=self.ttl_ms):
            return True
        return await self.renew()

    async def renew(self) -> bool:
        """Extend our lease; False when it expired or another replica holds it."""
        return bool(await self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]))

    async def take_over(self, stale_owner: str) -> bool:
        """Take the lease from ``stale_owner`` (known dead), unless someone else got it first."""
        return bool(
            await self._take_over(keys=[self.key], args=[stale_owner, self.owner, self.ttl_ms])
        )

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.owner])

    async def holder(self) -> str | None:
        value = await self.client.get(self.key)
        return None if value is None else str(value)
