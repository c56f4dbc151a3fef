"""The euler provider against a local fake Euler Stream WebSocket (DESIGN §5.1).

Shown here: raw binary frames and JSON frames both end as the expected events in the database
(provider under the streamer supervisor → Redis → normalize + store → PostgreSQL); every close
code of the policy leads to its action, asserted on what the provider raises and what the
supervisor does next (4429: the longer wait); the API key never reaches a log line, an event
or ``ttlc:raw``; unreadable frames are skipped without ending the connection; ``stop`` closes
cleanly; fetch results with needAck are acknowledged and heartbeats flow, which keeps a quiet
room from Euler's inactivity close (4006); the live check asks Euler's REST API (the fake in
``tests/fakes/euler_api.py``) so an offline creator costs no WebSocket, and a check that
fails leaves the decision to the WebSocket. Only the database test needs Redis and
PostgreSQL; the others publish to the in-process bus.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import pytest
from loguru import logger
from sqlalchemy import text
from TikTokLive.proto import HeartBeatMessage, WebcastPushFrame

from tests.fakes.euler import (
    BAD_GZIP,
    CREATED_MS,
    FAM,
    GARBAGE,
    INTERNAL_EXT,
    OWL,
    ROOM_ID,
    ZOE,
    Close,
    Connection,
    FakeEuler,
    Hold,
    Reject,
    Send,
    Step,
    bundle,
    chat,
    control,
    gift_streak,
    json_item,
    like,
    opening,
    push_frame,
    push_frame_with_payload,
    room_info,
    social,
    worker_info,
)
from tests.fakes.euler_api import FakeEulerApi
from tests.support.wait import free_port, wait_for
from ttlp import log
from ttlp.bus.memory import MemoryBus
from ttlp.contracts.events import RawFrame, frame_from_fields
from ttlp.errors import ConfigError, PermanentError
from ttlp.runtime import ROLES, open_context, supervise
from ttlp.settings import Settings
from ttlp.tiktok import envelope
from ttlp.tiktok.normalize import normalize_frame
from ttlp.tiktok.providers.base import ConnectionEnded, Outcome, Session
from ttlp.tiktok.providers.euler import (
    CLOSE_POLICY,
    TOO_MANY_CONNECTIONS_BACKOFF,
    EulerProvider,
)
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.supervisor import StreamerSupervisor, SupervisorSettings

# Looks like a real key and holds characters that URL encoding changes, so a leak in either
# form would show.
KEY = "ek_live_9f3c+Qz/7d1b=Xa"
HANDLE = "luna.beats"
POLL_S = 30.0
RAW = "ttlc:raw"


# -- helpers ------------------------------------------------------------------------------------
class Sleeps:
    """The supervisor's sleep: records each delay, then waits until the supervisor stops."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.Event().wait()  # cancelled by the supervisor when stop is set


@dataclass
class Recording:
    """Wraps a provider and records how each ``run`` ended: None (returned) or the error."""

    inner: EulerProvider
    name: str = "euler"
    ended: list[ConnectionEnded | None] = field(default_factory=list)

    async def is_live(self, unique_id: str) -> bool:
        return await self.inner.is_live(unique_id)

    async def run(self, unique_id: str, session: Session, stop: asyncio.Event) -> None:
        try:
            await self.inner.run(unique_id, session, stop)
        except ConnectionEnded as ended:
            self.ended.append(ended)
            raise
        self.ended.append(None)


async def _at_least(count: Callable[[], Awaitable[int]], expected: int) -> bool:
    return await count() >= expected


async def count_frames(bus: MemoryBus) -> int:
    return await bus.length(RAW)


async def frames(bus: MemoryBus) -> list[RawFrame]:
    return [frame_from_fields(e.fields or {}) for e in await bus.range(RAW)]


def session(bus: MemoryBus) -> Session:
    return Session(FramePublisher(bus, RAW, paced=False), HANDLE, "euler", str(uuid.uuid4()))


@dataclass
class Supervised:
    supervisor: StreamerSupervisor
    provider: Recording
    sleeps: Sleeps
    bus: MemoryBus


async def supervise_once(
    url: str, fake: FakeEuler | None = None, *, euler: EulerProvider | None = None
) -> Supervised:
    """Run a supervisor on ``url`` (or with ``euler``, a provider of the test's making) until
    its first connection's consequence is visible: it gave up, it sleeps before the next
    attempt, or it connected again at once. The default provider skips the live check."""
    provider = Recording(euler or EulerProvider(KEY, url, api_url=None))
    bus, sleeps, stop = MemoryBus(), Sleeps(), asyncio.Event()
    supervisor = StreamerSupervisor(
        provider,  # type: ignore[arg-type]
        HANDLE,
        FramePublisher(bus, RAW, paced=False),
        SupervisorSettings(poll_interval_s=POLL_S),
        sleep=sleeps,  # type: ignore[arg-type]
    )
    task = asyncio.create_task(supervisor.run(stop))
    await wait_for(
        lambda: (
            task.done()
            or sleeps.delays
            or (fake is not None and len(fake.connections) >= 2 and len(provider.ended) >= 1)
        ),
        timeout=5,
        poll=0.01,
        what="the supervisor's next step",
    )
    stop.set()
    await asyncio.wait_for(task, 5)
    return Supervised(supervisor, provider, sleeps, bus)


