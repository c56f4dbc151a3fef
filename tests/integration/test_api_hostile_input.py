"""What a client sends gets a 4xx with the API's JSON error body, never a 500 (DESIGN §7.2), on
both backends (PostgreSQL refuses NUL in text; SQLite and the file system stop at it):

- a NUL character in a path or query parameter of any route (taken from the OpenAPI
  document, so a new route is covered without editing this file), the WebSocket and the UI's
  static files included: 400;
- JSON nested 1,000 levels deep, or with a NUL in a string, on every route that takes a body
  (and in a WebSocket action frame): 400;
- a cursor naming a row id beyond BIGINT: 400;
- a forward target or webhook URL that reaches an internal address in any spelling (decimal,
  hex, short dotted, IPv4-mapped IPv6, loopback names, a name that resolves to loopback): 422
  naming why, when it is written, not only when it is sent;
- a failed Euler call: 502 saying what failed, without the upstream page.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final
from urllib.parse import quote

import httpx
import msgspec
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from tests.fakes.receiver import Receiver, Reply, Request
from tests.support.api import FIXTURE_ROOM, STREAMER_HANDLE, ApiHarness, fixture_events
from tests.support.http import assert_json_error
from tests.support.overlays import new_sound, new_token
from ttlp.api.accounts import Role
from ttlp.db.queries import EventFilter, encode_cursor
from ttlp.forward.outbound import Outbound, OutboundError
from ttlp.forward.store import ForwardStore

pytestmark = pytest.mark.integration

SESSION: Final = fixture_events()[0].session_id
FIXTURE_USER: Final = "7012345678901234501"
NUL: Final = "a\x00b"
DEEP: Final = 1000
EULER_KEY: Final = "euler-key-for-the-gateway-test"
EULER_SESSION: Final = "tiktok-session-for-the-gateway-test"
GATEWAY_PAGE: Final = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
    + b"<h1>Bad Gateway</h1><p>upstream connect error or disconnect/reset before headers</p>"
    + b"<script>var cf_ray='8f1e2d3c4b5a6978';</script>" * 50
    + b"</body></html>"
)


def deep_json(depth: int = DEEP) -> bytes:
    return b"[" * depth + b"]" * depth


def assert_refused_for(response: httpx.Response, status: int, says: str) -> None:
    body = assert_json_error(response, status)
    assert says in body["detail"], body


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture
async def gateway() -> AsyncIterator[Receiver]:
    """An "Euler API" behind a proxy that answers every call with its HTML error page."""
    with_page = Reply(502, GATEWAY_PAGE, {"content-type": "text/html; charset=utf-8"})
    async with Receiver(lambda _request: with_page) as rx:
        yield rx


@pytest.fixture
def api_env(request: pytest.FixtureRequest) -> dict[str, object]:
    """Euler settings pointing at ``gateway`` for the tests that ask for it."""
    if "gateway" not in request.fixturenames:
        return {}
    gateway: Receiver = request.getfixturevalue("gateway")
    return {"EULER_API_URL": gateway.url, "EULER_API_KEY": EULER_KEY, "SESSION_ID": EULER_SESSION}


@pytest.fixture
async def admin(api: ApiHarness) -> dict[str, str]:
    """The fixture session stored, and a STREAMER of scope * (every route open to it)."""
    await api.seed()
    return await api.login("admin", Role.STREAMER, ["*"])


async def a_rule(api: ApiHarness, headers: dict[str, str]) -> int:
    body = {"name": "log", "scope": STREAMER_HANDLE, "eventType": "CHAT", "action": {"type": "log"}}
    response = await api.client.post("/rules", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def a_target(api: ApiHarness, headers: dict[str, str]) -> int:
    body = {"name": "hook", "url": "https://hooks.example.com/in", "scope": STREAMER_HANDLE}
    response = await api.client.post("/forward/targets", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def known_ids(api: ApiHarness, headers: dict[str, str]) -> dict[str, str]:
    """A value of each path parameter of the API that names something that exists."""
    known = {
        "stream": f"@{STREAMER_HANDLE}",
        "session_id": SESSION,
        "user": FIXTURE_USER,
        "rule_id": str(await a_rule(api, headers)),
        "target_id": str(await a_target(api, headers)),
        "username": "admin",
        "invite_id": str(await an_invite(api, headers)),
        "token_id": str((await new_token(api, headers))["id"]),
        "sound_id": str(await new_sound(api, headers)),
    }
    target_id = int(known["target_id"])
    [event] = fixture_events()[1:2]
    await ForwardStore(api.engine).enqueue([(target_id, event.event_id, "{}")])
    [delivery] = await ForwardStore(api.engine).deliveries(target_id)
    known["delivery_id"] = str(delivery.id)
    return known


async def an_invite(api: ApiHarness, headers: dict[str, str]) -> int:
    body = {"username": f"invited{secrets.token_hex(4)}", "role": "VIEWER", "scopes": ["*"]}
    response = await api.client.post("/accounts/invites", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def operations(api: ApiHarness) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) of every operation in the OpenAPI document."""
    response = await api.client.get("/schema/openapi.json")
    assert response.status_code == 200
    return [
        (method.upper(), path, operation)
        for path, item in response.json()["paths"].items()
        for method, operation in item.items()
        if method in {"get", "put", "post", "delete", "patch"}
    ]


