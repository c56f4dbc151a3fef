"""The api's operational behaviour: rate limits, body limits, error shape, security headers,
metrics, health while Redis or PostgreSQL go away and come back, and the OpenAPI contract
(schemathesis) (DESIGN §7.2, §7.3, §9)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.support.api import (
    STREAMER_HANDLE,
    ApiHarness,
    api_settings,
    fixture_events,
    harness,
)
from tests.support.http import assert_json_error, assert_security_headers
from tests.support.overlays import new_sound, new_token
from tests.support.wait import wait_for
from ttlp.api.accounts import Role
from ttlp.bus.keys import GROUP_STORAGE, Keys
from ttlp.bus.redis import RedisBus
from ttlp.db.engine import create_engine
from ttlp.forward.store import ForwardStore

pytestmark = pytest.mark.integration

FIXTURE_USER = "7012345678901234501"


# -- rate limits -------------------------------------------------------------------------------
# A minute window makes exact counts deterministic (60 s from the first request); a second
# window lets the recovery tests wait it out. Litestar's windows start at the first request
# and end on a whole second, so a one-second window can be shorter than a second: the
# recovery tests send until limited instead of counting.
IP_LIMIT = {"API_RATE_LIMIT_IP": 3, "API_RATE_LIMIT_WINDOW": "minute"}
ACCOUNT_LIMIT = {"API_RATE_LIMIT_ACCOUNT": 3, "API_RATE_LIMIT_WINDOW": "minute"}


async def until_limited(send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """Send until a 429 (a few per second are allowed; this sends far faster)."""
    for _ in range(500):
        response = await send()
        if response.status_code == 429:
            return response
        assert response.status_code == 200, response.text
    raise AssertionError("never rate limited")


def assert_too_many(response: httpx.Response, window_s: int) -> float:
    body = assert_json_error(response, 429)
    assert "too many" in body["detail"].lower() or "slow down" in body["detail"].lower()
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= window_s
    assert response.headers["RateLimit-Limit"] == "3"
    return float(retry_after)


@pytest.mark.parametrize("api_env", [IP_LIMIT])
async def test_the_per_ip_limit_counts_every_request_from_the_address(api: ApiHarness) -> None:
    for _ in range(3):
        assert (await api.client.get("/health")).status_code == 200
    assert_too_many(await api.client.get("/health"), 60)
    # Every path from that address, before authentication: bad tokens are limited too.
    assert_too_many(await api.client.get("/sessions"), 60)
    assert_too_many(await api.client.get("/sessions", headers={"Authorization": "Bearer x"}), 60)
    assert_too_many(await api.client.post("/auth/login", json={"username": "a"}), 60)


@pytest.mark.parametrize("api_env", [{**IP_LIMIT, "API_RATE_LIMIT_WINDOW": "second"}])
async def test_the_per_ip_limit_recovers_after_its_window(api: ApiHarness) -> None:
    retry_after = assert_too_many(await until_limited(lambda: api.client.get("/health")), 1)
    await asyncio.sleep(retry_after + 0.2)
    assert (await api.client.get("/health")).status_code == 200


@pytest.mark.parametrize("api_env", [ACCOUNT_LIMIT])
async def test_the_per_account_limit_is_per_account(api: ApiHarness) -> None:
    await api.seed()
    luna = await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    for _ in range(3):
        assert (await api.client.get("/sessions", headers=luna)).status_code == 200
    assert_too_many(await api.client.get(f"/users/{FIXTURE_USER}", headers=luna), 60)
    # Another account from the same address, and anonymous requests, have their own counts.
    for _ in range(3):
        assert (await api.client.get("/sessions", headers=mod)).status_code == 200
    for _ in range(5):
        assert (await api.client.get("/health")).status_code == 200
    assert_too_many(await api.client.get("/sessions", headers=mod), 60)


@pytest.mark.parametrize("api_env", [{**ACCOUNT_LIMIT, "API_RATE_LIMIT_WINDOW": "second"}])
async def test_the_per_account_limit_recovers_after_its_window(api: ApiHarness) -> None:
    luna = await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])
    limited = await until_limited(lambda: api.client.get("/sessions", headers=luna))
    retry_after = assert_too_many(limited, 1)
    await asyncio.sleep(retry_after + 0.2)
    assert (await api.client.get("/sessions", headers=luna)).status_code == 200


# -- request bodies ----------------------------------------------------------------------------
@pytest.mark.parametrize("api_env", [{"API_MAX_BODY_BYTES": 1000}])
async def test_a_body_over_the_limit_is_refused_with_413(api: ApiHarness) -> None:
    await api.seed()
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    path = f"/users/{FIXTURE_USER}/notes"
    big = {"body": "x" * 2000}
    assert_json_error(await api.client.post(path, json=big, headers=mod), 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"body": "'
        for _ in range(40):
            yield b"y" * 100
        yield b'"}'

    chunked = await api.client.post(
        path, content=chunks(), headers={**mod, "Content-Type": "application/json"}
    )
    assert_json_error(chunked, 413)
    small = await api.client.post(path, json={"body": "x" * 500}, headers=mod)
    assert small.status_code == 201, small.text


async def test_malformed_json_is_a_400_with_a_reason(api: ApiHarness) -> None:
    await api.seed()
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    headers = {**mod, "Content-Type": "application/json"}
    path = f"/users/{FIXTURE_USER}/notes"
    for payload in (b'{"body": ', b"not json", b'{"body": "a"} trailing', b"\xff"):
        response = await api.client.post(path, content=payload, headers=headers)
        body = assert_json_error(response, 400)
        assert "not valid JSON" in body["detail"], (payload, body)
    # Valid JSON of the wrong shape: the reason names what was expected.
    wrong = assert_json_error(
        await api.client.post(path, content=b'["body"]', headers=headers), 400
    )
    assert "Expected `object`" in str(wrong["extra"]), wrong
    empty = assert_json_error(await api.client.post(path, content=b"", headers=headers), 400)
    assert "a JSON body is required" in str(empty["extra"]), empty
    login = await api.client.post(
        "/auth/login", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert_json_error(login, 400)


# -- error shape and headers -------------------------------------------------------------------
async def test_every_response_carries_the_security_headers(api: ApiHarness) -> None:
    await api.seed()
    luna = await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])
    ok = await api.client.get("/sessions", headers=luna)
    assert ok.status_code == 200
    assert_security_headers(ok)
    assert_security_headers(await api.client.get("/health"))
    assert_json_error(await api.client.get("/sessions"), 401)
    assert_json_error(await api.client.get("/sessions", headers={"Authorization": "Bearer x"}), 401)
    assert_json_error(await api.client.get("/no/such/path", headers=luna), 404)
    assert_json_error(await api.client.get("/sessions?limit=nope", headers=luna), 400)
    assert_json_error(await api.client.delete("/sessions", headers=luna), 405)


async def test_an_unexpected_error_is_a_500_without_details(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    luna = await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr(api.app.state.api.queries, "list_sessions", broken)
    response = await api.client.get("/sessions", headers=luna)
    body = assert_json_error(response, 500)
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert body["detail"] == "internal error (logged on the server)"


# -- metrics -----------------------------------------------------------------------------------
def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample, or None when it is absent."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    return None


async def test_metrics_are_prometheus_text(api: ApiHarness) -> None:
    group = api.keys.group(GROUP_STORAGE)
    await api.bus.ensure_group(api.keys.events, group)
    for n in range(3):
        await api.bus.publish(api.keys.events, {"event": f"not read yet {n}"})
    for n in range(2):
        await api.bus.publish(api.keys.dlq, {"reason": "PARSE_ERROR", "n": str(n)})
    for _ in range(2):
        assert (await api.client.get("/health")).status_code == 200
    assert (await api.client.get("/sessions")).status_code == 401

    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in ("ttlp_api_requests", "ttlp_group_lag", "ttlp_dlq_size"):
        assert f"# TYPE {name}" in text, name
    health = sample(text, "ttlp_api_requests_total", route="/health", method="GET", status="200")
    assert health is not None
    assert health >= 2
    assert sample(text, "ttlp_api_requests_total", route="/sessions", status="401") == 1
    assert sample(text, "ttlp_group_lag", stream=api.keys.events, group=group) == 3
    assert sample(text, "ttlp_dlq_size") == 2
    assert_security_headers(response)


# -- health while dependencies come and go -----------------------------------------------------
class TcpProxy:
    """127.0.0.1:<port> → a real server, which a test can take away (``close``: refuse new
    connections and cut existing ones), bring back (``open``, same port) or freeze (accept
    and forward nothing: a server that hangs)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._thawed = asyncio.Event()
        self._thawed.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        """Keep accepting connections and reading, but forward nothing (until ``thaw``)."""
        self._thawed.clear()

    def thaw(self) -> None:
        self._thawed.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(65536):
                await self._thawed.wait()
                sink.write(data)
                await sink.drain()
        sink.transport.abort()