def assert_next_step(run: Supervised, outcome: Outcome, fake: FakeEuler | None = None) -> None:
    """What the supervisor does after a connection that ended with ``outcome``."""
    assert run.supervisor.outcomes[0] is outcome
    if outcome is Outcome.STOP:
        assert run.sleeps.delays == []
        if fake is not None:
            assert len(fake.connections) == 1  # gave up: no second attempt
    elif outcome is Outcome.POLL:
        assert run.sleeps.delays == [POLL_S]
    elif outcome is Outcome.RECONNECT_NOW:
        assert run.sleeps.delays == []
        assert fake is not None
        assert len(fake.connections) == 2  # reconnected at once
    elif outcome is Outcome.BACKOFF:  # too many connections: the first step of the long wait
        assert len(run.sleeps.delays) == 1
        assert 48 <= run.sleeps.delays[0] <= 72  # 60 s ± 20 %, not the 1 s of a reconnect
    else:  # RECONNECT: the first back-off step, 1 s ± 20 %
        assert len(run.sleeps.delays) == 1
        assert 0.8 <= run.sleeps.delays[0] <= 1.2


# -- the URL --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url", ["https://ws.eulerstream.com", "ws://127.0.0.1:port", "ws://[x/", ""]
)
def test_an_unusable_url_is_refused_at_start(url: str) -> None:
    with pytest.raises(ConfigError, match="EULER_WS_URL"):
        EulerProvider(KEY, url)


def test_url_asks_for_raw_messages_and_only_the_redacted_url_is_shown() -> None:
    provider = EulerProvider(KEY, "wss://ws.eulerstream.com")
    assert provider.api_url == "https://api.eulerstream.com"  # the live check's default
    query = dict(parse_qsl(urlsplit(provider.url(HANDLE)).query))
    assert query == {"uniqueId": HANDLE, "apiKey": KEY, "features.rawMessages": "true"}
    shown = provider.redacted_url(HANDLE) + repr(provider)
    assert KEY not in shown
    assert quote_plus(KEY) not in shown
    assert dict(parse_qsl(urlsplit(provider.redacted_url(HANDLE)).query))["apiKey"] == "***"


# -- (1) frames → events in the database ----------------------------------------------------
def stream_script() -> list[Step]:
    streak = gift_streak(7441000000000000010, ZOE)
    return [
        *opening(),
        Send(
            push_frame(
                [
                    chat(7441000000000000001, ZOE, "hello everyone 👋"),
                    chat(7441000000000000002, FAM, "こんにちは 🌸"),
                    like(7441000000000000003, OWL, 15, 1500),
                ],
                gzipped=True,
                seq_id=1,
            )
        ),
        Send(GARBAGE),
        Send(push_frame(streak[:3], gzipped=False, seq_id=2)),
        Send(BAD_GZIP),
        Send(
            push_frame(
                [
                    *streak[3:],
                    social(7441000000000000020, OWL, "pm_main_follow_message_viewer_2"),
                    social(7441000000000000021, FAM, "pm_mt_guidance_share"),
                ],
                gzipped=True,
                seq_id=3,
            )
        ),
        Send(
            bundle(
                json_item(chat(7441000000000000030, OWL, "json says hi 🦉")),
                json_item(like(7441000000000000031, ZOE, 5, 1505)),
                {"type": "SyntheticJoinMessage", "data": {"user": {"uniqueId": "x"}}},
            )
        ),
        Send(json.dumps(json_item(social(7441000000000000032, ZOE, "pm_mt_guidance_share")))),
        Send(push_frame([control(7441000000000000040, 3)], gzipped=True, seq_id=4)),
        Close(4005, "stream ended"),
    ]


EXPECTED_TYPES = Counter(
    {
        "CONNECTED": 1,
        "CHAT": 3,
        "LIKE": 2,
        "GIFT": 5,
        "FOLLOW": 1,
        "SHARE": 2,
        "STREAM_END": 1,
        "DISCONNECTED": 1,
    }
)


