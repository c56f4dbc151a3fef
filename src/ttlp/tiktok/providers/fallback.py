"""The mock standing in for TikTok because no streamer is configured: say so, where it matters.

With nothing configured, ``ttlp run`` feeds the pipeline from the mock provider: the embedded
demo, and one info line says so. The same fallback on a production-like deployment (Redis or
PostgreSQL configured, as in every Docker Compose profile) means that ``TIKTOK_UNIQUE_ID`` was
forgotten and that every event stored is fake: the ingest then logs a WARNING when it starts and
again every ``REPEAT_S`` while it runs (log collectors and ``docker compose logs --since`` that
missed the first one still see it), and ``ttlp status`` prints the same line. Choosing the mock
on purpose (``INGEST_PROVIDER=mock``, ``--provider mock``: tests, demos, load) stays quiet.
"""

from __future__ import annotations

import asyncio
from typing import Final

from loguru import logger

from ttlp.aio import sleep_or_stop
from ttlp.settings import Settings

REPEAT_S: Final = 600.0
"""How often the warning is repeated: often enough to be in any recent page of logs, rarely
enough not to drown them."""

WARNING: Final = (
    "NO STREAMER CONFIGURED: the ingest runs the MOCK provider and every event it produces is "
    "FAKE (a bundled fixture), because TIKTOK_UNIQUE_ID is empty. Set TIKTOK_UNIQUE_ID to the "
    "streamer handle(s) to watch, comma-separated (Docker Compose: in .env, then "
    "`docker compose up -d`), or set INGEST_PROVIDER=mock to run the mock on purpose"
)
NOTICE: Final = (
    "no TIKTOK_UNIQUE_ID: the ingest runs the mock provider (fake events from a fixture); set "
    "TIKTOK_UNIQUE_ID to watch a streamer"
)


def production_like(settings: Settings) -> bool:
    """Redis or a non-SQLite database is configured: a deployment, not the embedded demo."""
    database = (settings.db.url or "").strip().lower()
    return settings.bus.redis_url is not None or bool(
        database and not database.startswith("sqlite")
    )


def fake_events_warning(settings: Settings) -> str | None:
    """The warning this configuration deserves (None: it names a provider or a streamer, or it
    is the embedded demo)."""
    if settings.ingest.provider_fallback and production_like(settings):
        return WARNING
    return None


async def announce(settings: Settings, stop: asyncio.Event, *, every: float = REPEAT_S) -> None:
    """Log that the mock stands in for TikTok: once (info) in the embedded demo; on a
    production-like deployment a WARNING now and every ``every`` seconds until ``stop``."""
    if not settings.ingest.provider_fallback:
        return
    log = logger.bind(role="ingest", provider="mock")
    warning = fake_events_warning(settings)
    if warning is None:
        log.info(NOTICE)
        return
    while not stop.is_set():
        log.warning(warning, repeat_s=every)
        await sleep_or_stop(stop, every)
