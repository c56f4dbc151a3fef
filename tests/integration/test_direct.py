"""The direct provider: TikTokLive's unmodified client against a local TikTok (tests/fakes).

A fake live page, webcast API and sign server answer the client's HTTP requests; a fake push
WebSocket sends gzip'd WebcastPushFrames of real TikTokLiveProto messages and records the
client's room enter, heartbeats and acks. The tests follow what TikTok sends through the
provider and the streamer supervisor to ``ttlc:raw``, and through normalize + store to the
events table; connection failures and TikTokLive's errors are asserted on the Outcome the
provider raises and the supervisor records, never on log text.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

import msgspec
import pytest
import TikTokLive.proto as P
from sqlalchemy import select
from TikTokLive.client.client import TikTokLiveClient

from tests.fakes.tiktok import (
    AKHMED,
    ROOM_ID,
    STREAMER,
    XIAOMING,
    ZOE,
    AwaitAck,
    AwaitHeartbeats,
    Close,
    Drop,
    FakeTikTok,
    Messages,
    Script,
    Send,
    fetch_result,
    push_frame,
)
from tests.support.wait import wait_for
from ttlp.bus.base import Bus
from ttlp.bus.memory import MemoryBus
from ttlp.bus.redis import RedisBus
from ttlp.db import tables
from ttlp.roles import normalize, store
from ttlp.runtime import Context, RoleFn, is_drained, open_context, supervise
from ttlp.settings import Settings
from ttlp.tiktok.providers.base import ConnectionEnded, Outcome, Session
from ttlp.tiktok.providers.direct import DirectProvider
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.supervisor import StreamerSupervisor, SupervisorSettings

POLL_S = 30.0
WAIT_S = 20.0


# -- helpers -------------------------------------------------------------------------------------
@dataclass
class Sleeps:
    """The supervisor's ``sleep``: records each delay, returns at once, and sets ``stop``
    once ``stop_after`` delays were asked for (so a test ends after a known number of
    connections)."""

    stop: asyncio.Event
    stop_after: int
    delays: list[float] = field(default_factory=list)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if len(self.delays) >= self.stop_after:
            self.stop.set()
        await asyncio.sleep(0)


def supervisor(
    tiktok: FakeTikTok,
    publisher: FramePublisher,
    sleeps: Sleeps,
    *,
    clock: Callable[[], float] | None = None,
    unique_id: str = STREAMER,
    **settings: Any,
) -> StreamerSupervisor:
    provider = (
        DirectProvider(tiktok.settings(**settings), clock=clock)
        if clock is not None
        else DirectProvider(tiktok.settings(**settings))
    )
    return StreamerSupervisor(
        provider,
        unique_id,
        publisher,
        settings=SupervisorSettings(poll_interval_s=POLL_S),
        sleep=sleeps,
    )


async def run_supervisor(sup: StreamerSupervisor, stop: asyncio.Event) -> None:
    async with asyncio.timeout(WAIT_S):
        await sup.run(stop)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def header(message: Any) -> tuple[int, int]:
    """(msgId, createTime) of a fetched message, as TikTokLive would read them."""
    cls = getattr(P, message.method)
    common = cls().parse(message.payload).common
    return common.msg_id, common.create_time


def a_show(m: Messages) -> tuple[Script, list[Any]]:
    """One live show on one connection, and the messages TikTok sends in it, in order."""
    initial = [m.viewers(1523, 20411), m.chat(ZOE, "hi Luna!")]
    first = [m.chat(AKHMED, "Привет из Казани!"), m.chat(XIAOMING, "你好")]
    streak = [
        m.gift(XIAOMING, gift_id=5655, name="Rose", diamonds=1, repeat=n, end=n == 3)
        for n in (1, 2, 3)
    ]
    second = [*streak, m.like(ZOE, 15, 15234), m.follow(AKHMED), m.share(XIAOMING)]
    end = [m.control(3)]
    script = Script(
        initial=initial,
        steps=[
            Send.result(first, log_id=11),
            AwaitHeartbeats(2),  # the client's ping loop runs while we publish
            Send.result(second, log_id=12),
            AwaitAck(12),
            Send.result(end, log_id=13),
        ],
    )
    return script, [*initial, *first, *second, *end]


@pytest.fixture
async def redis_bus(redis_url: str, redis_cleanup: None) -> AsyncIterator[RedisBus]:
    bus = RedisBus(redis_url)
    yield bus
    await bus.close()


@contextlib.asynccontextmanager
async def pipeline(redis_url: str, prefix: str, database_url: str) -> AsyncIterator[Context]:
    """normalize + store running on Redis and PostgreSQL until the block ends."""
    settings = Settings.from_env(
        {},
        **{
            "bus.redis_url": redis_url,
            "bus.prefix": prefix,
            "bus.block_ms": 50,
            "db.url": database_url,
        },
    )
    async with open_context(settings, need_db=True) as ctx:
        stop = asyncio.Event()
        roles: dict[str, RoleFn] = {"normalize": normalize.run, "store": store.run}
        task = asyncio.create_task(
            supervise(ctx, roles, grace_s=5, stop=stop, install_signals=False)
        )
        try:
            yield ctx
        finally:
            stop.set()
            assert await task == 0


async def settled(ctx: Context, done: Callable[[list[dict[str, Any]]], bool]) -> list[Any]:
    """Wait until both consumer groups are drained and ``done(events)``; return the events."""

    async def check() -> list[Any] | None:
        events = await stored_events(ctx)
        return events if done(events) and await is_drained(ctx) else None

    events: list[Any] = await wait_for(
        check, timeout=WAIT_S, poll=0.05, what="the events stored and the groups drained"
    )
    return events


async def stored_events(ctx: Context) -> list[dict[str, Any]]:
    assert ctx.engine is not None
    async with ctx.engine.connect() as conn:
        result = await conn.execute(select(tables.events.c.event_data).order_by(tables.events.c.id))
        return [
            row[0] if isinstance(row[0], dict) else msgspec.json.decode(row[0]) for row in result
        ]


def of_type(events: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [e for e in events if e["eventType"] == event_type]


def raw_frames(entries: list[Any]) -> list[dict[str, Any]]:
    frames = []
    for entry in entries:
        fields = dict(entry.fields)
        fields["data"] = msgspec.json.decode(fields["data"])
        frames.append(fields)
    return frames


async def read_raw(bus: Bus, stream: str) -> list[dict[str, Any]]:
    return raw_frames(await bus.range(stream))


# -- (1) every fetched message to ttlc:raw -----------------------------------------------------
@pytest.mark.integration
async def test_every_fetched_message_reaches_raw_with_msg_id_and_create_time(
    fake_tiktok: FakeTikTok,
    redis_bus: RedisBus,
    key_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[str] = []

    async def library_decode(self: Any, webcast_response: Any, message: Any) -> list[Any]:
        decoded.append(message.method)
        return []

    # TikTokLive's per-message decode (betterproto2 → events) must never run.
    monkeypatch.setattr(TikTokLiveClient, "_parse_webcast_response_message", library_decode)
    script, sent = a_show(Messages())
    room = fake_tiktok.room(scripts=[script])
    stream = f"{key_prefix}ttlc:raw"
    stop = asyncio.Event()
    sleeps = Sleeps(stop, stop_after=1)
    sup = supervisor(fake_tiktok, FramePublisher(redis_bus, stream, paced=False), sleeps)

    await run_supervisor(sup, stop)

    frames = await read_raw(redis_bus, stream)
    assert [f["type"] for f in frames] == [
        "ControlEvent.CONNECTED",
        *(m.method for m in sent),
        "ControlEvent.DISCONNECTED",
    ]
    messages = frames[1:-1]
    for frame, message in zip(messages, sent, strict=True):
        msg_id, created = header(message)
        assert frame["seqNo"] == str(msg_id)
        assert frame["timestamp"] == iso(created)
        assert base64.b64decode(frame["data"]) == bytes(message.payload)  # undecoded bytes
        assert frame["provider"] == "direct"
        assert frame["uniqueId"] == STREAMER
        assert frame["streamId"] == str(ROOM_ID)
        assert frame["source"] == "live"
    assert len({f["sessionId"] for f in frames}) == 1
    assert frames[0]["data"] == {
        "roomId": str(ROOM_ID),
        "isConnected": True,
        "provider": "direct",
        "uniqueId": STREAMER,
    }
    assert frames[-1]["data"] == {"reason": "stream ended", "willReconnect": True}
    # The stream ended (ControlMessage action 3): poll again later.
    assert sup.outcomes == [Outcome.POLL]
    assert sleeps.delays == [POLL_S]
    # The client's own machinery kept working: room enter, heartbeats, an ack per pushed
    # result carrying its internal_ext.
    assert room.received[0].payload_type == "im_enter_room"
    assert len(room.sent("hb")) >= 2
    assert [(a.log_id, a.payload) for a in room.sent("ack")] == [
        (11, b"ext-11"),
        (12, b"ext-12"),
        (13, b"ext-13"),
    ]
    assert fake_tiktok.errors == []
    assert decoded == []


# -- (2) end to end: TikTok → raw → normalize → store ------------------------------------------
@pytest.mark.integration
async def test_a_live_show_ends_as_the_expected_events_in_the_database(
    fake_tiktok: FakeTikTok,
    redis_bus: RedisBus,
    redis_url: str,
    key_prefix: str,
    migrated_database_url: str,
) -> None:
    m = Messages()
    script, sent = a_show(m)
    fake_tiktok.room(scripts=[script])
    stop = asyncio.Event()
    async with pipeline(redis_url, key_prefix, migrated_database_url) as ctx:
        publisher = FramePublisher(redis_bus, ctx.keys.raw, paced=False)
        await run_supervisor(supervisor(fake_tiktok, publisher, Sleeps(stop, 1)), stop)
        events = await settled(ctx, lambda ev: len(of_type(ev, "DISCONNECTED")) == 1)

    counts = {t: len(of_type(events, t)) for t in {e["eventType"] for e in events}}
    assert counts == {
        "CONNECTED": 1,
        "ROOM_USER": 1,
        "CHAT": 3,
        "GIFT": 3,
        "LIKE": 1,
        "FOLLOW": 1,
        "SHARE": 1,
        "STREAM_END": 1,
        "DISCONNECTED": 1,
    }
    assert [e["seqNo"] for e in events[1:-1]] == [header(s)[0] for s in sent]
    assert [e["timestamp"] for e in events[1:-1]] == [iso(header(s)[1]) for s in sent]
    assert of_type(events, "CONNECTED")[0]["payload"] == {
        "roomId": str(ROOM_ID),
        "isConnected": True,
        "provider": "direct",
        "uniqueId": STREAMER,
    }
    chats = of_type(events, "CHAT")
    assert [c["payload"]["message"] for c in chats] == ["hi Luna!", "Привет из Казани!", "你好"]
    assert [c["user"]["uniqueId"] for c in chats] == ["zoe.petals", "akhmed_kzn", "xiaoming88"]
    gifts = [g["payload"] for g in of_type(events, "GIFT")]
    assert [(g["giftCount"], g["coins"], g["streakActive"], g["streakEnd"]) for g in gifts] == [
        (1, 1, True, False),
        (2, 2, True, False),
        (3, 3, False, True),
    ]
    assert {g["giftName"] for g in gifts} == {"Rose"}
    assert of_type(events, "LIKE")[0]["payload"] == {"likeCount": 15, "totalLikeCount": 15234}
    assert of_type(events, "FOLLOW")[0]["user"]["uniqueId"] == "akhmed_kzn"
    assert of_type(events, "SHARE")[0]["user"]["uniqueId"] == "xiaoming88"
    assert of_type(events, "ROOM_USER")[0]["payload"] == {
        "viewerCount": 1523,
        "totalViewers": 20411,
    }
    assert of_type(events, "STREAM_END")[0]["payload"]["action"] == 3
    assert await redis_bus.length(f"{key_prefix}ttlc:dlq") == 0


# -- (3) a server close mid-stream ---------------------------------------------------------------
@pytest.mark.integration
async def test_server_close_mid_stream_reconnects_and_resent_messages_are_stored_once(
    fake_tiktok: FakeTikTok,
    redis_bus: RedisBus,
    redis_url: str,
    key_prefix: str,
    migrated_database_url: str,
) -> None:
    m = Messages()
    a, b = m.chat(ZOE, "A"), m.chat(AKHMED, "B")
    c, d = m.chat(XIAOMING, "C"), m.chat(ZOE, "D")
    room = fake_tiktok.room(
        scripts=[
            Script(
                initial=[m.viewers(10, 10)],
                steps=[Send.result([a, b], log_id=21), AwaitAck(21), Close(1011, "server error")],
            ),
            # After the reconnect TikTok re-sends recent messages (same msgIds), then goes on.
            Script(
                initial=[a, b, c],
                steps=[Send.result([d], log_id=22), Send.result([m.control(3)], log_id=23)],
            ),
        ]
    )
    stop = asyncio.Event()
    sleeps = Sleeps(stop, stop_after=2)
    async with pipeline(redis_url, key_prefix, migrated_database_url) as ctx:
        publisher = FramePublisher(redis_bus, ctx.keys.raw, paced=False)
        sup = supervisor(fake_tiktok, publisher, sleeps)
        await run_supervisor(sup, stop)
        events = await settled(ctx, lambda ev: len(of_type(ev, "DISCONNECTED")) == 2)

    assert sup.outcomes == [Outcome.RECONNECT, Outcome.POLL]
    assert 0.8 <= sleeps.delays[0] <= 1.2  # first back-off step: 1 s ± 20 %
    assert sleeps.delays[1] == POLL_S
    assert room.connections == 2
    assert len(sup.sessions) == 2
    first, second = sup.sessions
    disconnects = of_type(events, "DISCONNECTED")
    assert disconnects[0]["sessionId"] == first
    assert disconnects[0]["payload"]["code"] == 1011
    assert disconnects[0]["payload"]["willReconnect"] is True
    assert disconnects[1]["sessionId"] == second
    chats = of_type(events, "CHAT")
    assert [(c["payload"]["message"], c["sessionId"]) for c in chats] == [
        ("A", first),
        ("B", first),
        ("C", second),
        ("D", second),
    ]
    assert [e["sessionId"] for e in of_type(events, "CONNECTED")] == [first, second]
    # The re-sent A and B did reach ttlc:raw in the second session: the store skipped them.
    raw = await read_raw(redis_bus, ctx.keys.raw)
    resent = [f for f in raw if f["sessionId"] == second and f["type"] == "WebcastChatMessage"]
    assert [int(f["seqNo"]) for f in resent] == [header(x)[0] for x in (a, b, c, d)]


# -- (4) TikTokLive's errors → Outcome ------------------------------------------------------------
def a_room(tiktok: FakeTikTok, **options: Any) -> None:
    m = Messages()
    tiktok.room(scripts=[Script(initial=[m.chat(ZOE, "hi")])], **options)


def memory_session() -> tuple[Session, MemoryBus]:
    bus = MemoryBus()
    publisher = FramePublisher(bus, "raw", paced=False)
    return Session(publisher, STREAMER, "direct", "00000000-0000-4000-8000-000000000001"), bus


@pytest.mark.parametrize(
    ("room_options", "outcome", "code"),
    [
        pytest.param({"page": "offline"}, Outcome.POLL, "UserOfflineError", id="offline"),
        # TikTok's "user not found" is also its answer for a creator who is not live.
        pytest.param({"page": "not_found"}, Outcome.POLL, "UserNotFoundError", id="not-found"),
        pytest.param({"page": "captcha"}, Outcome.BACKOFF, "JSONDecodeError", id="captcha"),
        pytest.param(
            {"alive": "empty"}, Outcome.BACKOFF, "MissingRoomIdInResponse", id="empty-live-check"
        ),
        pytest.param({"sign": "rate_limited"}, Outcome.BACKOFF, "RATE_LIMIT", id="sign-429"),
        pytest.param(
            {"sign": "rate_limited", "rate_limit_headers": {}},
            Outcome.BACKOFF,
            "RATE_LIMIT",
            id="sign-429-no-headers",
        ),
        pytest.param({"sign": "forbidden"}, Outcome.STOP, "SIGN_NOT_200", id="sign-403"),
        pytest.param({"sign": "error"}, Outcome.RECONNECT, "SIGN_NOT_200", id="sign-500"),
        pytest.param({"sign": "empty"}, Outcome.RECONNECT, "EMPTY_PAYLOAD", id="sign-empty"),
        pytest.param(
            {"sign": "no_cookies"}, Outcome.RECONNECT, "EMPTY_COOKIES", id="sign-no-cookies"
        ),
        pytest.param(
            {"sign": "no_cursor"}, Outcome.BACKOFF, "InitialCursorMissingError", id="no-cursor"
        ),
        pytest.param({"push": "reject"}, Outcome.BACKOFF, "WebcastBlockedError", id="ws-200"),
        pytest.param({"push": "down"}, Outcome.RECONNECT, "ConnectionRefusedError", id="ws-down"),
    ],
)
async def test_tiktoklive_errors_are_sorted_into_outcomes(
    fake_tiktok: FakeTikTok, room_options: dict[str, Any], outcome: Outcome, code: str
) -> None:
    a_room(fake_tiktok, **room_options)
    provider = DirectProvider(fake_tiktok.settings())
    session, bus = memory_session()

    with pytest.raises(ConnectionEnded) as ended:
        await provider.run(STREAMER, session, asyncio.Event())

    assert (ended.value.outcome, ended.value.code) == (outcome, code)
    # Nothing was joined, so nothing was published (no CONNECTED without a room).
    assert await bus.length("raw") == 0


@pytest.mark.parametrize(
    ("close", "code"),
    [pytest.param(Close(1000), 1000, id="clean-close"), pytest.param(Drop(), 1006, id="drop")],
)
async def test_a_connection_lost_without_stream_end_means_reconnect(
    fake_tiktok: FakeTikTok, close: Close | Drop, code: int
) -> None:
    m = Messages()
    fake_tiktok.room(
        scripts=[Script(initial=[m.chat(ZOE, "hi")], steps=[AwaitHeartbeats(1), close])]
    )
    session, bus = memory_session()

    with pytest.raises(ConnectionEnded) as ended:
        await DirectProvider(fake_tiktok.settings()).run(STREAMER, session, asyncio.Event())

    # A live stream TikTok cut (even cleanly) is worth a quick retry, not a poll interval.
    assert (ended.value.outcome, ended.value.code) == (Outcome.RECONNECT, code)
    assert [f["type"] for f in await read_raw(bus, "raw")] == [
        "ControlEvent.CONNECTED",
        "WebcastChatMessage",
    ]


@pytest.mark.parametrize(
    ("settings", "code"),
    [
        pytest.param({"sign_api_url": "http://127.0.0.1:9"}, "CONNECT_ERROR", id="sign-down"),
        pytest.param({"tiktok_app_url": "http://127.0.0.1:9"}, "ConnectError", id="tiktok-down"),
    ],
)
async def test_unreachable_servers_mean_reconnect(
    fake_tiktok: FakeTikTok, settings: dict[str, str], code: str
) -> None:
    a_room(fake_tiktok)
    provider = DirectProvider(fake_tiktok.settings(**settings))
    session, _ = memory_session()

    with pytest.raises(ConnectionEnded) as ended:
        await provider.run(STREAMER, session, asyncio.Event())

    assert (ended.value.outcome, ended.value.code) == (Outcome.RECONNECT, code)


@pytest.mark.parametrize(
    ("page", "live"), [("live", True), ("offline", False)], ids=["live", "offline"]
)
async def test_is_live_asks_tiktok(fake_tiktok: FakeTikTok, page: str, live: bool) -> None:
    a_room(fake_tiktok, page=page)
    assert await DirectProvider(fake_tiktok.settings()).is_live(STREAMER) is live


# -- (4b) where TikTokLive 7.0.1's own handling would mislead a long-running ingest ---------------
NOW = 1_770_000_000.0
"""The provider's wall clock in the rate-limit tests (reset times are Unix times)."""


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-headers"),
        pytest.param(
            {"RateLimit-Remaining": "0", "RateLimit-Reset": "1732217460"}, id="nothing-usable"
        ),
    ],
)
async def test_a_sign_server_429_backs_off_even_without_rate_limit_headers(
    fake_tiktok: FakeTikTok, headers: dict[str, str]
) -> None:
    # Without RateLimit-Remaining, TikTokLive's SignatureRateLimitError fails to build
    # (TypeError): that used to pass for a transient failure, Outcome.RECONNECT.
    a_room(fake_tiktok, sign="rate_limited", rate_limit_headers=headers)
    bus = MemoryBus()
    stop = asyncio.Event()
    sleeps = Sleeps(stop, stop_after=2)
    sup = supervisor(
        fake_tiktok, FramePublisher(bus, "raw", paced=False), sleeps, clock=lambda: NOW
    )

    await run_supervisor(sup, stop)

    assert sup.outcomes == [Outcome.BACKOFF, Outcome.BACKOFF]
    # Nothing says how long: the usual back-off.
    assert 0.8 <= sleeps.delays[0] <= 1.2
    assert 1.6 <= sleeps.delays[1] <= 2.4  # ×2
    assert await bus.length("raw") == 0  # never connected: no lifecycle frames
    # One live check per attempt, its room id reused by the connection that followed; a rate
    # limit is no failure worth a room-info diagnosis.
    assert fake_tiktok.requests.count("/@luna.beats/live") == 2
    assert fake_tiktok.requests.count("/webcast/fetch") == 2
    assert "/webcast/room/info/" not in fake_tiktok.requests


