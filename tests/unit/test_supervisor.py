"""The streamer supervisor with scripted providers: sessions, lifecycle frames, back-off,
attempt limits, give-up outcomes, several streamers at once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from ttlp.bus.memory import MemoryBus
from ttlp.contracts.events import frame_from_fields
from ttlp.tiktok.providers.base import ConnectionEnded, Message, Outcome, Session
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.supervisor import (
    RECONNECT_BACKOFF,
    RETRY_AFTER_MAX_S,
    StreamerSupervisor,
    SupervisorSettings,
)

RAW = "ttlc:raw"


@dataclass
class Scripted:
    """A provider whose connections follow a script: each step is an Outcome (raised), a
    ConnectionEnded (raised as it is), "ok" (connect, publish two messages, end normally), or
    "offline"."""

    steps: list[str | Outcome | ConnectionEnded]
    name: str = "direct"
    connections: int = 0
    live_checks: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def _step(self) -> str | Outcome | ConnectionEnded:
        if not self.steps:
            self.done.set()
            return "wait"
        return self.steps.pop(0)

    async def is_live(self, unique_id: str) -> bool:
        self.live_checks += 1
        if self.steps and self.steps[0] == "offline":
            self.steps.pop(0)
            return False
        return True

    async def run(self, unique_id: str, session: Session, stop: asyncio.Event) -> None:
        step = self._step()
        if step == "wait":
            await stop.wait()
            return
        self.connections += 1
        await session.connected("7441234567890123456")
        if isinstance(step, ConnectionEnded):
            raise step
        if isinstance(step, Outcome):
            raise ConnectionEnded(step, f"scripted {step.value}", code=4500)
        await session.messages(
            [
                Message(
                    "WebcastChatMessage",
                    b"\x12\x02hi",
                    7441000000000000001 + self.connections,
                    1771754400000,
                ),
                Message("WebcastLikeMessage", b"", 7441000000000000100 + self.connections),
            ]
        )


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


async def run_until_done(
    provider: Scripted, **settings: float
) -> tuple[StreamerSupervisor, MemoryBus, Sleeps]:
    bus = MemoryBus()
    sleeps = Sleeps()
    supervisor = StreamerSupervisor(
        provider,
        "luna.beats",
        FramePublisher(bus, RAW, paced=False),
        SupervisorSettings(**settings),
        sleep=sleeps,  # type: ignore[arg-type]
    )
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    finished = asyncio.create_task(provider.done.wait())
    await asyncio.wait({task, finished}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    await asyncio.wait_for(task, 5)
    finished.cancel()
    return supervisor, bus, sleeps


async def frames(bus: MemoryBus) -> list[tuple[str, str, int]]:
    return [
        (f.session_id, f.type, f.seq_no)
        for f in (frame_from_fields(e.fields or {}) for e in await bus.range(RAW))
    ]


async def test_each_connection_is_a_new_session_with_lifecycle_frames() -> None:
    supervisor, bus, sleeps = await run_until_done(Scripted(["ok", "ok"]), poll_interval_s=7)
    got = await frames(bus)
    first, second = supervisor.sessions[:2]
    assert first != second
    assert [(t, s) for sid, t, s in got if sid == first] == [
        ("ControlEvent.CONNECTED", 1),
        ("WebcastChatMessage", 7441000000000000002),
        ("WebcastLikeMessage", 7441000000000000101),
        ("ControlEvent.DISCONNECTED", 2),
    ]
    assert next(t for sid, t, _ in got if sid == second) == "ControlEvent.CONNECTED"
    assert sleeps.delays[:2] == [7, 7]  # a stream that ended: poll again later
    fields = (await bus.range(RAW))[0].fields or {}
    assert (fields["provider"], fields["uniqueId"], fields["streamId"]) == (
        "direct",
        "luna.beats",
        "7441234567890123456",
    )


async def test_offline_streamer_is_polled_without_a_session() -> None:
    provider = Scripted(["offline", "offline", "ok"])
    _supervisor, bus, sleeps = await run_until_done(provider, poll_interval_s=30)
    assert sleeps.delays[:2] == [30, 30]
    assert provider.live_checks >= 3
    assert len({sid for sid, _, _ in await frames(bus)}) == 1


async def test_failures_back_off_exponentially_with_jitter() -> None:
    provider = Scripted([Outcome.RECONNECT] * 4 + ["ok"])
    _supervisor, bus, sleeps = await run_until_done(provider)
    assert [round(d) for d in sleeps.delays[:4]] == pytest.approx([1, 2, 4, 8], abs=2)
    for attempt, delay in enumerate(sleeps.delays[:4], 1):
        assert 0.8 * 2 ** (attempt - 1) <= delay <= 1.2 * 2 ** (attempt - 1)
    disconnects = [
        e for e in await bus.range(RAW) if (e.fields or {})["type"] == "ControlEvent.DISCONNECTED"
    ]
    assert len(disconnects) == 5
    assert '"willReconnect":true' in (disconnects[0].fields or {})["data"]


def test_backoff_is_capped_at_sixty_seconds() -> None:
    assert RECONNECT_BACKOFF.delay(1, lambda: 0.5) == 1.0
    assert RECONNECT_BACKOFF.delay(7, lambda: 0.5) == 60.0
    assert RECONNECT_BACKOFF.delay(20, lambda: 1.0) == pytest.approx(72.0)
    assert RECONNECT_BACKOFF.delay(20, lambda: 0.0) == pytest.approx(48.0)


async def test_a_wait_the_provider_was_asked_for_replaces_the_back_off() -> None:
    def limited(wait_s: float) -> ConnectionEnded:
        return ConnectionEnded(Outcome.BACKOFF, "rate limited", code=429, retry_after_s=wait_s)

    provider = Scripted([limited(3600), limited(3 * 86400), Outcome.BACKOFF, "ok"])
    supervisor, _, sleeps = await run_until_done(provider, poll_interval_s=7)
    assert supervisor.outcomes[:4] == [Outcome.BACKOFF] * 3 + [Outcome.POLL]
    assert sleeps.delays[0] == 3600  # as asked: not 1 s
    assert sleeps.delays[1] == RETRY_AFTER_MAX_S == 6 * 3600  # a bogus wait is capped
    # Without a wait asked for: the back-off, at the third failure in a row (4 s ± 20 %).
    assert 3.2 <= sleeps.delays[2] <= 4.8
    assert sleeps.delays[3] == 7


async def test_gives_up_after_max_attempts() -> None:
    provider = Scripted([Outcome.BACKOFF] * 10)
    supervisor, _, _ = await run_until_done(provider, max_attempts=3)
    assert provider.connections == 3
    assert supervisor.outcomes == [Outcome.BACKOFF] * 3


async def test_stop_outcome_ends_the_streamer_at_once() -> None:
    provider = Scripted([Outcome.STOP, "ok"])
    _supervisor, bus, sleeps = await run_until_done(provider)
    assert provider.connections == 1
    assert sleeps.delays == []
    last = (await bus.range(RAW))[-1].fields or {}
    assert '"willReconnect":false' in last["data"]


async def test_planned_cut_reconnects_immediately() -> None:
    provider = Scripted([Outcome.RECONNECT_NOW, "ok"])
    _supervisor, _, sleeps = await run_until_done(provider, poll_interval_s=5)
    assert provider.connections == 2
    assert sleeps.delays[:1] == [5]  # only the poll after the normal end


async def test_unexpected_exception_is_a_reconnect_not_a_crash() -> None:
    class Broken(Scripted):
        async def run(self, unique_id: str, session: Session, stop: asyncio.Event) -> None:
            if self.connections == 0:
                self.connections += 1
                await session.connected("1")
                raise RuntimeError("socket exploded")
            await super().run(unique_id, session, stop)

    provider = Broken(["ok"])
    supervisor, bus, _ = await run_until_done(provider)
    assert supervisor.outcomes[0] is Outcome.RECONNECT
    types = [t for _, t, _ in await frames(bus)]
    assert types[:3] == [
        "ControlEvent.CONNECTED",
        "ControlEvent.ERROR",
        "ControlEvent.DISCONNECTED",
    ]


async def test_two_streamers_one_failing_does_not_affect_the_other() -> None:
    bus = MemoryBus()
    failing = Scripted([Outcome.RECONNECT] * 50)
    healthy = Scripted(["ok"] * 3)
    stop = asyncio.Event()
    sleeps = Sleeps()

    def supervisor(p: Scripted, handle: str) -> StreamerSupervisor:
        return StreamerSupervisor(
            p,
            handle,
            FramePublisher(bus, RAW, paced=False),
            SupervisorSettings(max_attempts=0),
            sleep=sleeps,
        )

    tasks = [
        asyncio.create_task(supervisor(failing, "a").run(stop)),
        asyncio.create_task(supervisor(healthy, "b").run(stop)),
    ]
    await asyncio.wait_for(healthy.done.wait(), 5)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    handles = [
        ((e.fields or {})["uniqueId"], (e.fields or {})["type"]) for e in await bus.range(RAW)
    ]
    assert [t for h, t in handles if h == "b"].count("WebcastChatMessage") == 3
    assert failing.connections > 3


async def test_a_looping_source_keeps_only_the_last_hundred_connections() -> None:
    """The looping mock reconnects after every pass (~20 a second at 1,000 frames/s): the
    supervisor's history of sessions and outcomes must not grow with them."""
    provider = Scripted([Outcome.RECONNECT_NOW] * 249 + ["ok"])
    supervisor, _, _ = await run_until_done(provider, poll_interval_s=5)
    assert provider.connections == 250
    assert len(supervisor.sessions) == len(supervisor.outcomes) == 100
    # The last ones are kept: the 'ok' pass, then the connection the test's stop ended.
    assert supervisor.outcomes[-2:] == [Outcome.POLL, Outcome.STOP]
    assert supervisor.outcomes[:-2] == [Outcome.RECONNECT_NOW] * 98


