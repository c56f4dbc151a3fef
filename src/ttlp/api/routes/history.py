"""History: streams, sessions, their events, TikTok users and moderators' notes on them.

Every list of events is a keyset page (``limit`` ≤ 500, ``cursor`` from the previous page's
``nextCursor``), filterable by type, user, chat text and time range. What an account sees is
limited to its streamers (a room id out of scope is 403; a user with no event in scope, 404).
A VIEWER sees aggregates only: every listing of events (a stream's history, a session's events,
a user's) and a TikTok user's view carry handles, names or chat text, so they answer a VIEWER
403 (``VIEWER_REFUSED``), before any lookup; sessions, streams and a session's summary (top
gifters without identities) stay open to it.

A TikTok user seen by several streamers is shown to each as that streamer saw them: an
account not of scope ``*`` gets the event count and first/last seen of its own streamers'
rooms (live events, as the global counts). Notes are private to the streamer they were written
under: a note is written under one streamer of the author's scope (``streamer`` in the body,
or, without it, the one streamer of the author's scope in whose rooms the user was seen), and
read only by accounts whose scope has that streamer (or ``*``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import get, post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED

from ttlp.api.accounts import Account, Role
from ttlp.api.auth import current_account, ensure_scope, require
from ttlp.api.errors import Unprocessable
from ttlp.api.state import (
    HANDLE_RE,
    ROOM_ID_RE,
    Api,
    Req,
    iso,
    resolve_stream,
    scope_list,
    scoped_rooms,
)
from ttlp.contracts.events import EVENT_CLASSES
from ttlp.db.queries import DEFAULT_PAGE, MAX_PAGE, EventFilter, Page
from ttlp.errors import UnprocessableError

MAX_NOTE_CHARS = 4000
MAX_LIST = 500
MAX_NAMED = 10  # streamers an error message names at most
MIN_SPEED = 0.01  # ge, not gt=0: Litestar leaves falsy bounds out of the OpenAPI document
MAX_SPEED = 100.0
ROOM_OR_HANDLE = f"^({ROOM_ID_RE.pattern[1:-1]}|{HANDLE_RE.pattern[1:-1]})$"
"""A room id (digits) or a @handle (TikTok's characters): what ``resolve_stream`` accepts."""
USER_OR_HANDLE = ROOM_OR_HANDLE
"""A TikTok user id (digits, like a room id) or @handle."""


IDENTITIES = [require(Role.MODERATOR)]
"""The guard of what carries identities (handles, names, chat text): not for a VIEWER."""
VIEWER_REFUSED = "A VIEWER gets 403: it carries handles, names and chat text."


class EventPage(msgspec.Struct, rename="camel"):
    items: list[dict[str, Any]]
    next_cursor: str | None


class StreamOut(msgspec.Struct, rename="camel"):
    id: str
    unique_id: str | None
    title: str | None
    started_at: str | None
    ended_at: str | None


class SessionOut(msgspec.Struct, rename="camel"):
    id: str
    stream_id: str
    unique_id: str | None
    type: str
    provider: str | None
    created_at: str | None
    ended_at: str | None
    replayed_from: str | None
    event_count: int | None = None
    interrupted: bool = False
    """The connection ended without a DISCONNECTED (ttlp crashed or was killed): closed at
    ttlp's next start, at its last event."""
    complete: bool | None = None
    """One session's page only: whether ttlp was connected all the while the streamer was
    live around and during it (no ``gaps``)."""
    gaps: list[GapOut] | None = None
    live: bool = False
    """A live session not ended yet: the one running now."""
    duration_seconds: float | None = None
    """From its start to its end (to now while it runs)."""
    coins: int | None = None
    """With ``uniqueGifters`` and ``peakViewers``: lists asked with ``summary=true`` only."""
    unique_gifters: int | None = None
    peak_viewers: int | None = None


class GifterOut(msgspec.Struct, rename="camel", omit_defaults=True):
    rank: int
    coins: int
    gifts: int
    user_id: str | None = None
    """With ``uniqueId``, ``displayName``: moderators and up only (VIEWER: rank and figures)."""
    unique_id: str | None = None
    display_name: str | None = None


class SessionSummary(msgspec.Struct, rename="camel"):
    """What a session saw. Counted over the session's own events: a replay session's summary
    is of its replayed events, a live one's of its live events."""

    session_id: str
    type: str
    live: bool
    duration_seconds: float | None
    complete: bool | None
    """Live sessions: whether ttlp was connected all the while (no ``gaps``); null for a
    replay."""
    gaps: list[GapOut]
    event_count: int
    events_by_type: dict[str, int]
    coins: int
    """Counted as analytics counts them: a gift streak once, at its end."""
    gifts: int
    unique_gifters: int
    top_gifters: list[GifterOut]
    new_followers: int
    """Distinct users who followed during the session."""
    shares: int
    subscriptions: int
    chat_messages: int
    peak_viewers: int | None
    average_viewers: float | None
    """Mean of the viewer counts TikTok reported (ROOM_USER events); null without any."""


class GapOut(msgspec.Struct, rename="camel"):
    """An interval in which the streamer was live but ttlp was not connected."""

    start: str
    end: str
    seconds: float
    reason: str


class UserOut(msgspec.Struct, rename="camel"):
    user_id: str
    unique_id: str
    display_name: str | None
    avatar_url: str | None
    first_seen: str | None
    last_seen: str | None
    event_count: int


NOT_BLANK = r"[^\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
"""Somewhere a character ``str.strip`` keeps: spelled out, because ``\\S`` differs between
Python's regexes and the ECMA ones of JSON Schema (U+001C..U+001F, U+0085)."""


STREAMER_PATTERN = r"^@?[A-Za-z0-9_.]{1,64}$"


class NoteIn(msgspec.Struct, forbid_unknown_fields=True):
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NOTE_CHARS, pattern=NOT_BLANK)]
    """The note (not only whitespace; kept without surrounding whitespace)."""
    streamer: Annotated[str, msgspec.Meta(pattern=STREAMER_PATTERN)] | None = None
    """The streamer (handle) the note is written under: only accounts scoped to that streamer
    (or to ``*``) read it. It must be in the author's scope and have seen the user. Optional
    when exactly one streamer of the author's scope has seen the user."""


