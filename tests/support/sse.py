"""Reading a ``text/event-stream`` response as a browser's EventSource would (``httpx`` has no
SSE parser): messages with their event name, id, data and comment lines, and the stream's end."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import httpx

WAIT_S = 60.0
"""Upper bound for one message on a loaded machine; never a sleep."""


@dataclass
class Message:
    event: str | None = None
    id: str | None = None
    data: str | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class StreamEnded(Exception):
    """The server ended the response."""


class SseReader:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def _message(self) -> Message:
        message = Message()
        while True:
            try:
                line = await anext(self._lines)
            except StopAsyncIteration:
                raise StreamEnded from None
            if line == "":
                if message.event or message.id or message.data is not None or message.comments:
                    return message
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                message.comments.append(value)
            elif name == "event":
                message.event = value
            elif name == "id":
                message.id = value
            elif name == "data":
                message.data = value if message.data is None else f"{message.data}\n{value}"

    async def next(self, timeout: float = WAIT_S) -> Message:  # noqa: ASYNC109 - a bound
        """The next message (comments included)."""
        return await asyncio.wait_for(self._message(), timeout)

    async def named(self, timeout: float = WAIT_S) -> Message:  # noqa: ASYNC109 - a bound
        """The next message that is not a comment (an event, a notice, ``gap``...)."""
        while True:
            message = await self.next(timeout)
            if message.event is not None:
                return message

    async def events(self, n: int) -> list[Message]:
        """The next ``n`` messages that are not comments (events, ``gap``, ``dropped``)."""
        return [await self.named() for _ in range(n)]

    async def heartbeat(self) -> Message:
        """The next message, which must be a heartbeat comment (nothing else was queued)."""
        message = await self.next()
        assert message.event is None, f"expected a heartbeat, got {message}"
        assert message.comments == ["keep-alive"]
        return message

    async def until_event_id(self, event_id: str) -> list[Message]:
        """Named messages up to and including the one with SSE id ``event_id``."""
        out: list[Message] = []
        while not out or out[-1].id != event_id:
            out.append(await self.named())
        return out

    async def end(self, timeout: float = WAIT_S) -> list[Message]:  # noqa: ASYNC109 - a bound
        """Every message until the server ends the response (which must happen in
        ``timeout``)."""

        async def rest() -> list[Message]:
            out: list[Message] = []
            while True:
                try:
                    out.append(await self._message())
                except StreamEnded:
                    return out

        return await asyncio.wait_for(rest(), timeout)
