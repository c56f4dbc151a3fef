"""The rule engine's database access: rules, the streamer of a room, and ``actions_log``.

``actions_log`` has one row per (rule, event), UNIQUE, and that row is the exactly-once key:
whoever inserts it owns the execution; an insert that conflicts means the rule already ran (or
was skipped) for that event, on this replica or another, before or after a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.aio import as_utc
from ttlp.db import tables
from ttlp.db.engine import is_sqlite
from ttlp.db.handles import stream_handle

MAX_ERROR_CHARS: Final = 2000
MAX_RENDERED_CHARS: Final = 8192


@dataclass(frozen=True)
class Execution:
    """One ``actions_log`` row to write."""

    rule_id: int
    event_id: str
    session_id: str
    stream_id: str
    user_id: str
    action_type: str
    status: str  # success | failed | skipped
    reason: str | None = None
    rendered: str | None = None
    error: str | None = None
    duration_ms: int | None = None

    def values(self, now: datetime) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "event_id": self.event_id,
            "session_id": self.session_id,
            "stream_id": self.stream_id,
            "user_id": self.user_id,
            "action_type": self.action_type,
            "status": self.status,
            "reason": self.reason,
            "rendered": _cap(self.rendered, MAX_RENDERED_CHARS),
            "error": _cap(self.error, MAX_ERROR_CHARS),
            "duration_ms": self.duration_ms,
            "created_at": now,
        }


def _cap(text: str | None, limit: int) -> str | None:
    return text[:limit] if text is not None else None


class RulesStore:
    """Rules CRUD for the API, and what the engine reads and writes per event."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dialect = sqlite if is_sqlite(engine) else postgresql

    # -- rules -----------------------------------------------------------------------------------
    async def list_rules(self, scopes: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Rules in ``scopes`` (None = all), by id."""
        r = tables.rules
        query = select(r).order_by(r.c.id)
        if scopes is not None:
            query = query.where(r.c.scope.in_(list(scopes)))
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in (await conn.execute(query)).all()]

    async def enabled_rules(self) -> list[dict[str, Any]]:
        r = tables.rules
        query = select(r).where(r.c.enabled.is_(True)).order_by(r.c.priority.desc(), r.c.id)
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in (await conn.execute(query)).all()]

    async def get_rule(self, rule_id: int) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(tables.rules).where(tables.rules.c.id == rule_id))
            ).first()
        return dict(row._mapping) if row is not None else None

    async def create_rule(self, values: dict[str, Any], created_by: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        row = {**values, "created_by": created_by, "created_at": now, "updated_at": now}
        async with self.engine.begin() as conn:
            result = await conn.execute(
                insert(tables.rules).values(**row).returning(tables.rules.c.id)
            )
            rule_id = int(result.scalar_one())
        created = await self.get_rule(rule_id)
        assert created is not None
        return created

    async def update_rule(self, rule_id: int, values: dict[str, Any]) -> dict[str, Any] | None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(tables.rules)
                .where(tables.rules.c.id == rule_id)
                .values(**values, updated_at=datetime.now(UTC))
            )
        return await self.get_rule(rule_id)

    async def delete_rule(self, rule_id: int) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(tables.rules).where(tables.rules.c.id == rule_id))
        return bool(result.rowcount)

    # -- streams -----------------------------------------------------------------------------------
    async def stream_handle(self, stream_id: str) -> str | None:
        """The streamer handle of a room, when the store has seen its stream."""
        return await stream_handle(self.engine, stream_id)

    async def event(self, event_id: str) -> dict[str, Any] | None:
        """A stored UnifiedEvent by its eventId."""
        e = tables.events
        async with self.engine.connect() as conn:
            value = (
                await conn.execute(select(e.c.event_data).where(e.c.event_id == event_id))
            ).scalar_one_or_none()
        return dict(value) if isinstance(value, dict) else None

    # -- actions_log -------------------------------------------------------------------------------
    async def claim(self, execution: Execution) -> bool:
        """Insert the row (ON CONFLICT DO NOTHING); True when this call inserted it."""
        stmt = (
            self._dialect.insert(tables.actions_log)
            .values(**execution.values(datetime.now(UTC)))
            .on_conflict_do_nothing(index_elements=["rule_id", "event_id"])
            .returning(tables.actions_log.c.id)
        )
        async with self.engine.begin() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def record(self, executions: Sequence[Execution]) -> set[tuple[int, str]]:
        """Insert final rows (skips, log actions) in one transaction, leaving out those whose
        (rule, event) already has one; → the (rule id, event id) of the rows inserted."""
        inserted: set[tuple[int, str]] = set()
        if not executions:
            return inserted
        now = datetime.now(UTC)
        a = tables.actions_log
        # executemany: SQLAlchemy's "insertmanyvalues" batches the rows and keeps RETURNING.
        stmt = (
            self._dialect.insert(a)
            .on_conflict_do_nothing(index_elements=["rule_id", "event_id"])
            .returning(a.c.rule_id, a.c.event_id)
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(stmt, [e.values(now) for e in executions])
            inserted.update((int(r[0]), str(r[1])) for r in result.all())
        return inserted

    async def finish(self, execution: Execution) -> None:
        """Write the outcome of a claimed execution."""
        a = tables.actions_log
        async with self.engine.begin() as conn:
            await conn.execute(
                update(a)
                .where(a.c.rule_id == execution.rule_id, a.c.event_id == execution.event_id)
                .values(
                    status=execution.status,
                    reason=execution.reason,
                    rendered=_cap(execution.rendered, MAX_RENDERED_CHARS),
                    error=_cap(execution.error, MAX_ERROR_CHARS),
                    duration_ms=execution.duration_ms,
                )
            )

    async def last_success(self, rule_id: int, user_id: str | None = None) -> datetime | None:
        """When the rule last ran successfully (for ``user_id``, when given): cooldowns."""
        a = tables.actions_log
        query = select(func.max(a.c.created_at)).where(
            a.c.rule_id == rule_id, a.c.status == "success"
        )
        if user_id is not None:
            query = query.where(a.c.user_id == user_id)
        async with self.engine.connect() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return None if value is None else as_utc(value)

    async def executions(
        self, rule_id: int, *, limit: int, before: int | None = None
    ) -> list[dict[str, Any]]:
        """A rule's ``actions_log`` rows, newest first, with ids below ``before``."""
        a = tables.actions_log
        query = select(a).where(a.c.rule_id == rule_id).order_by(a.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(a.c.id < before)
        async with self.engine.connect() as conn:
            return [dict(row._mapping) for row in (await conn.execute(query)).all()]
