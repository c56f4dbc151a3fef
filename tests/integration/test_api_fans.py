"""``GET /streams/{stream}/fans`` (issue 16): lifetime figures per TikTok user, on both backends.

The streamer @luna.beats has two broadcasts: the fixture session, and a second one a day later
in another room (the fixture again, without two of its users). A replay of the fixture, the
same session moved to another streamer, and one archived event are stored too, and must count
nowhere. Expected figures are computed here from the fixture file, never typed in.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, select, update

from tests.support.api import (
    FIXTURE_ROOM,
    OTHER_HANDLE,
    STREAMER_HANDLE,
    ApiHarness,
    fixture_events,
    other_stream_events,
)
from tests.support.paths import FIXTURES
from ttlp.aio import parse_iso
from ttlp.api.accounts import Role
from ttlp.api.routes.fans import CSV_COLUMNS
from ttlp.contracts.events import UnifiedEvent, decode_event
from ttlp.db.queries import Queries
from ttlp.db.tables import events

pytestmark = pytest.mark.integration

DOCS = [
    json.loads(line)
    for line in (FIXTURES / "unified-events.ndjson").read_text().splitlines()
    if line.strip()
]
SECOND_ROOM = "7441234567890999999"
SECOND_SESSION = "9b2e4c1a-1d3f-4a5b-8c7d-2e1f0a9b8c7d"
ABSENT = {"7012345678901234504", "7012345678901234505"}  # mallory, night.owl: first broadcast only
SYSTEM = "0"
SORTS = {
    "coins": "coins",
    "gifts": "gifts",
    "messages": "messages",
    "likes": "likes",
    "sessions": "sessions",
    "firstSeen": "firstSeen",
    "lastSeen": "lastSeen",
}


def second_broadcast() -> list[dict[str, Any]]:
    """The fixture as @luna.beats' next live, a day later in a new room, without ``ABSENT``."""
    out = []
    for doc in DOCS:
        if doc["user"]["userId"] in ABSENT:
            continue
        d = json.loads(json.dumps(doc))
        d["streamId"] = SECOND_ROOM
        d["sessionId"] = SECOND_SESSION
        d["eventId"] = hashlib.sha256(f"second:{d['eventId']}".encode()).hexdigest()
        for key in ("timestamp", "ingestedAt"):
            if key in d:
                moved = parse_iso(d[key]) + timedelta(days=1)
                d[key] = moved.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if d["eventType"] == "CONNECTED":
            d["payload"]["roomId"] = SECOND_ROOM
        out.append(d)
    return out


SECOND = second_broadcast()
ARCHIVED = next(d for d in SECOND if d["eventType"] == "CHAT")
"""An event retention archived: hidden, so counted nowhere."""
NOTES = [  # (user, streamer): what moderators wrote
    ("7012345678901234502", STREAMER_HANDLE),
    ("7012345678901234502", STREAMER_HANDLE),
    ("7012345678901234501", STREAMER_HANDLE),
    ("7012345678901234502", OTHER_HANDLE),  # another streamer's: not counted for @luna.beats
]


def as_events(docs: list[dict[str, Any]]) -> list[UnifiedEvent]:
    return [decode_event(json.dumps(d)) for d in docs]


def replay_of_fixture() -> list[UnifiedEvent]:
    session = str(uuid.uuid4())
    out = []
    for event in fixture_events():
        data = json.loads(msgspec.json.encode(event))
        data["sessionId"] = session
        data["source"] = "replay"
        data["eventId"] = hashlib.sha256(f"{session}:{data['eventId']}".encode()).hexdigest()
        out.append(decode_event(json.dumps(data)))
    return out


def counted(doc: dict[str, Any]) -> bool:
    """A gift as analytics counts it: a streak once, at its end frame."""
    p = doc["payload"]
    return doc["eventType"] == "GIFT" and p.get("streakEnd", not p.get("streakActive", False))


