"""The one consume loop every role uses (DESIGN §3, STYLE "Worker loop").

A ``Consumer`` reads its group in batches, hands each batch to the role's handler, dead-letters
what the handler reports as permanently bad, and acks only after the handler returned (its side
effects are durable by then). On start it re-reads its own pending entries; every
``claim_interval_s`` it claims entries other consumers left idle; an entry delivered more than
``max_deliveries`` times is dead-lettered and acked. Infrastructure errors retry the same batch
with back-off; other handler errors leave the batch pending and retry it entry by entry, so one
poison entry reaches the dead-letter stream without taking its neighbours along.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

import msgspec
from loguru import logger

from ttlp.aio import Backoff, now_iso
from ttlp.bus.base import Bus, Entry
from ttlp.contracts.events import DeadLetter, dead_letter_payload, encode
from ttlp.errors import BusError, PermanentError, is_data_error, is_transient
from ttlp.settings import BusSettings

# Retry pacing for infrastructure errors: 100 ms doubling to 5 s, so a restarted Redis or
# PostgreSQL is picked up within seconds without hammering it while it is down.
RETRY_BACKOFF: Final = Backoff(initial_s=0.1, max_s=5.0)
# After a handler error the batch is retried entry by entry, with a short pause between tries
# so a briefly failing dependency has a chance before an entry spends its delivery budget.
POISON_PAUSE_S: Final = 0.2
# How long an in-flight batch may take to finish once shutdown began (then it is cancelled and
# its entries stay pending, to be re-read on the next start).
SHIELD_DEADLINE_S: Final = 10.0
MAX_ERROR_CHARS: Final = 2000
MAX_TRACKED_ERRORS: Final = 1000
"""Entries whose last error is remembered for their MAX_DELIVERIES letter (oldest forgotten)."""


@dataclass(frozen=True)
class Failure:
    """An entry the handler could not process and never will: dead-letter it."""

    entry: Entry
    reason: str
    error: str
    raw_type: str | None = None
    session_id: str | None = None


T = TypeVar("T")
BatchHandler = Callable[[list[Entry]], Awaitable[Sequence[Failure]]]


BATCH_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds of the batch-latency histogram (seconds; one more bucket holds the rest)."""


@dataclass
class ConsumerStats:
    processed: int = 0
    dead_lettered: int = 0
    batches: int = 0
    retries: int = 0
    last_batch_ms: float = 0.0
    claimed: int = 0
    batch_counts: list[int] = field(default_factory=lambda: [0] * (len(BATCH_BUCKETS_S) + 1))
    """Batches per latency bucket (``BATCH_BUCKETS_S``, then the rest): not cumulative."""
    batch_seconds: float = 0.0
    """Total time spent handling and acknowledging batches."""

    def observe_batch(self, seconds: float) -> None:
        self.last_batch_ms = seconds * 1000
        self.batch_seconds += seconds
        self.batch_counts[bisect_left(BATCH_BUCKETS_S, seconds)] += 1


_running: list[weakref.ref[Consumer]] = []


def running_consumers() -> list[Consumer]:
    """The consumers started in this process (for its metrics), oldest first."""
    alive = [c for c in (ref() for ref in _running) if c is not None]
    _running[:] = [weakref.ref(c) for c in alive]
    return alive


