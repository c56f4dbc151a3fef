"""ingest: a provider (direct: TikTokLive; euler: Euler Stream; mock: an NDJSON file) and
replay requests from ``ttlc:control`` → ``ttlc:raw``. One supervisor per streamer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path

import msgspec
from loguru import logger

from ttlp import log
from ttlp.bus import keys
from ttlp.bus.base import Entry
from ttlp.bus.consumer import BatchHandler, Failure
from ttlp.bus.redis import RedisBus
from ttlp.errors import ConfigError, TtlpError
from ttlp.runtime import Context
from ttlp.settings import Settings
from ttlp.tiktok.lease import Lease
from ttlp.tiktok.providers.base import Provider
from ttlp.tiktok.providers.mock import MockProvider, bundled_fixture, load_fixture
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.replay import replay_session
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
            publisher = FramePublisher(
                ctx.bus, ctx.keys.raw, paced=True, downstream=(ctx.keys.events,)
            )
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


def check_settings(settings: Settings) -> None:
    """Refuse, before anything starts, an ingest that cannot work as configured."""
    ingest = settings.ingest
    if ingest.provider == "mock":
        return
    if not ingest.unique_ids:
        raise ConfigError(
            f"INGEST_PROVIDER={ingest.provider} needs the streamer(s) to watch: set "
            "TIKTOK_UNIQUE_ID (comma-separated handles) or pass --unique-id"
        )
    make_provider(settings)  # e.g. euler without EULER_API_KEY fails here


def make_provider(settings: Settings) -> Provider:
    """The TikTok provider INGEST_PROVIDER names (one instance serves every streamer)."""
    ingest = settings.ingest
    if ingest.provider == "euler":
        from ttlp.tiktok.providers.euler import EulerProvider

        return EulerProvider.from_settings(ingest)
    from ttlp.tiktok.providers.direct import DirectProvider

    return DirectProvider(ingest)


def supervisors(ctx: Context, provider: Provider) -> list[StreamerSupervisor]:
    """One supervisor per streamer; with Redis each holds the streamer's lease to connect."""
    ingest = ctx.settings.ingest
    publisher = FramePublisher(ctx.bus, ctx.keys.raw, paced=False)  # live traffic can't wait
    client = ctx.bus.client if isinstance(ctx.bus, RedisBus) else None
    owner = f"{ctx.settings.bus.consumer_name}:{uuid.uuid4().hex[:8]}"
    return [
        StreamerSupervisor(
            provider,
            handle,
            publisher,
            SupervisorSettings(
                max_attempts=ingest.reconnect_max_attempts,
                poll_interval_s=ingest.poll_interval_s,
            ),
            lease=Lease(client, ctx.keys.lease(handle), owner, ingest.lease_ms)
            if client is not None
            else None,
        )
        for handle in ingest.unique_ids
    ]


async def run(ctx: Context, stop: asyncio.Event) -> None:
    settings = ctx.settings.ingest
    control = ctx.consumer(
        stream=ctx.keys.control,
        group=keys.GROUP_INGEST,
        handler=make_control_handler(ctx, stop),
        stage="ingest",
    )
    async with asyncio.TaskGroup() as group:
        group.create_task(control.run(stop))
        if ctx.settings.replay_session:
            group.create_task(_replay_once(ctx, ctx.settings.replay_session, stop))
        elif settings.provider == "mock":
            fixture = Path(settings.mock_fixture) if settings.mock_fixture else bundled_fixture()
            provider = MockProvider(
                load_fixture(fixture), rate=settings.mock_rate, loop=settings.mock_loop
            )
            publisher = FramePublisher(
                ctx.bus, ctx.keys.raw, paced=True, downstream=(ctx.keys.events,)
            )
            group.create_task(provider.run(publisher, stop))
        else:
            live = make_provider(ctx.settings)
            if settings.provider == "direct":
                _adopt_tiktoklive_logger()
            for supervisor in supervisors(ctx, live):
                group.create_task(supervisor.run(stop))


def _adopt_tiktoklive_logger() -> None:
    """TikTokLive logs to stderr on its own; route it through ttlp's JSON logs and redaction."""
    from TikTokLive.client.logger import TikTokLiveLogHandler

    log.adopt(TikTokLiveLogHandler.get_logger())


async def _replay_once(ctx: Context, session_id: str, stop: asyncio.Event) -> None:
    publisher = FramePublisher(ctx.bus, ctx.keys.raw, paced=True, downstream=(ctx.keys.events,))
    result = await replay_session(ctx.store, publisher, session_id, stop=stop)
    logger.bind(role="ingest", session_id=result.session_id).info(
        "replay done", frames=result.frames
    )
