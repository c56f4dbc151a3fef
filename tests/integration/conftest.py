"""Database fixtures: both backends, migrated once per test module, emptied before each test.

``db_engine`` is parametrized over SQLite (a file under tmp_path) and PostgreSQL (a database of
its own from ``pg_database_factory``), so a storage behaviour test runs once per backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.api_support import ApiHarness, api_settings, harness
from ttlp.bus.base import Bus
from ttlp.bus.keys import Keys
from ttlp.db.engine import create_engine, normalize_database_url
from ttlp.db.migrate import upgrade
from ttlp.db.tables import metadata

BACKENDS = ("sqlite", "postgresql")


def sqlite_url(directory: Path) -> str:
    return normalize_database_url(f"sqlite:///{directory / 'ttlp.db'}", directory)


@pytest.fixture(scope="module")
def sqlite_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file of this test module's own."""
    url = sqlite_url(tmp_path_factory.mktemp("db"))
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def postgresql_database_url(pg_database_factory: Callable[[], str]) -> str:
    """A migrated PostgreSQL database of this test module's own."""
    url = normalize_database_url(pg_database_factory(), Path.cwd())
    upgrade(url)
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db_engine(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    """An engine on a migrated database with every table empty."""
    url = request.getfixturevalue(f"{backend}_database_url")
    engine = create_engine(url)
    names = [table.name for table in metadata.sorted_tables]
    async with engine.begin() as conn:
        if backend == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY"))
        else:
            for name in names:
                await conn.execute(text(f"DELETE FROM {name}"))
            await conn.execute(text("DELETE FROM sqlite_sequence"))
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def backend_redis_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """Redis for the PostgreSQL backend (resolved outside the event loop), None for SQLite."""
    if backend != "postgresql":
        return None
    request.getfixturevalue("redis_cleanup")
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
async def api(
    backend_redis_url: str | None,
    db_engine: AsyncEngine,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    key_prefix: str,
    api_env: dict[str, object],
) -> AsyncIterator[ApiHarness]:
    """The api app on both backends: in-process bus + SQLite, Redis + PostgreSQL.

    A test can pass API settings with ``@pytest.mark.parametrize("api_env", [{...}])``
    (indirect) or by defining an ``api_env`` fixture of its own.
    """
    settings = api_settings(tmp_path, **api_env)
    bus: Bus
    if backend_redis_url is not None:
        from ttlp.bus.redis import RedisBus

        redis_url = backend_redis_url
        settings = msgspec.structs.replace(
            settings, bus=msgspec.structs.replace(settings.bus, redis_url=redis_url)
        )
        bus = RedisBus(redis_url, maxlen=settings.bus.stream_maxlen)
    else:
        from ttlp.bus.memory import MemoryBus

        bus = MemoryBus(maxlen=settings.bus.stream_maxlen)
    try:
        async for h in harness(settings, bus, db_engine, Keys(key_prefix)):
            yield h
    finally:
        await bus.close()


@pytest.fixture
def api_env() -> dict[str, object]:
    """Extra API settings for the ``api`` fixture (override in a test module)."""
    return {}
