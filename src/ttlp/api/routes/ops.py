"""Operations: ``GET /health`` (200 / 503 naming the failing part) and ``GET /metrics``."""

from __future__ import annotations

import asyncio
import time
from typing import Final

import msgspec
from litestar import Response, get
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from ttlp.api.state import Api
from ttlp.db.engine import is_sqlite

CHECK_TIMEOUT_S: Final = 2.0


class Health(msgspec.Struct):
    status: str
    """ok, or degraded when a dependency fails."""
    redis: str
    """ok | down: <reason> | embedded (the in-process bus)."""
    postgres: str
    """ok | down: <reason> | embedded (SQLite)."""
    uptime: float
    """Seconds since the api started."""


async def _check(probe: object) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_S)  # type: ignore[arg-type]
    except TimeoutError:
        return f"down: no answer within {CHECK_TIMEOUT_S:g} s"
    except Exception as exc:
        return f"down: {type(exc).__name__}"
    return "ok"


async def _db_ping(api: Api) -> None:
    async with api.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


@get(
    "/health",
    summary="Liveness of the api and its dependencies",
    exclude_from_auth=True,
    responses={
        HTTP_503_SERVICE_UNAVAILABLE: ResponseSpec(
            data_container=Health, description="A dependency is down (named in the body)"
        )
    },
)
async def health(api: Api) -> Response[Health]:
    settings = api.settings
    redis_status, db_status = await asyncio.gather(
        _check(api.bus.ping()) if settings.bus.redis_url else _ok("embedded"),
        _check(_db_ping(api)),
    )
    if is_sqlite(api.engine):  # the engine says, whatever DATABASE_URL was
        db_status = "embedded" if db_status == "ok" else db_status
    failing = [s for s in (redis_status, db_status) if s.startswith("down")]
    body = Health(
        status="degraded" if failing else "ok",
        redis=redis_status,
        postgres=db_status,
        uptime=round(time.monotonic() - api.started, 3),
    )
    return Response(body, status_code=HTTP_503_SERVICE_UNAVAILABLE if failing else HTTP_200_OK)


async def _ok(value: str) -> str:
    return value


@get("/metrics", summary="Prometheus metrics", exclude_from_auth=True, include_in_schema=False)
async def metrics(api: Api) -> Response[bytes]:
    return Response(
        await api.metrics.render(api.bus, api.keys, api.engine, api.feed.stats),
        media_type=CONTENT_TYPE_LATEST,
    )


routes = [health, metrics]
