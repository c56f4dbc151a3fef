"""Gaps in a streamer's coverage, per session, through the API on both backends (README "Gaps").

One room, three live sessions as ingest writes them after two reconnects: the first went silent
(its DISCONNECTED says so) a minute after its last message; the second had the bus away for 12 s
(an INGEST_PAUSED error), then lost its connection; the third saw the stream end. Each gap is
reported with its reason on the sessions on both sides of it; a session of another room is
complete, and a replay has no coverage to report.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import ApiHarness
from tests.support.events import (
    OTHER_STREAM,
    chat,
    common,
    connected,
    new_session,
    stream_end,
    when,
)
from ttlp.aio import to_iso
from ttlp.api.accounts import Role
from ttlp.contracts import events as ev

pytestmark = pytest.mark.integration

SILENCE = "no message from TikTok for 60 s while connected (INGEST_SILENCE_S=60)"
PAUSED = (
    "ingest was paused for 12.0 s while the bus was unreachable: messages TikTok sent "
    "meanwhile may be missing"
)


def disconnected(session: str, seq: int, t: float, reason: str) -> ev.DisconnectedEvent:
    return ev.DisconnectedEvent(
        **common(session, seq, "ControlEvent.DISCONNECTED", t, "live", "7412345678901234567"),
        user=ev.SYSTEM_USER,
        trigger_id=11,
        payload=ev.DisconnectedPayload(reason=reason, will_reconnect=True),
    )


def paused(session: str, seq: int, t: float) -> ev.ErrorEvent:
    return ev.ErrorEvent(
        **common(session, seq, "ControlEvent.ERROR", t, "live", "7412345678901234567"),
        user=ev.SYSTEM_USER,
        trigger_id=12,
        payload=ev.ErrorPayload(message=PAUSED, code="INGEST_PAUSED"),
    )


def at(seconds: float) -> str:
    """An instant as the API writes it."""
    return to_iso(when(seconds), precision="auto")


async def session(api: ApiHarness, headers: dict[str, str], session_id: str) -> dict[str, Any]:
    response = await api.client.get(f"/sessions/{session_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_gaps_are_reported_on_the_sessions_around_them(api: ApiHarness) -> None:
    first, second, third, elsewhere = (new_session() for _ in range(4))
    await api.seed(
        [
            connected(first, seq=1, t=0),
            chat(first, 101, t=5),
            disconnected(first, 2, 65, SILENCE),
            connected(second, seq=1, t=70),
            chat(second, 201, t=72),
            chat(second, 202, t=90),
            paused(second, 2, 102),
            chat(second, 203, t=103),
            disconnected(second, 3, 110, "ConnectionClosedError: 1006"),
            connected(third, seq=1, t=130),
            chat(third, 301, t=131),
            stream_end(third, seq=302, t=140),
            connected(elsewhere, seq=1, t=0, stream=OTHER_STREAM),
            chat(elsewhere, 401, t=1, stream=OTHER_STREAM),
        ]
    )
    headers = await api.login("owner", Role.STREAMER, ["*"])

    reconnect = {"start": at(5), "end": at(70), "seconds": 65.0, "reason": SILENCE}
    outage = {"start": at(90), "end": at(102), "seconds": 12.0, "reason": PAUSED}
    lost = {
        "start": at(103),
        "end": at(130),
        "seconds": 27.0,
        "reason": "ConnectionClosedError: 1006",
    }

    one = await session(api, headers, first)
    assert (one["complete"], one["gaps"]) == (False, [reconnect])
    two = await session(api, headers, second)
    assert (two["complete"], two["gaps"]) == (False, [reconnect, outage, lost])
    three = await session(api, headers, third)
    assert (three["complete"], three["gaps"]) == (False, [lost])
    other = await session(api, headers, elsewhere)
    assert (other["complete"], other["gaps"]) == (True, [])


async def test_a_crash_without_disconnected_is_a_gap_and_a_stream_end_is_not(
    api: ApiHarness,
) -> None:
    crashed, restarted, later, quick, reconnected = (new_session() for _ in range(5))
    await api.seed(
        [
            connected(crashed, seq=1, t=0),
            chat(crashed, 11, t=3),
            connected(restarted, seq=1, t=33),
            chat(restarted, 12, t=34),
            stream_end(restarted, seq=13, t=40),
            connected(later, seq=1, t=60),  # the stream ended before: nothing was live
            connected(quick, seq=1, t=100, stream=OTHER_STREAM),
            chat(quick, 21, t=101, stream=OTHER_STREAM),
            connected(reconnected, seq=1, t=101.5, stream=OTHER_STREAM),
        ]
    )
    headers = await api.login("owner", Role.STREAMER, ["*"])
    body = await session(api, headers, restarted)
    assert body["complete"] is False
    assert body["gaps"] == [
        {
            "start": at(3),
            "end": at(33),
            "seconds": 30.0,
            "reason": "the connection ended without a DISCONNECTED (ttlp stopped or crashed)",
        }
    ]
    assert (await session(api, headers, later))["complete"] is True
    # An instant reconnect (half a second between the last message and the new connection).
    assert (await session(api, headers, reconnected))["complete"] is True
