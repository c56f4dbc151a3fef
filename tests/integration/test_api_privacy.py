"""What one streamer's team may learn about another's (DESIGN §7.1), on both backends: notes on
a TikTok user are private to the streamer they were written under, a user's counts and
first/last seen cover the caller's streamers only, a VIEWER sees aggregates only (every listing
that names people is 403 to it, and nothing open to it carries a handle, a name, a user id or
chat text), a logged-out token is dead on every api replica, and a WebSocket without a token is
refused with 401 (README, "The API").

The world of each test: zoe.petals (``SHARED_USER``) and the rest of the fixture session's
viewers were seen by luna.beats and, a day later, by other.streamer. Readers are one row each
of a role × scope matrix (``READERS``): scoped to luna.beats, to other.streamer, to both, to
``*``, or to a streamer that never saw zoe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import msgspec
import pytest
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
    fixture_events,
    harness,
    other_stream_events,
)
from tests.support.http import assert_json_error
from tests.support.wait import wait_for
from ttlp.api.accounts import Role
from ttlp.contracts.events import SYSTEM_USER, ChatEvent, UnifiedEvent, decode_event
from ttlp.db.tables import revoked_tokens, user_notes

pytestmark = pytest.mark.integration

SHARED_USER: Final = "7012345678901234501"
"""zoe.petals: seen by luna.beats and by other.streamer."""
ELSEWHERE: Final = "someone.else"
"""A streamer that never saw zoe."""
NOTE_LUNA: Final = "keeps asking luna for a shout-out"
NOTE_OTHER: Final = "spammed other's chat with links"
REPLICA_CACHE_S: Final = 0.5
"""The account cache of the second replica in the logout test (5 s in production)."""
WAIT_S: Final = 30.0


def later_at_other_streamer() -> list[UnifiedEvent]:
    """The fixture session again, in other.streamer's room a day later (same viewers)."""
    out = []
    for event in other_stream_events():
        data = json.loads(msgspec.json.encode(event))
        for key in ("timestamp", "ingestedAt"):
            data[key] = data[key].replace("2024-11-21", "2024-11-22")
        out.append(decode_event(json.dumps(data)))
    return out


def activity(events: list[UnifiedEvent], user_id: str) -> dict[str, Any]:
    """What a user view must say of ``user_id`` over ``events``: live events only."""
    mine = [e for e in events if e.user.user_id == user_id and e.source == "live"]
    times = sorted(datetime.fromisoformat(e.timestamp.replace("Z", "+00:00")) for e in mine)
    return {"eventCount": len(mine), "firstSeen": times[0], "lastSeen": times[-1]}


# -- the matrix ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reader:
    role: Role
    scopes: tuple[str, ...]

    @property
    def name(self) -> str:
        where = "all" if self.scopes == ("*",) else "_".join(s.split(".")[0] for s in self.scopes)
        return f"{self.role.value.lower()}-{where}"

    def streamers(self) -> set[str] | None:
        """The streamers whose notes and activity this reader sees (None: all of them)."""
        return None if "*" in self.scopes else set(self.scopes)


READERS: Final = [
    Reader(role, scopes)
    for role in (Role.STREAMER, Role.MODERATOR, Role.VIEWER)
    for scopes in (
        (STREAMER_HANDLE,),
        (OTHER_HANDLE,),
        (STREAMER_HANDLE, OTHER_HANDLE),
        ("*",),
        (ELSEWHERE,),
    )
]
ROWS: Final = [pytest.param(reader, id=reader.name) for reader in READERS]


async def seed_both_streamers(api: ApiHarness) -> None:
    await api.seed(fixture_events())
    await api.seed(later_at_other_streamer())


async def write_notes(api: ApiHarness) -> None:
    """One note under each streamer, by a moderator of that streamer alone (no ``streamer``
    field: the only streamer of the author's scope)."""
    for handle, body in ((STREAMER_HANDLE, NOTE_LUNA), (OTHER_HANDLE, NOTE_OTHER)):
        author = await api.login(f"writer-{handle}", Role.MODERATOR, [handle])
        response = await api.client.post(
            f"/users/{SHARED_USER}/notes", json={"body": body}, headers=author
        )
        assert response.status_code == 201, response.text
        assert response.json()["streamer"] == handle


