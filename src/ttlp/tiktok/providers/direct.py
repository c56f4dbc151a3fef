"""The direct provider: TikTokLive's own client, hooked at the fetched result (DESIGN §5.1).

TikTokLive's ``TikTokLiveClient`` does everything TikTok asks of a web viewer — the room
lookup, the live check, the sign server's first fetch, the WebSocket with its room-enter
message, heartbeats and acks (from each result's ``internal_ext``), gunzipping push frames —
and then decodes every message into an event with betterproto2, ~2.5 k messages/s here. This
provider keeps all of the client unmodified except that last step: a subclass replaces
``_parse_webcast_response`` (called with every ``ProtoMessageFetchResult``: the sign server's
first one and each one pushed over the WebSocket, after the client has acked it) with one
that publishes each message's method and undecoded payload bytes and yields no events.
seqNo and timestamp come from the message's ``common`` header (``msgId``, ``createTime``),
read with the protobuf C runtime (``ttlp.tiktok.envelope``). The client still parses the
envelopes (push frame, fetch result) with betterproto2 for its acks and cursors: ~58 k
messages/s here, far above one room's traffic, and not ours to replace.

Two more hooks, both public extension points rather than patches:

* the WebSocket protocol class (``create_protocol``, passed through the client's
  ``ws_kwargs`` to ``websockets``) screens every incoming frame with the C-runtime envelope
  parser before TikTokLive sees it. A frame TikTokLive could not read (garbage, truncated
  protobuf, bad gzip) would end its receive loop with an exception and drop the connection;
  instead it is skipped and reported as an ERROR frame (code ``PARSE_ERROR``), and the stream
  goes on. Garbage inside a readable result (a message's payload) is published as is: the
  normalizer dead-letters it with ``PARSE_ERROR``.
* ``WebDefaults``: TikTokLive's routes read the TikTok web and webcast URLs from this
  module-level object at call time, so they cannot be given per client; the provider sets
  them (and the sign URL, which the session-id safety check compares against) before each
  connection and live check. The sign server's URL and key are passed to the client's own
  signer (``signer_kwargs``), so the key is never stored in a global.

Stream end: TikTok sends ``WebcastControlMessage`` with action 3 (STREAM_ENDED) or 4
(STREAM_SUSPENDED) — the two TikTokLive itself disconnects on (``ttlp.contracts.mapping``);
the provider reads ``action`` with the fast decoder's schema, closes the client and returns
normally (the supervisor polls again later). A connection TikTok closes without that message
ends with ``Outcome.RECONNECT`` (a short back-off, then the live check decides), not ``POLL``:
a clean close of a live stream is no reason to lose ``poll_interval`` seconds of it.

Errors are sorted by ``OUTCOMES`` (exception type → Outcome, most specific class wins) and
raised as ``ConnectionEnded``; reasons have the sign key and the session id redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import re
import time
import zlib
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

import httpx
from loguru import logger
from TikTokLive.client.client import TikTokLiveClient
from TikTokLive.client.errors import (
    AgeRestrictedError,
    AlreadyConnectedError,
    AuthenticatedWebSocketConnectionError,
    InitialCursorMissingError,
    PremiumEndpointError,
    SignAPIError,
    SignatureMissingTokensError,
    SignatureRateLimitError,
    TikTokLiveError,
    UnexpectedSignatureError,
    UserNotFoundError,
    UserOfflineError,
    WebcastBlockedError,
    WebsocketURLMissingError,
)
from TikTokLive.client.web.routes.fetch_is_live import MissingRoomIdInResponse
from TikTokLive.client.web.routes.fetch_room_id_live_html import FailedParseRoomIdError
from TikTokLive.client.web.routes.fetch_user_unique_id import FailedResolveUserId
from TikTokLive.client.web.web_settings import WebDefaults
from websockets.exceptions import ConnectionClosed, InvalidHandshake, WebSocketException
from websockets.legacy.client import WebSocketClientProtocol
from websockets.typing import Data

from ttlp.contracts.mapping import CONTROL_TYPE
from ttlp.errors import PermanentError
from ttlp.settings import IngestSettings
from ttlp.tiktok.envelope import message_header, parse_fetch_result, parse_push_frame
from ttlp.tiktok.providers.base import (
    ConnectionEnded,
    Message,
    Outcome,
    ProviderName,
    Session,
    ends_stream,
)

if TYPE_CHECKING:
    from loguru import Logger

T = TypeVar("T")

# What each failure means for the next attempt. Looked up along the exception's MRO, so the
# most specific entry wins (SignatureRateLimitError before SignAPIError before
# TikTokLiveError). Anything not listed is a transient failure: RECONNECT.
OUTCOMES: Final[dict[type[BaseException], Outcome]] = {
    # The streamer: offline → look again later; no such user / cannot go live → stop.
    UserOfflineError: Outcome.POLL,
    UserNotFoundError: Outcome.STOP,
    FailedResolveUserId: Outcome.STOP,
    # Age-restricted rooms need a logged-in session, which ingest does not send.
    AgeRestrictedError: Outcome.STOP,
    # The sign server: rate limited → back off; the key lacks the endpoint, or a session id
    # would be sent to a host nobody allowed → configuration, stop. Its other failures
    # (unreachable, 5xx, empty payload, no cookies, missing tokens) are transient.
    SignatureRateLimitError: Outcome.BACKOFF,
    PremiumEndpointError: Outcome.STOP,
    AuthenticatedWebSocketConnectionError: Outcome.STOP,
    SignatureMissingTokensError: Outcome.RECONNECT,
    UnexpectedSignatureError: Outcome.RECONNECT,
    SignAPIError: Outcome.RECONNECT,  # refined by SIGN_STATUS_OUTCOMES below
    # TikTok detected us: a captcha page instead of the room (no SIGI_STATE, no JSON), an
    # empty live check, the WebSocket refused with 200/400, a first fetch without cursor or
    # push server. Hammering makes it worse: back off.
    FailedParseRoomIdError: Outcome.BACKOFF,
    json.JSONDecodeError: Outcome.BACKOFF,
    MissingRoomIdInResponse: Outcome.BACKOFF,
    WebcastBlockedError: Outcome.BACKOFF,
    InitialCursorMissingError: Outcome.BACKOFF,
    WebsocketURLMissingError: Outcome.BACKOFF,
    # The connection itself: closed by TikTok, handshake or network failures → reconnect.
    ConnectionClosed: Outcome.RECONNECT,
    InvalidHandshake: Outcome.RECONNECT,
    WebSocketException: Outcome.RECONNECT,
    httpx.HTTPError: Outcome.RECONNECT,  # refined by HTTP_STATUS_OUTCOMES below
    OSError: Outcome.RECONNECT,
    TimeoutError: Outcome.RECONNECT,
    AlreadyConnectedError: Outcome.RECONNECT,
    TikTokLiveError: Outcome.RECONNECT,
}

# Sign server answers that mean more than "failed": 401/403 = the key is wrong or lacks the
# endpoint (stop), 429 = rate limited even without the library's RateLimit headers.
SIGN_STATUS_OUTCOMES: Final[dict[int, Outcome]] = {
    401: Outcome.STOP,
    403: Outcome.STOP,
    429: Outcome.BACKOFF,
}
# TikTok's own HTTP answers (raised as httpx.HTTPStatusError).
HTTP_STATUS_OUTCOMES: Final[dict[int, Outcome]] = {403: Outcome.BACKOFF, 429: Outcome.BACKOFF}

# How long closing a connection may take (close handshake, client disconnect) before we just
# drop it: ingest must stop within SHUTDOWN_GRACE_S even when TikTok does not answer.
DISCONNECT_TIMEOUT_S: Final = 2.0


# A room id found by ``is_live`` is reused by the ``run`` that follows it (the supervisor
# always checks right before connecting): one room lookup and live check per connection
# instead of two, so fewer requests for TikTok to rate-limit.
ROOM_HINT_TTL_S: Final = 30.0
REASON_MAX_CHARS: Final = 500
_LIBRARY_PREFIX: Final = re.compile(r"^TikTokLive v[\w.]+ -> ")


def outcome_for(exc: BaseException) -> Outcome:
    """The Outcome ``OUTCOMES`` gives ``exc`` (refined by HTTP status where one is known)."""
    if isinstance(exc, SignAPIError) and exc.response is not None:
        refined = SIGN_STATUS_OUTCOMES.get(exc.response.status_code)
        if refined is not None and not isinstance(exc, SignatureRateLimitError):
            return refined
    if isinstance(exc, httpx.HTTPStatusError):
        refined = HTTP_STATUS_OUTCOMES.get(exc.response.status_code)
        if refined is not None:
            return refined
    for cls in type(exc).__mro__:
        outcome = OUTCOMES.get(cls)
        if outcome is not None:
            return outcome
    return Outcome.RECONNECT


def _code(exc: BaseException) -> int | str:
    """What goes into ConnectionEnded.code: a close or HTTP status when known, else a name."""
    if isinstance(exc, ConnectionClosed):
        frame = exc.rcvd or exc.sent
        return frame.code if frame is not None else 1006
    if isinstance(exc, SignAPIError):
        return str(exc.reason.name)
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code
    return type(exc).__name__


class DirectProvider:
    """TikTok LIVE through TikTokLive's client; one client per connection."""

    name: ProviderName = "direct"

    def __init__(self, settings: IngestSettings, *, ws_kwargs: dict[str, Any] | None = None):
        """``ws_kwargs`` are extra options for the WebSocket connection (``websockets``)."""
        self.settings = settings
        self._ws_kwargs = dict(ws_kwargs or {})
        # websockets waits 10 s for a close handshake by default; a stop should not.
        self._ws_kwargs.setdefault("close_timeout", DISCONNECT_TIMEOUT_S)
        self._secrets = [s for s in (settings.sign_api_key, settings.session_id) if s]
        self._room_hints: dict[str, tuple[int, float]] = {}

    # -- Provider --------------------------------------------------------------------------
    async def is_live(self, unique_id: str) -> bool:
        """Room lookup (page, then API fallback) and TikTok's live check for that room."""
        self._apply_web_defaults()
        client = self._client(unique_id, None)
        try:
            room_id = await _room_id(client, unique_id)
            live = bool(await client.web.fetch_is_live(room_id=room_id))
        except UserOfflineError:
            return False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._ended(exc) from exc
        finally:
            await _close_http(client)
        if live:
            self._room_hints[unique_id] = (room_id, time.monotonic())
        return live

    async def run(self, unique_id: str, session: Session, stop: asyncio.Event) -> None:
        """Connect, publish every fetched message, return when the stream ends or on stop."""
        self._apply_web_defaults()
        connection = _Connection(session, log=logger.bind(role="ingest", provider=self.name))
        client = self._client(unique_id, connection)
        room_hint = self._take_room_hint(unique_id)
        task: asyncio.Task[None] | None = None
        try:
            task = await _unless_stopped(
                client.start(room_id=room_hint, fetch_live_check=room_hint is None), stop
            )
            if task is None:
                return  # stopped while connecting
            await _first(task, connection.stream_ended.wait(), stop.wait())
            if not task.done():  # stream ended or stop: close the WebSocket the client's way
                # Bounded: an unresponsive server must not hold up a shutdown.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(client.disconnect(), DISCONNECT_TIMEOUT_S)
            failure = None if task.cancelled() else task.exception()
            if connection.stream_ended.is_set() or stop.is_set():
                return
            if failure is not None:
                raise self._ended(failure) from failure
            code = connection.close_code
            raise ConnectionEnded(
                Outcome.RECONNECT, "TikTok closed the connection", code=code or "closed"
            )
        except (ConnectionEnded, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise self._ended(exc) from exc
        finally:
            await _shutdown(client, task)

    # -- helpers ---------------------------------------------------------------------------
    def _client(self, unique_id: str, connection: _Connection | None) -> TikTokLiveClient:
        signer = {"sign_api_base": self.settings.sign_api_url.rstrip("/")}
        if self.settings.sign_api_key:
            signer["sign_api_key"] = self.settings.sign_api_key
        ws_kwargs = dict(self._ws_kwargs)
        if connection is not None:
            ws_kwargs["create_protocol"] = functools.partial(_ScreeningProtocol, connection)
        return _HookedClient(
            unique_id,
            connection,
            web_kwargs={"signer_kwargs": signer},
            ws_kwargs=ws_kwargs,
        )

    def _apply_web_defaults(self) -> None:
        # Read at call time by TikTokLive's routes: set before every use, so the provider in
        # use is the one configured (tests run several against different local servers).
        WebDefaults.tiktok_app_url = self.settings.tiktok_app_url.rstrip("/")
        WebDefaults.tiktok_webcast_url = self.settings.tiktok_webcast_url.rstrip("/")
        WebDefaults.tiktok_sign_url = self.settings.sign_api_url.rstrip("/")

    def _take_room_hint(self, unique_id: str) -> int | None:
        hint = self._room_hints.pop(unique_id, None)
        if hint is None or time.monotonic() - hint[1] > ROOM_HINT_TTL_S:
            return None
        return hint[0]

    def _ended(self, exc: BaseException) -> ConnectionEnded:
        return ConnectionEnded(outcome_for(exc), self.safe_reason(exc), code=_code(exc))

    def safe_reason(self, exc: BaseException) -> str:
        """``Type: message`` on one line, short, with every configured secret redacted."""
        message = _LIBRARY_PREFIX.sub("", str(exc))
        text = " ".join(f"{type(exc).__name__}: {message}".split())
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text[:REASON_MAX_CHARS]


@dataclass
class _Connection:
    """One connection's sink: what the hooked client and the protocol report."""

    session: Session
    log: Logger
    stream_ended: asyncio.Event = field(default_factory=asyncio.Event)
    protocol: WebSocketClientProtocol | None = None
    announced: bool = False

    @property
    def close_code(self) -> int | None:
        return self.protocol.close_code if self.protocol is not None else None

    async def fetched(self, result: Any, room_id: int | None) -> None:
        """Publish every message of one fetch result; the first one means we are connected."""
        if not self.announced:
            # The client hands over its first result (the sign server's) only once the
            # WebSocket is open: the room id is known and the connection is up.
            self.announced = True
            await self.session.connected(str(room_id))
        messages = []
        ended = False
        for item in result.messages:
            payload = bytes(item.payload)
            msg_id, created_ms = message_header(payload)
            messages.append(Message(item.method, payload, msg_id or item.msg_id, created_ms))
            if item.method == CONTROL_TYPE and ends_stream(payload):
                ended = True
        await self.session.messages(messages)
        if ended:
            self.stream_ended.set()

    async def skipped(self, reason: str, size: int) -> None:
        self.log.warning("skipped an unreadable push frame", reason=reason, bytes=size)
        await self.session.error(f"unreadable push frame skipped: {reason}", "PARSE_ERROR")


class _HookedClient(TikTokLiveClient):  # type: ignore[misc]
    """TikTokLive's client, publishing fetched results instead of decoding them into events."""

    def __init__(self, unique_id: str, connection: _Connection | None, **kwargs: Any) -> None:
        super().__init__(unique_id, **kwargs)
        self._ttlp_connection = connection

    async def _parse_webcast_response(self, webcast_response: Any) -> AsyncIterator[Any]:
        # Called by the client's WebSocket loop with every fetch result, after its own
        # bookkeeping (room enter, ping loop, acks) is done; the loop emits what this yields.
        if self._ttlp_connection is not None:
            await self._ttlp_connection.fetched(webcast_response, self.room_id)
        return
        yield  # an async generator that yields no events


class _ScreeningProtocol(WebSocketClientProtocol):
    """The client's WebSocket protocol, skipping frames TikTokLive could not read."""

    def __init__(self, connection: _Connection, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ttlp_connection = connection
        connection.protocol = self

    async def recv(self) -> Data:
        while True:
            data = await super().recv()
            problem = screen_push_frame(data)
            if problem is None:
                return data
            await self._ttlp_connection.skipped(problem, len(data))


def screen_push_frame(data: Data) -> str | None:
    """Why TikTokLive would fail to read this WebSocket frame, or None if it can.

    Mirrors the client's reading (``WebcastConnect.__aiter__``): a push frame; when its
    ``payload_type`` is ``msg``, a ProtoMessageFetchResult, gunzipped when the
    ``compress_type`` header says gzip. Other payload types are dropped by the client unread.
    """
    raw = data.encode() if isinstance(data, str) else bytes(data)
    try:
        frame = parse_push_frame(raw)
        if frame.payload_type != "msg":
            return None
        payload = frame.payload
        if frame.headers.get("compress_type") == "gzip":
            try:
                payload = gzip.decompress(payload)
            except (OSError, EOFError, zlib.error) as exc:
                return f"payload is not valid gzip: {exc}"
        parse_fetch_result(payload)
    except PermanentError as exc:
        return str(exc)
    return None


# -- small async helpers ------------------------------------------------------------------------
async def _room_id(client: TikTokLiveClient, unique_id: str) -> int:
    """The room id the way ``TikTokLiveClient.start`` finds it: the live page, else the API."""
    web = client.web
    try:
        return int(await web.fetch_room_id_from_html(unique_id))
    except UserOfflineError:
        raise
    except Exception as page_error:
        try:
            return int(await web.fetch_room_id_from_api(unique_id))
        except Exception as api_error:
            raise api_error from page_error


async def _unless_stopped(coro: Coroutine[Any, Any, T], stop: asyncio.Event) -> T | None:
    """Await ``coro`` unless ``stop`` is set first (then cancel it and return None)."""
    task = asyncio.ensure_future(coro)
    await _first(task, stop.wait())
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def _first(task: asyncio.Future[Any], *others: Coroutine[Any, Any, Any]) -> None:
    """Wait until ``task`` or one of ``others`` finishes; cancel the others."""
    waiters = [asyncio.ensure_future(c) for c in others]
    try:
        await asyncio.wait({task, *waiters}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


async def _shutdown(client: TikTokLiveClient, task: asyncio.Task[None] | None) -> None:
    """Leave nothing running: the WebSocket loop, the client's ping loop, its HTTP clients."""
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    ws = client._ws
    # The client cancels its ping loop only when its receive loop ends normally.
    ping: asyncio.Task[None] | None = getattr(ws, "_ping_loop", None)
    if ping is not None and not ping.done():
        ping.cancel()
        await asyncio.gather(ping, return_exceptions=True)
    await _close_http(client)


async def _close_http(client: TikTokLiveClient) -> None:
    with contextlib.suppress(Exception):
        await client.web.close()
    # The sign server's SDK client makes its own httpx client on first use.
    sdk = client.web.signer.sdk_client
    sign_http: httpx.AsyncClient | None = getattr(sdk, "_async_client", None)
    if sign_http is not None:
        with contextlib.suppress(Exception):
            await sign_http.aclose()
