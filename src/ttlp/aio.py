"""Time, sleeping and back-off: the small helpers every package shares.

- ``sleep_or_stop``: the one stop-aware sleep (returns early when the stop event is set).
- Timestamps: ttlp writes ISO 8601 UTC with a ``Z`` (``now_iso``, ``iso_ms``, ``to_iso``) and
  reads them back as aware UTC datetimes (``parse_iso``, ``as_utc``).
- ``Backoff``: the one back-off formula (initial × factor^(n-1), capped, ± jitter), used by the
  consume loop, the streamer supervisor and the forwarder.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

_ZERO: Final = timedelta(0)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


# -- timestamps ------------------------------------------------------------------------------
def now_iso() -> str:
    """Current UTC time as ISO 8601 with milliseconds and ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_ms(epoch_ms: float) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC with milliseconds and ``Z``."""
    return (
        datetime.fromtimestamp(epoch_ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; naive values (SQLite gives them back so) are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if value.tzinfo is UTC:
        return value
    return value.astimezone(UTC)


def to_iso(value: datetime, *, precision: Literal["ms", "auto"] = "ms") -> str:
    """A datetime as ISO 8601 UTC with ``Z``. ``ms``: milliseconds, or microseconds when it
    has them (event times, as TikTok gives them); ``auto``: no fraction when it has none (the
    api's row times)."""
    value = as_utc(value)
    if precision == "auto":
        spec = "auto"
    else:
        spec = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    """An ISO 8601 string as an aware UTC datetime (no offset → UTC). Raises ``ValueError``."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is UTC:  # "Z", as ttlp writes them: no offset arithmetic needed
        return parsed
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed if parsed.utcoffset() == _ZERO else parsed.astimezone(UTC)


# -- back-off --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backoff:
    """Delay before attempt ``n`` (1-based): ``initial_s × factor^(n-1)``, at most ``max_s``,
    then ± ``jitter`` (a fraction) so that many waiters do not retry in step.

    Written by hand rather than with the ``backoff`` library: the supervisor and the forwarder
    need the delay *of attempt n* (the forwarder keeps attempt counts in its table across
    restarts), which the library's decorators and generators do not give, and the consume
    loop's retries wait on a stop event the library's loop cannot see. It is four lines.
    """

    initial_s: float
    max_s: float
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        base = min(self.initial_s * self.factor ** max(attempt - 1, 0), self.max_s)
        return base * (1 + self.jitter * (2 * rng() - 1))

    def delays(self, rng: Callable[[], float] = random.random) -> Iterator[float]:
        """The delays of attempts 1, 2, 3, ... (for a retry loop)."""
        attempt = 0
        while True:
            attempt += 1
            yield self.delay(attempt, rng)


def hold(manager: contextlib.AbstractContextManager[Any]) -> Callable[[], Awaitable[None]]:
    """Enter ``manager`` now (its refusal, e.g. a 429 for one stream too many, is raised here,
    before a response starts) and return its exit as a coroutine function that acts once. A
    streamed response calls it when its body ends and again as its background task: a client
    gone before the body started never runs the body's ``finally``."""
    manager.__enter__()
    released = False

    async def release() -> None:
        nonlocal released
        if not released:
            released = True
            manager.__exit__(None, None, None)

    return release
