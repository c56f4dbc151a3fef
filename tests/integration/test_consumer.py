"""The one consume loop, on both backends: ack after the handler, pending re-read, claim,
delivery budget → dead-letter, transient retries, graceful stop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from ttlp.bus.base import Bus, Entry
from ttlp.bus.consumer import BATCH_BUCKETS_S, BatchHandler, Consumer, Failure
from ttlp.bus.telemetry import ConsumerCollector
from ttlp.contracts.events import DeadLetter
from ttlp.settings import BusSettings

pytestmark = pytest.mark.integration


class Recorder:
    """A handler that records what it saw, failing on request."""

    def __init__(
        self,
        poison: set[str] = frozenset(),
        permanent: set[str] = frozenset(),
        transient_failures: int = 0,
        poison_error: type[Exception] = ValueError,
    ) -> None:
        self.seen: list[str] = []
        self.poison = poison
        self.poison_error = poison_error
        self.permanent = permanent
        self.transient_failures = transient_failures
        self.calls = 0

    async def __call__(self, entries: list[Entry]) -> Sequence[Failure]:
        self.calls += 1
        if self.transient_failures > 0:
            self.transient_failures -= 1
            raise ConnectionError("database went away")
        values = [(e.fields or {})["n"] for e in entries]
        if self.poison & set(values):
            raise self.poison_error("cannot handle this one")
        self.seen.extend(values)
        return [
            Failure(e, "VALIDATION_ERROR", "bad n")
            for e in entries
            if (e.fields or {})["n"] in self.permanent
        ]


def make(
    bus: Bus, prefix: str, handler: BatchHandler, name: str = "c1", **settings: object
) -> Consumer:
    base = {
        "batch_size": 10,
        "block_ms": 50,
        "claim_idle_ms": 60_000,
        "claim_interval_s": 0.0,
        "max_deliveries": 3,
    }
    base.update(settings)
    return Consumer(
        bus=bus,
        stream=f"{prefix}raw",
        group=f"{prefix}g",
        name=name,
        handler=handler,
        dlq_stream=f"{prefix}dlq",
        stage="test",
        settings=BusSettings(**base),  # type: ignore[arg-type]
    )


async def publish(bus: Bus, prefix: str, n: int) -> None:
    await bus.publish_many(f"{prefix}raw", [{"n": str(i), "type": "T"} for i in range(n)])


async def dead_letters(bus: Bus, prefix: str) -> list[DeadLetter]:
    entries = await bus.range(f"{prefix}dlq")
    return [msgspec.convert(e.fields, DeadLetter, strict=False) for e in entries]


async def pending(bus: Bus, prefix: str) -> int:
    return sum(g.pending for g in await bus.groups(f"{prefix}raw"))


async def test_processes_every_entry_once_and_acks(bus: Bus, key_prefix: str) -> None:
    handler = Recorder()
    consumer = make(bus, key_prefix, handler)
    await publish(bus, key_prefix, 35)
    assert await consumer.run_until_idle() == 35
    assert handler.seen == [str(i) for i in range(35)]
    assert await pending(bus, key_prefix) == 0


async def test_reported_failures_are_dead_lettered_and_the_rest_continue(
    bus: Bus, key_prefix: str
) -> None:
    handler = Recorder(permanent={"3"})
    consumer = make(bus, key_prefix, handler)
    await publish(bus, key_prefix, 6)
    await consumer.run_until_idle()
    (letter,) = await dead_letters(bus, key_prefix)
    assert (letter.stage, letter.reason, letter.error) == ("test", "VALIDATION_ERROR", "bad n")
    assert msgspec.json.decode(letter.payload) == {"n": "3", "type": "T"}
    assert letter.raw_type is msgspec.UNSET  # the handler did not say
    assert await pending(bus, key_prefix) == 0
    assert consumer.stats.processed == 5


async def test_restarted_consumer_rereads_its_own_pending_entries(
    bus: Bus, key_prefix: str
) -> None:
    await publish(bus, key_prefix, 4)
    crashed = make(bus, key_prefix, Recorder())
    await crashed.setup()
    # Read but never acked: the process died mid-batch.
    await bus.read_group(f"{key_prefix}raw", f"{key_prefix}g", "c1", count=3, block_ms=None)
    handler = Recorder()
    await make(bus, key_prefix, handler).run_until_idle()
    assert sorted(handler.seen) == ["0", "1", "2", "3"]
    assert await pending(bus, key_prefix) == 0


async def test_idle_entries_of_a_dead_consumer_are_claimed_by_a_live_one(
    bus: Bus, key_prefix: str
) -> None:
    await publish(bus, key_prefix, 5)
    dead = make(bus, key_prefix, Recorder(), name="dead")
    await dead.setup()
    await bus.read_group(f"{key_prefix}raw", f"{key_prefix}g", "dead", count=5, block_ms=None)
    await asyncio.sleep(0.08)
    handler = Recorder()
    live = make(bus, key_prefix, handler, name="live", claim_idle_ms=50)
    await live.run_until_idle()
    assert sorted(handler.seen) == ["0", "1", "2", "3", "4"]
    assert live.stats.claimed == 5
    assert await pending(bus, key_prefix) == 0


async def test_entry_the_handler_cannot_read_is_dead_lettered_at_once_with_its_error(
    bus: Bus, key_prefix: str
) -> None:
    handler = Recorder(poison={"2"})  # a ValueError: the data is at fault
    consumer = make(bus, key_prefix, handler)
    await publish(bus, key_prefix, 5)
    await consumer.run_until_idle()
    (letter,) = await dead_letters(bus, key_prefix)
    assert letter.reason == "HANDLER_ERROR"
    assert letter.error == "ValueError: cannot handle this one"
    assert msgspec.json.decode(letter.payload)["n"] == "2"
    assert letter.raw_type == "T"
    # Its neighbours were processed exactly once each, and it spent no redeliveries.
    assert sorted(handler.seen) == ["0", "1", "3", "4"]
    assert handler.calls == 1 + 5  # the batch, then each entry alone
    assert await pending(bus, key_prefix) == 0


async def test_unexplained_failure_spends_deliveries_and_its_letter_names_the_last_error(
    bus: Bus, key_prefix: str
) -> None:
    handler = Recorder(poison={"2"}, poison_error=RuntimeError)  # a bug? try again, then give up
    consumer = make(bus, key_prefix, handler)
    await publish(bus, key_prefix, 5)
    await consumer.run_until_idle()
    (letter,) = await dead_letters(bus, key_prefix)
    assert letter.reason == "MAX_DELIVERIES"
    assert letter.error.endswith("; last error: RuntimeError: cannot handle this one")
    assert msgspec.json.decode(letter.payload)["n"] == "2"
    assert sorted(handler.seen) == ["0", "1", "3", "4"]
    assert await pending(bus, key_prefix) == 0


async def test_transient_errors_retry_the_batch_without_spending_deliveries(
    bus: Bus, key_prefix: str
) -> None:
    handler = Recorder(transient_failures=3)
    consumer = make(bus, key_prefix, handler, max_deliveries=1)
    await publish(bus, key_prefix, 4)
    await consumer.run_until_idle()
    assert handler.seen == ["0", "1", "2", "3"]
    assert await dead_letters(bus, key_prefix) == []
    assert consumer.stats.retries == 3


async def test_stop_finishes_the_batch_in_flight_and_acks_it(bus: Bus, key_prefix: str) -> None:
    started = asyncio.Event()
    seen: list[str] = []

    async def slow(entries: list[Entry]) -> Sequence[Failure]:
        started.set()
        await asyncio.sleep(0.2)
        seen.extend((e.fields or {})["n"] for e in entries)
        return ()

    consumer = Consumer(
        bus=bus,
        stream=f"{key_prefix}raw",
        group=f"{key_prefix}g",
        name="c1",
        handler=slow,
        dlq_stream=f"{key_prefix}dlq",
        stage="test",
        settings=BusSettings(batch_size=100, block_ms=50, claim_interval_s=60),
    )
    await publish(bus, key_prefix, 3)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.wait_for(started.wait(), 2)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert seen == ["0", "1", "2"]
    assert await pending(bus, key_prefix) == 0


async def test_the_process_metrics_count_entries_and_time_batches(
    bus: Bus, key_prefix: str
) -> None:
    """``ttlp_events_processed_total`` and ``ttlp_batch_seconds`` (telemetry) sum the group's
    consumers of this process, read from their own stats at scrape time."""
    registry = CollectorRegistry()
    registry.register(ConsumerCollector())
    await publish(bus, key_prefix, 25)
    first = make(bus, key_prefix, Recorder(permanent={"3", "17"}), name="c1")
    second = make(bus, key_prefix, Recorder(), name="c2")
    await first.run_until_idle()
    await publish(bus, key_prefix, 5)
    await second.run_until_idle()

    labels = {"role": "test", "stream": f"{key_prefix}raw", "group": f"{key_prefix}g"}

    def sample(name: str, **extra: str) -> float | None:
        return registry.get_sample_value(name, {**labels, **extra})

    assert sample("ttlp_events_processed_total", outcome="processed") == 28
    assert sample("ttlp_events_processed_total", outcome="dead_lettered") == 2
    batches = first.stats.batches + second.stats.batches
    assert batches >= 4  # 25 in batches of 10, then 5
    assert sample("ttlp_batch_seconds_count") == batches
    assert sample("ttlp_batch_seconds_bucket", le="+Inf") == batches
    total = sample("ttlp_batch_seconds_sum")
    assert total is not None
    assert total == pytest.approx(first.stats.batch_seconds + second.stats.batch_seconds)
    assert 0 < total < 60
    # Cumulative buckets: never decreasing, ending at the count.
    bounds = [*map(str, BATCH_BUCKETS_S), "+Inf"]
    counts = [sample("ttlp_batch_seconds_bucket", le=b) for b in bounds]
    assert counts == sorted(counts)
    assert counts[-1] == batches


async def test_entries_trickling_in_are_gathered_into_one_batch(bus: Bus, key_prefix: str) -> None:
    """After a batch smaller than ``batch_size`` the consumer lingers (``BUS_LINGER_MS``):
    entries published one by one meanwhile are handled together, not one batch each."""
    batches: list[list[str]] = []
    first, all_seen = asyncio.Event(), asyncio.Event()

    async def handler(entries: list[Entry]) -> Sequence[Failure]:
        batches.append([(e.fields or {})["n"] for e in entries])
        first.set()
        if sum(map(len, batches)) == 6:
            all_seen.set()
        return ()

    consumer = make(bus, key_prefix, handler, batch_size=100, linger_ms=500)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await bus.publish_many(f"{key_prefix}raw", [{"n": "0"}])
    await asyncio.wait_for(first.wait(), 5)
    for n in range(1, 6):
        await bus.publish_many(f"{key_prefix}raw", [{"n": str(n)}])
        await asyncio.sleep(0)  # the consumer may run between them: it is lingering
    await asyncio.wait_for(all_seen.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert batches == [["0"], ["1", "2", "3", "4", "5"]]
    assert await pending(bus, key_prefix) == 0
