"""A fake Euler Stream REST API: room chat and moderation, as the rule actions call them, and
the live check the euler provider makes.

``FakeEulerApi`` is a small ASGI app served by uvicorn on a free loopback port, in the test's
event loop (``async with FakeEulerApi() as euler``) or in a thread of its own (``start_thread``:
for tests whose event loop is busy, e.g. waiting on a subprocess). It records every request
(method, path, query, headers, JSON body) and answers like Euler: 200 ``{"code": 0}``, or 401
when the ``X-Api-Key`` is not ``api_key``. ``delay_s`` makes every answer slow (a batch in
flight for the kill test); ``status`` makes every answer that status.

``GET /webcast/room_id?uniqueId=..`` answers as Euler's route of that name does (its
``WebcastRoomIdRouteResponse``): ``{"code": 200, "ok": true, "routes_attempted": [..],
"is_live": bool, "room_id": ".."}``, live when ``live`` maps the handle to a room id; with
another ``status``, ``{"code": status, "ok": false, "message": ..}``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

import uvicorn

from tests.support.wait import free_port

API_KEY = "euler-test-key"
ROOM_ID_PATH = "/webcast/room_id"


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeEulerApi:
    api_key: str = API_KEY
    delay_s: float = 0.0
    status: int = 200
    live: dict[str, str] = field(default_factory=dict)
    """uniqueId → room id of the creators ``/webcast/room_id`` says are live."""
    calls: list[Call] = field(default_factory=list)
    port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def chats(self) -> list[Call]:
        return [c for c in self.calls if c.path == "/webcast/chat"]

    def live_checks(self) -> list[Call]:
        return [c for c in self.calls if c.path == ROOM_ID_PATH]

    def _answer(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        if path != ROOM_ID_PATH:
            return {"code": 0 if self.status == 200 else self.status}
        if self.status != 200:
            return {"code": self.status, "ok": False, "message": "the fake says no"}
        room_id = self.live.get(query.get("uniqueId", ""))
        answer: dict[str, Any] = {
            "code": 200,
            "ok": True,
            "routes_attempted": ["fake"],
            "is_live": room_id is not None,
        }
        if room_id is not None:
            answer["room_id"] = room_id
        return answer

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = dict(parse_qsl(scope["query_string"].decode()))
        self.calls.append(
            Call(
                method=scope["method"],
                path=scope["path"],
                query=query,
                headers=headers,
                body=json.loads(body) if body else None,
            )
        )
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if headers.get("x-api-key") != self.api_key:
            status, answer = 401, {"code": 401, "message": "invalid api key"}
        else:
            status, answer = self.status, self._answer(scope["path"], query)
        payload = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _config(self) -> uvicorn.Config:
        self.port = free_port()
        return uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_config=None, lifespan="on"
        )

    async def __aenter__(self) -> FakeEulerApi:
        self._server = uvicorn.Server(self._config())
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        assert self._task is not None
        self._server.should_exit = True
        await asyncio.wait_for(self._task, 10)

    def start_thread(self) -> None:
        """Serve from a thread with its own event loop (``stop_thread`` ends it)."""
        self._server = uvicorn.Server(self._config())
        server = self._server
        self._thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        self._thread.start()
        while not server.started:
            threading.Event().wait(0.01)

    def stop_thread(self) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.should_exit = True
        self._thread.join(10)
