"""Gift streaks without their end frame, closed once by the ingest (``ttlp.tiktok.streaks``), and
the silence watchdog, under a fake clock: nothing here waits for real time."""

from __future__ import annotations

import asyncio
import base64
import warnings
from dataclasses import dataclass, field
from typing import Any

import pytest

from ttlp.bus.memory import MemoryBus
from ttlp.contracts.events import GiftEvent, RawFrame, frame_from_fields
from ttlp.tiktok.normalize import normalize_frame
from ttlp.tiktok.proto import lookup
from ttlp.tiktok.providers.base import Message, Outcome, Session
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.streaks import CLOSED_KEY, PACKED_KEY, TIMEOUT_TYPE, StreakTracker, read_gift
from ttlp.tiktok.supervisor import StreamerSupervisor, SupervisorSettings

RAW = "ttlc:raw"
ROOM = "7441234567890123456"
GIFT = "WebcastGiftMessage"


def gift_bytes(
    count: int, *, end: bool = False, user: int = 1001, group: int = 42, streakable: bool = True
) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        message = lookup(GIFT)(
            gift_id=5655 if streakable else 6064,
            repeat_count=count,
            repeat_end=1 if end else 0,
            group_id=group,
            user=lookup("User")(id=user, display_id=f"fan{user}"),
            gift=lookup("Gift")(
                id=5655 if streakable else 6064,
                type=1 if streakable else 2,
                name="Rose" if streakable else "Lion",
                diamond_count=1 if streakable else 29999,
            ),
        )
    return bytes(message)


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


async def published(bus: MemoryBus) -> list[RawFrame]:
    return [frame_from_fields(e.fields or {}) for e in await bus.range(RAW)]


def new_session(bus: MemoryBus, clock: Clock, timeout_s: float = 10.0) -> Session:
    return Session(
        FramePublisher(bus, RAW, paced=False),
        "luna.beats",
        "direct",
        "5a1c2a9e-6b7d-4e21-9c55-0d8e7a41b2f6",
        room_id=ROOM,
        streaks=StreakTracker(timeout_s),
        clock=clock,
    )


def step(count: int, msg_id: int, **kw: Any) -> Message:
    return Message(GIFT, gift_bytes(count, **kw), msg_id, 1771754400000 + msg_id)


def test_read_gift_reads_both_forms_alike() -> None:
    payload = gift_bytes(3)
    from_bytes = read_gift(base64.b64encode(payload).decode())
    from_json = read_gift(
        {
            "giftId": "5655",
            "repeatCount": 3,
            "groupId": "42",
            "user": {"id": "1001"},
            "gift": {"type": 1},
        }
    )
    assert from_bytes == from_json
    assert from_bytes is not None
    assert from_bytes.key == ("1001", 5655, 42)
    assert (from_bytes.streakable, from_bytes.ended) == (True, False)
    assert read_gift("not base64!") is None


async def test_an_idle_streak_is_closed_once_with_its_last_count() -> None:
    bus, clock = MemoryBus(), Clock()
    session = new_session(bus, clock)
    await session.messages([step(1, 1)])
    clock.now = 2.0
    await session.messages([step(2, 2)])
    clock.now = 4.0
    await session.messages([step(3, 3)])

    clock.now = 13.9  # 9.9 s after the last frame: still open
    assert await session.expire_streaks() == 0
    clock.now = 14.0
    assert await session.expire_streaks() == 1
    clock.now = 60.0
    assert await session.expire_streaks() == 0  # once

    frames = await published(bus)
    closing = frames[-1]
    assert closing.type == TIMEOUT_TYPE
    assert isinstance(closing.data, dict)
    assert closing.data["gift"] == base64.b64encode(gift_bytes(3)).decode()
    assert closing.data["idleSeconds"] == 10.0
    assert closing.timestamp == frames[2].timestamp  # the last gift's time, not the timeout's

    event = normalize_frame(closing)
    assert isinstance(event, GiftEvent)
    payload = event.payload
    assert (payload.gift_count, payload.coins) == (3, 3)  # type: ignore[union-attr]
    assert (payload.streak_active, payload.streak_end) == (False, True)  # type: ignore[union-attr]
    assert event.user.user_id == "1001"
    assert [normalize_frame(f).payload.streak_end for f in frames[:3]] == [False] * 3  # type: ignore[union-attr]


async def test_a_late_end_frame_after_the_timeout_does_not_count_again() -> None:
    bus, clock = MemoryBus(), Clock()
    session = new_session(bus, clock)
    await session.messages([step(1, 1), step(2, 2)])
    clock.now = 10.0
    assert await session.expire_streaks() == 1
    await session.messages([step(4, 3, end=True)])

    late = (await published(bus))[-1]
    assert late.type == GIFT
    assert late.data == {
        PACKED_KEY: base64.b64encode(gift_bytes(4, end=True)).decode(),
        CLOSED_KEY: True,
    }
    event = normalize_frame(late)
    assert isinstance(event, GiftEvent)
    assert event.payload.gift_count == 4  # type: ignore[union-attr]
    assert (event.payload.streak_active, event.payload.streak_end) == (False, False)  # type: ignore[union-attr]


