"""The first-run setup link (``ttlp.api.setup``): where ``ttlp run`` says the UI is, and the
link's life: made only without accounts, accepted while it lives (here or on another replica
sharing the store), dead once closed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar.stores.memory import MemoryStore

from ttlp.api.setup import SETUP_PATH, SetupLink, reachable_url


class FakeAccounts:
    def __init__(self, count: int = 0) -> None:
        self.n = count

    async def count(self) -> int:
        return self.n


def link(accounts: FakeAccounts, shared: MemoryStore | None = None, **kw: Any) -> SetupLink:
    return SetupLink(accounts, shared, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:3000/"),
        ("", "http://127.0.0.1:3000/"),
        ("::", "http://[::1]:3000/"),
        ("127.0.0.1", "http://127.0.0.1:3000/"),
        ("::1", "http://[::1]:3000/"),
        ("10.1.2.3", "http://10.1.2.3:3000/"),
        ("ttlp.lan", "http://ttlp.lan:3000/"),
    ],
)
def test_the_ui_url_is_one_a_browser_on_this_machine_reaches(host: str, url: str) -> None:
    assert reachable_url(host, 3000) == url


async def test_a_link_is_made_only_while_no_account_exists() -> None:
    assert await link(FakeAccounts(count=1)).open() is None
    fresh = link(FakeAccounts())
    token = await fresh.open()
    assert token is not None
    assert len(token) >= 43  # 32 random bytes
    assert fresh.path == SETUP_PATH + token
    assert await link(FakeAccounts()).open() != token  # a new one per process


async def test_only_the_live_token_is_accepted() -> None:
    setup = link(FakeAccounts())
    token = await setup.open()
    assert token is not None
    assert await setup.accepts(token)
    assert not await setup.accepts(token[:-1])
    assert not await setup.accepts("")
    await setup.close()
    assert not await setup.accepts(token)
    assert setup.path is None


async def test_replicas_sharing_a_store_accept_each_others_links_while_they_run() -> None:
    shared = MemoryStore()
    here, there = link(FakeAccounts(), shared), link(FakeAccounts(), shared)
    theirs = await there.open()
    await here.open()
    assert theirs is not None
    assert await here.accepts(theirs)
    await there.close()  # that replica stopped
    assert not await here.accepts(theirs)


async def test_keep_ends_the_link_once_an_account_exists() -> None:
    accounts = FakeAccounts()
    shared = MemoryStore()
    setup = link(accounts, shared, ttl_s=0.03)
    token = await setup.open()
    assert token is not None
    stop = asyncio.Event()
    keeping = asyncio.create_task(setup.keep(stop))
    await asyncio.sleep(0.05)
    assert await link(FakeAccounts(), shared).accepts(token)  # renewed past its first TTL
    accounts.n = 1  # made on another replica
    await asyncio.wait_for(keeping, 1)
    assert setup.token is None
    assert not await link(FakeAccounts(), shared).accepts(token)
