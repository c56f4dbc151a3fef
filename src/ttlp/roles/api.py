"""api: the database and the tail of ``ttlc:events`` → HTTP (REST, SSE, WebSocket), served by
uvicorn on ``API_HOST:API_PORT`` until the stop event. Once it listens it says where the web UI
is and, on a database without accounts, the first-run setup link (``ttlp.api.setup``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from loguru import logger

from ttlp.api.app import create_app
from ttlp.api.setup import SetupLink, reachable_url
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


STARTED_POLL_S = 0.05

log = logger.bind(role="api")


async def _announce(server: uvicorn.Server, url: str, setup: SetupLink) -> None:
    """Once the server listens: where the UI is (info) and the setup link (warning: there is
    no account, and nobody can log in until the link is used)."""
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
        await asyncio.sleep(STARTED_POLL_S)
    log.info("web UI at {url}", url=url)
    if setup.path is not None:
        log.warning(
            "no account yet: open {setup_url} to create the owner account "
            "(the link works once, until ttlp restarts)",
            setup_url=url.rstrip("/") + setup.path,
        )


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
    announcing = asyncio.create_task(
        _announce(server, reachable_url(settings.host, settings.port), app.state.api.setup)
    )
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    announcing.cancel()
    if serving in done:
        stopping.cancel()
        serving.result()
        raise OSError(f"the api server on {where} stopped on its own")
    feeds_stop.set()
    app.state.api.feed.close()
    server.should_exit = True
    await serving
    log.info("api stopped")
