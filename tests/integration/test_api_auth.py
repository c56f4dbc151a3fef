"""Who may do what (DESIGN §7.1): every endpoint × role × stream scope, refused credentials,
the login cookie, and the login endpoint's answers.

One app per backend serves the whole module (``world``): both streamers' sessions are stored
once and an account exists for each role, scoped to ``luna.beats`` or to ``*``. Each row of the
matrix is one request:

* ``in-scope``: an account of ``luna.beats`` asks about ``luna.beats``' stream, session, viewer;
* ``out-of-scope``: the same account asks about ``other.streamer``'s;
* ``scope-all``: an account with scope ``*`` asks about ``other.streamer``'s.

Unauthenticated is 401, a wrong role or a stream outside the scope 403, with a JSON body
``{"status_code", "detail"}`` and no stack trace. A TikTok user seen only outside the scope is
404, not 403 (history.py: whether such a user exists at all is not the account's to know).
A WebSocket refused before accept answers its handshake with the real status and JSON body (401
without a token, 403 out of scope), as HTTP does.
"""

from __future__ import annotations

import enum
import gc
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
import jwt
import msgspec
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

import ttlp.api.auth
from tests.support.api import (
    FIXTURE_ROOM,
    OTHER_HANDLE,
    OTHER_ROOM,
    PASSWORD,
    STREAMER_HANDLE,
    ApiHarness,
    api_settings,
    fixture_events,
    harness,
    other_stream_events,
)
from tests.support.buses import backend_bus
from tests.support.databases import BACKENDS, migrated_postgresql_url, sqlite_url
from tests.support.services import delete_keys_at, new_key_prefix
from tests.support.wait import wait_for
from ttlp.api.accounts import Accounts, Role
from ttlp.api.auth import COOKIE_NAME
from ttlp.bus.keys import Keys
from ttlp.contracts.events import UnifiedEvent, decode_event
from ttlp.db.engine import create_engine
from ttlp.db.migrate import upgrade
from ttlp.rules.store import RulesStore

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SECRET: Final = "test-secret-that-is-long-enough-for-hs256"
ACCOUNT_CACHE_S: Final = 0.5
"""The account cache TTL of the module's app (5 s in production): how soon a disabled account
or a changed password ends existing tokens."""
IN_USER: Final = "7012345678901234501"
"""A viewer of luna.beats' session (zoe.petals)."""
OTHER_USER: Final = "7099345678901234501"
"""A viewer seen only in other.streamer's session."""
IDENTITY_FIELDS: Final = ("userId", "uniqueId", "displayName")


def out_of_scope_events() -> list[UnifiedEvent]:
    """other.streamer's session, with viewers of its own (none of them ever seen by luna)."""
    out = []
    for event in other_stream_events():
        data = json.loads(msgspec.json.encode(event))
        user = data.get("user") or {}
        if user.get("userId", "0") != "0":
            user["userId"] = "7099" + user["userId"][4:]
            user["uniqueId"] = "other." + user["uniqueId"]
        out.append(decode_event(json.dumps(data)))
    return out


class Case(enum.StrEnum):
    IN = "in-scope"
    OUT = "out-of-scope"
    ALL = "scope-all"


ROLES: Final = (Role.STREAMER, Role.MODERATOR, Role.VIEWER)


def account_name(role: Role, all_streams: bool) -> str:
    return f"{role.value.lower()}-{'all' if all_streams else 'luna'}"


@dataclass
class World:
    """The module's app on one backend, its data and its accounts."""

    api: ApiHarness
    backend: str
    sessions: dict[str, str]
    """``luna`` / ``other`` → that streamer's session id."""
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    """account name → its Authorization header."""
    rules: dict[str, int] = field(default_factory=dict)
    """``luna`` / ``other`` → the id of a rule of that streamer."""

    def ws_url(self, path: str) -> str:
        return "ws" + self.api.url.removeprefix("http") + path


