"""Overlays, the server half (DESIGN §7.5): tokens and who may manage them, options (defaults,
merge, validation), the overlay page's headers, ``/overlay/state`` of every kind, the overlay
feed (the token's streamer only, live unless previewed, its notices, revocation reaching open
feeds on this replica and on another, resume) and alert sounds; on both backends.

What an overlay should count is computed from the events themselves (``tests.support.
overlays``), never written down; feeds are awaited (subscribed, ended), never slept for.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import select, update

from tests.support.api import (
    OTHER_HANDLE,
    STREAMER_HANDLE,
    ApiHarness,
    fixture_events,
    harness,
    other_stream_events,
)
from tests.support.http import assert_json_error
from tests.support.overlays import (
    NOT_SOUNDS,
    SOUNDS,
    document,
    expected_goal,
    expected_leaderboard,
    new_sound,
    new_token,
    of_type,
    session_copy,
)
from tests.support.sse import Message, SseReader
from tests.support.wait import wait_for
from ttlp.api.accounts import Role
from ttlp.api.overlays import hub as hub_module
from ttlp.api.overlays import limits
from ttlp.api.overlays.audio import MAX_SOUND_BYTES
from ttlp.api.overlays.hub import OverlayHub
from ttlp.api.routes.overlay import KINDS, OVERLAY_CSP
from ttlp.contracts.events import UnifiedEvent
from ttlp.db.tables import events as events_table
from ttlp.db.tables import overlay_sounds, overlay_tokens

pytestmark = pytest.mark.integration

WAIT_S = 60.0
REVOKED_WITHIN_S = 15.0
"""A generous bound on "within seconds" for a loaded 2-core machine (the poll is 2 s)."""

# The options as the contract spells its defaults (the spec, not a result).
DEFAULT_OPTIONS: dict[str, Any] = {
    "common": {"bannedWords": []},
    "alerts": {
        "kinds": {"follow": True, "share": True, "subscribe": True, "gift": True},
        "minCoins": 0,
        "durationMs": 5000,
        "sounds": {"follow": None, "share": None, "subscribe": None, "gift": None},
        "volume": 0.8,
        "tts": {
            "alerts": False,
            "chat": False,
            "maxLength": 200,
            "perUserSeconds": 30,
            "voice": None,
            "rate": 1.0,
        },
        "skipKey": "Escape",
    },
    "chat": {"maxMessages": 20, "showBadges": True, "emoteImages": True, "fontSize": 18},
    "leaderboard": {"scope": "session", "count": 5},
    "goal": {"metric": "likes", "target": 1000, "title": ""},
    "ticker": {"kinds": ["FOLLOW", "GIFT"], "count": 10, "speedPxPerS": 60},
}


# -- helpers ---------------------------------------------------------------------------------------
async def owner(api: ApiHarness) -> dict[str, str]:
    return await api.login("owner", Role.STREAMER, ["*"])


async def streamer(api: ApiHarness) -> dict[str, str]:
    return await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])


@contextlib.asynccontextmanager
async def another_replica(api: ApiHarness) -> AsyncIterator[ApiHarness]:
    """A second api process (app, server, client) on the same database and bus."""
    async for replica in harness(api.ctx.settings, api.bus, api.engine, api.keys):
        yield replica


def hub_of(api: ApiHarness) -> OverlayHub:
    hub = api.app.state.api.overlays
    assert isinstance(hub, OverlayHub)
    return hub


async def token_row(api: ApiHarness, token_id: int) -> Any:
    async with api.engine.connect() as conn:
        return (
            await conn.execute(select(overlay_tokens).where(overlay_tokens.c.id == token_id))
        ).one()


async def sound_rows(api: ApiHarness) -> list[Any]:
    async with api.engine.connect() as conn:
        return list((await conn.execute(select(overlay_sounds))).all())


async def upload(
    api: ApiHarness,
    headers: dict[str, str],
    data: bytes,
    *,
    filename: str = "sound.mp3",
    declared: str = "audio/mpeg",
    name: str = "ding",
    streamer: str = STREAMER_HANDLE,
) -> httpx.Response:
    return await api.client.post(
        "/overlays/sounds",
        files={"file": (filename, data, declared)},
        data={"name": name, "streamer": streamer},
        headers=headers,
    )


async def put_options(
    api: ApiHarness, headers: dict[str, str], token_id: int, body: Any
) -> httpx.Response:
    return await api.client.put(f"/overlays/tokens/{token_id}/options", json=body, headers=headers)


async def state(api: ApiHarness, token: str, kind: str, preview: bool = False) -> dict[str, Any]:
    params = {"token": token, "kind": kind, **({"preview": "1"} if preview else {})}
    response = await api.client.get("/overlay/state", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@contextlib.asynccontextmanager
async def overlay_feed(
    api: ApiHarness,
    token: str,
    *,
    preview: bool = False,
    watched: int = 1,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> AsyncIterator[SseReader]:
    """An open overlay feed, entered once the server watches it (``watched`` in all)."""
    params = {"token": token, **({"preview": "1"} if preview else {}), **(query or {})}
    async with api.client.stream(
        "GET", "/overlay/feed", params=params, headers=headers or {}
    ) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        hub = hub_of(api)
        await wait_for(lambda: hub.watched() == watched, what="overlay feed watched", poll=0.02)
        yield SseReader(response)


async def publish(api: ApiHarness, events: list[UnifiedEvent]) -> list[str]:
    return [await api.publish(event) for event in events]


def event_ids(messages: list[Message]) -> list[str]:
    return [m.json["eventId"] for m in messages if m.event == "event"]


def sentinel(n: int = 0) -> UnifiedEvent:
    """A live event of the streamer that nothing else is: the end of what a test sends."""
    chat = next(e for e in fixture_events() if document(e)["eventType"] == "CHAT")
    return msgspec.structs.replace(chat, event_id=f"{n:064x}")


# -- tokens and who may manage them ----------------------------------------------------------------
async def test_a_streamer_creates_lists_and_revokes_a_token_of_its_streamer(
    api: ApiHarness,
) -> None:
    luna = await streamer(api)
    created = await new_token(api, luna, streamer="@Luna.Beats", name="  OBS main  ")
    assert set(created) == {
        "id",
        "name",
        "streamer",
        "token",
        "createdAt",
        "revokedAt",
        "lastUsedAt",
        "optionsVersion",
    }
    assert created["streamer"] == STREAMER_HANDLE
    assert created["name"] == "OBS main"
    assert hub_module.TOKEN_RE.match(created["token"])
    assert created["revokedAt"] is None
    assert created["optionsVersion"] == 0
    row = await token_row(api, created["id"])
    assert (row.token, row.streamer, row.created_by) == (created["token"], STREAMER_HANDLE, "luna")
    assert row.revoked_at is None

    listed = (await api.client.get("/overlays/tokens", headers=luna)).json()
    assert listed == [created]

    response = await api.client.delete(f"/overlays/tokens/{created['id']}", headers=luna)
    assert response.status_code == 204, response.text
    assert (await token_row(api, created["id"])).revoked_at is not None
    [after] = (await api.client.get("/overlays/tokens", headers=luna)).json()
    assert after["revokedAt"] is not None
    # Revoking again keeps the first time.
    assert (
        await api.client.delete(f"/overlays/tokens/{created['id']}", headers=luna)
    ).status_code == 204
    [again] = (await api.client.get("/overlays/tokens", headers=luna)).json()
    assert again["revokedAt"] == after["revokedAt"]


async def test_two_tokens_never_share_a_value(api: ApiHarness) -> None:
    luna = await streamer(api)
    tokens = {(await new_token(api, luna))["token"] for _ in range(5)}
    assert len(tokens) == 5


ACCOUNTS: dict[str, tuple[Role, list[str]] | None] = {
    "streamer in scope": (Role.STREAMER, [STREAMER_HANDLE]),
    "streamer out of scope": (Role.STREAMER, [OTHER_HANDLE]),
    "moderator": (Role.MODERATOR, [STREAMER_HANDLE]),
    "viewer": (Role.VIEWER, [STREAMER_HANDLE]),
    "anonymous": None,
}
# endpoint → status per account, in the order of ACCOUNTS.
EXPECTED: dict[str, tuple[int, int, int, int, int]] = {
    "list tokens": (200, 200, 200, 403, 401),
    "create token": (201, 403, 403, 403, 401),
    "revoke token": (204, 403, 403, 403, 401),
    "get options": (200, 403, 403, 403, 401),
    "put options": (200, 403, 403, 403, 401),
    "skip": (204, 403, 204, 403, 401),
    "list sounds": (200, 200, 403, 403, 401),
    "upload sound": (201, 403, 403, 403, 401),
    "delete sound": (204, 403, 403, 403, 401),
}


@pytest.mark.parametrize("who", list(ACCOUNTS))
async def test_who_may_manage_overlays(api: ApiHarness, who: str) -> None:
    admin = await owner(api)
    account = ACCOUNTS[who]
    headers = {} if account is None else await api.login("someone", *account)
    column = list(ACCOUNTS).index(who)
    token = await new_token(api, admin)
    sound = await new_sound(api, admin)
    ogg, _ = SOUNDS["a.ogg"]
    calls: dict[str, tuple[str, str, dict[str, Any]]] = {
        "list tokens": ("GET", "/overlays/tokens", {}),
        "create token": (
            "POST",
            "/overlays/tokens",
            {"json": {"name": "mine", "streamer": STREAMER_HANDLE}},
        ),
        "revoke token": ("DELETE", f"/overlays/tokens/{token['id']}", {}),
        "get options": ("GET", f"/overlays/tokens/{token['id']}/options", {}),
        "put options": (
            "PUT",
            f"/overlays/tokens/{token['id']}/options",
            {"json": {"goal": {"target": 5}}},
        ),
        "skip": ("POST", f"/overlays/tokens/{token['id']}/skip", {}),
        "list sounds": ("GET", "/overlays/sounds", {}),
        "upload sound": (
            "POST",
            "/overlays/sounds",
            {
                "files": {"file": ("x.ogg", ogg, "audio/ogg")},
                "data": {"name": "x", "streamer": STREAMER_HANDLE},
            },
        ),
        "delete sound": ("DELETE", f"/overlays/sounds/{sound}", {}),
    }
    # Revoking and deleting last: the other calls need the token and the sound.
    for name in [
        *(n for n in calls if n not in ("revoke token", "delete sound")),
        "revoke token",
        "delete sound",
    ]:
        method, path, kwargs = calls[name]
        response = await api.client.request(method, path, headers=headers, **kwargs)
        expected = EXPECTED[name][column]
        if expected >= 400:
            assert_json_error(response, expected)
        else:
            assert response.status_code == expected, f"{name}: {response.text}"
        if name == "list tokens" and expected == 200:
            assert (token["id"] in [t["id"] for t in response.json()]) == (
                who != "streamer out of scope"
            )
        if name == "list sounds" and expected == 200:
            assert (sound in [s["id"] for s in response.json()]) == (who != "streamer out of scope")

    # What a refusal left alone: the token active with its options, the sound there.
    refused = EXPECTED["revoke token"][column] != 204
    row = await token_row(api, token["id"])
    assert (row.revoked_at is None) == refused
    assert (row.options_version == 0) == (EXPECTED["put options"][column] != 200)
    assert (sound in [r.id for r in await sound_rows(api)]) == refused


async def test_a_streamer_cannot_make_a_token_for_a_streamer_outside_its_scope(
    api: ApiHarness,
) -> None:
    luna = await streamer(api)
    body = assert_json_error(
        await api.client.post(
            "/overlays/tokens", json={"name": "x", "streamer": OTHER_HANDLE}, headers=luna
        ),
        403,
    )
    assert "scope" in body["detail"]
    async with api.engine.connect() as conn:
        assert (await conn.execute(select(overlay_tokens))).all() == []


BAD_TOKEN_REQUESTS: list[Any] = [
    {"name": "", "streamer": STREAMER_HANDLE},
    {"name": "   ", "streamer": STREAMER_HANDLE},
    {"name": "x" * 129, "streamer": STREAMER_HANDLE},
    {"name": "x", "streamer": "not a handle!"},
    {"name": "x"},
    {"name": "x", "streamer": STREAMER_HANDLE, "token": "mine"},
    ["x"],
]


async def test_a_bad_token_request_is_a_400_and_an_unknown_token_id_a_404(api: ApiHarness) -> None:
    luna = await streamer(api)
    for body in BAD_TOKEN_REQUESTS:
        response = await api.client.post("/overlays/tokens", json=body, headers=luna)
        assert response.status_code == 400, body
        assert_json_error(response, 400)
    async with api.engine.connect() as conn:
        assert (await conn.execute(select(overlay_tokens))).all() == []
    for method, path in [
        ("DELETE", "/overlays/tokens/999"),
        ("GET", "/overlays/tokens/999/options"),
        ("PUT", "/overlays/tokens/999/options"),
        ("POST", "/overlays/tokens/999/skip"),
        ("DELETE", "/overlays/sounds/999"),
    ]:
        body = {"json": {}} if method == "PUT" else {}
        assert_json_error(await api.client.request(method, path, headers=luna, **body), 404)


# -- overlay endpoints take the token only ---------------------------------------------------------
async def test_a_login_never_opens_an_overlay_endpoint(api: ApiHarness) -> None:
    admin = await owner(api)
    sound = await new_sound(api, admin)
    cookie = {"Cookie": f"ttlp_token={api.tokens['owner']}"}
    for headers in (admin, cookie):
        for path in (
            "/overlay/alerts",
            "/overlay/state?kind=chat",
            "/overlay/feed",
            f"/overlay/sounds/{sound}",
        ):
            body = assert_json_error(await api.client.get(path, headers=headers), 401)
            assert "token" in body["detail"]
            # A JWT in the token's place is no token either.
            sep = "&" if "?" in path else "?"
            wrong = f"{path}{sep}token={api.tokens['owner']}"
            assert_json_error(await api.client.get(wrong, headers=headers), 401)


async def test_a_bad_unknown_or_revoked_token_is_refused_with_json(api: ApiHarness) -> None:
    luna = await streamer(api)
    made = await new_token(api, luna)
    revoked = await api.client.delete(f"/overlays/tokens/{made['id']}", headers=luna)
    assert revoked.status_code == 204
    cases = [
        ("", 401),
        ("short", 401),
        ("A" * 43, 401),  # well formed, unknown
        ("A" * 500, 401),
        ("%20" * 43, 401),
        (made["token"], 403),
    ]
    for path in ("/overlay/chat", "/overlay/state?kind=goal", "/overlay/feed", "/overlay/sounds/1"):
        for token, status in cases:
            sep = "&" if "?" in path else "?"
            response = await api.client.get(f"{path}{sep}token={token}")
            assert response.status_code == status, (path, token, response.text)
            body = assert_json_error(response, status)
            if status == 403:
                assert "revoked" in body["detail"]


async def test_an_unknown_overlay_kind_is_a_404(api: ApiHarness) -> None:
    token = await new_token(api, await streamer(api))
    body = assert_json_error(await api.client.get(f"/overlay/confetti?token={token['token']}"), 404)
    for kind in KINDS:
        assert kind in body["detail"]


async def test_using_a_token_records_when(api: ApiHarness) -> None:
    token = await new_token(api, await streamer(api))
    assert (await token_row(api, token["id"])).last_used_at is None
    await state(api, token["token"], "chat")
    assert (await token_row(api, token["id"])).last_used_at is not None


# -- options ---------------------------------------------------------------------------------------
async def test_a_new_tokens_options_are_every_default(api: ApiHarness) -> None:
    luna = await streamer(api)
    token = await new_token(api, luna)
    response = await api.client.get(f"/overlays/tokens/{token['id']}/options", headers=luna)
    assert response.status_code == 200
    assert response.json() == DEFAULT_OPTIONS
    assert (await token_row(api, token["id"])).options is None


async def test_options_changes_merge_onto_the_current_ones_and_bump_the_version(
    api: ApiHarness,
) -> None:
    luna = await streamer(api)
    token = await new_token(api, luna)
    first = await put_options(
        api, luna, token["id"], {"alerts": {"minCoins": 100, "kinds": {"share": False}}}
    )
    assert first.status_code == 200, first.text
    second = await put_options(
        api, luna, token["id"], {"chat": {"fontSize": 24}, "common": {"bannedWords": ["spoiler"]}}
    )
    assert second.status_code == 200, second.text
    expected = msgspec.json.decode(msgspec.json.encode(DEFAULT_OPTIONS))
    expected["alerts"]["minCoins"] = 100
    expected["alerts"]["kinds"]["share"] = False
    expected["chat"]["fontSize"] = 24
    expected["common"]["bannedWords"] = ["spoiler"]
    assert second.json() == expected
    got = await api.client.get(f"/overlays/tokens/{token['id']}/options", headers=luna)
    assert got.json() == expected
    row = await token_row(api, token["id"])
    assert row.options_version == 2
    stored = row.options if isinstance(row.options, dict) else msgspec.json.decode(row.options)
    assert stored == expected
    [listed] = (await api.client.get("/overlays/tokens", headers=luna)).json()
    assert listed["optionsVersion"] == 2
    # A list is replaced, not merged; repeated ticker kinds are kept once.
    third = await put_options(
        api, luna, token["id"], {"ticker": {"kinds": ["GIFT", "SHARE", "GIFT"]}}
    )
    assert third.json()["ticker"]["kinds"] == ["GIFT", "SHARE"]
    assert third.json()["alerts"]["minCoins"] == 100


INVALID_OPTIONS: list[tuple[Any, str]] = [
    ({"alerts": {"minCoins": -1}}, "alerts.minCoins"),
    ({"alerts": {"volume": 1.5}}, "alerts.volume"),
    ({"alerts": {"durationMs": "long"}}, "alerts.durationMs"),
    ({"alerts": {"kinds": {"follow": "yes"}}}, "alerts.kinds.follow"),
    ({"alerts": {"kinds": {"like": True}}}, "alerts.kinds"),
    ({"alerts": {"tts": {"rate": 0}}}, "alerts.tts.rate"),
    ({"alerts": {"tts": {"maxLength": 1.5}}}, "alerts.tts.maxLength"),
    ({"alerts": {"skipKey": ""}}, "alerts.skipKey"),
    ({"alerts": {"sounds": {"gift": 0}}}, "alerts.sounds.gift"),
    ({"alerts": {"sounds": {"gift": 123456}}}, "alerts.sounds.gift"),
    ({"chat": {"maxMessages": 0}}, "chat.maxMessages"),
    ({"leaderboard": {"scope": "month"}}, "leaderboard.scope"),
    ({"leaderboard": {"count": 51}}, "leaderboard.count"),
    ({"goal": {"metric": "hearts"}}, "goal.metric"),
    ({"goal": {"target": 0}}, "goal.target"),
    ({"goal": {"title": None}}, "goal.title"),
    ({"ticker": {"kinds": []}}, "ticker.kinds"),
    ({"ticker": {"kinds": ["NOPE"]}}, "ticker.kinds"),
    ({"common": {"bannedWords": [""]}}, "common.bannedWords"),
    ({"common": {"bannedWords": "spoiler"}}, "common.bannedWords"),
    ({"alerts": 3}, "alerts"),
    ({"nope": 1}, "nope"),
]


def names_field(error: dict[str, Any], field: str) -> bool:
    """Whether a 400 body names ``field``: as an ``extra`` key (Litestar's way), or, for an
    unknown field, in its message."""
    extra = error.get("extra") or []
    keys = [str(item.get("key", "")) for item in extra]
    messages = [str(item.get("message", "")) for item in extra]
    return any(k.startswith(field) for k in keys) or any(f"`{field}`" in m for m in messages)


async def test_invalid_options_are_a_400_naming_the_field_and_change_nothing(
    api: ApiHarness,
) -> None:
    luna = await streamer(api)
    token = await new_token(api, luna)
    # A real sound, of another streamer: not one this token may play.
    theirs = await new_sound(api, await owner(api), streamer=OTHER_HANDLE)
    cases = [*INVALID_OPTIONS, ({"alerts": {"sounds": {"follow": theirs}}}, "alerts.sounds.follow")]
    for body, field in cases:
        response = await put_options(api, luna, token["id"], body)
        assert response.status_code == 400, (body, response.text)
        error = assert_json_error(response, 400)
        assert names_field(error, field), (body, error)
    for raw in (b"not json", b"[1, 2]", b"", b'{"alerts": {"minCoins": 1}', b"null"):
        response = await api.client.put(
            f"/overlays/tokens/{token['id']}/options",
            content=raw,
            headers={**luna, "Content-Type": "application/json"},
        )
        assert response.status_code == 400, (raw, response.text)
        assert_json_error(response, 400)
    row = await token_row(api, token["id"])
    assert (row.options, row.options_version) == (None, 0)


async def test_a_sound_of_the_streamer_can_be_chosen_for_an_alert(api: ApiHarness) -> None:
    luna = await streamer(api)
    token = await new_token(api, luna)
    sound = await new_sound(api, luna)
    response = await put_options(api, luna, token["id"], {"alerts": {"sounds": {"gift": sound}}})
    assert response.status_code == 200, response.text
    assert response.json()["alerts"]["sounds"] == {
        "follow": None,
        "share": None,
        "subscribe": None,
        "gift": sound,
    }


# -- the overlay page ------------------------------------------------------------------------------
class _Scripts(HTMLParser):
    """The page's script elements and inline handlers (``on...`` attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self.handlers: list[str] = []
        self.styles = 0
        self.stylesheets: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [name for name, _ in attrs if name.lower().startswith("on")]
        if any(name.lower() == "style" for name, _ in attrs):
            self.styles += 1
        if tag == "style":
            self.styles += 1
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True
        values = dict(attrs)
        if tag == "link" and values.get("rel") == "stylesheet":
            self.stylesheets.append(values.get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data)


async def test_the_overlay_page_is_served_under_its_own_csp_without_inline_script(
    api: ApiHarness,
) -> None:
    token = await new_token(api, await streamer(api))
    pages = set()
    for kind in KINDS:
        response = await api.client.get(
            f"/overlay/{kind}", params={"token": token["token"], "preview": "1"}
        )
        assert response.status_code == 200, (kind, response.text)
        assert response.headers["content-type"].startswith("text/html")
        csp = response.headers["content-security-policy"]
        assert csp == OVERLAY_CSP
        directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
        assert directives["frame-ancestors"] == ["'self'"]
        assert directives["media-src"] == ["'self'"]
        assert directives["script-src"] == ["'self'"]
        assert directives["style-src"] == ["'self'"]
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert response.headers["x-frame-options"] == "SAMEORIGIN"
        assert "no-store" in response.headers["cache-control"]
        assert response.headers["referrer-policy"] == "no-referrer"
        pages.add(response.text)
    [html] = pages  # one page; it reads its kind from the path

    page = _Scripts()
    page.feed(html)
    assert page.inline == [], "inline script in the overlay page"
    assert page.handlers == [], "inline event handlers in the overlay page"
    assert page.styles == 0, "inline style in the overlay page"
    assert page.scripts, "the overlay page loads no script"
    for src, wanted in [
        *((s.get("src") or "", "javascript") for s in page.scripts),
        *((href, "text/css") for href in page.stylesheets),
    ]:
        assert src.startswith("/"), f"loaded from elsewhere: {src!r}"
        loaded = await api.client.get(src)
        assert loaded.status_code == 200, src
        assert wanted in loaded.headers["content-type"], src


# -- /overlay/state --------------------------------------------------------------------------------
LIVE_2 = "0b7c3a52-7f6e-4c1d-9a3b-5e2d1f0c4a81"
REPLAY = "9e41d8f3-2c5b-4a7e-8f60-1b3d5c7e9a02"


async def seeded(api: ApiHarness) -> dict[str, list[UnifiedEvent]]:
    """The fixture session (ended), a later live session of the same room (still going) and a
    replay of the fixture session after it (still going), all stored."""
    sessions = {
        "first": fixture_events(),
        "current": session_copy(LIVE_2),
        "replay": session_copy(REPLAY, source="replay", shift=timedelta(hours=2)),
    }
    for events in sessions.values():
        await api.seed(events)
    return sessions


def ranked(board: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: row[k] for k in ("userId", "coins", "gifts")} for row in board]


