"""Moderators' quick actions (``POST /actions/timeout``, ``/actions/ban``) against a fake Euler
API: the call Euler gets (path, query, key and session headers), who may act where (MODERATOR+,
in scope), and the answers when Euler is not configured (503) or refuses (502)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

import msgspec
import pytest
from websockets.asyncio.client import connect as ws_connect

import ttlp.api.routes.actions as actions_module
from tests.fakes.euler_api import API_KEY, FakeEulerApi
from tests.support.api import (
    FIXTURE_ROOM,
    OTHER_HANDLE,
    OTHER_ROOM,
    PASSWORD,
    STREAMER_HANDLE,
    ApiHarness,
    other_stream_events,
)
from ttlp.api.accounts import Accounts, Role
from ttlp.contracts.events import UnifiedEvent, decode_event

pytestmark = pytest.mark.integration

SESSION: Final = "tiktok-session-cookie-value"
VIEWER_ID: Final = "7012345678901234501"
"""zoe.petals, a viewer of luna.beats' session."""
NEWER_ROOM: Final = "7445555555555555555"
WS_WAIT_S: Final = 10.0


@pytest.fixture
def api_env(euler: FakeEulerApi) -> dict[str, object]:
    return {"EULER_API_URL": euler.url, "EULER_API_KEY": API_KEY, "SESSION_ID": SESSION}


async def moderator(api: ApiHarness) -> dict[str, str]:
    await api.seed()
    return await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])


def later_broadcast() -> list[UnifiedEvent]:
    """luna.beats live again a day later, in a new room."""
    out = []
    for event in other_stream_events():
        data = json.loads(msgspec.json.encode(event))
        data["streamId"] = NEWER_ROOM
        for key in ("timestamp", "ingestedAt"):
            data[key] = data[key].replace("2024-11-21", "2024-11-22")
        if data["eventType"] == "CONNECTED":
            data["payload"]["uniqueId"] = STREAMER_HANDLE
            data["payload"]["roomId"] = NEWER_ROOM
        out.append(decode_event(json.dumps(data)))
    return out


async def test_timeout_mutes_the_user_through_euler_with_key_and_session(
    api: ApiHarness, euler: FakeEulerApi
) -> None:
    headers = await moderator(api)
    body = {"streamId": FIXTURE_ROOM, "userId": VIEWER_ID, "durationS": 300}
    response = await api.client.post("/actions/timeout", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "ok": True,
        "action": "timeout",
        "streamId": FIXTURE_ROOM,
        "userId": VIEWER_ID,
        "durationS": 300,
    }
    [call] = euler.calls
    assert (call.method, call.path) == ("PUT", "/webcast/moderation/mutes")
    assert call.query == {"room_id": FIXTURE_ROOM, "user_id": VIEWER_ID, "duration": "300"}
    assert call.headers["x-api-key"] == API_KEY
    assert call.headers["x-cookie-header"] == f"sessionid={SESSION}"


async def test_ban_kicks_the_user_from_the_handles_most_recent_room(
    api: ApiHarness, euler: FakeEulerApi
) -> None:
    headers = await moderator(api)
    await api.seed(later_broadcast())
    body = {"streamId": f"@{STREAMER_HANDLE}", "userId": VIEWER_ID}
    response = await api.client.post("/actions/ban", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "ok": True,
        "action": "ban",
        "streamId": NEWER_ROOM,
        "userId": VIEWER_ID,
    }
    [call] = euler.calls
    assert (call.method, call.path) == ("PUT", "/webcast/moderation/bans")
    assert call.query == {"room_id": NEWER_ROOM, "tiktok_user_id": VIEWER_ID}
    assert call.headers["x-api-key"] == API_KEY
    assert call.headers["x-cookie-header"] == f"sessionid={SESSION}"


@pytest.mark.parametrize("path", ["/actions/timeout", "/actions/ban"])
async def test_a_viewer_is_refused_and_euler_is_not_called(
    api: ApiHarness, euler: FakeEulerApi, path: str
) -> None:
    await api.seed()
    headers = await api.login("viewer", Role.VIEWER, [STREAMER_HANDLE])
    body = {"streamId": FIXTURE_ROOM, "userId": VIEWER_ID}
    response = await api.client.post(path, json=body, headers=headers)
    assert response.status_code == 403, response.text
    assert "MODERATOR" in response.json()["detail"]
    assert euler.calls == []