def takes_text(schema: dict[str, Any]) -> bool:
    """Whether a parameter's schema admits a string."""
    kinds = [schema, *schema.get("oneOf", []), *schema.get("anyOf", [])]
    return any(k.get("type") == "string" or "string" in (k.get("type") or []) for k in kinds)


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m[1]], path)


# -- NUL in a URL -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "logged_in"),
    [
        pytest.param(f"/streams/@{STREAMER_HANDLE}/history?q=a%00b", True, id="history-q"),
        pytest.param(f"/sessions/{SESSION}/events?q=%00", True, id="session-events-q"),
        pytest.param(f"/users/{FIXTURE_USER}/events?q=a%00b", True, id="user-events-q"),
        pytest.param("/sessions/%00", True, id="session-path"),
        pytest.param("/sessions/%00", False, id="session-path-anonymous"),
        pytest.param("/ui/app.js%00.css", False, id="ui-asset"),
        pytest.param("/ui/%00", False, id="ui-asset-bare"),
        pytest.param("/health?x=%00", False, id="open-endpoint"),
    ],
)
async def test_a_nul_in_a_reported_url_is_400(
    api: ApiHarness, admin: dict[str, str], path: str, logged_in: bool
) -> None:
    response = await api.client.get(path, headers=admin if logged_in else {})
    assert_refused_for(response, 400, "NUL")


async def test_a_nul_in_any_string_parameter_of_any_route_is_400(
    api: ApiHarness, admin: dict[str, str]
) -> None:
    """Every path and query parameter that takes text, of every operation in the OpenAPI
    document, with the other path parameters naming things that exist."""
    known = await known_ids(api, admin)
    tried: list[str] = []
    for method, path, operation in await operations(api):
        for parameter in operation.get("parameters", []):
            where, name = parameter["in"], parameter["name"]
            if where not in ("path", "query") or not takes_text(parameter.get("schema", {})):
                continue
            values = dict(known)
            params: dict[str, str] = {}
            if where == "path":
                values[name] = quote(NUL)
            else:
                params[name] = NUL
            url = fill(path, values)
            response = await api.client.request(method, url, params=params, headers=admin)
            label = f"{method} {path} ({where} {name})"
            assert response.status_code == 400, f"{label}: {response.status_code} {response.text}"
            assert_refused_for(response, 400, "NUL")
            tried.append(label)
    assert len(tried) >= 10, tried  # the document lists them: none was skipped by mistake
    assert any("query q" in t for t in tried), tried


async def test_a_nul_in_the_websocket_url_is_400(api: ApiHarness, admin: dict[str, str]) -> None:
    moderator = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    base = f"ws://127.0.0.1:{api.port}/streams"
    for url in (f"{base}/%00/ws", f"{base}/{FIXTURE_ROOM}/ws?types=%00", f"{base}/a%00b/ws"):
        with pytest.raises(InvalidStatus) as refused:
            async with ws_connect(url, additional_headers=moderator, open_timeout=10):
                pass
        response = refused.value.response
        assert response.status_code == 400, url
        assert b"NUL" in (response.body or b""), url


