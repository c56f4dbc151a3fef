"""The forwarder's tables: targets, and the durable delivery queue (``forward_deliveries``).

A delivery row is written (``pending``, due now) before the event is acked on ``ttlc:events``,
so nothing is lost between the stream and the HTTP call. Workers *claim* due rows by pushing
their ``next_attempt_at`` past a lease in one UPDATE … RETURNING, so two forward replicas never
send the same row at once, and a replica that dies mid-delivery leaves rows that come due
again when the lease ends. A row ends ``delivered`` or ``dead``; ``attempts`` counts the
attempts made.

A paused target (``enabled`` false) gets no new rows, and its worker claims none of its pending
ones until it is resumed (``ttlp.forward.dispatcher``). ``deliveries`` pages a target's rows newest
first for the API; ``redeliver`` puts a finished row back in the queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from sqlalchemy import Integer, and_, case, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.aio import as_utc
from ttlp.db.tables import forward_deliveries as fd
from ttlp.db.tables import forward_targets as ft

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"
STATUSES: Final = (PENDING, DELIVERED, DEAD)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Target:
    id: int
    name: str
    url: str
    secret: str
    event_types: frozenset[str]
    scope: str
    enabled: bool
    streak_end_only: bool = False
    """Forward a gift streak once, its end frame (``ttlp.forward.dispatcher.counted_gift``)."""

    def matches(self, event_type: str, handle: str | None) -> bool:
        if self.event_types and event_type not in self.event_types:
            return False
        return self.scope == "*" or (handle is not None and handle.lower() == self.scope)


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    target_id: int
    event_id: str
    event_data: str
    attempts: int


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One row of ``forward_deliveries`` as the API lists it (the event as JSON text)."""

    id: int
    target_id: int
    event_id: str
    event_data: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime


Redelivery = Literal["queued", "pending", "missing"]
"""What ``ForwardStore.redeliver`` did: queued again; already pending (left alone); no such row."""


@dataclass(frozen=True, slots=True)
class TargetCounts:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    pending: int = 0


def target_from_row(row: Any) -> Target:
    return Target(
        id=int(row.id),
        name=row.name,
        url=row.url,
        secret=row.secret,
        event_types=frozenset(row.event_types or ()),
        scope=row.scope.lower(),
        enabled=bool(row.enabled),
        streak_end_only=bool(row.streak_end_only),
    )


class ForwardStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    # -- targets -----------------------------------------------------------------------------
    async def targets(self) -> list[Target]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(ft).order_by(ft.c.id))).all()
        return [target_from_row(r) for r in rows]

    async def target_rows(self, created_by_scopes: Sequence[str] | None = None) -> list[Any]:
        """Target rows (all columns), optionally only those whose scope is in the list."""
        query = select(ft).order_by(ft.c.id)
        if created_by_scopes is not None:
            query = query.where(func.lower(ft.c.scope).in_([s.lower() for s in created_by_scopes]))
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def target_row(self, target_id: int) -> Any | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(ft).where(ft.c.id == target_id))).first()

    async def create_target(self, values: dict[str, Any]) -> Any:
        now = utcnow()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                insert(ft).values(**values, created_at=now, updated_at=now).returning(ft)
            )
            return result.one()

    async def update_target(self, target_id: int, values: dict[str, Any]) -> Any | None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(ft)
                .where(ft.c.id == target_id)
                .values(**values, updated_at=utcnow())
                .returning(ft)
            )
            return result.first()

    async def set_enabled(self, target_id: int, enabled: bool) -> Any | None:
        """Pause (``False``) or resume a target; its row, or None when it does not exist."""
        return await self.update_target(target_id, {"enabled": enabled})

    async def delete_target(self, target_id: int) -> bool:
        """Delete a target and its delivery rows (pending ones are dropped)."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(fd).where(fd.c.target_id == target_id))
            result = await conn.execute(delete(ft).where(ft.c.id == target_id))
            return bool(result.rowcount)

    async def counts(self, target_ids: Iterable[int] | None = None) -> dict[int, TargetCounts]:
        """Per target: delivered, retried (failed attempts followed by another), dead, pending."""
        retried = func.sum(
            case(
                (fd.c.status == PENDING, fd.c.attempts),
                else_=func.max(fd.c.attempts - 1, 0)
                if self.engine.dialect.name == "sqlite"
                else func.greatest(fd.c.attempts - 1, 0),
            )
        )
        query = select(
            fd.c.target_id,
            func.sum(case((fd.c.status == DELIVERED, 1), else_=0)).cast(Integer),
            retried.cast(Integer),
            func.sum(case((fd.c.status == DEAD, 1), else_=0)).cast(Integer),
            func.sum(case((fd.c.status == PENDING, 1), else_=0)).cast(Integer),
        ).group_by(fd.c.target_id)
        if target_ids is not None:
            query = query.where(fd.c.target_id.in_(list(target_ids)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {
            int(r[0]): TargetCounts(int(r[1] or 0), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0))
            for r in rows
        }

    # -- one target's deliveries (the API) ---------------------------------------------------
    async def deliveries(
        self,
        target_id: int,
        *,
        status: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[DeliveryRow]:
        """A target's deliveries, newest first (by id), optionally of one status; ``before``
        continues from the last id of the previous page."""
        query = select(fd).where(fd.c.target_id == target_id)
        if status is not None:
            query = query.where(fd.c.status == status)
        if before is not None:
            query = query.where(fd.c.id < before)
        query = query.order_by(fd.c.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_delivery_row(r) for r in rows]

    async def delivery(self, target_id: int, delivery_id: int) -> DeliveryRow | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(fd).where(fd.c.id == delivery_id, fd.c.target_id == target_id)
                )
            ).first()
        return _delivery_row(row) if row is not None else None

    async def redeliver(self, target_id: int, delivery_id: int) -> Redelivery:
        """A delivered or dead row pending again: attempts reset, due now (the target's worker
        takes it within a poll). A pending row is left alone (it is queued already)."""
        now = utcnow()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(fd)
                .where(
                    fd.c.id == delivery_id,
                    fd.c.target_id == target_id,
                    fd.c.status != PENDING,
                )
                .values(
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    last_error=None,
                    updated_at=now,
                )
            )
            if result.rowcount:
                return "queued"
            found = await conn.scalar(
                select(fd.c.status).where(fd.c.id == delivery_id, fd.c.target_id == target_id)
            )
        return "missing" if found is None else "pending"

    # -- the delivery queue ------------------------------------------------------------------
    async def enqueue(self, rows: Sequence[tuple[int, str, str]]) -> int:
        """Add pending deliveries ``(target_id, event_id, event_json)``, due now; a row that
        already exists (the event was delivered to the stream twice) is left alone."""
        if not rows:
            return 0
        now = utcnow()
        values = [
            {
                "target_id": t,
                "event_id": e,
                "event_data": data,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for t, e, data in rows
        ]
        stmt = self._insert(fd).on_conflict_do_nothing(index_elements=["target_id", "event_id"])
        async with self.engine.begin() as conn:
            result = await conn.execute(stmt, values)
        return max(int(result.rowcount or 0), 0)

    async def claim(self, target_id: int, limit: int, lease_until: datetime) -> list[Delivery]:
        """Take up to ``limit`` due pending rows of a target, oldest due first, pushing their
        ``next_attempt_at`` to ``lease_until`` so no other worker takes them meanwhile."""
        now = utcnow()
        due = (
            select(fd.c.id)
            .where(fd.c.target_id == target_id, fd.c.status == PENDING, fd.c.next_attempt_at <= now)
            .order_by(fd.c.next_attempt_at, fd.c.id)
            .limit(limit)
        )
        if self.engine.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        stmt = (
            update(fd)
            .where(fd.c.id.in_(due.scalar_subquery()), fd.c.status == PENDING)
            .values(next_attempt_at=lease_until)
            .returning(fd.c.id, fd.c.event_id, fd.c.event_data, fd.c.attempts)
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return sorted(
            (Delivery(int(r[0]), target_id, r[1], r[2], int(r[3])) for r in rows),
            key=lambda d: d.id,
        )

    async def next_due(self, target_id: int) -> datetime | None:
        async with self.engine.connect() as conn:
            value = await conn.scalar(
                select(func.min(fd.c.next_attempt_at)).where(
                    fd.c.target_id == target_id, fd.c.status == PENDING
                )
            )
        return as_utc(value) if value is not None else None

    async def release(self, ids: Sequence[int]) -> None:
        """Give claimed rows back (due now): a worker stopping with rows it did not send."""
        if not ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                update(fd)
                .where(fd.c.id.in_(list(ids)), fd.c.status == PENDING)
                .values(next_attempt_at=utcnow())
            )

    async def mark_delivered(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                update(fd)
                .where(fd.c.id.in_(list(ids)))
                .values(
                    status=DELIVERED,
                    attempts=fd.c.attempts + 1,
                    last_error=None,
                    updated_at=utcnow(),
                )
            )

    async def mark_retry(self, delivery_id: int, next_at: datetime, error: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(fd)
                .where(fd.c.id == delivery_id)
                .values(
                    attempts=fd.c.attempts + 1,
                    next_attempt_at=next_at,
                    last_error=error,
                    updated_at=utcnow(),
                )
            )

    async def mark_dead(self, delivery_id: int, error: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(fd)
                .where(fd.c.id == delivery_id)
                .values(
                    status=DEAD,
                    attempts=fd.c.attempts + 1,
                    last_error=error,
                    updated_at=utcnow(),
                )
            )

    async def reset(self, target_id: int, event_id: str, event_data: str) -> bool:
        """``ttlp dlq retry``: the delivery is pending again with no attempts, due now (the row
        is recreated when it was removed). False when the target no longer exists."""
        now = utcnow()
        async with self.engine.begin() as conn:
            if await conn.scalar(select(ft.c.id).where(ft.c.id == target_id)) is None:
                return False
            result = await conn.execute(
                update(fd)
                .where(and_(fd.c.target_id == target_id, fd.c.event_id == event_id))
                .values(
                    status=PENDING, attempts=0, next_attempt_at=now, last_error=None, updated_at=now
                )
            )
            if not result.rowcount:
                await conn.execute(
                    insert(fd).values(
                        target_id=target_id,
                        event_id=event_id,
                        event_data=event_data,
                        status=PENDING,
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
        return True


def _delivery_row(r: Any) -> DeliveryRow:
    return DeliveryRow(
        id=int(r.id),
        target_id=int(r.target_id),
        event_id=r.event_id,
        event_data=r.event_data,
        status=r.status,
        attempts=int(r.attempts),
        next_attempt_at=as_utc(r.next_attempt_at),
        last_error=r.last_error,
        created_at=as_utc(r.created_at),
        updated_at=as_utc(r.updated_at),
    )