@pytest.mark.integration
@pytest.mark.usefixtures("redis_cleanup")
async def test_binary_and_json_frames_end_as_events_in_the_database(
    redis_url: str, key_prefix: str, migrated_database_url: str
) -> None:
    db_url = migrated_database_url
    settings = Settings.from_env(
        {},
        **{
            "bus.redis_url": redis_url,
            "bus.prefix": key_prefix,
            "bus.block_ms": 50,
            "db.url": db_url,
            "ingest.provider": "euler",
        },
    )
    async with (
        open_context(settings, need_db=True) as ctx,
        FakeEuler([stream_script(), [Hold()]], unique_id=HANDLE, api_key=KEY) as fake,
    ):
        provider = EulerProvider(KEY, fake.url, api_url=None)
        sleeps, stop = Sleeps(), asyncio.Event()
        supervisor = StreamerSupervisor(
            provider,
            HANDLE,
            FramePublisher(ctx.bus, ctx.keys.raw, paced=False),
            SupervisorSettings(poll_interval_s=POLL_S),
            sleep=sleeps,  # type: ignore[arg-type]
        )
        roles = {name: ROLES[name].load() for name in ("normalize", "store")}
        pipeline = asyncio.create_task(
            supervise(ctx, roles, grace_s=5, stop=stop, install_signals=False)
        )
        ingest = asyncio.create_task(supervisor.run(stop))
        assert ctx.engine is not None

        async def stored() -> int:
            async with ctx.engine.connect() as conn:  # type: ignore[union-attr]
                count = await conn.scalar(text("SELECT count(*) FROM events"))
            return int(count or 0)

        expected = EXPECTED_TYPES.total()
        await wait_for(
            lambda: _at_least(stored, expected), timeout=20, poll=0.02, what=f"{expected} rows"
        )
        stop.set()
        await asyncio.wait_for(ingest, 5)
        assert await asyncio.wait_for(pipeline, 10) == 0

        async with ctx.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT event_data FROM events ORDER BY seq_no, event_type, id")
                )
            ).all()
            raw_rows = (await conn.execute(text("SELECT data FROM raw_frames"))).all()
        raw_entries = await ctx.bus.range(ctx.keys.raw)
        dead_letters = await ctx.bus.length(ctx.keys.dlq)

    events = [row[0] if isinstance(row[0], dict) else json.loads(row[0]) for row in rows]
    assert Counter(e["eventType"] for e in events) == EXPECTED_TYPES
    assert {e["sessionId"] for e in events} == {supervisor.sessions[0]}
    assert {e["streamId"] for e in events} == {str(ROOM_ID)}
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_type.setdefault(event["eventType"], []).append(event)

    chats = {(e["user"]["uniqueId"], e["user"]["displayName"], e["payload"]["message"])
             for e in by_type["CHAT"]}  # fmt: skip
    assert chats == {
        ("zoe.petals", "Zoë 🌸", "hello everyone 👋"),
        ("fam.account", "👩‍👩‍👧‍👦 fam", "こんにちは 🌸"),
        ("night.owl", "night owl 🦉", "json says hi 🦉"),  # from a JSON frame
    }
    gifts = sorted(by_type["GIFT"], key=lambda e: e["seqNo"])
    assert [g["payload"]["giftCount"] for g in gifts] == [1, 2, 3, 4, 5]
    assert [g["payload"]["streakEnd"] for g in gifts] == [False] * 4 + [True]
    assert gifts[-1]["payload"] | {"giftImageUrl": None} == {
        "giftId": 5655,
        "giftName": "Rose",
        "giftCount": 5,
        "coins": 5,
        "diamondCount": 1,
        "streakActive": False,
        "streakEnd": True,
        "isGiftStreak": True,
        "giftImageUrl": None,
    }
    likes = sorted((e["payload"]["likeCount"], e["payload"]["totalLikeCount"])
                   for e in by_type["LIKE"])  # fmt: skip
    assert likes == [(5, 1505), (15, 1500)]
    assert [e["user"]["uniqueId"] for e in by_type["FOLLOW"]] == ["night.owl"]
    assert sorted(e["user"]["uniqueId"] for e in by_type["SHARE"]) == ["fam.account", "zoe.petals"]
    assert by_type["STREAM_END"][0]["payload"]["action"] == 3
    assert by_type["CONNECTED"][0]["payload"] == {
        "roomId": str(ROOM_ID),
        "isConnected": True,
        "provider": "euler",
        "uniqueId": HANDLE,
    }
    assert by_type["DISCONNECTED"][0]["payload"] == {
        "reason": "stream ended",
        "willReconnect": True,
    }
    # TikTok's ids and times are kept: seqNo = msgId, timestamp = the message's create time.
    first_chat = next(e for e in by_type["CHAT"] if e["seqNo"] == 7441000000000000001)
    assert first_chat["timestamp"].startswith("2026-02-22T10:00:00.001")

    # The stream ended (4005): the supervisor polls again later; nothing was dead-lettered.
    assert supervisor.outcomes[0] is Outcome.POLL
    assert sleeps.delays == [POLL_S]
    assert dead_letters == 0
    assert provider.stats.bad_frames == 2  # the garbage frame and the bad gzip
    assert provider.stats.ignored == 1  # SyntheticJoinMessage: not TikTok's
    assert fake.connections[0].query == {
        "uniqueId": HANDLE,
        "apiKey": KEY,
        "features.rawMessages": "true",
    }
    # The key is in none of the raw entries, archived frames or events.
    everything = json.dumps([e.fields for e in raw_entries]) + repr(raw_rows) + repr(events)
    assert KEY not in everything
    assert quote_plus(KEY) not in everything


