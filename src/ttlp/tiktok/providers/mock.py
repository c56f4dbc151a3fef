"""The mock provider: raw.v1 frames from an NDJSON file, as if a streamer were live.

It is a test hook first (seed 003 §9.2.2: the file holds raw frames), so without ``loop`` it is
faithful: each line is published as written, its ``sessionId``, ``seqNo``, ``streamId`` and
timestamps kept, and a recorded session fed through it yields exactly its events (duplicates and
TikTok's re-sends deduplicated by the store, as live). With ``loop`` (demos, benchmarks) it is a
load generator: each pass over the file is one connection (the supervisor's session) with a new
sessionId, fresh seqNos (unique across runs, so re-send dedupe never mistakes a new pass for a
re-send), and ``timestamp``/``ingestedAt`` set to now. ``rate`` paces either (frames/s, 0 = as
fast as the consumers keep up).

A line that is not a valid raw.v1 frame is published as it is, to be dead-lettered by the
normalizer with its reason (seed 003 §9.7's DLQ smoke test injects ``dlq-frames.ndjson``): a
JSON object as one entry field per key, anything else as a lone ``data`` field; a line of the
form ``{"fields": {...}}`` is published as exactly that entry. The mock warns once, at start,
how many such lines the file holds. A file with no raw.v1 frame and no ``fields`` line at all
is refused: it is not a fixture.
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
    invalid: str | None = None
    """Why the line is not a raw.v1 frame (its ``fields`` are then the line as it is)."""


def load_fixture(path: Path) -> list[Line]:
    """Parse the NDJSON file (see the module docstring for lines that are not raw.v1)."""
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise ConfigError(f"cannot read MOCK_FIXTURE {path}: {exc.strerror}") from None
    lines: list[Line] = []
    first_invalid: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            lines.append(Line(decode_raw_frame(line), None))
            continue
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeEncodeError) as exc:
            error = str(exc) if not isinstance(exc, UnicodeEncodeError) else "not UTF-8"
        try:
            raw: Any = msgspec.json.decode(line)
        except (msgspec.DecodeError, UnicodeEncodeError):
            raw = None
        fields = raw.get("fields") if isinstance(raw, dict) else None
        if isinstance(fields, dict) and all(isinstance(v, str) for v in fields.values()):
            lines.append(Line(None, fields))
            continue
        where = f"{path}:{number}: not a raw.v1 frame ({error})"
        first_invalid = first_invalid or where
        lines.append(Line(None, _as_entry(raw, line), invalid=where))
    invalid = sum(1 for line in lines if line.invalid)
    if len(lines) == invalid:
        raise ConfigError(
            f"{first_invalid}, and no line of the file is one"
            if first_invalid
            else f"MOCK_FIXTURE {path} holds no frames"
        )
    return lines


def _as_entry(raw: Any, line: str) -> dict[str, str]:
    """A line that is not raw.v1, as the ``ttlc:raw`` entry closest to what it says."""
    if isinstance(raw, dict):
        return {
            str(key): value if isinstance(value, str) else msgspec.json.encode(value).decode()
            for key, value in raw.items()
        }
    return {"data": line}


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

    Every connection publishes one pass over the file; then it ends with ``RECONNECT_NOW``
    when looping (the next pass is a new session at once), else with ``FINISHED``. It sends
    no lifecycle frames of its own: the fixture carries them. ``rate`` is kept across passes
    (frames/s since the first one).
    """

    name: ProviderName = "mock"

    def __init__(
        self,
        lines: list[Line],
        *,
        rate: float = 0.0,
        loop: bool = False,
        restamp: bool | None = None,
    ) -> None:
        """``restamp`` (default: as ``loop``): give each pass a new session, fresh seqNos and
        the current time, as a load generator must (the pipeline benchmark sets it without
        ``loop``: one pass of exactly the frames it counts)."""
        self.lines = lines
        self.rate = rate
        self.loop = loop
        self.restamp = loop if restamp is None else restamp
        self._seq = SeqCounter()
        self._started: float | None = None
        self._sent = 0
        self._warned = False

    async def is_live(self, unique_id: str) -> bool:
        return True

    async def run(self, unique_id: str, session: Session, stop: asyncio.Event) -> None:
        publisher = session.publisher
        log = logger.bind(role="ingest", provider="mock")
        if self._started is None:
            self._started = time.monotonic()
        session_id = session.session_id
        invalid = [line.invalid for line in self.lines if line.invalid]
        if invalid and not self._warned:
            self._warned = True
            log.warning(
                "MOCK_FIXTURE holds lines that are not raw.v1 frames: they are published as "
                "they are and the normalizer dead-letters them",
                lines=len(invalid),
                first=invalid[0][:300],
            )
        if self.restamp:
            log.info("mock session started", session_id=session_id, frames=len(self.lines))
        else:
            log.info("mock publishing the fixture as written", frames=len(self.lines))
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
            if self.restamp:
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
            else:
                batch.append(line.frame)
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
        log.info("mock fixture published", frames=session.frames)
        raise ConnectionEnded(Outcome.FINISHED, "fixture published")