@pytest.mark.parametrize(
    ("headers", "wait_s"),
    [
        pytest.param({"Retry-After": "3600"}, 3600.0, id="retry-after"),
        pytest.param(
            {"Retry-After": formatdate(NOW + 600, usegmt=True)}, 600.0, id="retry-after-date"
        ),
        # TikTokLive's retry_after (its sign server's seconds to wait) ...
        pytest.param({"RateLimit-Remaining": "1800"}, 1800.0, id="tiktoklive-retry-after"),
        # ... and its reset_time (a Unix time).
        pytest.param({"RateLimit-Reset": str(int(NOW) + 2700)}, 2700.0, id="reset-time"),
        pytest.param(
            {
                "Retry-After": "120",
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(int(NOW) + 3600),
            },
            3600.0,
            id="the-longest",
        ),
    ],
)
async def test_a_sign_server_429_makes_the_supervisor_wait_as_long_as_it_asks(
    fake_tiktok: FakeTikTok, headers: dict[str, str], wait_s: float
) -> None:
    a_room(fake_tiktok, sign="rate_limited", rate_limit_headers=headers)
    stop = asyncio.Event()
    sleeps = Sleeps(stop, stop_after=1)
    bus = MemoryBus()
    sup = supervisor(
        fake_tiktok, FramePublisher(bus, "raw", paced=False), sleeps, clock=lambda: NOW
    )

    await run_supervisor(sup, stop)

    assert sup.outcomes == [Outcome.BACKOFF]
    assert sleeps.delays == [wait_s]  # not the 1–60 s back-off