@dataclass
class Consumer:
    """One group member: ``stream``/``group`` as ``name``, calling ``handler`` per batch."""

    bus: Bus
    stream: str
    group: str
    name: str
    handler: BatchHandler
    dlq_stream: str
    stage: str
    settings: BusSettings
    start: str = "0"
    """Where a newly created group starts: ``0`` (everything in the stream) or ``$``."""
    stats: ConsumerStats = field(default_factory=ConsumerStats)
    _backlog: bool = True
    _singles: bool = False
    _claim_cursor: str = "0-0"
    _next_claim: float = 0.0
    _ready: bool = False
    _last_errors: dict[str, str] = field(default_factory=dict)
    """The last error of each entry retried on its own: what its MAX_DELIVERIES letter says."""

    def __post_init__(self) -> None:
        self.log = logger.bind(role=self.stage, stream=self.stream, group=self.group)

    async def setup(self) -> None:
        """Create the group (idempotent) and arrange to re-read our own pending entries first."""
        await self._retrying(lambda: self.bus.ensure_group(self.stream, self.group, self.start))
        self._backlog = True
        self._next_claim = time.monotonic()
        if not self._ready:
            running_consumers()  # forget the collected ones
            _running.append(weakref.ref(self))
        self._ready = True

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in flight is finished and acked first."""
        if not self._ready:
            await self.setup()
        self.log.info("consumer started", consumer=self.name)
        linger_s = self.settings.linger_ms / 1000
        while not stop.is_set():
            seen = await self.step(self.settings.block_ms, stop)
            if 0 < seen < self.settings.batch_size and linger_s > 0:
                # Entries are trickling in: let a few gather rather than pay a whole batch
                # (read, task, handler, publish, ack) for each one.
                await asyncio.sleep(linger_s)
        self.log.info("consumer stopped", consumer=self.name, processed=self.stats.processed)

    async def run_until_idle(self, max_steps: int = 100_000) -> int:
        """Burst mode for tests and one-shot commands: consume until nothing is left."""
        if not self._ready:
            await self.setup()
        before = self.stats.processed + self.stats.dead_lettered
        for _ in range(max_steps):
            if await self.step(block_ms=None) == 0 and not self._backlog:
                break
        return self.stats.processed + self.stats.dead_lettered - before

    async def step(self, block_ms: int | None, stop: asyncio.Event | None = None) -> int:
        """One iteration: claim idle entries when due, else read; handle; ack. → entries seen."""
        entries = await self._next_batch(block_ms)
        if not entries:
            return 0
        task = asyncio.create_task(self._process(entries))
        try:
            # Shielded: a cancellation mid-batch must not interrupt a commit or an ack.
            await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, SHIELD_DEADLINE_S)
            raise
        return len(entries)

    async def _next_batch(self, block_ms: int | None) -> list[Entry]:
        now = time.monotonic()
        if now >= self._next_claim:
            self._next_claim = now + self.settings.claim_interval_s
            claimed = await self._claim()
            if claimed:
                return claimed
        count = 1 if self._singles else self.settings.batch_size
        if self._backlog:
            entries = await self._retrying(
                lambda: self.bus.read_group(
                    self.stream, self.group, self.name, count=count, block_ms=None, history=True
                )
            )
            if entries:
                return entries
            self._backlog = self._singles = False
            count = self.settings.batch_size
        return await self._retrying(
            lambda: self.bus.read_group(
                self.stream, self.group, self.name, count=count, block_ms=block_ms
            )
        )

    async def _claim(self) -> list[Entry]:
        cursor, entries = await self._retrying(
            lambda: self.bus.claim_idle(
                self.stream,
                self.group,
                self.name,
                min_idle_ms=self.settings.claim_idle_ms,
                start=self._claim_cursor,
                count=self.settings.batch_size,
            )
        )
        self._claim_cursor = cursor
        if entries:
            self.stats.claimed += len(entries)
            self.log.warning("claimed idle entries", count=len(entries), consumer=self.name)
        return entries

    async def _process(self, entries: list[Entry]) -> None:
        started = time.perf_counter()
        live: list[Entry] = []
        failures: list[Failure] = []
        done: list[str] = []
        for entry in entries:
            if entry.fields is None:
                # Trimmed by MAXLEN before anyone processed it: nothing left to process.
                self.log.error("pending entry was trimmed from the stream", entry_id=entry.id)
                done.append(entry.id)
            elif entry.deliveries > self.settings.max_deliveries:
                last = self._last_errors.pop(entry.id, None)
                failures.append(
                    Failure(
                        entry,
                        "MAX_DELIVERIES",
                        f"delivered {entry.deliveries} times without success "
                        f"(limit {self.settings.max_deliveries})"
                        + (f"; last error: {last}" if last else ""),
                        raw_type=_printable(entry.fields.get("type")),
                        session_id=_printable(entry.fields.get("sessionId")),
                    )
                )
            else:
                live.append(entry)
        if live:
            try:
                failures.extend(await self._handle(live))
            except _Retry:
                return  # left pending; re-read one by one after a pause
        if failures:
            await self._retrying(
                lambda: self.bus.publish_many(
                    self.dlq_stream, [self._dead_letter(f) for f in failures]
                )
            )
            for f in failures:
                self.log.warning(
                    "dead-lettered entry",
                    entry_id=f.entry.id,
                    reason=f.reason,
                    raw_type=f.raw_type,
                    session_id=f.session_id,
                )
        ids = done + [e.id for e in entries if e.fields is not None]
        await self._retrying(lambda: self.bus.ack(self.stream, self.group, ids))
        self.stats.batches += 1
        self.stats.dead_lettered += len(failures)
        self.stats.processed += len(entries) - len(failures)
        self.stats.observe_batch(time.perf_counter() - started)

    async def _handle(self, entries: list[Entry]) -> Sequence[Failure]:
        delays = RETRY_BACKOFF.delays()
        while True:
            try:
                return await self.handler(entries)
            except BusError:
                raise
            except Exception as exc:
                self.stats.retries += 1
                if is_transient(exc):
                    delay = next(delays)
                    self.log.warning(
                        "infrastructure error; retrying the batch",
                        error=_describe(exc),
                        retry_in_s=round(delay, 2),
                    )
                    await asyncio.sleep(delay)
                    continue
                if self._singles and len(entries) == 1:
                    entry = entries[0]
                    if is_data_error(exc):
                        # This entry is what is wrong: dead-letter it now, with the real error.
                        self.log.opt(exception=exc).warning(
                            "entry cannot be processed", entry_id=entry.id, error=_describe(exc)
                        )
                        return [_failure_of(entry, exc)]
                    if len(self._last_errors) >= MAX_TRACKED_ERRORS:
                        self._last_errors.pop(next(iter(self._last_errors)))
                    self._last_errors[entry.id] = _describe(exc)
                self.log.opt(exception=exc).error(
                    "handler failed; retrying the batch entry by entry",
                    entries=len(entries),
                    error=_describe(exc),
                )
                self._backlog = self._singles = True
                await asyncio.sleep(POISON_PAUSE_S)
                raise _Retry from None

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run a bus call, retrying connection errors with back-off; other errors propagate."""
        delays = RETRY_BACKOFF.delays()
        while True:
            try:
                return await call()
            except Exception as exc:
                if isinstance(exc, BusError) or not is_transient(exc):
                    raise
                delay = next(delays)
                self.log.warning(
                    "bus unreachable; retrying", error=_describe(exc), retry_in_s=round(delay, 2)
                )
                await asyncio.sleep(delay)

    def _dead_letter(self, failure: Failure) -> dict[str, str]:
        payload = dead_letter_payload(failure.entry.fields or {}, self.settings.dlq_max_payload)
        letter = DeadLetter(
            stage=self.stage,
            reason=failure.reason,
            error=_text(failure.error[:MAX_ERROR_CHARS]),
            payload=payload.text,
            payload_encoding=payload.encoding,
            payload_bytes=payload.size,
            payload_sha256=payload.sha256,
            payload_truncated=payload.truncated,
            failed_at=now_iso(),
            raw_type=_printable(failure.raw_type) or msgspec.UNSET,
            session_id=_printable(failure.session_id) or msgspec.UNSET,
            source_stream=self.stream,
            source_id=failure.entry.id,
        )
        return dead_letter_fields(letter)