@pytest.mark.parametrize("stream", [OTHER_ROOM, f"@{OTHER_HANDLE}"])
@pytest.mark.parametrize("path", ["/actions/timeout", "/actions/ban"])
async def test_a_stream_outside_the_scope_is_refused_and_euler_is_not_called(
    api: ApiHarness, euler: FakeEulerApi, path: str, stream: str
) -> None:
    headers = await moderator(api)
    await api.seed(other_stream_events())
    response = await api.client.post(
        path, json={"streamId": stream, "userId": VIEWER_ID}, headers=headers
    )
    assert response.status_code == 403, response.text
    assert response.json()["detail"] == "this stream is outside your account's scope"
    assert euler.calls == []


@pytest.mark.parametrize("api_env", [{}])
@pytest.mark.parametrize("path", ["/actions/timeout", "/actions/ban"])
async def test_without_euler_key_and_session_the_answer_is_503_naming_them(
    api: ApiHarness, path: str
) -> None:
    headers = await moderator(api)
    response = await api.client.post(
        path, json={"streamId": FIXTURE_ROOM, "userId": VIEWER_ID}, headers=headers
    )
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status_code"] == 503
    assert "not configured" in body["detail"]
    assert "set EULER_API_KEY and SESSION_ID" in body["detail"]


async def test_euler_refusing_is_502_naming_its_answer_without_secrets(
    api: ApiHarness, euler: FakeEulerApi
) -> None:
    headers = await moderator(api)
    euler.api_key = "another-key"  # Euler answers 401 to ours
    response = await api.client.post(
        "/actions/timeout",
        json={"streamId": FIXTURE_ROOM, "userId": VIEWER_ID, "durationS": 60},
        headers=headers,
    )
    assert response.status_code == 502, response.text
    detail = response.json()["detail"]
    assert "HTTP 401" in detail
    assert API_KEY not in detail
    assert SESSION not in detail
    assert len(euler.calls) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"streamId": FIXTURE_ROOM, "userId": VIEWER_ID, "durationS": 120},  # not Euler's
        {"streamId": FIXTURE_ROOM, "userId": "0"},
        {"streamId": "luna.beats", "userId": VIEWER_ID},  # neither a room id nor @handle
        {"streamId": FIXTURE_ROOM, "userId": VIEWER_ID, "extra": 1},
    ],
)
async def test_a_bad_body_is_400_and_euler_is_not_called(
    api: ApiHarness, euler: FakeEulerApi, body: dict[str, Any]
) -> None:
    headers = await moderator(api)
    response = await api.client.post("/actions/timeout", json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert euler.calls == []


# -- the same actions on the live-feed WebSocket ------------------------------------------------
async def answer(socket: Any, frame: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """Send one frame; → the ``action-result`` that answers it (feed events are skipped)."""
    await socket.send(json.dumps(frame) if isinstance(frame, dict) else frame)
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), WS_WAIT_S))
        if message["type"] == "action-result":
            return message  # type: ignore[no-any-return]


async def test_a_moderator_mutes_and_kicks_over_the_websocket(
    api: ApiHarness, euler: FakeEulerApi
) -> None:
    headers = await moderator(api)
    async with ws_connect(api.ws_url(FIXTURE_ROOM), additional_headers=headers) as socket:
        muted = await answer(
            socket,
            {
                "type": "action",
                "action": "timeout",
                "userId": VIEWER_ID,
                "durationS": 60,
                "ref": "m1",
            },
        )
        kicked = await answer(
            socket, {"type": "action", "action": "ban", "userId": VIEWER_ID, "ref": "k1"}
        )
    assert muted == {
        "type": "action-result",
        "ref": "m1",
        "ok": True,
        "action": "timeout",
        "streamId": FIXTURE_ROOM,
        "userId": VIEWER_ID,
        "durationS": 60,
    }
    assert kicked == {
        "type": "action-result",
        "ref": "k1",
        "ok": True,
        "action": "ban",
        "streamId": FIXTURE_ROOM,
        "userId": VIEWER_ID,
    }
    mute, kick = euler.calls
    assert (mute.path, mute.query["duration"]) == ("/webcast/moderation/mutes", "60")
    assert (kick.path, kick.query["tiktok_user_id"]) == ("/webcast/moderation/bans", VIEWER_ID)
    assert kick.query["room_id"] == FIXTURE_ROOM


async def test_on_a_handles_websocket_actions_go_to_its_most_recent_room(
    api: ApiHarness, euler: FakeEulerApi
) -> None:
    headers = await moderator(api)
    await api.seed(later_broadcast())
    url = api.ws_url(f"@{STREAMER_HANDLE}")
    async with ws_connect(url, additional_headers=headers) as socket:
        result = await answer(socket, {"type": "action", "action": "ban", "userId": VIEWER_ID})
    assert result["ok"] is True
    assert result["streamId"] == NEWER_ROOM
    assert result["ref"] is None
    [call] = euler.calls
    assert call.query["room_id"] == NEWER_ROOM