async def test_the_state_names_the_session_still_going_live_unless_previewed(
    api: ApiHarness,
) -> None:
    luna = await streamer(api)
    token = await new_token(api, luna)
    empty = await state(api, token["token"], "alerts")
    assert empty["session"] is None
    assert (empty["streamer"], empty["kind"], empty["optionsVersion"]) == (
        STREAMER_HANDLE,
        "alerts",
        0,
    )
    assert empty["options"] == DEFAULT_OPTIONS
    await seeded(api)
    live = await state(api, token["token"], "alerts")
    assert live["session"]["id"] == LIVE_2
    assert live["session"]["live"] is True
    previewed = await state(api, token["token"], "alerts", preview=True)
    assert previewed["session"]["id"] == REPLAY
    assert previewed["session"]["live"] is False


@pytest.mark.parametrize("scope", ["session", "stream"])
async def test_the_leaderboard_counts_live_gifts_unless_previewed(
    api: ApiHarness, scope: str
) -> None:
    luna = await streamer(api)
    token = await new_token(api, luna)
    sessions = await seeded(api)
    # One gift of the current session archived by retention: counted by nobody.
    current = sessions["current"]
    archived = next(
        e
        for e in current
        if document(e)["eventType"] == "GIFT" and document(e)["payload"]["coins"] == 29999
    )
    async with api.engine.begin() as conn:
        await conn.execute(
            update(events_table)
            .where(events_table.c.event_id == archived.event_id)
            .values(archived_at=datetime.now(UTC))
        )
    current = [e for e in current if e.event_id != archived.event_id]
    response = await put_options(
        api, luna, token["id"], {"leaderboard": {"scope": scope, "count": 3}}
    )
    assert response.status_code == 200, response.text

    body = await state(api, token["token"], "leaderboard")
    live = current if scope == "session" else [*sessions["first"], *current]
    assert ranked(body["leaderboard"]) == expected_leaderboard(live, 3)
    assert body["recent"] == []
    assert body["goal"] is None
    top = body["leaderboard"][0]
    assert top["uniqueId"]
    assert top["displayName"]

    previewed = await state(api, token["token"], "leaderboard", preview=True)
    replayed = (
        sessions["replay"]
        if scope == "session"
        else [*sessions["first"], *current, *sessions["replay"]]
    )
    assert ranked(previewed["leaderboard"]) == expected_leaderboard(replayed, 3)
    assert previewed["leaderboard"] != body["leaderboard"]