def waiting_on(event: asyncio.Event) -> int:
    """Tasks waiting on ``event`` (an ``event.wait()`` wrapped in a task)."""
    waiting = 0
    for task in asyncio.all_tasks():
        coro: Any = task.get_coro()
        if not task.done() and getattr(coro, "__qualname__", "") == "Event.wait":
            waiting += coro.cr_frame.f_locals.get("self") is event
    return waiting


async def test_an_ended_connection_leaves_nothing_waiting_on_stop() -> None:
    """Each connection's watchdog sleeps in a task racing ``stop``; ending the connection
    cancels the watchdog mid-sleep, and that race must end with it (the looping mock ends one
    connection per pass: 12,000 left waiting in a 10-minute soak, each costing memory and,
    as ``stop``'s waiters, every later wait's removal)."""
    provider = Scripted([Outcome.RECONNECT_NOW] * 50)
    supervisor = StreamerSupervisor(
        provider,
        "luna.beats",
        FramePublisher(MemoryBus(), RAW, paced=False),
        SupervisorSettings(poll_interval_s=5),
        sleep=Sleeps(),  # type: ignore[arg-type]
    )
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    await asyncio.wait_for(provider.done.wait(), 10)  # 50 connections ended, the 51st waits

    assert provider.connections == 50
    assert waiting_on(stop) <= 1  # the open connection's watchdog, at most
    stop.set()
    await asyncio.wait_for(task, 5)
    assert waiting_on(stop) == 0
