"""The bus behaviour suite: the same Redis Streams semantics on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.wait import wait_for
from ttlp.bus.base import Bus

pytestmark = pytest.mark.integration


@pytest.fixture
def bus_maxlen() -> int:
    """A small cap, so that the trimming test fills it quickly."""
    return 1000


@pytest.fixture
def stream(key_prefix: str) -> str:
    return f"{key_prefix}ttlc:raw"


async def fill(bus: Bus, stream: str, n: int) -> list[str]:
    return await bus.publish_many(stream, [{"n": str(i)} for i in range(n)])


async def test_group_reads_entries_in_order_exactly_once(bus: Bus, stream: str) -> None:
    ids = await fill(bus, stream, 5)
    await bus.ensure_group(stream, "g")
    first = await bus.read_group(stream, "g", "c1", count=3, block_ms=None)
    second = await bus.read_group(stream, "g", "c2", count=10, block_ms=None)
    third = await bus.read_group(stream, "g", "c1", count=10, block_ms=None)
    assert [e.id for e in first + second] == ids
    assert [e.fields for e in first] == [{"n": "0"}, {"n": "1"}, {"n": "2"}]
    assert third == []


async def test_ensure_group_is_idempotent_and_start_position_counts(bus: Bus, stream: str) -> None:
    await fill(bus, stream, 2)
    await bus.ensure_group(stream, "from-start", "0")
    await bus.ensure_group(stream, "from-start", "0")
    await bus.ensure_group(stream, "only-new", "$")
    await fill(bus, stream, 1)
    assert len(await bus.read_group(stream, "from-start", "c", count=10, block_ms=None)) == 3
    only_new = await bus.read_group(stream, "only-new", "c", count=10, block_ms=None)
    assert [e.fields for e in only_new] == [{"n": "0"}]


async def test_ack_clears_pending_and_groups_report_lag(bus: Bus, stream: str) -> None:
    await bus.ensure_group(stream, "g")
    await fill(bus, stream, 4)
    entries = await bus.read_group(stream, "g", "c", count=3, block_ms=None)
    (info,) = await bus.groups(stream)
    assert (info.name, info.pending, info.lag) == ("g", 3, 1)
    assert await bus.ack(stream, "g", [e.id for e in entries[:2]]) == 2
    (info,) = await bus.groups(stream)
    assert info.pending == 1


async def test_history_read_returns_own_pending_with_delivery_count(bus: Bus, stream: str) -> None:
    await bus.ensure_group(stream, "g")
    await fill(bus, stream, 3)
    read = await bus.read_group(stream, "g", "c1", count=2, block_ms=None)
    await bus.ack(stream, "g", [read[0].id])
    again = await bus.read_group(stream, "g", "c1", count=10, block_ms=None, history=True)
    assert [(e.id, e.deliveries) for e in again] == [(read[1].id, 2)]
    assert await bus.read_group(stream, "g", "c2", count=10, block_ms=None, history=True) == []
    third = await bus.read_group(stream, "g", "c1", count=10, block_ms=None, history=True)
    assert third[0].deliveries == 3


async def test_idle_entries_of_a_dead_consumer_are_claimed(bus: Bus, stream: str) -> None:
    await bus.ensure_group(stream, "g")
    await fill(bus, stream, 3)
    taken = await bus.read_group(stream, "g", "dead", count=10, block_ms=None)
    cursor, early = await bus.claim_idle(
        stream, "g", "live", min_idle_ms=10_000, start="0-0", count=10
    )
    assert early == []
    await asyncio.sleep(0.06)
    cursor, claimed = await bus.claim_idle(
        stream, "g", "live", min_idle_ms=50, start="0-0", count=10
    )
    assert [e.id for e in claimed] == [e.id for e in taken]
    assert all(e.deliveries == 2 for e in claimed)
    assert cursor == "0-0"
    mine = await bus.read_group(stream, "g", "live", count=10, block_ms=None, history=True)
    assert [e.id for e in mine] == [e.id for e in taken]


async def test_every_publish_caps_the_stream(bus: Bus, stream: str) -> None:
    for _ in range(10):
        await fill(bus, stream, 500)
    length = await bus.length(stream)
    # Redis trims approximately (whole macro nodes of 100 entries), in-process exactly.
    assert 1000 <= length < 1200


async def test_trimmed_pending_entry_is_reported_without_fields(bus: Bus, stream: str) -> None:
    await bus.ensure_group(stream, "g")
    first = await fill(bus, stream, 1)
    await bus.read_group(stream, "g", "c", count=1, block_ms=None)
    await bus.delete(stream, first)
    (entry,) = await bus.read_group(stream, "g", "c", count=10, block_ms=None, history=True)
    assert entry.id == first[0]
    assert entry.fields is None


async def publish_until_done(bus: Bus, stream: str, reader: asyncio.Task[Any]) -> list[str]:
    """Publish to ``stream`` until the blocked ``reader`` returns; the ids published.

    Whether the reader is already blocked when the first entry goes out cannot be observed
    from here, so keep publishing (one entry per poll) instead of sleeping and hoping."""
    published: list[str] = []

    async def woken() -> bool:
        published.append(await bus.publish(stream, {"n": str(len(published))}))
        await asyncio.sleep(0.01)  # the reply is on its way: let the reader take it
        return reader.done()

    await wait_for(woken, timeout=5, poll=0.05, what="the blocked read to return")
    return published


async def test_blocking_group_read_wakes_on_publish(bus: Bus, stream: str) -> None:
    await bus.ensure_group(stream, "g", "$")
    reader = asyncio.create_task(bus.read_group(stream, "g", "c", count=10, block_ms=5000))
    published = await publish_until_done(bus, stream, reader)
    entries = reader.result()
    # The group starts at "$": the read gets the first entries published, and nothing older.
    assert entries
    assert [e.id for e in entries] == published[: len(entries)]


async def test_blocking_group_read_times_out_empty(bus: Bus, stream: str) -> None:
    await bus.ensure_group(stream, "g", "$")
    assert await bus.read_group(stream, "g", "c", count=10, block_ms=50) == []


async def test_plain_tail_read_sees_entries_after_an_id(bus: Bus, stream: str) -> None:
    ids = await fill(bus, stream, 3)
    tail = await bus.read(stream, after=ids[0], count=10, block_ms=None)
    assert [e.id for e in tail] == ids[1:]
    waiter = asyncio.create_task(bus.read(stream, after="$", count=10, block_ms=5000))
    published = await publish_until_done(bus, stream, waiter)
    # "$" is the last id when the read blocks: it returns the one entry published after that.
    (woke,) = waiter.result()
    assert woke.id in published


async def test_range_and_delete(bus: Bus, stream: str) -> None:
    ids = await fill(bus, stream, 4)
    assert [e.id for e in await bus.range(stream, start=ids[1], end=ids[2])] == ids[1:3]
    assert [e.id for e in await bus.range(stream, count=2)] == ids[:2]
    assert await bus.delete(stream, [ids[0], "1-1"]) == 1
    assert await bus.length(stream) == 3


async def test_revrange_pages_newest_first(bus: Bus, stream: str) -> None:
    ids = await fill(bus, stream, 6)
    await bus.delete(stream, [ids[3]])
    assert [e.id for e in await bus.revrange(stream, count=2)] == [ids[5], ids[4]]
    # The next page: strictly before the last id seen, past the deleted one.
    page = await bus.revrange(stream, end=f"({ids[4]}", count=2)
    assert [e.id for e in page] == [ids[2], ids[1]]
    assert page[0].fields == {"n": "2"}
    assert [e.id for e in await bus.revrange(stream, end=ids[2], start=ids[1])] == [ids[2], ids[1]]
    assert [e.id for e in await bus.revrange(stream, end=f"({ids[0]}")] == []
    assert await bus.revrange(f"{stream}:none", count=5) == []


async def test_missing_stream_has_no_length_or_groups(bus: Bus, stream: str) -> None:
    assert await bus.length(stream) == 0
    assert await bus.groups(stream) == []
