"""The first-run setup link: how the first account (the owner) is made without a shell.

When the api role starts on a database without any account, it makes a random token and
``ttlp run`` prints ``http://HOST:PORT/#/setup/TOKEN``. The link opens the UI's setup page,
where the owner picks a name and a password (``POST /auth/setup``) and becomes a STREAMER of
scope ``*``, logged in. After that the link is dead: setup refuses once any account exists.

- The token lives in the memory of the process that printed it: never in a file or the
  database. It ends when it is used (an account exists) or when the process stops; a restart
  prints a new one while there is still no account.
- A presented token is compared with this process's own in constant time (``hmac``).
- Several api replicas (Redis): each replica makes and prints a token of its own and registers
  the token's SHA-256 in Redis (``{prefix}ttlp:setup:<sha256>``) for ``SETUP_TTL_S``, renewed
  while it runs and deleted when it stops, so a link printed by any replica works on every
  replica behind a load balancer and dies with its replica. Redis holds the hash only (as the
  database does for invites), so a Redis dump is no way in, and looking a hash up compares no
  secret. Who wins is the database's decision: the owner is made in an exclusive transaction
  that refuses when any account exists, so two setups at once, on any replicas, make exactly
  one account.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import secrets
from datetime import timedelta
from typing import Final

from litestar.stores.base import Store
from loguru import logger

from ttlp.api.accounts import Accounts

TOKEN_BYTES: Final = 32
SETUP_TTL_S: Final = 60
"""How long a replica's registered link outlives its last renewal (renewed every third)."""
SHARED_TIMEOUT_S: Final = 1.0
"""A Redis that hangs costs a setup request at most this long (the replica's own link still
works without Redis)."""
SETUP_PATH: Final = "/#/setup/"

log = logger.bind(role="api")


def reachable_url(host: str, port: int) -> str:
    """``http://HOST:PORT/`` as a browser on this machine reaches it: an API bound to every
    interface (``0.0.0.0``, ``::``, empty) is reached on loopback; an IPv6 address in brackets."""
    if host in {"", "0.0.0.0"}:
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    else:
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
    return f"http://{host}:{port}/"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SetupLink:
    """This process's setup link (``token`` is None when there is none: accounts exist)."""

    def __init__(
        self, accounts: Accounts, shared: Store | None = None, ttl_s: float = SETUP_TTL_S
    ) -> None:
        self.accounts = accounts
        self.shared = shared
        """Every replica's registered links (Redis), or None for a process of its own."""
        self.ttl_s = ttl_s
        self.token: str | None = None

    @property
    def path(self) -> str | None:
        """The link without its origin (``/#/setup/TOKEN``), or None."""
        return None if self.token is None else SETUP_PATH + self.token

    async def open(self) -> str | None:
        """Make the link when no account exists (and register it with the other replicas);
        the token, or None."""
        if await self.accounts.count():
            return None
        self.token = secrets.token_urlsafe(TOKEN_BYTES)
        await self._register()
        return self.token

    async def accepts(self, presented: str) -> bool:
        """Whether ``presented`` is a live setup token: this process's own (constant-time
        comparison) or one another replica registered."""
        own = self.token
        if own is not None and hmac.compare_digest(presented.encode(), own.encode()):
            return True
        if self.shared is None or not presented:
            return False
        try:
            return await asyncio.wait_for(self.shared.exists(_hash(presented)), SHARED_TIMEOUT_S)
        except Exception as exc:  # Redis away: only this replica's own link works meanwhile
            log.warning("setup links of other replicas unreadable", error=type(exc).__name__)
            return False

    async def keep(self, stop: asyncio.Event) -> None:
        """Renew the registration until the link is used (on any replica: an account
        exists) or ``stop``; then end it."""
        while self.token is not None and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.ttl_s / 3)
            if stop.is_set() or self.token is None:
                break
            try:
                if await self.accounts.count():
                    break
            except Exception as exc:  # the database away: keep the link, look again later
                log.warning("could not count accounts", error=type(exc).__name__)
            await self._register()
        await self.close()

    async def close(self) -> None:
        """End the link (used, or the process stops)."""
        token, self.token = self.token, None
        if token is None or self.shared is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.shared.delete(_hash(token)), SHARED_TIMEOUT_S)

    async def _register(self) -> None:
        if self.token is None or self.shared is None:
            return
        try:
            await asyncio.wait_for(
                self.shared.set(_hash(self.token), b"1", expires_in=timedelta(seconds=self.ttl_s)),
                SHARED_TIMEOUT_S,
            )
        except Exception as exc:
            log.warning(
                "setup link not registered in Redis: it works on this replica only for now",
                error=type(exc).__name__,
            )
