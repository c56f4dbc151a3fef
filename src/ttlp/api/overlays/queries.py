"""What an overlay shows when it opens (``GET /overlay/state``): the streamer's session, its top
gifters, a goal's progress, the latest chat lines or ticker events.

Counted as analytics counts (``ttlp.db.queries``): a gift streak once, at its end frame (a gift
that says nothing about streaks is a single gift; a frame the streak timeout already closed
counts for nobody); ``source = live`` events only unless the overlay is a preview, which counts
replays too (DESIGN §6); archived rows (retention) never.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, false, func, select, true
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.aio import as_utc
from ttlp.api.overlays.options import GoalMetric, Options
from ttlp.db.tables import events, sessions, streams, users

GOAL_EVENT_TYPES: Final = {"follows": "FOLLOW", "subscriptions": "SUBSCRIBE"}


@dataclass(frozen=True, slots=True)
class OverlaySession:
    id: str
    stream_id: str
    started_at: datetime
    live: bool
    """A live session still going (not a replay, not ended)."""


def _payload() -> Any:
    return events.c.event_data["payload"]


def counted_gift() -> ColumnElement[bool]:
    """GIFT rows that count: a streak's end frame, or a gift outside streaks."""
    payload = _payload()
    counted = func.coalesce(
        payload["streakEnd"].as_boolean(),
        ~func.coalesce(payload["streakActive"].as_boolean(), false()),
    )
    return (events.c.event_type == "GIFT") & (counted == true())


class OverlayQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def session(self, streamer: str, *, preview: bool) -> OverlaySession | None:
        """The streamer's session still going (the latest, if several), else the latest one;
        replay sessions only for a preview."""
        s = sessions.c
        handle = func.lower(func.coalesce(s.unique_id, streams.c.unique_id))
        query = (
            select(s.id, s.stream_id, s.type, s.created_at, s.ended_at)
            .select_from(sessions.outerjoin(streams, streams.c.id == s.stream_id))
            .where(handle == streamer.lower())
            .order_by(s.ended_at.is_(None).desc(), s.created_at.desc(), s.id.desc())
            .limit(1)
        )
        if not preview:
            query = query.where(s.type == "live")
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return OverlaySession(
            id=row.id,
            stream_id=row.stream_id,
            started_at=as_utc(row.created_at),
            live=row.type == "live" and row.ended_at is None,
        )

    def _scope(
        self, session: OverlaySession, *, whole_stream: bool, preview: bool
    ) -> list[ColumnElement[bool]]:
        e = events.c
        where: list[ColumnElement[bool]] = [e.archived_at.is_(None)]
        where.append(
            e.stream_id == session.stream_id if whole_stream else e.session_id == session.id
        )
        if not preview:
            where.append(e.source == "live")
        return where

    async def leaderboard(
        self, session: OverlaySession, options: Options, *, preview: bool
    ) -> list[dict[str, Any]]:
        """The top gifters by coins (``options.leaderboard``: its count, and this session or
        every session of its room); ``gifts`` counts gifts sent (a streak of 10 is 10)."""
        e = events.c
        scope = self._scope(
            session, whole_stream=options.leaderboard.scope == "stream", preview=preview
        )
        coins = func.sum(_payload()["coins"].as_integer())
        gifts = func.sum(func.coalesce(_payload()["giftCount"].as_integer(), 1))
        top = (
            select(e.user_id, coins.label("coins"), gifts.label("gifts"))
            .where(*scope, counted_gift())
            .group_by(e.user_id)
            .order_by(coins.desc(), e.user_id)
            .limit(options.leaderboard.count)
            .subquery()
        )
        u = users.c
        query = (
            select(top, u.unique_id, u.display_name, u.avatar_url)
            .select_from(top.outerjoin(users, u.user_id == top.c.user_id))
            .order_by(top.c.coins.desc(), top.c.user_id)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            {
                "userId": row.user_id,
                "uniqueId": row.unique_id,
                "displayName": row.display_name,
                "avatarUrl": row.avatar_url,
                "coins": int(row.coins or 0),
                "gifts": int(row.gifts or 0),
            }
            for row in rows
        ]

    async def goal(self, session: OverlaySession, metric: GoalMetric, *, preview: bool) -> int:
        """The session's total so far: likes given, coins gifted, follows, subscriptions."""
        e = events.c
        scope = self._scope(session, whole_stream=False, preview=preview)
        if metric == "likes":
            query = select(func.sum(_payload()["likeCount"].as_integer())).where(
                *scope, e.event_type == "LIKE"
            )
        elif metric == "coins":
            query = select(func.sum(_payload()["coins"].as_integer())).where(*scope, counted_gift())
        else:
            query = select(func.count()).where(*scope, e.event_type == GOAL_EVENT_TYPES[metric])
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one() or 0)

    async def recent(
        self, session: OverlaySession, types: Sequence[str], limit: int, *, preview: bool
    ) -> list[Any]:
        """The session's last ``limit`` events of ``types`` (UnifiedEvent documents), oldest
        first; a gift streak by its end frame only."""
        e = events.c
        wanted = [t for t in types if t != "GIFT"]
        kinds: ColumnElement[bool] = e.event_type.in_(wanted)
        if "GIFT" in types:
            kinds = kinds | counted_gift()
        query = (
            select(e.event_data)
            .where(*self._scope(session, whole_stream=False, preview=preview), kinds)
            .order_by(e.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).scalars().all()
        return list(reversed(rows))