@pytest.fixture
async def proxied_api(
    postgresql_database_url: str,
    redis_url: str,
    redis_cleanup: None,
    key_prefix: str,
    tmp_path: Path,
) -> AsyncIterator[tuple[ApiHarness, TcpProxy, TcpProxy]]:
    """The api on Redis and PostgreSQL through proxies the test controls."""
    redis_target = make_url(redis_url.replace("redis://", "postgresql://"))
    pg_target = make_url(postgresql_database_url)
    redis_proxy = TcpProxy(redis_target.host or "127.0.0.1", redis_target.port or 6379)
    pg_proxy = TcpProxy(pg_target.host or "127.0.0.1", pg_target.port or 5432)
    await redis_proxy.open()
    await pg_proxy.open()
    proxied_redis = f"redis://127.0.0.1:{redis_proxy.port}/{redis_target.database or 0}"
    proxied_pg = pg_target.set(host="127.0.0.1", port=pg_proxy.port).render_as_string(
        hide_password=False
    )
    settings = api_settings(tmp_path, REDIS_URL=proxied_redis, DATABASE_URL=proxied_pg)
    bus = RedisBus(proxied_redis, maxlen=1000)
    engine = create_engine(proxied_pg)
    try:
        async for h in harness(settings, bus, engine, Keys(key_prefix)):
            yield h, redis_proxy, pg_proxy
    finally:
        await redis_proxy.close()
        await pg_proxy.close()
        await bus.close()
        await engine.dispose()


