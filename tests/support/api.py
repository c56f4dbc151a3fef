"""The api role's app on a real bus and database, accounts, seeded events (``api`` fixture).

``ApiHarness`` builds the api role's app (``create_app``) on the in-process bus + SQLite or
Redis + PostgreSQL, serves it with uvicorn on a free loopback port in the test's event loop,
and drives it with httpx (``client``) or any HTTP/WebSocket client (``url``). ``login``
creates an account and returns the headers that carry its token.

The ``api`` fixture runs it on both backends: the in-process bus + SQLite, Redis + PostgreSQL.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import uvicorn
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.buses import backend_bus
from tests.support.paths import FIXTURES
from tests.support.wait import free_port
from ttlp.api.accounts import Accounts, Role
from ttlp.api.app import create_app
from ttlp.bus.base import Bus
from ttlp.bus.keys import Keys
from ttlp.bus.memory import MemoryBus
from ttlp.contracts.events import UnifiedEvent, decode_event
from ttlp.db.store import Store
from ttlp.roles.api import ApiServer
from ttlp.runtime import Context, keep_dead_letters
from ttlp.settings import Settings

STREAMER_HANDLE = "luna.beats"
"""The streamer of the fixture session (room ``FIXTURE_ROOM``)."""
FIXTURE_ROOM = "7441234567890123456"
OTHER_HANDLE = "other.streamer"
OTHER_ROOM = "7449999999999999999"
PASSWORD = "correct horse battery"


def fixture_events() -> list[UnifiedEvent]:
    text = (FIXTURES / "unified-events.ndjson").read_text()
    return [decode_event(line) for line in text.splitlines() if line.strip()]


def other_stream_events() -> list[UnifiedEvent]:
    """The fixture session moved to another streamer's room (for out-of-scope checks)."""
    out = []
    for event in fixture_events():
        data = json.loads(msgspec.json.encode(event))
        data["streamId"] = OTHER_ROOM
        data["sessionId"] = "5a1c2a9e-6b7d-4e21-9c55-0d8e7a41b2f6"
        # A new id of the same shape (the fixture has ids starting with any hex digit).
        data["eventId"] = hashlib.sha256(f"other:{data['eventId']}".encode()).hexdigest()
        if data["eventType"] == "CONNECTED":
            data["payload"]["uniqueId"] = OTHER_HANDLE
            data["payload"]["roomId"] = OTHER_ROOM
        out.append(decode_event(json.dumps(data)))
    return out


@dataclass
class ApiHarness:
    app: Litestar
    client: httpx.AsyncClient
    ctx: Context
    engine: AsyncEngine
    bus: Bus
    keys: Keys
    port: int = 0
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, stream: str, query: str = "") -> str:
        """The live WebSocket of ``stream`` (a room id or ``@handle``), ``query`` appended."""
        return f"ws://127.0.0.1:{self.port}/streams/{stream}/ws{query}"

    @property
    def store(self) -> Store:
        return self.ctx.store

    async def seed(self, events: list[UnifiedEvent] | None = None) -> None:
        await self.store.write_events(events if events is not None else fixture_events())

    async def publish(self, event: UnifiedEvent) -> str:
        """Put an event on ``ttlc:events`` as the normalizer would."""
        return await self.bus.publish(
            self.keys.events, {"event": msgspec.json.encode(event).decode()}
        )

    async def account(
        self, username: str, role: Role, scopes: list[str], password: str = PASSWORD
    ) -> None:
        await Accounts(self.engine).add(username, password, role, scopes)

    async def login(
        self, username: str, role: Role | None = None, scopes: list[str] | None = None
    ) -> dict[str, str]:
        """Create the account (when ``role`` is given) and log in: the Authorization header."""
        if username not in self.tokens:
            if role is not None:
                await self.account(username, role, scopes or [STREAMER_HANDLE])
            response = await self.client.post(
                "/auth/login", json={"username": username, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            self.tokens[username] = response.json()["token"]
            self.client.cookies.clear()  # tests choose header or cookie explicitly
        return {"Authorization": f"Bearer {self.tokens[username]}"}


def api_settings(data_dir: Path, **api: Any) -> Settings:
    """Settings for a test app: generous limits unless a test sets its own."""
    env = {
        "TTLP_DATA_DIR": str(data_dir),
        "JWT_SECRET": "test-secret-that-is-long-enough-for-hs256",
        "API_RATE_LIMIT_IP": "100000",
        "API_RATE_LIMIT_ACCOUNT": "100000",
        "SSE_HEARTBEAT_S": "0.5",
    }
    env.update({k: str(v) for k, v in api.items()})
    return Settings.from_env(env)


async def harness(
    settings: Settings, bus: Bus, engine: AsyncEngine, keys: Keys
) -> AsyncIterator[ApiHarness]:
    """An app with its lifespan running (the feed tail started), and a client on it."""
    ctx = Context(settings=settings, bus=bus, keys=keys, engine=engine)
    stop = asyncio.Event()
    app = create_app(settings, bus, keys, engine, stop)
    # A real uvicorn server on a free port, in this event loop: streaming responses (SSE),
    # WebSockets and disconnects behave as in production, and the app shares the test's loop
    # with its engine and bus.
    port = free_port()
    server = ApiServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            raise RuntimeError("the api server did not start")
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield ApiHarness(
                app=app, client=client, ctx=ctx, engine=engine, bus=bus, keys=keys, port=port
            )
    finally:
        stop.set()
        app.state.api.feed.close()
        server.should_exit = True
        await asyncio.wait_for(serving, 15)


@pytest.fixture
def backend_redis_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """Redis for the PostgreSQL backend (resolved outside the event loop), None for SQLite."""
    if backend != "postgresql":
        return None
    request.getfixturevalue("redis_cleanup")
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def api_env() -> dict[str, object]:
    """Extra API settings for the ``api`` fixture (override in a test module)."""
    return {}


@pytest.fixture
async def api(
    backend_redis_url: str | None,
    db_engine: AsyncEngine,
    tmp_path: Path,
    key_prefix: str,
    api_env: dict[str, object],
) -> AsyncIterator[ApiHarness]:
    """The api app on both backends: in-process bus + SQLite, Redis + PostgreSQL.

    A test can pass API settings with ``@pytest.mark.parametrize("api_env", [{...}])``
    (indirect) or by defining an ``api_env`` fixture of its own.
    """
    settings = api_settings(tmp_path, **api_env)
    if backend_redis_url is not None:
        settings = msgspec.structs.replace(
            settings, bus=msgspec.structs.replace(settings.bus, redis_url=backend_redis_url)
        )
    bus = backend_bus(backend_redis_url, settings.bus.stream_maxlen)
    keys = Keys(key_prefix)
    # As `ttlp run` has it: the in-process bus keeps ttlc:dlq in the database and relays the
    # retries other processes ask for; on Redis neither applies.
    keep_dead_letters(bus, keys, db_engine)
    stop_relay = asyncio.Event()
    relay = asyncio.create_task(bus.relay(stop_relay)) if isinstance(bus, MemoryBus) else None
    try:
        async for h in harness(settings, bus, db_engine, keys):
            yield h
    finally:
        stop_relay.set()
        if relay is not None:
            await relay
        await bus.close()