# -- (2) close codes → the policy's action ---------------------------------------------------
CLOSE_CASES: list[tuple[int, Outcome | None]] = [
    (4400, Outcome.STOP),
    (4401, Outcome.STOP),
    (4403, Outcome.STOP),
    (4404, Outcome.POLL),
    (4005, None),  # the stream ended: run returns normally, the supervisor polls
    (4429, Outcome.BACKOFF),
    (4500, Outcome.RECONNECT),
    (1011, Outcome.RECONNECT),
    (4556, Outcome.RECONNECT),
    (4557, Outcome.RECONNECT),
    (4006, Outcome.RECONNECT),
    (4555, Outcome.RECONNECT_NOW),
    (1000, Outcome.RECONNECT),  # a clean close without a stream end
    (1001, Outcome.RECONNECT),  # any other code
    (4999, Outcome.RECONNECT),
]


def test_every_code_of_the_policy_is_exercised() -> None:
    assert set(CLOSE_POLICY) <= {code for code, _ in CLOSE_CASES}


@pytest.mark.parametrize(("code", "raised"), CLOSE_CASES, ids=[str(c) for c, _ in CLOSE_CASES])
async def test_close_code_leads_to_the_policy_action(code: int, raised: Outcome | None) -> None:
    script: list[Step] = [*opening(), Close(code, "closing")]
    async with FakeEuler([script, [*opening(), Hold()]], unique_id=HANDLE, api_key=KEY) as fake:
        run = await supervise_once(fake.url, fake)

    ended = run.provider.ended[0]
    if raised is None:
        assert ended is None
    else:
        assert ended is not None
        assert (ended.outcome, ended.code) == (raised, code)
    assert_next_step(run, raised or Outcome.POLL, fake)
    disconnected = next(f for f in await frames(run.bus) if f.type == "ControlEvent.DISCONNECTED")
    assert isinstance(disconnected.data, dict)
    assert disconnected.data.get("code") == (code if raised else None)
    assert disconnected.data["willReconnect"] is (raised is not Outcome.STOP)


async def test_clean_close_after_a_stream_end_returns_normally() -> None:
    ended_stream = push_frame([control(7441000000000000040, 3)], gzipped=True)
    script: list[Step] = [*opening(), Send(ended_stream), Close(1000)]
    async with FakeEuler([script], unique_id=HANDLE, api_key=KEY) as fake:
        run = await supervise_once(fake.url, fake)
    assert run.provider.ended[0] is None
    assert_next_step(run, Outcome.POLL, fake)


HANDSHAKE_CASES = [(401, Outcome.STOP), (403, Outcome.STOP), (429, Outcome.BACKOFF),
                   (503, Outcome.RECONNECT)]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "outcome"), HANDSHAKE_CASES, ids=[str(s) for s, _ in HANDSHAKE_CASES]
)
async def test_refused_handshake_leads_to_the_policy_action(status: int, outcome: Outcome) -> None:
    async with FakeEuler([[Reject(status)]], unique_id=HANDLE, api_key=KEY) as fake:
        run = await supervise_once(fake.url, fake)
    ended = run.provider.ended[0]
    assert ended is not None
    assert (ended.outcome, ended.code) == (outcome, f"HTTP {status}")
    assert_next_step(run, outcome, fake)
    assert await frames(run.bus) == []  # never connected: no lifecycle frames


async def test_connection_refused_reconnects_with_back_off() -> None:
    run = await supervise_once(f"ws://127.0.0.1:{free_port()}")
    ended = run.provider.ended[0]
    assert ended is not None
    assert ended.outcome is Outcome.RECONNECT
    assert_next_step(run, Outcome.RECONNECT)


async def test_a_wrong_key_stops_the_streamer() -> None:
    """The fake checks the query like Euler does: a bad key is 4401, and that is final."""
    async with FakeEuler([[Hold()]], unique_id=HANDLE, api_key="another-key") as fake:
        run = await supervise_once(fake.url, fake)
    ended = run.provider.ended[0]
    assert ended is not None
    assert (ended.outcome, ended.code) == (Outcome.STOP, 4401)
    assert_next_step(run, Outcome.STOP, fake)


