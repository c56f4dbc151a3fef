"""Publishing raw frames to ``ttlc:raw``: batched, buffered through bus outages, and paced for
sources that can wait.

Live TikTok traffic cannot be slowed down, but the mock provider and replays can: they wait
while the slowest consumer group of ``ttlc:raw`` (and of the streams after it) has more than
half of ``STREAM_MAXLEN`` unread or unacked, so a fast producer never makes MAXLEN trim entries
nobody has processed yet.

While the bus is unreachable (Redis restarting, a network cut), frames wait in a bounded
buffer, in order, and a flusher publishes them with back-off as soon as the bus answers again.
A full buffer pauses the source: ``publish`` returns only when there is room. The time a live
source spent paused is reported once (``take_gap``) so its session can record the gap as a
lifecycle frame: TikTok's messages of that time may be missing, and the data should say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from itertools import islice
from typing import Final

from loguru import logger

from ttlp.aio import Backoff
from ttlp.bus.base import Bus
from ttlp.contracts.events import RawFrame, frame_to_fields
from ttlp.errors import is_transient

# How often a paced publisher re-checks the consumers' lag while it waits (on the in-process
# bus an ack wakes it sooner).
LAG_POLL_S: Final = 0.05
HEADROOM_S: Final = 0.5
"""How long a paced publisher trusts its last look at the consumers' lag (see
``_wait_for_consumers``)."""
FLUSH_CHUNK: Final = 500
# Reconnect pacing while the bus is away: 100 ms doubling to 5 s, as the consume loop does.
FLUSH_BACKOFF: Final = Backoff(initial_s=0.1, max_s=5.0)
DEFAULT_BUFFER_FRAMES: Final = 50_000


class FramePublisher:
    def __init__(
        self,
        bus: Bus,
        stream: str,
        *,
        paced: bool,
        downstream: Sequence[str] = (),
        expected: Mapping[str, Collection[str]] | None = None,
        buffer_frames: int = DEFAULT_BUFFER_FRAMES,
    ) -> None:
        """``downstream``: streams further along the pipeline whose consumers count too (a
        fast normalizer must not let the events stream outrun the store). ``expected``: the
        consumer groups each watched stream will have (``ttlp.runtime.pipeline_groups``); while
        one is not created yet (its role is starting), the whole stream counts as unread, as
        that group will read it from the start. ``buffer_frames``: how many frames may wait for
        an unreachable bus before the source is paused."""
        self.bus = bus
        self.stream = stream
        self.watched = (stream, *downstream)
        self.expected = expected or {}
        self.paced = paced
        self.published = 0
        self.buffer_frames = max(buffer_frames, 1)
        self._max_lag = max(bus.maxlen // 2, 1)
        self._headroom = 0
        self._headroom_until = 0.0
        self._buffer: deque[dict[str, str]] = deque()
        self._flushed = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._outage_started: float | None = None
        self._paused_s = 0.0
        self.log = logger.bind(role="ingest", stream=stream)

    @property
    def buffered(self) -> int:
        """Frames waiting for the bus."""
        return len(self._buffer)

    async def publish(self, frames: Sequence[RawFrame]) -> None:
        if not frames:
            return
        if self.paced and not self._buffer:
            await self._wait_for_consumers(len(frames))
        await self.publish_fields([frame_to_fields(f) for f in frames])

    async def publish_fields(self, batch: list[dict[str, str]]) -> None:
        """Publish entries as they are (in order behind whatever is buffered)."""
        if not self._buffer:
            try:
                await self.bus.publish_many(self.stream, batch)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._outage(exc)
            else:
                self.published += len(batch)
                await asyncio.sleep(0)  # let the consumers of an in-process bus run
                return
        self._buffer.extend(batch)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="frame-flusher")
        if len(self._buffer) > self.buffer_frames:
            paused = time.monotonic()
            self.log.warning("buffer full: the source is paused", buffered=len(self._buffer))
            while len(self._buffer) > self.buffer_frames:
                self._flushed.clear()
                await self._flushed.wait()
            self._paused_s += time.monotonic() - paused

    def take_gap(self) -> float:
        """Seconds the source was paused since the last call (0.0 when it never was)."""
        gap, self._paused_s = self._paused_s, 0.0
        return gap

    async def drain(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for the buffer to empty; → frames still buffered."""
        if self._flusher is not None and not self._flusher.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._flusher), timeout_s)
        return len(self._buffer)

    def _outage(self, exc: BaseException) -> None:
        if self._outage_started is None:
            self._outage_started = time.monotonic()
            self.log.warning(
                "bus unreachable: buffering frames",
                error=f"{type(exc).__name__}: {str(exc)[:200]}",
                buffer_frames=self.buffer_frames,
            )

    async def _flush(self) -> None:
        delays = FLUSH_BACKOFF.delays()
        while self._buffer:
            chunk = list(islice(self._buffer, FLUSH_CHUNK))
            try:
                await self.bus.publish_many(self.stream, chunk)
            except Exception as exc:
                if not is_transient(exc):
                    self.log.opt(exception=exc).error("cannot publish buffered frames")
                    raise
                self._outage(exc)
                await asyncio.sleep(next(delays))
                continue
            for _ in chunk:
                self._buffer.popleft()
            self.published += len(chunk)
            self._flushed.set()
            delays = FLUSH_BACKOFF.delays()
        if self._outage_started is not None:
            self.log.info(
                "bus reachable again: buffered frames published",
                outage_s=round(time.monotonic() - self._outage_started, 1),
            )
            self._outage_started = None
        self._flushed.set()

    async def _wait_for_consumers(self, adding: int) -> None:
        """Return once ``adding`` more frames keep the pipeline's backlog under the limit.

        The backlog is, summed over the watched streams, the most entries one group of each
        has not acknowledged (unread and pending): a frame waiting on ``ttlc:raw`` becomes an
        event on ``ttlc:events`` later, so with this sum under half of MAXLEN no stream ever
        holds more unacknowledged entries than MAXLEN, and trimming takes only what every
        group has read (the largest lag of any one group, as before, bounded neither the
        pending entries nor what raw still holds for events). A group not created yet counts
        its whole stream: without that, at an in-process MAXLEN of 2,000, the mock published
        past it before the roles had made their groups, and frames were trimmed unread.

        The backlog grows only by what is published, so after one look the frames up to the
        limit go without asking again (for ``HEADROOM_S``, as other producers may publish
        too): the mock at 1,000 frames/s asked the bus for every group's lag before each
        frame, two XINFO GROUPS round trips per frame on Redis; now about two a second.
        """
        if adding <= self._headroom and time.monotonic() < self._headroom_until:
            self._headroom -= adding
            return
        while True:
            lag = 0
            try:
                for stream in self.watched:
                    lag += await self._backlog(stream)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                return  # the bus is away: nothing to pace against; the buffer takes over
            if lag + adding <= self._max_lag:
                self._headroom = self._max_lag - lag - adding
                self._headroom_until = time.monotonic() + HEADROOM_S
                return
            await self.bus.wait_for_ack(LAG_POLL_S)

    async def _backlog(self, stream: str) -> int:
        """The most entries of ``stream`` one of its groups has not acknowledged; the whole
        stream while an expected group is missing."""
        groups = await self.bus.groups(stream)
        backlog = max(((g.lag or 0) + g.pending for g in groups), default=0)
        if set(self.expected.get(stream, ())) - {g.name for g in groups}:
            backlog = max(backlog, await self.bus.length(stream))
        return backlog