def expected_fans(docs: list[dict[str, Any]], streamer: str = STREAMER_HANDLE) -> list[dict]:
    """Each user's figures over ``docs`` (live, shown, in the order they were stored), sorted
    as the API sorts by default: coins, largest first, then user id."""
    fans: dict[str, dict[str, Any]] = {}
    latest: dict[str, dict[str, Any]] = {}
    for d in docs:
        u = d["user"]
        if u["userId"] == SYSTEM:
            continue
        f = fans.setdefault(
            u["userId"],
            {
                "userId": u["userId"],
                "coins": 0,
                "gifts": 0,
                "messages": 0,
                "likes": 0,
                "sessions": set(),
                "firstSeen": parse_iso(d["timestamp"]),
                "lastSeen": parse_iso(d["timestamp"]),
                "followed": False,
                "subscribed": False,
            },
        )
        latest[u["userId"]] = u
        f["sessions"].add(d["sessionId"])
        f["firstSeen"] = min(f["firstSeen"], parse_iso(d["timestamp"]))
        f["lastSeen"] = max(f["lastSeen"], parse_iso(d["timestamp"]))
        if counted(d):
            f["coins"] += d["payload"]["coins"]
            f["gifts"] += 1
        f["messages"] += d["eventType"] == "CHAT"
        f["likes"] += d["payload"]["likeCount"] if d["eventType"] == "LIKE" else 0
        f["followed"] |= d["eventType"] == "FOLLOW"
        f["subscribed"] |= d["eventType"] == "SUBSCRIBE"
    out = []
    for user_id, f in fans.items():
        last = latest[user_id]
        out.append(
            {
                "userId": user_id,
                "uniqueId": last["uniqueId"],
                "displayName": last.get("displayName"),
                "coins": f["coins"],
                "gifts": f["gifts"],
                "messages": f["messages"],
                "likes": f["likes"],
                "sessions": len(f["sessions"]),
                "firstSeen": f["firstSeen"],
                "lastSeen": f["lastSeen"],
                "follower": f["followed"] or last.get("followRole", 0) >= 1,
                "subscriber": f["subscribed"] or bool(last.get("isSubscriber")),
                "moderator": bool(last.get("isModerator")),
                "notes": sum(1 for n in NOTES if n == (user_id, streamer)),
            }
        )
    return sorted(out, key=lambda x: (-x["coins"], x["userId"]))


def lifetime_docs() -> list[dict[str, Any]]:
    return [*DOCS, *(d for d in SECOND if d is not ARCHIVED)]


def readable(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """API items with their times parsed (the API writes ISO 8601, precision as it has it)."""
    return [
        {**x, "firstSeen": parse_iso(x["firstSeen"]), "lastSeen": parse_iso(x["lastSeen"])}
        for x in items
    ]


def ranked(fans: list[dict[str, Any]], sort: str, order: str) -> list[str]:
    """User ids in the API's order: by ``sort`` (``order``), ties by user id ascending."""
    ids = sorted(fans, key=lambda x: x["userId"])
    return [x["userId"] for x in sorted(ids, key=lambda x: x[SORTS[sort]], reverse=order == "desc")]


async def seed_everything(api: ApiHarness, *, replay: bool = True) -> None:
    await api.seed()
    await api.store.write_events(as_events(SECOND))
    if replay:
        await api.store.write_events(replay_of_fixture())  # never counted
    await api.store.write_events(other_stream_events())  # another streamer's
    async with api.engine.begin() as conn:
        await conn.execute(
            update(events)
            .where(events.c.event_id == ARCHIVED["eventId"])
            .values(archived_at=datetime.now().astimezone())
        )
    queries = Queries(api.engine)
    for user_id, streamer in NOTES:
        await queries.add_note(user_id, "mod", "watch this one", streamer)


@pytest.fixture
async def seeded(api: ApiHarness) -> ApiHarness:
    await seed_everything(api)
    return api


async def moderator(api: ApiHarness) -> dict[str, str]:
    return await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])