# -- over-deep JSON and NUL in JSON strings ---------------------------------------------------
async def body_operations(
    api: ApiHarness, headers: dict[str, str]
) -> list[tuple[str, str, dict[str, str]]]:
    """(method, URL, headers) of every operation that takes a JSON body; /auth/login without
    a token, as a client that has none would send it."""
    known = await known_ids(api, headers)
    out = []
    for method, path, operation in await operations(api):
        if "requestBody" not in operation:
            continue
        out.append((method, fill(path, known), {} if path == "/auth/login" else headers))
    assert {"/auth/login", "/rules/test", f"/users/{FIXTURE_USER}/notes"} <= {u for _, u, _ in out}
    return out


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param(deep_json(), "nested deeper", id="array-1000-deep"),
        pytest.param(b'{"body": ' + deep_json() + b"}", "nested deeper", id="in-a-field"),
        pytest.param(b'{"a": ' * DEEP + b"1" + b"}" * DEEP, "nested deeper", id="objects"),
        pytest.param(deep_json(30_000), "nested deeper", id="as-deep-as-the-size-limit-allows"),
        pytest.param(b'{"body": "a\\u0000b"}', "NUL", id="nul-in-a-value"),
        pytest.param(b'{"a\\u0000": 1}', "NUL", id="nul-in-a-key"),
    ],
)
async def test_an_unusable_json_body_is_400_on_every_route_that_takes_one(
    api: ApiHarness, admin: dict[str, str], body: bytes, says: str
) -> None:
    ops = await body_operations(api, admin)
    for method, url, headers in ops:
        response = await api.client.request(
            method, url, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, f"{method} {url}: {response.status_code}"
        assert_refused_for(response, 400, says)


@pytest.mark.parametrize(
    ("path", "field", "extra"),
    [
        pytest.param("/auth/login", "username", {"password": "x" * 12}, id="login"),
        pytest.param(f"/users/{FIXTURE_USER}/notes", "body", {}, id="note"),
        pytest.param(
            "/rules",
            "name",
            {"scope": "*", "eventType": "CHAT", "action": {"type": "log"}},
            id="rule",
        ),
        pytest.param(
            "/forward/targets",
            "name",
            {"url": "https://hooks.example.com/in", "scope": "*"},
            id="target",
        ),
    ],
)
async def test_a_nul_in_a_json_string_is_400_and_nothing_is_stored(
    api: ApiHarness, admin: dict[str, str], path: str, field: str, extra: dict[str, Any]
) -> None:
    response = await api.client.post(path, json={field: NUL, **extra}, headers=admin)
    assert_refused_for(response, 400, "NUL")
    if path != "/auth/login":  # the listing of what the POST would have added
        assert (await api.client.get(path, headers=admin)).json() == []


async def test_a_rule_too_deep_for_json_logic_is_still_its_422(
    api: ApiHarness, admin: dict[str, str]
) -> None:
    """The body limit sits above what a valid document needs: a condition one level beyond
    JSON Logic's limit reaches the rule checks, which name the problem."""
    condition: Any = True
    for _ in range(33):
        condition = {"!": [condition]}
    rule = {"name": "deep", "scope": "*", "eventType": "CHAT", "condition": condition}
    response = await api.client.post(
        "/rules/test", json={"rule": {**rule, "action": {"type": "log"}}}, headers=admin
    )
    assert_refused_for(response, 422, "nested deeper than 32")


async def test_a_deep_websocket_action_frame_is_answered_400_and_the_socket_goes_on(
    api: ApiHarness, admin: dict[str, str]
) -> None:
    url = f"ws://127.0.0.1:{api.port}/streams/{FIXTURE_ROOM}/ws"
    async with ws_connect(url, additional_headers=admin) as socket:
        for frame in ("[" * 2000 + "]" * 2000, '{"type": "action", "ref": "a\\u0000"}'):
            await socket.send(frame)
            while True:
                answer = msgspec.json.decode(await socket.recv())
                if answer["type"] == "action-result":
                    break
            assert (answer["ok"], answer["status"]) == (False, 400), answer
        await socket.send('{"type": "action", "action": "ban", "userId": "1", "ref": "r"}')
        while (answer := msgspec.json.decode(await socket.recv()))["type"] != "action-result":
            pass
        assert answer["ref"] == "r"  # still answering (503: no Euler configured here)


# -- cursors ------------------------------------------------------------------------------------
async def test_a_cursor_beyond_the_id_range_is_400(api: ApiHarness, admin: dict[str, str]) -> None:
    huge = 2**70
    history = encode_cursor(huge, "asc", EventFilter(session_id=SESSION).fingerprint())
    response = await api.client.get(
        f"/sessions/{SESSION}/events", params={"cursor": history}, headers=admin
    )
    assert_refused_for(response, 400, "cursor")
    rule_id = await a_rule(api, admin)
    executions = encode_cursor(huge, "desc", f"rule-{rule_id}")
    response = await api.client.get(
        f"/rules/{rule_id}/executions", params={"cursor": executions}, headers=admin
    )
    assert_refused_for(response, 400, "cursor")


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        pytest.param("/dlq?before=18446744073709551616-0", {}, id="dlq-before"),
        pytest.param("/dlq?before=1-99999999999999999999", {}, id="dlq-before-seq"),
        pytest.param(
            f"/streams/{FIXTURE_ROOM}/events",
            {"Last-Event-ID": "18446744073709551616-0"},
            id="sse-last-event-id",
        ),
    ],
)
async def test_a_stream_entry_id_beyond_redis_range_is_400(
    api: ApiHarness, admin: dict[str, str], path: str, headers: dict[str, str]
) -> None:
    response = await api.client.get(path, headers={**admin, **headers})
    assert_json_error(response, 400)


