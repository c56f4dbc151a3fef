"""The Bus interface: Redis Streams semantics, implemented by Redis and in-process backends.

Entry ids are Redis stream ids (``<ms>-<seq>``). Field values are strings. Every publish caps
its stream at ``maxlen`` (approximately on Redis, exactly in-process).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from ttlp.bus.lease import Lease


class Entry(NamedTuple):
    """One stream entry as a consumer sees it.

    ``fields`` is ``None`` when the entry was trimmed from the stream (MAXLEN) while it was
    still pending; ``deliveries`` counts how often the group has handed it out.
    """

    id: str
    fields: dict[str, str] | None
    deliveries: int = 1


class GroupInfo(NamedTuple):
    name: str
    consumers: int
    pending: int
    lag: int | None
    last_delivered_id: str


class Bus(Protocol):
    """What every role needs from the streams (DESIGN §3)."""

    @property
    def maxlen(self) -> int: ...

    async def ping(self) -> None:
        """Raise when the backend is unreachable."""

    async def set_status(self, key: str, field: str, value: str) -> None:
        """Record one process's report under ``key`` (a Redis hash field; in-process, a dict
        mirrored to a file so the CLI can read it): e.g. each watched streamer's ingest state."""

    async def statuses(self, key: str) -> dict[str, str]:
        """Every report recorded under ``key`` (field → value)."""

    async def publish(self, stream: str, fields: Mapping[str, str]) -> str:
        """XADD one entry (capped); return its id."""

    async def publish_many(self, stream: str, batch: Sequence[Mapping[str, str]]) -> list[str]:
        """XADD several entries in one round trip, in order; return their ids."""

    async def ensure_group(self, stream: str, group: str, start: str = "0") -> None:
        """Create ``group`` on ``stream`` (and the stream) if missing; idempotent."""

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
        """XREADGROUP: new entries (``>``), or with ``history`` this consumer's pending ones."""

    async def ack(self, stream: str, group: str, ids: Sequence[str]) -> int:
        """XACK; return how many were pending."""

    async def wait_for_ack(self, timeout_s: float) -> None:
        """Return once some group has acknowledged entries, or after ``timeout_s``: what a
        paced producer waits for (``ttlp.tiktok.publish``). Redis cannot tell us: it waits
        ``timeout_s``, and the producer looks again."""

    async def claim_idle(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, start: str, count: int
    ) -> tuple[str, list[Entry]]:
        """XAUTOCLAIM entries idle ≥ ``min_idle_ms``; return (next cursor, claimed entries)."""

    async def read(
        self, stream: str, *, after: str, count: int, block_ms: int | None
    ) -> list[Entry]:
        """Plain XREAD tail after ``after`` (``$`` for only new entries); no group involved."""

    async def range(
        self, stream: str, *, start: str = "-", end: str = "+", count: int | None = None
    ) -> list[Entry]:
        """XRANGE."""

    async def revrange(
        self, stream: str, *, end: str = "+", start: str = "-", count: int | None = None
    ) -> list[Entry]:
        """XREVRANGE: newest first. ``end`` may be exclusive, ``(id``, for the next page."""

    async def delete(self, stream: str, ids: Sequence[str]) -> int:
        """XDEL."""

    async def move(self, stream: str, entry_id: str, to: str, fields: Mapping[str, str]) -> bool:
        """XADD ``fields`` to ``to`` and XDEL ``entry_id`` from ``stream``, as one step (how a
        dead letter goes back where it failed). False when the move was only asked for: the
        in-process bus of another process (``ttlp dlq`` on the embedded default) leaves it to
        the process that runs the pipeline (``MemoryBus.relay``)."""

    async def length(self, stream: str) -> int:
        """XLEN (0 when the stream does not exist)."""

    async def bounds(self, stream: str) -> tuple[str, str]:
        """(first entry id, last id ever added); ``"0-0"`` for none. A tail that starts at the
        last id misses nothing published after it; an id older than the first was trimmed."""

    async def groups(self, stream: str) -> list[GroupInfo]:
        """XINFO GROUPS (empty when the stream does not exist)."""

    def lease(self, key: str, owner: str, ttl_ms: int) -> Lease | None:
        """A lease on ``key`` shared by every process on this bus (who holds a streamer), or
        None where the bus serves a single process and there is nobody to share with."""

    async def close(self) -> None: ...


def parse_id(entry_id: str) -> tuple[int, int]:
    """``"1700000000000-3"`` → ``(1700000000000, 3)``; ``"0"`` → ``(0, 0)``."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