@dataclass(frozen=True)
class Row:
    """Who asks about what: the account and the targets the request's path names."""

    role: Role
    case: Case

    @property
    def account(self) -> str:
        return account_name(self.role, self.case is Case.ALL)

    @property
    def sees_all(self) -> bool:
        return self.case is Case.ALL

    def targets(self, world: World) -> dict[str, str]:
        luna = self.case is Case.IN
        return {
            "room": FIXTURE_ROOM if luna else OTHER_ROOM,
            "handle": STREAMER_HANDLE if luna else OTHER_HANDLE,
            "session": world.sessions["luna" if luna else "other"],
            "user": IN_USER if luna else OTHER_USER,
            "rule": str(world.rules.get("luna" if luna else "other", 0)),
            "doomed": str(world.rules.get("luna" if luna else "other", 0)),  # see the matrix test
        }


@dataclass
class Answer:
    status: int
    headers: httpx.Headers
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


Check = Callable[[Answer, Row, dict[str, str]], None]


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    """With ``{room}``, ``{handle}``, ``{session}``, ``{user}`` filled from the row's targets."""
    min_role: Role | None = Role.VIEWER
    """None: open to anyone, logged in or not."""
    kind: str = "http"
    """http | sse | ws"""
    scoped: bool = True
    """The path names a stream (or a session or user of one): refused outside the scope."""
    refused: int = 403
    ok: int = 200
    body: dict[str, Any] | None = None
    check: Check | None = None

    def status_for(self, row: Row) -> int:
        if self.min_role is None:
            return self.ok
        if not row.role.at_least(self.min_role):
            return 403
        if row.case is Case.OUT and self.scoped:
            return self.refused
        return self.ok


# -- what a successful answer must hold ---------------------------------------------------------
def visible_rooms(row: Row) -> set[str]:
    return {FIXTURE_ROOM, OTHER_ROOM} if row.sees_all else {FIXTURE_ROOM}


def check_streams(answer: Answer, row: Row, _t: dict[str, str]) -> None:
    assert {s["id"] for s in answer.json()} == visible_rooms(row)


def check_sessions(answer: Answer, row: Row, _t: dict[str, str]) -> None:
    assert {s["streamId"] for s in answer.json()} == visible_rooms(row)


def check_stream_sessions(answer: Answer, _row: Row, t: dict[str, str]) -> None:
    assert [s["id"] for s in answer.json()] == [t["session"]]


def check_room_events(answer: Answer, _row: Row, t: dict[str, str]) -> None:
    items = answer.json()["items"]
    assert items, "an empty page"
    assert {e["streamId"] for e in items} == {t["room"]}


def check_session(answer: Answer, _row: Row, t: dict[str, str]) -> None:
    body = answer.json()
    assert (body["id"], body["streamId"]) == (t["session"], t["room"])
    assert body["eventCount"] == len(fixture_events())


def check_session_events(answer: Answer, _row: Row, t: dict[str, str]) -> None:
    items = answer.json()["items"]
    assert len(items) == len(fixture_events())
    assert {e["sessionId"] for e in items} == {t["session"]}


def check_replay(answer: Answer, _row: Row, t: dict[str, str]) -> None:
    body = answer.json()
    assert (body["replayOf"], body["status"]) == (t["session"], "queued")
    assert body["sessionId"] != t["session"]


def check_user(answer: Answer, _row: Row, t: dict[str, str]) -> None:
    assert answer.json()["userId"] == t["user"]


def check_user_events(answer: Answer, _row: Row, t: dict[str, str]) -> None:
    items = answer.json()["items"]
    assert items, "an empty page"
    assert {e["user"]["userId"] for e in items} == {t["user"]}
    assert {e["streamId"] for e in items} == {t["room"]}


def check_notes(answer: Answer, _row: Row, t: dict[str, str]) -> None:
    assert all(n["userId"] == t["user"] for n in answer.json())


