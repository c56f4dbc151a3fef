"""store: ``ttlc:raw`` (group ``archive``) → raw_frames; ``ttlc:events`` (group ``storage``) →
events, users, sessions, streams. The only writer of the database's event tables; it also
prunes them (``ttlp.db.retention``) every PRUNE_INTERVAL_S."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec
from loguru import logger
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.aio import Backoff, sleep_or_stop
from ttlp.bus import keys
from ttlp.bus.base import Entry
from ttlp.bus.consumer import BatchHandler, Failure
from ttlp.contracts.events import (
    RawEnvelope,
    UnifiedEvent,
    decode_event,
    envelope_from_fields,
    frame_size,
    omitted_data,
)
from ttlp.db import retention
from ttlp.db.store import Store
from ttlp.errors import PermanentError, is_transient
from ttlp.runtime import Context
from ttlp.settings import RetentionSettings
from ttlp.tiktok.mentions import users_named_in_frame

# A newcomer running `make run` should see the store at work without a line per batch.
PROGRESS_EVERY_S: Final = 5.0
CATCH_UP_POLL_S: Final = 1.0
INTERRUPTED_WITHOUT_SILENCE_S: Final = 600.0
"""With the silence watchdog off, how long a session must have been quiet to be closed."""
PRUNE_START_DELAY_S: Final = 60.0
"""A fresh process looks whether a prune is due only after this: a crash loop, or a deploy
restarting every replica, must not start a run each time (the interval counts from the last
recorded run, whichever process ran it)."""
PRUNE_RECHECK_S: Final = 3600.0
"""Look again at least this often (a clock moved, a `ttlp prune` recorded meanwhile)."""
PRUNE_FAILED_RETRY_S: Final = 3600.0
"""A run that failed for another reason than an outage (logged with its traceback) is tried
again this much later, not at once."""
PRUNE_OUTAGE_BACKOFF: Final = Backoff(initial_s=1.0, max_s=300.0)
"""The database away: look again after 1 s, doubling to 5 min (a daily job need not hurry,
and the consumers beside it are already retrying)."""


def make_archive_handler(store: Store, max_frame_bytes: int) -> BatchHandler:
    """Archive every valid raw frame as received (replay reads these). A frame larger than
    MAX_FRAME_BYTES is archived with its size and hash in place of its data: the normalizer
    dead-letters it (capped), and nothing keeps its megabytes twice."""

    async def handle(entries: list[Entry]) -> Sequence[Failure]:
        frames: list[RawEnvelope] = []
        for entry in entries:
            fields = entry.fields or {}
            if frame_size(fields) > max_frame_bytes:
                fields = {**fields, "data": omitted_data(fields)}
            try:
                # Validated like the normalizer's frames, but ``data`` stays the text it came in.
                frames.append(envelope_from_fields(fields))
            except PermanentError:
                # Invalid frames are dead-lettered by the normalizer, which reads the same
                # entries; archiving them twice would mean two DLQ entries per bad frame.
                continue
        if frames:
            await store.archive_frames(frames)
        return ()

    return handle


class _Progress:
    """A summary line every ``every_s`` seconds while events are being stored."""

    def __init__(self, every_s: float = PROGRESS_EVERY_S) -> None:
        self.every_s = every_s
        self.inserted = 0
        self.duplicates = 0
        self.by_type: Counter[str] = Counter()
        self.total = 0
        self.last = time.monotonic()

    def add(self, events: Sequence[UnifiedEvent], inserted: int, duplicates: int) -> None:
        self.inserted += inserted
        self.duplicates += duplicates
        self.by_type.update(e.__struct_config__.tag for e in events)  # type: ignore[misc]
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.total += self.inserted
            logger.bind(role="store").info(
                "events stored",
                inserted=self.inserted,
                duplicates=self.duplicates,
                total=self.total,
                types=dict(self.by_type.most_common()),
            )
            self.inserted = self.duplicates = 0
            self.by_type.clear()
            self.last = now


def make_events_handler(store: Store) -> BatchHandler:
    """Write a batch of events in one transaction (idempotent: re-deliveries are no-ops)."""
    progress = _Progress()

    async def handle(entries: list[Entry]) -> Sequence[Failure]:
        events: list[UnifiedEvent] = []
        failures: list[Failure] = []
        for entry in entries:
            text = (entry.fields or {}).get("event", "")
            try:
                events.append(decode_event(text))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                failures.append(Failure(entry, "VALIDATION_ERROR", f"invalid UnifiedEvent: {exc}"))
        if events:
            result = await store.write_events(events)
            progress.add(events, result.inserted, result.duplicates)
        return failures

    return handle


async def run(ctx: Context, stop: asyncio.Event) -> None:
    archive = ctx.consumer(
        stream=ctx.keys.raw,
        group=keys.GROUP_ARCHIVE,
        handler=make_archive_handler(ctx.store, ctx.settings.ingest.max_frame_bytes),
        stage="store",
    )
    storage = ctx.consumer(
        stream=ctx.keys.events,
        group=keys.GROUP_STORAGE,
        handler=make_events_handler(ctx.store),
        stage="store",
    )
    if ctx.settings.embedded_bus:
        # This process is the only ingest, and nothing of this run is stored yet.
        await close_interrupted_sessions(ctx, stop)
    async with asyncio.TaskGroup() as group:
        group.create_task(archive.run(stop))
        group.create_task(storage.run(stop))
        if not ctx.settings.embedded_bus:
            group.create_task(close_interrupted_sessions(ctx, stop))
        if ctx.settings.retention.interval_s > 0 and ctx.engine is not None:
            group.create_task(prune_periodically(ctx.engine, ctx.settings.retention, stop))


async def close_interrupted_sessions(ctx: Context, stop: asyncio.Event) -> None:
    """At start, close the live sessions a crash left open ("running" forever otherwise).

    On the embedded default this process is the only ingest and has just started: every open
    live session was interrupted, and it runs before anything of this run is stored. On a
    shared bus it runs once the events waiting on the bus are stored, and other ingest replicas
    may be connected: only sessions with nothing ingested for ``interrupted_after_s`` are
    closed (a connected session hears from TikTok at least every ``INGEST_SILENCE_S``, or is
    cut with a DISCONNECTED)."""
    log = logger.bind(role="store")
    try:
        quiet_since = None
        if not ctx.settings.embedded_bus:
            while not stop.is_set() and not await _caught_up(ctx):
                await sleep_or_stop(stop, CATCH_UP_POLL_S)
            if stop.is_set():
                return
            quiet_since = datetime.now(UTC) - timedelta(seconds=interrupted_after_s(ctx))
        closed = await ctx.store.close_interrupted_sessions(quiet_since)
    except Exception as exc:  # the database away: the next start tries again
        log.warning("could not close interrupted sessions", error=f"{type(exc).__name__}: {exc}")
        return
    if closed:
        log.warning(
            "closed sessions a crash left open (marked interrupted)",
            sessions=len(closed),
            first=closed[0],
        )


def interrupted_after_s(ctx: Context) -> float:
    silence = ctx.settings.ingest.silence_s
    return 2 * silence + 60 if silence > 0 else INTERRUPTED_WITHOUT_SILENCE_S


async def _caught_up(ctx: Context) -> bool:
    groups = await ctx.bus.groups(ctx.keys.events)
    mine = next((g for g in groups if g.name == ctx.keys.group(keys.GROUP_STORAGE)), None)
    return mine is not None and not mine.pending and not mine.lag


async def prune_periodically(
    engine: AsyncEngine,
    settings: RetentionSettings,
    stop: asyncio.Event,
    *,
    start_delay_s: float = PRUNE_START_DELAY_S,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[asyncio.Event, float], Awaitable[None]] = sleep_or_stop,
) -> None:
    """Prune every PRUNE_INTERVAL_S, counted from the last recorded run (a restart does not
    reset it); on PostgreSQL one store replica at a time (``retention.prune_if_due``). An
    outage pauses it with back-off; a run stops between batches when ``stop`` is set."""
    if settings.interval_s <= 0:
        return
    log = logger.bind(role="store")
    await sleep(stop, start_delay_s)
    outages = 0
    while not stop.is_set():
        try:
            report, wait = await retention.prune_if_due(
                engine,
                settings,
                clock(),
                should_stop=stop.is_set,
                frame_subjects=users_named_in_frame,
            )
            outages = 0
        except Exception as exc:
            if is_transient(exc):
                outages += 1
                wait = PRUNE_OUTAGE_BACKOFF.delay(outages)
                log.warning(
                    "database unreachable; pruning paused",
                    error=f"{type(exc).__name__}: {exc}",
                    retry_in_s=round(wait, 1),
                )
            else:
                wait = PRUNE_FAILED_RETRY_S
                log.opt(exception=exc).error(
                    "prune failed", error=f"{type(exc).__name__}: {exc}", retry_in_s=wait
                )
        else:
            if report is not None:
                log.info(
                    "pruned" if report.complete else "prune stopped; the next run goes on",
                    seconds=round(report.seconds, 2),
                    rows=report.total,
                    steps=report.changed(),
                )
        await sleep(stop, min(wait, PRUNE_RECHECK_S))
