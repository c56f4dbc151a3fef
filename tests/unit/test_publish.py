"""Frames wait through a bus outage, in order, in a bounded buffer (ttlp.tiktok.publish)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest
import redis.exceptions

from tests.support.wait import wait_for
from ttlp.bus.base import GroupInfo
from ttlp.bus.memory import MemoryBus
from ttlp.contracts.events import RawFrame
from ttlp.tiktok import publish
from ttlp.tiktok.publish import FramePublisher


class FlakyBus(MemoryBus):
    """The in-process bus, unreachable while ``down`` is set (as Redis is when it restarts)."""

    def __init__(self) -> None:
        super().__init__(maxlen=100_000)
        self.down = asyncio.Event()

    async def publish_many(self, stream: str, batch: Sequence[Mapping[str, str]]) -> list[str]:
        if self.down.is_set():
            raise redis.exceptions.ConnectionError("Connection refused")
        return await super().publish_many(stream, batch)


def frame(seq: int) -> RawFrame:
    return RawFrame(
        schema_version="raw.v1",
        stream_id="7",
        session_id="00000000-0000-4000-8000-000000000001",
        source="live",
        type="WebcastChatMessage",
        seq_no=seq,
        timestamp="2024-11-21T19:30:00.000Z",
        ingested_at="2024-11-21T19:30:00.000Z",
        data={"content": str(seq)},
    )


async def seqs(bus: MemoryBus) -> list[int]:
    return [int(e.fields["seqNo"]) for e in await bus.range("raw") if e.fields]


async def test_frames_published_during_an_outage_arrive_in_order_when_it_ends() -> None:
    bus = FlakyBus()
    publisher = FramePublisher(bus, "raw", paced=False, buffer_frames=100)
    await publisher.publish([frame(1)])
    bus.down.set()
    await publisher.publish([frame(2), frame(3)])  # returns: buffered, not lost, not raised
    await publisher.publish([frame(4)])
    assert (publisher.buffered, await seqs(bus)) == (3, [1])
    bus.down.clear()
    assert await publisher.drain(10) == 0
    assert await seqs(bus) == [1, 2, 3, 4]
    assert publisher.published == 4
    assert publisher.take_gap() == 0.0  # never full: the source never waited


async def test_a_full_buffer_pauses_the_source_and_reports_the_gap_once() -> None:
    bus = FlakyBus()
    publisher = FramePublisher(bus, "raw", paced=False, buffer_frames=2)
    bus.down.set()
    await publisher.publish([frame(1), frame(2)])
    blocked = asyncio.create_task(publisher.publish([frame(3)]))
    await asyncio.sleep(0.05)
    assert not blocked.done()  # paused: the buffer is full
    bus.down.clear()
    await asyncio.wait_for(blocked, 10)
    await publisher.drain(10)
    assert await seqs(bus) == [1, 2, 3]
    gap = publisher.take_gap()
    assert gap > 0.0
    assert publisher.take_gap() == 0.0


class LaggingBus(MemoryBus):
    """The in-process bus with one consumer group whose lag the test sets, counting looks."""

    def __init__(self, maxlen: int) -> None:
        super().__init__(maxlen=maxlen)
        self.lag = 0
        self.looks = 0

    async def groups(self, stream: str) -> list[GroupInfo]:
        self.looks += 1
        return [GroupInfo("g", 1, 0, self.lag, "0-0")]


async def test_a_paced_publisher_waits_for_lagging_consumers_and_asks_once_per_headroom() -> None:
    bus = LaggingBus(maxlen=20)  # the limit: half of MAXLEN, 10 entries unread
    publisher = FramePublisher(bus, "raw", paced=True)
    for seq in range(8):  # one look, then 7 more frames within its headroom of 9
        await publisher.publish([frame(seq)])
    assert (bus.looks, await seqs(bus)) == (1, list(range(8)))

    bus.lag = 9  # the consumers fell behind: the next frames exceed the headroom
    await publisher.publish([frame(8)])  # headroom 1 left: no look
    assert bus.looks == 1
    blocked = asyncio.create_task(publisher.publish([frame(9), frame(10)]))
    await wait_for(lambda: bus.looks >= 3, timeout=10, what="a second look", poll=0.01)
    assert not blocked.done()  # 9 + 2 > 10: waiting
    bus.lag = 0
    await asyncio.wait_for(blocked, 10)
    assert await seqs(bus) == list(range(11))


async def test_a_paced_publishers_headroom_expires() -> None:
    bus = LaggingBus(maxlen=1000)
    publisher = FramePublisher(bus, "raw", paced=True)
    await publisher.publish([frame(1)])
    publisher._headroom_until = 0.0  # as if HEADROOM_S had passed
    await publisher.publish([frame(2)])
    assert bus.looks == 2


class CountingBus(MemoryBus):
    """The in-process bus, counting the publisher's looks at its groups."""

    def __init__(self, maxlen: int) -> None:
        super().__init__(maxlen=maxlen)
        self.looks = 0

    async def groups(self, stream: str) -> list[GroupInfo]:
        self.looks += 1
        return await super().groups(stream)


