"""History, users, notes, analytics and replay through the API, on both backends (DESIGN §7.3).

Expected values are computed from the fixture session (``unified-events.ndjson``), never typed
in: the fixture can grow without these tests going stale.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.api import (
    FIXTURE_ROOM,
    OTHER_ROOM,
    STREAMER_HANDLE,
    ApiHarness,
    other_stream_events,
)
from tests.support.events import chat, user
from tests.support.paths import FIXTURES
from tests.support.wait import wait_for
from ttlp.api.accounts import Role
from ttlp.contracts import events as ev
from ttlp.db.queries import MAX_PAGE
from ttlp.db.tables import user_notes
from ttlp.runtime import ROLES

pytestmark = pytest.mark.integration

PAGE = 7
WRITER_BATCHES = 30
POLL_TIMEOUT_S = 60.0


def fixture_docs() -> list[dict[str, Any]]:
    text = (FIXTURES / "unified-events.ndjson").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


DOCS = fixture_docs()
SESSION = DOCS[0]["sessionId"]


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["eventId"] for item in items]


async def walk(
    api: ApiHarness,
    path: str,
    headers: dict[str, str],
    *,
    order: str,
    limit: int = PAGE,
    params: dict[str, Any] | None = None,
    between_pages: Callable[[], Awaitable[None]] | None = None,
) -> list[dict[str, Any]]:
    """Every event of a listing, following ``nextCursor`` to the end."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": limit, "order": order, **(params or {})}
        if cursor is not None:
            query["cursor"] = cursor
        response = await api.client.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            return items
        if between_pages is not None:
            await between_pages()


async def streamer(api: ApiHarness) -> dict[str, str]:
    return await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])


# -- pagination while events arrive ------------------------------------------------------------
class Writer:
    """Writes chat events into the fixture room (the fixture session and a second one) in the
    background, as the store role would while someone reads history."""

    def __init__(self, api: ApiHarness) -> None:
        self.api = api
        self.second_session = str(uuid.uuid4())
        self.written: list[tuple[str, str]] = []  # (sessionId, eventId) in write order
        self.wrote = asyncio.Event()
        self.done = False

    async def run(self) -> None:
        try:
            for n in range(WRITER_BATCHES):
                batch = [
                    chat(
                        session,
                        1_000_000 + 2 * n + k,
                        who=user(n % 3),
                        t=n,
                        stream=FIXTURE_ROOM,
                        message=f"live message {n}",
                    )
                    for k, session in enumerate((SESSION, self.second_session))
                ]
                await self.api.store.write_events(batch)
                self.written.extend((e.session_id, e.event_id) for e in batch)
                self.wrote.set()
                await asyncio.sleep(0.002)
        finally:
            self.done = True
            self.wrote.set()

    async def next_batch(self) -> None:
        """Wait until at least one more batch is committed (or the writer is done), so the
        pages of a walk are read while the table changes under them."""
        self.wrote.clear()
        if not self.done:
            await asyncio.wait_for(self.wrote.wait(), POLL_TIMEOUT_S)

    def of(self, session: str | None) -> list[str]:
        return [eid for sid, eid in self.written if session is None or sid == session]


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("target", ["session", "@handle", "room"])
async def test_pages_are_complete_and_stable_while_events_arrive(
    api: ApiHarness, target: str, order: str
) -> None:
    await api.seed()
    await api.store.write_events(other_stream_events())  # another streamer: never listed
    headers = await streamer(api)
    path, session = {
        "session": (f"/sessions/{SESSION}/events", SESSION),
        "@handle": (f"/streams/@{STREAMER_HANDLE}/history", None),
        "room": (f"/streams/{FIXTURE_ROOM}/history", None),
    }[target]
    initial = ids(DOCS)  # everything in the target when the walk starts
    writer = Writer(api)
    writing = asyncio.create_task(writer.run())
    try:
        await writer.next_batch()  # the first page already sees a changing table
        items = await walk(api, path, headers, order=order, between_pages=writer.next_batch)
    finally:
        await writing

    seen = ids(items)
    assert len(seen) == len(set(seen)), "an event was listed twice"
    new = writer.of(session)
    assert len(writer.written) == 2 * WRITER_BATCHES
    arrived = len(seen) - len(initial)
    assert 0 < arrived <= len(new)
    if order == "asc":
        # Oldest first: the events of the start, then new ones in arrival order, no gaps.
        assert seen == initial + new[:arrived]
    else:
        # Newest first: whatever had arrived before the first page, then the rest, no gaps.
        assert seen == list(reversed(initial + new[:arrived]))
    assert {item["streamId"] for item in items} == {FIXTURE_ROOM}


