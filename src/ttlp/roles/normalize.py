"""normalize: ``ttlc:raw`` (group ``normalizer``) → UnifiedEvent → ``ttlc:events``; bad → DLQ."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from loguru import logger

from ttlp.aio import now_iso
from ttlp.bus import keys
from ttlp.bus.base import Bus, Entry
from ttlp.bus.consumer import BatchHandler, Failure
from ttlp.contracts.events import encode_event_text, frame_from_fields
from ttlp.errors import PermanentError
from ttlp.runtime import Context
from ttlp.tiktok import decode
from ttlp.tiktok.normalize import normalize_frame


def make_handler(
    bus: Bus, events_stream: str, max_frame_bytes: int, *, trace: bool = False
) -> BatchHandler:
    """The batch handler: normalize each frame, publish the events in one round trip.

    ``trace`` (LOG_LEVEL=debug) logs one line per event with its sessionId and eventId; it is
    decided once here so the hot path pays nothing for it otherwise.
    """
    log = logger.bind(role="normalizer")

    async def handle(entries: list[Entry]) -> Sequence[Failure]:
        published: list[dict[str, str]] = []
        failures: list[Failure] = []
        normalized_at = now_iso()
        for entry in entries:
            fields = entry.fields or {}
            try:
                event = normalize_frame(frame_from_fields(fields, max_frame_bytes))
            except PermanentError as exc:
                failures.append(
                    Failure(
                        entry,
                        exc.reason,
                        str(exc),
                        raw_type=fields.get("type"),
                        session_id=fields.get("sessionId"),
                    )
                )
                continue
            published.append({"event": encode_event_text(event), "normalizedAt": normalized_at})
            if trace:
                log.debug(
                    "normalized",
                    session_id=event.session_id,
                    event_id=event.event_id,
                    event_type=event.__struct_config__.tag,
                    raw_type=fields.get("type"),
                )
        await bus.publish_many(events_stream, published)
        return failures

    return handle


async def run(ctx: Context, stop: asyncio.Event) -> None:
    # Build the protobuf descriptors now (~0.6 s, off the event loop), not on the first frame.
    await asyncio.to_thread(decode.prepare)
    handler = make_handler(
        ctx.bus,
        ctx.keys.events,
        ctx.settings.ingest.max_frame_bytes,
        trace=ctx.settings.log_level == "debug",
    )
    consumer = ctx.consumer(
        stream=ctx.keys.raw, group=keys.GROUP_NORMALIZER, handler=handler, stage="normalizer"
    )
    await consumer.run(stop)
