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
raised as ``ConnectionEnded``; reasons have the sign key and the session id redacted. Three
cases TikTokLive 7.0.1 gets wrong for a long-running ingest are handled here:

* a sign-server 429: TikTokLive builds ``SignatureRateLimitError`` from its ``RateLimit-*``
  headers, and without them its constructor fails with ``TypeError`` (``int(None)``), which
  looked like any other failure. A response hook on the sign server's own httpx client
  (``_SignRateLimitHook``) turns every 429 into ``SignServerRateLimited`` before TikTokLive
  reads it: ``Outcome.BACKOFF``, with the wait the headers ask for as ``retry_after_s`` (the
  supervisor waits that long, often an hour, instead of 1–60 s).
* ``UserNotFoundError``: TikTok answers it for creators who are not live or have never gone
  live, not only for accounts that do not exist: ``Outcome.POLL`` (said once in the log), not
  a stop. A handle that cannot be a TikTok handle at all still stops.
* age-restricted rooms: TikTokLive recognises them only in its room-info route, which
  ``start()`` calls only with ``fetch_room_info=True`` (never needed to read a room), so
  ``AgeRestrictedError`` never reached ``OUTCOMES``. A connection that fails before joining
  now asks that route once (``_diagnose``); an age-restricted room stops with a reason that
  says so. Rooms that can be read anonymously despite the restriction are not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import math
import re
import time
import zlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
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


class SignServerRateLimited(SignAPIError):  # type: ignore[misc]
    """The sign server answered 429, with or without rate-limit headers.

    Raised by ``_SignRateLimitHook`` instead of TikTokLive's ``SignatureRateLimitError``,
    whose constructor needs ``RateLimit-Remaining`` and fails with ``TypeError`` without it.
    ``retry_after_s`` is ``rate_limit_wait`` of the response (None: the headers say nothing).
    """

    def __init__(self, response: httpx.Response, retry_after_s: float | None) -> None:
        self.retry_after_s = retry_after_s
        message, label = _sign_server_message(response)
        text = "the sign server rate-limited this key"
        if label:
            text += f" ({label})"
        if message:
            text += f": {message}"
        text += (
            f"; it asks to wait {retry_after_s:.0f} s"
            if retry_after_s is not None
            else "; it did not say for how long"
        )
        super().__init__(SignAPIError.ErrorReason.RATE_LIMIT, text, response=response)


def _sign_server_message(response: httpx.Response) -> tuple[str, str]:
    """(message, limit_label) of a sign server's JSON error body ("" when absent)."""
    try:
        body = json.loads(response.content) if response.content else {}
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("message") or "")[:200], str(body.get("limit_label") or "")[:50]


# A Unix time in seconds is above this (2001); a delta in seconds far below it.
_EPOCH_S_MIN: Final = 1e9
_EPOCH_MS_MIN: Final = 1e11