async def test_a_paced_publisher_counts_every_stream_unread_and_pending_entries() -> None:
    """What waits on raw becomes events later, and a pending entry is not done: with raw 4
    unread, events 3 unread and 3 pending, one more frame is over half of MAXLEN (20)."""
    bus = CountingBus(maxlen=20)
    for stream, group in (("raw", "normalizer"), ("events", "storage")):
        await bus.ensure_group(stream, group)
    await bus.publish_many("raw", [{"n": str(i)} for i in range(4)])
    await bus.publish_many("events", [{"n": str(i)} for i in range(6)])
    taken = await bus.read_group("events", "storage", "s", count=3, block_ms=None)
    publisher = FramePublisher(bus, "raw", paced=True, downstream=("events",))

    blocked = asyncio.create_task(publisher.publish([frame(1)]))
    await wait_for(lambda: bus.looks >= 4, timeout=10, what="a second look", poll=0.01)
    assert not blocked.done()  # 4 + (3 + 3) + 1 > 10
    await bus.ack("events", "storage", [e.id for e in taken])
    await asyncio.wait_for(blocked, 10)  # 4 + 3 + 1 <= 10
    assert await bus.length("raw") == 5


async def test_a_paced_publisher_waits_for_a_group_not_created_yet() -> None:
    """At start the roles create their groups while ingest already publishes; a group created
    later reads its stream from the start, so nothing may be trimmed before it exists."""
    bus = CountingBus(maxlen=20)
    publisher = FramePublisher(bus, "raw", paced=True, expected={"raw": {"normalizer"}})

    async def produce() -> None:
        for seq in range(30):
            await publisher.publish([frame(seq)])

    producer = asyncio.create_task(produce())
    await wait_for(lambda: bus.looks >= 3, timeout=10, what="the publisher waiting", poll=0.01)
    assert (publisher.published, producer.done()) == (10, False)  # half of MAXLEN, no group

    await bus.ensure_group("raw", "normalizer")
    read: list[int] = []
    while len(read) < 30:
        entries = await bus.read_group("raw", "normalizer", "n", count=5, block_ms=1000)
        await bus.ack("raw", "normalizer", [e.id for e in entries])
        read += [int((e.fields or {})["seqNo"]) for e in entries]
    await producer
    assert read == list(range(30))


async def test_on_the_in_process_bus_the_ack_that_makes_room_wakes_a_waiting_publisher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With an hour between looks, only the ack itself can release the publisher in time."""
    monkeypatch.setattr(publish, "LAG_POLL_S", 3600.0)
    bus = CountingBus(maxlen=20)
    await bus.ensure_group("raw", "normalizer")
    publisher = FramePublisher(bus, "raw", paced=True)
    await publisher.publish([frame(seq) for seq in range(10)])  # half of MAXLEN: the limit
    taken = await bus.read_group("raw", "normalizer", "n", count=10, block_ms=None)

    assert bus.looks == 1
    blocked = asyncio.create_task(publisher.publish([frame(10), frame(11)]))
    await wait_for(lambda: bus.looks >= 2, timeout=10, what="the publisher looking", poll=0.01)
    assert not blocked.done()  # 10 pending + 2 > 10
    await bus.ack("raw", "normalizer", [])  # acking nothing makes no room, wakes nobody
    assert await bus.ack("raw", "normalizer", [e.id for e in taken[:2]]) == 2
    await asyncio.wait_for(blocked, 10)  # 8 + 2 <= 10
    assert await seqs(bus) == list(range(12))


async def test_a_wait_for_an_ack_ends_at_its_timeout_when_nobody_acks() -> None:
    bus = MemoryBus(maxlen=20)
    waiter = asyncio.create_task(bus.wait_for_ack(0.01))
    await asyncio.wait_for(waiter, 10)
    assert waiter.result() is None