def check_note_added(answer: Answer, row: Row, t: dict[str, str]) -> None:
    body = answer.json()
    assert (body["userId"], body["author"], body["body"]) == (t["user"], row.account, "spams")


def check_analytics(answer: Answer, row: Row, _t: dict[str, str]) -> None:
    body = answer.json()
    tops = body["topGifters"] + body["topChatters"]
    assert body["topGifters"], body
    assert body["topChatters"], body
    if row.role is Role.VIEWER:
        leaked = [r for r in tops if set(IDENTITY_FIELDS) & set(r)]
        assert not leaked, f"a VIEWER sees identities: {leaked}"
    else:
        assert all("userId" in r and "uniqueId" in r for r in tops), tops


def check_me(answer: Answer, row: Row, _t: dict[str, str]) -> None:
    body = answer.json()
    assert (body["username"], body["role"]) == (row.account, row.role.value)
    assert body["scopes"] == (["*"] if row.sees_all else [STREAMER_HANDLE])


def check_health(answer: Answer, _row: Row, _t: dict[str, str]) -> None:
    assert answer.json()["status"] == "ok"


def check_sse(answer: Answer, _row: Row, _t: dict[str, str]) -> None:
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["cache-control"] == "no-store"


def check_forward_targets(answer: Answer, row: Row, _t: dict[str, str]) -> None:
    scopes = {t["scope"] for t in answer.json()}
    assert "secret" not in answer.text
    assert scopes <= ({"*", STREAMER_HANDLE, OTHER_HANDLE} if row.sees_all else {STREAMER_HANDLE})


def check_forward_target_created(answer: Answer, _row: Row, _t: dict[str, str]) -> None:
    body = answer.json()
    assert (body["scope"], body["enabled"]) == (STREAMER_HANDLE, True)
    assert len(body["secret"]) >= 32


RULE_BODY: Final = {
    "name": "big gifts",
    "scope": "{handle}",
    "eventType": "GIFT",
    "condition": {">=": [{"var": "payload.coins"}, 1000]},
    "action": {"type": "announce", "template": "Thanks {displayName}!"},
}
"""A rule body; ``{handle}`` is the row's streamer (the other placeholders are templates')."""


def check_rules(answer: Answer, row: Row, _t: dict[str, str]) -> None:
    scopes = {r["scope"] for r in answer.json()}
    assert scopes == ({STREAMER_HANDLE, OTHER_HANDLE} if row.sees_all else {STREAMER_HANDLE})


def check_rule_test(answer: Answer, _row: Row, _t: dict[str, str]) -> None:
    body = answer.json()
    assert (body["matched"], body["event"]["eventType"]) == (False, "GIFT")  # a 5-coin sample


def check_rule(answer: Answer, _row: Row, t: dict[str, str]) -> None:
    assert answer.json()["scope"] == t["handle"]


def check_executions(answer: Answer, _row: Row, _t: dict[str, str]) -> None:
    assert answer.json() == {"items": [], "nextCursor": None}


def fill(body: Any, targets: dict[str, str]) -> Any:
    """``body`` with ``{handle}``, ``@{handle}``, ``{room}``, ... (whole strings only) replaced
    by the row's targets."""
    if isinstance(body, dict):
        return {k: fill(v, targets) for k, v in body.items()}
    match = re.fullmatch(r"(@?)\{(\w+)\}", body) if isinstance(body, str) else None
    if match is not None and match[2] in targets:
        return match[1] + targets[match[2]]
    return body


async def add_rule(api: ApiHarness, handle: str) -> int:
    row = await RulesStore(api.engine).create_rule(
        {
            "name": f"rule of {handle}",
            "scope": handle,
            "event_type": "CHAT",
            "condition": True,
            "action": {"type": "log"},
        },
        "test",
    )
    return int(row["id"])