# -- (3) the key stays secret -----------------------------------------------------------------
@pytest.mark.parametrize(
    "redactor_knows_key", [False, True], ids=["provider-only", "with-log-redactor"]
)
async def test_api_key_never_reaches_logs_events_or_raw_frames(redactor_knows_key: bool) -> None:
    """Failures whose texts would carry the key: the server echoing it in a close reason, a
    refused handshake, a refused connection, an unusable URL; plus websockets' debug lines
    (the request line holds the query). Without the key in ``ttlp.log``'s redactor, this
    shows the provider itself never emits it."""
    out = io.StringIO()
    log.configure("debug", "json", [KEY] if redactor_knows_key else [], stream=out)
    client_log = logging.getLogger("websockets.client")
    client_log.setLevel(logging.DEBUG)
    runs: list[Supervised] = []
    try:
        echo: list[Step] = [*opening(), Send(bundle(worker_info(f"old key {KEY}"))),
                            Close(4401, f"invalid apiKey {KEY}")]  # fmt: skip
        async with FakeEuler([echo], unique_id=HANDLE, api_key=KEY) as fake:
            runs.append(await supervise_once(fake.url, fake))
        async with FakeEuler([[Reject(401)]], unique_id=HANDLE, api_key=KEY) as fake:
            runs.append(await supervise_once(fake.url, fake))
        runs.append(await supervise_once(f"ws://127.0.0.1:{free_port()}"))
    finally:
        client_log.setLevel(logging.NOTSET)
        logger.remove()
    written = out.getvalue()
    reasons = [e.reason for r in runs for e in r.provider.ended if e is not None]
    published = [json.dumps(e.fields) for r in runs for e in await r.bus.range(RAW)]
    for leak in (KEY, quote(KEY, safe=""), quote_plus(KEY)):
        assert leak not in written
        assert not any(leak in reason for reason in reasons)
        assert not any(leak in p for p in published)
    # The paths that would have carried the key were taken:
    assert [r.provider.ended[0].outcome for r in runs if r.provider.ended[0]] == [
        Outcome.STOP,
        Outcome.STOP,
        Outcome.RECONNECT,
    ]
    assert "> GET /?uniqueId=luna.beats&apiKey=***" in written  # websockets' request line
    assert any("invalid apiKey ***" in p for p in published)  # the echoed close reason
    assert "euler deprecation warning" in written


# -- (4) unreadable frames do not end the connection --------------------------------------------
async def test_garbage_frames_are_skipped_and_the_stream_goes_on() -> None:
    import TikTokLive.proto as P

    truncated = bytes(chat(7441000000000000099, ZOE, "cut short"))[:-7]
    corrupt_inside = push_frame_with_payload(
        bytes(
            P.ProtoMessageFetchResult(
                messages=[
                    P.BaseProtoMessage(
                        method="WebcastChatMessage", payload=truncated, msg_id=7441000000000000099
                    )
                ]
            )
        )
    )
    script: list[Step] = [
        *opening(),
        Send(GARBAGE),
        Send(BAD_GZIP),
        Send("this is not JSON {"),
        Send(json.dumps([1, 2, 3])),
        Send(corrupt_inside),
        Send(push_frame([chat(7441000000000000100, OWL, "still here 🦉")], gzipped=True)),
        Close(4005),
    ]
    bus = MemoryBus()
    async with FakeEuler([script], unique_id=HANDLE, api_key=KEY) as fake:
        provider = EulerProvider(KEY, fake.url)
        await provider.run(HANDLE, session(bus), asyncio.Event())  # returns: the stream ended

    assert provider.stats.bad_frames == 4
    got = await frames(bus)
    assert [(f.type, f.seq_no) for f in got] == [
        ("ControlEvent.CONNECTED", 1),
        ("WebcastChatMessage", 7441000000000000099),  # published as received ...
        ("WebcastChatMessage", 7441000000000000100),
    ]
    with pytest.raises(PermanentError) as bad:  # ... and the normalizer dead-letters it
        normalize_frame(got[1])
    assert bad.value.reason == "PARSE_ERROR"
    assert normalize_frame(got[2]).payload.message == "still here 🦉"  # type: ignore[union-attr]


# -- JSON shapes and the room ------------------------------------------------------------------
ROOM_SHAPES: dict[str, Sequence[Step]] = {
    "bundle roomInfo.id": [Send(bundle(room_info(42)))],
    "single item roomId": [Send(json.dumps({"type": "roomInfo", "data": {"roomId": 42}}))],
    "raw user/room response": [
        Send(bundle({"method": "roomInfo", "data": {"raw": {"data": {"user": {"roomId": "42"}}}}}))
    ],
    "first binary message": [],
}


