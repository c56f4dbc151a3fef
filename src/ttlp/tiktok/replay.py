"""Replay: re-publish a stored session's raw frames as a new session (``source=replay``).

Frames come from the raw archive in arrival order and go through the whole pipeline again, so
a replay re-runs today's normalizer over yesterday's data. As fast as the consumers keep up by
default; ``speed`` > 0 follows the original arrival timing (1.0 = real time, 2.0 = twice as fast).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from loguru import logger

from ttlp.aio import now_iso, parse_iso
from ttlp.contracts.events import OMITTED_KEY, RawFrame
from ttlp.db.store import Store
from ttlp.tiktok.publish import FramePublisher


@dataclass(frozen=True)
class ReplayResult:
    source_session_id: str
    session_id: str
    frames: int


async def replay_session(
    store: Store,
    publisher: FramePublisher,
    source_session_id: str,
    *,
    speed: float | None = None,
    session_id: str | None = None,
    stop: asyncio.Event | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Publish every archived frame of ``source_session_id`` under a new session id.

    ``session_id`` may be given (the API allocates it up front); replaying the same
    ``session_id`` twice is harmless: the archive and the events table ignore the repeats.
    """
    new_id = session_id or str(uuid.uuid4())
    await store.create_replay_session(new_id, source_session_id)
    log = logger.bind(role="ingest", session_id=new_id)
    log.info("replay started", replayed_from=source_session_id, speed=speed or "max")
    sent = omitted = 0
    first_arrival: float | None = None
    started = time.monotonic()
    async for frames in store.iter_session_frames(source_session_id):
        out: list[RawFrame] = []
        for frame in frames:
            if stop is not None and stop.is_set():
                break
            if isinstance(frame.data, dict) and OMITTED_KEY in frame.data:
                omitted += 1  # too large when it came; its dead letter has what was kept
                continue
            if speed:
                arrival = _epoch(frame.ingested_at)
                first_arrival = arrival if first_arrival is None else first_arrival
                delay = started + (arrival - first_arrival) / speed - time.monotonic()
                if delay > 0:
                    await publisher.publish(out)
                    out = []
                    await asyncio.sleep(delay)
            out.append(
                msgspec.structs.replace(
                    frame, session_id=new_id, source="replay", ingested_at=now_iso()
                )
            )
            sent += 1
        await publisher.publish(out)
        if progress is not None:
            progress(len(frames))
        if stop is not None and stop.is_set():
            log.warning("replay interrupted", frames=sent)
            break
    log.info("replay published", frames=sent, omitted=omitted)
    return ReplayResult(source_session_id, new_id, sent)


def _epoch(iso: str) -> float:
    return parse_iso(iso).timestamp()