ENDPOINTS: Final = (
    Endpoint("list-streams", "GET", "/streams", scoped=False, check=check_streams),
    Endpoint("stream-sessions", "GET", "/streams/{room}/sessions", check=check_stream_sessions),
    # Event listings and user views name people (handles, names, chat text): MODERATOR+, a
    # VIEWER sees aggregates only (sessions, summaries, analytics).
    Endpoint(
        "stream-history", "GET", "/streams/{room}/history", Role.MODERATOR, check=check_room_events
    ),
    Endpoint(
        "handle-history",
        "GET",
        "/streams/@{handle}/history?limit=5",
        Role.MODERATOR,
        check=check_room_events,
    ),
    Endpoint("sse", "GET", "/streams/{room}/events", Role.MODERATOR, "sse", check=check_sse),
    Endpoint("ws", "GET", "/streams/{room}/ws", Role.MODERATOR, "ws", ok=101),
    Endpoint("list-sessions", "GET", "/sessions", scoped=False, check=check_sessions),
    Endpoint("session", "GET", "/sessions/{session}", check=check_session),
    Endpoint(
        "session-events",
        "GET",
        "/sessions/{session}/events?limit=500",
        Role.MODERATOR,
        check=check_session_events,
    ),
    Endpoint(
        "replay", "POST", "/sessions/{session}/replay", Role.STREAMER, ok=202, check=check_replay
    ),
    Endpoint("user", "GET", "/users/{user}", Role.MODERATOR, refused=404, check=check_user),
    Endpoint(
        "user-events",
        "GET",
        "/users/{user}/events",
        Role.MODERATOR,
        refused=404,
        check=check_user_events,
    ),
    Endpoint(
        "list-notes", "GET", "/users/{user}/notes", Role.MODERATOR, refused=404, check=check_notes
    ),
    Endpoint(
        "add-note",
        "POST",
        "/users/{user}/notes",
        Role.MODERATOR,
        refused=404,
        ok=201,
        body={"body": "spams"},
        check=check_note_added,
    ),
    Endpoint("analytics-session", "GET", "/analytics?sessionId={session}", check=check_analytics),
    Endpoint("analytics-room", "GET", "/analytics?streamId={room}", check=check_analytics),
    Endpoint("me", "GET", "/auth/me", scoped=False, check=check_me),
    Endpoint("health", "GET", "/health", None, scoped=False, check=check_health),
    # -- rules: read and test MODERATOR+, change STREAMER; scope = the rule's streamer
    Endpoint("list-rules", "GET", "/rules", Role.MODERATOR, scoped=False, check=check_rules),
    Endpoint(
        "test-rule",
        "POST",
        "/rules/test",
        Role.MODERATOR,
        scoped=False,
        ok=200,
        body={"rule": RULE_BODY, "eventType": "GIFT"},
        check=check_rule_test,
    ),
    Endpoint("get-rule", "GET", "/rules/{rule}", Role.MODERATOR, check=check_rule),
    Endpoint(
        "rule-executions",
        "GET",
        "/rules/{rule}/executions",
        Role.MODERATOR,
        check=check_executions,
    ),
    Endpoint(
        "create-rule", "POST", "/rules", Role.STREAMER, ok=201, body=RULE_BODY, check=check_rule
    ),
    Endpoint(
        "replace-rule", "PUT", "/rules/{rule}", Role.STREAMER, body=RULE_BODY, check=check_rule
    ),
    Endpoint("delete-rule", "DELETE", "/rules/{doomed}", Role.STREAMER, ok=204),
    # -- moderators' quick actions: MODERATOR+, scope = the stream. The module's app has no
    # Euler key or session, so an allowed request gets as far as Euler's configuration (503).
    Endpoint(
        "timeout",
        "POST",
        "/actions/timeout",
        Role.MODERATOR,
        ok=503,
        body={"streamId": "{room}", "userId": "{user}", "durationS": 300},
    ),
    Endpoint(
        "timeout-handle",
        "POST",
        "/actions/timeout",
        Role.MODERATOR,
        ok=503,
        body={"streamId": "@{handle}", "userId": "{user}", "durationS": 5},
    ),
    Endpoint(
        "ban",
        "POST",
        "/actions/ban",
        Role.MODERATOR,
        ok=503,
        body={"streamId": "{room}", "userId": "{user}"},
    ),
    Endpoint(
        "forward-targets",
        "GET",
        "/forward/targets",
        Role.STREAMER,
        scoped=False,
        check=check_forward_targets,
    ),
    Endpoint(
        "forward-target-create",
        "POST",
        "/forward/targets",
        Role.STREAMER,
        scoped=False,
        ok=201,
        body={"name": "hook", "url": "https://hooks.example.com/in", "scope": STREAMER_HANDLE},
        check=check_forward_target_created,
    ),
)
MATRIX: Final = [
    pytest.param(endpoint, Row(role, case), id=f"{endpoint.name}-{role.value}-{case.value}")
    for endpoint in ENDPOINTS
    for role in ROLES
    for case in Case
]