async def test_a_sign_server_429_says_how_long_in_its_reason(fake_tiktok: FakeTikTok) -> None:
    a_room(fake_tiktok, sign="rate_limited", rate_limit_headers={"Retry-After": "3600"})
    session, _ = memory_session()

    with pytest.raises(ConnectionEnded) as ended:
        await DirectProvider(fake_tiktok.settings()).run(STREAMER, session, asyncio.Event())

    assert (ended.value.outcome, ended.value.code) == (Outcome.BACKOFF, "RATE_LIMIT")
    assert ended.value.retry_after_s == 3600.0
    assert "(minute): Too many connections started" in ended.value.reason
    assert "wait 3600 s" in ended.value.reason


async def test_a_user_tiktok_does_not_find_is_polled_until_live_not_stopped(
    fake_tiktok: FakeTikTok,
) -> None:
    m = Messages()
    room = fake_tiktok.room(
        page="not_found",
        scripts=[
            Script(initial=[m.chat(ZOE, "hi")], steps=[Send.result([m.control(3)], log_id=61)])
        ],
    )
    bus = MemoryBus()
    stop = asyncio.Event()
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 2:
            room.page = "live"  # TikTok finds the creator once they are live
        elif len(delays) == 3:
            stop.set()
        await asyncio.sleep(0)

    sup = supervisor(fake_tiktok, FramePublisher(bus, "raw", paced=False), Sleeps(stop, 99))
    sup.sleep = sleep

    await run_supervisor(sup, stop)

    assert sup.outcomes == [Outcome.POLL, Outcome.POLL, Outcome.POLL]
    assert delays == [POLL_S, POLL_S, POLL_S]
    assert [f["type"] for f in await read_raw(bus, "raw")] == [
        "ControlEvent.CONNECTED",
        "WebcastChatMessage",
        "WebcastControlMessage",
        "ControlEvent.DISCONNECTED",
    ]