async def test_the_goal_counts_this_sessions_live_events_unless_previewed(
    api: ApiHarness,
) -> None:
    luna = await streamer(api)
    token = await new_token(api, luna)
    sessions = await seeded(api)
    # More in the replay than the live session has, so preview and live differ.
    counted = ("LIKE", "GIFT", "FOLLOW", "SUBSCRIBE")
    more = session_copy(
        REPLAY,
        source="replay",
        shift=timedelta(hours=2, minutes=5),
        events=[e for e in fixture_events() if document(e)["eventType"] in counted],
        salt="more",
    )
    await api.seed(more)
    for version, metric in enumerate(["likes", "coins", "follows", "subscriptions"], 1):
        goal = {"metric": metric, "target": 12345 + version, "title": f"Road to {metric}"}
        assert (await put_options(api, luna, token["id"], {"goal": goal})).status_code == 200
        body = await state(api, token["token"], "goal")
        assert body["optionsVersion"] == version
        assert body["goal"] == {**goal, "current": expected_goal(sessions["current"], metric)}
        assert body["goal"]["current"] > 0, metric
        previewed = await state(api, token["token"], "goal", preview=True)
        replayed = expected_goal([*sessions["replay"], *more], metric)
        assert previewed["goal"]["current"] == replayed, metric
        assert previewed["goal"]["current"] > body["goal"]["current"], metric


