"""``ttlp export`` and ``ttlp import``: a database's data out as files, and raw frames back in.

``export`` writes what ``ttlp.db.export`` reads and formats, to a file (with a progress bar on
stderr, written beside it and renamed when complete) or to stdout (nothing else on stdout, so
it pipes).

``import`` re-processes raw.v1 NDJSON (``ttlp export --raw``) through the real pipeline, in
this process: the mock provider in its faithful mode publishes every line as written (session
ids, seqNos, timestamps and sources kept; a line that is not raw.v1 is published as it is and
dead-lettered), the normalizer's and the store's own batch handlers consume it in burst mode,
into the configured database. Event ids are deterministic, so the same frames yield the same
events, and importing a file twice adds nothing.

The file is taken ``CHUNK_LINES`` lines at a time (the mock holds its fixture in memory: a
whole database at once would not fit): each chunk is published, then every consumer reads to
the end of the bus, so every frame is archived and every event stored before the next chunk,
and the order of arrival is kept (the store keeps the first of TikTok's re-sends, as live).

The import runs on an in-process bus of its own, whatever ``REDIS_URL`` says: history fed
through a shared Redis would reach the rules role (announcements and webhooks for months-old
gifts), the forwarder and the live feeds again, and normalizer replicas would store re-sends
in another order than the first time. Its dead letters go where ``ttlp dlq`` looks: Redis's
``ttlc:dlq`` when ``REDIS_URL`` is set, the database otherwise (as on the embedded default).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Final

import click
import msgspec
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.bus import keys
from ttlp.bus.base import Bus
from ttlp.bus.keys import Keys
from ttlp.contracts.events import (
    RawEnvelope,
    RawFrame,
    UnifiedEvent,
    decode_event,
    decode_raw_frame,
)
from ttlp.db import export as ex
from ttlp.db.engine import normalize_database_url
from ttlp.db.store import Store, WriteResult
from ttlp.errors import ConfigError
from ttlp.roles import normalize, store
from ttlp.runtime import Context, keep_dead_letters, make_bus, open_context
from ttlp.settings import Settings, redact_url
from ttlp.tiktok import decode
from ttlp.tiktok.providers.base import ConnectionEnded, Outcome, Session
from ttlp.tiktok.providers.mock import Line, MockProvider, load_fixture
from ttlp.tiktok.publish import FramePublisher

CHUNK_LINES: Final = 10_000
"""Lines published before the pipeline is drained (about 40 MB of JSON frames in memory)."""
BUS_MAXLEN: Final = 4 * CHUNK_LINES
"""The import's own bus holds a chunk on each stream with room to spare (never trimmed
before it is read)."""
MAX_REPORTED: Final = 10
"""Lines that are not raw.v1 named one by one (then only counted)."""


def database_only(settings: Settings) -> Settings:
    """``settings`` for a command that needs the database and no shared bus."""
    bus = msgspec.structs.replace(settings.bus, redis_url=None, stream_maxlen=BUS_MAXLEN)
    return msgspec.structs.replace(settings, bus=bus)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


# -- export ------------------------------------------------------------------------------------
async def export_command(
    settings: Settings,
    fmt: ex.Format,
    output: Path | None,
    *,
    sessions: Sequence[str] = (),
    stream: str | None = None,
    streamer: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> bool:
    """Write the export to ``output`` (progress on stderr) or stdout. False when stdout was
    closed before the end (``ttlp export | head``)."""
    if fmt == "parquet":
        ex.require_pyarrow()
        if output is None and sys.stdout.isatty():
            raise ConfigError("Parquet is binary: write it to a file with -o FILE")
    async with open_context(database_only(settings), need_db=True) as ctx:
        assert ctx.engine is not None
        selection = await ex.select_what(
            ctx.engine,
            session_ids=sessions,
            stream_id=stream,
            streamer=streamer,
            since=since,
            until=until,
        )
        if output is None:
            out = sys.stdout.buffer
            try:
                async for chunk in ex.export(ctx.engine, selection, fmt):
                    out.write(chunk)
                out.flush()
            except BrokenPipeError:
                return False
            return True
        await _export_to_file(ctx.engine, selection, fmt, output)
    return True


async def _export_to_file(
    engine: AsyncEngine, selection: ex.Selection, fmt: ex.Format, output: Path
) -> None:
    """Write beside ``output`` and rename when complete: a failed export leaves no file that
    looks like one."""
    rows = "frames" if fmt == "raw" else "events"
    total = await ex.count(engine, selection, raw=fmt == "raw")
    partial = output.with_name(output.name + ".partial")
    try:
        out = partial.open("wb")
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror}") from None
    console = _stderr()
    try:
        with (
            out,
            Progress(
                TextColumn(f"[bold]export[/] {fmt} {rows}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as progress,
        ):
            task = progress.add_task(fmt, total=total)
            chunks = ex.export(engine, selection, fmt, progress=lambda n: progress.advance(task, n))
            async for chunk in chunks:
                out.write(chunk)
        partial.replace(output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    console.print(f"exported {total} {rows} ({fmt}) to {output}", markup=False, soft_wrap=True)


# -- import ------------------------------------------------------------------------------------
@dataclass
class ImportReport:
    """What an import did, counted as the pipeline went."""

    lines: int = 0
    """Lines of the file that are not blank."""
    frames: int = 0
    """Lines that are raw.v1 frames."""
    invalid: int = 0
    """Lines that are not (published as they are, dead-lettered by the normalizer)."""
    problems: list[str] = field(default_factory=list)
    """The first ``MAX_REPORTED`` of them: where and why."""
    archived: int = 0
    """Frames archived by this import (the others were in the archive already)."""
    stored: int = 0
    """Events stored by this import."""
    duplicates: int = 0
    """Events the database already held (an earlier import, or TikTok's re-sends)."""
    refused: int = 0
    """Events of users a GDPR erasure named (``ttlp.db.erasure``): never stored again."""
    dead_lettered: int = 0

    def summary(self) -> list[str]:
        """What ``ttlp import`` prints (stdout), one count per line."""
        return [
            f"frames read:        {self.frames} of {self.lines} lines ({self.invalid} not raw.v1)",
            f"frames archived:    {self.archived} ({self.frames - self.archived} already there)",
            f"events stored:      {self.stored} ({self.refused} refused: erased users)",
            f"duplicates skipped: {self.duplicates}",
            f"dead-lettered:      {self.dead_lettered}",
        ]


class CountingStore(Store):
    """A ``Store`` that counts what the store role's handlers write through it."""

    def __init__(
        self, engine: AsyncEngine, report: ImportReport, *, pseudonym_salt: str | None
    ) -> None:
        super().__init__(engine, pseudonym_salt=pseudonym_salt)
        self.report = report

    async def archive_frames(self, frames: Sequence[RawFrame | RawEnvelope]) -> int:
        inserted = await super().archive_frames(frames)
        self.report.archived += inserted
        return inserted

    async def write_events(self, events: Sequence[UnifiedEvent]) -> WriteResult:
        result = await super().write_events(events)
        self.report.stored += result.inserted
        self.report.duplicates += result.duplicates
        self.report.refused += result.refused
        return result


@dataclass
class Chunk:
    """Lines of the input, written to ``path`` one per line as the mock reads them."""

    path: Path
    numbers: list[int]
    """The input's line number of each line of ``path``."""


def read_chunks(
    source: IO[bytes], directory: Path, name: str, *, size: int, read: Callable[[int], None]
) -> Iterator[Chunk]:
    """The input as chunks of about ``size`` lines, each starting at a raw.v1 frame.

    Lines are split as the mock splits its file (``str.splitlines``, blank lines dropped), but
    U+2028, U+2029 and U+0085 are escaped first: raw inside a JSON string they would cut a
    frame in two. A chunk holds at least one frame (the mock refuses a file without any): a
    new one starts at the first frame after ``size`` lines. ``read`` hears of every byte read.
    """
    path = directory / "chunk.ndjson"
    numbers: list[int] = []
    has_frame = False
    first: tuple[int, str] | None = None
    out = path.open("wb")
    try:
        for number, raw in enumerate(source, 1):
            read(len(raw))
            text = ex.escape_line_breaks(raw).decode("utf-8", "surrogateescape")
            for piece in text.splitlines():
                if not piece.strip():
                    continue
                first = first or (number, piece)
                frame = (not has_frame or len(numbers) >= size) and _is_frame(piece)
                if frame and has_frame:
                    out.close()
                    yield Chunk(path, numbers)
                    out, numbers, has_frame = path.open("wb"), [], False
                out.write(piece.encode("utf-8", "surrogateescape") + b"\n")
                numbers.append(number)
                has_frame = has_frame or frame
        out.close()
        if numbers and not has_frame:
            assert first is not None
            raise ConfigError(_no_frames(name, *first))
        if numbers:
            yield Chunk(path, numbers)
    finally:
        out.close()


def _is_frame(text: str) -> bool:
    """Whether the mock reads the line as a raw.v1 frame (its first test of a line)."""
    try:
        decode_raw_frame(text)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeEncodeError):
        return False
    return True


