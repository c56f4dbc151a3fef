"""The euler provider: TikTok LIVE through the Euler Stream WebSocket (DESIGN §5.1).

One WebSocket per connection, ``{EULER_WS_URL}?uniqueId=<handle>&apiKey=<key>`` plus
``features.rawMessages=true`` (the query names are ``UNIQUE_ID_PARAM``, ``API_KEY_PARAM`` and
``FEATURE_PARAMS`` below, the one place to change them; they follow Euler's WebSocket SDK,
which flattens its ``features`` options into dotted query parameters). Raw mode makes Euler
forward TikTok's own bytes, so this provider publishes exactly what the direct provider does.

Binary frames
    ``WebcastPushFrame`` → payload (gunzip'd when it starts 1f 8b) → ``ProtoMessageFetchResult``
    → its messages published undecoded (``Session.messages``: method + base64 protobuf, seqNo =
    ``msgId``, timestamp = create time), via ``ttlp.tiktok.envelope``. A frame whose envelope
    cannot be read (not a push frame, bad gzip, not a fetch result) is counted
    (``stats.bad_frames``), logged at warning with its size and the parse error (never its
    bytes), and skipped; the connection goes on. Such a frame carries no TikTok message type,
    msgId or room, so there is nothing to put in a raw.v1 frame except an invented type, which
    the normalizer would turn into a RAW *event* of unusable bytes (unknown types become RAW,
    not dead letters). A message whose own bytes are corrupt inside a readable envelope *is*
    published under its method: the normalizer dead-letters it with PARSE_ERROR.

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

Messages without a msgId (0 or absent) get a seqNo from a per-connection counter that starts at
the clock in ms × 10⁶, so they neither collide with each other (same eventId) nor with TikTok's
msgIds (~7·10¹⁸) nor with another connection's.

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
    4429  TOO_MANY_CONNECTIONS      raise ConnectionEnded(BACKOFF)
    4500  TIKTOK_CLOSED_CONNECTION  raise ConnectionEnded(RECONNECT), with back-off
    1011  INTERNAL_SERVER_ERROR     raise ConnectionEnded(RECONNECT)
    4556  WEBCAST_FETCH_ERROR       raise ConnectionEnded(RECONNECT)
    4557  ROOM_INFO_FETCH_ERROR     raise ConnectionEnded(RECONNECT)
    4006  NO_MESSAGES_TIMEOUT       raise ConnectionEnded(RECONNECT)
    4555  MAX_LIFETIME_EXCEEDED     raise ConnectionEnded(RECONNECT_NOW): the 8-hour cut
    1000  NORMAL                    return normally after a stream end (a ControlMessage
                                    with action 3 or 4 was seen), else RECONNECT
    any   other code, or none       raise ConnectionEnded(RECONNECT) (1006: dropped)
    ====  ========================  ==================================================

    Before the WebSocket opens: the handshake refused with HTTP 400/401/403 → STOP, 429 →
    BACKOFF, any other status → RECONNECT; a URL the client rejects → STOP (one that is not
    ``ws://`` / ``wss://`` with a host is refused earlier, by the constructor: ``ConfigError``);
    connection refused, DNS, TLS, timeouts and other network errors → RECONNECT. ``stop`` set →
    the socket is closed cleanly (1000) and ``run`` returns.

``is_live``: Euler has no cheap liveness check here, so it answers True and lets the
connection say otherwise (4404 → POLL after ``INGEST_POLL_INTERVAL_S``).

The API key travels only in the URL handed to ``websockets.connect``. Logged URLs have it
replaced (``redacted_url``); every text that leaves this module from the network side (close
reasons, exception messages, the ``ConnectionEnded`` reasons that become DISCONNECTED events)
goes through ``redact`` (the key as is and URL-encoded); and websockets' own logger is wrapped
so its debug lines (the request line holds the URL-encoded query) are redacted too.
``ttlp.log``'s redactor, which knows the key as configured, stays a second line of defence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

import msgspec
from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

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


class EulerProvider:
    """TikTok LIVE rooms through the Euler Stream WebSocket, in raw-message mode."""

    name: ProviderName = "euler"

    def __init__(
        self,
        api_key: str,
        ws_url: str = DEFAULT_WS_URL,
        *,
        features: Mapping[str, str] = FEATURE_PARAMS,
        open_timeout_s: float = OPEN_TIMEOUT_S,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
    ) -> None:
        if not api_key:
            raise ConfigError("the euler provider needs EULER_API_KEY (an Euler Stream API key)")
        self._api_key = api_key
        self.ws_url = self._checked_url(ws_url)
        self.features = dict(features)
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        self.stats = EulerStats()
        self._ws_logger = _RedactingLogger(logging.getLogger("websockets.client"), self.redact)

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> EulerProvider:
        if not settings.euler_api_key:
            raise ConfigError(
                "INGEST_PROVIDER=euler needs EULER_API_KEY (your Euler Stream API key)"
            )
        return cls(settings.euler_api_key, settings.euler_ws_url)

    def __repr__(self) -> str:  # never print the key by accident
        return f"EulerProvider(ws_url={self.ws_url!r}, api_key=<redacted>)"

    # -- URLs and redaction -------------------------------------------------------------------
    def _checked_url(self, ws_url: str) -> str:
        try:
            parts = urlsplit(ws_url)
            usable = parts.scheme in ("ws", "wss") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        except ValueError:
            usable = False
        if not usable:
            raise ConfigError(
                f"EULER_WS_URL must be a ws:// or wss:// URL, got {self.redact(ws_url)!r}"
            )
        return ws_url

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
        """Always True: Euler answers an offline creator with close code 4404 (→ POLL)."""
        return True

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
        reader = _Reader(self, session, log)
        closer = asyncio.create_task(_close_when_set(ws, stop))
        try:
            closed = await reader.read(ws)
        finally:
            closer.cancel()
            await asyncio.gather(closer, return_exceptions=True)
            await _quietly_close(ws)
        if stop.is_set():
            log.info("euler connection closed: ttlp is stopping")
            return
        self._raise_for_close(closed, reader.stream_ended, log)

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
        raise self._connect_failure(error) from None

    async def _connect(self, url: str) -> ClientConnection:
        return await connect(
            url,
            open_timeout=self.open_timeout_s,
            close_timeout=self.close_timeout_s,
            max_size=MAX_MESSAGE_BYTES,
            logger=self._ws_logger,
        )

    def _connect_failure(self, error: BaseException) -> ConnectionEnded:
        if isinstance(error, InvalidStatus):
            status = error.response.status_code
            outcome = HTTP_STATUS_POLICY.get(status, Outcome.RECONNECT)
            return ConnectionEnded(
                outcome, f"euler refused the connection: HTTP {status}", code=f"HTTP {status}"
            )
        detail = self.redact(f"{type(error).__name__}: {error}")[:REASON_MAX]
        if isinstance(error, (InvalidURI, ValueError)):
            return ConnectionEnded(Outcome.STOP, f"EULER_WS_URL is not usable ({detail})")
        if isinstance(error, TimeoutError):
            return ConnectionEnded(Outcome.RECONNECT, "timed out connecting to euler")
        if isinstance(error, OSError):
            return ConnectionEnded(Outcome.RECONNECT, f"cannot reach euler ({detail})")
        return ConnectionEnded(Outcome.RECONNECT, f"euler handshake failed ({detail})")

    def _raise_for_close(
        self,
        closed: ConnectionClosed | WebSocketException | OSError,
        stream_ended: bool,
        log: Logger,
    ) -> None:
        if not isinstance(closed, ConnectionClosed):
            detail = self.redact(f"{type(closed).__name__}: {closed}")[:REASON_MAX]
            log.warning("euler connection failed", error=detail)
            raise ConnectionEnded(Outcome.RECONNECT, f"euler connection failed ({detail})")
        rcvd = closed.rcvd
        code = rcvd.code if rcvd is not None else ABNORMAL_CLOSURE
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
        raise ConnectionEnded(outcome, reason, code=code)


class _Reader:
    """One connection's frames → the session; remembers what the close code needs to know."""

    def __init__(self, provider: EulerProvider, session: Session, log: Logger) -> None:
        self.provider = provider
        self.stats = provider.stats
        self.session = session
        self.log = log
        self.stream_ended = False
        self._next_seq = int(time.time() * 1000) * 1_000_000

    async def read(self, ws: ClientConnection) -> ConnectionClosed | WebSocketException | OSError:
        """Read until the connection ends; return what ended it."""
        while True:
            try:
                frame = await ws.recv()
            except (WebSocketException, OSError) as exc:  # ConnectionClosed is one of them
                return exc
            if isinstance(frame, bytes):
                await self.on_binary(frame)
            else:
                await self.on_text(frame)

    # -- binary: TikTok's own bytes --------------------------------------------------------------
    async def on_binary(self, data: bytes) -> None:
        self.stats.binary_frames += 1
        try:
            push = envelope.parse_push_frame(data)
            if push.payload_type not in ("", "msg"):
                self.stats.ignored += 1  # not a message batch (e.g. a heartbeat)
                return
            result = envelope.parse_fetch_result(push.payload)
        except PermanentError as exc:
            self.bad_frame("binary", str(exc), len(data))
            return
        messages = [self._with_seq(m) for m in result.messages if m.method]
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

    def _with_seq(self, message: Message) -> Message:
        if message.msg_id > 0:
            return message
        return replace(message, msg_id=self._fallback_seq())

    def _fallback_seq(self) -> int:
        self._next_seq += 1
        return self._next_seq

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
        msg_id = _int(common.get("msgId")) or self._fallback_seq()
        created = _int(common.get("createTime")) or None
        await self.session.json_message(kind, data, msg_id, created)
        self.stats.json_messages += 1

    # -- shared ---------------------------------------------------------------------------------
    async def joined(self, room_id: str) -> None:
        if self.session.room_id is None:
            self.log.info("joined the room", room_id=room_id)
            await self.session.connected(room_id)
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
