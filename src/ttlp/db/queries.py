"""Read queries for the API: history with keyset pagination, streams, sessions, users, notes,
analytics. SQLAlchemy Core, one text for PostgreSQL and SQLite (the few dialect differences,
time buckets and case-insensitive search, are in small helpers).

Keyset pagination walks ``events.id`` (arrival order): a page is ``WHERE id > :after ORDER BY
id LIMIT n`` (or ``<`` and descending), so pages stay complete and without repeats while new
events are inserted, and every page costs the same on a table of any size (the
``(session_id, id)`` / ``(stream_id, id)`` / ``(user_id, id)`` indexes). A cursor carries its
order and a fingerprint of the listing's filters: it pages only the listing it came from.

Chat search is case-insensitive beyond ASCII on both backends: PostgreSQL's ILIKE folds case
by the database's ctype; SQLite's LIKE folds ASCII only, so a search with other letters goes
through ``ttlp_lower`` (Python's ``str.lower``), registered on each SQLite connection.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    and_,
    case,
    cast,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.aio import as_utc, to_iso
from ttlp.db.engine import is_sqlite
from ttlp.db.tables import events, sessions, streams, user_notes, users
from ttlp.errors import InputError

MAX_PAGE: Final = 500
DEFAULT_PAGE: Final = 100
TOP_N: Final = 10
SYSTEM_USER: Final = "0"
LIFECYCLE_TYPES: Final = ("CONNECTED", "DISCONNECTED", "ERROR")
MIN_GAP_S: Final = 1.0
"""Shorter interruptions are not reported as gaps (a reconnect at once takes about a second)."""
GAP_TAIL: Final = 50
"""Events read back from a session's end to find its last TikTok message and DISCONNECTED."""
PAUSED_FOR: Final = re.compile(r"paused for ([0-9]+(?:\.[0-9]+)?) s")
"""The pause in an INGEST_PAUSED error (``ttlp.tiktok.providers.base.Session._publish``)."""
SHOWN: Final = events.c.archived_at.is_(None)
"""Events retention has archived (``ttlp.db.retention``) are hidden from every view: every
read of ``events`` below carries this condition."""

LIVE: Final = events.c.source == "live"
"""Events of a live connection, not replayed copies: what every count over a stream, a
streamer or a user rests on (a replay would count the same messages twice)."""

_PAYLOAD: Final = events.c.event_data["payload"]
COINS: Final = _PAYLOAD["coins"].as_integer()
COUNTED_GIFT: Final = and_(
    events.c.event_type == "GIFT",
    func.coalesce(
        _PAYLOAD["streakEnd"].as_boolean(),
        ~func.coalesce(_PAYLOAD["streakActive"].as_boolean(), false()),
    )
    == true(),
)
"""A gift as counted: a streak counts once, at its end frame (which carries the streak's
total); a gift that says nothing about streaks is a single gift (as a non-streakable one,
whose frame is its own end)."""
VIEWERS: Final = _PAYLOAD["viewerCount"].as_integer()
FIGURE_TYPES: Final = ("GIFT", "FOLLOW", "SUBSCRIBE", "ROOM_USER")
"""The event types a session summary reads payloads of (the others are only counted: by the
``(session_id, event_type, id)`` index, without reading their JSON)."""

Order = Literal["asc", "desc"]

# -- fans (GET /streams/{stream}/fans) ---------------------------------------------------------
LIKES: Final = _PAYLOAD["likeCount"].as_integer()
FanSort = Literal["coins", "gifts", "messages", "likes", "sessions", "firstSeen", "lastSeen"]
FAN_SORTS: Final[dict[str, str]] = {
    "coins": "coins",
    "gifts": "gifts",
    "messages": "messages",
    "likes": "likes",
    "sessions": "sessions",
    "firstSeen": "first_seen",
    "lastSeen": "last_seen",
}
"""A fans listing's sort keys (as the API names them) → the aggregate's columns."""


class CursorError(InputError):
    """A cursor that this API did not hand out, or one of another listing or sort order."""


NOT_OURS: Final = "cursor is not one this API returned: start again without it"
MAX_ROW_ID: Final = 2**63 - 1
"""Ids are BIGINT: a cursor naming a larger one is not ours (PostgreSQL would refuse it)."""