def _no_frames(name: str, number: int, text: str) -> str:
    hint = "ttlp import reads raw.v1 frames, as `ttlp export --raw` writes them"
    with contextlib.suppress(msgspec.MsgspecError, UnicodeEncodeError):
        decode_event(text)
        hint = (
            f"{name} holds UnifiedEvent lines (an export without --raw): events cannot be "
            "re-processed; " + hint
        )
    return f"no line of {name} is a raw.v1 frame (line {number} is not): {hint}"


@dataclass
class _Pipeline:
    """The import's in-process pipeline: the mock's publisher, the three consumers."""

    ctx: Context
    letters: Bus | None
    """Where dead letters go (Redis), None: they stay on the bus (kept in the database)."""
    report: ImportReport

    def __post_init__(self) -> None:
        ctx = self.ctx
        assert ctx.engine is not None
        # As the store role's (``Context.store``): erased users' events are refused here too.
        salt = ctx.settings.retention.pseudonym_salt
        counting = CountingStore(ctx.engine, self.report, pseudonym_salt=salt)
        max_bytes = ctx.settings.ingest.max_frame_bytes
        self.consumers = (
            ctx.consumer(
                stream=ctx.keys.raw,
                group=keys.GROUP_NORMALIZER,
                handler=normalize.make_handler(
                    ctx.bus, ctx.keys.events, max_bytes, trace=ctx.settings.log_level == "debug"
                ),
                stage="normalizer",
            ),
            ctx.consumer(
                stream=ctx.keys.raw,
                group=keys.GROUP_ARCHIVE,
                handler=store.make_archive_handler(counting, max_bytes),
                stage="store",
            ),
            ctx.consumer(
                stream=ctx.keys.events,
                group=keys.GROUP_STORAGE,
                handler=store.make_events_handler(counting),
                stage="store",
            ),
        )
        # The bus is this process's and sized for a chunk: nothing to wait for.
        publisher = FramePublisher(ctx.bus, ctx.keys.raw, paced=False)
        self.session = Session(publisher, "import", "mock", str(uuid.uuid4()))

    async def start(self) -> None:
        for consumer in self.consumers:
            await consumer.setup()
        await asyncio.to_thread(decode.prepare)  # the protobuf descriptors, as normalize does

    async def feed(self, lines: list[Line]) -> None:
        """Publish ``lines`` with the mock, faithful; return when all is stored."""
        provider = MockProvider(lines, loop=False, restamp=False)
        try:
            await provider.run(self.session.unique_id, self.session, asyncio.Event())
        except ConnectionEnded as ended:
            if ended.outcome is not Outcome.FINISHED:
                raise
        for consumer in self.consumers:  # in pipeline order: the events follow their frames
            await consumer.run_until_idle()
        self.report.dead_lettered = sum(c.stats.dead_lettered for c in self.consumers)
        if self.letters is not None:  # hand this chunk's letters over to Redis's ttlc:dlq
            dlq = self.ctx.keys.dlq
            if letters := await self.ctx.bus.range(dlq):
                await self.letters.publish_many(dlq, [e.fields or {} for e in letters])
                await self.ctx.bus.delete(dlq, [e.id for e in letters])


