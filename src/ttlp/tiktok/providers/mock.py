"""The mock provider: raw.v1 frames from an NDJSON file, as if a streamer were live.

Each pass over the file is one connection: a new sessionId, fresh seqNos (unique across runs,
so TikTok-style re-send dedupe never mistakes a new run for a re-send), ``timestamp`` and
``ingestedAt`` set to now. ``rate`` paces it (frames/s, 0 = as fast as the consumers keep up);
``loop`` repeats the file forever. A line of the form ``{"fields": {...}}`` is published as
that exact entry, unchecked: the way to feed malformed frames to the pipeline in tests.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec
from loguru import logger

from ttlp.bus.consumer import now_iso
from ttlp.contracts.events import RawFrame, decode_raw_frame
from ttlp.errors import ConfigError
from ttlp.runtime import sleep_or_stop
from ttlp.tiktok.publish import FramePublisher

CHUNK: Final = 500


def bundled_fixture() -> Path:
    """The fixture shipped in the wheel, or the repository's when running from a checkout."""
    here = Path(__file__).resolve()
    packaged = here.parent / "raw-frames.ndjson"
    if packaged.exists():
        return packaged
    return here.parents[4] / "tests" / "fixtures" / "raw-frames.ndjson"


@dataclass(frozen=True)
class Line:
    frame: RawFrame | None
    fields: dict[str, str] | None


def load_fixture(path: Path) -> list[Line]:
    """Parse the NDJSON file; a line that is neither raw.v1 nor ``{"fields":…}`` is refused."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read MOCK_FIXTURE {path}: {exc.strerror}") from None
    lines: list[Line] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append(Line(decode_raw_frame(line), None))
            continue
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            error = exc
        try:
            raw: Any = msgspec.json.decode(line)
        except msgspec.DecodeError:
            raw = None
        fields = raw.get("fields") if isinstance(raw, dict) else None
        if isinstance(fields, dict) and all(isinstance(v, str) for v in fields.values()):
            lines.append(Line(None, fields))
            continue
        raise ConfigError(f"{path}:{number}: not a raw.v1 frame ({error})")
    if not lines:
        raise ConfigError(f"MOCK_FIXTURE {path} holds no frames")
    return lines


class SeqCounter:
    """seqNos for one run: start from the clock (ms × 10⁶) so runs never overlap."""

    def __init__(self) -> None:
        self.next = int(time.time() * 1000) * 1_000_000

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        self.next += 1
        return self.next


class MockProvider:
    def __init__(self, lines: list[Line], *, rate: float = 0.0, loop: bool = False) -> None:
        self.lines = lines
        self.rate = rate
        self.loop = loop
        self.sessions: list[str] = []

    async def run(self, publisher: FramePublisher, stop: asyncio.Event) -> None:
        seq = SeqCounter()
        log = logger.bind(role="ingest", provider="mock")
        started = time.monotonic()
        sent = 0
        while not stop.is_set():
            session_id = str(uuid.uuid4())
            self.sessions.append(session_id)
            log.info("mock session started", session_id=session_id, frames=len(self.lines))
            batch: list[RawFrame] = []
            for line in self.lines:
                if stop.is_set():
                    break
                if line.fields is not None:
                    await publisher.publish(batch)
                    batch = []
                    await publisher.bus.publish(publisher.stream, line.fields)
                    continue
                assert line.frame is not None
                now = now_iso()
                batch.append(
                    msgspec.structs.replace(
                        line.frame,
                        session_id=session_id,
                        seq_no=next(seq),
                        timestamp=now,
                        ingested_at=now,
                        source="live",
                    )
                )
                sent += 1
                if self.rate > 0:
                    # Publish what is due, then sleep until the next frame is.
                    due = started + sent / self.rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        await publisher.publish(batch)
                        batch = []
                        await sleep_or_stop(stop, delay)
                if len(batch) >= CHUNK:
                    await publisher.publish(batch)
                    batch = []
            await publisher.publish(batch)
            if not self.loop:
                log.info("mock fixture published", session_id=session_id, frames=sent)
                return
