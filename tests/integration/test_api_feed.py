"""The live feed (DESIGN §7.4) on both backends: SSE and WebSocket clients of a real server.

Each test drives the api over real sockets (httpx streaming, a raw asyncio socket, a
``websockets`` client) while events are XADDed to ``ttlc:events`` as the normalizer does. A
client counts as subscribed once the feed's own ``stats.clients`` says so (polled, never slept
for), so no test depends on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.api import (
    FIXTURE_ROOM,
    STREAMER_HANDLE,
    ApiHarness,
    fixture_events,
    other_stream_events,
)
from tests.support.sse import Message, SseReader, StreamEnded
from tests.support.wait import wait_for
from ttlp.api.accounts import Role
from ttlp.api.feed import Feed
from ttlp.bus.base import parse_id
from ttlp.contracts.events import UnifiedEvent

pytestmark = pytest.mark.integration

WAIT_S = 60.0
"""Upper bound for anything the tests wait for (a loaded 2-core machine); never a sleep."""
ROOM_FEED = f"/streams/{FIXTURE_ROOM}/events"
HANDLE_FEED = f"/streams/@{STREAMER_HANDLE}/events"


# -- helpers ------------------------------------------------------------------------------------
def feed_of(api: ApiHarness) -> Feed:
    feed = api.app.state.api.feed
    assert isinstance(feed, Feed)
    return feed


async def until_or_timeout(condition: Callable[[], bool], seconds: float = 1.0) -> None:
    """Poll ``condition`` for at most ``seconds`` (pacing, not a check)."""
    for _ in range(int(seconds / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)


async def subscribed(api: ApiHarness, clients: int) -> None:
    """Wait until the feed has exactly ``clients`` subscribers."""
    feed = feed_of(api)
    await wait_for(
        lambda: feed.stats.clients == clients,
        what=f"{clients} feed client(s)",
        timeout=WAIT_S,
        poll=0.02,
    )


@contextlib.asynccontextmanager
async def sse(
    api: ApiHarness, path: str, headers: dict[str, str], *, clients: int = 1
) -> AsyncIterator[SseReader]:
    """An open SSE feed; entered once the server has subscribed it (``clients`` in all)."""
    async with api.client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        await subscribed(api, clients)
        yield SseReader(response)


def numbered(n: int, start: int = 0) -> list[UnifiedEvent]:
    """``n`` distinct events of the fixture session (its events round and round)."""
    base = fixture_events()
    out = []
    for i in range(start, start + n):
        event = base[i % len(base)]
        event_id = hashlib.sha256(f"feed-{i}".encode()).hexdigest()
        out.append(msgspec.structs.replace(event, event_id=event_id))
    return out


def big_chats(n: int, start: int = 0) -> list[UnifiedEvent]:
    """``n`` distinct CHAT events of the largest size the contract allows (8 KiB messages)."""
    chat = next(e for e in fixture_events() if type_of(e) == "CHAT")
    payload = msgspec.structs.replace(chat.payload, message="x" * 8192)  # type: ignore[attr-defined]
    return [
        msgspec.structs.replace(
            chat, event_id=hashlib.sha256(f"chat-{i}".encode()).hexdigest(), payload=payload
        )
        for i in range(start, start + n)
    ]


async def publish_all(api: ApiHarness, events: list[UnifiedEvent]) -> list[str]:
    return [await api.publish(event) for event in events]


async def publish_many(api: ApiHarness, events: list[UnifiedEvent]) -> list[str]:
    batch = [{"event": msgspec.json.encode(e).decode()} for e in events]
    return await api.bus.publish_many(api.keys.events, batch)


async def moderator(api: ApiHarness, name: str = "mod") -> dict[str, str]:
    await api.seed()
    return await api.login(name, Role.MODERATOR, [STREAMER_HANDLE])


def type_of(event: UnifiedEvent) -> str:
    return str(type(event).__struct_config__.tag)


def ids(messages: list[Message]) -> list[str | None]:
    return [m.id for m in messages]


# -- delivery -----------------------------------------------------------------------------------
async def test_sse_client_receives_published_events_in_order_with_bus_entry_ids(
    api: ApiHarness,
) -> None:
    headers = await moderator(api)
    events = fixture_events()
    async with sse(api, ROOM_FEED, headers) as feed:
        published = await publish_all(api, events)
        received = await feed.events(len(events))
        await feed.heartbeat()  # and nothing more
    assert {m.event for m in received} == {"event"}
    assert ids(received) == published
    assert [m.json["eventId"] for m in received] == [e.event_id for e in events]
    assert received[0].json == json.loads(msgspec.json.encode(events[0]))


async def test_types_filter_on_the_room_and_the_handle_path(api: ApiHarness) -> None:
    headers = await moderator(api)
    events = fixture_events()
    wanted = {"GIFT", "CHAT"}
    async with (
        sse(api, f"{ROOM_FEED}?types=gift,CHAT", headers, clients=1) as by_room,
        sse(api, f"{HANDLE_FEED}?types=GIFT,CHAT", headers, clients=2) as by_handle,
        sse(api, HANDLE_FEED, headers, clients=3) as everything,
    ):
        published = await publish_all(api, events)
        expected = [i for i, e in zip(published, events, strict=True) if type_of(e) in wanted]
        assert 0 < len(expected) < len(events)
        room = await by_room.events(len(expected))
        handle = await by_handle.events(len(expected))
        every = await everything.events(len(events))
        await by_room.heartbeat()
        await by_handle.heartbeat()
    assert ids(room) == expected
    assert ids(handle) == expected
    assert {m.json["eventType"] for m in room + handle} == wanted
    assert ids(every) == published


async def test_an_unknown_type_in_the_filter_is_a_400(api: ApiHarness) -> None:
    headers = await moderator(api)
    response = await api.client.get(f"{ROOM_FEED}?types=GIFT,NOPE", headers=headers)
    assert response.status_code == 400
    assert "NOPE" in response.json()["detail"]
    assert feed_of(api).stats.clients == 0


# -- resume -------------------------------------------------------------------------------------
async def test_reconnect_with_last_event_id_gets_exactly_the_missed_events_then_live_ones(
    api: ApiHarness,
) -> None:
    headers = await moderator(api)
    first, missed, live = numbered(10), numbered(25, 10), numbered(15, 35)
    async with sse(api, ROOM_FEED, headers) as feed:
        first_ids = await publish_all(api, first)
        assert ids(await feed.events(10)) == first_ids
    await subscribed(api, 0)
    missed_ids = await publish_all(api, missed)
    resume = {**headers, "Last-Event-ID": first_ids[-1]}
    async with sse(api, ROOM_FEED, resume) as feed:
        assert ids(await feed.events(25)) == missed_ids
        live_ids = await publish_all(api, live)
        received = await feed.events(15)
        await feed.heartbeat()
    assert ids(received) == live_ids
    assert [m.json["eventId"] for m in received] == [e.event_id for e in live]


async def test_resume_while_events_keep_coming_has_no_gaps_and_no_repeats(
    api: ApiHarness,
) -> None:
    """Events published during the reconnect (between the backfill read and the live
    subscription) arrive exactly once."""
    headers = await moderator(api)
    events = numbered(400)
    published: list[str] = []
    done = asyncio.Event()

    async def producer() -> None:
        for event in events:
            published.append(await api.publish(event))
            await asyncio.sleep(0.002)
        done.set()

    received: list[str | None] = []
    async with sse(api, ROOM_FEED, headers) as feed:
        task = asyncio.create_task(producer())
        received += ids(await feed.events(50))
    for _ in range(3):  # reconnect a few times while the producer runs
        await subscribed(api, 0)
        last = received[-1]
        assert last is not None
        async with sse(api, ROOM_FEED, {**headers, "Last-Event-ID": last}) as feed:
            received += ids(await feed.events(50))
    async with sse(api, ROOM_FEED, {**headers, "Last-Event-ID": str(received[-1])}) as feed:
        await task
        received += ids(await feed.events(len(events) - len(received)))
        await feed.heartbeat()
    assert done.is_set()
    assert received == published


@pytest.mark.parametrize("api_env", [{"STREAM_MAXLEN": 20}])
async def test_last_event_id_older_than_the_trimmed_stream_gets_a_gap_event_first(
    api: ApiHarness,
) -> None:
    headers = await moderator(api)
    old = await api.publish(numbered(1)[0])
    # MAXLEN is exact in-process, approximate (whole 100-entry nodes) on Redis: publish enough
    # that the first entry is trimmed on both.
    await publish_many(api, numbered(400, 1))
    first, _ = await api.bus.bounds(api.keys.events)
    assert parse_id(first) > parse_id(old)
    kept = [entry.id for entry in await api.bus.range(api.keys.events)]
    async with sse(api, ROOM_FEED, {**headers, "Last-Event-ID": old}) as feed:
        gap, *missed = await feed.events(1 + len(kept))
        await feed.heartbeat()
    assert gap.event == "gap"
    assert gap.id is None
    assert ids(missed) == kept


async def test_a_last_event_id_newer_than_the_bus_gets_a_gap_event(api: ApiHarness) -> None:
    """The bus was reset (an in-process bus restarted, a Redis stream deleted): the client's
    id is from its previous life, and whatever came after it is unknown."""
    headers = await moderator(api)
    published = await publish_all(api, numbered(3))
    ms, _ = parse_id(published[-1])
    future = f"{ms + 3_600_000}-0"
    async with sse(api, ROOM_FEED, {**headers, "Last-Event-ID": future}) as feed:
        (gap,) = await feed.events(1)
        await feed.heartbeat()
    assert gap.event == "gap"


async def test_resume_only_replays_the_events_of_the_clients_stream(api: ApiHarness) -> None:
    """The backfill reads the shared bus stream: it must filter it as the channels do."""
    await api.seed(fixture_events() + other_stream_events())
    headers = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    mine, theirs = fixture_events(), other_stream_events()
    mine_ids = []
    start = await api.publish(mine[0])
    for ours, other in zip(mine[1:], theirs[1:], strict=False):
        mine_ids.append(await api.publish(ours))
        await api.publish(other)
    for path in (ROOM_FEED, HANDLE_FEED):
        async with sse(api, path, {**headers, "Last-Event-ID": start}) as feed:
            received = await feed.events(len(mine_ids))
            await feed.heartbeat()
        await subscribed(api, 0)
        assert ids(received) == mine_ids
        assert {m.json["streamId"] for m in received} == {FIXTURE_ROOM}


async def test_last_event_id_at_the_stream_head_gets_no_gap(api: ApiHarness) -> None:
    headers = await moderator(api)
    published = await publish_all(api, numbered(5))
    async with sse(api, ROOM_FEED, {**headers, "Last-Event-ID": published[0]}) as feed:
        received = await feed.events(4)
        await feed.heartbeat()
    assert ids(received) == published[1:]


async def test_a_malformed_last_event_id_is_a_400(api: ApiHarness) -> None:
    headers = await moderator(api)
    response = await api.client.get(ROOM_FEED, headers={**headers, "Last-Event-ID": "yesterday"})
    assert response.status_code == 400
    assert "Last-Event-ID" in response.json()["detail"]


# -- slow clients and heartbeats ------------------------------------------------------------------
async def stall(api: ApiHarness) -> int:
    """Publish to the one client, which does not read, until the server's writes to it block,
    then 100 more events (more than its backlog): → how many were published."""
    feed = feed_of(api)
    published = 0
    while True:
        assert published < 20_000, "the server's writes never blocked"
        await publish_many(api, big_chats(10, published))
        published += 10
        # Fewer events at a time than the backlog holds, and time to send them, until they
        # stop going out.
        await until_or_timeout(lambda n=published: feed.stats.delivered >= n, 3.0)
        if feed.stats.delivered < published:
            break
    await publish_many(api, big_chats(100, published))
    return published + 100


@pytest.mark.parametrize("api_env", [{"SSE_BACKLOG": 20}])
async def test_a_client_that_stops_reading_is_dropped_and_its_memory_freed(
    api: ApiHarness,
) -> None:
    headers = await moderator(api)
    feed = feed_of(api)
    # A raw socket that sends the request and never reads: the kernel buffers fill up, the
    # server's writes block, and the subscriber's backlog overflows.
    reader, writer = await asyncio.open_connection("127.0.0.1", api.port)
    request = (
        f"GET {ROOM_FEED} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {headers['Authorization']}\r\nAccept: text/event-stream\r\n\r\n"
    )
    writer.write(request.encode())
    await writer.drain()
    try:
        await subscribed(api, 1)
        published = await stall(api)
        await wait_for(
            lambda: feed.stats.dropped_clients == 1,
            what="the client to be dropped",
            timeout=WAIT_S,
            poll=0.02,
        )
        # The server never holds more than the backlog for it, however far behind it is.
        assert feed.queued() <= 20
        await subscribed(api, 0)  # the subscriber is gone: its queue is freed
        assert feed.stats.dropped_clients == 1
        assert feed.queued() == 0
        assert not feed.channels._channels.get(f"room:{FIXTURE_ROOM}")
        await wait_for(
            lambda: not api.app.state.api.feeds_per_account,
            what="the feed slot's release",
            timeout=WAIT_S,
            poll=0.02,
        )
        # The connection is closed: once the client reads again it gets the buffered part
        # of the stream and then EOF (ending with the ``dropped`` event when that could still
        # be written).
        received = bytearray()
        while chunk := await asyncio.wait_for(reader.read(1 << 16), WAIT_S):
            received += chunk
        assert received.startswith(b"HTTP/1.1 200")
        # A sender blocked on the write is cut off (normally); one that got to run first
        # sent ``dropped``.
        assert feed.stats.cut_off_clients == 1 or b"event: dropped" in received
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    # A dropped client resumes like any other.
    async with sse(api, ROOM_FEED, headers) as resumed:
        later = await publish_all(api, numbered(3, published))
        assert ids(await resumed.events(3)) == later


@pytest.mark.parametrize("api_env", [{"SSE_BACKLOG": 5}])
async def test_a_slow_but_reading_client_gets_a_dropped_event_then_the_end(
    api: ApiHarness,
) -> None:
    """A client that reads, but not before its backlog overflowed, is told why it was cut."""
    headers = await moderator(api)
    feed = feed_of(api)
    async with sse(api, ROOM_FEED, headers) as reader:
        # A burst far larger than the backlog, in one XADD: it is fanned out faster than the
        # client's handler drains its queue (the client reads nothing meanwhile).
        await publish_many(api, numbered(2000))
        await wait_for(
            lambda: feed.stats.dropped_clients == 1,
            what="the client to be dropped",
            timeout=WAIT_S,
            poll=0.02,
        )
        messages = []
        with contextlib.suppress(StreamEnded, httpx.RemoteProtocolError):
            while True:
                messages.append(await reader.next())
    events = [m for m in messages if m.event is not None]
    assert events[-1].event == "dropped"
    assert all(m.event == "event" for m in events[:-1])
    assert len(events) < 2000
    await subscribed(api, 0)


async def test_an_idle_feed_gets_heartbeat_comments(api: ApiHarness) -> None:
    headers = await moderator(api)
    async with sse(api, ROOM_FEED, headers) as feed:
        hello = await feed.next()
        beats = [await feed.heartbeat() for _ in range(3)]
    assert "ttlp live feed" in hello.comments
    assert all(b.comments == ["keep-alive"] for b in beats)


# -- WebSocket ----------------------------------------------------------------------------------
async def ws_frames(socket: Any, n: int) -> list[dict[str, Any]]:
    out = []
    while len(out) < n:
        frame = json.loads(await asyncio.wait_for(socket.recv(), WAIT_S))
        out.append(frame)
    return out


async def read_to_the_end(socket: Any) -> None:
    while True:
        await asyncio.wait_for(socket.recv(), WAIT_S)


async def test_websocket_gets_the_same_events_as_json_frames(api: ApiHarness) -> None:
    headers = await moderator(api)
    events = fixture_events()
    async with (
        ws_connect(api.ws_url(FIXTURE_ROOM), additional_headers=headers) as socket,
        sse(api, ROOM_FEED, headers, clients=2) as feed,
    ):
        published = await publish_all(api, events)
        frames = await ws_frames(socket, len(events))
        via_sse = await feed.events(len(events))
    assert {f["type"] for f in frames} == {"event"}
    assert [f["id"] for f in frames] == published == ids(via_sse)
    assert [f["event"] for f in frames] == [m.json for m in via_sse]
    await subscribed(api, 0)


@pytest.mark.parametrize("api_env", [{"SSE_BACKLOG": 20}])
async def test_a_websocket_client_that_stops_reading_is_dropped_and_disconnected(
    api: ApiHarness,
) -> None:
    headers = await moderator(api)
    feed = feed_of(api)
    # max_queue=1: the client library stops reading the socket once a message is waiting.
    url = api.ws_url(FIXTURE_ROOM)
    async with ws_connect(url, additional_headers=headers, max_queue=1) as socket:
        await subscribed(api, 1)
        await stall(api)
        await wait_for(
            lambda: feed.stats.dropped_clients == 1,
            what="the client to be dropped",
            timeout=WAIT_S,
            poll=0.02,
        )
        assert feed.queued() <= 20
        await subscribed(api, 0)
        await wait_for(
            lambda: not api.app.state.api.feeds_per_account,
            what="the feed slot's release",
            timeout=WAIT_S,
            poll=0.02,
        )
        with pytest.raises(ConnectionClosed):  # once it reads again: what was sent, then the end
            await read_to_the_end(socket)
    assert feed.stats.dropped_clients == 1


async def test_websocket_filters_by_type_and_resumes_from_last_event_id(api: ApiHarness) -> None:
    headers = await moderator(api)
    events = fixture_events()
    published = await publish_all(api, events)
    gifts = [i for i, e in zip(published, events, strict=True) if type_of(e) == "GIFT"]
    url = api.ws_url(f"@{STREAMER_HANDLE}", f"?types=GIFT&lastEventId={published[0]}")
    async with ws_connect(url, additional_headers=headers) as socket:
        missed = await ws_frames(socket, len(gifts))
        later = await publish_all(api, numbered(len(events), len(events)))
        live = await ws_frames(socket, len(gifts))
    assert [f["id"] for f in missed] == gifts
    assert [f["id"] for f in live] == [
        i for i, e in zip(later, events, strict=True) if type_of(e) == "GIFT"
    ]
    assert {f["event"]["eventType"] for f in missed + live} == {"GIFT"}


# -- limits -------------------------------------------------------------------------------------
@pytest.mark.parametrize("api_env", [{"API_MAX_FEEDS_PER_ACCOUNT": 2}])
async def test_the_per_account_feed_cap_answers_429_with_retry_after(api: ApiHarness) -> None:
    headers = await moderator(api)
    other = await api.login("other-mod", Role.MODERATOR, [STREAMER_HANDLE])
    async with (
        sse(api, ROOM_FEED, headers, clients=1),
        ws_connect(api.ws_url(FIXTURE_ROOM), additional_headers=headers),
    ):
        await subscribed(api, 2)
        refused = await api.client.get(ROOM_FEED, headers=headers)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "live feeds" in refused.json()["detail"]
        with pytest.raises(InvalidStatus) as ws_refused:
            async with ws_connect(api.ws_url(FIXTURE_ROOM), additional_headers=headers):
                pass
        assert ws_refused.value.response.status_code == 429
        assert int(ws_refused.value.response.headers["Retry-After"]) >= 1
        assert b"live feeds" in ws_refused.value.response.body
        async with sse(api, ROOM_FEED, other, clients=3):  # another account is not limited
            pass
    await subscribed(api, 0)
    await wait_for(
        lambda: not api.app.state.api.feeds_per_account,
        what="the feed slots to be released",
        timeout=WAIT_S,
        poll=0.02,
    )
    async with sse(api, ROOM_FEED, headers):  # the slots are back
        pass


async def test_the_feed_needs_a_moderator_in_scope(api: ApiHarness) -> None:
    await api.seed()
    viewer = await api.login("viewer", Role.VIEWER, [STREAMER_HANDLE])
    outsider = await api.login("outsider", Role.MODERATOR, ["someone.else"])
    assert (await api.client.get(ROOM_FEED)).status_code == 401
    assert (await api.client.get(ROOM_FEED, headers=viewer)).status_code == 403
    assert (await api.client.get(ROOM_FEED, headers=outsider)).status_code == 403
    assert (await api.client.get(HANDLE_FEED, headers=outsider)).status_code == 403
    assert feed_of(api).stats.clients == 0
