"""``ttlc:dlq`` of the embedded default, kept in the database (table ``dead_letters``).

The in-process bus lives and dies with its process; dead letters must not (DESIGN §3: bad input
loses nothing). So on the embedded default the bus keeps its dead-letter stream here
(``MemoryBus.keep``): the consume loops write letters through the bus as on Redis, each batch
in one transaction, and the letters survive a restart; ``ttlp dlq`` in another process opens
the same table and lists, shows and purges them directly. A retry asked from another process
marks the row (``move_to``/``move_fields``) and the running ttlp's bus publishes it to the
stream it came from (``MemoryBus.relay``), promptly or at its next start.

Capped like a stream (MAXLEN): past ``maxlen`` letters the oldest are deleted, with a warning.
Fields are stored as JSON with every non-ASCII character escaped, so any string the bus holds
(bytes that are not UTF-8 are surrogate-escaped there) comes back unchanged.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from loguru import logger
from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.bus.base import Entry, parse_id
from ttlp.bus.memory import MOVING_FIELD
from ttlp.db.tables import dead_letters as dl

DELETE_CHUNK: Final = 400
"""Ids per DELETE statement (two bound parameters each; SQLite allows 32,766)."""

Key = tuple[int, int]


def _fmt(key: Key) -> str:
    return f"{key[0]}-{key[1]}"


def _dump(fields: Mapping[str, str]) -> str:
    return json.dumps(dict(fields), ensure_ascii=True, separators=(",", ":"))


def _load(text: str) -> dict[str, str]:
    loaded: dict[str, str] = json.loads(text)
    return loaded


def _is(key: Key) -> ColumnElement[bool]:
    return and_(dl.c.ms == key[0], dl.c.seq == key[1])


def _after(key: Key, *, inclusive: bool) -> ColumnElement[bool]:
    """Ids greater than ``key`` (or equal, ``inclusive``); portable row-value comparison."""
    seq = dl.c.seq >= key[1] if inclusive else dl.c.seq > key[1]
    return or_(dl.c.ms > key[0], and_(dl.c.ms == key[0], seq))


def _before(key: Key, *, inclusive: bool) -> ColumnElement[bool]:
    seq = dl.c.seq <= key[1] if inclusive else dl.c.seq < key[1]
    return or_(dl.c.ms < key[0], and_(dl.c.ms == key[0], seq))


class LetterTable:
    """A ``ttlp.bus.memory.DurableStream`` over the ``dead_letters`` table."""

    def __init__(self, engine: AsyncEngine, maxlen: int) -> None:
        self.engine = engine
        self.maxlen = maxlen
        self._last: dict[str, Key] = {}
        self._lock = asyncio.Lock()
        self.log = logger.bind(role="bus")

    async def add(self, stream: str, batch: Sequence[Mapping[str, str]]) -> list[str]:
        if not batch:
            return []
        # One writer process per table (the one running the pipeline); the lock keeps its
        # concurrent consume loops from handing out one id twice.
        async with self._lock:
            last = self._last.get(stream)
            if last is None:
                last = await self._max_id(stream)
            rows: list[dict[str, Any]] = []
            for fields in batch:
                ms = int(time.time() * 1000)
                last = (ms, 0) if ms > last[0] else (last[0], last[1] + 1)
                rows.append(
                    {"stream": stream, "ms": last[0], "seq": last[1], "fields": _dump(fields)}
                )
            async with self.engine.begin() as conn:
                await conn.execute(insert(dl), rows)
                dropped = await self._trim(conn, stream)
            self._last[stream] = last
        if dropped:
            self.log.warning(
                "dead-letter table full: the oldest letters were deleted",
                stream=stream,
                deleted=dropped,
                maxlen=self.maxlen,
            )
        return [f"{row['ms']}-{row['seq']}" for row in rows]

    async def _max_id(self, stream: str) -> Key:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(dl.c.ms, dl.c.seq)
                    .where(dl.c.stream == stream)
                    .order_by(dl.c.ms.desc(), dl.c.seq.desc())
                    .limit(1)
                )
            ).first()
        return (int(row.ms), int(row.seq)) if row is not None else (0, 0)

    async def _trim(self, conn: Any, stream: str) -> int:
        """Delete what is older than the newest ``maxlen`` letters; return how many."""
        cutoff = (
            await conn.execute(
                select(dl.c.ms, dl.c.seq)
                .where(dl.c.stream == stream)
                .order_by(dl.c.ms.desc(), dl.c.seq.desc())
                .offset(self.maxlen)
                .limit(1)
            )
        ).first()
        if cutoff is None:
            return 0
        result = await conn.execute(
            delete(dl).where(
                dl.c.stream == stream, _before((cutoff.ms, cutoff.seq), inclusive=True)
            )
        )
        return int(result.rowcount or 0)

    async def select(
        self,
        stream: str,
        *,
        low: Key | None,
        high: Key | None,
        high_inclusive: bool,
        newest_first: bool,
        count: int | None,
    ) -> list[Entry]:
        query = select(dl.c.ms, dl.c.seq, dl.c.fields, dl.c.move_to).where(dl.c.stream == stream)
        if low is not None:
            query = query.where(_after(low, inclusive=True))
        if high is not None:
            query = query.where(_before(high, inclusive=high_inclusive))
        if newest_first:
            query = query.order_by(dl.c.ms.desc(), dl.c.seq.desc())
        else:
            query = query.order_by(dl.c.ms, dl.c.seq)
        if count is not None:
            query = query.limit(count)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        out = []
        for row in rows:
            fields = _load(row.fields)
            if row.move_to is not None:
                fields[MOVING_FIELD] = row.move_to
            out.append(Entry(_fmt((row.ms, row.seq)), fields))
        return out

    async def delete(self, stream: str, ids: Sequence[str]) -> int:
        keys = [parse_id(i) for i in ids]
        deleted = 0
        async with self.engine.begin() as conn:
            for start in range(0, len(keys), DELETE_CHUNK):
                chunk = keys[start : start + DELETE_CHUNK]
                result = await conn.execute(
                    delete(dl).where(dl.c.stream == stream, or_(*(_is(k) for k in chunk)))
                )
                deleted += int(result.rowcount or 0)
        return deleted

    async def length(self, stream: str) -> int:
        async with self.engine.connect() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(dl).where(dl.c.stream == stream)
            )
        return int(count or 0)

    async def bounds(self, stream: str) -> tuple[str, str]:
        ends = [
            await self.select(
                stream, low=None, high=None, high_inclusive=True, newest_first=newest, count=1
            )
            for newest in (False, True)
        ]
        if not ends[0] or not ends[1]:
            return "0-0", "0-0"
        return ends[0][0].id, ends[1][0].id

    async def request_move(
        self, stream: str, entry_id: str, to: str, fields: Mapping[str, str]
    ) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(dl)
                .where(dl.c.stream == stream, _is(parse_id(entry_id)))
                .values(move_to=to, move_fields=_dump(fields))
            )
        return bool(result.rowcount)

    async def requested_moves(
        self, stream: str, count: int
    ) -> list[tuple[str, str, dict[str, str]]]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(dl.c.ms, dl.c.seq, dl.c.move_to, dl.c.move_fields)
                    .where(dl.c.stream == stream, dl.c.move_to.is_not(None))
                    .order_by(dl.c.ms, dl.c.seq)
                    .limit(count)
                )
            ).all()
        return [
            (_fmt((row.ms, row.seq)), str(row.move_to), _load(row.move_fields or "{}"))
            for row in rows
        ]
