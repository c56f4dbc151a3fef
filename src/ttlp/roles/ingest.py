"""ingest: a provider (direct: TikTokLive; euler: Euler Stream; mock: an NDJSON file) and
replay requests from ``ttlc:control`` → ``ttlc:raw``. One supervisor per streamer; a warning
while the mock stands in for an unconfigured streamer on a deployment."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import msgspec
from loguru import logger

from ttlp import log
from ttlp.bus import keys
from ttlp.bus.base import Entry
from ttlp.bus.consumer import BatchHandler, Failure
from ttlp.errors import TtlpError
from ttlp.runtime import Context
from ttlp.tiktok.providers import fallback, make_provider
from ttlp.tiktok.providers.base import Provider
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.replay import replay_session
from ttlp.tiktok.status import Sink, StreamerStatus, encode, report_field
from ttlp.tiktok.supervisor import StreamerSupervisor, SupervisorSettings


class ReplayRequest(msgspec.Struct, frozen=True, rename="camel"):
    """A ``ttlc:control`` entry asking the ingest role to replay a session."""

    command: str
    session_id: str
    new_session_id: str | None = None
    speed: float | None = None


def make_control_handler(ctx: Context, stop: asyncio.Event) -> BatchHandler:
    async def handle(entries: list[Entry]) -> Sequence[Failure]:
        failures: list[Failure] = []
        for entry in entries:
            command = (entry.fields or {}).get("command")
            if not command:
                failures.append(Failure(entry, "VALIDATION_ERROR", "control entry has no command"))
                continue
            if command != "replay":
                continue  # another role's command (e.g. rules-changed): every role reads all
            try:
                request = msgspec.convert(entry.fields or {}, ReplayRequest, strict=False)
            except msgspec.ValidationError as exc:
                failures.append(Failure(entry, "VALIDATION_ERROR", f"bad control entry: {exc}"))
                continue
            publisher = ctx.paced_publisher()
            try:
                await replay_session(
                    ctx.store,
                    publisher,
                    request.session_id,
                    speed=request.speed,
                    session_id=request.new_session_id,
                    stop=stop,
                )
            except TtlpError as exc:
                failures.append(
                    Failure(entry, "REPLAY_FAILED", str(exc), session_id=request.session_id)
                )
        return failures

    return handle


def publisher_for(ctx: Context, provider: Provider) -> FramePublisher:
    """The mock's publisher waits for the pipeline's consumers; live traffic can't wait."""
    buffer = ctx.settings.ingest.buffer_frames
    if provider.name == "mock":
        return ctx.paced_publisher(buffer_frames=buffer)
    return FramePublisher(ctx.bus, ctx.keys.raw, paced=False, buffer_frames=buffer)


def supervisors(
    ctx: Context, provider: Provider, publisher: FramePublisher
) -> list[StreamerSupervisor]:
    """One supervisor per streamer; on a shared bus each holds the streamer's lease to connect.

    The mock is one source, not a streamer: one supervisor, and no lease.
    """
    ingest = ctx.settings.ingest
    mock = provider.name == "mock"
    owner = f"{ctx.settings.bus.consumer_name}:{uuid.uuid4().hex[:8]}"
    handles = ("mock",) if mock else ingest.unique_ids
    return [
        StreamerSupervisor(
            provider,
            handle,
            publisher,
            SupervisorSettings(
                max_attempts=ingest.reconnect_max_attempts,
                poll_interval_s=ingest.poll_interval_s,
                silence_s=ingest.silence_s,
                streak_timeout_s=ingest.streak_timeout_s,
            ),
            lease=None if mock else ctx.bus.lease(ctx.keys.lease(handle), owner, ingest.lease_ms),
            status_sink=status_sink(ctx),
            replica=ctx.settings.bus.consumer_name,
        )
        for handle in handles
    ]


def status_sink(ctx: Context) -> Sink:
    """Reports go to the bus, one field per (streamer, replica): ``ttlp.tiktok.status``."""

    async def sink(status: StreamerStatus) -> None:
        await ctx.bus.set_status(ctx.keys.ingest_status, report_field(status), encode(status))

    return sink


async def run(ctx: Context, stop: asyncio.Event) -> None:
    control = ctx.consumer(
        stream=ctx.keys.control,
        group=keys.GROUP_INGEST,
        handler=make_control_handler(ctx, stop),
        stage="ingest",
    )
    publisher: FramePublisher | None = None
    async with asyncio.TaskGroup() as group:
        group.create_task(control.run(stop))
        if ctx.settings.replay_session:
            group.create_task(_replay_once(ctx, ctx.settings.replay_session, stop))
        else:
            provider = make_provider(ctx.settings)
            if provider.name == "direct":
                _adopt_tiktoklive_logger()
            publisher = publisher_for(ctx, provider)
            for supervisor in supervisors(ctx, provider, publisher):
                group.create_task(supervisor.run(stop))
            # No streamer configured: the mock's events are fake, and a deployment must say so.
            group.create_task(fallback.announce(ctx.settings, stop))
    if publisher is not None and (left := await publisher.drain(ctx.settings.grace_period_s)):
        logger.bind(role="ingest").error(
            "stopping with frames the bus never took (it was unreachable)", frames=left
        )


def _adopt_tiktoklive_logger() -> None:
    """TikTokLive logs to stderr on its own; route it through ttlp's JSON logs and redaction."""
    from TikTokLive.client.logger import TikTokLiveLogHandler

    log.adopt(TikTokLiveLogHandler.get_logger())


async def _replay_once(ctx: Context, session_id: str, stop: asyncio.Event) -> None:
    publisher = ctx.paced_publisher()
    result = await replay_session(ctx.store, publisher, session_id, stop=stop)
    logger.bind(role="ingest", session_id=result.session_id).info(
        "replay done", frames=result.frames
    )