class NoteOut(msgspec.Struct, rename="camel"):
    id: int
    user_id: str
    author: str
    body: str
    created_at: str | None
    streamer: str | None
    """The streamer the note was written under (null: a note from before notes had one)."""


class ReplayAccepted(msgspec.Struct, rename="camel"):
    session_id: str
    replay_of: str
    speed: float | None
    status: str


Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="events per page (≤ 500)")]
Types = Annotated[
    str | None, QueryParameter(description="comma-separated event types, e.g. CHAT,GIFT")
]
Since = Annotated[
    datetime | None, QueryParameter(description="from this time (ISO 8601, inclusive)")
]
Until = Annotated[datetime | None, QueryParameter(description="until this time (exclusive)")]
Text = Annotated[
    str | None, QueryParameter(max_length=200, description="chat messages containing this text")
]
UserRef = Annotated[
    str | None, QueryParameter(pattern=USER_OR_HANDLE, description="TikTok user id, or @handle")
]
StreamPath = Annotated[
    str,
    Parameter(pattern=ROOM_OR_HANDLE, description="a room id, or @handle for all their rooms"),
]
UserPath = Annotated[
    str, Parameter(pattern=USER_OR_HANDLE, description="a TikTok user id, or @handle")
]
Cursor = Annotated[str | None, QueryParameter(max_length=200, description="nextCursor of a page")]
Order = Annotated[Literal["asc", "desc"], QueryParameter(description="asc = oldest first")]