@pytest.mark.parametrize("shape", ROOM_SHAPES)
async def test_room_comes_from_room_info_or_the_first_message(shape: str) -> None:
    message = chat(7441000000000000200, ZOE, "hi")
    message.common.room_id = 42
    script: list[Step] = [
        Send(bundle(worker_info())),
        *ROOM_SHAPES[shape],
        Send(push_frame([message], gzipped=False)),
        Close(4005),
    ]
    bus = MemoryBus()
    async with FakeEuler([script], unique_id=HANDLE, api_key=KEY) as fake:
        await EulerProvider(KEY, fake.url).run(HANDLE, session(bus), asyncio.Event())
    got = await frames(bus)
    assert [f.type for f in got] == ["ControlEvent.CONNECTED", "WebcastChatMessage"]
    assert got[0].data == {"roomId": "42", "isConnected": True, "provider": "euler",
                           "uniqueId": HANDLE}  # fmt: skip
    assert {f.stream_id for f in got} == {"42"}


async def test_json_messages_keep_tiktok_ids_and_times_in_either_number_form() -> None:
    as_strings = json_item(chat(7441000000000000301, ZOE, "strings"))
    as_numbers = json_item(like(7441000000000000302, OWL, 3, 9))
    as_numbers["data"]["common"] |= {"msgId": 7441000000000000302, "createTime": CREATED_MS}
    without_id = {"type": "WebcastLikeMessage", "data": {"count": 1, "total": 10}}
    script: list[Step] = [
        *opening(),
        Send(bundle(as_strings, as_numbers, without_id, without_id)),
        Close(4005),
    ]
    bus = MemoryBus()
    async with FakeEuler([script], unique_id=HANDLE, api_key=KEY) as fake:
        await EulerProvider(KEY, fake.url).run(HANDLE, session(bus), asyncio.Event())
    got = await frames(bus)
    assert [f.type for f in got][1:] == ["WebcastChatMessage"] + ["WebcastLikeMessage"] * 3
    assert got[1].seq_no == 7441000000000000301
    assert (got[2].seq_no, got[2].timestamp) == (7441000000000000302, "2026-02-22T10:00:00.000Z")
    # Without a msgId: distinct seqNos (distinct eventIds), far from TikTok's ids.
    assert got[3].seq_no != got[4].seq_no
    assert max(got[3].seq_no, got[4].seq_no) < 7_000_000_000_000_000_000
    kinds = [type(normalize_frame(f)).__name__ for f in got[1:]]
    assert kinds == ["ChatEvent", "LikeEvent", "LikeEvent", "LikeEvent"]


# -- stop ---------------------------------------------------------------------------------------
async def test_stop_closes_the_socket_cleanly_and_returns() -> None:
    bus, stop = MemoryBus(), asyncio.Event()
    async with FakeEuler([[*opening(), Hold()]], unique_id=HANDLE, api_key=KEY) as fake:
        task = asyncio.create_task(EulerProvider(KEY, fake.url).run(HANDLE, session(bus), stop))
        # Connected: the room is known.
        await wait_for(lambda: count_frames(bus), timeout=5, poll=0.02, what="a frame")
        stop.set()
        await asyncio.wait_for(task, 5)  # returns, raises nothing
        await asyncio.wait_for(fake.connections[0].closed_by_client.wait(), 5)
    assert fake.connections[0].close_code == 1000
    assert [f.type for f in await frames(bus)] == ["ControlEvent.CONNECTED"]


# -- 4429: the longer wait -----------------------------------------------------------------------
async def test_too_many_connections_waits_longer_each_time_until_a_connection_opens() -> None:
    """4429 says every connection the key may hold is taken: 60 s, then 120 s (± 20 %) for
    the same streamer; a connection that opens (closed for another reason) starts afresh."""
    scripts: list[list[Step]] = [
        [Close(4429, "Too many concurrent connections")],
        [Close(4429, "Too many concurrent connections")],
        [*opening(), Close(1011)],
        [Close(4429, "Too many concurrent connections")],
    ]
    waits: list[float | None] = []
    async with FakeEuler(scripts, unique_id=HANDLE, api_key=KEY) as fake:
        provider = EulerProvider(KEY, fake.url, api_url=None)
        for _ in scripts:
            with pytest.raises(ConnectionEnded) as ended:
                await provider.run(HANDLE, session(MemoryBus()), asyncio.Event())
            waits.append(ended.value.retry_after_s)
    assert waits[2] is None  # after 1011: the supervisor's own back-off
    first, second, again = (wait for wait in waits if wait is not None)
    assert 48 <= first <= 72
    assert 96 <= second <= 144
    assert 48 <= again <= 72
    assert TOO_MANY_CONNECTIONS_BACKOFF.delay(10, lambda: 0.5) == 900.0  # at most 15 min


async def test_a_refused_handshake_with_retry_after_waits_as_asked() -> None:
    async with FakeEuler([[Reject(429, retry_after="42")]], unique_id=HANDLE, api_key=KEY) as fake:
        run = await supervise_once(fake.url, fake)
    ended = run.provider.ended[0]
    assert ended is not None
    assert (ended.outcome, ended.code, ended.retry_after_s) == (Outcome.BACKOFF, "HTTP 429", 42)
    assert run.sleeps.delays == [42]


