"""The euler provider: TikTok LIVE through the Euler Stream WebSocket (DESIGN §5.1).

One WebSocket per connection, ``{EULER_WS_URL}?uniqueId=<handle>&apiKey=<key>`` plus
``features.rawMessages=true`` (the query names are ``UNIQUE_ID_PARAM``, ``API_KEY_PARAM`` and
``FEATURE_PARAMS`` below, the one place to change them; they follow Euler's WebSocket SDK,
which flattens its ``features`` options into dotted query parameters). Raw mode makes Euler
forward TikTok's own bytes, so this provider publishes exactly what the direct provider does.

Binary frames
    ``WebcastPushFrame`` → payload (gunzip'd when it starts 1f 8b) → ``ProtoMessageFetchResult``
    → its messages published undecoded (``Session.messages``: method + base64 protobuf, seqNo =
    ``msgId``, timestamp = create time), via ``ttlp.tiktok.envelope``. A fetch result that says
    ``needAck`` is acknowledged first, as TikTokLive and TikTok-Live-Connector do: a push frame
    with payloadType ``ack``, the received frame's ``logId`` and the result's ``internalExt`` as
    payload (``envelope.ack_frame``); the server's heartbeats (payloadType ``hb``) are counted,
    push frames of any other payloadType are counted as ignored. A frame whose envelope cannot
    be read (not a push frame, bad gzip, not a fetch result) is counted (``stats.bad_frames``),
    logged at warning with its size and the parse error (never its bytes), and skipped; the
    connection goes on. Such a frame carries no TikTok message type, msgId or room, so there is
    nothing to put in a raw.v1 frame except an invented type, which the normalizer would turn
    into a RAW *event* of unusable bytes (unknown types become RAW, not dead letters). A message
    whose own bytes are corrupt inside a readable envelope *is* published under its method: the
    normalizer dead-letters it with PARSE_ERROR.

Text frames (JSON), the accepted shapes
    - a bundle ``{"messages": [item, ...], "timestamp"?: ms}`` (Euler's ``bundleEvents``, the
      default), or a single ``item`` (``bundleEvents=false``);
    - ``item`` = ``{"type": name, "data": {...}}`` (``"method"`` is accepted for ``"type"``):
      * ``workerInfo``: ``{"webSocketId", "agentId", "schemaVersion", "deprecationWarning"?}``;
        logged (the warning at warning level), not published;
      * ``roomInfo``: the room id for ``Session.connected`` from ``data.roomInfo.id`` (Euler's
        room object), ``data.roomId``, or ``data.raw.data.user.roomId`` (TikTok's user/room
        response as Euler forwards it), the first that holds a non-zero id; not published;
      * ``Webcast*``: a decoded TikTok message, published as is with ``Session.json_message``
        (raw type = the name, data = the object); ``common.msgId`` → seqNo,
        ``common.createTime`` (ms) → timestamp, ``common.roomId`` → the room when roomInfo has
        not named it yet. Numbers may be JSON numbers or decimal strings (int64 in proto3
        JSON). Euler's docs confirm only ``{type, data}``; the data is expected in TikTok's
        webcast v3 camelCase names, as tiktok-live-proto v3 and TikTokLive's ``to_dict()``
        write them (``user.displayId``, ``content``, ``gift.name``, ``count``/``total``...),
        which is what the normalizer reads. Euler's older v1/v2 JSON schemas rename a few
        fields (gift details, user ids); such messages still become events or dead letters,
        with fewer fields filled. In raw mode TikTok's messages come as binary frames anyway;
      * anything else (e.g. Euler's ``SyntheticJoinMessage``, which TikTok never sent):
        counted as ignored, logged at debug by type name only.
    A text frame that is not JSON, or JSON of no shape above, counts as a bad frame.

Messages without a msgId (0 or absent) are passed on with 0: ``Session`` gives them a seqNo of
its own (``Session.seq_no``), unique within the session and far from TikTok's msgIds.

Heartbeats
    Once the room is known, every ``heartbeat_interval_s`` (``HEARTBEAT_INTERVAL_S``, 10 s, as
    TikTok-Live-Connector; TikTokLive pings every 5 s) a push frame with payloadType ``hb``
    around ``HeartBeatMessage{roomId, sendPacketSeqId}`` (``envelope.heartbeat_frame``), the
    first at once. In raw mode Euler relays the push protocol both ways (its WebSocket server
    forwards clients' acks and heartbeats), and TikTok's push server drops a client that stops
    sending heartbeats (TikTok-Live-Connector's note on its ping loop); Euler closes a
    connection on which TikTok stays quiet for its ``closeInactiveWebSocketAfter`` (60 s by
    default) with 4006. A failed send (the socket closing) is ignored: the read loop reports
    why the connection ended.

The room
    ``Session.connected(room_id)`` as soon as the room is known: roomInfo (Euler sends it
    first), else the first message that carries ``common.roomId``.

How a connection ends (``CLOSE_POLICY``, Euler's documented close codes)

    ====  ========================  ==================================================
    code  Euler's name              what ``run`` does
    ====  ========================  ==================================================
    4400  INVALID_OPTIONS           raise ConnectionEnded(STOP): bad options
    4401  INVALID_AUTH              raise ConnectionEnded(STOP): bad API key
    4403  NO_PERMISSION             raise ConnectionEnded(STOP): key may not use this creator
    4404  NOT_LIVE                  raise ConnectionEnded(POLL): offline, look again later
    4005  STREAM_END                return normally (the supervisor polls)
    4429  TOO_MANY_CONNECTIONS      raise ConnectionEnded(BACKOFF, retry_after_s=...): the
                                    key's connections are all taken, and one frees only
                                    when another stream ends; the wait is
                                    ``TOO_MANY_CONNECTIONS_BACKOFF`` over this streamer's
                                    refusals in a row (60 s, ×2, at most 15 min, ±20 %),
                                    not the supervisor's 1 s start
    4500  TIKTOK_CLOSED_CONNECTION  raise ConnectionEnded(RECONNECT), with back-off
    1011  INTERNAL_SERVER_ERROR     raise ConnectionEnded(RECONNECT)
    4556  WEBCAST_FETCH_ERROR       raise ConnectionEnded(RECONNECT)
    4557  ROOM_INFO_FETCH_ERROR     raise ConnectionEnded(RECONNECT)
    4006  NO_MESSAGES_TIMEOUT       raise ConnectionEnded(RECONNECT): TikTok went quiet;
                                    the next attempt checks ``is_live`` first
    4555  MAX_LIFETIME_EXCEEDED     raise ConnectionEnded(RECONNECT_NOW): the 8-hour cut
    1000  NORMAL                    return normally after a stream end (a ControlMessage
                                    with action 3 or 4 was seen), else RECONNECT
    any   other code, or none       raise ConnectionEnded(RECONNECT) (1006: dropped)
    ====  ========================  ==================================================

    Before the WebSocket opens: the handshake refused with HTTP 400/401/403 → STOP, 429 →
    BACKOFF (waiting its ``Retry-After`` seconds when it sends one, else as for 4429), any
    other status → RECONNECT; a URL the client rejects → STOP (one that is not
    ``ws://`` / ``wss://`` with a host is refused earlier, by the constructor: ``ConfigError``);
    connection refused, DNS, TLS, timeouts and other network errors → RECONNECT. ``stop`` set →
    the socket is closed cleanly (1000) and ``run`` returns.

``is_live``: Euler's REST API, ``GET {api_url}/webcast/room_id?uniqueId=<handle>`` with the key
in the ``x-api-key`` header (``retrieveRoomId`` in Euler's API SDK, "Fetch Room ID for a given
uniqueId & whether that user is live"; TikTok-Live-Connector's is-live fallback), answers
``{"code": 200, "ok": true, "is_live": bool, "room_id": "..."}``. An offline creator then
costs one HTTP request per ``INGEST_POLL_INTERVAL_S`` instead of a WebSocket handshake that
counts against the key's connection limits. When the check cannot answer (network error, its
``live_check_timeout_s``, HTTP 429/5xx, an answer without ``is_live``) ``is_live`` says True and
the WebSocket decides, as before (4404 → POLL): the WebSocket is the source of truth, so an
outage of the REST API costs a handshake per poll but never stops a stream, whereas answering
False would stop ingest for as long as the REST API is away. A key the route refuses (HTTP or
body code 401/402/403: a plan without REST access) switches the check off for this provider,
logged once. ``api_url=None`` skips the check. ``from_settings`` uses ``DEFAULT_API_URL``
unless given another: ``make_provider`` sees only the ingest settings, and ``EULER_API_URL``
is declared in the rules' (a caller holding both passes ``settings.rules.euler_api_url``).

The API key travels only in the URL handed to ``websockets.connect`` and in the live check's
``x-api-key`` header. Logged URLs have it replaced (``redacted_url``); every text that leaves
this module from the network side (close reasons, exception messages, the ``ConnectionEnded``
reasons that become DISCONNECTED events) goes through ``redact`` (the key as is and
URL-encoded); and websockets' own logger is wrapped so its debug lines (the request line holds
the URL-encoded query) are redacted too.
``ttlp.log``'s redactor, which knows the key as configured, stays a second line of defence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

import httpx
import msgspec
from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from ttlp.aio import Backoff
from ttlp.contracts.mapping import CONTROL_TYPE, stream_end_action
from ttlp.errors import ConfigError, PermanentError
from ttlp.tiktok import decode, envelope
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

    from ttlp.settings import IngestSettings

DEFAULT_WS_URL: Final = "wss://ws.eulerstream.com"
DEFAULT_API_URL: Final = "https://api.eulerstream.com"
UNIQUE_ID_PARAM: Final = "uniqueId"
API_KEY_PARAM: Final = "apiKey"
FEATURE_PARAMS: Final[Mapping[str, str]] = {"features.rawMessages": "true"}
"""Euler feature flags this provider needs; raw mode is what makes both providers alike."""

REDACTED: Final = "***"
# TikTok fetch results are usually a few kB; a big gift burst can reach hundreds of kB.
# websockets' default (1 MiB) would close the connection on a rare big one (1009).
MAX_MESSAGE_BYTES: Final = 8 * 1024 * 1024
OPEN_TIMEOUT_S: Final = 10.0
CLOSE_TIMEOUT_S: Final = 2.0
# Garbage frames: log the first few, then every hundredth, so a broken stream cannot flood logs.
BAD_FRAME_LOG_FIRST: Final = 10
BAD_FRAME_LOG_EVERY: Final = 100
REASON_MAX: Final = 200
ABNORMAL_CLOSURE: Final = 1006
ROOM_ID_PATH: Final = "/webcast/room_id"
"""Euler's "Fetch Room ID for a given uniqueId & whether that user is live" route."""
API_KEY_HEADER: Final = "x-api-key"
USER_AGENT: Final = "ttlp-ingest"
# One poll's check; past this the WebSocket decides (a slow API must not delay the stream).
LIVE_CHECK_TIMEOUT_S: Final = 5.0
LIVE_CHECK_REFUSED: Final = frozenset({401, 402, 403})
"""Euler's answers for a key that may not use the route: the check is switched off."""
# TikTok-Live-Connector's DEFAULT_WS_PING_INTERVAL; TikTok's own web client asks for 10 s
# (heartbeat_duration=10000 in TikTokLive's WebSocket parameters).
HEARTBEAT_INTERVAL_S: Final = 10.0
# 4429 / HTTP 429: every connection the key may hold is taken; one frees when another stream
# ends, minutes away, so the supervisor's 1 s start would only spend handshakes (which count
# against the key's limits too). Its attempt n waits delay(n) of this, n = refusals in a row.
TOO_MANY_CONNECTIONS_BACKOFF: Final = Backoff(initial_s=60.0, max_s=900.0, factor=2.0, jitter=0.2)
TOO_MANY_CONNECTIONS: Final = 4429