def rate_limit_wait(headers: httpx.Headers, now: float) -> float | None:
    """How long a 429 asks us to wait, in seconds from ``now`` (Unix time), or None.

    The longest of what the headers say: ``Retry-After`` (seconds or an HTTP date);
    ``RateLimit-Remaining``, which TikTokLive reads as its ``retry_after`` (the seconds its
    own sign server, Euler Stream, makes a client wait — under the IETF draft's meaning, the
    quota left, it is 0 on a 429 and changes nothing); ``RateLimit-Reset``, TikTokLive's
    ``reset_time``: a Unix time (seconds, or ms), or, when small, seconds from now. The longest,
    because waiting less than any of them only earns another 429.
    """
    waits: list[float] = []
    retry_after = headers.get("Retry-After")
    if retry_after:
        seconds = _number(retry_after)
        if seconds is None:
            with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
                seconds = parsedate_to_datetime(retry_after).timestamp() - now
        if seconds is not None:
            waits.append(seconds)
    remaining = _number(headers.get("RateLimit-Remaining"))
    if remaining is not None:
        waits.append(remaining)
    reset = _number(headers.get("RateLimit-Reset"))
    if reset is not None:
        if reset >= _EPOCH_MS_MIN:
            reset /= 1000
        waits.append(reset - now if reset >= _EPOCH_S_MIN else reset)
    positive = [w for w in waits if w > 0]
    return max(positive) if positive else None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class _SignRateLimitHook:
    """An httpx response hook for the sign server's client: a 429 raises
    ``SignServerRateLimited`` before TikTokLive's route reads the response (the hook runs
    inside ``AsyncClient.send``, so the route's caller gets the exception)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    async def __call__(self, response: httpx.Response) -> None:
        if response.status_code != httpx.codes.TOO_MANY_REQUESTS:
            return
        await response.aread()
        raise SignServerRateLimited(response, rate_limit_wait(response.headers, self._clock()))


def _rate_limited(exc: BaseException | None) -> SignServerRateLimited | None:
    """The ``SignServerRateLimited`` behind ``exc`` (TikTokLive's signed-URL route wraps
    whatever its SDK call raises in ``UnexpectedSignatureError``), if any."""
    for _ in range(8):  # a short chain; never loop on a cycle
        if exc is None:
            return None
        if isinstance(exc, SignServerRateLimited):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


# What each failure means for the next attempt. Looked up along the exception's MRO, so the
# most specific entry wins (SignatureRateLimitError before SignAPIError before
# TikTokLiveError). Anything not listed is a transient failure: RECONNECT.
OUTCOMES: Final[dict[type[BaseException], Outcome]] = {
    # The streamer: offline, or "user not found" (what TikTok says of a creator who is not
    # live or has never gone live) → look again later; a numeric id with no account → stop.
    UserOfflineError: Outcome.POLL,
    UserNotFoundError: Outcome.POLL,
    FailedResolveUserId: Outcome.STOP,
    # Age-restricted rooms need a logged-in session, which ingest does not send (_diagnose).
    AgeRestrictedError: Outcome.STOP,
    # The sign server: rate limited → back off; the key lacks the endpoint, or a session id
    # would be sent to a host nobody allowed → configuration, stop. Its other failures
    # (unreachable, 5xx, empty payload, no cookies, missing tokens) are transient.
    SignServerRateLimited: Outcome.BACKOFF,
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
# What TikTok accepts as a handle (letters, digits, "_" and "."), as the api's HANDLE_RE.
TIKTOK_HANDLE: Final = re.compile(r"[A-Za-z0-9_.]{1,64}")
# The one room-info request after a failed connection (``_diagnose``) is bounded.
DIAGNOSE_TIMEOUT_S: Final = 5.0
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

    def __init__(
        self,
        settings: IngestSettings,
        *,
        ws_kwargs: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        """``ws_kwargs`` are extra options for the WebSocket connection (``websockets``);
        ``clock`` is the wall clock a rate limit's reset time is measured against."""
        self.settings = settings
        self._ws_kwargs = dict(ws_kwargs or {})
        # websockets waits 10 s for a close handshake by default; a stop should not.
        self._ws_kwargs.setdefault("close_timeout", DISCONNECT_TIMEOUT_S)
        self._secrets = [s for s in (settings.sign_api_key, settings.session_id) if s]
        self._room_hints: dict[str, tuple[int, float]] = {}
        self._clock = clock
        self._log = logger.bind(role="ingest", provider=self.name)
        self._not_found: set[str] = set()
        """Streamers TikTok last said "user not found" of (logged once, until seen live)."""

    # -- Provider --------------------------------------------------------------------------
    async def is_live(self, unique_id: str) -> bool:
        """Room lookup (page, then API fallback) and TikTok's live check for that room."""
        self._apply_web_defaults()
        _check_handle(unique_id)
        client = self._client(unique_id, None)
        try:
            room_id = await _room_id(client, unique_id)
            live = bool(await client.web.fetch_is_live(room_id=room_id))
        except UserOfflineError:
            self._not_found.discard(unique_id)
            return False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._ended(exc, unique_id) from exc
        finally:
            await _close_http(client)
        self._not_found.discard(unique_id)
        if live:
            self._room_hints[unique_id] = (room_id, time.monotonic())
        return live

    async def run(self, unique_id: str, session: Session, stop: asyncio.Event) -> None:
        """Connect, publish every fetched message, return when the stream ends or on stop."""
        self._apply_web_defaults()
        _check_handle(unique_id)
        connection = _Connection(session, log=self._log)
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
                raise await self._failed(failure, unique_id, client, connection, stop) from failure
            code = connection.close_code
            raise ConnectionEnded(
                Outcome.RECONNECT, "TikTok closed the connection", code=code or "closed"
            )
        except (ConnectionEnded, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise await self._failed(exc, unique_id, client, connection, stop) from exc
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
        client = _HookedClient(
            unique_id,
            connection,
            web_kwargs={"signer_kwargs": signer},
            ws_kwargs=ws_kwargs,
        )
        if connection is not None:  # only a connection talks to the sign server
            sign_http = client.web.signer.sdk_client.get_async_httpx_client()
            hooks = sign_http.event_hooks
            hooks["response"] = [*hooks["response"], _SignRateLimitHook(self._clock)]
            sign_http.event_hooks = hooks
        return client

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

    async def _failed(
        self,
        exc: BaseException,
        unique_id: str,
        client: TikTokLiveClient,
        connection: _Connection,
        stop: asyncio.Event,
    ) -> ConnectionEnded:
        """``_ended(exc)``, unless ``_diagnose`` finds the room age-restricted. Asked only
        for a transient-looking failure before joining: not after a rate limit or a block
        (TikTok's room info then answers much like an age-restricted one), nor on stop."""
        ended = self._ended(exc, unique_id)
        if stop.is_set() or connection.announced or ended.outcome is not Outcome.RECONNECT:
            return ended
        room_id = client.room_id
        if room_id is None:
            return ended
        age = await _diagnose(client, room_id)
        if age is None:
            return ended
        self._log.bind(uniqueId=unique_id).warning(
            "the LIVE is age-restricted: stopping this streamer", failure=ended.reason
        )
        return ConnectionEnded(
            outcome_for(age), self._age_restricted_reason(), code="AGE_RESTRICTED"
        )

    def _age_restricted_reason(self) -> str:
        session = (
            "SESSION_ID is set, but ingest never sends it"
            if self.settings.session_id
            else "SESSION_ID is not used for ingest"
        )
        return (
            "age-restricted LIVE: TikTok shows it only to logged-in viewers and the direct "
            f"provider connects anonymously ({session}: TikTokLive warns that sending it to the "
            "sign server risks the account); restart ttlp to try this streamer again"
        )

    def _ended(self, exc: BaseException, unique_id: str) -> ConnectionEnded:
        limited = _rate_limited(exc)
        if limited is not None:
            return ConnectionEnded(
                Outcome.BACKOFF,
                self.safe_reason(limited),
                code=_code(limited),
                retry_after_s=limited.retry_after_s,
            )
        if isinstance(exc, UserNotFoundError):
            return self._not_found_ended(unique_id)
        return ConnectionEnded(outcome_for(exc), self.safe_reason(exc), code=_code(exc))

    def _not_found_ended(self, unique_id: str) -> ConnectionEnded:
        """TikTok's "user not found": for a creator who exists, not live now (or never)."""
        if unique_id not in self._not_found:  # once, not every poll interval
            self._not_found.add(unique_id)
            self._log.bind(uniqueId=unique_id).warning(
                'TikTok said "user not found": for a creator who exists this means not live '
                "now (or never live); polling until live (check the handle if it persists)"
            )
        return ConnectionEnded(
            OUTCOMES[UserNotFoundError],
            f'TikTok said "user not found" for @{unique_id[:64]}: not live now or never live '
            "(or no such account)",
            code=UserNotFoundError.__name__,
        )

    def safe_reason(self, exc: BaseException) -> str:
        """``Type: message`` on one line, short, with every configured secret redacted."""
        message = _LIBRARY_PREFIX.sub("", str(exc))
        text = " ".join(f"{type(exc).__name__}: {message}".split())
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text[:REASON_MAX_CHARS]


def _check_handle(unique_id: str) -> None:
    """Stop at once for a streamer name that cannot be a TikTok handle (after TikTokLive's
    own clean-up: ``@`` and a profile URL are accepted); TikTok would only ever say "user
    not found" of it, which for a real handle means "not live"."""
    handle = TikTokLiveClient.parse_unique_id(unique_id)
    if not TIKTOK_HANDLE.fullmatch(handle):
        raise ConnectionEnded(
            Outcome.STOP,
            f"{unique_id[:100]!r} is not a TikTok handle (letters, digits, '_' and '.', at "
            "most 64): fix TIKTOK_UNIQUE_ID",
            code="INVALID_HANDLE",
        )


async def _diagnose(client: TikTokLiveClient, room_id: int) -> AgeRestrictedError | None:
    """After a connection failed before joining: is the room age-restricted?

    TikTokLive recognises that only in its room-info route (which connecting never needs,
    so ``start()`` skips it), hence one request here, on failure only: an age-restricted
    room that can still be read anonymously is read. Anything but that answer (the route
    failing, a timeout) says nothing: None.
    """
    try:
        async with asyncio.timeout(DIAGNOSE_TIMEOUT_S):
            await client.web.fetch_room_info(room_id=room_id)
    except AgeRestrictedError as exc:
        return exc
    except Exception:  # a failed diagnosis must not hide the failure it was asked about
        return None
    return None


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