async def test_a_goal_without_any_session_starts_at_zero(api: ApiHarness) -> None:
    token = await new_token(api, await streamer(api))
    body = await state(api, token["token"], "goal")
    assert body["goal"] == {"metric": "likes", "current": 0, "target": 1000, "title": ""}


async def test_chat_and_ticker_states_hold_the_latest_events_oldest_first(api: ApiHarness) -> None:
    luna = await streamer(api)
    token = await new_token(api, luna)
    sessions = await seeded(api)
    options = {
        "chat": {"maxMessages": 3},
        "ticker": {"kinds": ["FOLLOW", "GIFT", "SUBSCRIBE"], "count": 4},
    }
    assert (await put_options(api, luna, token["id"], options)).status_code == 200

    chat = await state(api, token["token"], "chat")
    chats = of_type(sessions["current"], "CHAT")
    assert chat["recent"] == chats[-3:]
    assert chat["leaderboard"] == []
    assert chat["goal"] is None

    ticker = await state(api, token["token"], "ticker")
    wanted = [
        d
        for d in map(document, sessions["current"])
        if d["eventType"] in ("FOLLOW", "SUBSCRIBE")
        or (
            d["eventType"] == "GIFT"
            and d["payload"].get("streakEnd", not d["payload"].get("streakActive", False))
        )
    ]
    assert ticker["recent"] == wanted[-4:]
    assert all(d["source"] == "live" for d in ticker["recent"])

    previewed = await state(api, token["token"], "chat", preview=True)
    assert previewed["recent"] == of_type(sessions["replay"], "CHAT")[-3:]