async def test_is_live_of_a_user_tiktok_does_not_find_means_poll(fake_tiktok: FakeTikTok) -> None:
    a_room(fake_tiktok, page="not_found")

    with pytest.raises(ConnectionEnded) as ended:
        await DirectProvider(fake_tiktok.settings()).is_live(STREAMER)

    assert (ended.value.outcome, ended.value.code) == (Outcome.POLL, "UserNotFoundError")
    assert ended.value.reason.startswith('TikTok said "user not found" for @luna.beats')


@pytest.mark.parametrize("handle", ["luna beats", "luna?x=1", "луна"])
async def test_a_handle_that_cannot_exist_stops_without_asking_tiktok(
    fake_tiktok: FakeTikTok, handle: str
) -> None:
    bus = MemoryBus()
    stop = asyncio.Event()
    sleeps = Sleeps(stop, stop_after=1)
    sup = supervisor(fake_tiktok, FramePublisher(bus, "raw", paced=False), sleeps, unique_id=handle)

    await run_supervisor(sup, stop)

    assert sup.outcomes == [Outcome.STOP]
    assert sleeps.delays == []
    assert fake_tiktok.requests == []
    with pytest.raises(ConnectionEnded) as ended:
        await DirectProvider(fake_tiktok.settings()).is_live(handle)
    assert (ended.value.outcome, ended.value.code) == (Outcome.STOP, "INVALID_HANDLE")


