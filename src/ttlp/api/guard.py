"""Input no route can use, refused in one place before any route sees it (DESIGN §7.2).

``input_guard`` is a middleware that runs before authentication and answers 400 with the
API's JSON error body (``{"status_code": 400, "detail": ...}``) for:

- a NUL character in the path or the query string (``/sessions/%00``, ``?q=a%00b``): no id,
  handle or search text has one, PostgreSQL refuses it in text and the file system in names,
  so letting it through only ever ends in a 500;
- a JSON request body nested deeper than ``MAX_JSON_DEPTH`` (decoding recurses: 1,000 levels
  raise ``RecursionError``; the deepest document the API takes, a rule whose condition is at
  JSON Logic's ``MAX_DEPTH`` of 32, needs about 70), or with a NUL character in any string or
  key (``"\\u0000"``: PostgreSQL's ``text`` and ``jsonb`` refuse it).

A body is read whole (up to ``API_MAX_BODY_BYTES``; a larger one is passed on untouched for
Litestar to answer 413) and handed on to the route as it came. A body that is not JSON is not
this module's business: the route's own parsing says what is wrong with it.

It also gives WebSocket handshakes refused before ``accept`` their real status: Litestar
answers an exception there with a close frame, which an ASGI server turns into a bare HTTP 403
whatever the reason. Here a refusal (no token: 401) is sent as an HTTP answer with the JSON
body, through the ASGI WebSocket denial response where the server supports it (uvicorn does),
else as a close with code 4000 + status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote_to_bytes

import msgspec
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, HTTPScope, Message, Receive, ReceiveMessage, Scope, Send

from ttlp.errors import InputError

MAX_JSON_DEPTH: Final = 128
"""Arrays and objects inside each other in a request body."""
BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NUL_IN_URL: Final = "NUL characters (%00) are not allowed in a URL"
NUL_IN_JSON: Final = "NUL characters (\\u0000) are not allowed in JSON strings"
TOO_DEEP: Final = f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"


def url_problem(scope: Scope) -> str | None:
    """Why the request's path or query cannot be used, or None."""
    if "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
        return NUL_IN_URL
    return None


def json_problem(body: bytes) -> str | None:
    """Why a JSON body cannot be used (too deep, NUL in a string), or None; None also for a
    body that is not JSON at all (the route refuses that itself, saying why)."""
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        return TOO_DEEP
    except msgspec.DecodeError:
        return None
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return NUL_IN_JSON
        elif isinstance(node, dict | list):
            if depth >= MAX_JSON_DEPTH:
                return TOO_DEEP
            if isinstance(node, dict):
                for key, item in node.items():
                    if "\x00" in key:
                        return NUL_IN_JSON
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in node)
    return None


def error_body(status: int, detail: str) -> bytes:
    return msgspec.json.encode({"status_code": status, "detail": detail})


def json_headers(body: bytes, extra: Mapping[str, str] | None = None) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in (extra or {}).items()),
    ]


async def answer_http(send: Send, status: int, detail: str) -> None:
    body = error_body(status, detail)
    await send({"type": "http.response.start", "status": status, "headers": json_headers(body)})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def deny_websocket(
    scope: Scope,
    send: Send,
    status: int,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Refuse a WebSocket handshake (before ``accept``) with an HTTP ``status`` and the JSON
    error body, or, where the server cannot send an HTTP answer, accept and close with code
    4000 + ``status`` (the close code Litestar uses for errors)."""
    body = error_body(status, detail)
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": json_headers(body, headers),
            }
        )
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})
        return
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    await send({"type": "websocket.close", "code": 4000 + status, "reason": detail})


def refusal(exc: Exception) -> tuple[int, str, Mapping[str, str] | None] | None:
    """(status, detail, headers) of an exception that refuses a request, or None."""
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return exc.status_code, exc.detail, exc.headers
    if isinstance(exc, InputError):
        return exc.status, str(exc), None
    return None


def input_guard(max_body_bytes: int) -> Any:
    """The middleware (see the module docstring); ``max_body_bytes`` = ``API_MAX_BODY_BYTES``."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def guard(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == ScopeType.WEBSOCKET:
                await _websocket(app, scope, receive, send)
                return
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            problem = url_problem(scope)
            if problem is not None:
                await answer_http(send, 400, problem)
                return
            if scope["method"] in BODY_METHODS:
                checked = await _checked_body(scope, receive, max_body_bytes)
                if isinstance(checked, str):
                    await answer_http(send, 400, checked)
                    return
                receive = checked
            await app(scope, receive, send)

        return guard

    return factory


async def _websocket(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    problem = url_problem(scope)
    if problem is not None:
        await deny_websocket(scope, send, 400, problem)
        return
    accepted = False

    async def watching_send(message: Message) -> None:
        nonlocal accepted
        if message["type"] == "websocket.accept":
            accepted = True
        await send(message)

    try:
        await app(scope, receive, watching_send)
    except Exception as exc:
        refused = None if accepted else refusal(exc)
        if refused is None:
            raise
        await deny_websocket(scope, send, *refused)


async def _checked_body(scope: HTTPScope, receive: Receive, limit: int) -> Receive | str:
    """Read the request body (at most ``limit`` bytes) and check it: the problem, or a
    ``receive`` that hands the body on as it came, then whatever follows (a disconnect)."""
    length = _content_length(scope)
    if length is not None and length > limit:
        return receive  # refused (413) by Litestar, which then reads nothing
    messages: list[ReceiveMessage] = []
    size = 0
    complete = False
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break  # the client went away
        size += len(_body(message))
        if size > limit:
            break  # too large: Litestar counts it too and answers 413
        if not message.get("more_body", False):
            complete = True
            break
    if complete and size:
        problem = json_problem(b"".join(_body(m) for m in messages))
        if problem is not None:
            return problem
    pending = iter(messages)

    async def replay() -> ReceiveMessage:
        message = next(pending, None)
        return message if message is not None else await receive()

    return replay


def _body(message: ReceiveMessage) -> bytes:
    body = message.get("body", b"")
    return body if isinstance(body, bytes) else b""


def _content_length(scope: HTTPScope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
