"""The OBS browser sources (``/overlay/...``), opened by an overlay token alone (``?token=``):
no login, and no login's JWT or cookie stands in for a token (``ttlp.api.overlays.hub``).

- ``GET /overlay/{kind}``: the overlay page (``ui/overlay.html``, the client half), under the
  UI's Content-Security-Policy except that the UI may frame it (its live preview) and it may
  play this origin's sounds; never cached.
- ``GET /overlay/state``: what the overlay shows when it opens (``ttlp.api.overlays.queries``).
- ``GET /overlay/feed``: the token's streamer's live feed as ``/streams/@handle/events`` sends
  it (ids, resume, ``gap``, heartbeats: ``ttlp.api.feed``), live events only unless
  ``preview=1``, with the notices ``options``, ``skip`` and ``revoked`` (then it ends).
- ``GET /overlay/sounds/{id}``: an alert sound of the token's streamer.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Annotated, Any, Final, Literal, get_args

import msgspec
from litestar import Response, get
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.params import FromPath, FromQuery, HeaderParameter, PathParameter, QueryParameter
from litestar.response import File

from ttlp.aio import hold, to_iso
from ttlp.api.feed import DroppingSubscriber, FeedItem, handle_channel, sse_frame
from ttlp.api.overlays.options import MAX_ID, Options
from ttlp.api.overlays.queries import OverlayQueries
from ttlp.api.routes.live import SSE_HELLO, EncodedEvents, check_last_event_id
from ttlp.api.routes.ui import UI_CSP, UI_DIR
from ttlp.api.state import Api, Req

Kind = Literal["alerts", "chat", "leaderboard", "goal", "ticker"]
KINDS: Final[tuple[str, ...]] = get_args(Kind)
OVERLAY_PAGE: Final = UI_DIR / "overlay.html"
OVERLAY_CSP: Final = UI_CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'") + (
    "; media-src 'self'"
)
"""The UI's policy, but the UI's own pages may frame an overlay (the builder's live preview)
and it may play this origin's sounds."""
NO_STORE: Final = CacheControlHeader(no_store=True)
TOKEN_REFUSALS: Final[list[type[HTTPException]]] = [
    NotAuthorizedException,  # no token, not a token, an unknown one
    PermissionDeniedException,  # a revoked one
]
SOUND_CACHE: Final = "private, max-age=3600"
"""A sound's bytes never change under its id."""

Token = Annotated[
    str | None,
    QueryParameter(description="the overlay token (see POST /overlays/tokens)", required=False),
]
Preview = Annotated[
    bool,
    QueryParameter(description="count and send replayed events too (the builder's preview)"),
]
SoundId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="an overlay sound id")]