@pytest.mark.parametrize(
    ("frame", "says"),
    [
        ("not json", "not JSON"),
        (b"\x00\x01", "text frames"),
        ({"type": "action", "action": "explode", "userId": VIEWER_ID, "ref": "r"}, "action"),
        ({"type": "action", "action": "timeout", "userId": "zoe", "ref": "r"}, "userId"),
        (
            {
                "type": "action",
                "action": "timeout",
                "userId": VIEWER_ID,
                "durationS": 120,
                "ref": "r",
            },
            "durationS",
        ),
        (
            {"type": "action", "action": "ban", "userId": VIEWER_ID, "roomId": "1", "ref": "r"},
            "roomId",
        ),
        ("x" * 5000, "at most 4096"),
    ],
)
async def test_a_bad_websocket_frame_is_answered_and_the_connection_goes_on(
    api: ApiHarness, euler: FakeEulerApi, frame: str | bytes | dict[str, Any], says: str
) -> None:
    headers = await moderator(api)
    async with ws_connect(api.ws_url(FIXTURE_ROOM), additional_headers=headers) as socket:
        refused = await answer(socket, frame)
        assert refused["ok"] is False
        assert refused["status"] == (413 if says.startswith("at most") else 400)
        assert says in refused["error"], refused
        assert refused["ref"] == ("r" if isinstance(frame, dict) else None)
        assert euler.calls == []
        fine = await answer(socket, {"type": "action", "action": "ban", "userId": VIEWER_ID})
    assert fine["ok"] is True
    assert len(euler.calls) == 1


async def test_websocket_actions_are_authorized_again_each_time(
    api: ApiHarness, euler: FakeEulerApi
) -> None:
    headers = await moderator(api)
    api.app.state.api.account_cache.ttl_s = 0.0  # no cached account: see the change at once
    ban = {"type": "action", "action": "ban", "userId": VIEWER_ID}
    async with ws_connect(api.ws_url(FIXTURE_ROOM), additional_headers=headers) as socket:
        assert (await answer(socket, ban))["ok"] is True
        await Accounts(api.engine).set_disabled("mod", True)
        disabled = await answer(socket, ban)
        assert (disabled["ok"], disabled["status"]) == (False, 401)
        assert "log in again" in disabled["error"]
        await Accounts(api.engine).set_disabled("mod", False)
        stale = await answer(socket, ban)  # disabling ended the token: enabling keeps it ended
        assert (stale["ok"], stale["status"]) == (False, 401)
    login = await api.client.post("/auth/login", json={"username": "mod", "password": PASSWORD})
    api.client.cookies.clear()
    fresh = {"Authorization": f"Bearer {login.json()['token']}"}
    async with ws_connect(api.ws_url(FIXTURE_ROOM), additional_headers=fresh) as socket:
        assert (await answer(socket, ban))["ok"] is True
        await Accounts(api.engine).set_password("mod", "a brand new password")
        stale = await answer(socket, ban)  # the connection's token predates the change
        assert (stale["ok"], stale["status"]) == (False, 401)
    assert len(euler.calls) == 2


async def test_websocket_actions_are_limited_per_connection(
    api: ApiHarness, euler: FakeEulerApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(actions_module, "WS_ACTIONS_PER_MINUTE", 2)
    headers = await moderator(api)
    ban = {"type": "action", "action": "ban", "userId": VIEWER_ID}
    async with ws_connect(api.ws_url(FIXTURE_ROOM), additional_headers=headers) as socket:
        results = [await answer(socket, ban) for _ in range(3)]
    assert [r["ok"] for r in results] == [True, True, False]
    assert results[2]["status"] == 429
    assert "2 actions a minute" in results[2]["error"]
    assert len(euler.calls) == 2


@pytest.mark.parametrize("api_env", [{}])
async def test_without_euler_a_websocket_action_says_what_is_missing(api: ApiHarness) -> None:
    headers = await moderator(api)
    async with ws_connect(api.ws_url(FIXTURE_ROOM), additional_headers=headers) as socket:
        result = await answer(socket, {"type": "action", "action": "ban", "userId": VIEWER_ID})
    assert (result["ok"], result["status"]) == (False, 503)
    assert "set EULER_API_KEY and SESSION_ID" in result["error"]
