"""The pipeline in the test's process: normalize and store running as ``ttlp run`` runs them
(one supervisor, their own consume loops) on a real bus and database, until the block ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from tests.support.wait import wait_for
from ttlp.roles import normalize, store
from ttlp.runtime import Context, RoleFn, is_drained, open_context, supervise
from ttlp.settings import Settings


@contextlib.asynccontextmanager
async def running_pipeline(settings: Settings) -> AsyncIterator[Context]:
    """normalize + store on ``settings``' bus and database (the in-process bus when it names
    no Redis); they stop, cleanly, when the block ends."""
    async with open_context(settings, need_db=True) as ctx:
        stop = asyncio.Event()
        roles: dict[str, RoleFn] = {"normalize": normalize.run, "store": store.run}
        task = asyncio.create_task(
            supervise(ctx, roles, grace_s=5, stop=stop, install_signals=False)
        )
        try:
            yield ctx
        finally:
            stop.set()
            assert await task == 0


async def settled(
    ctx: Context,
    done: Callable[[], Awaitable[bool]],
    timeout: float = 30,  # noqa: ASYNC109 - a polling deadline, not a cancel scope
) -> None:
    """Wait until ``done()`` and every pipeline group has read and acked everything."""

    async def check() -> bool:
        return bool(await done()) and await is_drained(ctx)

    await wait_for(check, timeout=timeout, poll=0.05, what="the pipeline settled")
