"""Publishing raw frames to ``ttlc:raw``: batched, and paced for sources that can wait.

Live TikTok traffic cannot be slowed down, but the mock provider and replays can: they wait
while the slowest consumer group of ``ttlc:raw`` (and of the streams after it) has more than
half of ``STREAM_MAXLEN`` unread or unacked, so a fast producer never makes MAXLEN trim entries
nobody has processed yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

from ttlp.bus.base import Bus
from ttlp.contracts.events import RawFrame, frame_to_fields

# How often a paced publisher re-checks the consumers' lag while it waits.
LAG_POLL_S: Final = 0.05


class FramePublisher:
    def __init__(
        self, bus: Bus, stream: str, *, paced: bool, downstream: Sequence[str] = ()
    ) -> None:
        """``downstream``: streams further along the pipeline whose consumers count too (a
        fast normalizer must not let the events stream outrun the store)."""
        self.bus = bus
        self.stream = stream
        self.watched = (stream, *downstream)
        self.paced = paced
        self.published = 0
        self._max_lag = max(bus.maxlen // 2, 1)

    async def publish(self, frames: Sequence[RawFrame]) -> None:
        if not frames:
            return
        if self.paced:
            await self._wait_for_consumers(len(frames))
        await self.bus.publish_many(self.stream, [frame_to_fields(f) for f in frames])
        self.published += len(frames)
        await asyncio.sleep(0)  # let the consumers of an in-process bus run

    async def _wait_for_consumers(self, adding: int) -> None:
        while True:
            lag = 0
            for stream in self.watched:
                groups = await self.bus.groups(stream)
                for group in groups:
                    lag = max(lag, group.lag or 0, group.pending)
            if lag + adding <= self._max_lag:
                return
            await asyncio.sleep(LAG_POLL_S)