def encode_cursor(row_id: int, order: Order, fingerprint: str = "") -> str:
    text = f"v1:{order}:{row_id}:{fingerprint}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, order: Order, fingerprint: str = "") -> int:
    """The row id a page continues after; ``CursorError`` saying why a cursor does not fit."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, cursor_order, row_id, cursor_fingerprint = text.split(":")
        value = int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CursorError(NOT_OURS) from None
    if version != "v1" or not 0 <= value <= MAX_ROW_ID or cursor_order not in ("asc", "desc"):
        raise CursorError(NOT_OURS)
    if cursor_order != order:
        raise CursorError(f"cursor was made for order={cursor_order}, not order={order}")
    if cursor_fingerprint != fingerprint:
        raise CursorError(
            "cursor belongs to another listing (another session, stream or filters): "
            "start again without it"
        )
    return value


@dataclass(frozen=True)
class EventFilter:
    """What a history page may be narrowed to (all optional, combined with AND)."""

    session_id: str | None = None
    stream_ids: Sequence[str] | None = None
    """Rooms to include (a streamer's broadcasts); None = any."""
    types: Sequence[str] = ()
    user_id: str | None = None
    text: str | None = None
    """Case-insensitive substring of a chat message (CHAT events only)."""
    since: datetime | None = None
    until: datetime | None = None
    live_only: bool = False
    """Live events only (``source = 'live'``): replayed copies left out."""
    subject: str | None = None
    """What the listing is of, as the caller named it (``stream:@luna.beats``): with the
    filters, what a cursor is bound to. Defaults to ``stream_ids``; give it when those are
    derived (a streamer's rooms, an account's scope) and may grow while someone pages."""

    def fingerprint(self) -> str:
        """A short digest of the listing: equal filters, equal fingerprint."""
        subject = self.subject
        if subject is None:
            subject = "*" if self.stream_ids is None else ",".join(sorted(self.stream_ids))
        parts: tuple[str, ...] = (
            subject,
            self.session_id or "",
            ",".join(sorted(self.types)),
            self.user_id or "",
            self.text or "",
            as_utc(self.since).isoformat() if self.since else "",
            as_utc(self.until).isoformat() if self.until else "",
        )
        if self.live_only:  # appended, so the cursors of listings without it stay valid
            parts = (*parts, "live")
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


@dataclass
class Page:
    items: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None


@dataclass
class FanPage(Page):
    total: int = 0
    """Fans in the whole listing (every page), for "1,234 fans"."""


class Queries:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sqlite = is_sqlite(engine)
        if self.sqlite and not sa_event.contains(
            engine.sync_engine, "checkout", _register_sqlite_functions
        ):
            sa_event.listen(engine.sync_engine, "checkout", _register_sqlite_functions)

    # -- history -------------------------------------------------------------------------------
    async def events_page(
        self, where: EventFilter, *, limit: int, cursor: str | None, order: Order = "asc"
    ) -> Page:
        limit = max(1, min(limit, MAX_PAGE))
        query = select(events.c.id, events.c.event_data).where(*self._conditions(where))
        fingerprint = where.fingerprint()
        if cursor is not None:
            after = decode_cursor(cursor, order, fingerprint)
            query = query.where(events.c.id > after if order == "asc" else events.c.id < after)
        query = query.order_by(events.c.id.asc() if order == "asc" else events.c.id.desc())
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.limit(limit + 1))).all()
        page = Page(items=[row.event_data for row in rows[:limit]])
        if len(rows) > limit:
            page.next_cursor = encode_cursor(rows[limit - 1].id, order, fingerprint)
        return page

    def _conditions(self, where: EventFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = [SHOWN]
        if where.session_id is not None:
            conditions.append(events.c.session_id == where.session_id)
        if where.stream_ids is not None:
            conditions.append(events.c.stream_id.in_(list(where.stream_ids)))
        if where.types:
            conditions.append(events.c.event_type.in_(list(where.types)))
        if where.user_id is not None:
            conditions.append(events.c.user_id == where.user_id)
        if where.live_only:
            conditions.append(LIVE)
        if where.since is not None:
            conditions.append(events.c.timestamp >= as_utc(where.since))
        if where.until is not None:
            conditions.append(events.c.timestamp < as_utc(where.until))
        if where.text:
            message = events.c.event_data["payload"]["message"].as_string()
            conditions.append(events.c.event_type == "CHAT")
            conditions.append(self._contains(message, where.text))
        return conditions

    def _contains(self, column: ColumnElement[str], text: str) -> ColumnElement[bool]:
        """``text`` anywhere in ``column``, ignoring case (LIKE wildcards are literal)."""
        if self.sqlite and not text.isascii():
            # SQLite's LIKE folds ASCII only: fold both sides in Python (slower, so only then).
            return func.instr(func.ttlp_lower(column), text.lower()) > 0
        pattern = "%" + _escape_like(text) + "%"
        if self.sqlite:
            return column.like(pattern, escape="\\")  # SQLite's LIKE ignores ASCII case
        return column.ilike(pattern, escape="\\")

    # -- streams and sessions ------------------------------------------------------------------
    async def stream(self, stream_id: str) -> dict[str, Any] | None:
        return await self._one(select(streams).where(streams.c.id == stream_id))

    async def rooms_of(self, unique_id: str) -> list[str]:
        """Every room (broadcast) of a streamer, by handle."""
        query = select(streams.c.id).where(func.lower(streams.c.unique_id) == unique_id.lower())
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def list_streams(
        self, scopes: Sequence[str] | None, *, limit: int
    ) -> list[dict[str, Any]]:
        """Most recent first; ``scopes`` = handles the caller may see (None = all)."""
        query = select(streams)
        if scopes is not None:
            query = query.where(func.lower(streams.c.unique_id).in_([s.lower() for s in scopes]))
        query = query.order_by(streams.c.started_at.desc().nulls_last(), streams.c.id.desc())
        return await self._all(query.limit(limit))

    async def session(self, session_id: str) -> dict[str, Any] | None:
        query = (
            select(sessions, streams.c.unique_id.label("stream_unique_id"))
            .outerjoin(streams, streams.c.id == sessions.c.stream_id)
            .where(sessions.c.id == session_id)
        )
        return await self._one(query)

    async def list_sessions(
        self, *, stream_ids: Sequence[str] | None, scopes: Sequence[str] | None, limit: int
    ) -> list[dict[str, Any]]:
        query = select(sessions, streams.c.unique_id.label("stream_unique_id")).outerjoin(
            streams, streams.c.id == sessions.c.stream_id
        )
        if stream_ids is not None:
            query = query.where(sessions.c.stream_id.in_(list(stream_ids)))
        if scopes is not None:
            handle = func.lower(func.coalesce(sessions.c.unique_id, streams.c.unique_id))
            query = query.where(handle.in_([s.lower() for s in scopes]))
        # The running session (a live one not ended) first, then newest first.
        running = case((and_(sessions.c.type == "live", sessions.c.ended_at.is_(None)), 0), else_=1)
        query = query.order_by(running, sessions.c.created_at.desc(), sessions.c.id)
        return await self._all(query.limit(limit))

    async def session_event_count(self, session_id: str) -> int:
        query = (
            select(func.count()).select_from(events).where(events.c.session_id == session_id, SHOWN)
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def session_gaps(self, session: dict[str, Any]) -> list[dict[str, Any]]:
        """The times a live session's streamer was live but ttlp was not connected (README,
        "Gaps"): before this session (since the last TikTok message of the previous session
        of the same room), inside it (ingest paused by a bus outage) and after it (until the
        next session of the room connected). Oldest first; a replay has none."""
        if session.get("type") != "live":
            return []
        before = await self._neighbour_session(session, earlier=True)
        after = await self._neighbour_session(session, earlier=False)
        gaps = [
            gap
            for gap in (
                await self._gap_between(before, session) if before else None,
                *await self._paused_gaps(session["id"]),
                await self._gap_between(session, after) if after else None,
            )
            if gap is not None
        ]
        return sorted(gaps, key=lambda g: g["start"])

    async def _neighbour_session(
        self, session: dict[str, Any], *, earlier: bool
    ) -> dict[str, Any] | None:
        c = sessions.c
        at = session["created_at"]
        query = select(sessions).where(
            c.stream_id == session["stream_id"], c.type == "live", c.id != session["id"]
        )
        if earlier:
            query = query.where(c.created_at <= at).order_by(c.created_at.desc(), c.id.desc())
        else:
            query = query.where(c.created_at >= at).order_by(c.created_at, c.id)
        return await self._one(query.limit(1))

    async def _gap_between(
        self, first: dict[str, Any], then: dict[str, Any]
    ) -> dict[str, Any] | None:
        """From ``first``'s last TikTok message to ``then``'s connection; None when ``first``
        saw the stream end (the streamer was not live between them) or they overlap."""
        e = events.c
        last_of_first = (
            select(e.event_type, e.timestamp, e.event_data)
            .where(e.session_id == first["id"], SHOWN)
            .order_by(e.id.desc())
        )
        async with self.engine.connect() as conn:
            tail = (await conn.execute(last_of_first.limit(GAP_TAIL))).mappings().all()
            ended = (
                await conn.execute(
                    select(e.id)
                    .where(e.session_id == first["id"], e.event_type == "STREAM_END", SHOWN)
                    .limit(1)
                )
            ).first()
        if ended is not None:
            return None
        messages = [row for row in tail if row["event_type"] not in LIFECYCLE_TYPES]
        start = as_utc(messages[0]["timestamp"] if messages else first["ended_at"])
        start = start or as_utc(first["created_at"])
        end = as_utc(then["created_at"])
        if start is None or end is None or (end - start).total_seconds() < MIN_GAP_S:
            return None
        reason = next(
            (
                _payload(row["event_data"]).get("reason")
                for row in tail
                if row["event_type"] == "DISCONNECTED"
            ),
            None,
        )
        return _gap(
            start,
            end,
            reason or "the connection ended without a DISCONNECTED (ttlp stopped or crashed)",
        )

    async def _paused_gaps(self, session_id: str) -> list[dict[str, Any]]:
        """ERROR lifecycle events with code INGEST_PAUSED: the bus was away, the buffer full."""
        e = events.c
        query = (
            select(e.timestamp, e.event_data)
            .where(e.session_id == session_id, e.event_type == "ERROR", SHOWN)
            .order_by(e.id)
        )
        gaps = []
        for row in await self._all(query):
            payload = _payload(row["event_data"])
            if payload.get("code") != "INGEST_PAUSED":
                continue
            paused = PAUSED_FOR.search(str(payload.get("message", "")))
            end = as_utc(row["timestamp"])
            if paused is None or end is None:
                continue
            start = end - timedelta(seconds=float(paused.group(1)))
            if (end - start).total_seconds() >= MIN_GAP_S:
                gaps.append(_gap(start, end, str(payload.get("message"))))
        return gaps

    # -- users and notes -----------------------------------------------------------------------
    async def user(self, user_id: str) -> dict[str, Any] | None:
        return await self._one(select(users).where(users.c.user_id == user_id))

    async def user_by_handle(self, unique_id: str) -> dict[str, Any] | None:
        query = (
            select(users)
            .where(func.lower(users.c.unique_id) == unique_id.lower())
            .order_by(users.c.last_seen.desc())
        )
        return await self._one(query.limit(1))

    async def user_seen_in(self, user_id: str, stream_ids: Sequence[str]) -> bool:
        """Whether the user has any event (live or replayed) in one of these rooms."""
        query = select(events.c.id).where(
            events.c.user_id == user_id, events.c.stream_id.in_(list(stream_ids)), SHOWN
        )
        async with self.engine.connect() as conn:
            return (await conn.execute(query.limit(1))).first() is not None

    async def user_activity(self, user_id: str, stream_ids: Sequence[str]) -> dict[str, Any]:
        """``event_count``, ``first_seen``, ``last_seen`` of a user in these rooms, counted as
        the ``users`` row counts everywhere: live events only (DESIGN §6)."""
        query = select(
            func.count().label("event_count"),
            func.min(events.c.timestamp).label("first_seen"),
            func.max(events.c.timestamp).label("last_seen"),
        ).where(
            events.c.user_id == user_id,
            events.c.stream_id.in_(list(stream_ids)),
            events.c.source == "live",
            SHOWN,
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).one()
        return _row(row._mapping)

    async def user_streamers(self, user_id: str, scopes: Sequence[str] | None) -> list[str]:
        """The streamers (handles, lower case) in whose rooms the user has events, among
        ``scopes`` (None = any), sorted."""
        handle = func.lower(streams.c.unique_id)
        query = (
            select(handle)
            .distinct()
            .select_from(events.join(streams, streams.c.id == events.c.stream_id))
            .where(events.c.user_id == user_id, streams.c.unique_id.is_not(None), SHOWN)
        )
        if scopes is not None:
            query = query.where(handle.in_([s.lower() for s in scopes]))
        async with self.engine.connect() as conn:
            return sorted(str(h) for h in (await conn.execute(query)).scalars())

    async def add_note(self, user_id: str, author: str, body: str, streamer: str) -> dict[str, Any]:
        """A note on a TikTok user, written under ``streamer`` (whose readers alone see it)."""
        row = {
            "user_id": user_id,
            "author": author,
            "body": body,
            "streamer": streamer.lower(),
            "created_at": datetime.now(UTC),
        }
        async with self.engine.begin() as conn:
            result = await conn.execute(insert(user_notes).values(**row).returning(user_notes.c.id))
            row["id"] = result.scalar_one()
        return row

    async def notes(
        self, user_id: str, *, streamers: Sequence[str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first: the notes written under ``streamers`` (None = every note, those of no
        known streamer included)."""
        query = select(user_notes).where(user_notes.c.user_id == user_id)
        if streamers is not None:
            query = query.where(user_notes.c.streamer.in_([s.lower() for s in streamers]))
        return await self._all(query.order_by(user_notes.c.id.desc()).limit(limit))

    # -- analytics -----------------------------------------------------------------------------
    async def analytics(
        self,
        *,
        session_id: str | None,
        stream_ids: Sequence[str] | None,
        bucket_s: int,
        since: datetime | None,
        until: datetime | None,
    ) -> dict[str, Any]:
        """Events per type per bucket, coins per bucket (a streak counts once: its end frame
        carries the streak's total), top gifters and chatters, unique users, peak viewers.

        Over a room or a streamer, live events only (a replay leaves them unchanged); over one
        session, that session's events, so a replay session's own analytics still work."""
        scope = self._conditions(
            EventFilter(
                session_id=session_id,
                stream_ids=stream_ids,
                since=since,
                until=until,
                live_only=session_id is None,
            )
        )
        bucket = self._bucket(bucket_s).label("bucket")
        coins, counted_gift, viewers = COINS, COUNTED_GIFT, VIEWERS
        async with self.engine.connect() as conn:
            per_type = (
                await conn.execute(
                    select(bucket, events.c.event_type, func.count())
                    .where(*scope)
                    .group_by(bucket, events.c.event_type)
                    .order_by(bucket)
                )
            ).all()
            coin_rows = (
                await conn.execute(
                    select(bucket, func.sum(coins))
                    .where(*scope, counted_gift)
                    .group_by(bucket)
                    .order_by(bucket)
                )
            ).all()
            gifters = (
                await conn.execute(
                    select(events.c.user_id, func.sum(coins).label("coins"), func.count())
                    .where(*scope, counted_gift)
                    .group_by(events.c.user_id)
                    .order_by(func.sum(coins).desc(), events.c.user_id)
                    .limit(TOP_N)
                )
            ).all()
            chatters = (
                await conn.execute(
                    select(events.c.user_id, func.count().label("messages"))
                    .where(*scope, events.c.event_type == "CHAT")
                    .group_by(events.c.user_id)
                    .order_by(func.count().desc(), events.c.user_id)
                    .limit(TOP_N)
                )
            ).all()
            unique_users = (
                await conn.execute(
                    select(func.count(func.distinct(events.c.user_id))).where(
                        *scope, events.c.user_id != SYSTEM_USER
                    )
                )
            ).scalar_one()
            peak = (
                await conn.execute(
                    select(func.max(viewers)).where(*scope, events.c.event_type == "ROOM_USER")
                )
            ).scalar_one()
            ids = {row.user_id for row in (*gifters, *chatters)}
            people = {
                row.user_id: row
                for row in (
                    await conn.execute(
                        select(users.c.user_id, users.c.unique_id, users.c.display_name).where(
                            users.c.user_id.in_(list(ids))
                        )
                    )
                ).all()
            }

        buckets: dict[int, dict[str, Any]] = {}
        totals: dict[str, int] = {}
        for start, event_type, n in per_type:
            entry = buckets.setdefault(int(start), {"counts": {}, "coins": 0})
            entry["counts"][event_type] = int(n)
            totals[event_type] = totals.get(event_type, 0) + int(n)
        for start, total in coin_rows:
            buckets.setdefault(int(start), {"counts": {}, "coins": 0})["coins"] = int(total or 0)

        def who(user_id: str) -> dict[str, Any]:
            person = people.get(user_id)
            return {
                "userId": user_id,
                "uniqueId": person.unique_id if person else None,
                "displayName": person.display_name if person else None,
            }

        return {
            "bucketSeconds": bucket_s,
            "buckets": [
                {
                    "start": to_iso(datetime.fromtimestamp(start, UTC), precision="auto"),
                    **buckets[start],
                }
                for start in sorted(buckets)
            ],
            "totals": totals,
            "coins": sum(int(total or 0) for _, total in coin_rows),
            "topGifters": [
                {**who(r.user_id), "coins": int(r.coins or 0), "gifts": int(r[2])} for r in gifters
            ],
            "topChatters": [{**who(r.user_id), "messages": int(r.messages)} for r in chatters],
            "uniqueUsers": int(unique_users or 0),
            "peakViewers": int(peak) if peak is not None else None,
        }

    async def session_summary(self, session_id: str) -> dict[str, Any]:
        """What a session saw, in three aggregate queries over its events: counts per type,
        gift/follower/viewer figures in one pass, and the top gifters (by counted coins)."""
        e = events.c
        scope = (e.session_id == session_id, SHOWN)
        gift_user = case((COUNTED_GIFT, e.user_id))
        room_viewers = case((e.event_type == "ROOM_USER", VIEWERS))
        async with self.engine.connect() as conn:
            per_type = (
                await conn.execute(
                    select(e.event_type, func.count()).where(*scope).group_by(e.event_type)
                )
            ).all()
            figures = (
                await conn.execute(
                    select(
                        func.sum(case((COUNTED_GIFT, COINS))).label("coins"),
                        func.count(gift_user).label("gifts"),
                        func.count(func.distinct(gift_user)).label("gifters"),
                        func.count(
                            func.distinct(case((e.event_type == "FOLLOW", e.user_id)))
                        ).label("followers"),
                        # One subscription reaches us twice (the chat banner and SubNotify):
                        # a session counts subscribers, as it counts followers.
                        func.count(
                            func.distinct(case((e.event_type == "SUBSCRIBE", e.user_id)))
                        ).label("subscribers"),
                        func.max(room_viewers).label("peak"),
                        func.avg(room_viewers).label("average"),
                    ).where(*scope, e.event_type.in_(FIGURE_TYPES))
                )
            ).one()
            gifters = (
                await conn.execute(
                    select(
                        e.user_id,
                        func.sum(COINS).label("coins"),
                        func.count().label("gifts"),
                        users.c.unique_id,
                        users.c.display_name,
                    )
                    .outerjoin(users, users.c.user_id == e.user_id)
                    .where(*scope, COUNTED_GIFT)
                    .group_by(e.user_id, users.c.unique_id, users.c.display_name)
                    .order_by(func.sum(COINS).desc(), e.user_id)
                    .limit(TOP_N)
                )
            ).all()
        counts = {str(t): int(n) for t, n in per_type}
        return {
            "eventCount": sum(counts.values()),
            "eventsByType": dict(sorted(counts.items())),
            "coins": int(figures.coins or 0),
            "gifts": int(figures.gifts or 0),
            "uniqueGifters": int(figures.gifters or 0),
            "topGifters": [
                {
                    "userId": r.user_id,
                    "uniqueId": r.unique_id,
                    "displayName": r.display_name,
                    "coins": int(r.coins or 0),
                    "gifts": int(r.gifts),
                }
                for r in gifters
            ],
            "newFollowers": int(figures.followers or 0),
            "shares": counts.get("SHARE", 0),
            "subscriptions": int(figures.subscribers or 0),
            "chatMessages": counts.get("CHAT", 0),
            "peakViewers": int(figures.peak) if figures.peak is not None else None,
            "averageViewers": (
                round(float(figures.average), 1) if figures.average is not None else None
            ),
        }

    async def sessions_overview(self, session_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Per session (one grouped query): events, counted coins, unique gifters, peak
        viewers. For a list's columns; ``session_summary`` has the whole picture."""
        if not session_ids:
            return {}
        e = events.c
        scope = (e.session_id.in_(list(session_ids)), SHOWN)
        gift_user = case((COUNTED_GIFT, e.user_id))
        counts = select(e.session_id, func.count().label("events")).where(*scope)
        figures = select(
            e.session_id,
            func.sum(case((COUNTED_GIFT, COINS))).label("coins"),
            func.count(func.distinct(gift_user)).label("gifters"),
            func.max(case((e.event_type == "ROOM_USER", VIEWERS))).label("peak"),
        ).where(*scope, e.event_type.in_(("GIFT", "ROOM_USER")))
        async with self.engine.connect() as conn:
            totals = (await conn.execute(counts.group_by(e.session_id))).all()
            rows = {r.session_id: r for r in await conn.execute(figures.group_by(e.session_id))}
        out = {}
        for session_id, n in totals:
            r = rows.get(session_id)
            out[session_id] = {
                "eventCount": int(n),
                "coins": int(r.coins or 0) if r else 0,
                "uniqueGifters": int(r.gifters or 0) if r else 0,
                "peakViewers": int(r.peak) if r is not None and r.peak is not None else None,
            }
        return out

    def _bucket(self, seconds: int) -> ColumnElement[Any]:
        """Start of the ``seconds``-wide bucket of ``events.timestamp``, as epoch seconds."""
        width = literal(seconds, BigInteger)
        if self.sqlite:
            epoch = cast(func.strftime("%s", events.c.timestamp), BigInteger)
        else:
            epoch = cast(func.floor(func.extract("epoch", events.c.timestamp)), BigInteger)
        return (epoch // width) * width  # integer division on both

    # -- fans ----------------------------------------------------------------------------------
    async def fans(
        self,
        stream_ids: Sequence[str],
        *,
        streamer: str | None,
        subject: str,
        sort: FanSort = "coins",
        order: Order = "desc",
        text: str | None = None,
        limit: int | None = DEFAULT_PAGE,
        cursor: str | None = None,
    ) -> FanPage:
        """Every TikTok user with a live event in these rooms (a streamer's broadcasts), with
        their lifetime figures: counted coins and gifts (a streak once), chat messages, likes,
        sessions attended, first and last seen; follower, subscriber and moderator as their
        latest event says (follower and subscriber also when they followed or subscribed in
        any session); the notes written on them under ``streamer``.

        One grouped query over the rooms' live events (a replay leaves the figures unchanged),
        joined to ``users`` (handle, name), to each fan's latest event (flags) and to the
        notes counted per user. ``text``: a case-insensitive substring of the handle or the
        display name. Pages: ``limit`` rows (None: all, for a download) after ``cursor``, a
        position in the ranking bound to the listing (``subject``, sort, order, text).
        """
        e = events.c
        fans = (
            select(
                e.user_id.label("user_id"),
                func.coalesce(func.sum(case((COUNTED_GIFT, COINS))), 0).label("coins"),
                func.count(case((COUNTED_GIFT, e.id))).label("gifts"),
                func.count(case((e.event_type == "CHAT", e.id))).label("messages"),
                func.coalesce(func.sum(case((e.event_type == "LIKE", LIKES))), 0).label("likes"),
                func.count(func.distinct(e.session_id)).label("sessions"),
                func.min(e.timestamp).label("first_seen"),
                func.max(e.timestamp).label("last_seen"),
                func.max(case((e.event_type == "FOLLOW", 1), else_=0)).label("followed"),
                func.max(case((e.event_type == "SUBSCRIBE", 1), else_=0)).label("subscribed"),
                func.max(e.id).label("last_id"),
            )
            .where(e.stream_id.in_(list(stream_ids)), LIVE, SHOWN, e.user_id != SYSTEM_USER)
            .group_by(e.user_id)
            .subquery("fans")
        )
        latest = events.alias("fan_latest")
        person = latest.c.event_data["user"]
        handle = func.coalesce(users.c.unique_id, person["uniqueId"].as_string())
        display = func.coalesce(users.c.display_name, person["displayName"].as_string())
        joined = fans.outerjoin(users, users.c.user_id == fans.c.user_id).outerjoin(
            latest, latest.c.id == fans.c.last_id
        )
        notes: ColumnElement[Any] = literal(0)
        if streamer:
            per_user = (
                select(user_notes.c.user_id, func.count().label("n"))
                .where(user_notes.c.streamer == streamer.lower())
                .group_by(user_notes.c.user_id)
                .subquery("fan_notes")
            )
            joined = joined.outerjoin(per_user, per_user.c.user_id == fans.c.user_id)
            notes = func.coalesce(per_user.c.n, 0)
        key = fans.c[FAN_SORTS[sort]]
        query = (
            select(
                fans.c.user_id,
                handle.label("unique_id"),
                display.label("display_name"),
                fans.c.coins,
                fans.c.gifts,
                fans.c.messages,
                fans.c.likes,
                fans.c.sessions,
                fans.c.first_seen,
                fans.c.last_seen,
                fans.c.followed,
                fans.c.subscribed,
                person["followRole"].as_integer().label("follow_role"),
                person["isSubscriber"].as_boolean().label("is_subscriber"),
                person["isModerator"].as_boolean().label("is_moderator"),
                notes.label("notes"),
                func.count().over().label("total"),
            )
            .select_from(joined)
            .order_by(key.asc() if order == "asc" else key.desc(), fans.c.user_id)
        )
        if text:
            name = text.removeprefix("@") or text
            query = query.where(or_(self._contains(handle, name), self._contains(display, text)))
        fingerprint = hashlib.sha256(
            "\x1f".join(("fans", subject, sort, text or "")).encode()
        ).hexdigest()[:16]
        offset = decode_cursor(cursor, order, fingerprint) if cursor is not None else 0
        size = None if limit is None else max(1, min(limit, MAX_PAGE))
        if size is not None:
            query = query.limit(size + 1).offset(offset)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            if not rows and offset:  # a page past the end: the listing shrank meanwhile
                total = (
                    await conn.execute(select(func.count()).select_from(query.subquery()))
                ).scalar_one()
            else:
                total = rows[0].total if rows else 0
        shown = rows if size is None else rows[:size]
        page = FanPage(items=[_fan(row._mapping) for row in shown], total=int(total))
        if len(rows) > len(shown):
            page.next_cursor = encode_cursor(offset + len(shown), order, fingerprint)
        return page

    # -- helpers -------------------------------------------------------------------------------
    async def _one(self, query: Select[Any]) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _row(row._mapping) if row is not None else None

    async def _all(self, query: Select[Any]) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [_row(row._mapping) for row in (await conn.execute(query)).all()]


def _fan(mapping: Any) -> dict[str, Any]:
    """A fans row: figures as ints (PostgreSQL sums are numeric), flags as booleans."""
    row = _row(mapping)
    return {
        "user_id": row["user_id"],
        "unique_id": row["unique_id"],
        "display_name": row["display_name"],
        **{k: int(row[k] or 0) for k in ("coins", "gifts", "messages", "likes", "sessions")},
        "first_seen": row["first_seen"],
        "last_seen": row["last_seen"],
        "follower": bool(row["followed"]) or (row["follow_role"] or 0) >= 1,
        "subscriber": bool(row["subscribed"]) or bool(row["is_subscriber"]),
        "moderator": bool(row["is_moderator"]),
        "notes": int(row["notes"] or 0),
    }


def _row(mapping: Any) -> dict[str, Any]:
    """A row as a dict, its datetimes aware UTC whichever database gave them."""
    return {k: as_utc(v) if isinstance(v, datetime) else v for k, v in mapping.items()}


SQLITE_FUNCTIONS_KEY: Final = "ttlp_functions"


def _register_sqlite_functions(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Pool ``checkout``: give each SQLite connection (once) the functions the queries use.
    On checkout rather than connect, so connections opened before the API started have them.
    """
    if record.info.get(SQLITE_FUNCTIONS_KEY):
        return
    dbapi_connection.create_function("ttlp_lower", 1, _lower, deterministic=True)
    record.info[SQLITE_FUNCTIONS_KEY] = True


def _lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _payload(event_data: Any) -> dict[str, Any]:
    """An event row's ``payload`` (the Json column may come back as text on some drivers)."""
    data = json.loads(event_data) if isinstance(event_data, str | bytes) else event_data
    payload = data.get("payload") if isinstance(data, dict) else None
    return payload if isinstance(payload, dict) else {}


def _gap(start: datetime, end: datetime, reason: str) -> dict[str, Any]:
    return {"start": start, "end": end, "seconds": (end - start).total_seconds(), "reason": reason}