async def health(api: ApiHarness) -> httpx.Response:
    response = await api.client.get("/health")
    assert response.status_code in (200, 503), response.text
    body = response.json()
    assert set(body) == {"status", "redis", "postgres", "uptime"}
    assert_security_headers(response)
    return response


async def until_health(api: ApiHarness, status: int) -> dict[str, Any]:
    last: list[dict[str, Any]] = []

    async def probe() -> bool:
        response = await health(api)
        last[:] = [response.json()]
        return response.status_code == status

    await wait_for(probe, what=f"/health {status} (last: {last})", poll=0.1)
    return last[0]


async def test_health_names_the_dependency_that_is_down_and_recovers(
    proxied_api: tuple[ApiHarness, TcpProxy, TcpProxy],
) -> None:
    api, redis_proxy, pg_proxy = proxied_api
    body = await until_health(api, 200)
    assert body | {"uptime": 0} == {"status": "ok", "redis": "ok", "postgres": "ok", "uptime": 0}

    await redis_proxy.close()
    body = await until_health(api, 503)
    assert body["status"] == "degraded"
    assert body["redis"].startswith("down")
    assert body["postgres"] == "ok"
    await redis_proxy.open()
    await until_health(api, 200)

    await pg_proxy.close()
    body = await until_health(api, 503)
    assert body["postgres"].startswith("down")
    assert body["redis"] == "ok"
    await pg_proxy.open()
    body = await until_health(api, 200)
    assert body["status"] == "ok"

    await redis_proxy.close()
    await pg_proxy.close()
    body = await until_health(api, 503)
    assert body["redis"].startswith("down")
    assert body["postgres"].startswith("down")
    assert "127.0.0.1" not in str(body)  # a reason, not connection details
    await redis_proxy.open()
    await pg_proxy.open()
    await until_health(api, 200)
    # The api serves data again, not only /health.
    luna = await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])
    assert (await api.client.get("/sessions", headers=luna)).status_code == 200


async def test_health_answers_when_a_dependency_hangs(
    proxied_api: tuple[ApiHarness, TcpProxy, TcpProxy],
) -> None:
    """A server that accepts and never answers: /health reports it after its own timeout,
    instead of hanging with it (the client here would wait far longer)."""
    api, redis_proxy, pg_proxy = proxied_api
    await until_health(api, 200)
    redis_proxy.freeze()
    await pg_proxy.close()  # cut the pooled connections: new ones hang, accepted, never answered
    pg_proxy.freeze()
    await pg_proxy.open()
    response = await health(api)
    assert response.status_code == 503
    body = response.json()
    assert "no answer" in body["redis"], body
    assert "no answer" in body["postgres"], body
    redis_proxy.thaw()
    pg_proxy.thaw()
    await until_health(api, 200)


# -- the OpenAPI contract ----------------------------------------------------------------------
STREAMING = (
    "/streams/{stream}/events",  # SSE: answers forever, checked in the feed tests
    "/overlay/feed",  # the overlays' SSE, checked in test_overlays_api
)
CROSS_PARAMETER_RULES = (
    "/analytics",  # exactly one of sessionId/streamId: not in OpenAPI
    # A rule's condition (JSON Logic) and template are checked beyond their schema (422), and
    # a dry run takes exactly one of rule/ruleId.
    "/rules",
    "/rules/test",
    "/rules/{rule_id}",
    # A target's URL is checked beyond its schema (outbound safety: 422).
    "/forward/targets",
    "/forward/targets/{target_id}",
    # First-run setup answers 410 to any body once an account exists (the test's owner does).
    "/auth/setup",
    # Each of ``ids`` must be an entry id (400): Litestar leaves a list item's pattern out of
    # the document (so does /forward/targets' eventTypes).
    "/dlq/retry",
    "/dlq/purge",
    # An overlay's sounds must be the streamer's own uploads (400 naming the field), and an
    # upload is checked by its bytes (415): neither is in the schema.
    "/overlays/tokens/{token_id}/options",
    "/overlays/sounds",
    # Exactly one of userId/uniqueId (400): not in OpenAPI.
    "/gdpr/erasures",
)
EXAMPLES_PER_OPERATION = 20