async def test_an_age_restricted_room_that_cannot_be_joined_stops_with_its_reason(
    fake_tiktok: FakeTikTok,
) -> None:
    # The sign server cannot fetch an 18+ room for an anonymous viewer; TikTok's room info
    # says why (TikTokLive: AgeRestrictedError, raised only by its room-info route).
    a_room(fake_tiktok, age_restricted=True, sign="empty")
    session, bus = memory_session()
    provider = DirectProvider(fake_tiktok.settings(session_id="sid-9f8e7d6c"))

    with pytest.raises(ConnectionEnded) as ended:
        await provider.run(STREAMER, session, asyncio.Event())

    assert (ended.value.outcome, ended.value.code) == (Outcome.STOP, "AGE_RESTRICTED")
    assert ended.value.reason.startswith("age-restricted LIVE: TikTok shows it only to logged-in")
    assert "SESSION_ID is set, but ingest never sends it" in ended.value.reason
    assert "sid-9f8e7d6c" not in ended.value.reason
    assert fake_tiktok.requests.count("/webcast/room/info/") == 1
    assert await bus.length("raw") == 0

    # Through the supervisor: the streamer is given up, not retried.
    stop = asyncio.Event()
    sleeps = Sleeps(stop, stop_after=1)
    sup = supervisor(fake_tiktok, FramePublisher(MemoryBus(), "raw", paced=False), sleeps)
    await run_supervisor(sup, stop)
    assert sup.outcomes == [Outcome.STOP]
    assert sleeps.delays == []


