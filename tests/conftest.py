"""Shared test fixtures: the real services and the rule that CI never skips them.

Integration tests use real Redis and PostgreSQL at ``TTLP_TEST_REDIS_URL`` /
``TTLP_TEST_DATABASE_URL`` (default loopback). Where a server is absent the tests that need it
are skipped with a reason, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
REDIS_URL = os.environ.get("TTLP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN_URL = os.environ.get(
    "TTLP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
T = TypeVar("T")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _unavailable(what: str, why: str) -> None:
    message = f"{what} is not reachable ({why})"
    if IN_CI:
        pytest.fail(f"{message}; under CI=true integration tests must run, not skip")
    pytest.skip(message)


async def _redis_ping(url: str) -> str | None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        await asyncio.wait_for(client.ping(), 2)
        return None
    except Exception as exc:
        return repr(exc)
    finally:
        await client.aclose()


async def _pg_ping(url: str) -> str | None:
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(url), 3)
    except Exception as exc:
        return repr(exc)
    await conn.close()
    return None


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real Redis (skips, or fails under CI, when it is not there)."""
    why = run_sync(_redis_ping(REDIS_URL))
    if why:
        _unavailable(f"Redis at {REDIS_URL}", why)
    return REDIS_URL


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of a PostgreSQL database we may create other databases from."""
    why = run_sync(_pg_ping(PG_ADMIN_URL))
    if why:
        _unavailable(f"PostgreSQL at {PG_ADMIN_URL}", why)
    return PG_ADMIN_URL


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_database_factory(pg_admin_url: str) -> Iterator[object]:
    """Create empty PostgreSQL databases on demand; drop them all at the end of the session."""
    import asyncpg

    created: list[str] = []

    async def _create() -> str:
        name = f"ttlp_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(pg_admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return _with_database(pg_admin_url, name)

    def create() -> str:
        return run_sync(_create())

    yield create

    async def _drop_all() -> None:
        conn = await asyncpg.connect(pg_admin_url)
        try:
            for name in created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    run_sync(_drop_all())


@pytest.fixture
def key_prefix() -> str:
    """A bus key/group prefix of this test's own, so tests never share streams."""
    return f"test-{uuid.uuid4().hex[:10]}-"


@pytest.fixture
async def redis_cleanup(redis_url: str, key_prefix: str) -> AsyncIterator[None]:
    """Delete every key this test created under its prefix."""
    yield
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{key_prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main
    thread for the rest of the session, where pytest-asyncio could not start its own."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