# -- internal addresses in every spelling, refused when a URL is written -------------------------
INTERNAL_URLS: Final = [
    pytest.param("http://2130706433/hook", "loopback", id="decimal"),
    pytest.param("http://0x7f000001/hook", "loopback", id="hex"),
    pytest.param("http://0x7f.1/hook", "loopback", id="hex-short"),
    pytest.param("http://0177.0.0.1/hook", "IPv4", id="octal"),
    pytest.param("http://017700000001/hook", "loopback", id="octal-whole"),
    pytest.param("http://127.1/hook", "loopback", id="short-dotted"),
    pytest.param("http://127.0.0.1./hook", "loopback", id="trailing-dot"),
    pytest.param("http://[::ffff:127.0.0.1]/hook", "loopback", id="ipv4-mapped"),
    pytest.param("http://[::ffff:7f00:1]/hook", "loopback", id="ipv4-mapped-hex"),
    pytest.param("http://[64:ff9b::a9fe:a9fe]/latest", "metadata", id="nat64-metadata"),
    pytest.param("http://[2002:a00:1::1]/hook", "private", id="6to4-private"),
    pytest.param("http://0/hook", "unspecified", id="zero"),
    pytest.param("http://localhost/hook", "loopback", id="localhost"),
    pytest.param("http://ip6-localhost/hook", "loopback", id="ip6-localhost"),
    pytest.param("http://ip6-loopback:8080/hook", "loopback", id="ip6-loopback"),
    pytest.param("http://LOCALHOST./hook", "loopback", id="localhost-upper-dot"),
    pytest.param("http://hooks.loopback.test/hook", "loopback", id="resolves-to-loopback"),
    pytest.param("http://mixed.test/hook", "10.0.0.9", id="resolves-to-private-and-public"),
    pytest.param("http://metadata.test/x", "metadata", id="resolves-to-metadata"),
]
RESOLVES: Final = {
    "hooks.loopback.test": ["127.0.0.1"],
    "mixed.test": ["93.184.216.34", "10.0.0.9"],
    "metadata.test": ["169.254.169.254"],
    "hooks.example.com": ["93.184.216.34"],
}


def fake_dns(api: ApiHarness) -> None:
    """The app's outbound rules resolve names through a table instead of DNS."""

    async def resolve(host: str, _port: int) -> list[str]:
        if host not in RESOLVES:
            raise OutboundError(f"cannot resolve {host}")
        return RESOLVES[host]

    api.app.state.api.outbound = Outbound(api.ctx.settings.outbound, resolver=resolve)