# -- the module's app: one per backend ------------------------------------------------------------
@pytest.fixture(scope="module", params=BACKENDS)
def world_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    """(backend, URL of a migrated database of the module's app's own)."""
    backend = str(request.param)
    if backend == "sqlite":
        url = sqlite_url(tmp_path_factory.mktemp("auth-db"))
        upgrade(url)
    else:
        url = migrated_postgresql_url(request.getfixturevalue("pg_database_factory"))
    return backend, url


@pytest.fixture(scope="module")
def world_redis_url(world_database: tuple[str, str], request: pytest.FixtureRequest) -> str | None:
    return str(request.getfixturevalue("redis_url")) if world_database[0] != "sqlite" else None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    world_database: tuple[str, str],
    world_redis_url: str | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[World]:
    backend, url = world_database
    settings = api_settings(tmp_path_factory.mktemp("auth-data"))
    prefix = new_key_prefix()
    if world_redis_url is not None:
        settings = msgspec.structs.replace(
            settings, bus=msgspec.structs.replace(settings.bus, redis_url=world_redis_url)
        )
    bus = backend_bus(world_redis_url, settings.bus.stream_maxlen)
    engine = create_engine(url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ttlp.api.auth, "ACCOUNT_CACHE_S", ACCOUNT_CACHE_S)
        servers = harness(settings, bus, engine, Keys(prefix))
        api = await anext(servers)
    try:
        await api.seed()
        await api.seed(out_of_scope_events())
        sessions = {
            "luna": fixture_events()[0].session_id,
            "other": out_of_scope_events()[0].session_id,
        }
        world = World(api=api, backend=backend, sessions=sessions)
        world.rules = {
            "luna": await add_rule(api, STREAMER_HANDLE),
            "other": await add_rule(api, OTHER_HANDLE),
        }
        for role in ROLES:
            for all_streams in (False, True):
                name = account_name(role, all_streams)
                scopes = ["*"] if all_streams else [STREAMER_HANDLE]
                world.headers[name] = await api.login(name, role, scopes)
        yield world
    finally:
        await servers.aclose()  # stops the server
        await bus.close()
        await engine.dispose()
        if world_redis_url is not None:
            await delete_keys_at(world_redis_url, prefix)


# -- making requests ---------------------------------------------------------------------------
async def ask(
    world: World, endpoint: Endpoint, path: str, headers: dict[str, str], body: Any = None
) -> Answer:
    """One request as the endpoint needs it; a live feed is closed as soon as it answers."""
    client = world.api.client
    if endpoint.kind == "ws":
        try:
            async with ws_connect(
                world.ws_url(path), additional_headers=headers, open_timeout=10
            ) as socket:
                status = socket.response.status_code if socket.response else 0
            return Answer(status, httpx.Headers(), "")
        except InvalidStatus as exc:
            body = exc.response.body or b""
            return Answer(exc.response.status_code, httpx.Headers(), body.decode(errors="replace"))
    if endpoint.kind == "sse":
        async with client.stream("GET", path, headers=headers) as response:
            text = "" if response.status_code == 200 else (await response.aread()).decode()
            return Answer(response.status_code, response.headers, text)
    response = await client.request(
        endpoint.method, path, headers=headers, json=body if body is not None else endpoint.body
    )
    return Answer(response.status_code, response.headers, response.text)