async def test_a_full_walk_after_the_writes_lists_every_event_once(api: ApiHarness) -> None:
    await api.seed()
    headers = await streamer(api)
    writer = Writer(api)
    await writer.run()
    expected = ids(DOCS) + writer.of(SESSION)
    for order in ("asc", "desc"):
        items = await walk(api, f"/sessions/{SESSION}/events", headers, order=order)
        assert ids(items) == (expected if order == "asc" else expected[::-1])
    stream_items = await walk(api, f"/streams/@{STREAMER_HANDLE}/history", headers, order="asc")
    assert ids(stream_items) == ids(DOCS) + writer.of(None)


# -- filters -----------------------------------------------------------------------------------
async def session_page(
    api: ApiHarness, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    return await walk(
        api, f"/sessions/{SESSION}/events", headers, order="asc", limit=MAX_PAGE, params=params
    )


async def test_filters_by_type(api: ApiHarness) -> None:
    await api.seed()
    headers = await streamer(api)
    items = await session_page(api, headers, types="chat, GIFT")
    assert ids(items) == [d["eventId"] for d in DOCS if d["eventType"] in {"CHAT", "GIFT"}]
    bad = await api.client.get(f"/sessions/{SESSION}/events?types=CHAT,NOPE", headers=headers)
    assert bad.status_code == 400
    assert "NOPE" in bad.json()["detail"]


async def test_filters_by_user_id_and_handle(api: ApiHarness) -> None:
    await api.seed()
    headers = await streamer(api)
    someone = next(d["user"] for d in DOCS if d["user"]["userId"] != "0")
    expected = [d["eventId"] for d in DOCS if d["user"]["userId"] == someone["userId"]]
    by_id = await session_page(api, headers, user=someone["userId"])
    by_handle = await session_page(api, headers, user="@" + someone["uniqueId"].upper())
    assert ids(by_id) == ids(by_handle) == expected
    stream = await walk(
        api,
        f"/streams/@{STREAMER_HANDLE}/history",
        headers,
        order="desc",
        params={"user": "@" + someone["uniqueId"]},
    )
    assert ids(stream) == expected[::-1]
    unknown = await api.client.get(
        f"/sessions/{SESSION}/events", params={"user": "@nobody.seen"}, headers=headers
    )
    assert unknown.status_code == 404
    bad = await api.client.get(
        f"/sessions/{SESSION}/events", params={"user": "not a user"}, headers=headers
    )
    assert bad.status_code == 400


def chats_containing(text: str) -> list[str]:
    return [
        d["eventId"]
        for d in DOCS
        if d["eventType"] == "CHAT" and text.lower() in d["payload"]["message"].lower()
    ]


async def test_text_search_is_case_insensitive_and_literal(api: ApiHarness) -> None:
    await api.seed()
    headers = await streamer(api)
    for q in ("luna", "LUNA", "[cat_dance]", "Привет", "привет", "ПРИВЕТ", "你好", "🌌"):
        expected = chats_containing(q)
        assert expected, q
        assert ids(await session_page(api, headers, q=q)) == expected, q
    # LIKE wildcards are matched literally, not as patterns.
    assert chats_containing("%") == chats_containing("l_na") == chats_containing("\\") == []
    for q in ("%", "_", "l_na", "\\", "t_is drop"):
        assert ids(await session_page(api, headers, q=q)) == chats_containing(q), q
    # Only chat messages are searched (an ERROR event carries a `message` too).
    error = next(d for d in DOCS if d["eventType"] == "ERROR")["payload"]["message"]
    assert await session_page(api, headers, q=error) == []


async def test_filters_by_time_range(api: ApiHarness) -> None:
    await api.seed()
    headers = await streamer(api)
    times = [d["timestamp"] for d in DOCS]
    assert times == sorted(times)
    assert len(set(times)) == len(times)
    since, until = times[10], times[20]
    items = await session_page(api, headers, since=since, until=until)
    assert ids(items) == ids(DOCS[10:20])  # since inclusive, until exclusive
    # The same instants written with another UTC offset select the same events.
    plus_one = {
        name: datetime.fromisoformat(value.replace("Z", "+00:00"))
        .astimezone(datetime.now(UTC).astimezone().tzinfo)
        .isoformat()
        for name, value in (("since", since), ("until", until))
    }
    assert ids(await session_page(api, headers, **plus_one)) == ids(DOCS[10:20])
    assert ids(await session_page(api, headers, since=times[-1])) == ids(DOCS[-1:])
    # A time without an offset is UTC.
    naive = {"since": since.removesuffix("Z"), "until": until.removesuffix("Z")}
    assert ids(await session_page(api, headers, **naive)) == ids(DOCS[10:20])
    for bad in ("yesterday", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        response = await api.client.get(
            f"/sessions/{SESSION}/events", params={"since": bad}, headers=headers
        )
        assert response.status_code == 400, (bad, response.text)
        assert "since" in response.text


@pytest.mark.parametrize("limit", [MAX_PAGE + 1, 0, -1])
async def test_a_limit_out_of_range_is_refused(api: ApiHarness, limit: int) -> None:
    await api.seed()
    headers = await streamer(api)
    for path in (f"/sessions/{SESSION}/events", f"/streams/@{STREAMER_HANDLE}/history"):
        response = await api.client.get(path, params={"limit": limit}, headers=headers)
        assert response.status_code == 400, response.text
        assert "limit" in response.text


async def test_bad_and_foreign_cursors_are_refused_with_a_reason(api: ApiHarness) -> None:
    await api.seed()
    await api.store.write_events(other_stream_events())
    headers = await api.login("all", Role.STREAMER, ["*"])
    path = f"/sessions/{SESSION}/events"
    first = (await api.client.get(path, params={"limit": 5}, headers=headers)).json()
    cursor = first["nextCursor"]
    assert cursor

    async def refused(where: str, **params: Any) -> str:
        response = await api.client.get(where, params=params, headers=headers)
        assert response.status_code == 400, (params, response.text)
        body = response.json()
        assert "cursor" in body["detail"], body
        assert "Traceback" not in response.text
        return str(body["detail"])

    await refused(path, cursor="not-a-cursor")
    await refused(path, cursor="x" * 200)
    await refused(path, cursor=cursor + "AA")
    await refused(path, cursor=cursor, order="desc")
    # A cursor of one listing does not page another one.
    other_session = other_stream_events()[0].session_id
    await refused(f"/sessions/{other_session}/events", cursor=cursor, limit=5)
    await refused(path, cursor=cursor, limit=5, types="CHAT")
    await refused(f"/streams/{FIXTURE_ROOM}/history", cursor=cursor, limit=5)
    # ... while it keeps paging its own listing with any page size.
    second = await api.client.get(path, params={"limit": 3, "cursor": cursor}, headers=headers)
    assert second.status_code == 200
    assert ids(second.json()["items"]) == ids(DOCS[5:8])


# -- TikTok users and notes --------------------------------------------------------------------
def user_facts(user_id: str) -> dict[str, Any]:
    mine = [d for d in DOCS if d["user"]["userId"] == user_id]
    last = mine[-1]["user"]
    return {
        "userId": user_id,
        "uniqueId": last["uniqueId"],
        "displayName": last.get("displayName"),
        "eventCount": len(mine),
        "events": [d["eventId"] for d in mine],
    }


async def test_a_user_by_id_and_by_handle_with_their_history(api: ApiHarness) -> None:
    await api.seed()
    headers = await streamer(api)
    chatter = Counter(d["user"]["userId"] for d in DOCS if d["eventType"] == "CHAT")
    user_id = chatter.most_common(1)[0][0]
    facts = user_facts(user_id)
    for ref in (user_id, "@" + facts["uniqueId"], "@" + facts["uniqueId"].upper()):
        response = await api.client.get(f"/users/{ref}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["userId"] == user_id
        assert body["uniqueId"] == facts["uniqueId"]
        assert body["displayName"] == facts["displayName"]
        assert body["eventCount"] == facts["eventCount"]
        history = await walk(api, f"/users/{ref}/events", headers, order="desc")
        assert ids(history) == facts["events"][::-1]
    chats = await walk(
        api, f"/users/{user_id}/events", headers, order="asc", params={"types": "CHAT"}
    )
    assert len(chats) == chatter[user_id]
    assert (await api.client.get("/users/123456789", headers=headers)).status_code == 404
    assert (await api.client.get("/users/@nobody.seen", headers=headers)).status_code == 404
    assert (await api.client.get("/users/a%20b", headers=headers)).status_code == 400
    # Someone scoped to another streamer does not see this streamer's viewers.
    stranger = await api.login("stranger", Role.STREAMER, ["someone.else"])
    assert (await api.client.get(f"/users/{user_id}", headers=stranger)).status_code == 404


async def test_a_note_is_saved_and_listed(api: ApiHarness) -> None:
    await api.seed()
    moderator = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    user_id = next(d["user"]["userId"] for d in DOCS if d["eventType"] == "GIFT")
    handle = user_facts(user_id)["uniqueId"]
    first = await api.client.post(
        f"/users/{user_id}/notes", json={"body": "  generous gifter  "}, headers=moderator
    )
    assert first.status_code == 201, first.text
    second = await api.client.post(
        f"/users/@{handle}/notes", json={"body": "asked for a shout-out 🎉"}, headers=moderator
    )
    assert second.status_code == 201, second.text
    assert first.json()["body"] == "generous gifter"
    assert first.json()["author"] == "mod"

    async with api.engine.connect() as conn:
        rows = (await conn.execute(select(user_notes).order_by(user_notes.c.id))).all()
    assert [(r.user_id, r.author, r.body) for r in rows] == [
        (user_id, "mod", "generous gifter"),
        (user_id, "mod", "asked for a shout-out 🎉"),
    ]
    listed = await api.client.get(f"/users/@{handle}/notes", headers=moderator)
    assert listed.status_code == 200
    assert [n["body"] for n in listed.json()] == ["asked for a shout-out 🎉", "generous gifter"]
    assert {n["id"] for n in listed.json()} == {first.json()["id"], second.json()["id"]}


async def test_a_bad_note_is_refused(api: ApiHarness) -> None:
    await api.seed()
    moderator = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    viewer = await api.login("viewer", Role.VIEWER, [STREAMER_HANDLE])
    user_id = next(d["user"]["userId"] for d in DOCS if d["eventType"] == "CHAT")
    path = f"/users/{user_id}/notes"
    for body in ({"body": "x" * 4001}, {"body": "   "}, {"body": "ok", "extra": 1}, {}):
        response = await api.client.post(path, json=body, headers=moderator)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["detail"]
    assert (await api.client.post(path, json={"body": "x" * 4000}, headers=moderator)).is_success
    assert (await api.client.post(path, json={"body": "hi"}, headers=viewer)).status_code == 403
    assert (await api.client.get(path, headers=viewer)).status_code == 403
    missing = await api.client.post("/users/4242/notes", json={"body": "hi"}, headers=moderator)
    assert missing.status_code == 404
    async with api.engine.connect() as conn:
        bodies = (await conn.execute(select(user_notes.c.body))).scalars().all()
    assert bodies == ["x" * 4000]


# -- analytics ---------------------------------------------------------------------------------
def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def bucket_start(iso: str, width: int) -> str:
    start = int(epoch(iso)) // width * width
    return datetime.fromtimestamp(start, UTC).isoformat().replace("+00:00", "Z")


def counted_gifts(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A streak counts once: its end frame (non-streakable gifts are their own end; a gift
    without streak fields is a single gift)."""
    return [
        d
        for d in docs
        if d["eventType"] == "GIFT"
        and d["payload"].get("streakEnd", not d["payload"].get("streakActive", False))
    ]


def expected_analytics(docs: list[dict[str, Any]], width: int) -> dict[str, Any]:
    buckets: dict[str, dict[str, Any]] = {}
    for d in docs:
        entry = buckets.setdefault(bucket_start(d["timestamp"], width), {"counts": {}, "coins": 0})
        entry["counts"][d["eventType"]] = entry["counts"].get(d["eventType"], 0) + 1
    for d in counted_gifts(docs):
        buckets[bucket_start(d["timestamp"], width)]["coins"] += d["payload"]["coins"]
    names = {d["user"]["userId"]: d["user"] for d in docs}
    gifts: dict[str, list[int]] = {}
    for d in counted_gifts(docs):
        gifts.setdefault(d["user"]["userId"], []).append(d["payload"]["coins"])
    chats = Counter(d["user"]["userId"] for d in docs if d["eventType"] == "CHAT")

    def who(user_id: str) -> dict[str, Any]:
        return {
            "userId": user_id,
            "uniqueId": names[user_id]["uniqueId"],
            "displayName": names[user_id].get("displayName"),
        }

    return {
        "bucketSeconds": width,
        "buckets": [{"start": start, **buckets[start]} for start in sorted(buckets)],
        "totals": dict(Counter(d["eventType"] for d in docs)),
        "coins": sum(d["payload"]["coins"] for d in counted_gifts(docs)),
        "topGifters": [
            {**who(u), "coins": sum(c), "gifts": len(c)}
            for u, c in sorted(gifts.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
        ],
        "topChatters": [
            {**who(u), "messages": n}
            for u, n in sorted(chats.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "uniqueUsers": len({d["user"]["userId"] for d in docs} - {"0"}),
        "peakViewers": max(
            d["payload"]["viewerCount"] for d in docs if d["eventType"] == "ROOM_USER"
        ),
    }


async def test_analytics_of_the_fixture_session(api: ApiHarness) -> None:
    await api.seed()
    await api.store.write_events(other_stream_events())  # another room: not counted
    headers = await streamer(api)
    gifts = [d for d in DOCS if d["eventType"] == "GIFT"]
    assert len(counted_gifts(DOCS)) < len(gifts), "the fixture has streaks"
    for width in (10, 60):
        expected = expected_analytics(DOCS, width)
        for params in (
            {"sessionId": SESSION},
            {"streamId": f"@{STREAMER_HANDLE}"},
            {"streamId": FIXTURE_ROOM},
        ):
            response = await api.client.get(
                "/analytics", params={**params, "bucket": width}, headers=headers
            )
            assert response.status_code == 200, response.text
            assert response.json() == expected, params
    # Coins of a streak are counted once, at its end, not once per frame.
    every_frame = sum(d["payload"]["coins"] for d in gifts)
    assert expected["coins"] < every_frame


async def test_analytics_of_a_time_range(api: ApiHarness) -> None:
    await api.seed()
    headers = await streamer(api)
    since, until = DOCS[8]["timestamp"], DOCS[30]["timestamp"]
    # One bound with an offset, one without (UTC): both are accepted and compared.
    for params in (
        {"since": since, "until": until},
        {"since": since.removesuffix("Z"), "until": until},
    ):
        response = await api.client.get(
            "/analytics", params={"sessionId": SESSION, "bucket": 10, **params}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert response.json() == expected_analytics(DOCS[8:30], 10)


async def test_a_gift_without_streak_fields_counts_once(api: ApiHarness) -> None:
    """A gift event that says nothing about streaks (another producer, an older normalizer) is
    a single gift: counted, like a non-streakable one."""
    await api.seed()
    headers = await streamer(api)
    plain = ev.GiftEvent(
        schema_version="1",
        event_id="f" * 64,
        stream_id=FIXTURE_ROOM,
        session_id=SESSION,
        timestamp=DOCS[-1]["timestamp"],
        source="live",
        seq_no=42,
        user=user(7),
        trigger_id=2,
        payload=ev.GiftPayload(gift_id=1, gift_name="Heart", gift_count=1, coins=7),
    )
    await api.store.write_events([plain])
    body = (await api.client.get(f"/analytics?sessionId={SESSION}", headers=headers)).json()
    assert body["coins"] == expected_analytics(DOCS, 60)["coins"] + 7
    assert {
        "userId": "1007",
        "uniqueId": "viewer7",
        "displayName": None,
        "coins": 7,
        "gifts": 1,
    } in (body["topGifters"])


async def test_a_viewer_gets_aggregates_without_identities(api: ApiHarness) -> None:
    await api.seed()
    viewer = await api.login("viewer", Role.VIEWER, [STREAMER_HANDLE])
    response = await api.client.get(f"/analytics?sessionId={SESSION}", headers=viewer)
    assert response.status_code == 200, response.text
    body = response.json()
    expected = expected_analytics(DOCS, 60)
    identity = {"userId", "uniqueId", "displayName"}
    assert body["topGifters"] == [
        {k: v for k, v in row.items() if k not in identity} for row in expected["topGifters"]
    ]
    assert body["topChatters"] == [
        {k: v for k, v in row.items() if k not in identity} for row in expected["topChatters"]
    ]
    assert body["totals"] == expected["totals"]
    assert body["uniqueUsers"] == expected["uniqueUsers"]
    for user_id in {d["user"]["userId"] for d in DOCS} - {"0"}:
        assert user_id not in response.text


@pytest.mark.parametrize(
    "params",
    [
        {"sessionId": SESSION, "streamId": FIXTURE_ROOM},
        {},
        {"sessionId": SESSION, "bucket": 9},
        {"sessionId": SESSION, "bucket": 86_401},
        {"sessionId": SESSION, "bucket": "minute"},
        {"sessionId": SESSION, "since": DOCS[5]["timestamp"], "until": DOCS[1]["timestamp"]},
        {"streamId": "not a room"},
        {"sessionId": SESSION, "since": "0001-01-01T00:00:00+01:00"},
        {"sessionId": SESSION, "since": "2024-11-21T20:00:00", "until": "2024-11-21T19:00:00Z"},
    ],
)
async def test_bad_analytics_requests_are_refused(api: ApiHarness, params: dict[str, Any]) -> None:
    await api.seed()
    headers = await streamer(api)
    response = await api.client.get("/analytics", params=params, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["detail"]


async def test_analytics_out_of_scope_is_forbidden(api: ApiHarness) -> None:
    await api.seed()
    await api.store.write_events(other_stream_events())
    headers = await streamer(api)
    other_session = other_stream_events()[0].session_id
    for params in ({"sessionId": other_session}, {"streamId": OTHER_ROOM}):
        response = await api.client.get("/analytics", params=params, headers=headers)
        assert response.status_code == 403, response.text


# -- replay ------------------------------------------------------------------------------------
CHANGED_BY_REPLAY = {"eventId", "sessionId", "source", "ingestedAt"}


def canonical(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in CHANGED_BY_REPLAY}


async def test_a_replay_through_the_api_is_stored_and_visible(api: ApiHarness) -> None:
    """The pipeline (ingest with the mock provider, normalize, store) runs as tasks on the
    api's own context; the fixture's raw frames go through it, are archived, and a replay
    requested through the API comes back as a new session of the same events."""
    ctx = api.ctx
    assert ctx.settings.ingest.provider == "mock"  # the bundled raw-frames fixture
    stop = asyncio.Event()
    roles = [
        asyncio.create_task(ROLES[name].load()(ctx, stop), name=name)
        for name in ("ingest", "normalize", "store")
    ]
    headers = await streamer(api)
    try:
        frames = sum(
            1 for line in (FIXTURES / "raw-frames.ndjson").read_text().splitlines() if line
        )
        original: list[dict[str, Any]] = []

        async def original_stored() -> bool:
            for task in roles:
                if task.done():
                    task.result()  # a crashed role fails the test with its error
            sessions = (await api.client.get("/sessions", headers=headers)).json()
            if len(sessions) != 1:
                return False
            page = await api.client.get(
                f"/sessions/{sessions[0]['id']}/events?limit={MAX_PAGE}", headers=headers
            )
            original[:] = page.json()["items"]
            archived = await ctx.store.count_session_frames(sessions[0]["id"])
            return len(original) == len(DOCS) and archived == frames

        await wait_for(
            original_stored, what="the fixture session to be stored and archived", poll=0.05
        )
        source = original[0]["sessionId"]
        assert [canonical(e)["eventType"] for e in original] == [d["eventType"] for d in DOCS]

        response = await api.client.post(f"/sessions/{source}/replay", headers=headers)
        assert response.status_code == 202, response.text
        accepted = response.json()
        new = accepted["sessionId"]
        assert new != source
        assert accepted["replayOf"] == source
        replayed: list[dict[str, Any]] = []

        async def replay_stored() -> bool:
            for task in roles:
                if task.done():
                    task.result()
            page = await api.client.get(f"/sessions/{new}/events?limit={MAX_PAGE}", headers=headers)
            if page.status_code != 200:
                return False
            replayed[:] = page.json()["items"]
            return len(replayed) >= len(original)

        await wait_for(replay_stored, what="the replayed events to be stored", poll=0.05)
        assert [canonical(e) for e in replayed] == [canonical(e) for e in original]
        assert {e["source"] for e in replayed} == {"replay"}
        assert {e["sessionId"] for e in replayed} == {new}
        assert not set(ids(replayed)) & set(ids(original))
        session = (await api.client.get(f"/sessions/{new}", headers=headers)).json()
        assert session["type"] == "replay"
        assert session["replayedFrom"] == source
        assert session["eventCount"] == len(original)
        # The original is untouched; the stream's history is of live events unless asked.
        assert ids(await walk(api, f"/sessions/{source}/events", headers, order="asc")) == ids(
            original
        )
        path = f"/streams/@{STREAMER_HANDLE}/history"
        assert ids(await walk(api, path, headers, order="asc")) == ids(original)
        both = {"includeReplays": "true"}
        history = await walk(api, path, headers, order="asc", params=both)
        assert len(history) == 2 * len(original)
    finally:
        stop.set()
        done, pending = await asyncio.wait(roles, timeout=30)
        for task in pending:
            task.cancel()
        for task in done:
            task.result()


def test_fixture_expectations_are_not_trivial() -> None:
    """Guards the tests above against a fixture that would make them vacuous."""
    assert SESSION
    assert all(d["sessionId"] == SESSION for d in DOCS)
    assert len(counted_gifts(DOCS)) >= 2
    assert sum(1 for d in DOCS if d["eventType"] == "ROOM_USER") >= 2
    assert len(Counter(d["user"]["userId"] for d in DOCS if d["eventType"] == "CHAT")) >= 2
