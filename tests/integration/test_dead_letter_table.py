"""``ttlc:dlq`` of the embedded default lives in the database (``ttlp.db.letters``), on SQLite
and on PostgreSQL: letters outlive the bus that wrote them, another process's bus on the same
database reads and purges them, and a retry it asks for is carried out by the bus that relays
(the running ``ttlp run``), into the stream the letter came from."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.wait import wait_for
from ttlp.bus import dlq
from ttlp.bus.consumer import Consumer
from ttlp.bus.keys import GROUP_NORMALIZER, Keys
from ttlp.bus.memory import MOVING_FIELD, MemoryBus
from ttlp.db.letters import LetterTable
from ttlp.db.tables import dead_letters
from ttlp.errors import BusError, NotFoundError
from ttlp.roles.normalize import make_handler
from ttlp.runtime import keep_dead_letters
from ttlp.settings import BusSettings

pytestmark = pytest.mark.integration

BROKEN = {"schemaVersion": "raw.v1", "type": "WebcastChatMessage", "data": "not json"}
NOT_UTF8 = {"schemaVersion": "raw.v1", "type": "WebcastChatMessage", "data": '{"a":"\udcff"}'}


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


def durable_bus(engine: AsyncEngine, keys: Keys) -> MemoryBus:
    """A process's in-process bus as ``open_context`` wires it."""
    bus = MemoryBus(maxlen=1000)
    keep_dead_letters(bus, keys, engine)
    return bus


@pytest.fixture
async def running(db_engine: AsyncEngine, keys: Keys) -> AsyncIterator[MemoryBus]:
    """The bus of the process that runs the pipeline: it relays requested moves."""
    bus = durable_bus(db_engine, keys)
    stop = asyncio.Event()
    relay = asyncio.create_task(bus.relay(stop, poll_s=0.05))
    yield bus
    stop.set()
    await relay


def normalizer(bus: MemoryBus, keys: Keys) -> Consumer:
    return Consumer(
        bus=bus,
        stream=keys.raw,
        group=keys.group(GROUP_NORMALIZER),
        name="n1",
        handler=make_handler(bus, keys.events, 1_048_576),
        dlq_stream=keys.dlq,
        stage="normalizer",
        settings=BusSettings(block_ms=10, claim_interval_s=3600.0),
    )


async def test_letters_are_written_to_the_database_and_outlive_the_bus_that_wrote_them(
    db_engine: AsyncEngine, keys: Keys
) -> None:
    bus = durable_bus(db_engine, keys)
    await bus.publish(keys.raw, BROKEN)
    await bus.publish(keys.raw, NOT_UTF8)
    assert await normalizer(bus, keys).run_until_idle() == 2
    async with db_engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(dead_letters)) == 2

    restarted = durable_bus(db_engine, keys)  # a new process: nothing of the old one's memory
    found = await dlq.letters(restarted, keys)
    assert [(x.stage, x.reason) for x in found] == [
        ("normalizer", "PARSE_ERROR"),
        ("normalizer", "ENCODING_ERROR"),
    ]
    assert found[0].body == BROKEN
    assert found[1].fields["payloadEncoding"] == "base64"
    assert found[1].body["data"] == '{"a":"\ufffd"}'
    assert await restarted.length(keys.dlq) == 2
    assert await restarted.length(keys.raw) == 0  # the other streams did not survive
    # Ids keep increasing across processes.
    later = await restarted.publish(keys.dlq, {"stage": "store", "reason": "X", "payload": "{}"})
    assert later > found[1].id
    assert await restarted.bounds(keys.dlq) == (found[0].id, later)


async def test_reads_pages_deletes_and_refuses_consumer_groups(
    db_engine: AsyncEngine, keys: Keys
) -> None:
    bus = durable_bus(db_engine, keys)
    ids = await bus.publish_many(keys.dlq, [{"n": str(i)} for i in range(5)])
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert [e.fields for e in await bus.range(keys.dlq, start=ids[1], end=ids[3])] == [
        {"n": "1"},
        {"n": "2"},
        {"n": "3"},
    ]
    newest = await bus.revrange(keys.dlq, count=2)
    assert [e.id for e in newest] == [ids[4], ids[3]]
    older = await bus.revrange(keys.dlq, end=f"({ids[3]}", count=10)
    assert [e.id for e in older] == [ids[2], ids[1], ids[0]]
    assert await bus.delete(keys.dlq, [ids[0], ids[2], "1-1"]) == 2
    assert [e.id for e in await bus.range(keys.dlq)] == [ids[1], ids[3], ids[4]]
    assert await bus.groups(keys.dlq) == []
    with pytest.raises(BusError, match="kept in the database"):
        await bus.ensure_group(keys.dlq, "g")
    # Another prefix (tenant, test) is another stream.
    other = Keys(keys.prefix + "other-")
    assert await bus.length(other.dlq) == 0


async def test_the_table_is_capped_oldest_letters_first(db_engine: AsyncEngine, keys: Keys) -> None:
    bus = MemoryBus()
    bus.keep(keys.dlq, LetterTable(db_engine, maxlen=3))
    ids = await bus.publish_many(keys.dlq, [{"n": str(i)} for i in range(5)])
    assert [e.id for e in await bus.range(keys.dlq)] == ids[2:]