# -- what goes back: acks and heartbeats --------------------------------------------------------
def test_an_ack_without_internal_ext_carries_a_dash_as_tiktoklive_sends_it() -> None:
    frame = WebcastPushFrame().parse(envelope.ack_frame(7, ""))
    assert (frame.payload_type, frame.log_id, frame.payload) == ("ack", 7, b"-")


def acked(log_id: int) -> Callable[[Connection], bool]:
    return lambda connection: any(f.log_id == log_id for f in connection.sent("ack"))


async def test_a_fetch_result_that_needs_an_ack_is_acked_with_its_log_id_and_internal_ext() -> None:
    script: list[Step] = [
        *opening(),
        Send(push_frame([chat(7441000000000000501, ZOE, "no ack")], gzipped=True, seq_id=5)),
        Send(
            push_frame(
                [chat(7441000000000000502, OWL, "ack me")], gzipped=True, seq_id=6, need_ack=True
            )
        ),
        Hold(),
    ]
    bus, stop = MemoryBus(), asyncio.Event()
    async with FakeEuler([script], unique_id=HANDLE, api_key=KEY) as fake:
        provider = EulerProvider(KEY, fake.url, api_url=None, heartbeat_interval_s=0)
        task = asyncio.create_task(provider.run(HANDLE, session(bus), stop))
        await wait_for(lambda: fake.connections, timeout=5, poll=0.01, what="a connection")
        connection = fake.connections[0]
        await asyncio.wait_for(connection.wait_received(acked(6 * 7)), 5)
        stop.set()
        await asyncio.wait_for(task, 5)

    # Frames arrive in the order they were sent: an ack of the first frame would be here too.
    (ack,) = connection.received
    assert (ack.payload_type, ack.payload_encoding, ack.log_id) == ("ack", "pb", 42)
    assert ack.payload == INTERNAL_EXT.encode()
    assert provider.stats.acks == 1
    assert [f.seq_no for f in await frames(bus) if f.type == "WebcastChatMessage"] == [
        7441000000000000501,
        7441000000000000502,
    ]


async def test_heartbeats_carry_the_room_and_count_up_from_one() -> None:
    bus, stop = MemoryBus(), asyncio.Event()
    async with FakeEuler([[*opening(), Hold()]], unique_id=HANDLE, api_key=KEY) as fake:
        provider = EulerProvider(KEY, fake.url, api_url=None, heartbeat_interval_s=0.02)
        task = asyncio.create_task(provider.run(HANDLE, session(bus), stop))
        await wait_for(lambda: fake.connections, timeout=5, poll=0.01, what="a connection")
        connection = fake.connections[0]
        await asyncio.wait_for(connection.wait_received(lambda c: len(c.sent("hb")) >= 3), 5)
        stop.set()
        await asyncio.wait_for(task, 5)

    beats = connection.sent("hb")
    assert {(f.payload_encoding, f.log_id) for f in beats} == {("pb", 0)}
    messages = [HeartBeatMessage().parse(f.payload) for f in beats]
    assert {m.room_id for m in messages} == {ROOM_ID}  # sent once roomInfo named the room
    assert [m.send_packet_seq_id for m in messages] == list(range(1, len(messages) + 1))
    assert provider.stats.heartbeats == len(beats)
    assert provider.stats.heartbeats_received >= 1  # the fake answers them, as TikTok does
    assert connection.close_code == 1000


async def test_heartbeats_keep_a_quiet_room_from_the_inactivity_close() -> None:
    """Euler closes with 4006 when TikTok stays quiet for its inactivity timeout (the fake:
    0.2 s); heartbeats (every 0.02 s) make TikTok answer, so a room without a single message
    stays open well past the timeout."""
    bus, stop = MemoryBus(), asyncio.Event()
    async with FakeEuler(
        [[*opening(), Hold()]], unique_id=HANDLE, api_key=KEY, inactivity_close_s=0.2
    ) as fake:
        provider = EulerProvider(KEY, fake.url, api_url=None, heartbeat_interval_s=0.02)
        task = asyncio.create_task(provider.run(HANDLE, session(bus), stop))
        await wait_for(lambda: fake.connections, timeout=5, poll=0.01, what="a connection")
        connection = fake.connections[0]
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(connection.wait_received(lambda c: len(c.sent("hb")) >= 20), 10)
        quiet_for = asyncio.get_running_loop().time() - started
        assert not task.done()  # still connected ...
        stop.set()
        await asyncio.wait_for(task, 5)
    assert quiet_for > 0.2  # ... for longer than the inactivity timeout
    assert not connection.closed_for_inactivity
    assert connection.close_code == 1000  # closed by us, when asked to stop
    assert [f.type for f in await frames(bus)] == ["ControlEvent.CONNECTED"]