def assert_error_body(answer: Answer, status: int, where: str) -> None:
    """A refusal: the status, a JSON ``{"status_code", "detail"}``, no stack trace."""
    assert answer.status == status, f"{where}: {answer.status} {answer.text[:300]}"
    assert "Traceback" not in answer.text, where
    assert 'File "' not in answer.text, where
    body = answer.json()
    assert body["status_code"] == status, f"{where}: {body}"
    assert isinstance(body["detail"], str), f"{where}: {body}"
    assert body["detail"], f"{where}: {body}"
    assert set(body) <= {"status_code", "detail", "extra"}, f"{where}: {body}"


def expect(endpoint: Endpoint, status: int) -> int:
    """The status a client sees: a WebSocket refused before accept answers the handshake with
    the same status and JSON body as HTTP (ttlp.api.guard)."""
    return status


@pytest.mark.parametrize(("endpoint", "row"), MATRIX)
async def test_each_endpoint_answers_each_role_and_scope_as_the_table_says(
    world: World, endpoint: Endpoint, row: Row
) -> None:
    targets = row.targets(world)
    if "{doomed}" in endpoint.path:  # a rule of the row's own, to delete
        targets["doomed"] = str(await add_rule(world.api, targets["handle"]))
    path = endpoint.path.format(**targets)
    where = f"{world.backend}: {row.account} ({row.case.value}) {endpoint.method} {path}"
    headers = world.headers[row.account] if endpoint.min_role is not None else {}
    answer = await ask(world, endpoint, path, headers, fill(endpoint.body, targets))
    status = expect(endpoint, endpoint.status_for(row))
    if status >= 400:
        if endpoint.kind == "ws":
            assert answer.status == status, f"{where}: {answer.status} {answer.text[:300]}"
        else:
            assert_error_body(answer, status, where)
        return
    assert answer.status == status, f"{where}: {answer.status} {answer.text[:300]}"
    if endpoint.check is not None:
        endpoint.check(answer, row, targets)


# -- credentials that are not (or no longer) good ----------------------------------------------
def _token(sub: str, *, exp: timedelta, secret: str = SECRET, algorithm: str = "HS256") -> str:
    now = datetime.now(UTC)
    claims = {"sub": sub, "iat": now - timedelta(hours=1), "exp": now + exp, "role": "STREAMER"}
    return jwt.encode(claims, secret, algorithm=algorithm)


BAD_CREDENTIALS: Final[dict[str, Callable[[], dict[str, str]]]] = {
    "none": lambda: {},
    "expired": lambda: {"Authorization": f"Bearer {_token('streamer-all', exp=-timedelta(1))}"},
    "forged": lambda: {
        "Authorization": "Bearer " + _token("streamer-all", exp=timedelta(hours=1), secret="x" * 48)
    },
    "unsigned": lambda: {
        "Authorization": "Bearer "
        + jwt.encode({"sub": "streamer-all", "exp": time.time() + 3600}, None, algorithm="none")
    },
    "unknown-account": lambda: {
        "Authorization": f"Bearer {_token('nobody', exp=timedelta(hours=1))}"
    },
    "not-a-jwt": lambda: {"Authorization": "Bearer not.a.jwt"},
    "forged-cookie": lambda: {
        "Cookie": f'{COOKIE_NAME}="Bearer '
        + _token("streamer-all", exp=timedelta(hours=1), secret="y" * 48)
        + '"'
    },
}


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
async def test_a_request_without_good_credentials_is_401_except_on_open_endpoints(
    world: World, endpoint: Endpoint, credentials: str
) -> None:
    row = Row(Role.STREAMER, Case.ALL)
    path = endpoint.path.format(**row.targets(world))
    where = f"{world.backend}: {credentials} credentials, {endpoint.method} {path}"
    answer = await ask(world, endpoint, path, BAD_CREDENTIALS[credentials]())
    if endpoint.min_role is None:
        assert answer.status == endpoint.ok, where
    elif endpoint.kind == "ws":
        assert answer.status == expect(endpoint, 401), f"{where}: {answer.status}"
    else:
        assert_error_body(answer, 401, where)