async def test_a_retry_asked_from_another_process_is_carried_out_by_the_running_one(
    db_engine: AsyncEngine, keys: Keys, running: MemoryBus
) -> None:
    """``ttlp dlq retry`` beside ``ttlp run`` on the embedded default: the CLI's bus only marks
    the letter; the running bus publishes it to the stream it came from, where the stage that
    gave up reads it again."""
    await running.publish(keys.raw, BROKEN)
    await normalizer(running, keys).run_until_idle()
    cli = durable_bus(db_engine, keys)
    (letter,) = await dlq.letters(cli, keys)

    result = await dlq.retry(cli, keys, None, [letter])
    assert (result.retried, result.queued, result.skipped) == ([], [letter.id], [])
    assert await running.length(keys.raw) == 1  # only the original entry, for now
    waiting = await dlq.settle(cli, keys, result.queued, timeout_s=10)
    assert waiting == []
    *_, again = await running.range(keys.raw)
    assert again.fields == BROKEN
    # It reached the normalizer again, which (the frame being what it is) dead-letters it anew.
    await normalizer(running, keys).run_until_idle()
    (anew,) = await dlq.letters(cli, keys)
    assert anew.id > letter.id
    assert anew.fields["sourceId"] == again.id


async def test_a_queued_retry_waits_for_the_next_start_and_is_listed_as_queued(
    db_engine: AsyncEngine, keys: Keys
) -> None:
    stopped = durable_bus(db_engine, keys)
    await stopped.publish(keys.raw, NOT_UTF8)
    await normalizer(stopped, keys).run_until_idle()
    cli = durable_bus(db_engine, keys)
    (letter,) = await dlq.letters(cli, keys)
    result = await dlq.retry(cli, keys, None, [letter])
    assert await dlq.settle(cli, keys, result.queued, timeout_s=0.3) == [letter.id]
    (queued,) = await dlq.letters(cli, keys)
    assert queued.queued_to == keys.raw
    assert MOVING_FIELD in queued.fields

    started = durable_bus(db_engine, keys)  # the next `ttlp run`
    stop = asyncio.Event()
    relay = asyncio.create_task(started.relay(stop, poll_s=0.05))
    try:
        await wait_for(lambda: started.length(keys.raw), what="the queued retry", timeout=10)
    finally:
        stop.set()
        await relay
    (entry,) = await started.range(keys.raw)
    assert entry.fields == NOT_UTF8  # the same bytes (surrogate-escaped) went back
    assert await started.length(keys.dlq) == 0


async def test_a_retry_in_the_running_process_moves_at_once(keys: Keys, running: MemoryBus) -> None:
    letter = await running.publish(
        keys.dlq,
        {
            "stage": "store",
            "reason": "MAX_DELIVERIES",
            "error": "x",
            "payload": msgspec.json.encode({"event": "{}"}).decode(),
            "failedAt": "2026-01-01T00:00:00.000Z",
            "sourceStream": keys.events,
        },
    )
    result = await dlq.retry(running, keys, None, await dlq.find(running, keys, [letter]))
    assert (result.retried, result.queued) == ([letter], [])
    assert [e.fields for e in await running.range(keys.events)] == [{"event": "{}"}]
    assert await running.length(keys.dlq) == 0


async def test_unknown_and_malformed_ids_and_stages_are_errors(
    db_engine: AsyncEngine, keys: Keys
) -> None:
    bus = durable_bus(db_engine, keys)
    known = await bus.publish(keys.dlq, {"stage": "normalizer", "payload": "{}"})
    with pytest.raises(NotFoundError, match="no dead letter 1-0"):
        await dlq.find(bus, keys, [known, "1-0"])
    with pytest.raises(Exception, match="not a dead-letter id: abc"):
        await dlq.select(bus, keys, ids=["abc"])
    with pytest.raises(Exception, match="unknown stage 'bogus': the stages are normalizer"):
        await dlq.select(bus, keys, stage="bogus")
    assert [x.id for x in await dlq.select(bus, keys, ids=[known])] == [known]


async def test_the_newest_letters_of_a_stage_are_counted_a_page_at_a_time(
    db_engine: AsyncEngine, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ttlp dlq list``: a long queue is read in pages, counted, not held in memory."""
    monkeypatch.setattr(dlq, "SCAN_PAGE", 2)
    bus = durable_bus(db_engine, keys)
    stages = ["store", "normalizer", "store", "store", "normalizer"]
    ids = await bus.publish_many(keys.dlq, [{"stage": s, "payload": "{}"} for s in stages])
    shown, total = await dlq.newest(bus, keys, stage="store", limit=2)
    assert ([x.id for x in shown], total) == ([ids[3], ids[2]], 3)
    shown, total = await dlq.newest(bus, keys, limit=3)
    assert ([x.id for x in shown], total) == ([ids[4], ids[3], ids[2]], 5)
    with pytest.raises(Exception, match="unknown stage 'bogus'"):
        await dlq.newest(bus, keys, stage="bogus", limit=1)
