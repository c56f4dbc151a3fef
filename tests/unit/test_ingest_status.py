"""Ingest status (``ttlp.tiktok.status``): what each supervisor reports in each state, how the
reports of several replicas are read, and failures that name their host."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import msgspec

from ttlp.bus.memory import MemoryBus
from ttlp.tiktok.providers.base import ConnectionEnded, Message, Outcome, Session
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.status import StreamerStatus, decode_reports, encode, report_field
from ttlp.tiktok.supervisor import StreamerSupervisor, SupervisorSettings, describe_failure

ROOM = "7441234567890123456"


@dataclass
class Steps:
    """A provider following a script: "offline", "ok" (join, one message, wait for the test),
    an Outcome (join, then end with it), or an exception to raise before joining."""

    steps: list[object]
    name: str = "direct"
    go_on: asyncio.Event = field(default_factory=asyncio.Event)
    joined: asyncio.Event = field(default_factory=asyncio.Event)

    async def is_live(self, unique_id: str) -> bool:
        if self.steps and self.steps[0] == "offline":
            self.steps.pop(0)
            return False
        return True

    async def run(self, unique_id: str, session: Session, stop: asyncio.Event) -> None:
        step = self.steps.pop(0) if self.steps else "wait"
        if isinstance(step, Exception):
            raise step
        await session.connected(ROOM)
        self.joined.set()
        if step == "ok":
            await session.messages(
                [Message("WebcastChatMessage", b"\x12\x02hi", 7441000000000000001)]
            )
            await self.go_on.wait()
            self.go_on.clear()
            return
        if isinstance(step, Outcome):
            raise ConnectionEnded(step, f"scripted {step.value}", code=4500)
        await stop.wait()


class Reports:
    def __init__(self) -> None:
        self.seen: list[StreamerStatus] = []
        self.changed = asyncio.Event()

    async def __call__(self, status: StreamerStatus) -> None:
        self.seen.append(msgspec.structs.replace(status))
        self.changed.set()

    def states(self) -> list[str]:
        out: list[str] = []
        for s in self.seen:
            if not out or out[-1] != s.state:
                out.append(s.state)
        return out

    async def until(self, predicate: object) -> StreamerStatus:
        async def wait() -> StreamerStatus:
            while True:
                for status in reversed(self.seen):
                    if predicate(status):  # type: ignore[operator]
                        return status
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(wait(), 5)


async def no_wait(delay: float) -> None:
    await asyncio.sleep(0)


def supervisor(provider: Steps, reports: Reports, **settings: float) -> StreamerSupervisor:
    return StreamerSupervisor(
        provider,  # type: ignore[arg-type]
        "luna.beats",
        FramePublisher(MemoryBus(), "ttlc:raw", paced=False),
        SupervisorSettings(**settings),  # type: ignore[arg-type]
        sleep=no_wait,
        tick=no_wait,
        status_sink=reports,
        replica="vm-2",
    )


async def test_each_state_is_reported_with_its_reason_and_next_attempt() -> None:
    error = httpx.ConnectError("[Errno 111] Connection refused")
    error.request = httpx.Request("GET", "https://webcast.tiktok.com/webcast/im/fetch/")
    provider = Steps(["offline", "ok", error, Outcome.STOP])
    reports = Reports()
    sup = supervisor(provider, reports, poll_interval_s=30)
    stop = asyncio.Event()
    task = asyncio.create_task(sup.run(stop))

    waiting = await reports.until(lambda s: s.state == "waiting_for_live")
    assert waiting.reason == "the streamer is not live"
    assert waiting.until is not None
    until = datetime.fromisoformat(waiting.until)
    assert timedelta(seconds=29) < until - datetime.now(UTC) <= timedelta(seconds=30)

    connected = await reports.until(lambda s: s.state == "connected" and s.last_message_at)
    assert (connected.room_id, connected.reconnects_today) == (ROOM, 0)
    assert connected.replica == "vm-2"
    provider.go_on.set()  # the stream ends normally

    backing = await reports.until(lambda s: s.state == "backing_off")
    assert backing.reason == (
        "ConnectError: [Errno 111] Connection refused (host webcast.tiktok.com)"
    )
    stopped = await reports.until(lambda s: s.state == "stopped")
    assert stopped.reason == "scripted stop"
    assert stopped.reconnects_today == 1  # the second connection of the day
    await asyncio.wait_for(task, 5)
    assert reports.states() == [
        "starting",
        "checking",
        "waiting_for_live",
        "checking",
        "connected",
        "waiting_for_live",  # the stream ended: look again later
        "checking",
        "backing_off",
        "checking",
        "connected",
        "stopped",
    ]


async def test_stopping_ttlp_is_reported() -> None:
    provider = Steps(["wait"])
    reports = Reports()
    sup = supervisor(provider, reports)
    stop = asyncio.Event()
    task = asyncio.create_task(sup.run(stop))
    await reports.until(lambda s: s.state == "connected")
    stop.set()
    await asyncio.wait_for(task, 5)
    assert (reports.seen[-1].state, reports.seen[-1].reason) == ("stopped", "ttlp is stopping")


async def test_exhausted_reconnects_stop_with_the_last_reason() -> None:
    provider = Steps([Outcome.RECONNECT, Outcome.RECONNECT])
    reports = Reports()
    sup = supervisor(provider, reports, max_attempts=2)
    await asyncio.wait_for(sup.run(asyncio.Event()), 5)
    last = reports.seen[-1]
    assert last.state == "stopped"
    assert last.reason == (
        "2 reconnect attempts failed in a row (RECONNECT_MAX_ATTEMPTS); "
        "the last: scripted reconnect"
    )


def status(unique_id: str, replica: str, state: str, updated: datetime) -> str:
    return encode(
        StreamerStatus(
            unique_id=unique_id,
            provider="direct",
            state=state,  # type: ignore[arg-type]
            replica=replica,
            updated_at=updated.isoformat().replace("+00:00", "Z"),
            last_message_at=(updated - timedelta(seconds=3)).isoformat().replace("+00:00", "Z"),
        )
    )


def test_the_replica_doing_the_work_wins_and_old_reports_are_stale() -> None:
    now = datetime(2026, 3, 7, 21, 0, tzinfo=UTC)
    fresh = now - timedelta(seconds=5)
    reports = {
        "luna.beats|vm-1": status("luna.beats", "vm-1", "connected", fresh),
        "luna.beats|vm-2": status("luna.beats", "vm-2", "waiting_for_lease", now),
        "zoe|vm-1": status("zoe", "vm-1", "connected", now - timedelta(minutes=5)),
        "zoe|vm-2": status("zoe", "vm-2", "waiting_for_lease", now - timedelta(minutes=9)),
        "broken|vm-1": "{not json",
    }
    out = decode_reports(reports, now)
    assert [(r["uniqueId"], r["replica"], r["state"], r["stale"]) for r in out] == [
        ("luna.beats", "vm-1", "connected", False),
        ("zoe", "vm-1", "connected", True),
    ]
    assert out[0]["lastMessageAgeS"] == 8.0


async def test_the_embedded_bus_mirrors_reports_for_the_cli(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "data" / "bus-status.json"
    running = MemoryBus(status_file=path)
    report = StreamerStatus(unique_id="luna.beats", provider="mock", state="connected")
    await running.set_status("ttlc:ingest:status", report_field(report), encode(report))
    cli = MemoryBus(status_file=path)  # another process
    assert await cli.statuses("ttlc:ingest:status") == {"luna.beats|": encode(report)}
    assert await MemoryBus(status_file=path.with_name("none.json")).statuses("x") == {}


def test_describe_failure_names_the_host_when_the_error_knows_it() -> None:
    error = httpx.ConnectTimeout("timed out")
    error.request = httpx.Request("GET", "https://tiktok.eulerstream.com/webcast/sign_url")
    assert describe_failure(error) == "ConnectTimeout: timed out (host tiktok.eulerstream.com)"
    outer = RuntimeError("could not sign")
    outer.__cause__ = error
    assert describe_failure(outer) == "RuntimeError: could not sign (host tiktok.eulerstream.com)"
    assert describe_failure(ValueError("x")) == "ValueError: x"
