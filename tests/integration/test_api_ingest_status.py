"""``GET /ingest/status`` on both backends: each watched streamer's latest report, within the
account's scope, stale reports marked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.api import STREAMER_HANDLE, ApiHarness
from ttlp.api.accounts import Role
from ttlp.tiktok.status import StreamerStatus, encode, report_field

pytestmark = pytest.mark.integration


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def report(api: ApiHarness, **fields: object) -> None:
    status = StreamerStatus(**fields)  # type: ignore[arg-type]
    await api.bus.set_status(api.keys.ingest_status, report_field(status), encode(status))


async def test_each_streamer_in_scope_with_its_state(api: ApiHarness) -> None:
    now = datetime.now(UTC)
    await report(
        api,
        unique_id=STREAMER_HANDLE,
        provider="direct",
        state="backing_off",
        reason="ConnectError: [Errno 111] Connection refused (host webcast.tiktok.com)",
        until=iso(now + timedelta(seconds=8)),
        reconnects_today=2,
        replica="vm-1",
        updated_at=iso(now),
    )
    await report(
        api,
        unique_id="other.streamer",
        provider="euler",
        state="connected",
        last_message_at=iso(now - timedelta(seconds=4)),
        replica="vm-1",
        updated_at=iso(now - timedelta(minutes=3)),
    )
    moderator = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    response = await api.client.get("/ingest/status", headers=moderator)
    assert response.status_code == 200, response.text
    [mine] = response.json()["streamers"]
    assert (mine["uniqueId"], mine["state"], mine["reconnectsToday"]) == (
        STREAMER_HANDLE,
        "backing_off",
        2,
    )
    assert mine["reason"].endswith("(host webcast.tiktok.com)")
    assert mine["stale"] is False

    owner = await api.login("owner", Role.STREAMER, ["*"])
    body = (await api.client.get("/ingest/status", headers=owner)).json()
    other = next(s for s in body["streamers"] if s["uniqueId"] == "other.streamer")
    assert other["stale"] is True  # its replica has not reported for three minutes
    assert 4 <= other["lastMessageAgeS"] < 60

    response = await api.client.get("/ingest/status")
    assert response.status_code == 401
    assert response.json()["detail"]