@pytest.mark.parametrize("reader", ROWS)
async def test_notes_are_read_only_by_accounts_of_the_streamer_they_were_written_under(
    api: ApiHarness, reader: Reader
) -> None:
    await seed_both_streamers(api)
    await write_notes(api)
    headers = await api.login(reader.name, reader.role, list(reader.scopes))
    response = await api.client.get(f"/users/{SHARED_USER}/notes", headers=headers)
    if not reader.role.at_least(Role.MODERATOR):
        assert_json_error(response, 403)
        return
    if reader.scopes == (ELSEWHERE,):
        assert_json_error(response, 404)  # never seen in its streams: not its to know
        return
    assert response.status_code == 200, response.text
    visible = reader.streamers()
    expected = [
        body
        for handle, body in ((OTHER_HANDLE, NOTE_OTHER), (STREAMER_HANDLE, NOTE_LUNA))
        if visible is None or handle in visible
    ]
    assert [n["body"] for n in response.json()] == expected  # newest first
    assert {n["streamer"] for n in response.json()} <= (visible or {STREAMER_HANDLE, OTHER_HANDLE})


@pytest.mark.parametrize("reader", ROWS)
async def test_a_user_view_counts_only_the_activity_in_the_readers_streams(
    api: ApiHarness, reader: Reader
) -> None:
    await seed_both_streamers(api)
    headers = await api.login(reader.name, reader.role, list(reader.scopes))
    response = await api.client.get(f"/users/{SHARED_USER}", headers=headers)
    if not reader.role.at_least(Role.MODERATOR):
        assert_json_error(response, 403)  # names and handles: not a VIEWER's, in scope or not
        return
    if reader.scopes == (ELSEWHERE,):
        assert_json_error(response, 404)
        return
    assert response.status_code == 200, response.text
    visible = reader.streamers()
    seen: list[UnifiedEvent] = []
    if visible is None or STREAMER_HANDLE in visible:
        seen += fixture_events()
    if visible is None or OTHER_HANDLE in visible:
        seen += later_at_other_streamer()
    expected = activity(seen, SHARED_USER)
    body = response.json()
    assert body["userId"] == SHARED_USER
    assert body["eventCount"] == expected["eventCount"]
    assert datetime.fromisoformat(body["firstSeen"]) == expected["firstSeen"]
    assert datetime.fromisoformat(body["lastSeen"]) == expected["lastSeen"]


def test_the_two_streamers_saw_the_shared_user_at_different_times() -> None:
    """Else the user-view matrix could not tell scoped activity from global activity."""
    luna = activity(fixture_events(), SHARED_USER)
    other = activity(later_at_other_streamer(), SHARED_USER)
    assert luna["eventCount"] >= 2
    assert luna["lastSeen"] < other["firstSeen"]