async def fans(api: ApiHarness, headers: dict[str, str], stream: str, **params: Any) -> Any:
    response = await api.client.get(f"/streams/{stream}/fans", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# -- figures -----------------------------------------------------------------------------------
async def test_a_streamers_fans_have_their_lifetime_figures(seeded: ApiHarness) -> None:
    headers = await moderator(seeded)
    body = await fans(seeded, headers, f"@{STREAMER_HANDLE}", limit=500)
    expected = expected_fans(lifetime_docs())
    assert readable(body["items"]) == expected
    assert body["total"] == len(expected) == 5
    assert body["nextCursor"] is None
    # The fixture's people, as the fixture has them: sessions, streaks and flags.
    by_handle = {x["uniqueId"]: x for x in body["items"]}
    assert {h: x["sessions"] for h, x in by_handle.items()} == {
        "zoe.petals": 2,
        "akhmed_kzn": 2,
        "xiaoming88": 2,
        "mallory": 1,
        "night.owl": 1,
    }
    assert by_handle["xiaoming88"]["gifts"] == 2  # one streak of five frames, twice
    assert by_handle["xiaoming88"]["subscriber"] is True  # subscribed; latest flag says not
    assert by_handle["akhmed_kzn"]["moderator"] is True
    assert by_handle["akhmed_kzn"]["notes"] == 2
    assert by_handle["mallory"]["follower"] is False


async def test_a_replay_changes_no_fans_figure(api: ApiHarness) -> None:
    await seed_everything(api, replay=False)
    headers = await moderator(api)
    stream = f"/streams/@{STREAMER_HANDLE}/fans"

    async def now() -> tuple[Any, bytes]:
        page = await fans(api, headers, f"@{STREAMER_HANDLE}", limit=500)
        download = await api.client.get(stream, params={"format": "csv"}, headers=headers)
        return page, download.content

    before = await now()
    replayed = replay_of_fixture()
    await api.store.write_events(replayed)
    async with api.engine.connect() as conn:  # the replay is stored: it could have counted
        stored = await conn.execute(
            select(func.count()).where(events.c.session_id == replayed[0].session_id)
        )
        assert stored.scalar_one() == len(DOCS)
    assert await now() == before


async def test_a_room_id_gives_the_fans_of_that_broadcast(seeded: ApiHarness) -> None:
    headers = await moderator(seeded)
    first = await fans(seeded, headers, FIXTURE_ROOM, limit=500)
    assert readable(first["items"]) == expected_fans(DOCS)
    second = await fans(seeded, headers, SECOND_ROOM, limit=500)
    assert readable(second["items"]) == expected_fans([d for d in SECOND if d is not ARCHIVED])
    assert {x["sessions"] for x in second["items"]} == {1}


# -- sort, search, pages -----------------------------------------------------------------------
async def test_every_sort_key_orders_both_ways(seeded: ApiHarness) -> None:
    headers = await moderator(seeded)
    expected = expected_fans(lifetime_docs())
    default = await fans(seeded, headers, f"@{STREAMER_HANDLE}")
    assert [x["userId"] for x in default["items"]] == ranked(expected, "coins", "desc")
    for sort in SORTS:
        for order in ("asc", "desc"):
            body = await fans(seeded, headers, f"@{STREAMER_HANDLE}", sort=sort, order=order)
            assert [x["userId"] for x in body["items"]] == ranked(expected, sort, order), (
                sort,
                order,
            )
    # The fixture tells the orders apart: coins and messages rank differently.
    assert ranked(expected, "coins", "desc") != ranked(expected, "messages", "desc")


@pytest.mark.parametrize(
    ("q", "handles"),
    [
        ("ZOE", {"zoe.petals"}),  # handle, any case
        ("ахМЕ", {"akhmed_kzn"}),  # display name beyond ASCII ("Ахмед"), any case
        ("@xiao", {"xiaoming88"}),  # a handle typed with its @
        ("小明", {"xiaoming88"}),
        ("owl", {"night.owl"}),  # handle and display name alike
        ("a", {"zoe.petals", "akhmed_kzn", "xiaoming88", "mallory"}),
        ("nobody here", set()),
        ("%", set()),  # LIKE wildcards are literal
    ],
)
async def test_search_narrows_by_handle_or_display_name(
    seeded: ApiHarness, q: str, handles: set[str]
) -> None:
    headers = await moderator(seeded)
    body = await fans(seeded, headers, f"@{STREAMER_HANDLE}", q=q)
    assert {x["uniqueId"] for x in body["items"]} == handles
    assert body["total"] == len(handles)


async def test_pages_follow_one_another_without_repeats(seeded: ApiHarness) -> None:
    headers = await moderator(seeded)
    stream = f"@{STREAMER_HANDLE}"
    whole = await fans(seeded, headers, stream, sort="messages", order="asc")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"sort": "messages", "order": "asc", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await fans(seeded, headers, stream, **params)
        assert page["total"] == 5
        seen += [x["userId"] for x in page["items"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [x["userId"] for x in whole["items"]]
    # A cursor pages only the listing it came from.
    first = await fans(seeded, headers, stream, sort="messages", order="asc", limit=2)
    for other in ({"sort": "coins", "order": "asc"}, {"sort": "messages", "order": "desc"}):
        response = await seeded.client.get(
            f"/streams/{stream}/fans",
            params={**other, "limit": 2, "cursor": first["nextCursor"]},
            headers=headers,
        )
        assert response.status_code == 400, response.text
        assert "cursor" in response.json()["detail"]


# -- CSV ---------------------------------------------------------------------------------------
async def test_csv_is_every_matching_fan_as_a_download(seeded: ApiHarness) -> None:
    headers = await moderator(seeded)
    response = await seeded.client.get(
        f"/streams/@{STREAMER_HANDLE}/fans",
        params={"format": "csv", "limit": 1, "sort": "likes"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="ttlp-fans-{STREAMER_HANDLE}.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    expected = expected_fans(lifetime_docs())
    by_id = {x["userId"]: x for x in expected}
    assert [r[0] for r in rows[1:]] == ranked(expected, "likes", "desc")  # all, not one page
    for r in rows[1:]:
        cells = dict(zip(CSV_COLUMNS, r, strict=True))
        x = by_id[cells["userId"]]
        assert cells["handle"] == x["uniqueId"]
        assert cells["displayName"] == (x["displayName"] or "")
        for key in ("coins", "gifts", "messages", "likes", "sessions", "notes"):
            assert int(cells[key]) == x[key], key
        assert parse_iso(cells["firstSeen"]) == x["firstSeen"]
        assert parse_iso(cells["lastSeen"]) == x["lastSeen"]
        assert cells["follower"] == str(x["follower"]).lower()
        assert cells["subscriber"] == str(x["subscriber"]).lower()
    searched = await seeded.client.get(
        f"/streams/@{STREAMER_HANDLE}/fans", params={"format": "csv", "q": "zoe"}, headers=headers
    )
    lines = list(csv.reader(io.StringIO(searched.content.decode("utf-8-sig"), newline="")))
    assert [r[1] for r in lines[1:]] == ["zoe.petals"]


# -- who may see them --------------------------------------------------------------------------
async def test_a_viewer_gets_403_with_a_json_body(seeded: ApiHarness) -> None:
    viewer = await seeded.login("viewer", Role.VIEWER, [STREAMER_HANDLE])
    for params in ({}, {"format": "csv"}):
        response = await seeded.client.get(
            f"/streams/@{STREAMER_HANDLE}/fans", params=params, headers=viewer
        )
        assert response.status_code == 403, response.text
        assert response.json()["status_code"] == 403
        assert "akhmed" not in response.text


async def test_fans_are_in_scope_only(seeded: ApiHarness) -> None:
    stranger = await seeded.login("stranger", Role.STREAMER, [OTHER_HANDLE])
    for stream in (f"@{STREAMER_HANDLE}", FIXTURE_ROOM, SECOND_ROOM):
        response = await seeded.client.get(f"/streams/{stream}/fans", headers=stranger)
        assert response.status_code == 403, response.text
        assert response.json()["status_code"] == 403
    # Their own streamer's fans are theirs (the same people, another streamer's notes).
    own = await fans(seeded, stranger, f"@{OTHER_HANDLE}", limit=500)
    assert readable(own["items"]) == expected_fans(DOCS, streamer=OTHER_HANDLE)
    admin = await seeded.login("root", Role.STREAMER, ["*"])
    for stream in ("@nobody.here", "7440000000000000000"):
        response = await seeded.client.get(f"/streams/{stream}/fans", headers=admin)
        assert response.status_code == 404, response.text
        assert response.json()["status_code"] == 404
    anonymous = await seeded.client.get(f"/streams/@{STREAMER_HANDLE}/fans")
    assert anonymous.status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "handle"},
        {"order": "up"},
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "many"},
        {"format": "xml"},
        {"q": ""},
        {"q": "x" * 101},
        {"cursor": "not-one-of-ours"},
    ],
)
async def test_bad_parameters_are_400_with_a_reason(
    seeded: ApiHarness, params: dict[str, str]
) -> None:
    headers = await moderator(seeded)
    response = await seeded.client.get(
        f"/streams/@{STREAMER_HANDLE}/fans", params=params, headers=headers
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status_code"] == 400
    assert body["detail"]


async def test_a_stream_that_is_neither_room_nor_handle_is_400(seeded: ApiHarness) -> None:
    headers = await moderator(seeded)
    response = await seeded.client.get("/streams/luna beats!/fans", headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["status_code"] == 400
