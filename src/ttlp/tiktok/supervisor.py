"""One supervisor per streamer: wait for live, connect, publish, reconnect (DESIGN §5.1).

Per connection a new sessionId; CONNECTED when the room is joined, DISCONNECTED (code,
reason, willReconnect) when it ends, ERROR for failures. Back-off: 1 s, ×2, at most 60 s,
±20 % jitter; ``RECONNECT_MAX_ATTEMPTS`` failed attempts in a row (0 = unlimited) stop the
streamer. With a ``Lease`` (Redis), only the replica holding the streamer's lease connects; a
replica that loses its lease drops the connection at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from loguru import logger

from ttlp.aio import Backoff, now_iso
from ttlp.bus.lease import Lease
from ttlp.tiktok.providers.base import ConnectionEnded, Outcome, Provider, Session
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.status import Sink, State, StatusReporter
from ttlp.tiktok.streaks import StreakTracker

RECONNECT_BACKOFF: Final = Backoff(initial_s=1.0, max_s=60.0, factor=2.0, jitter=0.2)
# The longest wait a provider's ``retry_after_s`` (a rate limit's reset, often an hour) can
# impose: a bogus or clock-skewed header must not park a streamer for days; after 6 h the next
# attempt simply asks again.
RETRY_AFTER_MAX_S: Final = 6 * 3600.0


@dataclass(frozen=True)
class SupervisorSettings:
    max_attempts: int = 0
    """Failed attempts in a row before giving up on a streamer (0 = never)."""
    poll_interval_s: float = 30.0
    """How often an offline streamer is checked again."""
    stable_after_s: float = 60.0
    """A connection that lasted this long resets the back-off and the attempt count."""
    silence_s: float = 60.0
    """A connection with no message from TikTok for this long is cut and reconnected (0 = never):
    a live room sends viewer counts every few seconds, so silence means a dead connection."""
    streak_timeout_s: float = 10.0
    """A gift streak idle this long without its end frame is closed (``ttlp.tiktok.streaks``)."""


@dataclass
class StreamerSupervisor:
    """Keeps one streamer connected through ``provider`` for as long as ``stop`` is not set."""

    provider: Provider
    unique_id: str
    publisher: FramePublisher
    settings: SupervisorSettings = field(default_factory=SupervisorSettings)
    lease: Lease | None = None
    sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep
    """The waits between connections (tests record them)."""
    tick: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep
    """The watchdog's period (tests drive it with a fake clock)."""
    clock: Callable[[], float] = field(default=lambda: asyncio.get_running_loop().time())
    sessions: list[str] = field(default_factory=list)
    """The sessions' ids, oldest first: the last ``HISTORY`` of them."""
    outcomes: list[Outcome] = field(default_factory=list)
    """What each connection ended with, in order (observability and tests): the last
    ``HISTORY`` (the looping mock starts a connection per pass, ~20 a second at 1,000
    frames/s: kept whole, these lists grew without end)."""
    retry_after_s: float | None = field(default=None, init=False)
    """The wait the last connection's ``ConnectionEnded`` asked for, if any."""
    status_sink: Sink | None = None
    """Where this streamer's ``StreamerStatus`` is reported (``ttlp.tiktok.status``)."""
    replica: str = ""

    def __post_init__(self) -> None:
        self.log = logger.bind(role="ingest", provider=self.provider.name, uniqueId=self.unique_id)
        # One tracker per streamer: a streak survives a reconnect (a new session).
        self.streaks = StreakTracker(self.settings.streak_timeout_s)
        self.status = StatusReporter(
            self.unique_id, self.provider.name, self.replica, self.status_sink
        )
        self.last_reason: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        await self.status.set("starting")
        try:
            await self._run(stop)
        finally:
            if stop.is_set():
                await self.status.set("stopped", reason="ttlp is stopping")

    async def _run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            if self.lease is not None and not await self._wait_for_lease(stop):
                return
            self.retry_after_s = None
            outcome, lasted = await self._connect_once(stop)
            _keep_last(self.outcomes, outcome)
            if stop.is_set():
                break
            if lasted >= self.settings.stable_after_s:
                failures = 0
            if outcome is Outcome.STOP:
                self.log.error("giving up on this streamer")
                await self.status.set("stopped", reason=self.last_reason)
                break
            if outcome is Outcome.FINISHED:
                await self.status.set("finished", reason=self.last_reason)
                break
            if outcome is Outcome.POLL:
                failures = 0
                delay = self.settings.poll_interval_s
            elif outcome is Outcome.RECONNECT_NOW:
                delay = 0.0
            else:
                failures += 1
                max_attempts = self.settings.max_attempts
                if max_attempts and failures >= max_attempts:
                    self.log.error("reconnect attempts exhausted", attempts=failures)
                    await self.status.set(
                        "stopped",
                        reason=f"{failures} reconnect attempts failed in a row "
                        f"(RECONNECT_MAX_ATTEMPTS); the last: {self.last_reason}",
                    )
                    break
                delay = RECONNECT_BACKOFF.delay(failures)
            if self.retry_after_s is not None:
                # The other side said how long (e.g. the sign server's rate-limit reset): any
                # sooner only earns another refusal.
                asked = self.retry_after_s
                delay = min(max(asked, 0.0), RETRY_AFTER_MAX_S)
                self.log.warning(
                    "waiting as long as the server asked",
                    outcome=outcome.value,
                    asked_s=round(asked, 1),
                    wait_s=round(delay, 1),
                    capped=asked > RETRY_AFTER_MAX_S,
                )
            if self.lease is not None and outcome is not Outcome.RECONNECT_NOW:
                # Waiting: let another replica take the streamer if it can do better.
                with contextlib.suppress(Exception):
                    await self.lease.release()
            if delay > 0:
                self.log.info("next attempt", outcome=outcome.value, in_s=round(delay, 2))
            if delay > 0:
                waiting: State = "waiting_for_live" if outcome is Outcome.POLL else "backing_off"
                await self.status.set(waiting, reason=self.last_reason, in_s=delay)
            await self._sleep_or_stop(stop, delay)
        if self.lease is not None:
            with contextlib.suppress(Exception):
                await self.lease.release()

    async def _connect_once(self, stop: asyncio.Event) -> tuple[Outcome, float]:
        """One connection, from the live check to its end → (outcome, seconds connected)."""
        session = Session(
            self.publisher,
            self.unique_id,
            self.provider.name,
            str(uuid.uuid4()),
            streaks=self.streaks,
            clock=self.clock,
        )
        started = self.clock()
        await self.status.set("checking")
        try:
            if not await self.provider.is_live(self.unique_id):
                self.log.info("streamer is offline")
                self.last_reason = "the streamer is not live"
                return Outcome.POLL, 0.0
            _keep_last(self.sessions, session.session_id)
            await self._run_connection(session, stop)
            outcome, code, reason = Outcome.POLL, None, "stream ended"
        except ConnectionEnded as ended:
            outcome, code, reason = ended.outcome, ended.code, ended.reason
            self.retry_after_s = ended.retry_after_s
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an unexpected failure is a reason to reconnect, not to die
            outcome, code, reason = Outcome.RECONNECT, None, describe_failure(exc)
            self.log.opt(exception=exc).warning("connection failed")
            if session.room_id:
                await session.error(reason, type(exc).__name__)
        lasted = self.clock() - started
        self.last_reason = reason
        if session.room_id:  # joined, even if it ended before the watchdog saw it
            await self.status.connected(session.room_id, session.session_id)
        if stop.is_set():
            outcome, reason = Outcome.STOP, "ttlp is stopping"
            if session.room_id:  # streaks still open would never be counted: close them now
                await session.expire_streaks(everything=True)
        if session.room_id:  # only a session that connected gets a DISCONNECTED
            will_reconnect = outcome not in (Outcome.STOP, Outcome.FINISHED) and not stop.is_set()
            await session.disconnected(code, reason, will_reconnect)
        # The mock ends a "connection" every pass over its fixture: one line per pass is its own.
        self.log.log(
            "DEBUG" if self.provider.name == "mock" else "INFO",
            "connection ended",
            outcome=outcome.value,
            reason=reason,
            code=code,
            session_id=session.session_id,
            frames=session.frames,
        )
        return outcome, lasted

    async def _run_connection(self, session: Session, stop: asyncio.Event) -> None:
        """Run the provider with its watchdog (streak timeout, silence) alongside; with a
        lease, renew it too and cut the connection if it is lost."""
        connection = asyncio.create_task(self.provider.run(self.unique_id, session, stop))
        helpers = [asyncio.create_task(self._watch(session, stop))]
        if self.lease is not None:
            helpers.append(asyncio.create_task(self._keep_lease(stop)))
        tasks = {connection, *helpers}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when we are cancelled: no orphan keeps the connection or the lease
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if connection in done:
            connection.result()
            return
        for task in helpers:
            if task in done:
                task.result()

    async def _watch(self, session: Session, stop: asyncio.Event) -> None:
        """Close idle gift streaks; cut a connection TikTok has gone silent on.

        Returns only when ``stop`` is set; raises ``ConnectionEnded`` on silence."""
        settings = self.settings
        periods = [p / 4 for p in (settings.silence_s, settings.streak_timeout_s) if p > 0]
        every = min([1.0, *periods])
        reported_connection = False
        reported_message: float | None = None
        while not stop.is_set():
            await self._sleep_or_stop(stop, every, self.tick)
            if stop.is_set():
                return
            await session.expire_streaks()
            last = session.last_message_at
            # Joined the room (the mock, which joins none, once it publishes).
            if (session.room_id or session.frames) and not reported_connection:
                reported_connection = True
                await self.status.connected(session.room_id, session.session_id)
            if last is not None and last != reported_message and reported_connection:
                reported_message = last
                await self.status.message_seen(now_iso(), self.clock())
            if settings.silence_s > 0 and last is not None:
                quiet = self.clock() - last
                if quiet >= settings.silence_s:
                    raise ConnectionEnded(
                        Outcome.RECONNECT,
                        f"no message from TikTok for {quiet:.0f} s while connected "
                        f"(INGEST_SILENCE_S={settings.silence_s:g}): the connection is dead",
                        code="SILENCE",
                    )

    async def _keep_lease(self, stop: asyncio.Event) -> None:
        assert self.lease is not None
        every = self.lease.ttl_ms / 3000
        while not stop.is_set():
            await self._sleep_or_stop(stop, every)
            if stop.is_set():
                return
            if not await self.lease.renew():
                raise ConnectionEnded(Outcome.RECONNECT, "lost the streamer's lease")
        # stop set: return, and the connection sees stop too

    async def _wait_for_lease(self, stop: asyncio.Event) -> bool:
        assert self.lease is not None
        logged = False
        while not stop.is_set():
            try:
                if await self.lease.acquire():
                    self.log.info("holding the streamer's lease")
                    return True
            except Exception as exc:  # Redis away: keep trying, never connect without a lease
                self.log.warning("cannot reach the lease", error=str(exc)[:200])
            if not logged:
                holder = await _holder(self.lease)
                self.log.info("another replica holds this streamer", holder=holder)
                await self.status.set(
                    "waiting_for_lease", reason=f"replica {holder or '?'} holds this streamer"
                )
                logged = True
            await self._sleep_or_stop(stop, self.lease.ttl_ms / 3000)
        return False

    async def _sleep_or_stop(
        self,
        stop: asyncio.Event,
        delay: float,
        sleep: Callable[[float], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        if delay <= 0:
            return
        waiter = asyncio.create_task(stop.wait())
        sleeper = asyncio.create_task((sleep or self.sleep)(delay))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Also when cancelled: every connection's watchdog is, when the connection ends. A
            # waiter left behind waits on ``stop`` until ttlp stops; the looping mock (a
            # connection per pass, ~20 a second at 1,000 frames/s) left 12,000 in a 10-minute
            # soak, each in ``stop``'s waiters, whose removal is linear: RSS +13 to +20 MB and
            # the event loop's work per event growing with them.
            for task in (waiter, sleeper):
                task.cancel()


def describe_failure(exc: BaseException) -> str:
    """``Type: message``, and the host the failure was about when the error (or its cause)
    knows it: "ConnectError: [Errno 111] Connection refused (host webcast.tiktok.com)"."""
    text = f"{type(exc).__name__}: {exc}"
    host = _host_of(exc)
    return f"{text} (host {host})" if host and host not in text else text


def _host_of(exc: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        try:  # httpx errors: .request (a RuntimeError when the error has none)
            host = getattr(getattr(getattr(current, "request", None), "url", None), "host", None)
        except RuntimeError:
            host = None
        if isinstance(host, str) and host:
            return host
        current = current.__cause__ or current.__context__
    return None


async def _holder(lease: Lease) -> str | None:
    try:
        return await lease.holder()
    except Exception:
        return None


HISTORY: Final = 100
T = TypeVar("T")


def _keep_last(history: list[T], item: T) -> None:
    history.append(item)
    if len(history) > HISTORY:
        del history[: len(history) - HISTORY]
