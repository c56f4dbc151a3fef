"""Waiting on a condition instead of sleeping, and a free port to serve on."""

from __future__ import annotations

import asyncio
import inspect
import socket
import subprocess
import time
import traceback
from collections.abc import Awaitable, Callable, Collection
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


async def tasks_end(
    tasks: Collection[asyncio.Task[Any]],
    *,
    timeout: float = 10,  # noqa: ASYNC109 - a deadline that fails the test, not a cancel scope
    what: str = "tasks",
) -> list[BaseException | None]:
    """Wait for ``tasks`` to end → each one's exception (None when it returned or was
    cancelled). Fails the test after ``timeout`` with where each task still running waits:
    a task that does not end must say why, not hang until the suite's timeout."""
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    if pending:
        stacks = "\n".join(
            f"{task.get_name()}:\n" + "".join(traceback.format_list(_frames(task)))
            for task in pending
        )
        pytest.fail(
            f"{len(pending)} of {len(tasks)} {what} still running after {timeout}s:\n{stacks}"
        )
    return [None if task.cancelled() else task.exception() for task in tasks]


def _frames(task: asyncio.Task[Any]) -> traceback.StackSummary:
    """The chain of coroutines the task is suspended in, outermost first, and what the
    innermost awaits (a future, a lock's waiter...)."""
    frames = traceback.StackSummary()
    awaited: Any = task.get_coro()
    while awaited is not None and getattr(awaited, "cr_frame", None) is not None:
        frame = awaited.cr_frame
        frames.append(
            traceback.FrameSummary(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
        )
        awaited = awaited.cr_await
    frames.append(traceback.FrameSummary("(awaiting)", 0, repr(awaited)))
    return frames


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
