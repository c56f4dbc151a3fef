"""Consumer names: one live process per name (STYLE "Worker loop" 2).

A consumer name must be stable across restarts of the same replica, so that a restarted
replica first re-reads its own pending entries; and two live processes must never share one,
or a group would see one consumer with two readers that ack each other's work. The default is
the host name, distinct per container; two processes on one host take ``host``, ``host-2``, ...
On a shared bus each process holds its name with a renewed lease (owner ``pid@host``):

- a name held by a live process is skipped (the default) or refused (an explicit
  ``CONSUMER_NAME``: a configuration error, said before any role starts);
- a name held by a process of this host that is no longer running (it crashed; its lease has
  not expired yet) is taken over at once, so a restarted process gets its old name back;
- a restarted container keeps its host name and, as PID 1, its owner string: the name is its.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from typing import Final

from loguru import logger

from ttlp.aio import sleep_or_stop
from ttlp.bus.base import Bus
from ttlp.bus.keys import Keys
from ttlp.bus.lease import Lease
from ttlp.errors import ConfigError

NAME_TTL_MS: Final = 15_000
"""A dead process's name is free after this long even on another host."""
MAX_SLOTS: Final = 64


@dataclass
class ConsumerName:
    """The name this process consumes under, and the lease that holds it (None in-process)."""

    name: str
    lease: Lease | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def keep(self) -> None:
        """Renew the lease until ``release``; a lost lease is logged (another process took the
        name after this one stalled for longer than its time to live)."""
        if self.lease is None:
            return
        while not self._stop.is_set():
            await sleep_or_stop(self._stop, self.lease.ttl_ms / 3000)
            if self._stop.is_set():
                return
            try:
                if not await self.lease.acquire():
                    logger.bind(role="runtime").error(
                        "another process now uses this consumer name", consumer=self.name
                    )
            except Exception as exc:  # the bus is away: the consume loops say so; keep trying
                logger.bind(role="runtime").debug("cannot renew the consumer name", error=str(exc))

    async def release(self) -> None:
        self._stop.set()
        if self.lease is not None:
            with contextlib.suppress(Exception):
                await self.lease.release()


def _dead_here(holder: str, host: str) -> bool:
    """Whether ``holder`` (``pid@host``) is a process of this host that is not running."""
    pid_text, _, holder_host = holder.partition("@")
    if holder_host != host or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # running, as another user
    return False


async def claim(bus: Bus, keys: Keys, requested: str, *, explicit: bool, host: str) -> ConsumerName:
    """The first free name of ``requested``, ``requested-2``, ... (only ``requested`` when it
    was given explicitly), held by this process."""
    owner = f"{os.getpid()}@{host}"
    for slot in range(1, MAX_SLOTS + 1):
        name = requested if slot == 1 else f"{requested}-{slot}"
        lease = bus.lease(keys.consumer_name(name), owner, NAME_TTL_MS)
        if lease is None:
            return ConsumerName(requested)  # one process on this bus: nobody to share with
        if await lease.acquire():
            return ConsumerName(name, lease)
        holder = await lease.holder()
        if holder and _dead_here(holder, host) and await lease.take_over(holder):
            return ConsumerName(name, lease)
        if explicit:
            raise ConfigError(
                f"CONSUMER_NAME={name} is in use by another running ttlp process ({holder}): "
                "give each process its own name, or leave CONSUMER_NAME unset"
            )
    raise ConfigError(f"{MAX_SLOTS} processes already use consumer names {requested}-N")
