"""room id → streamer handle, the one directory the api feed, the rules and the forwarder share.

TikTok room ids change with every broadcast while scopes name streamers, so every role that
checks a scope needs the handle of an event's room. A CONNECTED event says it (``learn``);
otherwise the ``streams`` table does, once the store role has written the stream. A room not
found yet is asked again after ``miss_ttl_s`` (the store may write it a moment after another
role sees its first event). Handles are kept in lower case, as scopes compare them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.db.tables import streams

MISS_TTL_S: Final = 5.0
MAX_ROOMS: Final = 10_000
"""Rooms remembered at most (then the directory starts afresh: a bound, not an LRU)."""

Lookup = Callable[[str], Awaitable[str | None]]


async def stream_handle(engine: AsyncEngine, stream_id: str) -> str | None:
    """The handle of a room as the ``streams`` table has it (lower case), or None."""
    async with engine.connect() as conn:
        value = await conn.scalar(select(streams.c.unique_id).where(streams.c.id == stream_id))
    return str(value).lower() if value else None


class HandleDirectory:
    def __init__(
        self,
        lookup: Lookup,
        *,
        miss_ttl_s: float = MISS_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``lookup``: the database's answer for a room (``stream_handle`` on an engine)."""
        self.lookup = lookup
        self.miss_ttl_s = miss_ttl_s
        self.clock = clock
        self._known: dict[str, tuple[float, str | None]] = {}
        """room → (valid until, handle or None)."""

    @classmethod
    def of(cls, engine: AsyncEngine) -> HandleDirectory:
        async def lookup(stream_id: str) -> str | None:
            return await stream_handle(engine, stream_id)

        return cls(lookup)

    def learn(self, stream_id: str, unique_id: str) -> None:
        self._remember(stream_id, float("inf"), unique_id.lower())

    async def handle(self, stream_id: str) -> str | None:
        now = self.clock()
        hit = self._known.get(stream_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        handle = await self.lookup(stream_id)
        handle = handle.lower() if handle else None
        self._remember(stream_id, float("inf") if handle else now + self.miss_ttl_s, handle)
        return handle

    def _remember(self, stream_id: str, until: float, handle: str | None) -> None:
        if len(self._known) >= MAX_ROOMS and stream_id not in self._known:
            self._known.clear()
        self._known[stream_id] = (until, handle)
