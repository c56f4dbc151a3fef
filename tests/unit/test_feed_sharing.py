"""The live feed's per-event work is shared by its clients (ttlp.api.feed): with 100 clients
an event is decoded, its id parsed and its SSE frame built once, not 100 times; and a channel
message carries a tail read's events, so the fan-out is a put per client per read."""

from __future__ import annotations

import asyncio

import msgspec

from ttlp.api.feed import (
    DECODED_KEPT,
    DroppingSubscriber,
    Feed,
    FeedItem,
    make_channels,
    message,
    message_events,
    notice,
    sse_frame,
)
from ttlp.bus.base import Entry
from ttlp.bus.memory import MemoryBus
from ttlp.db.handles import HandleDirectory


async def no_handle(_stream_id: str) -> str | None:
    return None


def feed(backlog: int = 10, **kwargs: int) -> Feed:
    return Feed(
        MemoryBus(),
        "ttlc:events",
        make_channels(backlog),
        HandleDirectory(no_handle),
        heartbeat_s=15,
        **kwargs,  # type: ignore[arg-type]
    )


def item(n: int) -> FeedItem:
    event = msgspec.Raw(b'{"eventType":"CHAT","n":%d}' % n)
    return FeedItem(f"1700000000000-{n}", "CHAT", "7", event)


def test_clients_of_one_message_share_its_items_and_their_frames() -> None:
    live = feed()
    data = message([item(1), item(2)])
    assert data.events == 2
    (first, position), (second, _) = live._decode(data)
    copy = bytes(bytearray(data))  # another client's copy of the same message
    assert copy is not data
    again = live._decode(copy)
    assert again[0][0] is first
    assert again[1][0] is second
    assert position == (1700000000000, 1)
    frame = sse_frame(first)
    assert sse_frame(again[0][0]) is frame
    assert (
        frame == b'id: 1700000000000-1\r\nevent: event\r\ndata: {"eventType":"CHAT","n":1}\r\n\r\n'
    )


def test_a_notice_is_never_shared_and_the_memory_is_bounded() -> None:
    live = feed()
    note = notice("options", {"x": 1})
    assert note.events == 0  # not an event: it never fills a client's backlog
    ((shown, _),) = live._decode(note)
    assert live._decode(note)[0][0] is not shown  # one client's: not kept
    for n in range(DECODED_KEPT + 50):
        live._decode(message([item(n)]))
    assert len(live._decoded) == DECODED_KEPT
    assert live._decode(message([item(DECODED_KEPT + 49)]))[0][0].id.endswith(
        f"-{DECODED_KEPT + 49}"
    )


def test_messages_hold_a_tenth_of_the_backlog_at_most_a_send_batch() -> None:
    assert message_events(2000) == 100
    assert message_events(200) == 20
    assert message_events(20) == 2
    assert message_events(5) == 1


def event_entry(n: int) -> Entry:
    text = (
        f'{{"eventType":"LIKE","schemaVersion":"1","eventId":"{n:064x}","triggerId":5,'
        '"streamId":"7","sessionId":"00000000-0000-4000-8000-000000000001",'
        '"timestamp":"2024-01-01T00:00:00Z","source":"live",'
        f'"user":{{"userId":"1","uniqueId":"u"}},"payload":{{"likeCount":1,"totalLikeCount":{n}}}}}'
    )
    return Entry(f"1700000000000-{n}", {"event": text})


async def test_a_tail_read_reaches_a_client_as_few_messages_and_in_order() -> None:
    live = feed(backlog=2000, message_events=4)
    await live.channels._on_startup()
    try:
        subscriber = await live.channels.subscribe(["room:7"])
        assert isinstance(subscriber, DroppingSubscriber)
        live._subscribers.add(subscriber)
        await live.publish([event_entry(n) for n in range(10)])
        # Three messages of 4 + 4 + 2 events: three puts, not ten (the plugin's workers hand
        # them over in order).
        queue = subscriber._queue
        messages = [await asyncio.wait_for(queue.get(), 5) for _ in range(3)]
        assert [getattr(m, "events", None) for m in messages] == [4, 4, 2]
        ids = [i.id for m in messages for i, _ in live._decode(m or b"")]
        assert ids == [f"1700000000000-{n}" for n in range(10)]
    finally:
        await live.channels._on_shutdown()


def test_the_backlog_is_counted_in_events() -> None:
    subscriber = DroppingSubscriber(make_channels(10), max_backlog=10)
    dropped: list[DroppingSubscriber] = []
    subscriber.on_overflow = dropped.append
    assert subscriber.put_nowait(message([item(n) for n in range(6)]))
    assert subscriber.put_nowait(notice("skip"))  # a notice takes no room
    assert subscriber.queued_events == 6
    assert not subscriber.put_nowait(message([item(n) for n in range(6, 11)]))  # 11 > 10
    assert subscriber.overflowed
    assert dropped == [subscriber]
    taken = subscriber._queue.get_nowait()
    subscriber.taken(taken)
    assert subscriber.queued_events == 0