async def test_an_age_restricted_room_that_can_be_read_anonymously_is_read(
    fake_tiktok: FakeTikTok,
) -> None:
    m = Messages()
    fake_tiktok.room(
        age_restricted=True,
        scripts=[
            Script(initial=[m.chat(ZOE, "hi")], steps=[Send.result([m.control(3)], log_id=71)])
        ],
    )
    bus = MemoryBus()
    stop = asyncio.Event()
    sup = supervisor(fake_tiktok, FramePublisher(bus, "raw", paced=False), Sleeps(stop, 1))

    await run_supervisor(sup, stop)

    assert sup.outcomes == [Outcome.POLL]
    assert [f["type"] for f in await read_raw(bus, "raw")] == [
        "ControlEvent.CONNECTED",
        "WebcastChatMessage",
        "WebcastControlMessage",
        "ControlEvent.DISCONNECTED",
    ]
    # Room info is asked only to explain a failure: never on the way in.
    assert "/webcast/room/info/" not in fake_tiktok.requests


async def test_secrets_never_reach_a_reason(fake_tiktok: FakeTikTok) -> None:
    key = "sk-live-4f9c2e8a1b7d6053"
    a_room(fake_tiktok, sign="error")  # the fake sign server echoes the key in its error
    provider = DirectProvider(fake_tiktok.settings(sign_api_key=key, session_id="sid-9f8e7d6c"))
    session, _ = memory_session()

    with pytest.raises(ConnectionEnded) as ended:
        await provider.run(STREAMER, session, asyncio.Event())

    assert fake_tiktok.sign_keys == [key]  # the key went to the sign server, as a header
    assert "upstream failure for key ***" in ended.value.reason
    assert key not in ended.value.reason
    assert key not in str(ended.value)