async def test_a_bad_state_query_is_a_400(api: ApiHarness) -> None:
    token = await new_token(api, await streamer(api))
    for query in ("kind=bogus", "", "kind=chat&preview=maybe", "kind=Chat"):
        response = await api.client.get(f"/overlay/state?token={token['token']}&{query}")
        assert response.status_code == 400, (query, response.text)
        assert_json_error(response, 400)


# -- the overlay feed ------------------------------------------------------------------------------
async def test_the_feed_sends_the_streamers_live_events_only(api: ApiHarness) -> None:
    luna = await streamer(api)
    token = await new_token(api, luna)
    await api.seed()
    await api.seed(other_stream_events())
    replay = session_copy(REPLAY, source="replay")
    async with overlay_feed(api, token["token"]) as feed:
        ours = fixture_events()
        mixed: list[UnifiedEvent] = []
        for i, event in enumerate(ours):
            mixed += [event, other_stream_events()[i], replay[i % len(replay)]]
        ids = await publish(api, [*mixed, sentinel()])
        received = await feed.until_event_id(ids[-1])
    assert event_ids(received) == [e.event_id for e in [*ours, sentinel()]]
    assert all(m.event == "event" for m in received)
    # SSE ids are the bus entry ids of the streamer's events.
    assert [m.id for m in received] == [ids[3 * i] for i in range(len(ours))] + [ids[-1]]


