"""Waiting on a condition instead of sleeping, and a free port to serve on."""

from __future__ import annotations

import asyncio
import inspect
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest


async def wait_for(
    check: Callable[[], Any | Awaitable[Any]],
    *,
    timeout: float = 60,  # noqa: ASYNC109 - a polling deadline, not a cancel scope
    what: str = "condition",
    poll: float = 0.25,
    alive: subprocess.Popen[bytes] | None = None,
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy, and return that.

    Fails the test with ``what`` after ``timeout`` seconds, or as soon as the process ``alive``
    exits (a crashed ``ttlp`` will never make the condition true).
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if alive is not None and alive.poll() is not None:
            pytest.fail(f"ttlp exited with {alive.returncode} while waiting for {what}")
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(poll)


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