async def refused_within(world: World, headers: dict[str, str], seconds: float) -> None:
    """Wait until ``headers`` get a 401 on /auth/me (fails after ``seconds``); 200 until then."""

    async def refused() -> bool:
        response = await world.api.client.get("/auth/me", headers=headers)
        assert response.status_code in {200, 401}, response.text
        return response.status_code == 401

    await wait_for(refused, timeout=seconds, poll=0.05, what="the token refused with 401")


async def test_token_of_a_disabled_account_is_refused_once_the_account_cache_expires(
    world: World,
) -> None:
    name = f"disabled-{world.backend}"
    headers = await world.api.login(name, Role.STREAMER, ["*"])
    assert (await world.api.client.get("/auth/me", headers=headers)).status_code == 200
    await Accounts(world.api.engine).set_disabled(name, True)
    await refused_within(world, headers, ACCOUNT_CACHE_S + 1)
    login = await world.api.client.post(
        "/auth/login", json={"username": name, "password": PASSWORD}
    )
    assert login.status_code == 401
    world.api.client.cookies.clear()


async def test_token_issued_before_a_password_change_is_refused(world: World) -> None:
    name = f"changed-{world.backend}"
    old = await world.api.login(name, Role.VIEWER, [STREAMER_HANDLE])
    assert (await world.api.client.get("/auth/me", headers=old)).status_code == 200
    await Accounts(world.api.engine).set_password(name, "a brand new password")
    await refused_within(world, old, ACCOUNT_CACHE_S + 1)
    login = await world.api.client.post(
        "/auth/login", json={"username": name, "password": "a brand new password"}
    )
    world.api.client.cookies.clear()
    assert login.status_code == 200, login.text
    new = {"Authorization": f"Bearer {login.json()['token']}"}
    me = await world.api.client.get("/auth/me", headers=new)
    assert me.status_code == 200, me.text


async def test_token_issued_in_the_same_second_after_a_password_change_works(
    world: World,
) -> None:
    name = f"relogin-{world.backend}"
    await world.api.account(name, Role.VIEWER, [STREAMER_HANDLE])
    await Accounts(world.api.engine).set_password(name, "a brand new password")
    login = await world.api.client.post(
        "/auth/login", json={"username": name, "password": "a brand new password"}
    )
    world.api.client.cookies.clear()
    assert login.status_code == 200, login.text
    me = await world.api.client.get(
        "/auth/me", headers={"Authorization": f"Bearer {login.json()['token']}"}
    )
    assert me.status_code == 200, me.text


async def test_live_feeds_closed_at_once_give_their_slots_back(world: World) -> None:
    """The matrix closes each SSE feed as soon as it answers; that must not use up the
    account's concurrent-feed cap. The slot is given back by the server, not whenever the
    garbage collector finds the abandoned stream (hence no collection during the test)."""
    name = f"feeds-{world.backend}"
    headers = await world.api.login(name, Role.MODERATOR, ["*"])
    feeds = world.api.app.state.api.feeds_per_account
    gc.disable()
    try:
        for attempt in range(20):
            async with world.api.client.stream(
                "GET", f"/streams/{FIXTURE_ROOM}/events", headers=headers
            ) as response:
                assert response.status_code == 200, f"feed {attempt + 1}: {response.status_code}"

        async def released() -> bool:
            return name not in feeds

        await wait_for(released, timeout=2, poll=0.05, what=f"{name}'s feed slots back")
    finally:
        gc.enable()