class _Retry(Exception):
    """The batch failed in a way that may be one bad entry: leave it pending, go one by one."""


def dead_letter_fields(letter: DeadLetter) -> dict[str, str]:
    """The ``ttlc:dlq`` entry form: one string field per dlq.v1 property."""
    builtins = msgspec.to_builtins(letter)
    return {k: v if isinstance(v, str) else encode(v).decode() for k, v in builtins.items()}


def _failure_of(entry: Entry, exc: BaseException) -> Failure:
    fields = entry.fields or {}
    if isinstance(exc, PermanentError):
        reason = exc.reason
    elif isinstance(exc, UnicodeError):
        reason = "ENCODING_ERROR"
    else:
        reason = "HANDLER_ERROR"
    return Failure(
        entry,
        reason,
        _describe(exc),
        raw_type=_printable(fields.get("type")),
        session_id=_printable(fields.get("sessionId")),
    )


def _text(value: str) -> str:
    """``value`` fit for a dead letter: bytes that are not UTF-8 (surrogate-escaped by the bus,
    quoted by an error message) written as ``\\x..`` escapes instead of failing the letter."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode()
    return value


def _printable(value: str | None) -> str | None:
    """A field fit for a dead letter's header (valid UTF-8, short), else None."""
    if value is None or len(value) > 128:
        return None
    try:
        value.encode()
    except UnicodeEncodeError:
        return None
    return value


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:300]}"