async def test_ended_and_single_gifts_and_other_streaks_are_left_alone() -> None:
    bus, clock = MemoryBus(), Clock()
    session = new_session(bus, clock)
    await session.messages(
        [
            step(1, 1),
            step(2, 2),
            step(2, 3, end=True),  # this streak ended as TikTok meant
            step(1, 4, streakable=False),  # a Lion: complete in one frame
            step(5, 5, user=2002),  # another viewer's streak, still open
        ]
    )
    clock.now = 30.0
    assert await session.expire_streaks() == 1
    closing = (await published(bus))[-1]
    assert normalize_frame(closing).user.user_id == "2002"


async def test_a_streak_open_at_shutdown_is_closed_then() -> None:
    bus, clock = MemoryBus(), Clock()
    session = new_session(bus, clock)
    await session.messages([step(7, 1)])
    assert await session.expire_streaks() == 0
    assert await session.expire_streaks(everything=True) == 1
    assert normalize_frame((await published(bus))[-1]).payload.gift_count == 7  # type: ignore[union-attr]


async def test_json_gift_messages_are_tracked_too() -> None:
    bus, clock = MemoryBus(), Clock()
    session = new_session(bus, clock)
    data = {
        "common": {"msgId": "9"},
        "giftId": 5655,
        "repeatCount": 2,
        "groupId": "42",
        "user": {"id": "1001", "displayId": "fan1001"},
        "gift": {"id": 5655, "type": 1, "name": "Rose", "diamondCount": 1},
    }
    await session.json_message(GIFT, data, 9, 1771754400009)
    clock.now = 10.0
    assert await session.expire_streaks() == 1
    event = normalize_frame((await published(bus))[-1])
    assert (event.payload.gift_count, event.payload.streak_end) == (2, True)  # type: ignore[union-attr]


async def test_a_zero_timeout_tracks_nothing() -> None:
    bus, clock = MemoryBus(), Clock()
    session = new_session(bus, clock, timeout_s=0)
    await session.messages([step(1, 1)])
    clock.now = 1e6
    assert await session.expire_streaks(everything=True) == 0


# -- the silence watchdog ----------------------------------------------------------------------
@dataclass
class Quiet:
    """A provider whose first connection joins the room and then hears nothing; the next
    ones find the streamer offline, and the test is done."""

    name: str = "direct"
    connections: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def is_live(self, unique_id: str) -> bool:
        if self.connections:
            self.done.set()
            return False
        return True

    async def run(self, unique_id: str, session: Session, stop: asyncio.Event) -> None:
        self.connections += 1
        await session.connected(ROOM)
        await session.messages([Message("WebcastChatMessage", b"\x12\x02hi", 7441000000000000001)])
        await stop.wait()


@pytest.mark.parametrize("silence_s", [30.0])
async def test_a_silent_connection_is_cut_and_reconnected(silence_s: float) -> None:
    bus, clock = MemoryBus(), Clock()
    provider = Quiet()
    ticks: list[float] = []

    async def tick(delay: float) -> None:  # the watchdog's period, on the fake clock
        ticks.append(delay)
        clock.now += delay
        await asyncio.sleep(0)

    async def no_wait(delay: float) -> None:
        await asyncio.sleep(0)

    supervisor = StreamerSupervisor(
        provider,  # type: ignore[arg-type]
        "luna.beats",
        FramePublisher(bus, RAW, paced=False),
        SupervisorSettings(silence_s=silence_s, poll_interval_s=1),
        sleep=no_wait,
        tick=tick,
        clock=clock,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    await asyncio.wait_for(provider.done.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)

    assert supervisor.outcomes[0] is Outcome.RECONNECT
    disconnected = [f for f in await published(bus) if f.type == "ControlEvent.DISCONNECTED"]
    assert len(disconnected) == 1
    assert isinstance(disconnected[0].data, dict)
    reason = disconnected[0].data["reason"]
    assert reason.startswith(f"no message from TikTok for {silence_s:.0f} s while connected")
    assert disconnected[0].data["willReconnect"] is True
    # Cut as soon as the silence reached the limit: within one watchdog period of it.
    assert silence_s <= clock.now <= silence_s + max(ticks)


async def test_a_zero_silence_never_cuts() -> None:
    settings = SupervisorSettings(silence_s=0, streak_timeout_s=0)
    supervisor = StreamerSupervisor(
        Quiet(),  # type: ignore[arg-type]
        "luna.beats",
        FramePublisher(MemoryBus(), RAW, paced=False),
        settings,
    )
    session = Session(supervisor.publisher, "luna.beats", "direct", "x", room_id=ROOM)
    session.last_message_at = -1e9
    stop = asyncio.Event()
    ticks = 0

    async def tick(delay: float) -> None:
        nonlocal ticks
        ticks += 1
        if ticks == 20:
            stop.set()
        await asyncio.sleep(0)

    supervisor.tick = tick
    await asyncio.wait_for(supervisor._watch(session, stop), 5)
    assert ticks == 20
