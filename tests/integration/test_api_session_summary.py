"""Replays never count as live, and the session summary (issue 16), on both backends.

A replay is the fixture session stored again as the replay role stores it: new session and
event ids, ``source = "replay"``, the TikTok times kept. Expected figures are counted here from
the fixture file, never typed in.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

import msgspec
import pytest

from tests.support.api import FIXTURE_ROOM, STREAMER_HANDLE, ApiHarness, fixture_events
from tests.support.events import chat, user
from tests.support.paths import FIXTURES
from ttlp.api.accounts import Role
from ttlp.contracts.events import UnifiedEvent, decode_event

pytestmark = pytest.mark.integration

DOCS = [
    json.loads(line)
    for line in (FIXTURES / "unified-events.ndjson").read_text().splitlines()
    if line.strip()
]
SESSION = DOCS[0]["sessionId"]
IDENTITY = {"userId", "uniqueId", "displayName"}


def replay_of_fixture(session_id: str) -> list[UnifiedEvent]:
    out = []
    for event in fixture_events():
        data = json.loads(msgspec.json.encode(event))
        data["sessionId"] = session_id
        data["source"] = "replay"
        data["eventId"] = hashlib.sha256(f"replay:{data['eventId']}".encode()).hexdigest()
        out.append(decode_event(json.dumps(data)))
    return out


def counted_gifts() -> list[dict[str, Any]]:
    """A streak once (its end frame); a gift without streak fields is a single gift."""
    return [
        d
        for d in DOCS
        if d["eventType"] == "GIFT"
        and d["payload"].get("streakEnd", not d["payload"].get("streakActive", False))
    ]


def of_type(kind: str) -> list[dict[str, Any]]:
    return [d for d in DOCS if d["eventType"] == kind]


async def streamer(api: ApiHarness) -> dict[str, str]:
    return await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])


async def get(api: ApiHarness, path: str, headers: dict[str, str], **params: Any) -> Any:
    response = await api.client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# -- replays never count as live ---------------------------------------------------------------
async def test_a_replay_leaves_the_streams_analytics_unchanged(api: ApiHarness) -> None:
    await api.seed()
    headers = await streamer(api)
    targets = ({"streamId": f"@{STREAMER_HANDLE}"}, {"streamId": FIXTURE_ROOM})
    before = [await get(api, "/analytics", headers, **t) for t in targets]
    assert before[0]["coins"] > 0, "the fixture has gifts"
    session_before = await get(api, "/analytics", headers, sessionId=SESSION)

    replay = str(uuid.uuid4())
    await api.store.write_events(replay_of_fixture(replay))

    assert [await get(api, "/analytics", headers, **t) for t in targets] == before
    assert await get(api, "/analytics", headers, sessionId=SESSION) == session_before
    # A replay session asked for by name: its own (replayed) events, as many as the original's.
    assert await get(api, "/analytics", headers, sessionId=replay) == session_before
    assert (await get(api, f"/sessions/{replay}", headers))["type"] == "replay"


async def test_a_replay_leaves_a_users_live_activity_and_history_unchanged(
    api: ApiHarness,
) -> None:
    await api.seed()
    chatter = Counter(d["user"]["userId"] for d in of_type("CHAT")).most_common(1)[0][0]
    live_ids = [d["eventId"] for d in DOCS if d["user"]["userId"] == chatter][::-1]
    scoped = await streamer(api)
    admin = await api.login("root", Role.STREAMER, ["*"])
    before = [await get(api, f"/users/{chatter}", h) for h in (scoped, admin)]
    assert before[0]["eventCount"] == len(live_ids)

    await api.store.write_events(replay_of_fixture(str(uuid.uuid4())))

    assert [await get(api, f"/users/{chatter}", h) for h in (scoped, admin)] == before
    history = await get(api, f"/users/{chatter}/events", scoped, limit=500)
    assert [e["eventId"] for e in history["items"]] == live_ids
    everything = await get(
        api, f"/users/{chatter}/events", scoped, limit=500, includeReplays="true"
    )
    sources = Counter(e["source"] for e in everything["items"])
    assert sources == {"live": len(live_ids), "replay": len(live_ids)}
    # A cursor of the live-only listing does not page the one with replays.
    page = await get(api, f"/users/{chatter}/events", scoped, limit=1)
    response = await api.client.get(
        f"/users/{chatter}/events",
        params={"limit": 1, "cursor": page["nextCursor"], "includeReplays": "true"},
        headers=scoped,
    )
    assert response.status_code == 400, response.text


async def test_a_replay_leaves_a_streams_history_unchanged(api: ApiHarness) -> None:
    await api.seed()
    headers = await streamer(api)
    path = f"/streams/@{STREAMER_HANDLE}/history"
    before = await get(api, path, headers, limit=500)
    assert [e["eventId"] for e in before["items"]] == [d["eventId"] for d in DOCS]

    await api.store.write_events(replay_of_fixture(str(uuid.uuid4())))

    assert await get(api, path, headers, limit=500) == before
    everything = await get(api, path, headers, limit=500, includeReplays="true")
    sources = Counter(e["source"] for e in everything["items"])
    assert sources == {"live": len(DOCS), "replay": len(DOCS)}


# -- the session summary -----------------------------------------------------------------------
def expected_summary() -> dict[str, Any]:
    gifts = counted_gifts()
    coins: dict[str, list[int]] = {}
    for d in gifts:
        coins.setdefault(d["user"]["userId"], []).append(d["payload"]["coins"])
    names = {d["user"]["userId"]: d["user"] for d in DOCS}
    ranked = sorted(coins.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    viewers = [d["payload"]["viewerCount"] for d in of_type("ROOM_USER")]
    return {
        "eventCount": len(DOCS),
        "eventsByType": dict(sorted(Counter(d["eventType"] for d in DOCS).items())),
        "coins": sum(d["payload"]["coins"] for d in gifts),
        "gifts": len(gifts),
        "uniqueGifters": len(coins),
        "topGifters": [
            {
                "rank": n,
                "coins": sum(c),
                "gifts": len(c),
                "userId": u,
                "uniqueId": names[u]["uniqueId"],
                **({"displayName": names[u]["displayName"]} if "displayName" in names[u] else {}),
            }
            for n, (u, c) in enumerate(ranked, start=1)
        ],
        "newFollowers": len({d["user"]["userId"] for d in of_type("FOLLOW")}),
        "shares": len(of_type("SHARE")),
        "subscriptions": len({d["user"]["userId"] for d in of_type("SUBSCRIBE")}),
        "chatMessages": len(of_type("CHAT")),
        "peakViewers": max(viewers),
        "averageViewers": round(sum(viewers) / len(viewers), 1),
    }


async def test_the_summary_of_the_fixture_session(api: ApiHarness) -> None:
    await api.seed()
    await api.store.write_events(replay_of_fixture(str(uuid.uuid4())))  # not counted
    headers = await streamer(api)
    body = await get(api, f"/sessions/{SESSION}/summary", headers)
    expected = expected_summary()
    assert {k: body[k] for k in expected} == expected
    # xiaoming88's one subscription arrives twice (chat banner, then SubNotify): counted once.
    assert len(of_type("SUBSCRIBE")) == 3
    assert body["subscriptions"] == 2
    assert (body["sessionId"], body["type"], body["live"]) == (SESSION, "live", False)
    session = await get(api, f"/sessions/{SESSION}", headers)
    assert (body["complete"], body["gaps"]) == (session["complete"], session["gaps"])
    # The fixture's TikTok times span its duration: CONNECTED to its closing DISCONNECTED.
    closers = [d["timestamp"] for d in DOCS if d["eventType"] in ("DISCONNECTED", "STREAM_END")]
    start, end = (
        datetime.fromisoformat(t.replace("Z", "+00:00"))
        for t in (DOCS[0]["timestamp"], max(closers))
    )
    assert body["durationSeconds"] == pytest.approx((end - start).total_seconds(), abs=0.01)
    assert expected["coins"] < sum(d["payload"]["coins"] for d in of_type("GIFT"))


async def test_a_viewer_gets_the_summary_without_handles(api: ApiHarness) -> None:
    await api.seed()
    viewer = await api.login("viewer", Role.VIEWER, [STREAMER_HANDLE])
    response = await api.client.get(f"/sessions/{SESSION}/summary", headers=viewer)
    assert response.status_code == 200, response.text
    body = response.json()
    expected = expected_summary()
    assert body["topGifters"] == [
        {k: v for k, v in row.items() if k not in IDENTITY} for row in expected["topGifters"]
    ]
    assert body["coins"] == expected["coins"]
    for d in of_type("GIFT"):
        assert d["user"]["userId"] not in response.text
        assert d["user"]["uniqueId"] not in response.text


async def test_the_summary_is_in_scope_only(api: ApiHarness) -> None:
    await api.seed()
    stranger = await api.login("stranger", Role.STREAMER, ["someone.else"])
    response = await api.client.get(f"/sessions/{SESSION}/summary", headers=stranger)
    assert response.status_code == 403, response.text
    headers = await streamer(api)
    response = await api.client.get(f"/sessions/{uuid.uuid4()}/summary", headers=headers)
    assert response.status_code == 404, response.text
    assert "no session" in response.json()["detail"]


async def test_the_list_shows_the_running_session_first_with_its_columns(
    api: ApiHarness,
) -> None:
    await api.seed()
    running = str(uuid.uuid4())
    # Older than the fixture session (which ended), and still running: no DISCONNECTED.
    old = msgspec.structs.replace(
        chat(running, 1, who=user(5), stream=FIXTURE_ROOM),
        timestamp="2024-11-01T10:00:00.000Z",
        ingested_at="2024-11-01T10:00:00.500Z",
    )
    await api.store.write_events([old])
    headers = await streamer(api)
    plain = await get(api, "/sessions", headers)
    assert [s["id"] for s in plain] == [running, SESSION]
    assert [s["live"] for s in plain] == [True, False]
    assert plain[1]["coins"] is None  # columns only when asked for

    listed = await get(api, "/sessions", headers, summary="true")
    assert [s["id"] for s in listed] == [running, SESSION]
    expected = expected_summary()
    fixture = listed[1]
    assert (fixture["eventCount"], fixture["coins"], fixture["uniqueGifters"]) == (
        expected["eventCount"],
        expected["coins"],
        expected["uniqueGifters"],
    )
    assert fixture["peakViewers"] == expected["peakViewers"]
    assert (listed[0]["eventCount"], listed[0]["coins"], listed[0]["peakViewers"]) == (1, 0, None)
    assert listed[0]["durationSeconds"] > 0