async def test_stop_disconnects_cleanly(fake_tiktok: FakeTikTok) -> None:
    m = Messages()
    room = fake_tiktok.room(scripts=[Script(initial=[m.chat(ZOE, "hi")], steps=[])])
    bus = MemoryBus()
    stop = asyncio.Event()
    sup = supervisor(fake_tiktok, FramePublisher(bus, "raw", paced=False), Sleeps(stop, 1))
    task = asyncio.create_task(run_supervisor(sup, stop))
    await room.wait_for(lambda: len(room.sent("hb")) >= 2)  # connected, heartbeating

    stop.set()
    await task

    assert sup.outcomes == [Outcome.STOP]
    frames = await read_raw(bus, "raw")
    assert [f["type"] for f in frames] == [
        "ControlEvent.CONNECTED",
        "WebcastChatMessage",
        "ControlEvent.DISCONNECTED",
    ]
    assert frames[-1]["data"]["willReconnect"] is False
    # Nothing of the client is left running (its ping loop included).
    leftovers = [
        t for t in asyncio.all_tasks() if "_ping_loop_fn" in repr(t) or "_ws_client_loop" in repr(t)
    ]
    assert leftovers == []


# -- (5) bad input from the push server ----------------------------------------------------------
@pytest.mark.integration
async def test_unreadable_frames_are_skipped_and_bad_messages_dead_lettered_never_a_crash(
    fake_tiktok: FakeTikTok,
    redis_bus: RedisBus,
    redis_url: str,
    key_prefix: str,
    migrated_database_url: str,
) -> None:
    m = Messages()
    good = fetch_result([m.chat(ZOE, "lost")], internal_ext="ext-x", need_ack=True)
    garbage_chat = m.raw("WebcastChatMessage", b"\x0a\xff\xff\x01garbage", msg_id=9001)
    mystery = m.raw("WebcastMysteryMessage", b"\x08\x01\x12\x03abc", msg_id=9002)
    room = fake_tiktok.room(
        scripts=[
            Script(
                initial=[m.chat(ZOE, "before")],
                steps=[
                    Send(push_frame(bytes(good), log_id=31)[:-7]),  # truncated push frame
                    Send(_gzip_header_but_not_gzip(bytes(good), log_id=32)),
                    Send(push_frame(bytes(good)[:-3], log_id=33)),  # truncated fetch result
                    Send.result([garbage_chat, mystery, m.chat(ZOE, "after")], log_id=34),
                    Send.result([m.control(3)], log_id=35),
                ],
            )
        ]
    )
    stop = asyncio.Event()
    async with pipeline(redis_url, key_prefix, migrated_database_url) as ctx:
        publisher = FramePublisher(redis_bus, ctx.keys.raw, paced=False)
        sup = supervisor(fake_tiktok, publisher, Sleeps(stop, 1))
        await run_supervisor(sup, stop)
        events = await settled(ctx, lambda ev: len(of_type(ev, "DISCONNECTED")) == 1)
        dead = await redis_bus.range(ctx.keys.dlq)

    # One connection from start to stream end: nothing bad ended it.
    assert sup.outcomes == [Outcome.POLL]
    assert room.connections == 1
    assert [c["payload"]["message"] for c in of_type(events, "CHAT")] == ["before", "after"]
    errors = [e["payload"] for e in of_type(events, "ERROR")]
    assert [e["code"] for e in errors] == ["PARSE_ERROR"] * 3
    assert "gzip" in errors[1]["message"]
    raws = of_type(events, "RAW")
    assert [r["payload"]["rawType"] for r in raws] == ["WebcastMysteryMessage"]
    assert len(of_type(events, "STREAM_END")) == 1
    dead_fields = [d.fields or {} for d in dead]
    assert [(d["stage"], d["reason"], d["rawType"]) for d in dead_fields] == [
        ("normalizer", "PARSE_ERROR", "WebcastChatMessage")
    ]
    # Only readable results were acked.
    assert [a.log_id for a in room.sent("ack")] == [34, 35]


