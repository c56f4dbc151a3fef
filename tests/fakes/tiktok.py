"""A local TikTok for the direct provider: web page, webcast API, sign server, push WebSocket.

Everything listens on one 127.0.0.1 port: ``websockets``' server answers the HTTP routes in
``process_request`` and upgrades the push path. It speaks what an unmodified
``TikTokLiveClient`` expects:

* ``GET /@{uniqueId}/live``: the live page with its ``SIGI_STATE`` JSON (room id, status 4 =
  offline; no ``LiveRoom`` = no such user; no ``SIGI_STATE`` at all = a captcha page);
* ``GET /api-live/user/room/``: the room API the client falls back on;
* ``GET /webcast/room/check_alive/``: the live check by room id;
* ``GET /webcast/room/info/``: room info (for an age-restricted room, the near-empty answer
  TikTok gives an anonymous viewer: ``prompts`` and status 4003110);
* ``GET /webcast/fetch``: the sign server's first fetch: a ``ProtoMessageFetchResult`` whose
  ``push_server`` and ``route_params`` point at this server's WebSocket, plus the
  ``X-Set-TT-Cookie`` header the client insists on (or a 429 with the room's
  ``rate_limit_headers``, none at all included);
* the push WebSocket: sends gzip'd ``WebcastPushFrame``s as the connection's ``Script``
  says, and records what the client sends (room enter, heartbeats, acks).

Messages are real TikTokLiveProto messages (``Messages`` builds them with a moving clock and
TikTok-like msgIds). ``FakeTikTok.settings()`` gives the ``IngestSettings`` that point the
provider here. The ``fake_tiktok`` fixture (``tests/support/fakes.py``) starts one for a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip as gzip_module
import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import msgspec
import TikTokLive.proto as P
from TikTokLiveProto.v3.webcast.model.message import common
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from tests.support.wait import free_port
from ttlp.settings import IngestSettings

ROOM_ID = 7441234567890123456
STREAMER = "luna.beats"
PUSH_PATH = "/webcast/im/push/v2/"
START_MS = 1_732_217_400_000
FIRST_MSG_ID = 7_441_000_000_000_000_001
FOLLOW_KEY = "pm_main_follow_message_viewer_2"
SHARE_KEY = "pm_mt_guidance_share"
STEP_TIMEOUT_S = 10.0


# -- TikTok messages ---------------------------------------------------------------------------
def user(uid: int, handle: str, nickname: str) -> Any:
    return P.User(id=uid, nickname=nickname, display_id=handle)


ZOE = user(7012345678901234501, "zoe.petals", "Zoë 🌸")
AKHMED = user(7012345678901234502, "akhmed_kzn", "Ахмед")
XIAOMING = user(7012345678901234503, "xiaoming88", "小明")


class Messages:
    """Builds ``BaseProtoMessage``s as TikTok sends them: method, payload bytes, msgId.

    Each message gets ``common`` with the next msgId (growing, not by one) and a create time
    that moves on by ``step_ms``; ``last`` is what the latest call built (id and time).
    """

    def __init__(self, room_id: int = ROOM_ID, *, first_id: int = FIRST_MSG_ID) -> None:
        self.room_id = room_id
        self.ids = itertools.count(first_id, 1_048_573)
        self.now_ms = START_MS
        self.step_ms = 350

    def wrap(self, message: Any, *, key: str | None = None) -> Any:
        """Give ``message`` its ``common`` header and wrap it as a fetched message."""
        self.now_ms += self.step_ms
        msg_id = next(self.ids)
        method = type(message).__name__
        message.common = P.CommonMessageData(
            method=method,
            msg_id=msg_id,
            room_id=self.room_id,
            create_time=self.now_ms,
            display_text=common.Text(key=key, default_pattern="{0:user}") if key else None,
        )
        return P.ProtoMessageFetchResultBaseProtoMessage(
            method=method, payload=bytes(message), msg_id=msg_id
        )

    def chat(self, who: Any, text: str) -> Any:
        return self.wrap(P.WebcastChatMessage(user=who, content=text, content_language="en"))

    def gift(
        self, who: Any, *, gift_id: int, name: str, diamonds: int, repeat: int, end: bool
    ) -> Any:
        """One frame of a streakable (type 1) gift; ``repeat`` is cumulative in the streak."""
        return self.wrap(
            P.WebcastGiftMessage(
                user=who,
                gift_id=gift_id,
                repeat_count=repeat,
                repeat_end=int(end),
                combo_count=repeat,
                group_id=1732217400000 + gift_id,
                gift=P.Gift(id=gift_id, name=name, diamond_count=diamonds, type=1, combo=True),
            )
        )

    def like(self, who: Any, count: int, total: int) -> Any:
        return self.wrap(P.WebcastLikeMessage(user=who, count=count, total=total))

    def follow(self, who: Any) -> Any:
        return self.wrap(
            P.WebcastSocialMessage(user=who, action=1, follow_count=48213), key=FOLLOW_KEY
        )

    def share(self, who: Any) -> Any:
        return self.wrap(P.WebcastSocialMessage(user=who, action=3), key=SHARE_KEY)

    def viewers(self, total: int, total_user: int) -> Any:
        return self.wrap(P.WebcastRoomUserSeqMessage(total=total, total_user=total_user))

    def control(self, action: int = 3) -> Any:
        """A ControlMessage; action 3 = STREAM_ENDED."""
        return self.wrap(P.WebcastControlMessage(action=action, tips="The LIVE has ended"))

    def without_id(self, message: Any, method: str | None = None) -> Any:
        """A message as TikTok sends some types (e.g. ``WebcastWeeklyRankRewardMessage``):
        ``common`` with a create time but no msgId, and no msgId on the envelope either."""
        self.now_ms += self.step_ms
        method = method or type(message).__name__
        message.common = P.CommonMessageData(
            method=method, room_id=self.room_id, create_time=self.now_ms
        )
        return P.ProtoMessageFetchResultBaseProtoMessage(method=method, payload=bytes(message))

    def raw(self, method: str, payload: bytes, msg_id: int = 0) -> Any:
        """A message exactly as given: unknown types, garbage payloads."""
        return P.ProtoMessageFetchResultBaseProtoMessage(
            method=method, payload=payload, msg_id=msg_id
        )


def fetch_result(
    messages: Iterable[Any],
    *,
    internal_ext: str = "",
    need_ack: bool = False,
    first: bool = False,
    cursor: str | None = None,
    push_server: str = "",
    route_params: dict[str, str] | None = None,
) -> Any:
    return P.ProtoMessageFetchResult(
        messages=list(messages),
        cursor=f"cursor-{START_MS}" if cursor is None else cursor,
        fetch_interval=1000,
        now=START_MS,
        internal_ext=internal_ext,
        heartbeat_duration=10_000,
        need_ack=need_ack,
        push_server=push_server,
        route_params=route_params or {},
        is_first=first,
    )


def push_frame(
    payload: bytes, *, log_id: int, gzip: bool = True, payload_type: str = "msg"
) -> bytes:
    """A WebcastPushFrame as TikTok sends it (``compress_type: gzip`` when ``gzip``)."""
    headers = [P.PushHeader(key="compress_type", value="gzip")] if gzip else []
    body = gzip_module.compress(payload) if gzip else payload
    return bytes(
        P.WebcastPushFrame(
            seq_id=log_id,
            log_id=log_id,
            payload_type=payload_type,
            payload_encoding="pb",
            headers=headers,
            payload=body,
        )
    )


# -- connection scripts ------------------------------------------------------------------------
@dataclass(frozen=True)
class Send:
    """Send one WebSocket binary frame (``Send.result`` builds a push frame of messages)."""

    data: bytes

    @classmethod
    def result(
        cls, messages: Iterable[Any], *, log_id: int, need_ack: bool = True, gzip: bool = True
    ) -> Send:
        result = fetch_result(messages, internal_ext=f"ext-{log_id}", need_ack=need_ack)
        return cls(push_frame(bytes(result), log_id=log_id, gzip=gzip))


@dataclass(frozen=True)
class AwaitHeartbeats:
    """Wait until the client has sent ``count`` heartbeats on this connection."""

    count: int

    def done(self, room: FakeRoom, connection: int) -> bool:
        return len(room.sent("hb", connection)) >= self.count


@dataclass(frozen=True)
class AwaitAck:
    """Wait until the client has acked the push frame ``log_id``."""

    log_id: int

    def done(self, room: FakeRoom, connection: int) -> bool:
        return any(a.log_id == self.log_id for a in room.sent("ack", connection))


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Close:
    """Close the WebSocket with ``code`` (1000 normal, 1011 server error...)."""

    code: int = 1000
    reason: str = ""


@dataclass(frozen=True)
class Drop:
    """Cut the TCP connection without a close frame."""


Step = Send | AwaitHeartbeats | AwaitAck | Pause | Close | Drop


@dataclass
class Script:
    """One connection: the sign server's first messages, then the WebSocket's steps.

    After the steps the connection stays open until the client closes it.
    """

    initial: list[Any] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)


@dataclass(frozen=True)
class Received:
    """A frame the client sent: ``im_enter_room``, ``hb`` (heartbeat) or ``ack``."""

    connection: int
    payload_type: str
    log_id: int
    payload: bytes


PageMode = Literal["live", "offline", "not_found", "captcha"]
SignMode = Literal["ok", "rate_limited", "forbidden", "error", "empty", "no_cookies", "no_cursor"]
PushMode = Literal["ok", "reject", "down"]


@dataclass
class FakeRoom:
    """One streamer's room and how each part of TikTok answers for it."""

    unique_id: str
    room_id: int
    scripts: list[Script] = field(default_factory=list)
    page: PageMode = "live"
    alive: Literal["ok", "empty"] = "ok"
    sign: SignMode = "ok"
    rate_limit_headers: dict[str, str] = field(
        default_factory=lambda: {"RateLimit-Remaining": "42", "RateLimit-Reset": "1732217460"}
    )
    """What a ``rate_limited`` sign server sends with its 429 (TikTokLive's two headers by
    default; ``{}``: none, as some sign servers and proxies answer)."""
    age_restricted: bool = False
    """Room info answers as for an 18+ LIVE to an anonymous viewer."""
    push: PushMode = "ok"
    # What happened, for the assertions.
    fetches: int = 0
    connections: int = 0
    received: list[Received] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition, repr=False)

    async def record(self, received: Received) -> None:
        async with self._changed:
            self.received.append(received)
            self._changed.notify_all()

    async def wait_for(
        self, condition: Callable[[], bool], timeout_s: float = STEP_TIMEOUT_S
    ) -> None:
        """Wait until ``condition()`` holds (checked whenever the client sends something)."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(condition)

    @property
    def live(self) -> bool:
        return self.page == "live"

    def script(self, index: int) -> Script:
        if not self.scripts:
            return Script()
        return self.scripts[min(index, len(self.scripts) - 1)]

    def sent(self, payload_type: str, connection: int | None = None) -> list[Received]:
        return [
            r
            for r in self.received
            if r.payload_type == payload_type and connection in (None, r.connection)
        ]


class FakeTikTok:
    """The local TikTok server; ``async with FakeTikTok() as tiktok`` starts and stops it."""

    def __init__(self, *, ping_interval_s: float = 0.05) -> None:
        self.ping_interval_s = ping_interval_s
        self.rooms: dict[str, FakeRoom] = {}
        self.requests: list[str] = []
        self.sign_keys: list[str | None] = []
        self.errors: list[str] = []
        self._server: Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self.port = 0

    def room(self, unique_id: str = STREAMER, room_id: int = ROOM_ID, **options: Any) -> FakeRoom:
        """Add (or replace) a streamer's room."""
        room = FakeRoom(unique_id, room_id, **options)
        self.rooms[unique_id] = room
        return room

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **overrides: Any) -> IngestSettings:
        """IngestSettings pointing the direct provider's TikTok and sign server here."""
        values: dict[str, Any] = {
            "provider": "direct",
            "sign_api_url": self.url,
            "tiktok_app_url": self.url,
            "tiktok_webcast_url": f"{self.url}/webcast",
            **overrides,
        }
        return msgspec.convert(values, IngestSettings)

    async def __aenter__(self) -> FakeTikTok:
        self._server = await serve(
            self._ws_handler,
            "127.0.0.1",
            0,
            process_request=self._http,
            process_response=self._handshake_options,
            subprotocols=[Subprotocol("echo-protocol")],  # what TikTokLive's client asks for
            ping_interval=None,
            max_size=None,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # -- HTTP: page, API, live check, sign server ------------------------------------------
    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        self.requests.append(path)
        if path == PUSH_PATH:
            room = self._room_by_id(query.get("room_id"))
            if room is not None and room.push == "reject":
                # TikTok refuses a detected client with a 200 instead of the upgrade.
                return _response(200, b"", {"Handshake-Msg": "illegal request"})
            return None  # go on with the WebSocket handshake
        if path.startswith("/@") and path.endswith("/live"):
            return self._live_page(path[2 : -len("/live")])
        if path == "/api-live/user/room/":
            return self._room_api(query.get("uniqueId", ""))
        if path == "/webcast/room/check_alive/":
            return self._check_alive(query.get("room_ids", ""))
        if path == "/webcast/room/info/":
            return self._room_info(query.get("room_id"))
        if path == "/webcast/fetch":
            self.sign_keys.append(request.headers.get("X-Api-Key"))
            return self._sign_fetch(query.get("room_id"))
        return _response(404, b"not found")

    def _live_page(self, unique_id: str) -> Response:
        room = self.rooms.get(unique_id)
        if room is None or room.page == "not_found":
            state: dict[str, Any] = {"AppContext": {}}
        elif room.page == "captcha":
            return _response(200, b"<html><body>Please verify you are human</body></html>")
        else:
            status = 2 if room.live else 4
            state = {
                "LiveRoom": {
                    "liveRoomUserInfo": {
                        "user": {
                            "roomId": str(room.room_id),
                            "uniqueId": unique_id,
                            "status": status,
                        }
                    }
                }
            }
        html = (
            '<html><script id="SIGI_STATE" type="application/json">'
            f"{json.dumps(state)}</script></html>"
        )
        return _response(200, html.encode(), {"Content-Type": "text/html"})

    def _room_api(self, unique_id: str) -> Response:
        room = self.rooms.get(unique_id)
        if room is not None and room.page == "captcha":
            return _response(200, b"<html>captcha</html>", {"Content-Type": "text/html"})
        if room is None or room.page == "not_found":
            return _json(200, {"message": "user_not_found", "statusCode": 19881007})
        status = 2 if room.live else 4
        return _json(
            200,
            {
                "message": "",
                "data": {
                    "user": {"roomId": str(room.room_id), "uniqueId": unique_id},
                    "liveRoom": {"status": status},
                },
            },
        )

    def _check_alive(self, room_ids: str) -> Response:
        room = self._room_by_id(room_ids.split(",")[0])
        if room is None or room.alive == "empty":
            return _json(200, {"data": [], "status_code": 0})
        return _json(200, {"data": [{"alive": room.live, "room_id": room.room_id}]})

    def _room_info(self, room_id: str | None) -> Response:
        room = self._room_by_id(room_id)
        if room is None:
            return _json(200, {"data": {"message": "room not found"}, "status_code": 30003})
        if room.age_restricted:
            return _json(200, {"data": {"prompts": ""}, "extra": {}, "status_code": 4003110})
        data = {
            "id": room.room_id,
            "status": 2 if room.live else 4,
            "title": "live",
            "owner": {"display_id": room.unique_id},
        }
        return _json(200, {"data": data, "status_code": 0})

    def _sign_fetch(self, room_id: str | None) -> Response:
        room = self._room_by_id(room_id)
        if room is None:
            return _json(404, {"message": "unknown room"})
        index = room.fetches
        room.fetches += 1
        mode = room.sign
        if mode == "rate_limited":
            return _json(
                429,
                {"message": "Too many connections started", "limit_label": "minute"},
                room.rate_limit_headers,
            )
        if mode == "forbidden":
            return _json(403, {"message": "This key cannot use this endpoint"})
        if mode == "error":
            # A careless sign server echoing the caller's key: it must not reach a reason.
            key = self.sign_keys[-1] or "-"
            return _json(500, {"message": f"upstream failure for key {key}"})
        if mode == "empty":
            return _response(200, b"")
        push_port = self.port if room.push != "down" else free_port()
        result = fetch_result(
            room.script(index).initial,
            first=True,
            internal_ext=f"ext-first-{index}",
            cursor="" if mode == "no_cursor" else f"cursor-{index}",
            push_server=f"ws://127.0.0.1:{push_port}{PUSH_PATH}",
            route_params={"wrss": f"wrss-{index}", "script": str(index)},
        )
        headers = {"Content-Type": "application/x-protobuf"}
        if mode != "no_cookies":
            headers["X-Set-TT-Cookie"] = "ttwid=fake-ttwid; tt_chain_token=fake-chain"
        return _response(200, bytes(result), headers)

    def _handshake_options(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response:
        # TikTok tells the client its heartbeat interval here; fast for tests.
        response.headers["Handshake-Options"] = f"ping-interval={self.ping_interval_s}"
        return response

    def _room_by_id(self, room_id: str | None) -> FakeRoom | None:
        for room in self.rooms.values():
            if str(room.room_id) == room_id:
                return room
        return None

    # -- the push WebSocket -------------------------------------------------------------------
    async def _ws_handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = {k: v[-1] for k, v in parse_qs(urlsplit(ws.request.path).query).items()}
        room = self._room_by_id(query.get("room_id"))
        if room is None:
            await ws.close(1008, "unknown room")
            return
        connection = room.connections
        room.connections += 1
        script = room.script(int(query.get("script", connection)))
        reader = asyncio.create_task(self._read(ws, room, connection))
        try:
            for step in script.steps:
                if isinstance(step, Send):
                    await ws.send(step.data)
                elif isinstance(step, AwaitHeartbeats | AwaitAck):
                    await room.wait_for(functools.partial(step.done, room, connection))
                elif isinstance(step, Pause):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, Close):
                    await ws.close(step.code, step.reason)
                    return
                elif isinstance(step, Drop):
                    ws.transport.abort()
                    return
            await ws.wait_closed()
        except ConnectionClosed:
            pass
        except Exception as exc:
            self.errors.append(f"connection {connection}: {type(exc).__name__}: {exc}")
            raise
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(self, ws: ServerConnection, room: FakeRoom, connection: int) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for data in ws:
                raw = data.encode() if isinstance(data, str) else data
                frame = P.WebcastPushFrame().parse(raw)
                await room.record(
                    Received(connection, frame.payload_type, frame.log_id, bytes(frame.payload))
                )


def _response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    from http import HTTPStatus

    all_headers = Headers(
        {
            "Connection": "close",
            "Content-Length": str(len(body)),
            "Content-Type": "text/plain",
            **(headers or {}),
        }
    )
    return Response(status, HTTPStatus(status).phrase, all_headers, body)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return _response(
        status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
    )
