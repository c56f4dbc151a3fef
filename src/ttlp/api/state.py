"""What the route handlers share (one per app), and how a ``{stream}`` in a path is resolved."""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

from litestar import Request
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.aio import to_iso
from ttlp.api.accounts import ALL_STREAMS, Account, Accounts
from ttlp.api.auth import AccountCache, ensure_scope
from ttlp.api.feed import Feed, handle_channel, room_channel
from ttlp.api.metrics import ApiMetrics
from ttlp.api.overlays.hub import OverlayHub
from ttlp.api.setup import SetupLink
from ttlp.bus.base import Bus, parse_id
from ttlp.bus.keys import Keys
from ttlp.db.queries import Queries
from ttlp.forward.outbound import Outbound
from ttlp.settings import Settings

ROOM_ID_RE: Final = re.compile(r"^[0-9]{1,32}$")
HANDLE_RE: Final = re.compile(r"^@[A-Za-z0-9_.]{1,64}$")


class ApiState:
    """A plain class, not a dataclass: Litestar would otherwise resolve the type hints of
    every field (down to SQLAlchemy's and the bus's) for its signature model."""

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        keys: Keys,
        engine: AsyncEngine,
        queries: Queries,
        accounts: Accounts,
        feed: Feed,
        metrics: ApiMetrics,
        account_cache: AccountCache,
        outbound: Outbound,
        setup: SetupLink,
        overlays: OverlayHub,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.keys = keys
        self.engine = engine
        self.queries = queries
        self.accounts = accounts
        self.account_cache = account_cache
        """What checks every request's token; long-lived connections (the WebSocket) ask it
        again before each action."""
        self.outbound = outbound
        """The outbound rules (SSRF guard) a forward target's or webhook's URL is checked with
        when written; it never sends from the api (the forward and rules roles do)."""
        self.setup = setup
        """The first-run setup link (its token is None once accounts exist)."""
        self.feed = feed
        self.overlays = overlays
        """Overlay tokens presented and the open overlays' watch (``ttlp.api.overlays``)."""
        self.metrics = metrics
        self.started = time.monotonic()
        self.feeds_per_account: Counter[str] = Counter()


Req = Request[Any, Any, Any]
Api = NamedDependency[ApiState]
"""How a route handler asks for the shared state (the ``api`` dependency)."""


@dataclass(frozen=True)
class StreamRef:
    """A ``{stream}`` path segment resolved: a room id, or ``@handle`` for all its rooms."""

    stream_ids: list[str]
    unique_id: str | None
    channel: str


async def resolve_stream(
    state: ApiState, ref: str, account: Account, *, must_exist: bool = True
) -> StreamRef:
    """``7441…`` (a room id) or ``@handle`` → the rooms, after the scope check (403/404)."""
    if HANDLE_RE.match(ref):
        handle = ref[1:].lower()
        ensure_scope(account, handle)
        rooms = await state.queries.rooms_of(handle)
        if must_exist and not rooms:
            raise NotFoundException(f"no stream of @{handle} has been seen yet")
        return StreamRef(rooms, handle, handle_channel(handle))
    if not ROOM_ID_RE.match(ref):
        raise ValidationException(
            f"{ref!r} is neither a room id (digits) nor a streamer handle (@name)"
        )
    row = await state.queries.stream(ref)
    if row is None:
        if ALL_STREAMS in account.scopes and not must_exist:
            return StreamRef([ref], None, room_channel(ref))
        raise NotFoundException(f"no stream {ref}")
    ensure_scope(account, row["unique_id"])
    return StreamRef([ref], row["unique_id"], room_channel(ref))


async def scoped_rooms(state: ApiState, account: Account) -> list[str] | None:
    """The rooms an account may see (None = all)."""
    if ALL_STREAMS in account.scopes:
        return None
    rooms: list[str] = []
    for handle in account.scopes:
        rooms.extend(await state.queries.rooms_of(handle))
    return rooms


def is_entry_id(value: str) -> bool:
    """A stream entry id as Redis takes it: ``ms-seq`` (or ``ms``), each part below 2**64
    (a larger one is a Redis error, not an empty answer)."""
    try:
        ms, seq = parse_id(value)
    except ValueError:
        return False
    return 0 <= ms < 2**64 and 0 <= seq < 2**64


def scope_list(account: Account) -> list[str] | None:
    return None if ALL_STREAMS in account.scopes else list(account.scopes)


def iso(value: Any) -> str | None:
    """A database timestamp as ISO 8601 UTC (SQLite gives naive datetimes, in UTC)."""
    return None if value is None else to_iso(value, precision="auto")
