"""Database fixtures: both backends, migrated once per test module, emptied before each test.

``db_engine`` is parametrized over SQLite (a file under tmp_path) and PostgreSQL (a database of
its own from ``pg_database_factory``), so a storage behaviour test runs once per backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

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
