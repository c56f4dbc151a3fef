"""The api app answers on both backends: login, a history page, the live feed, health."""

from __future__ import annotations

import pytest

from tests.support.api import FIXTURE_ROOM, STREAMER_HANDLE, ApiHarness, fixture_events
from ttlp.api.accounts import Role

pytestmark = pytest.mark.integration


async def test_login_then_read_a_session_page(api: ApiHarness) -> None:
    await api.seed()
    headers = await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])
    sessions = (await api.client.get("/sessions", headers=headers)).json()
    assert [s["streamId"] for s in sessions] == [FIXTURE_ROOM]
    page = await api.client.get(f"/sessions/{sessions[0]['id']}/events?limit=500", headers=headers)
    assert page.status_code == 200, page.text
    assert [e["eventId"] for e in page.json()["items"]] == [e.event_id for e in fixture_events()]
    health = await api.client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