def utc(value: datetime | None, name: str) -> datetime | None:
    """A query time as aware UTC (one without an offset is UTC); 400 when it cannot be."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first representable instant
        raise ValidationException(f"{name} is out of range") from None


def parse_types(types: str | None) -> list[str]:
    if not types:
        return []
    wanted = [t.strip().upper() for t in types.split(",") if t.strip()]
    unknown = sorted(set(wanted) - set(EVENT_CLASSES))
    if unknown:
        raise ValidationException(
            f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_CLASSES)}"
        )
    return wanted


async def user_id_of(api: Api, ref: str | None) -> str | None:
    if ref is None:
        return None
    if ref.startswith("@"):
        row = await api.queries.user_by_handle(ref[1:])
        if row is None:
            raise NotFoundException(f"no TikTok user {ref} has been seen")
        return str(row["user_id"])
    if not ref.isdigit() or len(ref) > 32:
        raise ValidationException(f"{ref!r} is neither a TikTok user id nor a @handle")
    return ref


IncludeReplays = Annotated[
    bool,
    QueryParameter(
        name="includeReplays",
        description="also list replayed events (each marked source=replay); by default a "
        "stream's or a user's history is of live events only (a replay session's own events "
        "are listed by GET /sessions/{id}/events)",
    ),
]


def event_filter(
    types: str | None,
    q: str | None,
    since: datetime | None,
    until: datetime | None,
    **where: Any,
) -> EventFilter:
    """The filters every event listing takes (type, chat text, time range), with ``where``."""
    since, until = utc(since, "since"), utc(until, "until")
    return EventFilter(types=parse_types(types), text=q, since=since, until=until, **where)


async def page_of(
    api: Api, where: EventFilter, limit: int, cursor: str | None, order: str
) -> EventPage:
    page: Page = await api.queries.events_page(
        where, limit=limit, cursor=cursor, order="desc" if order == "desc" else "asc"
    )
    return EventPage(page.items, page.next_cursor)


def is_running(row: dict[str, Any]) -> bool:
    return row["type"] == "live" and row.get("ended_at") is None


def duration_of(row: dict[str, Any]) -> float | None:
    start, end = row.get("created_at"), row.get("ended_at")
    if start is None:
        return None
    end = end or (datetime.now(UTC) if is_running(row) else None)
    return round(max((end - start).total_seconds(), 0.0), 3) if end is not None else None


def session_out(row: dict[str, Any], event_count: int | None = None) -> SessionOut:
    meta = row.get("meta") or {}
    return SessionOut(
        id=row["id"],
        stream_id=row["stream_id"],
        unique_id=row.get("unique_id") or row.get("stream_unique_id"),
        type=row["type"],
        provider=row.get("provider"),
        created_at=iso(row.get("created_at")),
        ended_at=iso(row.get("ended_at")),
        replayed_from=meta.get("replayedFrom") if isinstance(meta, dict) else None,
        event_count=event_count,
        interrupted=isinstance(meta, dict) and meta.get("interrupted") is True,
        live=is_running(row),
        duration_seconds=duration_of(row),
    )


def gaps_out(gaps: list[dict[str, Any]]) -> list[GapOut]:
    return [
        GapOut(iso(g["start"]) or "", iso(g["end"]) or "", round(g["seconds"], 3), g["reason"])
        for g in gaps
    ]


async def sessions_with_overview(api: Api, rows: list[dict[str, Any]]) -> list[SessionOut]:
    """Sessions with their list columns (events, coins, unique gifters, peak viewers), from
    one grouped query over the listed sessions' events."""
    overview = await api.queries.sessions_overview([row["id"] for row in rows])
    out = []
    for row in rows:
        item = session_out(row)
        figures = overview.get(row["id"], {})
        item.event_count = figures.get("eventCount", 0)
        item.coins = figures.get("coins", 0)
        item.unique_gifters = figures.get("uniqueGifters", 0)
        item.peak_viewers = figures.get("peakViewers")
        out.append(item)
    return out