async def test_a_preview_feed_sends_replayed_events_too(api: ApiHarness) -> None:
    token = await new_token(api, await streamer(api))
    await api.seed()
    replay = session_copy(REPLAY, source="replay")[:10]
    async with overlay_feed(api, token["token"], preview=True) as feed:
        ids = await publish(api, [*replay, *other_stream_events()[:5], sentinel()])
        received = await feed.until_event_id(ids[-1])
    assert event_ids(received) == [e.event_id for e in [*replay, sentinel()]]


async def test_the_feed_tells_options_and_skip_and_ends_when_revoked(api: ApiHarness) -> None:
    luna = await streamer(api)
    token = await new_token(api, luna)
    tid = token["id"]
    async with overlay_feed(api, token["token"]) as feed:
        assert (await put_options(api, luna, tid, {"chat": {"fontSize": 30}})).status_code == 200
        options = await feed.named()
        assert (options.event, options.json, options.id) == ("options", {"optionsVersion": 1}, None)
        assert (
            await api.client.post(f"/overlays/tokens/{tid}/skip", headers=luna)
        ).status_code == 204
        skip = await feed.named()
        assert (skip.event, skip.json, skip.id) == ("skip", {}, None)
        assert (await token_row(api, tid)).skip_seq == 1
        assert (await api.client.delete(f"/overlays/tokens/{tid}", headers=luna)).status_code == 204
        rest = await feed.end(REVOKED_WITHIN_S)
    assert [m.event for m in rest if m.event] == ["revoked"]
    assert rest[-1].json == {}
    await wait_for(lambda: hub_of(api).watched() == 0, what="no watched feed")
    # And it cannot come back.
    assert_json_error(await api.client.get("/overlay/feed", params={"token": token["token"]}), 403)


async def test_a_moderators_skip_reaches_the_open_alerts(api: ApiHarness) -> None:
    token = await new_token(api, await streamer(api))
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    async with overlay_feed(api, token["token"]) as feed:
        assert (
            await api.client.post(f"/overlays/tokens/{token['id']}/skip", headers=mod)
        ).status_code == 204
        assert (await feed.named()).event == "skip"


