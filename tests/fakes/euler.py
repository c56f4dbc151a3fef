"""A fake Euler Stream WebSocket server, and builders of the frames the real one sends.

``FakeEuler`` listens on 127.0.0.1 (a free port) and plays one script per connection (the
last script repeats): JSON text frames, binary ``WebcastPushFrame``s holding real protobuf
built with TikTokLiveProto, a close with a given code, or an HTTP refusal of the handshake
(with a ``Retry-After`` if asked). Like Euler it checks the query first: a wrong ``apiKey``
closes with 4401, a missing ``uniqueId`` or ``features.rawMessages=true`` with 4400. Every
handshake is recorded (``connections``: its query), and so is every binary frame the client
sends (``Connection.received``, parsed with TikTokLiveProto, not with ttlp's own envelope
code); ``Connection.wait_received`` awaits a condition on them.

Raw mode relays the push protocol both ways, so the fake plays TikTok's side of it too: a
client heartbeat (payloadType ``hb``) is answered with a server ``hb`` frame, as TikTok's push
server does. With ``inactivity_close_s`` it also plays Euler's ``closeInactiveWebSocketAfter``:
when the TikTok side has sent nothing (script frames, heartbeat answers) for that long, it
closes with 4006 NO_MESSAGES_TIMEOUT. That is the model under which a client's heartbeats keep
a quiet room open.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # TikTokLive's websockets import
    import TikTokLive.proto as P
    from TikTokLiveProto.v3.webcast.model.message import common as message_common

ROOM_ID = 7441234567890123456
CREATED_MS = 1771754400000
GARBAGE = b"\xff\xff\xff\xff\xff not a push frame"
INTERNAL_EXT = "internal_src:dim|wss_push_room_id:7441234567890123456"
NO_MESSAGES_TIMEOUT = 4006


# -- scripts ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Send:
    data: str | bytes


@dataclass(frozen=True)
class Close:
    code: int
    reason: str = ""


@dataclass(frozen=True)
class Hold:
    """Keep the connection open until the client closes it."""


@dataclass(frozen=True)
class Reject:
    """Refuse the handshake with an HTTP status (only meaningful as a script's first step)."""

    status: int
    retry_after: str | None = None
    """A ``Retry-After`` header to send with it."""


Step = Send | Close | Hold | Reject


@dataclass
class Connection:
    query: dict[str, str]
    script: list[Step]
    closed_by_client: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    """The code the client closed with (after ``closed_by_client``)."""
    received: list[Any] = field(default_factory=list)
    """Every binary frame the client sent, as a TikTokLiveProto ``WebcastPushFrame``."""
    closed_for_inactivity: bool = False
    last_upstream: float = field(default_factory=time.monotonic)
    """When the TikTok side last sent something (the inactivity close counts from here)."""
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def sent(self, payload_type: str) -> list[Any]:
        """The client's frames of one payloadType (``ack``, ``hb``), in order."""
        return [f for f in self.received if f.payload_type == payload_type]

    async def wait_received(self, done: Callable[[Connection], bool]) -> None:
        """Until ``done(self)`` holds (checked on every frame the client sends)."""
        async with self._changed:
            await self._changed.wait_for(lambda: done(self))

    async def add(self, frame: Any) -> None:
        async with self._changed:
            self.received.append(frame)
            self._changed.notify_all()


class FakeEuler:
    def __init__(
        self,
        scripts: Sequence[Sequence[Step]],
        *,
        unique_id: str,
        api_key: str,
        inactivity_close_s: float | None = None,
    ) -> None:
        self.scripts = [list(s) for s in scripts] or [[Hold()]]
        self.unique_id = unique_id
        self.api_key = api_key
        self.inactivity_close_s = inactivity_close_s
        self.connections: list[Connection] = []
        self._server: Server | None = None
        self._by_socket: dict[int, Connection] = {}

    async def __aenter__(self) -> FakeEuler:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._process_request
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return f"ws://{host}:{port}"

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        script = self.scripts[min(len(self.connections), len(self.scripts) - 1)]
        record = Connection(dict(parse_qsl(urlsplit(request.path).query)), script)
        self.connections.append(record)
        self._by_socket[id(connection)] = record
        if script and isinstance(script[0], Reject):
            response = connection.respond(script[0].status, "refused\n")
            if script[0].retry_after is not None:
                response.headers["Retry-After"] = script[0].retry_after
            return response
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        record = self._by_socket.pop(id(connection))
        query = record.query
        if query.get("apiKey") != self.api_key:
            await connection.close(4401, "Invalid Auth")
            return
        if query.get("uniqueId") != self.unique_id or query.get("features.rawMessages") != "true":
            await connection.close(4400, "Invalid Options")
            return
        helpers = [asyncio.create_task(self._listen(connection, record))]
        if self.inactivity_close_s is not None:
            helpers.append(asyncio.create_task(self._close_when_quiet(connection, record)))
        try:
            for step in record.script:
                if isinstance(step, Send):
                    await connection.send(step.data)
                    record.last_upstream = time.monotonic()
                elif isinstance(step, Close):
                    await connection.close(step.code, step.reason)
                    return
                else:
                    break
            await connection.wait_closed()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        if not record.closed_for_inactivity:
            record.close_code = connection.close_code
            record.closed_by_client.set()

    async def _listen(self, connection: ServerConnection, record: Connection) -> None:
        """Record the client's frames; answer its heartbeats as TikTok's push server does."""
        with contextlib.suppress(ConnectionClosed):
            async for message in connection:
                if not isinstance(message, bytes):
                    continue
                frame = P.WebcastPushFrame().parse(message)
                await record.add(frame)
                if frame.payload_type == "hb":
                    await connection.send(bytes(P.WebcastPushFrame(payload_type="hb")))
                    record.last_upstream = time.monotonic()

    async def _close_when_quiet(self, connection: ServerConnection, record: Connection) -> None:
        """Euler's ``closeInactiveWebSocketAfter``: 4006 after that long without TikTok."""
        assert self.inactivity_close_s is not None
        while True:
            quiet = time.monotonic() - record.last_upstream
            if quiet >= self.inactivity_close_s:
                record.closed_for_inactivity = True
                await connection.close(NO_MESSAGES_TIMEOUT, "No messages received in timeout")
                return
            await asyncio.sleep(self.inactivity_close_s - quiet)  # the fake server's own timer


# -- TikTok messages, built with TikTokLiveProto --------------------------------------------
def user(uid: int, handle: str, nickname: str) -> Any:
    return P.User(id=uid, nickname=nickname, display_id=handle)


ZOE = user(7012345678901234501, "zoe.petals", "Zoë 🌸")
OWL = user(6812345678901234567, "night.owl", "night owl 🦉")
FAM = user(7441234567890123999, "fam.account", "👩‍👩‍👧‍👦 fam")


def common(method: str, msg_id: int, key: str = "", room_id: int = ROOM_ID) -> Any:
    return P.CommonMessageData(
        method=method,
        msg_id=msg_id,
        room_id=room_id,
        create_time=CREATED_MS + msg_id % 1000,
        display_text=message_common.Text(key=key) if key else None,
    )


def chat(msg_id: int, who: Any, text: str) -> Any:
    return P.WebcastChatMessage(
        common=common("WebcastChatMessage", msg_id), user=who, content=text, content_language="en"
    )


def gift(msg_id: int, who: Any, repeat_count: int, repeat_end: bool) -> Any:
    return P.WebcastGiftMessage(
        common=common("WebcastGiftMessage", msg_id),
        user=who,
        gift_id=5655,
        repeat_count=repeat_count,
        repeat_end=int(repeat_end),
        gift=P.Gift(id=5655, name="Rose", diamond_count=1, type=1, combo=True),
    )


def gift_streak(first_msg_id: int, who: Any, frames: int = 5) -> list[Any]:
    """A streakable gift's combo: cumulative repeat counts, the last frame with repeat_end=1."""
    return [gift(first_msg_id + i, who, i + 1, i == frames - 1) for i in range(frames)]


def like(msg_id: int, who: Any, count: int, total: int) -> Any:
    return P.WebcastLikeMessage(
        common=common("WebcastLikeMessage", msg_id), user=who, count=count, total=total
    )


def social(msg_id: int, who: Any, key: str) -> Any:
    return P.WebcastSocialMessage(
        common=common("WebcastSocialMessage", msg_id, key=key), user=who, action=1
    )


def control(msg_id: int, action: int) -> Any:
    return P.WebcastControlMessage(
        common=common("WebcastControlMessage", msg_id), action=action, tips="the LIVE has ended"
    )


def method(message: Any) -> str:
    name: str = type(message).__name__
    assert name.startswith("Webcast"), name
    return name


# -- frames -------------------------------------------------------------------------------------
def fetch_result(messages: Sequence[Any], *, need_ack: bool = False) -> bytes:
    result = P.ProtoMessageFetchResult(
        messages=[
            P.BaseProtoMessage(method=method(m), payload=bytes(m), msg_id=m.common.msg_id)
            for m in messages
        ],
        cursor="1771754400000_7441",
        internal_ext=INTERNAL_EXT,
        need_ack=need_ack,
    )
    return bytes(result)


def push_frame(
    messages: Sequence[Any], *, gzipped: bool, seq_id: int = 1, need_ack: bool = False
) -> bytes:
    """A WebcastPushFrame as Euler forwards it in raw mode (payload gzip'd or plain); its
    logId is ``seq_id × 7``."""
    payload = fetch_result(messages, need_ack=need_ack)
    return push_frame_with_payload(gzip.compress(payload) if gzipped else payload, seq_id)


def push_frame_with_payload(payload: bytes, seq_id: int = 1) -> bytes:
    return bytes(
        P.WebcastPushFrame(
            seq_id=seq_id,
            log_id=seq_id * 7,
            payload_encoding="pb",
            payload_type="msg",
            payload=payload,
        )
    )


BAD_GZIP = push_frame_with_payload(b"\x1f\x8b\x08\x00 this is not gzip at all")


def json_item(message: Any) -> dict[str, Any]:
    """A decoded message as Euler's JSON carries it: type name + camelCase object."""
    return {"type": method(message), "data": message.to_dict()}


def bundle(*items: dict[str, Any]) -> str:
    return json.dumps({"messages": list(items), "timestamp": int(time.time() * 1000)})


def worker_info(deprecation: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"webSocketId": "ws-4f2a", "agentId": "agent-7", "schemaVersion": "v2"}
    if deprecation:
        data["deprecationWarning"] = deprecation
    return {"type": "workerInfo", "data": data}


def room_info(room_id: int = ROOM_ID) -> dict[str, Any]:
    return {
        "type": "roomInfo",
        "data": {
            "roomInfo": {"id": str(room_id), "status": 2, "title": "late night beats 🎧"},
            "user": {"uniqueId": "luna.beats", "nickname": "Luna 🎧"},
        },
    }


def opening(room_id: int = ROOM_ID) -> list[Step]:
    """What Euler sends first: workerInfo, then roomInfo (each its own bundle)."""
    return [Send(bundle(worker_info())), Send(bundle(room_info(room_id)))]