def stream_out(row: dict[str, Any]) -> StreamOut:
    return StreamOut(
        row["id"], row["unique_id"], row["title"], iso(row["started_at"]), iso(row["ended_at"])
    )


def user_out(row: dict[str, Any]) -> UserOut:
    return UserOut(
        user_id=row["user_id"],
        unique_id=row["unique_id"],
        display_name=row["display_name"],
        avatar_url=row["avatar_url"],
        first_seen=iso(row["first_seen"]),
        last_seen=iso(row["last_seen"]),
        event_count=int(row["event_count"]),
    )


async def session_in_scope(api: Api, request: Req, session_id: str) -> dict[str, Any]:
    row = await api.queries.session(session_id)
    if row is None:
        raise NotFoundException(f"no session {session_id}")
    ensure_scope(current_account(request), row.get("unique_id") or row.get("stream_unique_id"))
    return row


Overview = Annotated[
    bool,
    QueryParameter(
        description="add each session's eventCount, coins, uniqueGifters and peakViewers "
        "(one aggregate over the listed sessions' events: keep `limit` to what is shown)"
    ),
]


# -- streams ---------------------------------------------------------------------------------
@get("/streams", summary="Streams (TikTok broadcasts) in the account's scope, newest first")
async def list_streams(
    api: Api,
    request: Req,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIST)] = 100,
) -> list[StreamOut]:
    rows = await api.queries.list_streams(scope_list(current_account(request)), limit=limit)
    return [stream_out(row) for row in rows]


@get(
    "/streams/{stream:str}/sessions",
    summary="Sessions of a room, or of @handle's rooms: the running one first, then newest",
)
async def stream_sessions(
    api: Api,
    request: Req,
    stream: StreamPath,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIST)] = 100,
    summary: Overview = False,
) -> list[SessionOut]:
    ref = await resolve_stream(api, stream, current_account(request))
    rows = await api.queries.list_sessions(stream_ids=ref.stream_ids, scopes=None, limit=limit)
    if summary:
        return await sessions_with_overview(api, rows)
    return [session_out(row) for row in rows]


@get(
    "/streams/{stream:str}/history",
    guards=IDENTITIES,
    summary="Stream-wide event history (keyset pages)",
    description=VIEWER_REFUSED,
)
async def stream_history(
    api: Api,
    request: Req,
    stream: StreamPath,
    types: Types = None,
    user: UserRef = None,
    q: Text = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    order: Order = "asc",
    include_replays: IncludeReplays = False,
) -> EventPage:
    ref = await resolve_stream(api, stream, current_account(request))
    where = event_filter(
        types,
        q,
        since,
        until,
        stream_ids=ref.stream_ids,
        # A handle's rooms grow when the streamer goes live again: the cursor binds the name.
        subject=f"stream:{stream.lower()}",
        user_id=await user_id_of(api, user),
        live_only=not include_replays,
    )
    return await page_of(api, where, limit, cursor, order)


# -- sessions --------------------------------------------------------------------------------
@get("/sessions", summary="Sessions in the account's scope: the running one first, then newest")
async def list_sessions(
    api: Api,
    request: Req,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIST)] = 100,
    summary: Overview = False,
) -> list[SessionOut]:
    rows = await api.queries.list_sessions(
        stream_ids=None, scopes=scope_list(current_account(request)), limit=limit
    )
    if summary:
        return await sessions_with_overview(api, rows)
    return [session_out(row) for row in rows]


@get(
    "/sessions/{session_id:str}",
    summary="One session, with its stored event count and the gaps in its coverage",
)
async def get_session(api: Api, request: Req, session_id: FromPath[str]) -> SessionOut:
    row = await session_in_scope(api, request, session_id)
    out = session_out(row, await api.queries.session_event_count(session_id))
    gaps = await api.queries.session_gaps(row)
    out.gaps = gaps_out(gaps)
    out.complete = not gaps if row["type"] == "live" else None
    return out


