"""Databases for the tests: both backends, migrated once per test module, emptied per test.

``db_engine`` is parametrized over SQLite (a file under tmp_path) and PostgreSQL (a database of
its own from ``pg_database_factory``), so a storage behaviour test runs once per backend.
``database_url``/``engine`` are a fresh, empty PostgreSQL database for ``ttlp`` subprocesses
(which migrate it themselves); ``migrated_database_url`` is one already migrated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.db.engine import create_engine, dispose_engine, normalize_database_url
from ttlp.db.migrate import upgrade
from ttlp.db.tables import metadata

BACKENDS = ("sqlite", "postgresql")


def sqlite_url(directory: Path) -> str:
    """The URL of ``ttlp.db`` in ``directory``, as ttlp would spell it."""
    return normalize_database_url(f"sqlite:///{directory / 'ttlp.db'}", directory)


def migrated_postgresql_url(pg_database_factory: Callable[[], str]) -> str:
    """A new PostgreSQL database, migrated to the head revision."""
    url = normalize_database_url(pg_database_factory(), Path.cwd())
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def sqlite_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file of this test module's own."""
    url = sqlite_url(tmp_path_factory.mktemp("db"))
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def postgresql_database_url(pg_database_factory: Callable[[], str]) -> str:
    """A migrated PostgreSQL database of this test module's own."""
    return migrated_postgresql_url(pg_database_factory)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` (with the in-process bus) or ``postgresql`` (with Redis)."""
    return str(request.param)


@pytest.fixture
async def db_engine(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    """An engine on a migrated database of ``backend`` with every table empty."""
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
        await dispose_engine(engine)


@pytest.fixture
def database_url(pg_database_factory: Callable[[], str]) -> str:
    """A fresh, empty PostgreSQL database of this test's own (``ttlp migrate`` fills it)."""
    return pg_database_factory()


@pytest.fixture
def migrated_database_url(pg_database_factory: Callable[[], str]) -> str:
    """A fresh, migrated PostgreSQL database of this test's own."""
    return migrated_postgresql_url(pg_database_factory)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on ``database_url``."""
    eng = create_engine(normalize_database_url(database_url, Path(".")))
    try:
        yield eng
    finally:
        await dispose_engine(eng)
