"""Sessions a crash left open are closed at the next start (``Store.close_interrupted_sessions``,
run by the store role), on both backends, and shown as interrupted by the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from tests.support.api import ApiHarness
from tests.support.events import (
    chat,
    connected,
    disconnected,
    new_session,
    soon,
    stream_end,
    when,
)
from ttlp.aio import to_iso
from ttlp.api.accounts import Role
from ttlp.db.queries import Queries

pytestmark = pytest.mark.integration


async def test_open_live_sessions_are_closed_at_their_last_event(api: ApiHarness) -> None:
    crashed, ended, disconnected_one, replay, busy = (new_session() for _ in range(5))
    await api.seed(
        [
            connected(crashed, seq=1, t=0),
            chat(crashed, 11, t=5),
            chat(crashed, 12, t=9),
            connected(ended, seq=1, t=20),
            stream_end(ended, seq=21, t=30),
            connected(disconnected_one, seq=1, t=40),
            disconnected(disconnected_one, seq=2, t=50),
            connected(replay, seq=1, t=60, source="replay"),
            # Another replica's session, still being fed: something ingested a moment ago.
            connected(busy, seq=1, t=70),
            msgspec.structs.replace(chat(busy, 71, t=71), ingested_at=soon()),
        ]
    )
    queries = Queries(api.engine)
    before = {s: await queries.session(s) for s in (ended, disconnected_one, replay, busy)}

    # A shared bus: only sessions quiet for a while are closed.
    quiet_since = datetime.now(UTC) - timedelta(minutes=3)
    assert await api.store.close_interrupted_sessions(quiet_since) == [crashed]
    assert await api.store.close_interrupted_sessions(quiet_since) == []  # once
    # One process that just started: every open live session was interrupted.
    assert await api.store.close_interrupted_sessions(None) == [busy]
    assert await queries.session(replay) == before[replay]  # replays are not live sessions
    for untouched in (ended, disconnected_one):
        assert await queries.session(untouched) == before[untouched]

    owner = await api.login("owner", Role.STREAMER, ["*"])
    body = (await api.client.get(f"/sessions/{crashed}", headers=owner)).json()
    assert (body["interrupted"], body["endedAt"]) == (True, to_iso(when(9), precision="auto"))
    other = (await api.client.get(f"/sessions/{disconnected_one}", headers=owner)).json()
    assert (other["interrupted"], other["endedAt"]) == (False, to_iso(when(50), precision="auto"))