def _gzip_header_but_not_gzip(payload: bytes, *, log_id: int) -> bytes:
    """A push frame whose header says gzip but whose payload is cut short gzip."""
    frame = P.WebcastPushFrame(
        log_id=log_id,
        payload_type="msg",
        headers=[P.PushHeader(key="compress_type", value="gzip")],
        payload=gzip.compress(payload)[:-6],
    )
    return bytes(frame)


# -- (6) messages without an id ------------------------------------------------------------------
WEEKLY = "WebcastWeeklyRankRewardMessage"


@pytest.mark.integration
async def test_messages_without_an_id_keep_a_seq_no_and_an_event_each(
    fake_tiktok: FakeTikTok,
    redis_bus: RedisBus,
    redis_url: str,
    key_prefix: str,
    migrated_database_url: str,
) -> None:
    m = Messages()
    # TikTokLiveProto has no WeeklyRankReward class; its Hourly twin has the same layout
    # (common = 1, winners = 2). No msgId in common, none on the envelope: as TikTok sends it.
    rewards = [
        m.without_id(P.WebcastHourlyRankRewardMessage(), method=WEEKLY),
        m.without_id(P.WebcastHourlyRankRewardMessage(), method=WEEKLY),
    ]
    assert [(r.msg_id, header(_as_hourly(r))[0]) for r in rewards] == [(0, 0), (0, 0)]
    fake_tiktok.room(
        scripts=[
            Script(
                initial=[m.chat(ZOE, "hi")],
                steps=[
                    Send.result(rewards, log_id=81),
                    Send.result([m.control(3)], log_id=82),
                ],
            )
        ]
    )
    stop = asyncio.Event()
    async with pipeline(redis_url, key_prefix, migrated_database_url) as ctx:
        publisher = FramePublisher(redis_bus, ctx.keys.raw, paced=False)
        sup = supervisor(fake_tiktok, publisher, Sleeps(stop, 1))
        await run_supervisor(sup, stop)
        events = await settled(ctx, lambda ev: len(of_type(ev, "DISCONNECTED")) == 1)
        raw = await read_raw(redis_bus, ctx.keys.raw)

    published = [f for f in raw if f["type"] == WEEKLY]
    assert [base64.b64decode(f["data"]) for f in published] == [r.payload for r in rewards]
    seq_nos = [int(f["seqNo"]) for f in published]
    assert len(set(seq_nos)) == 2
    assert all(s > 0 for s in seq_nos)
    assert {f["sessionId"] for f in published} == {sup.sessions[0]}
    stored = [e for e in of_type(events, "RAW") if e["payload"]["rawType"] == WEEKLY]
    assert [e["seqNo"] for e in stored] == seq_nos
    assert len({e["eventId"] for e in stored}) == 2
    assert await redis_bus.length(f"{key_prefix}ttlc:dlq") == 0


def _as_hourly(message: Any) -> Any:
    """A fetched Weekly message read with the class its payload was built from."""
    return P.ProtoMessageFetchResultBaseProtoMessage(
        method="WebcastHourlyRankRewardMessage", payload=message.payload, msg_id=message.msg_id
    )