async def test_a_revocation_on_another_replica_ends_open_feeds_within_seconds(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two api processes on one database and bus: a change made through one reaches the
    other's open feeds through its poll, one query for all of a token's feeds."""
    luna = await streamer(api)
    token = await new_token(api, luna)
    async with another_replica(api) as replica:
        hub = hub_of(replica)
        asked: list[list[int]] = []
        states = hub.store.states

        async def counted(ids: Any) -> Any:
            asked.append(list(ids))
            return await states(ids)

        monkeypatch.setattr(hub.store, "states", counted)
        async with contextlib.AsyncExitStack() as stack:
            feeds = [
                await stack.enter_async_context(overlay_feed(replica, token["token"], watched=n))
                for n in (1, 2, 3)
            ]
            changed = await put_options(api, luna, token["id"], {"goal": {"target": 7}})
            assert changed.status_code == 200
            for feed in feeds:
                message = await feed.named()
                assert (message.event, message.json) == ("options", {"optionsVersion": 1})
            start = time.monotonic()
            revoked = await api.client.delete(f"/overlays/tokens/{token['id']}", headers=luna)
            assert revoked.status_code == 204
            ends = await asyncio.gather(*(feed.end(REVOKED_WITHIN_S) for feed in feeds))
            took = time.monotonic() - start
    for rest in ends:
        assert [m.event for m in rest if m.event] == ["revoked"]
    # One query per poll for the three feeds, naming the token once.
    assert asked
    assert all(ids == [token["id"]] for ids in asked)
    assert len(asked) == hub.polls
    print(f"revocation reached another replica's feeds in {took:.2f} s")


async def test_the_feed_resumes_after_last_event_id(api: ApiHarness) -> None:
    token = await new_token(api, await streamer(api))
    await api.seed()
    events = fixture_events()
    replay = session_copy(REPLAY, source="replay")
    async with overlay_feed(api, token["token"]) as feed:
        first = await publish(api, events[:5])
        seen = await feed.until_event_id(first[-1])
    last = seen[-1].id
    assert last is not None
    missed = await publish(api, [*events[5:10], replay[0], other_stream_events()[0], sentinel()])
    for how in ("header", "query"):
        headers = {"Last-Event-ID": last} if how == "header" else {}
        query = {"lastEventId": last} if how == "query" else {}
        async with overlay_feed(api, token["token"], headers=headers, query=query) as feed:
            received = await feed.until_event_id(missed[-1])
        assert event_ids(received) == [e.event_id for e in [*events[5:10], sentinel()]], how
        assert [m.id for m in received] == [*missed[:5], missed[-1]]


async def test_a_bad_last_event_id_is_a_400(api: ApiHarness) -> None:
    token = await new_token(api, await streamer(api))
    response = await api.client.get(
        "/overlay/feed", params={"token": token["token"]}, headers={"Last-Event-ID": "nope"}
    )
    assert_json_error(response, 400)


async def test_a_token_has_a_bounded_number_of_open_feeds(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "MAX_FEEDS_PER_TOKEN", 1)
    token = await new_token(api, await streamer(api))
    async with overlay_feed(api, token["token"]):
        refused = await api.client.get("/overlay/feed", params={"token": token["token"]})
        assert_json_error(refused, 429)
        assert refused.headers["Retry-After"].isdigit()


# -- sounds ----------------------------------------------------------------------------------------
async def test_a_sound_is_stored_by_what_its_bytes_are_and_served_to_its_streamers_tokens(
    api: ApiHarness,
) -> None:
    luna = await streamer(api)
    token = await new_token(api, luna)
    for name, (data, content_type) in SOUNDS.items():
        # Declared as something else: the bytes decide.
        response = await upload(
            api, luna, data, filename=name, declared="application/x-whatever", name=name
        )
        assert response.status_code == 201, (name, response.text)
        sound = response.json()
        assert sound == {
            "id": sound["id"],
            "name": name,
            "streamer": STREAMER_HANDLE,
            "contentType": content_type,
            "size": len(data),
            "createdAt": sound["createdAt"],
        }
        row = next(r for r in await sound_rows(api) if r.id == sound["id"])
        assert (bytes(row.data), row.content_type, row.created_by) == (data, content_type, "luna")
        served = await api.client.get(
            f"/overlay/sounds/{sound['id']}", params={"token": token["token"]}
        )
        assert served.status_code == 200, name
        assert served.content == data
        assert served.headers["content-type"] == content_type
        assert served.headers["x-content-type-options"] == "nosniff"
    listed = (await api.client.get("/overlays/sounds", headers=luna)).json()
    assert [s["name"] for s in listed] == list(reversed(SOUNDS))  # newest first


async def test_a_sound_is_served_only_to_a_token_of_the_same_streamer(api: ApiHarness) -> None:
    admin = await owner(api)
    sound = await new_sound(api, admin)
    theirs = await new_token(api, admin, streamer=OTHER_HANDLE)
    response = await api.client.get(f"/overlay/sounds/{sound}", params={"token": theirs["token"]})
    assert_json_error(response, 404)
    ours = await new_token(api, admin)
    assert_json_error(
        await api.client.get("/overlay/sounds/987654", params={"token": ours["token"]}), 404
    )


async def test_deleting_a_sound_stops_serving_it_and_clears_the_options_naming_it(
    api: ApiHarness,
) -> None:
    luna = await streamer(api)
    sound = await new_sound(api, luna)
    kept = await new_sound(api, luna)
    token = await new_token(api, luna)
    chosen = {"alerts": {"sounds": {"gift": sound, "follow": sound, "share": kept}}}
    assert (await put_options(api, luna, token["id"], chosen)).status_code == 200
    async with overlay_feed(api, token["token"]) as feed:
        assert (
            await api.client.delete(f"/overlays/sounds/{sound}", headers=luna)
        ).status_code == 204
        told = await feed.named()
        assert (told.event, told.json) == ("options", {"optionsVersion": 2})
    assert [r.id for r in await sound_rows(api)] == [kept]
    options = (await api.client.get(f"/overlays/tokens/{token['id']}/options", headers=luna)).json()
    assert options["alerts"]["sounds"] == {
        "follow": None,
        "share": kept,
        "subscribe": None,
        "gift": None,
    }
    gone = await api.client.get(f"/overlay/sounds/{sound}", params={"token": token["token"]})
    assert_json_error(gone, 404)
    assert_json_error(await api.client.delete(f"/overlays/sounds/{sound}", headers=luna), 404)


async def test_a_sound_of_at_most_one_mib_is_taken_and_a_larger_one_is_a_413(
    api: ApiHarness,
) -> None:
    luna = await streamer(api)
    head, _ = SOUNDS["a.ogg"]
    exactly = head + bytes(MAX_SOUND_BYTES - len(head))
    assert (await upload(api, luna, exactly)).status_code == 201
    body = assert_json_error(await upload(api, luna, exactly + b"\x00"), 413)
    assert "1 MiB" in body["detail"]
    # Far larger: refused before it is read whole.
    assert_json_error(await upload(api, luna, exactly * 3), 413)
    assert len(await sound_rows(api)) == 1


async def test_a_file_that_is_not_an_accepted_audio_format_is_a_415(api: ApiHarness) -> None:
    luna = await streamer(api)
    for name, data in NOT_SOUNDS.items():
        response = await upload(api, luna, data, filename=name)
        assert response.status_code == 415, (name, response.text)
        body = assert_json_error(response, 415)
        assert "audio/mpeg" in body["detail"]
    assert await sound_rows(api) == []


BAD_UPLOADS: dict[str, dict[str, Any]] = {
    "empty": {
        "files": {"file": ("a.mp3", b"", "audio/mpeg")},
        "data": {"name": "x", "streamer": STREAMER_HANDLE},
    },
    "no-file": {"data": {"name": "x", "streamer": STREAMER_HANDLE}},
    "no-name": {
        "files": {"file": ("a.ogg", SOUNDS["a.ogg"][0], "audio/ogg")},
        "data": {"streamer": STREAMER_HANDLE},
    },
    "bad-streamer": {
        "files": {"file": ("a.ogg", SOUNDS["a.ogg"][0], "audio/ogg")},
        "data": {"name": "x", "streamer": "no way!"},
    },
    "file-as-text": {"data": {"file": "not a file", "name": "x", "streamer": STREAMER_HANDLE}},
    "json": {"json": {"file": "x", "name": "x", "streamer": STREAMER_HANDLE}},
    "garbage": {
        "content": b"--xx\r\ngarbage",
        "headers": {"Content-Type": "multipart/form-data; boundary=xx"},
    },
    "no-boundary": {"content": b"garbage", "headers": {"Content-Type": "multipart/form-data"}},
}


async def test_a_bad_upload_is_a_400(api: ApiHarness) -> None:
    luna = await streamer(api)
    for case, kwargs in BAD_UPLOADS.items():
        request = dict(kwargs)
        headers = {**luna, **request.pop("headers", {})}
        response = await api.client.post("/overlays/sounds", headers=headers, **request)
        assert response.status_code == 400, (case, response.text)
        assert_json_error(response, 400)
    assert await sound_rows(api) == []


# -- rate limits -----------------------------------------------------------------------------------
@pytest.mark.parametrize("api_env", [{"API_RATE_LIMIT_IP": 3, "API_RATE_LIMIT_WINDOW": "minute"}])
async def test_overlays_and_the_ui_files_are_not_held_to_the_per_ip_limit(api: ApiHarness) -> None:
    await api.account("luna", Role.STREAMER, [STREAMER_HANDLE])
    token = secrets.token_urlsafe(32)  # made directly: logging in would spend the IP's requests
    async with api.engine.begin() as conn:
        await conn.execute(
            overlay_tokens.insert().values(
                token=token,
                streamer=STREAMER_HANDLE,
                name="OBS",
                created_by="luna",
                created_at=datetime.now(UTC),
            )
        )
    # The first request with a token this process has not seen counts against the address...
    assert (
        await api.client.get("/overlay/state", params={"token": token, "kind": "chat"})
    ).status_code == 200
    # ...then the token has its own limit: an OBS machine reloading its overlays is fine.
    for _ in range(10):
        assert (
            await api.client.get("/overlay/state", params={"token": token, "kind": "goal"})
        ).status_code == 200
        assert (await api.client.get(f"/overlay/alerts?token={token}")).status_code == 200
    # The UI's files are not counted at all.
    for _ in range(10):
        assert (await api.client.get("/")).status_code == 200
        assert (await api.client.get("/ui/app.js")).status_code == 200
    # The address has two of its three left, for anything else (unknown tokens included).
    assert (await api.client.get("/health")).status_code == 200
    assert_json_error(
        await api.client.get("/overlay/state", params={"token": "B" * 43, "kind": "chat"}), 401
    )
    assert_json_error(await api.client.get("/health"), 429)
    assert_json_error(
        await api.client.get("/overlay/state", params={"token": "B" * 43, "kind": "chat"}), 429
    )
    # The known token still works.
    assert (
        await api.client.get("/overlay/state", params={"token": token, "kind": "chat"})
    ).status_code == 200


async def test_each_token_has_its_own_request_limit(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "OVERLAY_RATE_LIMIT", 3)  # read when an app is made
    luna = await streamer(api)
    first = await new_token(api, luna)
    second = await new_token(api, luna)
    query = {"token": first["token"], "kind": "chat"}
    async with another_replica(api) as replica:
        statuses = [
            (await replica.client.get("/overlay/state", params=query)).status_code for _ in range(6)
        ]
        # The first request counts against the address (the token is new to this process),
        # then 3 against the token, then 429.
        assert statuses == [200, 200, 200, 200, 429, 429]
        refused = await replica.client.get("/overlay/state", params=query)
        assert_json_error(refused, 429)
        assert refused.headers["Retry-After"].isdigit()
        other = await replica.client.get(
            "/overlay/state", params={"token": second["token"], "kind": "chat"}
        )
        assert other.status_code == 200
