"""The supervisor: clean stop, crash → non-zero, grace period, role selection."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from tests.support.wait import wait_for
from ttlp.bus.keys import Keys
from ttlp.bus.memory import MemoryBus
from ttlp.errors import ConfigError
from ttlp.runtime import (
    ROLES,
    Context,
    check_workers,
    parse_roles,
    plan_workers,
    run_roles,
    supervise,
)
from ttlp.settings import Settings


def context() -> Context:
    return Context(settings=Settings.from_env({}), bus=MemoryBus(), keys=Keys())


def test_parse_roles_validates_names() -> None:
    assert parse_roles("all") == list(ROLES)
    assert parse_roles("store, ingest") == ["ingest", "store"]  # registry order
    with pytest.raises(ConfigError, match=r"unknown role.*bogus"):
        parse_roles("ingest,bogus")


async def test_a_subset_of_roles_needs_redis() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        await run_roles(Settings.from_env({}), ["normalize"])


async def test_stop_lets_roles_finish_and_exits_zero() -> None:
    running: list[str] = []
    finished: list[str] = []

    async def role(ctx: Context, stop: asyncio.Event) -> None:
        running.append("up")
        await stop.wait()
        await asyncio.sleep(0.05)  # finishing the batch in flight
        finished.append("done")

    stop = asyncio.Event()
    task = asyncio.create_task(
        supervise(context(), {"a": role, "b": role}, grace_s=5, stop=stop, install_signals=False)
    )
    await wait_for(lambda: len(running) == 2, timeout=5, poll=0.01, what="both roles running")
    stop.set()
    assert await task == 0
    assert finished == ["done", "done"]


async def test_a_crashed_role_stops_the_others_and_exits_non_zero() -> None:
    stopped: list[bool] = []

    async def crashes(ctx: Context, stop: asyncio.Event) -> None:
        await asyncio.sleep(0.02)
        raise RuntimeError("boom")

    async def waits(ctx: Context, stop: asyncio.Event) -> None:
        await stop.wait()
        stopped.append(True)

    code = await supervise(
        context(), {"bad": crashes, "good": waits}, grace_s=5, install_signals=False
    )
    assert code == 1
    assert stopped == [True]


async def test_a_role_that_ignores_stop_is_cancelled_after_the_grace_period() -> None:
    cancelled: list[bool] = []

    async def stubborn(ctx: Context, stop: asyncio.Event) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    stop = asyncio.Event()
    stop.set()
    code = await asyncio.wait_for(
        supervise(context(), {"s": stubborn}, grace_s=0.1, stop=stop, install_signals=False), 5
    )
    assert code == 0
    assert cancelled == [True]


async def test_in_process_bus_is_drained_before_consumers_stop() -> None:
    """The embedded bus dies with the process: a stop must not lose what is still queued."""
    from ttlp.bus.base import Entry

    ctx = context()
    seen: list[str] = []
    published = asyncio.Event()

    async def ingest(ctx: Context, stop: asyncio.Event) -> None:
        await ctx.bus.publish_many(ctx.keys.raw, [{"n": str(i)} for i in range(300)])
        published.set()
        await stop.wait()

    async def slow(entries: list[Entry]) -> tuple[()]:
        await asyncio.sleep(0.01)
        seen.extend((e.fields or {})["n"] for e in entries)
        return ()

    async def normalize(ctx: Context, stop: asyncio.Event) -> None:
        await asyncio.sleep(0.3)  # a slow start: the group does not exist yet when stop comes
        consumer = ctx.consumer(
            stream=ctx.keys.raw, group="normalizer", handler=slow, stage="normalizer"
        )
        consumer.settings = msgspec.structs.replace(consumer.settings, batch_size=10)
        await consumer.run(stop)

    async def store(ctx: Context, stop: asyncio.Event) -> None:
        async def archive(entries: list[Entry]) -> tuple[()]:
            return ()

        await ctx.consumer(
            stream=ctx.keys.raw, group="archive", handler=archive, stage="store"
        ).run(stop)

    stop = asyncio.Event()
    task = asyncio.create_task(
        supervise(
            ctx,
            {"ingest": ingest, "normalize": normalize, "store": store},
            grace_s=10,
            stop=stop,
            install_signals=False,
        )
    )
    await published.wait()
    stop.set()  # while 300 entries are still queued
    assert await task == 0
    assert len(seen) == 300


# -- worker processes (ttlp.runtime) -------------------------------------------------------
ON_REDIS = {"REDIS_URL": "redis://127.0.0.1:6379/0"}


def test_worker_processes_take_the_normalizer_out_of_this_process() -> None:
    settings = Settings.from_env({**ON_REDIS, "TTLP_WORKERS": "3"})

    planned = plan_workers(settings, list(ROLES), asyncio.Event())

    assert list(planned) == ["ingest", "store", "api", "rules", "forward", "worker-1", "worker-2"]
    assert [name for name, fn in planned.items() if fn is not None] == ["worker-1", "worker-2"]


def test_one_process_runs_every_role_itself() -> None:
    planned = plan_workers(Settings.from_env(ON_REDIS), list(ROLES), asyncio.Event())

    assert planned == dict.fromkeys(ROLES)


def test_a_process_without_the_normalizer_starts_no_worker() -> None:
    """One .env serves every service of a split deployment: TTLP_WORKERS there is no error."""
    settings = Settings.from_env({**ON_REDIS, "TTLP_WORKERS": "2"})

    assert plan_workers(settings, ["store", "api"], asyncio.Event()) == dict.fromkeys(
        ["store", "api"]
    )
    check_workers(settings)


def test_worker_processes_need_redis() -> None:
    with pytest.raises(ConfigError, match=r"^TTLP_WORKERS=2 needs REDIS_URL: the in-process bus"):
        check_workers(Settings.from_env({"TTLP_WORKERS": "2"}))