async def import_command(settings: Settings, source: IO[bytes], name: str) -> ImportReport:
    """Re-process the raw.v1 NDJSON of ``source`` into the configured database."""
    console = _stderr()
    report = ImportReport()
    own = database_only(settings)
    letters: Bus | None = make_bus(settings) if settings.bus.redis_url else None
    try:
        if letters is not None:
            await letters.ping()
        async with open_context(own, need_db=True) as db:
            assert db.engine is not None
            url = redact_url(normalize_database_url(settings.db.url, settings.data_path))
            console.print(f"importing {name} into {url}", markup=False, soft_wrap=True)
            bus = make_bus(own)
            keys = Keys(settings.bus.prefix)
            if letters is None:
                keep_dead_letters(bus, keys, db.engine)
            ctx = Context(settings=own, bus=bus, keys=keys, engine=db.engine)
            pipeline = _Pipeline(ctx, letters, report)
            await pipeline.start()
            with (
                _import_progress(console, source) as advance,
                tempfile.TemporaryDirectory(prefix="ttlp-import-") as directory,
            ):
                for chunk in read_chunks(
                    source, Path(directory), name, size=CHUNK_LINES, read=advance
                ):
                    lines = await asyncio.to_thread(load_fixture, chunk.path)
                    _count_lines(report, name, chunk, lines)
                    await pipeline.feed(lines)
            await bus.close()
    finally:
        if letters is not None:
            await letters.close()
    for problem in report.problems:
        console.print(problem, markup=False, soft_wrap=True)
    if report.invalid > len(report.problems):
        console.print(
            f"… and {report.invalid - len(report.problems)} more lines that are not raw.v1"
        )
    return report


def _count_lines(report: ImportReport, name: str, chunk: Chunk, lines: list[Line]) -> None:
    assert len(lines) == len(chunk.numbers)  # one mock line per line written
    report.lines += len(lines)
    for index, line in enumerate(lines):
        if line.frame is not None:
            report.frames += 1
        elif line.invalid is not None:
            report.invalid += 1
            if len(report.problems) < MAX_REPORTED:
                why = line.invalid.removeprefix(f"{chunk.path}:{index + 1}: ")
                report.problems.append(f"{name}:{chunk.numbers[index]}: {why}")


@contextlib.contextmanager
def _import_progress(console: Console, source: IO[bytes]) -> Iterator[Callable[[int], None]]:
    """A progress bar over the bytes of the input (its size known when it is a file)."""
    total: int | None = None
    with contextlib.suppress(OSError, ValueError):
        if source.seekable():
            start = source.tell()
            total = source.seek(0, 2) - start
            source.seek(start)
    with Progress(
        TextColumn("[bold]import[/]"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("import", total=total)
        yield lambda n: progress.advance(task, n)


def print_report(report: ImportReport) -> None:
    for text in report.summary():
        click.echo(text)
