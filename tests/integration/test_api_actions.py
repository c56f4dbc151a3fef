"""Moderators' quick actions (``POST /actions/timeout``, ``/actions/ban``) against a fake Euler
API: the call Euler gets (path, query, key and session headers), who may act where (MODERATOR+,
in scope), and the answers when Euler is not configured (503) or refuses (502)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Final

import msgspec
import pytest

from tests.fakes.euler_api import API_KEY, FakeEulerApi
from tests.integration.api_support import (
    FIXTURE_ROOM,
    OTHER_HANDLE,
    OTHER_ROOM,
    STREAMER_HANDLE,
    ApiHarness,
    other_stream_events,
)
from ttlp.accounts import Role
from ttlp.contracts.events import UnifiedEvent, decode_event

pytestmark = pytest.mark.integration

SESSION: Final = "tiktok-session-cookie-value"
VIEWER_ID: Final = "7012345678901234501"
"""zoe.petals, a viewer of luna.beats' session."""
NEWER_ROOM: Final = "7445555555555555555"


@pytest.fixture
async def euler() -> AsyncIterator[FakeEulerApi]:
    async with FakeEulerApi() as fake:
        yield fake


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