def run_cases(strategy: Any, base_url: str, headers: dict[str, str], excluded: list[Any]) -> None:
    """Call the api with the cases of ``strategy`` (bounded, deterministic) and validate each
    response against the schema; raises on the first failing case."""
    from hypothesis import HealthCheck, Phase, given, settings

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def check(case: Any) -> None:
        case.call_and_validate(
            base_url=base_url, headers=headers, timeout=30, excluded_checks=excluded
        )

    check()


def conformance_failures(
    doc: dict[str, Any], base_url: str, headers: dict[str, str], known: dict[str, str]
) -> list[str]:
    """Run schemathesis over every operation of ``doc``, twice: with generated path ids (the
    unknown-resource paths) and with ``known`` ones (the seeded session, streamer, user: the
    query code). The failures, one paragraph each."""
    import schemathesis
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    schema = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in STREAMING:
            continue
        names = re.findall(r"\{(\w+)\}", operation.path)
        passes: list[tuple[str, dict[str, str], list[Any]]] = [
            (
                "generated ids",
                {},
                [positive_data_acceptance] if operation.path in CROSS_PARAMETER_RULES else [],
            )
        ]
        if names:
            # Real ids: a schema-valid cursor or type list can still be refused (400) there.
            passes.append(("known ids", {n: known[n] for n in names}, [positive_data_acceptance]))
        for label, path_parameters, excluded in passes:
            strategy = operation.as_strategy(path_parameters=path_parameters or None)
            try:
                run_cases(strategy, base_url, headers, excluded)
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a group
                failures.append(f"{operation.label} ({label}): {exc}")
    return failures


async def a_rule(api: ApiHarness, headers: dict[str, str]) -> int:
    rule = {
        "name": "log chats",
        "scope": STREAMER_HANDLE,
        "eventType": "CHAT",
        "action": {"type": "log"},
    }
    response = await api.client.post("/rules", json=rule, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def a_target(api: ApiHarness, headers: dict[str, str]) -> int:
    target = {"name": "receiver", "url": "https://receiver.example.com/hook", "scope": "*"}
    response = await api.client.post("/forward/targets", json=target, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def a_delivery(api: ApiHarness, target_id: int) -> int:
    """A pending delivery of the target (``/forward/targets/{id}/deliveries/{delivery_id}``)."""
    event = fixture_events()[1]
    await ForwardStore(api.engine).enqueue([(target_id, event.event_id, "{}")])
    [delivery] = await ForwardStore(api.engine).deliveries(target_id)
    return delivery.id


async def an_invite(api: ApiHarness, headers: dict[str, str]) -> int:
    invite = {"username": "invited", "role": "VIEWER", "scopes": ["*"]}
    response = await api.client.post("/accounts/invites", json=invite, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def a_dead_letter(api: ApiHarness) -> str:
    """A normalizer letter of the fixture room (``GET /dlq/{entry_id}``)."""
    frame = '{"schemaVersion":"raw.v1","streamId":"7441234567890123456","data":"{"}'
    letter = {"stage": "normalizer", "reason": "PARSE_ERROR", "error": "not JSON"}
    return await api.bus.publish(api.keys.dlq, {**letter, "payload": frame})


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_api_conforms_to_its_openapi_schema(api: ApiHarness) -> None:
    await api.seed()
    headers = await api.login("owner", Role.STREAMER, ["*"])
    response = await api.client.get("/schema/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    known = {
        "session_id": fixture_events()[0].session_id,
        "stream": f"@{STREAMER_HANDLE}",
        "user": FIXTURE_USER,
        "rule_id": str(await a_rule(api, headers)),
        "target_id": str(await a_target(api, headers)),
        "username": "owner",  # the last owner: every change of it is refused (409)
        "invite_id": str(await an_invite(api, headers)),
        "entry_id": await a_dead_letter(api),
        "token_id": str((await new_token(api, headers))["id"]),
        "sound_id": str(await new_sound(api, headers)),
    }
    known["delivery_id"] = str(await a_delivery(api, int(known["target_id"])))
    failures = await asyncio.to_thread(conformance_failures, doc, api.url, headers, known)
    assert not failures, "\n\n".join(failures)