@get(
    "/sessions/{session_id:str}/summary",
    summary="What a session saw: duration, completeness, counts, coins, gifters, viewers",
    description="VIEWER accounts get the top gifters as rank and figures, without identities.",
)
async def session_summary(api: Api, request: Req, session_id: FromPath[str]) -> SessionSummary:
    row = await session_in_scope(api, request, session_id)
    figures = await api.queries.session_summary(session_id)
    gaps = await api.queries.session_gaps(row)
    named = current_account(request).role.at_least(Role.MODERATOR)
    gifters = [
        GifterOut(
            rank=n,
            coins=g["coins"],
            gifts=g["gifts"],
            user_id=g["userId"] if named else None,
            unique_id=g["uniqueId"] if named else None,
            display_name=g["displayName"] if named else None,
        )
        for n, g in enumerate(figures["topGifters"], start=1)
    ]
    return SessionSummary(
        session_id=session_id,
        type=row["type"],
        live=is_running(row),
        duration_seconds=duration_of(row),
        complete=not gaps if row["type"] == "live" else None,
        gaps=gaps_out(gaps),
        event_count=figures["eventCount"],
        events_by_type=figures["eventsByType"],
        coins=figures["coins"],
        gifts=figures["gifts"],
        unique_gifters=figures["uniqueGifters"],
        top_gifters=gifters,
        new_followers=figures["newFollowers"],
        shares=figures["shares"],
        subscriptions=figures["subscriptions"],
        chat_messages=figures["chatMessages"],
        peak_viewers=figures["peakViewers"],
        average_viewers=figures["averageViewers"],
    )


@get(
    "/sessions/{session_id:str}/events",
    guards=IDENTITIES,
    summary="A session's events (keyset pages)",
    description=VIEWER_REFUSED,
)
async def session_events(
    api: Api,
    request: Req,
    session_id: FromPath[str],
    types: Types = None,
    user: UserRef = None,
    q: Text = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    order: Order = "asc",
) -> EventPage:
    await session_in_scope(api, request, session_id)
    where = event_filter(
        types, q, since, until, session_id=session_id, user_id=await user_id_of(api, user)
    )
    return await page_of(api, where, limit, cursor, order)


@post(
    "/sessions/{session_id:str}/replay",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_202_ACCEPTED,
    summary="Replay a session as a new one (performed by the ingest role)",
)
async def replay(
    api: Api,
    request: Req,
    session_id: FromPath[str],
    speed: Annotated[
        float | None,
        QueryParameter(ge=MIN_SPEED, le=MAX_SPEED, description="1 = real time; unset = fast"),
    ] = None,
) -> ReplayAccepted:
    await session_in_scope(api, request, session_id)
    new_session = str(uuid.uuid4())
    command = {"command": "replay", "sessionId": session_id, "newSessionId": new_session}
    if speed is not None:
        command["speed"] = repr(speed)
    await api.bus.publish(api.keys.control, command)
    return ReplayAccepted(new_session, session_id, speed, "queued")


# -- TikTok users and notes --------------------------------------------------------------------
async def user_in_scope(
    api: Api, request: Req, ref: str
) -> tuple[dict[str, Any], list[str] | None]:
    """The user row and the rooms the caller may see them in (404 when none has them)."""
    user_id = await user_id_of(api, ref)
    assert user_id is not None
    row = await api.queries.user(user_id)
    if row is None:
        raise NotFoundException(f"no TikTok user {ref} has been seen")
    rooms = await scoped_rooms(api, current_account(request))
    if rooms is not None and not await api.queries.user_seen_in(user_id, rooms):
        raise NotFoundException(f"no TikTok user {ref} has been seen in your streams")
    return row, rooms


