"""``GET /streams/{stream}/fans``: every TikTok user who engaged with a streamer, with their
lifetime figures (DESIGN §7.5), as JSON pages or as one CSV download.

Counted over the live events of the streamer's rooms (``@handle``) or of one room (a room id),
as analytics counts them: a gift streak once, replays never (``Queries.fans``). Sorted by a
figure (``sort``, ``order``), searched by handle or display name (``q``), paged like history
(``limit`` ≤ 500, ``cursor`` = the previous page's ``nextCursor``). ``format=csv`` is every
matching row in the same order, as a file a spreadsheet opens.

MODERATOR and up, in scope: the rows carry handles, which VIEWER accounts are never shown.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import Response, get
from litestar.params import QueryParameter

from ttlp.api.accounts import Role
from ttlp.api.auth import current_account, require
from ttlp.api.routes.history import Cursor, Limit, StreamPath
from ttlp.api.state import Api, Req, iso, resolve_stream
from ttlp.db.export import csv_cell, drain
from ttlp.db.queries import DEFAULT_PAGE, FanPage, FanSort

CSV_COLUMNS: Final = (
    "userId",
    "handle",
    "displayName",
    "coins",
    "gifts",
    "messages",
    "likes",
    "sessions",
    "firstSeen",
    "lastSeen",
    "follower",
    "subscriber",
    "notes",
)
MAX_SEARCH: Final = 100


class FanOut(msgspec.Struct, rename="camel"):
    user_id: str
    unique_id: str | None
    display_name: str | None
    coins: int
    """Counted as analytics counts them: a gift streak once, at its end."""
    gifts: int
    messages: int
    likes: int
    sessions: int
    """Sessions (connections to the streamer's lives) in which the user did anything."""
    first_seen: str | None
    last_seen: str | None
    follower: bool
    """Followed in one of the sessions, or their latest event says they follow."""
    subscriber: bool
    """Subscribed in one of the sessions, or their latest event says they are a subscriber."""
    moderator: bool
    """Their latest event says they moderate the streamer's lives."""
    notes: int
    """Moderators' notes on them written under this streamer."""


class FanList(msgspec.Struct, rename="camel"):
    items: list[FanOut]
    next_cursor: str | None
    total: int
    """Fans matching the listing, over every page."""


Sort = Annotated[
    FanSort,
    QueryParameter(description="coins, gifts, messages, likes, sessions, firstSeen or lastSeen"),
]
Direction = Annotated[Literal["asc", "desc"], QueryParameter(description="desc = largest first")]
Search = Annotated[
    str | None,
    QueryParameter(
        min_length=1,
        max_length=MAX_SEARCH,
        description="handle or display name containing this text (case-insensitive)",
    ),
]
Format = Annotated[
    Literal["json", "csv"],
    QueryParameter(description="json (pages), or csv: every matching fan as a download"),
]


def fan_out(row: dict[str, Any]) -> FanOut:
    return FanOut(
        user_id=row["user_id"],
        unique_id=row["unique_id"],
        display_name=row["display_name"],
        coins=row["coins"],
        gifts=row["gifts"],
        messages=row["messages"],
        likes=row["likes"],
        sessions=row["sessions"],
        first_seen=iso(row["first_seen"]),
        last_seen=iso(row["last_seen"]),
        follower=row["follower"],
        subscriber=row["subscriber"],
        moderator=row["moderator"],
        notes=row["notes"],
    )


def csv_body(page: FanPage) -> bytes:
    """RFC 4180 CSV, UTF-8 with a byte-order mark, cells as the session export writes them
    (ISO times, a formula-like name defused: names come from anyone in a TikTok room)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    chunks = ["\ufeff".encode() + drain(buffer)]
    for row in page.items:
        writer.writerow(
            csv_cell(value)
            for value in (
                row["user_id"],
                row["unique_id"],
                row["display_name"],
                row["coins"],
                row["gifts"],
                row["messages"],
                row["likes"],
                row["sessions"],
                row["first_seen"],
                row["last_seen"],
                "true" if row["follower"] else "false",
                "true" if row["subscriber"] else "false",
                row["notes"],
            )
        )
    chunks.append(drain(buffer))
    return b"".join(chunks)


@get(
    "/streams/{stream:str}/fans",
    guards=[require(Role.MODERATOR)],
    opt={"csv": True},  # the OpenAPI document lists text/csv beside JSON (format=csv)
    summary="Everyone who engaged with a streamer (or one room), with lifetime figures",
    description="Live events only (a replay changes nothing); a gift streak counts once. "
    "`format=csv` answers every matching fan as a download instead of a page.",
)
async def stream_fans(
    api: Api,
    request: Req,
    stream: StreamPath,
    sort: Sort = "coins",
    order: Direction = "desc",
    q: Search = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    format: Format = "json",
) -> Response[FanList]:
    ref = await resolve_stream(api, stream, current_account(request))
    listing: dict[str, Any] = {
        "streamer": ref.unique_id,
        # A handle's rooms grow when the streamer goes live again: the cursor binds the name.
        "subject": f"stream:{stream.lower()}",
        "sort": sort,
        "order": order,
        "text": q,
    }
    if format == "csv":
        page = await api.queries.fans(ref.stream_ids, limit=None, **listing)
        name = (ref.unique_id or stream).lstrip("@")
        # A Response, not a Stream: a handler's own media type (JSON) would override a
        # Stream's. The rows are in memory already (one aggregate query). Typed Any: the
        # handler's signature describes the JSON answer (``opt`` adds text/csv).
        download: Response[Any] = Response(
            csv_body(page),
            media_type="text/csv",  # Litestar adds "; charset=utf-8"
            headers={
                "Content-Disposition": f'attachment; filename="ttlp-fans-{name}.csv"',
                "Cache-Control": "no-store",
            },
        )
        return download
    page = await api.queries.fans(ref.stream_ids, limit=limit, cursor=cursor, **listing)
    return Response(FanList([fan_out(row) for row in page.items], page.next_cursor, page.total))


routes = [stream_fans]
