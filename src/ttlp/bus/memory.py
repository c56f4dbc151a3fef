"""The in-process bus: Redis Streams consumer-group semantics inside one asyncio process.

Used by the embedded default (`ttlp run` with no REDIS_URL), where all roles share one process.
It keeps what the roles rely on: ordered ids, groups with a last-delivered id, a pending entries
list per group with delivery counts and idle times, history reads, ack, claim of idle entries,
MAXLEN trimming (exact here) and blocking reads. Nothing survives the process: that is what the
database is for.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ttlp.bus.base import Entry, GroupInfo, parse_id
from ttlp.errors import BusError


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

    def __init__(self, maxlen: int = 100_000) -> None:
        self._maxlen = maxlen
        self._streams: dict[str, _Stream] = {}

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
        s = self._stream(stream)
        entry_id = self._add(s, fields)
        self._notify(s)
        return entry_id

    async def publish_many(self, stream: str, batch: Sequence[Mapping[str, str]]) -> list[str]:
        s = self._stream(stream)
        ids = [self._add(s, fields) for fields in batch]
        if ids:
            self._notify(s)
        return ids

    # -- groups ----------------------------------------------------------------------------
    async def ensure_group(self, stream: str, group: str, start: str = "0") -> None:
        s = self._stream(stream)
        if group not in s.groups:
            last = s.last_id if start == "$" else parse_id(start)
            s.groups[group] = _Group(last_delivered=last)

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
        return sum(1 for i in ids if g.pending.pop(parse_id(i), None) is not None)

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
        s = self._stream(stream)
        lo = (0, 0) if start == "-" else parse_id(start)
        hi = None if end == "+" else parse_id(end)
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
        s = self._stream(stream)
        deleted = 0
        for key in map(parse_id, ids):
            if s.entries.pop(key, None) is not None:
                s.keys.remove(key)  # O(n), but XDEL is an operator's command, not a hot path
                deleted += 1
        return deleted

    async def length(self, stream: str) -> int:
        s = self._streams.get(stream)
        return len(s.entries) if s else 0

    async def bounds(self, stream: str) -> tuple[str, str]:
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

    def lease(self, key: str, owner: str, ttl_ms: int) -> None:
        """One process holds every streamer: no lease to take."""
        return None

    async def close(self) -> None:
        return None