# -- the login cookie --------------------------------------------------------------------------
@pytest.fixture
async def browser(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """A client of its own, with a cookie jar and no Authorization header."""
    async with httpx.AsyncClient(base_url=world.api.url, timeout=30) as client:
        yield client


async def login_with(client: httpx.AsyncClient, name: str) -> httpx.Response:
    response = await client.post("/auth/login", json={"username": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response


async def test_login_sets_an_httponly_samesite_strict_cookie(browser: httpx.AsyncClient) -> None:
    response = await login_with(browser, "viewer-luna")
    set_cookie = response.headers["set-cookie"]
    attributes = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")}
    assert set_cookie.startswith(f"{COOKIE_NAME}=")
    assert {"httponly", "samesite", "path", "max-age"} <= attributes, set_cookie
    assert "samesite=strict" in set_cookie.lower().replace(" ", ""), set_cookie
    assert response.json()["token"] in set_cookie


async def test_the_cookie_alone_authenticates(browser: httpx.AsyncClient) -> None:
    await login_with(browser, "moderator-luna")
    me = await browser.get("/auth/me")
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "moderator-luna"
    sessions = await browser.get("/sessions")
    assert {s["streamId"] for s in sessions.json()} == {FIXTURE_ROOM}


async def test_logout_clears_the_cookie(browser: httpx.AsyncClient) -> None:
    await login_with(browser, "streamer-luna")
    logout = await browser.post("/auth/logout")
    assert logout.status_code == 204, logout.text
    cleared = logout.headers["set-cookie"].lower()
    assert cleared.startswith(f"{COOKIE_NAME}="), cleared
    assert "max-age=0" in cleared, cleared
    assert "samesite=strict" in cleared.replace(" ", ""), cleared
    assert COOKIE_NAME not in browser.cookies
    assert (await browser.get("/auth/me")).status_code == 401


# -- the login endpoint ------------------------------------------------------------------------
async def test_wrong_password_and_unknown_user_get_the_same_401(world: World) -> None:
    client = world.api.client
    wrong = await client.post(
        "/auth/login", json={"username": "streamer-luna", "password": "not the password"}
    )
    unknown = await client.post(
        "/auth/login", json={"username": "no-such-account", "password": PASSWORD}
    )
    assert (wrong.status_code, unknown.status_code) == (401, 401)
    refusal = {"status_code": 401, "detail": "wrong username or password"}
    assert wrong.json() == refusal
    assert unknown.json() == refusal
    assert "set-cookie" not in wrong.headers
    assert "set-cookie" not in unknown.headers


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b'{"username": "streamer-luna", "password": ', "truncated", id="truncated"),
        pytest.param(b"username=streamer-luna", "malformed", id="not-json"),
        pytest.param(b'{"username": "streamer-luna"}', "`password`", id="no-password"),
        pytest.param(b'{"password": "correct horse battery"}', "`username`", id="no-username"),
        pytest.param(b'["streamer-luna", "correct horse battery"]', "`object`", id="not-an-object"),
        pytest.param(b'{"username": 7, "password": "secret!!"}', "`str`", id="wrong-type"),
        pytest.param(
            b'{"username": "a", "password": "secret!!", "admin": true}', "`admin`", id="extra-field"
        ),
    ],
)
async def test_a_malformed_login_body_is_400_with_the_reason(
    world: World, body: bytes, reason: str
) -> None:
    response = await world.api.client.post(
        "/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error_body(Answer(response.status_code, response.headers, response.text), 400, "login")
    error = response.json()
    assert reason in error["detail"] + json.dumps(error.get("extra")), error
    assert "set-cookie" not in response.headers
