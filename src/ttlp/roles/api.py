"""api: the database and the tail of ``ttlc:events`` → HTTP (REST, SSE, WebSocket), served by
uvicorn on ``API_HOST:API_PORT`` until the stop event."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from loguru import logger

from ttlp.api.app import create_app
from ttlp.runtime import Context


class ApiServer(uvicorn.Server):
    """uvicorn without its signal handlers: ttlp's runtime owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(server: uvicorn.Server, where: str) -> None:
    try:
        await server.serve()
    except SystemExit:  # uvicorn exits when it cannot bind
        raise OSError(f"the api could not listen on {where} (in use?)") from None


async def run(ctx: Context, stop: asyncio.Event) -> None:
    settings = ctx.settings.api
    feeds_stop = asyncio.Event()
    app = create_app(ctx.settings, ctx.bus, ctx.keys, ctx.store.engine, feeds_stop)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=max(1, int(ctx.settings.grace_period_s)),
        proxy_headers=False,
    )
    server = ApiServer(config)
    where = f"{settings.host}:{settings.port}"
    serving = asyncio.create_task(_serve(server, where), name="api-server")
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if serving in done:
        stopping.cancel()
        serving.result()
        raise OSError(f"the api server on {where} stopped on its own")
    feeds_stop.set()
    app.state.api.feed.close()
    server.should_exit = True
    await serving
    logger.bind(role="api").info("api stopped")