@get(
    "/users/{user:str}",
    guards=IDENTITIES,
    summary="A TikTok user (id or @handle), as seen in the account's streams",
    description=VIEWER_REFUSED,
)
async def get_user(api: Api, request: Req, user: UserPath) -> UserOut:
    row, rooms = await user_in_scope(api, request, user)
    if rooms is not None:  # the activity in the account's streamers' rooms only
        row = {**row, **await api.queries.user_activity(row["user_id"], rooms)}
    return user_out(row)


@get(
    "/users/{user:str}/events",
    guards=IDENTITIES,
    summary="A TikTok user's history in the account's streams",
    description=VIEWER_REFUSED,
)
async def user_events(
    api: Api,
    request: Req,
    user: UserPath,
    types: Types = None,
    q: Text = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    order: Order = "desc",
    include_replays: IncludeReplays = False,
) -> EventPage:
    row, rooms = await user_in_scope(api, request, user)
    where = event_filter(
        types,
        q,
        since,
        until,
        stream_ids=rooms,
        subject="user",  # the account's rooms may grow while it pages: bind the user alone
        user_id=row["user_id"],
        live_only=not include_replays,
    )
    return await page_of(api, where, limit, cursor, order)


def note_out(note: dict[str, Any]) -> NoteOut:
    return NoteOut(
        id=note["id"],
        user_id=note["user_id"],
        author=note["author"],
        body=note["body"],
        created_at=iso(note["created_at"]),
        streamer=note.get("streamer"),
    )


async def note_streamer(api: Api, account: Account, user_id: str, named: str | None) -> str:
    """The streamer a new note on ``user_id`` is written under (see the module docstring):
    403 for a streamer outside the scope, 404 for one that has not seen the user, 422 when
    none is named and several of the scope's streamers have seen the user."""
    if named is not None:
        streamer = named.lstrip("@").lower()
        ensure_scope(account, streamer)
        if not await api.queries.user_streamers(user_id, [streamer]):
            raise NotFoundException(f"@{streamer} has not seen TikTok user {user_id}")
        return streamer
    seen = await api.queries.user_streamers(user_id, scope_list(account))
    if len(seen) == 1:
        return seen[0]
    if not seen:  # seen in the scope's rooms, yet under no known handle (a room without one)
        raise UnprocessableError("say which streamer the note is for: give `streamer`")
    raise UnprocessableError(
        "the user was seen by several of your streamers "
        f"({', '.join('@' + s for s in seen[:MAX_NAMED])}): "
        "give `streamer`, the one the note is for"
    )


@get(
    "/users/{user:str}/notes",
    guards=[require(Role.MODERATOR)],
    summary="Moderators' private notes on a TikTok user, of the account's streamers, newest first",
)
async def list_notes(api: Api, request: Req, user: UserPath) -> list[NoteOut]:
    row, _ = await user_in_scope(api, request, user)
    streamers = scope_list(current_account(request))
    notes = await api.queries.notes(row["user_id"], streamers=streamers, limit=MAX_LIST)
    return [note_out(n) for n in notes]


@post(
    "/users/{user:str}/notes",
    guards=[require(Role.MODERATOR)],
    status_code=HTTP_201_CREATED,
    raises=[Unprocessable],
    summary="Add a private note on a TikTok user, under one of the account's streamers",
)
async def add_note(api: Api, request: Req, user: UserPath, data: JSONBody[NoteIn]) -> NoteOut:
    body = data.body.strip()
    if not body or len(body) > MAX_NOTE_CHARS:
        raise ValidationException(f"a note has 1 to {MAX_NOTE_CHARS} characters")
    row, _ = await user_in_scope(api, request, user)
    account = current_account(request)
    streamer = await note_streamer(api, account, row["user_id"], data.streamer)
    note = await api.queries.add_note(row["user_id"], account.username, body, streamer)
    return note_out(note)


routes = [
    list_streams,
    stream_sessions,
    stream_history,
    list_sessions,
    get_session,
    session_summary,
    session_events,
    replay,
    get_user,
    user_events,
    list_notes,
    add_note,
]