@dataclass(frozen=True)
class ClosePolicy:
    name: str
    outcome: Outcome | None
    """None: the stream ended, ``run`` returns normally and the supervisor polls."""


CLOSE_POLICY: Final[Mapping[int, ClosePolicy]] = {
    1000: ClosePolicy("NORMAL", Outcome.RECONNECT),  # POLL after a stream end: close_outcome
    1011: ClosePolicy("INTERNAL_SERVER_ERROR", Outcome.RECONNECT),
    4005: ClosePolicy("STREAM_END", None),
    4006: ClosePolicy("NO_MESSAGES_TIMEOUT", Outcome.RECONNECT),
    4400: ClosePolicy("INVALID_OPTIONS", Outcome.STOP),
    4401: ClosePolicy("INVALID_AUTH", Outcome.STOP),
    4403: ClosePolicy("NO_PERMISSION", Outcome.STOP),
    4404: ClosePolicy("NOT_LIVE", Outcome.POLL),
    4429: ClosePolicy("TOO_MANY_CONNECTIONS", Outcome.BACKOFF),
    4500: ClosePolicy("TIKTOK_CLOSED_CONNECTION", Outcome.RECONNECT),
    4555: ClosePolicy("MAX_LIFETIME_EXCEEDED", Outcome.RECONNECT_NOW),
    4556: ClosePolicy("WEBCAST_FETCH_ERROR", Outcome.RECONNECT),
    4557: ClosePolicy("ROOM_INFO_FETCH_ERROR", Outcome.RECONNECT),
}
HTTP_STATUS_POLICY: Final[Mapping[int, Outcome]] = {
    400: Outcome.STOP,
    401: Outcome.STOP,
    403: Outcome.STOP,
    429: Outcome.BACKOFF,
}
"""A handshake refused with an HTTP status (before any close code); others → RECONNECT."""


