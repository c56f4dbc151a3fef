"""The forwarder: events → durable delivery rows → signed HTTP POSTs, one worker per target.

``Forwarder.handle`` is the consume loop's batch handler for ``ttlc:events`` (group
``forwarder``): it finds the enabled targets each event matches (event type, and scope through
the room's streamer handle; a target with ``streak_end_only`` passes over the frames of a gift
streak before its end, as analytics and the rules' ``streakEndOnly`` do) and writes one
``pending`` row per (target, event) before the batch is acked. It never talks HTTP, so a slow
or dead target cannot hold up the stream.

A paused target (``enabled`` false, ``POST /forward/targets/{id}/pause``) gets no rows for the
events that arrive while it is paused, and its worker sends nothing: its pending rows are held
(rows it had claimed are given back) and go out, with their attempts as they were, once it is
resumed. Target changes reach the workers within ``TARGETS_RELOAD_S``.

Each target has a :class:`TargetWorker` with at most ``FORWARD_CONCURRENCY`` requests in
flight. It claims due rows (``forward_deliveries.next_attempt_at``), POSTs them through
:class:`ttlp.forward.outbound.Outbound` (SSRF checks, timeouts) signed as ``ttlp.forward.signing``
describes, and records the outcome: 2xx → ``delivered``; anything else → another attempt after
``Backoff`` (500 ms doubling to 30 s, ±20 % jitter), kept in the table so a restart
resumes it; after ``FORWARD_MAX_ATTEMPTS`` attempts, or at once when the destination is
refused (not allowed — retrying will not change that) → ``dead`` and a dlq.v1 entry on
``ttlc:dlq`` (stage ``forwarder``; the payload keeps the event and the target id, which is what
``ttlp dlq retry`` needs). Deliveries to one target are not ordered; receivers deduplicate by
``X-TTLP-Event-Id`` (a delivery whose outcome was not recorded before a crash is sent again).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Final

import msgspec
from loguru import logger

from ttlp.aio import Backoff, now_iso, sleep_or_stop
from ttlp.bus.base import Bus, Entry
from ttlp.bus.consumer import Failure, dead_letter_fields
from ttlp.contracts.events import DeadLetter, connected_handle, decode_event_head, encode
from ttlp.db.handles import HandleDirectory
from ttlp.forward.outbound import (
    MAX_REDIRECTS,
    Outbound,
    OutboundError,
    OutboundRefused,
    OutboundResponse,
)
from ttlp.forward.signing import signed_headers
from ttlp.forward.store import Delivery, ForwardStore, Target, utcnow
from ttlp.settings import Settings

STAGE: Final = "forwarder"
REASON_FAILED: Final = "FORWARD_FAILED"
REASON_REFUSED: Final = "FORWARD_REFUSED"

RETRY_BASE_S: Final = 0.5
"""First retry after 500 ms, doubling per attempt (DESIGN §8)."""
RETRY_MAX_S: Final = 30.0
"""No wait longer than 30 s between attempts."""
RETRY_JITTER: Final = 0.2
"""±20 %: targets that failed together do not all retry in the same instant."""
POLL_S: Final = 1.0
"""A worker looks for due rows at least this often (rows written by another process, a
``ttlp dlq retry``, expired leases); events handled here wake it at once."""
TARGETS_RELOAD_S: Final = 2.0
"""Target changes made through the API (maybe in another process) apply within this long."""
PREFETCH: Final = 4
"""A worker claims up to ``PREFETCH × concurrency`` rows at a time (fewer queries)."""
FLUSH_S: Final = 0.1
"""Successful deliveries are marked ``delivered`` in one UPDATE per this long (or per
``FLUSH_MAX``); a crash in between sends them again (receivers deduplicate by event id)."""
FLUSH_MAX: Final = 200
MAX_ERROR_CHARS: Final = 1000
GIFT: Final = "GIFT"


async def send(
    outbound: Outbound,
    target: Target,
    event_id: str,
    body: bytes,
    *,
    extra_headers: dict[str, str] | None = None,
) -> OutboundResponse:
    """One attempt: ``body`` POSTed to the target, signed with its secret (``signing``),
    through the outbound rules. Raises what ``Outbound.post`` raises."""
    headers = signed_headers(target.secret, event_id, body)
    if extra_headers:
        headers.update(extra_headers)
    return await outbound.post(target.url, body=body, headers=headers)


class _GiftFlags(msgspec.Struct, rename="camel"):
    streak_active: bool | None = None
    streak_end: bool | None = None


class _GiftHead(msgspec.Struct):
    payload: _GiftFlags | None = None


_gift_decoder: Final = msgspec.json.Decoder(_GiftHead)


def counted_gift(data: str | bytes) -> bool:
    """Whether a GIFT event is one that counts: the end frame of a streak (which carries the
    streak's total), or a gift that is not part of one. Its earlier frames, and a late frame
    of a streak the ingest already closed (neither active nor an end), are not. The rule of
    ``ttlp.db.queries.COUNTED_GIFT`` and ``ttlp.db.export.counted_coins``; an unreadable
    payload counts (the event is forwarded rather than lost)."""
    try:
        payload = _gift_decoder.decode(data).payload
    except (msgspec.DecodeError, msgspec.ValidationError):
        return True
    if payload is None:
        return True
    if payload.streak_end is not None:
        return payload.streak_end
    return not payload.streak_active


class Forwarder:
    def __init__(
        self,
        store: ForwardStore,
        bus: Bus,
        settings: Settings,
        *,
        dlq_stream: str,
        events_stream: str,
        outbound: Outbound | None = None,
        retry_base_s: float = RETRY_BASE_S,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings
        self.dlq_stream = dlq_stream
        self.events_stream = events_stream
        self.outbound = outbound or Outbound(settings.outbound)
        self.backoff = Backoff(initial_s=retry_base_s, max_s=retry_max_s, jitter=RETRY_JITTER)
        self.handles = HandleDirectory.of(store.engine)
        self.workers: dict[int, TargetWorker] = {}
        self._targets: list[Target] = []
        self._loaded_at = float("-inf")
        self._reads = 0  # target reads started
        self._applied_read = 0  # the newest read applied
        self._stop = asyncio.Event()
        self.log = logger.bind(role="forward")
        # The longest one attempt can take; a claimed row is left alone that long (and more).
        per_hop = settings.outbound.connect_timeout_s + 2 * settings.outbound.read_timeout_s
        self.lease_s = per_hop * (MAX_REDIRECTS + 1) * PREFETCH + 30

    # -- targets and workers -----------------------------------------------------------------
    async def targets(self, *, force: bool = False) -> list[Target]:
        """The targets, re-read every ``TARGETS_RELOAD_S``; workers follow the list.

        Reads may overlap (the batch handler's and a forced one): a read that started before
        the newest applied one is dropped, so a pause read by a later call is never undone by
        an earlier read finishing after it."""
        if force or time.monotonic() - self._loaded_at >= TARGETS_RELOAD_S:
            self._reads += 1
            read = self._reads
            started = time.monotonic()
            loaded = await self.store.targets()
            if read > self._applied_read:
                self._applied_read = read
                self._targets = loaded
                self._loaded_at = started
                self._sync_workers()
        return self._targets

    def _sync_workers(self) -> None:
        current = {t.id: t for t in self._targets}
        for target_id in list(self.workers):
            if target_id not in current:
                self.workers.pop(target_id).cancel()
        for target in self._targets:
            worker = self.workers.get(target.id)
            if worker is None:
                worker = self.workers[target.id] = TargetWorker(self, target)
                worker.start()
            else:
                worker.target = target
            worker.wake()

    # -- the batch handler -------------------------------------------------------------------
    async def handle(self, entries: list[Entry]) -> Sequence[Failure]:
        """Write a pending delivery per (matching target, event); returns the unreadable."""
        targets = [t for t in await self.targets() if t.enabled]
        failures: list[Failure] = []
        rows: list[tuple[int, str, str]] = []
        for entry in entries:
            data = (entry.fields or {}).get("event")
            if data is None:
                failures.append(Failure(entry, "VALIDATION_ERROR", "entry has no event field"))
                continue
            try:
                head = decode_event_head(data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                failures.append(Failure(entry, "PARSE_ERROR", str(exc)))
                continue
            if head.event_type == "CONNECTED":
                connected = connected_handle(data)
                if connected:
                    self.handles.learn(head.stream_id, connected)
            if not targets:
                continue
            handle: str | None = None
            if any(t.scope != "*" for t in targets):
                handle = await self.handles.handle(head.stream_id)
            counted: bool | None = None  # read once per gift, when a target asks
            for target in targets:
                if not target.matches(head.event_type, handle):
                    continue
                if target.streak_end_only and head.event_type == GIFT:
                    if counted is None:
                        counted = counted_gift(data)
                    if not counted:
                        continue
                rows.append((target.id, head.event_id, data))
        if rows:
            await self.store.enqueue(rows)
            for target_id in {r[0] for r in rows}:
                worker = self.workers.get(target_id)
                if worker is not None:
                    worker.wake()
        return failures

    # -- outcomes ----------------------------------------------------------------------------
    async def give_up(self, delivery: Delivery, reason: str, error: str) -> None:
        """Dead-letter first, then mark the row: a crash in between sends the entry twice
        rather than losing it."""
        session_id = ""
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            session_id = decode_event_head(delivery.event_data).session_id
        letter = DeadLetter(
            stage=STAGE,
            reason=reason,
            error=error[:MAX_ERROR_CHARS],
            payload=encode(
                {"event": delivery.event_data, "targetId": str(delivery.target_id)}
            ).decode(),
            failed_at=now_iso(),
            session_id=session_id[:64] or msgspec.UNSET,
            source_stream=self.events_stream,
        )
        await self.bus.publish(self.dlq_stream, dead_letter_fields(letter))
        await self.store.mark_dead(delivery.id, error[:MAX_ERROR_CHARS])

    # -- running -----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.targets(force=True)

    async def refresh_forever(self, stop: asyncio.Event) -> None:
        """Follow target changes when no events arrive to trigger the reload."""
        while not stop.is_set():
            await sleep_or_stop(stop, TARGETS_RELOAD_S)
            if not stop.is_set():
                try:
                    await self.targets()
                except Exception as exc:  # the database may be away for a moment
                    self.log.warning("cannot reload targets", error=repr(exc)[:300])

    async def close(self, grace_s: float = 5.0) -> None:
        """Stop the workers: in-flight requests get ``grace_s`` to finish, then are cancelled
        (their rows come due again when the lease ends)."""
        workers = list(self.workers.values())
        self.workers.clear()
        for worker in workers:
            worker.stopping = True
            worker.wake()
        tasks = [w.task for w in workers if w.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.outbound.aclose()

    async def idle(self) -> bool:
        """True when no worker holds or runs a delivery (tests and benchmarks)."""
        return all(not w.held and not w.delivered for w in self.workers.values())


class TargetWorker:
    """Deliveries of one target, at most ``FORWARD_CONCURRENCY`` at a time."""

    def __init__(self, forwarder: Forwarder, target: Target) -> None:
        self.fw = forwarder
        self.target = target
        self.concurrency = max(1, forwarder.settings.forward.concurrency)
        self.queue: list[Delivery] = []
        self.held: set[int] = set()  # claimed here, queued or in flight
        self.running: set[asyncio.Task[None]] = set()
        self.delivered: list[int] = []  # sent, not yet marked in the table
        self._flush_at = 0.0
        self.task: asyncio.Task[None] | None = None
        self.stopping = False
        self._wake = asyncio.Event()
        self.log = forwarder.log.bind(target_id=target.id)

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"forward-target-{self.target.id}")

    def wake(self) -> None:
        self._wake.set()

    def cancel(self) -> None:
        self.stopping = True
        if self.task is not None:
            self.task.cancel()

    async def _run(self) -> None:
        try:
            while not self.stopping:
                try:
                    await self._step()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database away: keep the worker, try again
                    self.log.warning("forward worker step failed", error=repr(exc)[:300])
                    await asyncio.sleep(POLL_S)
                    continue
                await self._sleep()
        finally:
            for task in self.running:
                task.cancel()
            if self.running:
                await asyncio.gather(*self.running, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flush())
            # Rows claimed but not sent (or cut off): due again now, not when the lease ends.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.fw.store.release(sorted(self.held)))
            self.queue.clear()

    async def _step(self) -> None:
        if self.delivered and (
            len(self.delivered) >= FLUSH_MAX
            or time.monotonic() >= self._flush_at
            or not (self.queue or self.running)
        ):
            await self._flush()
        if not self.target.enabled:
            await self._hold()
            return
        if len(self.queue) < self.concurrency:
            limit = self.concurrency * PREFETCH - len(self.held)
            if limit > 0:
                lease = utcnow() + timedelta(seconds=self.fw.lease_s)
                for delivery in await self.fw.store.claim(self.target.id, limit, lease):
                    if delivery.id not in self.held:
                        self.held.add(delivery.id)
                        self.queue.append(delivery)
        if not self.target.enabled:  # paused while the claim was on its way
            await self._hold()
            return
        while self.queue and len(self.running) < self.concurrency:
            task = asyncio.create_task(self._deliver(self.queue.pop(0)))
            self.running.add(task)
            task.add_done_callback(self._done)

    async def _hold(self) -> None:
        """Paused: the rows claimed but not started go back to the table (due now, attempts
        as they were), so no lease runs out on them while the pause lasts; requests already
        in flight finish and are recorded."""
        if self.queue:
            ids = [d.id for d in self.queue]
            await self.fw.store.release(ids)
            self.queue.clear()
            self.held.difference_update(ids)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.running.discard(task)
        self._wake.set()

    async def _sleep(self) -> None:
        if self._wake.is_set():
            self._wake.clear()
            return
        timeout = POLL_S
        if self.delivered:
            timeout = max(self._flush_at - time.monotonic(), 0.0)
        elif not self.queue and not self.running and self.target.enabled:
            due = await self.fw.store.next_due(self.target.id)
            if due is not None:
                timeout = min(POLL_S, max((due - utcnow()).total_seconds(), 0.0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    async def _flush(self) -> None:
        """Record the deliveries that succeeded since the last step in one UPDATE."""
        if self.delivered:
            ids, self.delivered = self.delivered, []
            try:
                await self.fw.store.mark_delivered(ids)
            except BaseException:
                self.delivered[:0] = ids
                raise

    async def _deliver(self, delivery: Delivery) -> None:
        body = delivery.event_data.encode()
        attempt = delivery.attempts + 1
        try:
            response = await send(self.fw.outbound, self.target, delivery.event_id, body)
        except OutboundRefused as exc:
            give_up = functools.partial(self.fw.give_up, delivery, REASON_REFUSED, exc.reason)
            await self._finish(delivery, give_up)
            self.log.warning("forward destination refused", reason=exc.reason)
            return
        except OutboundError as exc:
            error = exc.reason
        else:
            if 200 <= response.status_code < 300:
                if not self.delivered:
                    self._flush_at = time.monotonic() + FLUSH_S
                self.delivered.append(delivery.id)
                self.held.discard(delivery.id)  # its lease keeps it from being claimed again
                return
            error = f"HTTP {response.status_code}"
        if attempt >= self.fw.settings.forward.max_attempts:
            self.log.warning("forward delivery dead", event_id=delivery.event_id, error=error)
            await self._finish(delivery, lambda: self.fw.give_up(delivery, REASON_FAILED, error))
            return
        delay = self.fw.backoff.delay(attempt)
        next_at = utcnow() + timedelta(seconds=delay)
        await self._finish(delivery, lambda: self.fw.store.mark_retry(delivery.id, next_at, error))

    async def _finish(self, delivery: Delivery, record: Callable[[], Awaitable[None]]) -> None:
        """Record an outcome (shielded: a shutdown must not lose it half-way)."""
        try:
            await asyncio.shield(record())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # not recorded: the lease brings the row back later
            self.log.warning("cannot record forward outcome", error=repr(exc)[:300])
        finally:
            self.held.discard(delivery.id)