class SessionOut(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    started_at: str
    live: bool
    """Still going (not ended, not a replay)."""


class Gifter(msgspec.Struct, rename="camel", kw_only=True):
    user_id: str
    unique_id: str | None
    display_name: str | None
    avatar_url: str | None
    coins: int
    gifts: int


class GoalOut(msgspec.Struct, rename="camel", kw_only=True):
    metric: str
    current: int
    target: int
    title: str


class OverlayState(msgspec.Struct, rename="camel", kw_only=True):
    streamer: str
    kind: str
    options: Options
    options_version: int
    session: SessionOut | None
    """The streamer's session still going, else the latest (replays too with ``preview``)."""
    leaderboard: list[Gifter]
    """Kind ``leaderboard``: the top gifters (else empty)."""
    goal: GoalOut | None
    """Kind ``goal``: the session's progress (else null)."""
    recent: list[Any]
    """Kinds ``chat`` and ``ticker``: the session's latest events, oldest first (else empty)."""


async def overlay_headers(response: Response[object]) -> Response[object]:
    response.headers["content-security-policy"] = OVERLAY_CSP
    response.headers["x-frame-options"] = "SAMEORIGIN"  # older browsers; CSP governs the rest
    return response


@get(
    "/overlay/{kind:str}",
    exclude_from_auth=True,
    include_in_schema=False,
    after_request=overlay_headers,
    cache_control=NO_STORE,
)
async def overlay_page(
    api: Api, kind: FromPath[str], token: Token = None, preview: Preview = False
) -> File:
    """The page OBS shows; it reads its kind from the path and its token from the query."""
    if kind not in KINDS:
        raise NotFoundException(f"no overlay {kind!r}: one of {', '.join(KINDS)}")
    await api.overlays.resolve(token)
    return File(OVERLAY_PAGE, content_disposition_type="inline", media_type="text/html")


@get(
    "/overlay/state",
    exclude_from_auth=True,
    cache_control=NO_STORE,
    raises=TOKEN_REFUSALS,
    summary="What an overlay shows when it opens (by its token)",
)
async def overlay_state(
    api: Api, kind: FromQuery[Kind], token: Token = None, preview: Preview = False
) -> OverlayState:
    row = await api.overlays.resolve(token)
    options = row.options
    queries = OverlayQueries(api.engine)
    session = await queries.session(row.streamer, preview=preview)
    leaderboard: list[Gifter] = []
    goal = None
    recent: list[Any] = []
    if kind == "goal":
        current = 0
        if session is not None:
            current = await queries.goal(session, options.goal.metric, preview=preview)
        goal = GoalOut(
            metric=options.goal.metric,
            current=current,
            target=options.goal.target,
            title=options.goal.title,
        )
    elif session is not None and kind == "leaderboard":
        leaderboard = [
            msgspec.convert(g, Gifter)
            for g in await queries.leaderboard(session, options, preview=preview)
        ]
    elif session is not None and kind == "chat":
        recent = await queries.recent(session, ["CHAT"], options.chat.max_messages, preview=preview)
    elif session is not None and kind == "ticker":
        recent = await queries.recent(
            session, options.ticker.kinds, options.ticker.count, preview=preview
        )
    return OverlayState(
        streamer=row.streamer,
        kind=kind,
        options=options,
        options_version=row.options_version,
        session=None
        if session is None
        else SessionOut(
            id=session.id,
            started_at=to_iso(session.started_at, precision="auto"),
            live=session.live,
        ),
        leaderboard=leaderboard,
        goal=goal,
        recent=recent,
    )


class _Source(msgspec.Struct):
    source: str = "live"


_source = msgspec.json.Decoder(_Source).decode


def _live(item: FeedItem) -> bool:
    """A live event (not a replay's); unreadable ones are not sent."""
    try:
        return _source(item.event).source == "live"
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False


def _any(_item: FeedItem) -> bool:
    return True


def _ends(batch: list[FeedItem | str]) -> int | None:
    """How many items of ``batch`` to send when it holds the ``revoked`` notice (it ends the
    feed), else None."""
    for i, item in enumerate(batch):
        if isinstance(item, FeedItem) and not item.id and item.type == "revoked":
            return i + 1
    return None


@get(
    "/overlay/feed",
    exclude_from_auth=True,
    raises=TOKEN_REFUSALS,
    summary="An overlay's live feed (Server-Sent Events, by its token); resume with Last-Event-ID",
)
async def overlay_feed(
    api: Api,
    request: Req,
    token: Token = None,
    preview: Preview = False,
    last_event_id: Annotated[
        str | None, HeaderParameter(name="Last-Event-ID", required=False, max_length=64)
    ] = None,
    last_event_id_query: Annotated[
        str | None, QueryParameter(name="lastEventId", required=False, max_length=64)
    ] = None,
) -> EncodedEvents:
    row = await api.overlays.resolve(token)
    hub = api.overlays
    resume = check_last_event_id(last_event_id or last_event_id_query)
    matches: Callable[[FeedItem], bool] = _any if preview else _live
    release = hold(hub.feed_slot(row.id))  # 429 now, before the response starts

    def subscribed(subscriber: DroppingSubscriber) -> None:
        hub.watch(row, subscriber)

    async def messages() -> AsyncGenerator[bytes, None]:
        try:
            yield SSE_HELLO
            stop = request.app.state.stop
            batches = api.feed.batches(
                handle_channel(row.streamer), matches, resume, stop, subscribed=subscribed
            )
            async with contextlib.aclosing(batches):
                async for batch in batches:
                    end = _ends(batch)
                    yield b"".join([sse_frame(item) for item in batch[:end]])
                    if end is not None:
                        return
        finally:
            await release()

    return EncodedEvents(
        messages(),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(release),
    )


@get(
    "/overlay/sounds/{sound_id:int}",
    exclude_from_auth=True,
    raises=TOKEN_REFUSALS,
    summary="An alert sound of the token's streamer (its audio bytes)",
    media_type="application/octet-stream",
)
async def overlay_sound(api: Api, sound_id: SoundId, token: Token = None) -> Response[bytes]:
    row = await api.overlays.resolve(token)
    found = await api.overlays.store.sound_bytes(sound_id, row.streamer)
    if found is None:
        raise NotFoundException(f"no sound {sound_id} of this overlay's streamer")
    content_type, data = found
    return Response(data, media_type=content_type, headers={"Cache-Control": SOUND_CACHE})


routes = [overlay_state, overlay_feed, overlay_sound, overlay_page]
