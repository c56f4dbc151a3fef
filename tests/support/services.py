"""The real services: Redis and PostgreSQL, and the rule that CI never skips them.

Integration tests use real Redis and PostgreSQL at ``TTLP_TEST_REDIS_URL`` /
``TTLP_TEST_DATABASE_URL`` (default loopback). Where a server is absent the tests that need it
are skipped with a reason, except under ``CI=true``, where that is a failure. Each test has a
key prefix of its own (``key_prefix``) and its keys are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, NoReturn, TypeVar

import pytest
import redis.asyncio as aioredis

REDIS_URL = os.environ.get("TTLP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN_URL = os.environ.get(
    "TTLP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def unavailable(what: str, why: str) -> NoReturn:
    """Skip the test because ``what`` is missing; under ``CI=true`` fail it instead."""
    message = f"{what} is not reachable ({why})"
    if IN_CI:
        pytest.fail(f"{message}; under CI=true integration tests must run, not skip")
    pytest.skip(message)


def new_key_prefix() -> str:
    """A bus key/group prefix nobody else uses."""
    return f"test-{uuid.uuid4().hex[:10]}-"


async def delete_keys(client: aioredis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix``."""
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)


async def delete_keys_at(redis_url: str, prefix: str) -> None:
    """``delete_keys`` with a client of its own."""
    client = aioredis.from_url(redis_url)
    try:
        await delete_keys(client, prefix)
    finally:
        await client.aclose()


async def _redis_ping(url: str) -> str | None:
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


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real Redis (skips, or fails under CI, when it is not there)."""
    why = run_sync(_redis_ping(REDIS_URL))
    if why:
        unavailable(f"Redis at {REDIS_URL}", why)
    return REDIS_URL


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of a PostgreSQL database we may create other databases from."""
    why = run_sync(_pg_ping(PG_ADMIN_URL))
    if why:
        unavailable(f"PostgreSQL at {PG_ADMIN_URL}", why)
    return PG_ADMIN_URL


@pytest.fixture(scope="session")
def pg_database_factory(pg_admin_url: str) -> Iterator[Callable[[], str]]:
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
    return new_key_prefix()


@pytest.fixture
async def redis_cleanup(redis_url: str, key_prefix: str) -> AsyncIterator[None]:
    """Delete every key this test created under its prefix."""
    yield
    await delete_keys_at(redis_url, key_prefix)


@pytest.fixture
async def redis(redis_url: str, key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    """A Redis client (strings, not bytes); this test's keys are deleted afterwards."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        yield client
        await delete_keys(client, key_prefix)
    finally:
        await client.aclose()