Write = Callable[[ApiHarness, dict[str, str], str], Awaitable[httpx.Response]]


async def write_target(api: ApiHarness, headers: dict[str, str], url: str) -> httpx.Response:
    body = {"name": "hook", "url": url, "scope": "*"}
    return await api.client.post("/forward/targets", json=body, headers=headers)


async def replace_target(api: ApiHarness, headers: dict[str, str], url: str) -> httpx.Response:
    target_id = await a_target(api, headers)
    body = {"name": "hook", "url": url, "scope": "*"}
    return await api.client.put(f"/forward/targets/{target_id}", json=body, headers=headers)


async def write_rule(api: ApiHarness, headers: dict[str, str], url: str) -> httpx.Response:
    body = {
        "name": "hook",
        "scope": "*",
        "eventType": "GIFT",
        "action": {"type": "webhook", "url": url},
    }
    return await api.client.post("/rules", json=body, headers=headers)


async def try_rule(api: ApiHarness, headers: dict[str, str], url: str) -> httpx.Response:
    rule = {"name": "hook", "scope": "*", "eventType": "GIFT"}
    body = {"rule": {**rule, "action": {"type": "webhook", "url": url}}}
    return await api.client.post("/rules/test", json=body, headers=headers)


WRITES: Final = [
    pytest.param(write_target, "url", id="target"),
    pytest.param(replace_target, "url", id="target-replace"),
    pytest.param(write_rule, "action.url", id="rule"),
    pytest.param(try_rule, "action.url", id="rule-test"),
]


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(("url", "why"), INTERNAL_URLS)
@pytest.mark.parametrize(("write", "field"), WRITES)
async def test_an_internal_destination_in_any_spelling_is_refused_when_written(
    api: ApiHarness, admin: dict[str, str], write: Write, field: str, url: str, why: str
) -> None:
    fake_dns(api)
    response = await write(api, admin, url)
    body = assert_json_error(response, 422)
    assert body["detail"].startswith(f"{field}: "), body
    assert why in body["detail"], body


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    ("url", "why"),
    [
        pytest.param("http://xn--/hook", "invalid URL", id="bad-punycode"),
        pytest.param("http://xn--a/hook", "invalid URL", id="bad-punycode-label"),
        pytest.param("gopher://hooks.example.com/", "http and https", id="scheme"),
        pytest.param("http://[::1/hook", "invalid URL", id="unclosed-bracket"),
    ],
)
async def test_a_malformed_url_is_422_naming_why(
    api: ApiHarness, admin: dict[str, str], url: str, why: str
) -> None:
    for write in (write_target, write_rule):
        body = assert_json_error(await write(api, admin, url), 422)
        assert why in body["detail"], body


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_public_and_unresolvable_destinations_are_accepted_when_written(
    api: ApiHarness, admin: dict[str, str]
) -> None:
    """A name that does not resolve yet is checked again at every send, not refused now."""
    fake_dns(api)
    for url in ("https://hooks.example.com/in", "https://not-yet.example.org/in"):
        response = await write_target(api, admin, url)
        assert response.status_code == 201, response.text


# -- Euler failing --------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("action", ["timeout", "ban"])
async def test_a_failed_euler_call_is_502_naming_the_failure_not_the_upstream_page(
    api: ApiHarness, gateway: Receiver, admin: dict[str, str], action: str
) -> None:
    response = await api.client.post(
        f"/actions/{action}", json={"streamId": FIXTURE_ROOM, "userId": FIXTURE_USER}, headers=admin
    )
    detail = assert_json_error(response, 502)["detail"]
    assert "HTTP 502" in detail
    assert "Bad Gateway" in detail
    assert "<" not in detail
    assert "cf_ray" not in detail
    assert len(detail) < 200, detail
    assert EULER_KEY not in detail
    assert EULER_SESSION not in detail
    [request] = gateway.requests
    assert isinstance(request, Request)
    assert request.headers.get("x-api-key") == EULER_KEY  # it did reach the "Euler API"
