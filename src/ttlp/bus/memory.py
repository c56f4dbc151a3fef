"""The in-process bus: Redis Streams consumer-group semantics inside one asyncio process.

Used by the embedded default (`ttlp run` with no REDIS_URL), where all roles share one process.
It keeps what the roles rely on: ordered ids, groups with a last-delivered id, a pending entries
list per group with delivery counts and idle times, history reads, ack, claim of idle entries,
MAXLEN trimming (exact here) and blocking reads. Nothing survives the process: that is what the
database is for; except a stream handed to ``keep``, which lives in a ``DurableStream`` instead of
memory. The embedded default keeps ``ttlc:dlq`` so, in the database (``ttlp.db.letters``): dead
letters survive a restart and ``ttlp dlq`` in another process reads and purges them. What that
process cannot do is publish into this one's memory, so ``move`` (``ttlp dlq retry``) there only
asks for the move, and ``relay`` in the process that runs the pipeline carries it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import msgspec
from loguru import logger

from ttlp.aio import sleep_or_stop
from ttlp.bus.base import Entry, GroupInfo, parse_id
from ttlp.errors import BusError, NotFoundError, is_transient

RELAY_POLL_S: Final = 0.5
"""How often ``relay`` looks for moves other processes asked for (``ttlp dlq retry``)."""
RELAY_RETRY_S: Final = 5.0
"""After a failed look (the database locked or away), wait this long: the marks stay meanwhile."""
RELAY_BATCH: Final = 500
MOVING_FIELD: Final = "_movingTo"
"""Set on an entry of a durable stream whose move another process asked for and ``relay`` has
not carried out yet: the stream it goes to. Not a field of the entry itself."""


class DurableStream(Protocol):
    """Where the in-process bus keeps a stream that must outlive the process and be seen by
    other processes on the same store. Ids are the bus's (``<ms>-<seq>``, increasing)."""

    async def add(self, stream: str, batch: Sequence[Mapping[str, str]]) -> list[str]:
        """Append the entries (the store caps the stream, oldest first); return their ids."""

    async def select(
        self,
        stream: str,
        *,
        low: tuple[int, int] | None,
        high: tuple[int, int] | None,
        high_inclusive: bool,
        newest_first: bool,
        count: int | None,
    ) -> list[Entry]:
        """Entries with ``low`` ≤ id ≤ ``high`` (< when not ``high_inclusive``); None = open."""

    async def delete(self, stream: str, ids: Sequence[str]) -> int: ...

    async def length(self, stream: str) -> int: ...

    async def bounds(self, stream: str) -> tuple[str, str]: ...

    async def request_move(
        self, stream: str, entry_id: str, to: str, fields: Mapping[str, str]
    ) -> bool:
        """Mark the entry to be published to ``to`` as ``fields`` and deleted (by ``relay``);
        False when there is no such entry."""

    async def requested_moves(
        self, stream: str, count: int
    ) -> list[tuple[str, str, dict[str, str]]]:
        """The oldest marked entries: (id, stream to publish to, fields to publish)."""


@dataclass
class _Pending:
    consumer: str
    delivered_at: float
    deliveries: int


@dataclass
class _Group:
    last_delivered: tuple[int, int]
    pending: dict[tuple[int, int], _Pending] = field(default_factory=dict)
    consumers: set[str] = field(default_factory=set)


@dataclass
class _Stream:
    entries: dict[tuple[int, int], dict[str, str]] = field(default_factory=dict)
    keys: list[tuple[int, int]] = field(default_factory=list)
    """Ids in order; ``keys[head:]`` are live (trimmed ids are dropped lazily, in chunks)."""
    head: int = 0
    last_id: tuple[int, int] = (0, 0)
    groups: dict[str, _Group] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def after(self, key: tuple[int, int], count: int | None = None) -> list[tuple[int, int]]:
        """Up to ``count`` live ids greater than ``key``, in order (binary search)."""
        i = bisect_right(self.keys, key, lo=self.head)
        return self.keys[i : i + count] if count is not None else self.keys[i:]

    def from_(self, key: tuple[int, int]) -> list[tuple[int, int]]:
        """Live ids ≥ ``key``, in order."""
        return self.keys[bisect_left(self.keys, key, lo=self.head) :]

    def count_after(self, key: tuple[int, int]) -> int:
        return len(self.keys) - bisect_right(self.keys, key, lo=self.head)

    def trim(self, maxlen: int) -> None:
        while len(self.entries) > maxlen:
            del self.entries[self.keys[self.head]]
            self.head += 1
        if self.head > 4096 and self.head * 2 > len(self.keys):
            del self.keys[: self.head]
            self.head = 0


