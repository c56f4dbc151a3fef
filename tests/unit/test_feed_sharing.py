"""The live feed's per-event work is shared by its clients (ttlp.api.feed): with 100 clients
an event is decoded, its id parsed and its SSE frame built once, not 100 times."""

from __future__ import annotations

import msgspec

from ttlp.api.feed import (
    DECODED_KEPT,
    Feed,
    FeedItem,
    _encode_item,
    make_channels,
    notice,
    sse_frame,
)
from ttlp.bus.memory import MemoryBus
from ttlp.db.handles import HandleDirectory


async def no_handle(_stream_id: str) -> str | None:
    return None


def feed() -> Feed:
    return Feed(
        MemoryBus(), "ttlc:events", make_channels(10), HandleDirectory(no_handle), heartbeat_s=15
    )


def message(n: int) -> bytes:
    event = msgspec.Raw(b'{"eventType":"CHAT","n":%d}' % n)
    return _encode_item(FeedItem(f"1700000000000-{n}", "CHAT", "7", event))


def test_clients_of_one_message_share_its_item_and_its_frame() -> None:
    live = feed()
    data = message(1)
    first, position = live._decode(data)
    copy = bytes(bytearray(data))  # another client's copy of the same message
    assert copy is not data
    again, _ = live._decode(copy)
    assert again is first
    assert position == (1700000000000, 1)
    frame = sse_frame(first)
    assert sse_frame(again) is frame
    assert (
        frame == b'id: 1700000000000-1\r\nevent: event\r\ndata: {"eventType":"CHAT","n":1}\r\n\r\n'
    )


def test_a_notice_is_never_shared_and_the_memory_is_bounded() -> None:
    live = feed()
    note = notice("options", {"x": 1})
    item, _ = live._decode(note)
    assert live._decode(note)[0] is not item  # one client's: not kept
    for n in range(DECODED_KEPT + 50):
        live._decode(message(n))
    assert len(live._decoded) == DECODED_KEPT
    assert live._decode(message(DECODED_KEPT + 49))[0].id.endswith(f"-{DECODED_KEPT + 49}")
