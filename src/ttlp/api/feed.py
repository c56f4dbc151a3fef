"""The live feed (DESIGN §7.4): ``ttlc:events`` → Litestar channels → SSE and WebSocket clients.

Each api process tails ``ttlc:events`` once (plain XREAD, no consumer group: the feed is a view,
it must not take entries from the roles that process them) and publishes every event to the
channel of its room (``room:<id>``) and of its streamer (``handle:<uniqueId>``). Clients
subscribe to one channel; the channels plugin fans out to them with a bounded backlog each.
A channel message holds the events of one tail read for that channel (at most
``message_events(SSE_BACKLOG)`` of them), so fanning out costs a put per client per read, not
one per client per event: 100 clients at 1,000 events/s were 100,000 puts a second, 12 % of the
event loop of `ttlp run` on a 2-core machine.

- SSE ids are the bus entry ids. A client reconnecting with ``Last-Event-ID`` first gets what it
  missed from ``ttlc:events`` itself (XREAD after that id, filtered to its channel), then the
  live events after the last one it was sent. When the id is older than the stream's first
  entry (trimmed by MAXLEN) it gets an explicit ``gap`` event first, so it knows to fetch
  history over REST.
- A client whose backlog (``SSE_BACKLOG``) overflows is too slow: it is sent a ``dropped``
  event and disconnected, or, when the server's writes to it are blocked (it stopped
  reading), its connection is closed after ``DROP_GRACE_S``. Its backlog is freed at once,
  and it can resume with ``Last-Event-ID``.
- A ``: keep-alive`` comment every ``SSE_HEARTBEAT_S`` keeps proxies from closing idle feeds.
- A *notice* (``notice``) is a named event for one client only, put in its backlog by whoever
  holds its subscriber (``batches(subscribed=...)``): an SSE message without an id, never
  filtered (the overlays' ``options``, ``skip`` and ``revoked``).

The channels backend is the in-memory one in every process: each replica's tail is its own
fan-out source, so N api replicas read ``ttlc:events`` N times instead of re-publishing every
event into a second Redis stream (DESIGN's "stream backend on Redis" would double the Redis
writes per event at 10 k events/s; the bus stream already is the shared, resumable backlog).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.subscriber import Subscriber
from loguru import logger

from ttlp.aio import sleep_or_stop
from ttlp.bus.base import Bus, Entry, parse_id
from ttlp.contracts.events import connected_handle, decode_event_head
from ttlp.db.handles import HandleDirectory

TAIL_BATCH: Final = 1000
TAIL_BLOCK_MS: Final = 1000
BACKFILL_BATCH: Final = 1000
BACKFILL_MAX: Final = 100_000
"""At most this many missed entries are scanned on a resume (the stream's MAXLEN bounds it)."""
DROP_GRACE_S: Final = 5.0
"""How long an overflowed client's handler may take to send ``dropped`` before it is cut off
(it is blocked writing to a client that stopped reading)."""
SEND_BATCH: Final = 100
"""About this many events in one write to a client (see ``Feed.batches``)."""
LINGER_S: Final = 0.01
"""A client woken by an event waits this long for the events behind it, so a busy stream
costs a client one write per 10 ms, not one per event (100 clients at 1,000 events/s were
100,000 writes a second through the ASGI stack)."""
DECODED_KEPT: Final = 64
"""Published messages kept decoded (``Feed._decode``): the clients of a channel read a message
within a few ``LINGER_S`` of each other, and one holds up to ``SEND_BATCH`` events (whose
bytes the decoded items keep: at most ~6 MB at 1 KB an event)."""
FRAMES_KEPT: Final = 1024
"""SSE frames kept built (``sse_frame``), one per event: far more than one message's."""
HEARTBEAT: Final = b""
"""Queued to a client idle for ``SSE_HEARTBEAT_S``: one task ticks for all of them, so the
wait for the next event is a plain ``queue.get()`` (``wait_for`` would cost a task each)."""
TAIL_RETRY_S: Final = 1.0

log = logger.bind(role="api")


def room_channel(stream_id: str) -> str:
    return f"room:{stream_id}"


def handle_channel(unique_id: str) -> str:
    return f"handle:{unique_id.lower()}"


class FeedItem(msgspec.Struct, frozen=True, array_like=True):
    """One event of a channel message: the entry id, the event type (for ``?types=``), the
    room id and the UnifiedEvent JSON as the normalizer wrote it (never re-encoded)."""

    id: str
    type: str
    stream_id: str
    event: msgspec.Raw


_encode_items = msgspec.json.Encoder().encode
_decode_items = msgspec.json.Decoder(list[FeedItem]).decode


class Message(bytes):
    """A channel message: FeedItems as one JSON array (bytes, as the channels plugin passes
    them on untouched), knowing how many of them are events (a notice is none)."""

    events: int


def message(items: list[FeedItem], events: int | None = None) -> Message:
    """``items`` as one channel message; ``events``: how many count against a client's
    backlog (all of them unless said)."""
    data = Message(_encode_items(items))
    data.events = len(items) if events is None else events
    return data


def message_events(backlog: int) -> int:
    """Events per channel message for clients of ``backlog`` events: a tenth of it, at most
    ``SEND_BATCH``. A client is dropped when the next message does not fit, so at most this
    many events before its backlog is full (a message as large as the backlog would drop
    clients that are not behind at all)."""
    return max(1, min(SEND_BATCH, backlog // 10))


def notice(event: str, data: object = None) -> Message:
    """A notice for one client's backlog (``DroppingSubscriber.put_nowait``): a FeedItem
    without an entry id, whose ``type`` is the SSE event name and ``event`` its data (``{}``
    when None)."""
    body = msgspec.json.encode({} if data is None else data)
    return message([FeedItem("", event, "", msgspec.Raw(body))], events=0)


def item_from_entry(entry: Entry) -> FeedItem | None:
    text = (entry.fields or {}).get("event")
    if not text:
        return None
    try:
        head = decode_event_head(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return FeedItem(entry.id, head.event_type, head.stream_id, msgspec.Raw(text.encode()))


class DroppingSubscriber(Subscriber):
    """A subscriber that notices when its backlog overflows (the client is too slow).

    The backlog is counted in events (``queued_events``, at most the plugin's
    ``subscriber_max_backlog``), not in messages: a message holds a tail read's events."""

    overflowed = False
    queued_events = 0
    on_overflow: Callable[[DroppingSubscriber], None] | None = None
    """Called once, at the first event that did not fit."""
    cut_off: asyncio.TimerHandle | None = None

    last_put = 0.0
    """``time.monotonic()`` of the last item queued (heartbeats are queued to idle ones)."""

    def put_nowait(self, item: bytes | None) -> bool:
        events = getattr(item, "events", 0)
        limit = self._queue.maxsize
        if events and limit and self.queued_events + events > limit:
            ok = False
        else:
            ok = super().put_nowait(item)
        if ok:
            self.queued_events += events
            self.last_put = time.monotonic()
        elif item and not self.overflowed:  # an event, not the end or a heartbeat
            self.overflowed = True
            if self.on_overflow is not None:
                self.on_overflow(self)
        return ok

    def clear(self) -> None:
        """Forget the backlog: frees its memory, and lets the plugin's ``unsubscribe`` put its
        end marker (it awaits room in the queue, forever on a full one)."""
        queue = self._queue
        while not queue.empty():
            queue.get_nowait()
        self.queued_events = 0

    def taken(self, item: bytes | None) -> None:
        """``item`` was taken from the backlog (by ``Feed.batches``)."""
        self.queued_events -= getattr(item, "events", 0)


def make_channels(backlog: int) -> ChannelsPlugin:
    return ChannelsPlugin(
        backend=MemoryChannelsBackend(),
        arbitrary_channels_allowed=True,
        subscriber_max_backlog=backlog,
        subscriber_backlog_strategy="backoff",  # keep order; overflow → drop the client
        subscriber_class=DroppingSubscriber,
    )


@dataclass
class FeedStats:
    clients: int = 0
    """Subscribed clients now."""
    published: int = 0
    """Events the tail has fanned out."""
    delivered: int = 0
    """Events handed to clients' senders (all clients together)."""
    dropped_clients: int = 0
    """Clients whose backlog overflowed (too slow)."""
    cut_off_clients: int = 0
    """Of those, the ones whose sender was blocked writing to them: cancelled, connection
    closed without the ``dropped`` event."""


class Feed:
    """The tail of ``ttlc:events`` and the per-client streams built on it."""

    def __init__(
        self,
        bus: Bus,
        stream: str,
        channels: ChannelsPlugin,
        handles: HandleDirectory,
        *,
        heartbeat_s: float,
        drop_grace_s: float = DROP_GRACE_S,
        message_events: int = SEND_BATCH,
    ) -> None:
        """``message_events``: at most this many events in one channel message
        (``message_events(SSE_BACKLOG)``)."""
        self.bus = bus
        self.stream = stream
        self.channels = channels
        self.handles = handles
        self.heartbeat_s = heartbeat_s
        self.drop_grace_s = drop_grace_s
        self.message_events = max(message_events, 1)
        self.stats = FeedStats()
        self._decoded: dict[bytes, list[tuple[FeedItem, tuple[int, int]]]] = {}
        """Each published message decoded once for every client (``_decode``)."""
        self._subscribers: set[DroppingSubscriber] = set()
        self._releasing: set[asyncio.Task[None]] = set()
        self.last_seen_ms = 0.0
        """Wall time (ms) when the tail last published an event: for latency figures."""

    # -- the tail ------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Publish every new entry of ``ttlc:events`` to its channels until ``stop``; queue
        heartbeats to idle clients."""
        heartbeats = asyncio.create_task(self._heartbeats(stop), name="api-feed-heartbeats")
        try:
            await self._tail(stop)
        finally:
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeats

    async def _heartbeats(self, stop: asyncio.Event) -> None:
        tick = self.heartbeat_s / 4  # a heartbeat after 1 to 1.25 × SSE_HEARTBEAT_S idle
        while not stop.is_set():
            await sleep_or_stop(stop, tick)
            idle_since = time.monotonic() - self.heartbeat_s
            for subscriber in self._subscribers:
                if subscriber.last_put <= idle_since:
                    subscriber.put_nowait(HEARTBEAT)  # a full queue needs none

    async def _tail(self, stop: asyncio.Event) -> None:
        after: str | None = None
        while not stop.is_set():
            try:
                if after is None:
                    _, after = await self.bus.bounds(self.stream)
                entries = await self.bus.read(
                    self.stream, after=after, count=TAIL_BATCH, block_ms=TAIL_BLOCK_MS
                )
            except Exception as exc:
                log.warning("feed tail failed; retrying", error=f"{type(exc).__name__}: {exc}")
                await sleep_or_stop(stop, TAIL_RETRY_S)
                continue
            if entries:
                after = entries[-1].id
                await self.publish(entries)

    async def publish(self, entries: Iterable[Entry]) -> None:
        if not self._subscribers:
            # Nobody is watching: nothing to fan out (a client that connects later starts
            # from then, or resumes from the bus itself with Last-Event-ID).
            return
        by_channel: dict[str, list[FeedItem]] = {}
        for entry in entries:
            item = item_from_entry(entry)
            if item is None:
                continue
            if item.type == "CONNECTED":
                handle = connected_handle(bytes(item.event))
                if handle:
                    self.handles.learn(item.stream_id, handle)
            by_channel.setdefault(room_channel(item.stream_id), []).append(item)
            handle = await self.handles.handle(item.stream_id)
            if handle:
                by_channel.setdefault(handle_channel(handle), []).append(item)
            self.stats.published += 1
        size = self.message_events
        for channel, items in by_channel.items():
            for start in range(0, len(items), size):
                self.channels.publish(message(items[start : start + size]), channel)

    # -- one client ----------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[DroppingSubscriber]:
        """A subscription of the current task, the one that sends its events to the client.

        It is released when this context exits or when that task ends, whichever is first:
        a streaming response abandons its generator when the client disconnects (Litestar
        cancels the task sending the body), and only the garbage collector would close it.
        When the backlog overflows, the task normally notices at its next event (``batches``
        sends ``dropped`` and ends); a task blocked writing to a client that stopped reading
        never gets there, so after ``DROP_GRACE_S`` it is cancelled (the server closes the
        connection). Either way the client's memory never outlives it.
        """
        subscriber = await self.channels.subscribe([channel])
        assert isinstance(subscriber, DroppingSubscriber)
        owner = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def overflowed(sub: DroppingSubscriber) -> None:
            self.stats.dropped_clients += 1
            log.warning("live feed client too slow; dropping it", channel=channel)
            sub.cut_off = loop.call_later(self.drop_grace_s, self._cut_off, sub, owner)

        def owner_done(_task: asyncio.Task[Any]) -> None:
            self._release_soon(subscriber)

        subscriber.on_overflow = overflowed
        subscriber.last_put = time.monotonic()
        self.stats.clients += 1
        self._subscribers.add(subscriber)
        if owner is not None:
            owner.add_done_callback(owner_done)
        try:
            yield subscriber
        finally:
            if owner is not None:
                owner.remove_done_callback(owner_done)
            await self._release(subscriber)

    def _cut_off(self, subscriber: DroppingSubscriber, owner: asyncio.Task[Any] | None) -> None:
        if subscriber not in self._subscribers:
            return  # it ended in time
        self.stats.cut_off_clients += 1
        log.warning("live feed client stopped reading; closing its connection")
        if owner is not None and not owner.done():
            owner.cancel()
        self._release_soon(subscriber)

    def _release_soon(self, subscriber: DroppingSubscriber) -> None:
        if subscriber in self._subscribers:
            task = asyncio.create_task(self._release(subscriber))
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)

    async def _release(self, subscriber: DroppingSubscriber) -> None:
        """Unsubscribe once, and forget the backlog at once."""
        if subscriber not in self._subscribers:
            return
        self._subscribers.discard(subscriber)
        self.stats.clients -= 1
        if subscriber.cut_off is not None:
            subscriber.cut_off.cancel()
        subscriber.on_overflow = None
        subscriber.clear()
        await self.channels.unsubscribe(subscriber)

    def queued(self) -> int:
        """Events waiting in every client's backlog (each at most ``SSE_BACKLOG``)."""
        return sum(subscriber.queued_events for subscriber in self._subscribers)

    def close(self) -> None:
        """End every client's feed now (shutdown): their streams finish, connections close."""
        for subscriber in self._subscribers:
            if not subscriber.put_nowait(None):
                subscriber.overflowed = True  # a full queue: it ends at its next check

    async def batches(
        self,
        channel: str,
        matches: Callable[[FeedItem], bool],
        last_event_id: str | None,
        stop: asyncio.Event,
        *,
        subscribed: Callable[[DroppingSubscriber], None] | None = None,
    ) -> AsyncGenerator[list[FeedItem | str], None]:
        """The events of one client in order: the missed ones after ``last_event_id``, then
        live ones, with ``"gap"``, ``"dropped"`` or ``"heartbeat"`` markers between them; in
        batches of what is ready (from ``SEND_BATCH`` on, the next message is left for the
        next batch: at most ``SEND_BATCH`` + ``message_events`` - 1), so a burst costs a client
        one write instead of one per event.

        Iterate it in the task that sends to the client (see ``subscribe``). ``subscribed`` is
        called with the client's subscriber, in that task, once it is subscribed: whoever
        keeps it may put notices (``notice``) in its backlog."""
        async with self.subscribe(channel) as subscriber:
            if subscribed is not None:
                subscribed(subscriber)
            # Subscribed before the backfill: whatever is published meanwhile is queued, and
            # the queued events the backfill already sent are skipped by id.
            sent = (0, 0)
            batch: list[FeedItem | str] = []
            if last_event_id is not None:
                sent = parse_id(last_event_id)
                async for item in self._missed(channel, last_event_id, matches):
                    if isinstance(item, FeedItem):
                        sent = parse_id(item.id)
                        self.stats.delivered += 1
                    batch.append(item)
                    if len(batch) >= SEND_BATCH:
                        yield batch
                        batch = []
                if batch:
                    yield batch
            queue: asyncio.Queue[bytes | None] = subscriber._queue  # type: ignore[assignment]
            while not stop.is_set():
                if subscriber.overflowed:
                    yield ["dropped"]
                    return
                if queue.empty():
                    data = await queue.get()
                    await asyncio.sleep(LINGER_S)
                else:
                    data = queue.get_nowait()
                batch = []
                while True:
                    if data is None:
                        if batch:
                            yield batch
                        return
                    subscriber.taken(data)
                    if not data:  # HEARTBEAT
                        batch.append("heartbeat")
                    else:
                        for item, position in self._decode(data):
                            if not item.id:  # a notice (``notice``): this client's, unfiltered
                                batch.append(item)
                            elif position > sent and matches(item):
                                self.stats.delivered += 1
                                batch.append(item)
                    if len(batch) >= SEND_BATCH or queue.empty():
                        break
                    data = queue.get_nowait()
                if batch:
                    yield batch

    def _decode(self, data: bytes) -> list[tuple[FeedItem, tuple[int, int]]]:
        """A channel message as its FeedItems, each with the position of its entry id,
        decoded once for all the clients it was published to (they get the same ``bytes``):
        with 100 clients, every event was decoded, its id parsed and its SSE frame built 100
        times. The items are shared, so ``sse_frame`` builds each frame once too."""
        found = self._decoded.get(data)
        if found is None:
            items = _decode_items(data)
            found = [(item, parse_id(item.id) if item.id else (0, 0)) for item in items]
            if all(item.id for item in items):  # a notice goes to one client
                self._decoded[data] = found
                if len(self._decoded) > DECODED_KEPT:
                    del self._decoded[next(iter(self._decoded))]  # the oldest
        return found

    async def _missed(
        self, channel: str, after: str, matches: Callable[[FeedItem], bool]
    ) -> AsyncGenerator[FeedItem | str, None]:
        """The entries of ``channel`` after ``after`` still on the bus; ``"gap"`` first when
        some may be lost: trimmed (``after`` is older than the first entry), or the bus was
        reset (``after`` is newer than its last id). The bounds are read after the first
        batch, so an entry trimmed in between can only cause a needless ``gap``, never a
        silent one."""
        entries = await self.bus.read(self.stream, after=after, count=BACKFILL_BATCH, block_ms=None)
        first, last = await self.bus.bounds(self.stream)
        seen = parse_id(after)
        if seen < _before(first) or seen > parse_id(last):
            yield "gap"
        scanned = 0
        while entries:
            scanned += len(entries)
            for entry in entries:
                item = item_from_entry(entry)
                if item is not None and matches(item) and await self._belongs(item, channel):
                    yield item
            if scanned >= BACKFILL_MAX:
                return
            after = entries[-1].id
            entries = await self.bus.read(
                self.stream, after=after, count=BACKFILL_BATCH, block_ms=None
            )

    async def _belongs(self, item: FeedItem, channel: str) -> bool:
        """Whether the tail publishes ``item`` to ``channel`` (its room's, or its streamer's)."""
        if channel == room_channel(item.stream_id):
            return True
        if not channel.startswith("handle:"):
            return False
        handle = await self.handles.handle(item.stream_id)
        return handle is not None and channel == handle_channel(handle)


def _before(entry_id: str) -> tuple[int, int]:
    """The id just before ``entry_id``: a client that saw it has missed nothing trimmed."""
    ms, seq = parse_id(entry_id)
    return (ms, seq - 1) if seq > 0 else (ms - 1, 2**63)


SSE_HEARTBEAT: Final = b": keep-alive\r\n\r\n"


def sse_frame(item: FeedItem | str) -> bytes:
    """One SSE message (``id``, ``event``, one ``data`` line) or comment; see
    ``routes.live.EncodedEvents``. An event's frame is built once per item object (the
    clients of one event share it, ``Feed._decode``)."""
    if isinstance(item, str):
        if item == "heartbeat":
            return SSE_HEARTBEAT
        return b"event: %s\r\ndata: {}\r\n\r\n" % item.encode()
    if not item.id:  # a notice: a named event without an id (the client's last id stays)
        return b"event: %s\r\ndata: %s\r\n\r\n" % (item.type.encode(), bytes(item.event))
    cached = _frames.get(id(item))
    if cached is not None and cached[0] is item:
        return cached[1]
    data = bytes(item.event)
    if b"\n" in data or b"\r" in data:  # not compact JSON: a line break would end the data
        data = msgspec.json.encode(msgspec.json.decode(data))
    frame = b"id: %s\r\nevent: event\r\ndata: %s\r\n\r\n" % (item.id.encode(), data)
    _frames[id(item)] = (item, frame)  # the item is kept with it: its id cannot be reused
    if len(_frames) > FRAMES_KEPT:
        del _frames[next(iter(_frames))]
    return frame


_frames: dict[int, tuple[FeedItem, bytes]] = {}


def ws_message(item: FeedItem | str) -> str | None:
    if isinstance(item, str):
        return None if item == "heartbeat" else msgspec.json.encode({"type": item}).decode()
    if not item.id:  # a notice
        return msgspec.json.encode({"type": item.type, "data": item.event}).decode()
    return f'{{"type":"event","id":"{item.id}","event":{bytes(item.event).decode()}}}'