# -- writing a note: under which streamer -------------------------------------------------------
async def test_a_note_is_written_under_the_streamer_named(api: ApiHarness) -> None:
    await seed_both_streamers(api)
    admin = await api.login("admin", Role.STREAMER, ["*"])
    response = await api.client.post(
        f"/users/{SHARED_USER}/notes",
        json={"body": "for luna's team", "streamer": f"@{STREAMER_HANDLE.upper()}"},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    assert response.json()["streamer"] == STREAMER_HANDLE
    other_team = await api.login("other-mod", Role.MODERATOR, [OTHER_HANDLE])
    listed = await api.client.get(f"/users/{SHARED_USER}/notes", headers=other_team)
    assert listed.status_code == 200, listed.text
    assert listed.json() == []
    async with api.engine.connect() as conn:
        rows = (await conn.execute(user_notes.select())).all()
    assert [(r.author, r.streamer) for r in rows] == [("admin", STREAMER_HANDLE)]


async def test_a_note_without_a_streamer_is_refused_when_several_of_the_authors_saw_the_user(
    api: ApiHarness,
) -> None:
    await seed_both_streamers(api)
    for scopes in (["*"], [STREAMER_HANDLE, OTHER_HANDLE]):
        author = await api.login(f"mod-{len(scopes)}", Role.MODERATOR, scopes)
        response = await api.client.post(
            f"/users/{SHARED_USER}/notes", json={"body": "which team?"}, headers=author
        )
        detail = assert_json_error(response, 422)["detail"]
        assert "streamer" in detail
        assert f"@{STREAMER_HANDLE}" in detail
        assert f"@{OTHER_HANDLE}" in detail
    async with api.engine.connect() as conn:
        assert (await conn.execute(user_notes.select())).all() == []


async def test_a_note_under_a_streamer_outside_the_authors_scope_is_refused(
    api: ApiHarness,
) -> None:
    await seed_both_streamers(api)
    luna_mod = await api.login("luna-mod", Role.MODERATOR, [STREAMER_HANDLE])
    response = await api.client.post(
        f"/users/{SHARED_USER}/notes",
        json={"body": "sneaky", "streamer": OTHER_HANDLE},
        headers=luna_mod,
    )
    assert_json_error(response, 403)
    admin = await api.login("admin", Role.STREAMER, ["*"])
    unseen = await api.client.post(
        f"/users/{SHARED_USER}/notes",
        json={"body": "never there", "streamer": ELSEWHERE},
        headers=admin,
    )
    assert_json_error(unseen, 404)
    async with api.engine.connect() as conn:
        assert (await conn.execute(user_notes.select())).all() == []


# -- a VIEWER sees aggregates only --------------------------------------------------------------
SESSION: Final = fixture_events()[0].session_id


def identities() -> set[str]:
    """What names a person in the fixture: each user's id, handle and display name, and each
    chat message."""
    found: set[str] = set()
    for event in fixture_events():
        if event.user.user_id != SYSTEM_USER.user_id:
            found |= {event.user.user_id, event.user.unique_id}
            if isinstance(event.user.display_name, str):
                found.add(event.user.display_name)
        if isinstance(event, ChatEvent):
            found.add(event.payload.message)
    return found


def leaked(response: Any) -> list[str]:
    """The identities an answer carries (JSON compared unescaped)."""
    kind = response.headers.get("content-type", "")
    text = (
        json.dumps(response.json(), ensure_ascii=False)
        if kind.startswith("application/json")
        else response.text
    )
    return sorted(x for x in identities() if x in text)


NAMING: Final = [
    pytest.param(f"/streams/{FIXTURE_ROOM}/history", id="room-history"),
    pytest.param(f"/streams/@{STREAMER_HANDLE}/history?types=CHAT", id="handle-history"),
    pytest.param(f"/sessions/{SESSION}/events?limit=500", id="session-events"),
    pytest.param(f"/sessions/{SESSION}/events?types=GIFT&order=desc", id="session-gifts"),
    pytest.param(f"/users/{SHARED_USER}", id="user"),
    pytest.param("/users/@zoe.petals", id="user-by-handle"),
    pytest.param(f"/users/{SHARED_USER}/events", id="user-events"),
    pytest.param(f"/users/{SHARED_USER}/events?includeReplays=true", id="user-events-replays"),
    pytest.param(f"/sessions/{SESSION}/export?format=csv", id="session-export"),
]
"""Every listing that carries handles, names or chat text (each answers a moderator with
some: the refusal is not of an empty list)."""


@pytest.mark.parametrize("path", NAMING)
async def test_a_viewer_is_refused_every_listing_that_names_people(
    api: ApiHarness, path: str
) -> None:
    await api.seed()
    moderator = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    named = await api.client.get(path, headers=moderator)
    assert named.status_code == 200, named.text
    assert leaked(named), "the listing names nobody: this case proves nothing"
    for scopes in ([STREAMER_HANDLE], ["*"]):
        viewer = await api.login(f"viewer-{len(scopes[0])}", Role.VIEWER, scopes)
        response = await api.client.get(path, headers=viewer)
        body = assert_json_error(response, 403)
        assert "VIEWER" in body["detail"], body
        assert leaked(response) == []


@pytest.mark.parametrize(
    "path",
    [
        "/users/@nobody.here",
        "/users/4242/events",
        "/sessions/00000000-0000-4000-8000-000000000000/events",
        f"/sessions/{SESSION}/events?limit=0",
        f"/streams/{OTHER_ROOM}/history",
    ],
)
async def test_a_viewer_is_refused_before_any_lookup(api: ApiHarness, path: str) -> None:
    """Whether a handle was seen, a session exists or a room is in scope is not a VIEWER's to
    learn from a 404, 400 or 403 of another kind: it is the same 403."""
    await api.seed()
    viewer = await api.login("viewer", Role.VIEWER, [STREAMER_HANDLE])
    moderator = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    refused = assert_json_error(await api.client.get(path, headers=viewer), 403)
    assert "VIEWER" in refused["detail"]
    answered = await api.client.get(path, headers=moderator)
    assert answered.status_code in (400, 403, 404), answered.text  # its own answer, not the role's
    assert "VIEWER" not in answered.json()["detail"]


OPEN_TO_A_VIEWER: Final = [
    pytest.param("/streams", id="streams"),
    pytest.param(f"/streams/{FIXTURE_ROOM}/sessions?summary=true", id="room-sessions"),
    pytest.param(f"/streams/@{STREAMER_HANDLE}/sessions", id="handle-sessions"),
    pytest.param("/sessions?summary=true", id="sessions"),
    pytest.param(f"/sessions/{SESSION}", id="session"),
    pytest.param(f"/sessions/{SESSION}/summary", id="session-summary"),
    pytest.param(f"/analytics?sessionId={SESSION}", id="session-analytics"),
    pytest.param(f"/analytics?streamId={FIXTURE_ROOM}", id="room-analytics"),
]


@pytest.mark.parametrize("path", OPEN_TO_A_VIEWER)
async def test_what_a_viewer_may_read_carries_no_identity(api: ApiHarness, path: str) -> None:
    await api.seed()
    viewer = await api.login("viewer", Role.VIEWER, [STREAMER_HANDLE])
    response = await api.client.get(path, headers=viewer)
    assert response.status_code == 200, response.text
    assert response.json(), "an empty answer proves nothing"
    assert leaked(response) == []


async def test_a_viewers_session_summary_keeps_its_figures(api: ApiHarness) -> None:
    """Aggregates only, not nothing: the same figures as a moderator's, the top gifters by
    rank without who they are."""
    await api.seed()
    viewer = await api.login("viewer", Role.VIEWER, [STREAMER_HANDLE])
    moderator = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    path = f"/sessions/{SESSION}/summary"
    seen = (await api.client.get(path, headers=viewer)).json()
    full = (await api.client.get(path, headers=moderator)).json()
    identity = {"userId", "uniqueId", "displayName"}
    assert seen["topGifters"] == [
        {k: v for k, v in g.items() if k not in identity} for g in full["topGifters"]
    ]
    assert len(seen["topGifters"]) >= 2
    assert {k: v for k, v in seen.items() if k != "topGifters"} == {
        k: v for k, v in full.items() if k != "topGifters"
    }


# -- logout -------------------------------------------------------------------------------------
async def login_token(api: ApiHarness, name: str) -> dict[str, str]:
    response = await api.client.post("/auth/login", json={"username": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    api.client.cookies.clear()
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_logout_revokes_the_bearer_token_it_was_sent_with(api: ApiHarness) -> None:
    await api.account("luna", Role.STREAMER, [STREAMER_HANDLE])
    phone = await login_token(api, "luna")
    laptop = await login_token(api, "luna")
    assert (await api.client.get("/auth/me", headers=phone)).status_code == 200
    logout = await api.client.post("/auth/logout", headers=phone)
    assert logout.status_code == 204, logout.text
    assert_json_error(await api.client.get("/auth/me", headers=phone), 401)
    assert_json_error(await api.client.get("/sessions", headers=phone), 401)
    assert (await api.client.get("/auth/me", headers=laptop)).status_code == 200  # another login
    again = await api.client.post("/auth/logout", headers=phone)  # twice: still fine
    assert again.status_code == 204, again.text
    async with api.engine.connect() as conn:
        assert len((await conn.execute(revoked_tokens.select())).all()) == 1


async def test_logout_revokes_the_cookie_token_too(api: ApiHarness) -> None:
    await api.account("mod", Role.MODERATOR, [STREAMER_HANDLE])
    login = await api.client.post("/auth/login", json={"username": "mod", "password": PASSWORD})
    assert login.status_code == 200, login.text
    stolen = {"Authorization": f"Bearer {login.json()['token']}"}  # the same token, elsewhere
    logout = await api.client.post("/auth/logout")  # the client sends the cookie
    assert logout.status_code == 204, logout.text
    assert_json_error(await api.client.get("/auth/me", headers=stolen), 401)


async def test_a_token_logged_out_on_one_replica_is_refused_by_another(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two api replicas on one database (and Redis): the other one refuses the token within
    its account cache period, without a restart."""
    await api.account("luna", Role.STREAMER, [STREAMER_HANDLE])
    headers = await login_token(api, "luna")
    monkeypatch.setattr(ttlp.api.auth, "ACCOUNT_CACHE_S", REPLICA_CACHE_S)
    replicas = harness(api.ctx.settings, api.bus, api.engine, api.keys)
    other = await anext(replicas)
    try:
        assert (await other.client.get("/auth/me", headers=headers)).status_code == 200  # cached
        assert (await api.client.post("/auth/logout", headers=headers)).status_code == 204

        async def refused() -> bool:
            return (await other.client.get("/auth/me", headers=headers)).status_code == 401

        await wait_for(
            refused, timeout=REPLICA_CACHE_S + 5, poll=0.05, what="the other replica refusing"
        )
    finally:
        await replicas.aclose()


# -- the WebSocket's refusals -------------------------------------------------------------------
def ws_url(api: ApiHarness, stream: str, query: str = "") -> str:
    return f"ws://127.0.0.1:{api.port}/streams/{stream}/ws{query}"


async def ws_refusal(
    api: ApiHarness, stream: str, headers: dict[str, str], query: str = ""
) -> tuple[int, Any]:
    """The HTTP status and JSON body a WebSocket handshake is refused with."""
    url = ws_url(api, stream, query)
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(url, additional_headers=headers, open_timeout=10):
            pass
    response = refused.value.response
    return response.status_code, json.loads(response.body or b"null")


async def test_a_websocket_without_a_valid_token_is_refused_with_401(api: ApiHarness) -> None:
    await api.seed()
    moderator = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    for headers in ({}, {"Authorization": "Bearer not.a.jwt"}):
        status, body = await ws_refusal(api, FIXTURE_ROOM, headers)
        assert status == 401, body
        assert body["status_code"] == 401
        assert body["detail"]
    assert (await api.client.post("/auth/logout", headers=moderator)).status_code == 204
    status, body = await ws_refusal(api, FIXTURE_ROOM, moderator)
    assert (status, body["status_code"]) == (401, 401)


async def test_a_websocket_refusal_keeps_its_own_status(api: ApiHarness) -> None:
    """Wrong role or scope stays 403, an unknown stream is 404, a bad query 400."""
    await api.seed()
    await api.seed(other_stream_events())
    viewer = await api.login("viewer", Role.VIEWER, [STREAMER_HANDLE])
    moderator = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    assert (await ws_refusal(api, FIXTURE_ROOM, viewer))[0] == 403
    assert (await ws_refusal(api, OTHER_ROOM, moderator))[0] == 403
    assert (await ws_refusal(api, "7400000000000000001", moderator))[0] == 404
    assert (await ws_refusal(api, FIXTURE_ROOM, moderator, "?types=NOPE"))[0] == 400
    async with ws_connect(ws_url(api, FIXTURE_ROOM), additional_headers=moderator) as socket:
        assert socket.response is not None
        assert socket.response.status_code == 101