def _fmt(key: tuple[int, int]) -> str:
    return f"{key[0]}-{key[1]}"


def _now_ms() -> float:
    return time.monotonic() * 1000


class MemoryBus:
    """In-process implementation of ``ttlp.bus.base.Bus``."""

    def __init__(self, maxlen: int = 100_000, *, status_file: Path | None = None) -> None:
        self._maxlen = maxlen
        self._streams: dict[str, _Stream] = {}
        self._statuses: dict[str, dict[str, str]] = {}
        self._status_file = status_file
        self._durable: dict[str, DurableStream] = {}
        self._relaying = False
        self._acked: asyncio.Event | None = None
        """Set (and dropped) at the next ack that took entries, for ``wait_for_ack``."""

    def keep(self, stream: str, store: DurableStream) -> None:
        """Keep ``stream`` in ``store`` instead of memory, so that it outlives this process and
        other processes on the same store see it. Such a stream is written and read as a whole
        (publish, range, revrange, delete, length, bounds, move); no group consumes it."""
        self._durable[stream] = store

    @property
    def maxlen(self) -> int:
        return self._maxlen

    def _stream(self, name: str) -> _Stream:
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = _Stream()
        return stream

    async def ping(self) -> None:
        return None

    # -- producing -------------------------------------------------------------------------
    def _add(self, stream: _Stream, fields: Mapping[str, str]) -> str:
        ms = int(time.time() * 1000)
        last_ms, last_seq = stream.last_id
        key = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        stream.entries[key] = dict(fields)
        stream.keys.append(key)
        stream.last_id = key
        stream.trim(self._maxlen)
        return _fmt(key)

    def _notify(self, stream: _Stream) -> None:
        stream.changed.set()
        stream.changed = asyncio.Event()

    async def publish(self, stream: str, fields: Mapping[str, str]) -> str:
        if (durable := self._durable.get(stream)) is not None:
            (entry_id,) = await durable.add(stream, [fields])
            return entry_id
        s = self._stream(stream)
        entry_id = self._add(s, fields)
        self._notify(s)
        return entry_id

    async def publish_many(self, stream: str, batch: Sequence[Mapping[str, str]]) -> list[str]:
        if (durable := self._durable.get(stream)) is not None:
            return await durable.add(stream, batch) if batch else []
        s = self._stream(stream)
        ids = [self._add(s, fields) for fields in batch]
        if ids:
            self._notify(s)
        return ids

    # -- groups ----------------------------------------------------------------------------
    async def ensure_group(self, stream: str, group: str, start: str = "0") -> None:
        self._volatile(stream)
        s = self._stream(stream)
        if group not in s.groups:
            last = s.last_id if start == "$" else parse_id(start)
            s.groups[group] = _Group(last_delivered=last)

    def _volatile(self, stream: str) -> None:
        if stream in self._durable:
            raise BusError(f"stream {stream!r} is kept in the database: nothing consumes it")

    def _group(self, stream: str, group: str) -> tuple[_Stream, _Group]:
        s = self._streams.get(stream)
        g = s.groups.get(group) if s else None
        if s is None or g is None:
            raise BusError(f"NOGROUP: group {group!r} does not exist on stream {stream!r}")
        return s, g

    async def read_group(
        self,
        stream: str,
        group: str,
        consumer: str,
        *,
        count: int,
        block_ms: int | None,
        history: bool = False,
    ) -> list[Entry]:
        s, g = self._group(stream, group)
        g.consumers.add(consumer)
        if history:
            return self._read_history(s, g, consumer, count)
        entries = self._read_new(s, g, consumer, count)
        if entries or not block_ms:
            return entries
        waiter = s.changed
        try:
            await asyncio.wait_for(waiter.wait(), block_ms / 1000)
        except TimeoutError:
            return []
        return self._read_new(s, g, consumer, count)

    def _read_new(self, s: _Stream, g: _Group, consumer: str, count: int) -> list[Entry]:
        out: list[Entry] = []
        if s.last_id <= g.last_delivered:
            return out
        now = _now_ms()
        for key in s.after(g.last_delivered, count):
            g.pending[key] = _Pending(consumer, now, 1)
            g.last_delivered = key
            out.append(Entry(_fmt(key), dict(s.entries[key]), 1))
        return out

    def _read_history(self, s: _Stream, g: _Group, consumer: str, count: int) -> list[Entry]:
        now = _now_ms()
        out: list[Entry] = []
        for key in sorted(k for k, p in g.pending.items() if p.consumer == consumer):
            p = g.pending[key]
            p.deliveries += 1
            p.delivered_at = now
            fields = s.entries.get(key)
            out.append(Entry(_fmt(key), dict(fields) if fields is not None else None, p.deliveries))
            if len(out) >= count:
                break
        return out

    async def ack(self, stream: str, group: str, ids: Sequence[str]) -> int:
        s = self._streams.get(stream)
        g = s.groups.get(group) if s else None
        if g is None:
            return 0
        acked = sum(1 for i in ids if g.pending.pop(parse_id(i), None) is not None)
        if acked and self._acked is not None:
            self._acked.set()
            self._acked = None
        return acked

    async def wait_for_ack(self, timeout_s: float) -> None:
        """Wake a paced producer at the ack that makes room, not at its next look: with a
        window of half of MAXLEN (1,000 entries in-process) and batches of up to 500, a
        producer polling every 50 ms left the pipeline's stages idle in turn."""
        if self._acked is None:
            self._acked = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._acked.wait(), timeout_s)

    async def claim_idle(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, start: str, count: int
    ) -> tuple[str, list[Entry]]:
        s, g = self._group(stream, group)
        g.consumers.add(consumer)
        now = _now_ms()
        begin = parse_id(start)
        out: list[Entry] = []
        next_cursor = "0-0"
        for key in sorted(k for k in g.pending if k >= begin):
            if len(out) >= count:
                next_cursor = _fmt(key)
                break
            p = g.pending[key]
            if now - p.delivered_at < min_idle_ms:
                continue
            fields = s.entries.get(key)
            if fields is None:  # trimmed while pending: Redis 7 drops it from the PEL
                del g.pending[key]
                continue
            p.consumer, p.delivered_at, p.deliveries = consumer, now, p.deliveries + 1
            out.append(Entry(_fmt(key), dict(fields), p.deliveries))
        return next_cursor, out

    # -- plain reads -----------------------------------------------------------------------
    async def read(
        self, stream: str, *, after: str, count: int, block_ms: int | None
    ) -> list[Entry]:
        self._volatile(stream)
        s = self._stream(stream)
        begin = s.last_id if after == "$" else parse_id(after)
        entries = self._tail(s, begin, count)
        if entries or not block_ms:
            return entries
        try:
            await asyncio.wait_for(s.changed.wait(), block_ms / 1000)
        except TimeoutError:
            return []
        return self._tail(s, begin, count)

    def _tail(self, s: _Stream, after: tuple[int, int], count: int) -> list[Entry]:
        return [Entry(_fmt(key), dict(s.entries[key])) for key in s.after(after, count)]

    async def range(
        self, stream: str, *, start: str = "-", end: str = "+", count: int | None = None
    ) -> list[Entry]:
        lo = (0, 0) if start == "-" else parse_id(start)
        hi = None if end == "+" else parse_id(end)
        if (durable := self._durable.get(stream)) is not None:
            return await durable.select(
                stream, low=lo, high=hi, high_inclusive=True, newest_first=False, count=count
            )
        s = self._stream(stream)
        out = []
        for key in s.from_(lo):
            if hi is not None and key > hi:
                break
            out.append(Entry(_fmt(key), dict(s.entries[key])))
            if count is not None and len(out) >= count:
                break
        return out

    async def revrange(
        self, stream: str, *, end: str = "+", start: str = "-", count: int | None = None
    ) -> list[Entry]:
        if (durable := self._durable.get(stream)) is not None:
            return await durable.select(
                stream,
                low=None if start == "-" else parse_id(start),
                high=None if end == "+" else parse_id(end.removeprefix("(")),
                high_inclusive=not end.startswith("("),
                newest_first=True,
                count=count,
            )
        s = self._stream(stream)
        if end == "+":
            hi = len(s.keys)
        elif end.startswith("("):
            hi = bisect_left(s.keys, parse_id(end[1:]), lo=s.head)
        else:
            hi = bisect_right(s.keys, parse_id(end), lo=s.head)
        lo = s.head if start == "-" else bisect_left(s.keys, parse_id(start), lo=s.head)
        if count is not None:
            lo = max(lo, hi - count)
        return [Entry(_fmt(key), dict(s.entries[key])) for key in reversed(s.keys[lo:hi])]

    async def delete(self, stream: str, ids: Sequence[str]) -> int:
        if (durable := self._durable.get(stream)) is not None:
            return await durable.delete(stream, ids)
        s = self._stream(stream)
        deleted = 0
        for key in map(parse_id, ids):
            if s.entries.pop(key, None) is not None:
                s.keys.remove(key)  # O(n), but XDEL is an operator's command, not a hot path
                deleted += 1
        return deleted

    async def length(self, stream: str) -> int:
        if (durable := self._durable.get(stream)) is not None:
            return await durable.length(stream)
        s = self._streams.get(stream)
        return len(s.entries) if s else 0

    async def bounds(self, stream: str) -> tuple[str, str]:
        if (durable := self._durable.get(stream)) is not None:
            return await durable.bounds(stream)
        s = self._streams.get(stream)
        if s is None:
            return "0-0", "0-0"
        last = _fmt(s.last_id)
        return (_fmt(s.keys[s.head]) if len(s.keys) > s.head else last), last

    async def groups(self, stream: str) -> list[GroupInfo]:
        s = self._streams.get(stream)
        if s is None:
            return []
        return [
            GroupInfo(
                name=name,
                consumers=len(g.consumers),
                pending=len(g.pending),
                lag=s.count_after(g.last_delivered),
                last_delivered_id=_fmt(g.last_delivered),
            )
            for name, g in s.groups.items()
        ]

    async def move(self, stream: str, entry_id: str, to: str, fields: Mapping[str, str]) -> bool:
        """Publish ``fields`` to ``to`` and delete ``entry_id`` from ``stream``. From a durable
        stream, in a process that does not ``relay`` (the CLI: this bus is not the one the
        pipeline reads), the move is only asked for: False, the relay carries it out."""
        durable = self._durable.get(stream)
        if durable is not None and not self._relaying:
            if not await durable.request_move(stream, entry_id, to, fields):
                raise NotFoundError(f"no entry {entry_id} in {stream} (deleted meanwhile?)")
            return False
        await self.publish(to, fields)
        await self.delete(stream, [entry_id])
        return True

    async def relay(self, stop: asyncio.Event, poll_s: float = RELAY_POLL_S) -> None:
        """Until ``stop``: carry out the moves other processes asked for on the durable
        streams (at once after a restart, then every ``poll_s``); moves asked in this process
        are carried out at once from now on. Runs in the process that runs the pipeline.

        Publish first, then delete: a crash in between publishes the entry again on the next
        start, which its consumers take as a re-delivery (at least once, like every publish)."""
        log = logger.bind(role="bus")
        self._relaying = True
        try:
            while not stop.is_set():
                pause = poll_s
                try:
                    for stream, durable in list(self._durable.items()):
                        for entry_id, to, fields in await durable.requested_moves(
                            stream, RELAY_BATCH
                        ):
                            await self.publish(to, fields)
                            await durable.delete(stream, [entry_id])
                            log.info("moved entry", stream=stream, entry_id=entry_id, to=to)
                except Exception as exc:
                    # A locked or unreachable database: the marks stay, a later look retries.
                    pause = RELAY_RETRY_S
                    log.opt(exception=not is_transient(exc)).warning(
                        "cannot relay requested moves",
                        error=f"{type(exc).__name__}: {exc}",
                        retry_in_s=pause,
                    )
                await sleep_or_stop(stop, pause)
        finally:
            self._relaying = False

    def lease(self, key: str, owner: str, ttl_ms: int) -> None:
        """One process holds every streamer: no lease to take."""
        return None

    async def set_status(self, key: str, field: str, value: str) -> None:
        self._statuses.setdefault(key, {})[field] = value
        if self._status_file is not None:
            # The CLI runs in another process: it reads the reports from this file.
            document = msgspec.json.encode(self._statuses)
            temporary = self._status_file.with_suffix(".tmp")
            await asyncio.to_thread(_replace, temporary, self._status_file, document)

    async def statuses(self, key: str) -> dict[str, str]:
        if key in self._statuses or self._status_file is None:
            return dict(self._statuses.get(key, {}))
        try:  # another process (the running `ttlp run`) wrote them
            saved = msgspec.json.decode(self._status_file.read_bytes())
        except (OSError, msgspec.DecodeError):
            return {}
        found = saved.get(key) if isinstance(saved, dict) else None
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    async def close(self) -> None:
        return None


def _replace(temporary: Path, target: Path, document: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary.write_bytes(document)
    temporary.replace(target)