def close_outcome(code: int, *, stream_ended: bool) -> Outcome | None:
    """What a close with ``code`` means (``CLOSE_POLICY``); None = the stream ended."""
    if code == 1000 and stream_ended:
        return None
    policy = CLOSE_POLICY.get(code)
    return policy.outcome if policy is not None else Outcome.RECONNECT


def close_name(code: int) -> str:
    policy = CLOSE_POLICY.get(code)
    if policy is not None:
        return policy.name
    return "ABNORMAL_CLOSURE" if code == ABNORMAL_CLOSURE else "UNKNOWN"


@dataclass
class EulerStats:
    """Counters over every connection of one provider (observability and tests)."""

    binary_frames: int = 0
    text_frames: int = 0
    messages: int = 0
    json_messages: int = 0
    bad_frames: int = 0
    ignored: int = 0
    acks: int = 0
    heartbeats: int = 0
    """Sent; ``heartbeats_received``: the server's."""
    heartbeats_received: int = 0
    live_checks: int = 0
    live_check_failures: int = 0


class EulerProvider:
    """TikTok LIVE rooms through the Euler Stream WebSocket, in raw-message mode."""

    name: ProviderName = "euler"

    def __init__(
        self,
        api_key: str,
        ws_url: str = DEFAULT_WS_URL,
        *,
        api_url: str | None = DEFAULT_API_URL,
        features: Mapping[str, str] = FEATURE_PARAMS,
        open_timeout_s: float = OPEN_TIMEOUT_S,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
        heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S,
        live_check_timeout_s: float = LIVE_CHECK_TIMEOUT_S,
    ) -> None:
        """``api_url``: Euler's REST API for ``is_live`` (None: no check, connect and let 4404
        say); ``heartbeat_interval_s`` ≤ 0 sends no heartbeats."""
        if not api_key:
            raise ConfigError("the euler provider needs EULER_API_KEY (an Euler Stream API key)")
        self._api_key = api_key
        self.ws_url = self._checked_url(ws_url)
        self.api_url = None if api_url is None else self._checked_api_url(api_url)
        self.features = dict(features)
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.live_check_timeout_s = live_check_timeout_s
        self.stats = EulerStats()
        self.live_check_off: str | None = None
        """Why ``is_live`` stopped asking the REST API (None: it asks)."""
        self._refusals: dict[str, int] = {}  # uniqueId → 4429 / HTTP 429 refusals in a row
        self._ws_logger = _RedactingLogger(logging.getLogger("websockets.client"), self.redact)

    @classmethod
    def from_settings(
        cls, settings: IngestSettings, *, api_url: str | None = DEFAULT_API_URL
    ) -> EulerProvider:
        if not settings.euler_api_key:
            raise ConfigError(
                "INGEST_PROVIDER=euler needs EULER_API_KEY (your Euler Stream API key)"
            )
        return cls(settings.euler_api_key, settings.euler_ws_url, api_url=api_url)

    def __repr__(self) -> str:  # never print the key by accident
        return (
            f"EulerProvider(ws_url={self.ws_url!r}, api_url={self.api_url!r}, api_key=<redacted>)"
        )

    # -- URLs and redaction -------------------------------------------------------------------
    def _checked_url(self, ws_url: str) -> str:
        if not _usable_url(ws_url, ("ws", "wss")):
            raise ConfigError(
                f"EULER_WS_URL must be a ws:// or wss:// URL, got {self.redact(ws_url)!r}"
            )
        return ws_url

    def _checked_api_url(self, api_url: str) -> str:
        if not _usable_url(api_url, ("http", "https")):
            raise ConfigError(
                f"Euler's API URL must be an http:// or https:// URL, got {self.redact(api_url)!r}"
            )
        return api_url.rstrip("/")

    def url(self, unique_id: str) -> str:
        """The WebSocket URL with the API key: hand it to the client, never to a log."""
        return self._build_url(unique_id, self._api_key)

    def redacted_url(self, unique_id: str) -> str:
        return self._build_url(unique_id, REDACTED)

    def _build_url(self, unique_id: str, key: str) -> str:
        parts = urlsplit(self.ws_url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query += [(UNIQUE_ID_PARAM, unique_id), (API_KEY_PARAM, key), *self.features.items()]
        return urlunsplit(parts._replace(query=urlencode(query, safe="*")))

    def redact(self, text: str) -> str:
        """``text`` with the API key (plain or URL-encoded) replaced by ``***``."""
        for form in {self._api_key, quote(self._api_key, safe=""), quote_plus(self._api_key)}:
            if form and form in text:
                text = text.replace(form, REDACTED)
        return text

    # -- Provider protocol ----------------------------------------------------------------------
    async def is_live(self, unique_id: str) -> bool:
        """Whether Euler's REST API says ``unique_id`` is live; True when it cannot tell (the
        WebSocket then decides: 4404 → POLL). See the module docstring for why."""
        if self.api_url is None or self.live_check_off is not None:
            return True
        log = logger.bind(role="ingest", provider=self.name, uniqueId=unique_id)
        self.stats.live_checks += 1
        try:
            async with asyncio.timeout(self.live_check_timeout_s):
                status, body = await self._fetch_room_id(unique_id)
        except (httpx.HTTPError, TimeoutError) as exc:
            detail = self.redact(f"{type(exc).__name__}: {exc}".rstrip(": "))[:REASON_MAX]
            return self._unchecked(log, f"cannot reach euler's API ({detail})")
        fields = body if isinstance(body, dict) else {}
        code = fields.get("code")
        if status in LIVE_CHECK_REFUSED or code in LIVE_CHECK_REFUSED:
            self.live_check_off = f"euler's API refused the live check (HTTP {status}, code {code})"
            log.warning(
                "euler refused the live check for this key; connecting without it from now on",
                status=status,
                code=code if isinstance(code, int) else None,
                message=self.redact(str(fields.get("message", "")))[:REASON_MAX],
            )
            return True
        live = fields.get("is_live")
        if status != 200 or not isinstance(live, bool):
            return self._unchecked(log, f"euler's API answered HTTP {status} without is_live")
        log.debug("euler live check", is_live=live, room_id=str(fields.get("room_id"))[:32])
        return live

    def _unchecked(self, log: Logger, why: str) -> bool:
        self.stats.live_check_failures += 1
        log.warning("euler live check failed; trying the WebSocket", error=why)
        return True

    async def _fetch_room_id(self, unique_id: str) -> tuple[int, Any]:
        """``GET {api_url}/webcast/room_id?uniqueId=..`` → (HTTP status, JSON body or None)."""
        async with httpx.AsyncClient(
            timeout=self.live_check_timeout_s, headers={"User-Agent": USER_AGENT}
        ) as client:  # one request per poll: a client of its own leaves nothing to close
            response = await client.get(
                f"{self.api_url}{ROOM_ID_PATH}",
                params={"uniqueId": unique_id},
                headers={API_KEY_HEADER: self._api_key},
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status_code, body

    async def run(self, unique_id: str, session: Session, stop: asyncio.Event) -> None:
        log = logger.bind(
            role="ingest", provider=self.name, uniqueId=unique_id, session_id=session.session_id
        )
        # The fast decoder reads control messages and room ids; build its schema off the loop
        # now rather than stall the stream at the first control message (~0.7 s, once).
        await asyncio.to_thread(decode.prepare)
        log.info("connecting to euler", url=self.redacted_url(unique_id))
        ws = await self._open(unique_id, stop)
        if ws is None:
            return
        log.info("euler connection open")
        reader = _Reader(self, session, log, ws)
        helpers = [asyncio.create_task(_close_when_set(ws, stop))]
        if self.heartbeat_interval_s > 0:
            helpers.append(asyncio.create_task(reader.heartbeats(self.heartbeat_interval_s)))
        try:
            closed = await reader.read()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await _quietly_close(ws)
        if stop.is_set():
            log.info("euler connection closed: ttlp is stopping")
            return
        self._raise_for_close(unique_id, closed, reader.stream_ended, log)

    # -- internals ------------------------------------------------------------------------------
    async def _open(self, unique_id: str, stop: asyncio.Event) -> ClientConnection | None:
        """Open the WebSocket, or None when ``stop`` was set first; failures → ConnectionEnded."""
        opening = asyncio.create_task(self._connect(self.url(unique_id)))
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({opening, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not opening.done():
                opening.cancel()
            await asyncio.gather(opening, stopping, return_exceptions=True)
        if opening.cancelled():
            return None
        error = opening.exception()
        if error is None:
            ws = opening.result()
            if stop.is_set():
                await _quietly_close(ws)
                return None
            return ws
        if stop.is_set():
            return None
        raise self._connect_failure(unique_id, error) from None

    async def _connect(self, url: str) -> ClientConnection:
        return await connect(
            url,
            open_timeout=self.open_timeout_s,
            close_timeout=self.close_timeout_s,
            max_size=MAX_MESSAGE_BYTES,
            logger=self._ws_logger,
        )

    def _connect_failure(self, unique_id: str, error: BaseException) -> ConnectionEnded:
        if isinstance(error, InvalidStatus):
            status = error.response.status_code
            outcome = HTTP_STATUS_POLICY.get(status, Outcome.RECONNECT)
            wait = None
            if status == 429:
                asked = _retry_after(error.response.headers.get("Retry-After"))
                wait = self._too_many(unique_id) if asked is None else asked
            return ConnectionEnded(
                outcome,
                f"euler refused the connection: HTTP {status}",
                code=f"HTTP {status}",
                retry_after_s=wait,
            )
        detail = self.redact(f"{type(error).__name__}: {error}")[:REASON_MAX]
        if isinstance(error, (InvalidURI, ValueError)):
            return ConnectionEnded(Outcome.STOP, f"EULER_WS_URL is not usable ({detail})")
        if isinstance(error, TimeoutError):
            return ConnectionEnded(Outcome.RECONNECT, "timed out connecting to euler")
        if isinstance(error, OSError):
            return ConnectionEnded(Outcome.RECONNECT, f"cannot reach euler ({detail})")
        return ConnectionEnded(Outcome.RECONNECT, f"euler handshake failed ({detail})")

    def _too_many(self, unique_id: str) -> float:
        """The wait after this streamer's n-th "too many connections" in a row."""
        refusals = self._refusals.get(unique_id, 0) + 1
        self._refusals[unique_id] = refusals
        return TOO_MANY_CONNECTIONS_BACKOFF.delay(refusals)

    def _raise_for_close(
        self,
        unique_id: str,
        closed: ConnectionClosed | WebSocketException | OSError,
        stream_ended: bool,
        log: Logger,
    ) -> None:
        if not isinstance(closed, ConnectionClosed):
            self._refusals.pop(unique_id, None)
            detail = self.redact(f"{type(closed).__name__}: {closed}")[:REASON_MAX]
            log.warning("euler connection failed", error=detail)
            raise ConnectionEnded(Outcome.RECONNECT, f"euler connection failed ({detail})")
        rcvd = closed.rcvd
        code = rcvd.code if rcvd is not None else ABNORMAL_CLOSURE
        wait = None
        if code == TOO_MANY_CONNECTIONS:
            wait = self._too_many(unique_id)
        else:  # the key had a free connection: the next refusal starts the wait afresh
            self._refusals.pop(unique_id, None)
        said = self.redact(rcvd.reason)[:REASON_MAX] if rcvd is not None else ""
        outcome = close_outcome(code, stream_ended=stream_ended)
        name = close_name(code)
        log.info(
            "euler closed the connection",
            code=code,
            close_name=name,
            close_reason=said,
            outcome=outcome.value if outcome else "stream ended",
        )
        if outcome is None:
            return
        reason = f"euler closed the connection: {code} {name}" + (f" ({said})" if said else "")
        raise ConnectionEnded(outcome, reason, code=code, retry_after_s=wait)


class _Reader:
    """One connection's frames → the session; remembers what the close code needs to know."""

    def __init__(
        self, provider: EulerProvider, session: Session, log: Logger, ws: ClientConnection
    ) -> None:
        self.provider = provider
        self.stats = provider.stats
        self.session = session
        self.log = log
        self.ws = ws
        self.stream_ended = False
        self.room_known = asyncio.Event()

    async def read(self) -> ConnectionClosed | WebSocketException | OSError:
        """Read until the connection ends; return what ended it."""
        while True:
            try:
                frame = await self.ws.recv()
            except (WebSocketException, OSError) as exc:  # ConnectionClosed is one of them
                return exc
            if isinstance(frame, bytes):
                await self.on_binary(frame)
            else:
                await self.on_text(frame)

    # -- what goes back: acks and heartbeats ------------------------------------------------------
    async def send(self, frame: bytes) -> bool:
        try:
            await self.ws.send(frame)
        except (WebSocketException, OSError):
            return False  # the socket is closing: ``read`` returns what ended it
        return True

    async def ack(self, log_id: int, internal_ext: str) -> None:
        if await self.send(envelope.ack_frame(log_id, internal_ext)):
            self.stats.acks += 1

    async def heartbeats(self, every_s: float) -> None:
        """A heartbeat once the room is known, then one every ``every_s`` until cancelled."""
        await self.room_known.wait()
        room_id = self.session.room_id or "0"
        seq_id = 0
        try:
            while True:
                seq_id += 1
                if await self.send(envelope.heartbeat_frame(room_id, seq_id)):
                    self.stats.heartbeats += 1
                await asyncio.sleep(every_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must show, not end the task unseen
            self.log.opt(exception=exc).error("euler heartbeats stopped")

    # -- binary: TikTok's own bytes --------------------------------------------------------------
    async def on_binary(self, data: bytes) -> None:
        self.stats.binary_frames += 1
        try:
            push = envelope.parse_push_frame(data)
            if push.payload_type == envelope.HEARTBEAT:
                self.stats.heartbeats_received += 1  # the other side's keep-alive
                return
            if push.payload_type not in ("", "msg"):
                self.stats.ignored += 1  # not a message batch
                return
            result = envelope.parse_fetch_result(push.payload)
        except PermanentError as exc:
            self.bad_frame("binary", str(exc), len(data))
            return
        if result.need_ack:  # before publishing: the ack must not wait for the bus
            await self.ack(push.log_id, result.internal_ext)
        messages = [m for m in result.messages if m.method]
        if not messages:
            return
        if self.session.room_id is None:
            room = _room_from_messages(messages)
            if room:
                await self.joined(room)
        if any(m.method == CONTROL_TYPE and ends_stream(m.payload) for m in messages):
            self.stream_ended = True
        await self.session.messages(messages)
        self.stats.messages += len(messages)

    # -- text: Euler's JSON ----------------------------------------------------------------------
    async def on_text(self, text: str) -> None:
        self.stats.text_frames += 1
        try:
            document = msgspec.json.decode(text)
        except msgspec.DecodeError:
            self.bad_frame("text", "not JSON", len(text))
            return
        items = _items(document)
        if items is None:
            self.bad_frame("text", "JSON of no known shape", len(text))
            return
        for item in items:
            await self.on_item(item)

    async def on_item(self, item: Any) -> None:
        kind = (item.get("type") or item.get("method")) if isinstance(item, dict) else None
        data = item.get("data") if isinstance(item, dict) else None
        if not isinstance(kind, str) or not isinstance(data, dict):
            self.bad_frame("text", "message without a type name and a data object", 0)
            return
        if kind == "workerInfo":
            self.on_worker_info(data)
        elif kind == "roomInfo":
            room = _room_from_room_info(data)
            if room:
                await self.joined(room)
            else:
                self.log.warning("euler roomInfo names no room id")
        elif kind.startswith("Webcast"):
            await self.on_json_message(kind, data)
        else:
            self.stats.ignored += 1
            self.log.debug("ignoring an euler message", type=kind[:64])

    def on_worker_info(self, data: dict[str, Any]) -> None:
        self.log.debug(
            "euler worker",
            web_socket_id=str(data.get("webSocketId"))[:64],
            agent_id=str(data.get("agentId"))[:64],
            schema_version=str(data.get("schemaVersion"))[:16],
        )
        warning = data.get("deprecationWarning")
        if warning:
            self.log.warning("euler deprecation warning", detail=self.provider.redact(str(warning)))

    async def on_json_message(self, kind: str, data: dict[str, Any]) -> None:
        common = data.get("common")
        common = common if isinstance(common, dict) else {}
        if self.session.room_id is None:
            room = _id(common.get("roomId"))
            if room:
                await self.joined(room)
        if kind == CONTROL_TYPE and stream_end_action(data.get("action")) is not None:
            self.stream_ended = True
        msg_id = _int(common.get("msgId"))  # 0: Session.seq_no gives it a seqNo of its own
        created = _int(common.get("createTime")) or None
        await self.session.json_message(kind, data, msg_id, created)
        self.stats.json_messages += 1

    # -- shared ---------------------------------------------------------------------------------
    async def joined(self, room_id: str) -> None:
        if self.session.room_id is None:
            self.log.info("joined the room", room_id=room_id)
            await self.session.connected(room_id)
            self.room_known.set()
        elif self.session.room_id != room_id:
            self.log.warning("euler named another room; keeping the first", room_id=room_id)

    def bad_frame(self, kind: str, error: str, size: int) -> None:
        self.stats.bad_frames += 1
        count = self.stats.bad_frames
        if count <= BAD_FRAME_LOG_FIRST or count % BAD_FRAME_LOG_EVERY == 0:
            self.log.warning(
                "skipping an unreadable euler frame",
                frame=kind,
                error=self.provider.redact(error)[:REASON_MAX],
                bytes=size,
                bad_frames=count,
            )


# -- helpers ------------------------------------------------------------------------------------
def _usable_url(url: str, schemes: tuple[str, ...]) -> bool:
    """One of ``schemes``, a host, and a port that is a number if there is one."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return False
    return parts.scheme in schemes and bool(parts.hostname)


def _items(document: Any) -> list[Any] | None:
    if isinstance(document, dict):
        messages = document.get("messages")
        if isinstance(messages, list):
            return messages
        if "type" in document or "method" in document:
            return [document]
    return None


_ROOM_ID_PATHS: Final = (("roomInfo", "id"), ("roomId",), ("raw", "data", "user", "roomId"))


def _room_from_room_info(data: Mapping[str, Any]) -> str | None:
    for path in _ROOM_ID_PATHS:
        value: Any = data
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        room = _id(value)
        if room:
            return room
    return None


def _room_from_messages(messages: list[Message]) -> str | None:
    """The first ``common.roomId`` among ``messages`` (parsed with the fast decoder)."""
    for message in messages:
        try:
            parsed = decode.parse_message(message.method, message.payload)
        except PermanentError:
            continue
        common = getattr(parsed, "common", None) if parsed is not None else None
        room_id = getattr(common, "room_id", 0) if common is not None else 0
        if isinstance(room_id, int) and room_id > 0:
            return str(room_id)
    return None


def _int(value: Any) -> int:
    """A JSON number or decimal string → int; anything else → 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return 0


def _id(value: Any) -> str | None:
    number = _int(value)
    return str(number) if number > 0 else None


def _retry_after(value: str | None) -> float | None:
    """An HTTP ``Retry-After`` in seconds (its date form is not used by Euler) → seconds."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


async def _close_when_set(ws: ClientConnection, stop: asyncio.Event) -> None:
    await stop.wait()
    await ws.close(1000, "ttlp is stopping")


async def _quietly_close(ws: ClientConnection) -> None:
    with contextlib.suppress(WebSocketException, OSError):  # already gone: nothing to release
        await ws.close()


class _RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """websockets' logger with the API key taken out of every line it writes.

    Its debug lines include the request line (``GET /?uniqueId=..&apiKey=..``) and its errors
    may carry exceptions that quote the URI; the lines are formatted here, redacted, then passed
    on without arguments or exc_info.
    """

    def __init__(self, inner: logging.Logger, redact: Callable[[str], str]) -> None:
        super().__init__(inner, {})
        self._redact = redact

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = " ".join(str(part) for part in (msg, *args))
        exc_info = kwargs.pop("exc_info", None)
        if exc_info:
            if exc_info is True:
                exc_info = sys.exc_info()
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            if isinstance(exc_info, tuple) and exc_info[0] is not None:
                text += "\n" + "".join(traceback.format_exception(*exc_info))
        kwargs.pop("stack_info", None)
        self.logger.log(level, self._redact(text), **kwargs)