async def test_without_heartbeats_a_quiet_room_is_closed_with_4006_and_reconnected() -> None:
    async with FakeEuler(
        [[*opening(), Hold()]], unique_id=HANDLE, api_key=KEY, inactivity_close_s=0.2
    ) as fake:
        euler = EulerProvider(KEY, fake.url, api_url=None, heartbeat_interval_s=0)
        run = await supervise_once(fake.url, fake, euler=euler)
    assert fake.connections[0].closed_for_inactivity
    ended = run.provider.ended[0]
    assert ended is not None
    assert (ended.outcome, ended.code) == (Outcome.RECONNECT, 4006)
    assert_next_step(run, Outcome.RECONNECT, fake)


# -- the live check: Euler's REST API ---------------------------------------------------------
async def test_an_offline_creator_costs_no_websocket_and_is_polled_again() -> None:
    async with (
        FakeEulerApi(api_key=KEY, live={"someone.else": "42"}) as api,
        FakeEuler([[*opening(), Hold()]], unique_id=HANDLE, api_key=KEY) as fake,
    ):
        run = await supervise_once(
            fake.url, fake, euler=EulerProvider(KEY, fake.url, api_url=api.url)
        )
    assert fake.connections == []  # no handshake, nothing against the key's limits
    assert run.supervisor.outcomes[0] is Outcome.POLL
    assert run.sleeps.delays == [POLL_S]
    (check,) = api.live_checks()
    assert (check.method, check.query) == ("GET", {"uniqueId": HANDLE})
    assert check.headers["x-api-key"] == KEY  # in a header, not in a URL that might be logged
    assert await frames(run.bus) == []


async def test_a_live_creator_is_connected() -> None:
    async with (
        FakeEulerApi(api_key=KEY, live={HANDLE: str(ROOM_ID)}) as api,
        FakeEuler([[*opening(), Close(4005)]], unique_id=HANDLE, api_key=KEY) as fake,
    ):
        euler = EulerProvider(KEY, fake.url, api_url=api.url)
        run = await supervise_once(fake.url, fake, euler=euler)
    assert len(fake.connections) == 1
    assert len(api.live_checks()) == 1
    assert [f.type for f in await frames(run.bus)] == [
        "ControlEvent.CONNECTED",
        "ControlEvent.DISCONNECTED",
    ]
    assert euler.stats.live_check_failures == 0


@pytest.mark.parametrize("failure", ["HTTP 500", "timeout", "unreachable", "HTTP 429"])
async def test_a_live_check_that_fails_leaves_the_decision_to_the_websocket(failure: str) -> None:
    """The WebSocket is the source of truth: a REST outage must not stop a live stream."""
    status = int(failure.removeprefix("HTTP ")) if failure.startswith("HTTP") else 200
    api = FakeEulerApi(api_key=KEY, status=status, delay_s=0.5 if failure == "timeout" else 0.0)
    async with api, FakeEuler([[*opening(), Close(4404)]], unique_id=HANDLE, api_key=KEY) as fake:
        api_url = f"http://127.0.0.1:{free_port()}" if failure == "unreachable" else api.url
        # A short deadline only where the check is meant to time out: under a loaded test run
        # a 0.1 s deadline also cut the HTTP 429 answer off before the fake had seen the request.
        timeout_s = 0.1 if failure == "timeout" else 10.0
        euler = EulerProvider(KEY, fake.url, api_url=api_url, live_check_timeout_s=timeout_s)
        run = await supervise_once(fake.url, fake, euler=euler)
    assert len(fake.connections) == 1  # tried the WebSocket ...
    ended = run.provider.ended[0]
    assert ended is not None
    assert (ended.outcome, ended.code) == (Outcome.POLL, 4404)  # ... which said "not live"
    assert_next_step(run, Outcome.POLL, fake)
    assert euler.stats.live_check_failures == 1
    assert euler.live_check_off is None  # the next poll asks again
    assert len(api.live_checks()) == (0 if failure == "unreachable" else 1)


async def test_a_key_the_route_refuses_switches_the_check_off() -> None:
    async with FakeEulerApi(api_key=KEY, status=403) as api:
        provider = EulerProvider(KEY, "ws://127.0.0.1:9", api_url=api.url)
        assert await provider.is_live(HANDLE) is True
        assert await provider.is_live(HANDLE) is True
    assert len(api.live_checks()) == 1  # asked once, not every poll
    assert provider.live_check_off is not None
    assert "403" in provider.live_check_off


def test_an_unusable_api_url_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="Euler's API URL"):
        EulerProvider(KEY, "wss://ws.eulerstream.com", api_url="ftp://api.eulerstream.com")
