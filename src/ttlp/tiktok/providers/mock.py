"""The mock provider: raw.v1 frames from an NDJSON file, as if a streamer were live.

Each pass over the file is one connection (the supervisor's session): a new sessionId, fresh
seqNos (unique across runs, so TikTok-style re-send dedupe never mistakes a new run for a
re-send), ``timestamp`` and ``ingestedAt`` set to now. ``rate`` paces it (frames/s, 0 = as
fast as the consumers keep up); ``loop`` repeats the file forever. A line of the form
``{"fields": {...}}`` is published as that exact entry, unchecked: the way to feed malformed
frames to the pipeline in tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec
from loguru import logger

from ttlp.aio import now_iso, sleep_or_stop
from ttlp.contracts.events import RawFrame, decode_raw_frame
from ttlp.errors import ConfigError
from ttlp.tiktok.providers.base import ConnectionEnded, Outcome, ProviderName, Session

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
    """A ``Provider`` over fixture lines, run by the same supervisor as direct and euler.

    Every connection publishes one pass over the file into the supervisor's session; then it
    ends with ``RECONNECT_NOW`` when looping (the next pass is a new session at once), else
    with ``FINISHED``. It sends no lifecycle frames of its own: the fixture carries them.
    ``rate`` is kept across passes (frames/s since the first one).
    """

    name: ProviderName = "mock"

    def __init__(self, lines: list[Line], *, rate: float = 0.0, loop: bool = False) -> None:
        self.lines = lines
        self.rate = rate
        self.loop = loop
        self._seq = SeqCounter()
        self._started: float | None = None
        self._sent = 0

    async def is_live(self, unique_id: str) -> bool:
        return True

    async def run(self, unique_id: str, session: Session, stop: asyncio.Event) -> None:
        publisher = session.publisher
        log = logger.bind(role="ingest", provider="mock")
        if self._started is None:
            self._started = time.monotonic()
        session_id = session.session_id
        log.info("mock session started", session_id=session_id, frames=len(self.lines))
        batch: list[RawFrame] = []
        for line in self.lines:
            if stop.is_set():
                break
            if line.fields is not None:
                await publisher.publish(batch)
                batch = []
                await publisher.publish_fields([line.fields])
                continue
            assert line.frame is not None
            now = now_iso()
            batch.append(
                msgspec.structs.replace(
                    line.frame,
                    session_id=session_id,
                    seq_no=next(self._seq),
                    timestamp=now,
                    ingested_at=now,
                    source="live",
                )
            )
            self._sent += 1
            session.frames += 1
            if self.rate > 0:
                # Publish what is due, then sleep until the next frame is.
                delay = self._started + self._sent / self.rate - time.monotonic()
                if delay > 0:
                    await publisher.publish(batch)
                    batch = []
                    await sleep_or_stop(stop, delay)
            if len(batch) >= CHUNK:
                await publisher.publish(batch)
                batch = []
        await publisher.publish(batch)
        if stop.is_set():
            return
        if self.loop:
            raise ConnectionEnded(Outcome.RECONNECT_NOW, "fixture pass done")
        log.info("mock fixture published", session_id=session_id, frames=session.frames)
        raise ConnectionEnded(Outcome.FINISHED, "fixture published")
