"""ingest: a provider (mock now; direct and euler with the TikTok connectivity work) and replay
requests from ``ttlc:control`` → ``ttlc:raw``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import msgspec
from loguru import logger

from ttlp.bus import keys
from ttlp.bus.base import Entry
from ttlp.bus.consumer import BatchHandler, Failure
from ttlp.errors import TtlpError
from ttlp.runtime import Context
from ttlp.tiktok.providers.mock import MockProvider, bundled_fixture, load_fixture
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.replay import replay_session


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
            try:
                request = msgspec.convert(entry.fields or {}, ReplayRequest, strict=False)
            except msgspec.ValidationError as exc:
                failures.append(Failure(entry, "VALIDATION_ERROR", f"bad control entry: {exc}"))
                continue
            if request.command != "replay":
                failures.append(
                    Failure(entry, "VALIDATION_ERROR", f"unknown command {request.command!r}")
                )
                continue
            publisher = FramePublisher(ctx.bus, ctx.keys.raw, paced=True)
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
        else:  # run_roles refuses the providers this version does not have
            fixture = Path(settings.mock_fixture) if settings.mock_fixture else bundled_fixture()
            provider = MockProvider(
                load_fixture(fixture), rate=settings.mock_rate, loop=settings.mock_loop
            )
            publisher = FramePublisher(ctx.bus, ctx.keys.raw, paced=True)
            group.create_task(provider.run(publisher, stop))


async def _replay_once(ctx: Context, session_id: str, stop: asyncio.Event) -> None:
    publisher = FramePublisher(ctx.bus, ctx.keys.raw, paced=True)
    result = await replay_session(ctx.store, publisher, session_id, stop=stop)
    logger.bind(role="ingest", session_id=result.session_id).info(
        "replay done", frames=result.frames
    )
