"""The live feed of a stream: SSE (``GET /streams/{stream}/events``) and WebSocket
(``/streams/{stream}/ws``), MODERATOR and up. See ``ttlp.api.feed`` for the semantics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Annotated, Any

import msgspec
from litestar import WebSocket, get, websocket
from litestar.background_tasks import BackgroundTask
from litestar.exceptions import (
    HTTPException,
    TooManyRequestsException,
    ValidationException,
    WebSocketDisconnect,
)
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, Stream

from ttlp.aio import hold
from ttlp.api.accounts import Account, Role
from ttlp.api.auth import current_account, require
from ttlp.api.feed import FeedItem, sse_frame, ws_message
from ttlp.api.guard import deny_websocket
from ttlp.api.routes.actions import WsActions
from ttlp.api.routes.history import Types, parse_types
from ttlp.api.state import Api, Req, is_entry_id, resolve_stream

SSE_RETRY_MS = 2000
SSE_HELLO = b": ttlp live feed\r\nretry: %d\r\n\r\n" % SSE_RETRY_MS
FEED_LIMIT_RETRY_S = "5"
WS_CLOSE_TIMEOUT_S = 2.0


class EncodedEvents(ServerSentEvent):
    """An SSE response whose messages are already encoded (``sse_frame``): it streams them as
    they are. ``ServerSentEvent`` proper would encode each again, per client and event (a
    StringIO and a regex split: the largest per-delivery cost of the feed)."""

    def __init__(
        self,
        content: AsyncGenerator[bytes, None],
        *,
        headers: dict[str, str],
        background: BackgroundTask,
    ) -> None:
        Stream.__init__(
            self,
            content,
            media_type="text/event-stream",
            headers=headers,
            background=background,
        )


def type_filter(types: str | None) -> Callable[[FeedItem], bool]:
    wanted = set(parse_types(types))
    if not wanted:
        return lambda _item: True
    return lambda item: item.type in wanted


def check_last_event_id(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not is_entry_id(value):
        raise ValidationException(f"Last-Event-ID {value!r} is not a feed event id")
    return value


@contextlib.contextmanager
def feed_slot(api: Api, account: Account) -> Any:
    """One of the account's concurrent feeds (API_MAX_FEEDS_PER_ACCOUNT), or 429."""
    limit = api.settings.api.max_feeds_per_account
    if api.feeds_per_account[account.username] >= limit:
        raise TooManyRequestsException(
            f"this account already has {limit} live feeds open; close one first",
            headers={"Retry-After": FEED_LIMIT_RETRY_S},
        )
    api.feeds_per_account[account.username] += 1
    try:
        yield
    finally:
        api.feeds_per_account[account.username] -= 1
        if api.feeds_per_account[account.username] <= 0:
            del api.feeds_per_account[account.username]


@get(
    "/streams/{stream:str}/events",
    guards=[require(Role.MODERATOR)],
    summary="Live feed (Server-Sent Events); resume with Last-Event-ID",
)
async def sse_feed(
    api: Api,
    request: Req,
    stream: FromPath[str],
    types: Types = None,
    last_event_id: Annotated[
        str | None, HeaderParameter(name="Last-Event-ID", required=False, max_length=64)
    ] = None,
) -> EncodedEvents:
    account = current_account(request)
    ref = await resolve_stream(api, stream, account, must_exist=False)
    matches = type_filter(types)
    resume = check_last_event_id(last_event_id)
    release = hold(feed_slot(api, account))  # 429 now, before the response starts

    async def messages() -> AsyncGenerator[bytes, None]:
        try:
            yield SSE_HELLO
            stop = request.app.state.stop
            async for batch in api.feed.batches(ref.channel, matches, resume, stop):
                yield b"".join([sse_frame(item) for item in batch])
        finally:
            await release()

    return EncodedEvents(
        messages(),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(release),
    )


@websocket("/streams/{stream:str}/ws", guards=[require(Role.MODERATOR)])
async def ws_feed(
    socket: WebSocket[Any, Any, Any],
    api: Api,
    stream: FromPath[str],
    types: Types = None,
    last_event_id: Annotated[str | None, QueryParameter(name="lastEventId", max_length=64)] = None,
) -> None:
    """The same feed as SSE, one JSON text frame per event (``{"type":"event","id",…}``);
    resume with ``?lastEventId=``. The client may send moderator actions on the stream's room
    (``WsActionIn``); each gets one ``action-result`` frame."""
    try:
        account = current_account(socket)
        ref = await resolve_stream(api, stream, account, must_exist=False)
        matches = type_filter(types)
        resume = check_last_event_id(last_event_id)
        slot = feed_slot(api, account)
        slot.__enter__()
    except HTTPException as exc:
        # Answered here: past this handler, Litestar would close before accept (a bare 403).
        await refuse(socket, exc)
        return
    try:
        await socket.accept()
        stop = socket.app.state.stop
        # The feed is sent from a task of its own (the feed cuts off the task that sends, when
        # its client stops reading); this one ends it when the client goes away.
        sending = asyncio.Lock()  # feed frames and action results never interleave
        sender = asyncio.create_task(
            _send_feed(socket, sending, api.feed.batches(ref.channel, matches, resume, stop))
        )
        actions = WsActions(api, socket.scope.get("auth"), stream)
        reader = asyncio.create_task(_read_actions(socket, sending, actions))
        try:
            await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, reader):
                task.cancel()
            for task in (sender, reader):
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                    await task
            with contextlib.suppress(Exception):
                # A client that stopped reading never takes the close frame: do not wait on it.
                await asyncio.wait_for(socket.close(), WS_CLOSE_TIMEOUT_S)
    finally:
        slot.__exit__(None, None, None)


async def refuse(socket: WebSocket[Any, Any, Any], exc: HTTPException) -> None:
    """Answer the handshake with the HTTP error (``ttlp.api.guard.deny_websocket``)."""
    await deny_websocket(socket.scope, socket.send, exc.status_code, exc.detail, exc.headers)


async def _send_feed(
    socket: WebSocket[Any, Any, Any],
    sending: asyncio.Lock,
    batches: AsyncGenerator[list[FeedItem | str], None],
) -> None:
    async with contextlib.aclosing(batches):
        async for batch in batches:
            texts = [text for text in map(ws_message, batch) if text is not None]
            async with sending:
                for text in texts:
                    await socket.send_text(text)
            if "dropped" in batch:
                return


async def _read_actions(
    socket: WebSocket[Any, Any, Any], sending: asyncio.Lock, actions: WsActions
) -> None:
    """Answer the client's frames (moderator actions), one at a time, until it goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            frame: str | bytes = text if isinstance(text, str) else b"binary"
            answer = msgspec.json.encode(await actions.answer(frame)).decode()
            async with sending:
                await socket.send_text(answer)


routes = [sse_feed, ws_feed]
