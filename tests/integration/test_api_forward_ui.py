"""What the Forwarding page uses, against local receivers on both backends (in-process bus +
SQLite, Redis + PostgreSQL): pause and resume, the test event, a target's deliveries, redeliver,
``streakEndOnly``, and who may do each (STREAMER, in scope), with 4xx JSON for bad input.

Receivers listen on 127.0.0.1, allow-listed through WEBHOOK_ALLOWLIST; the forwarder's back-off
is shrunk through its constructor so retries take milliseconds.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, select

from tests.fakes.receiver import Receiver, Reply, Request
from tests.support.api import OTHER_HANDLE, STREAMER_HANDLE, ApiHarness
from tests.support.forwarding import (
    ALLOW_LOOPBACK,
    WAIT_S,
    Rig,
    create_target,
    delivery_rows,
    events,
)
from tests.support.http import assert_json_error
from tests.support.wait import free_port, wait_for
from ttlp.api.accounts import Role
from ttlp.contracts.events import UnifiedEvent, decode_event
from ttlp.db.tables import events as events_table
from ttlp.db.tables import forward_deliveries
from ttlp.forward.signing import verify
from ttlp.forward.store import ForwardStore, utcnow

pytestmark = pytest.mark.integration


@pytest.fixture
def api_env(request: pytest.FixtureRequest) -> dict[str, object]:
    return dict(getattr(request, "param", ALLOW_LOOPBACK))


def statuses(status: str, n: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda rows: len(rows) == n and all(r["status"] == status for r in rows)


async def streamer(api: ApiHarness) -> dict[str, str]:
    return await api.login("boss", Role.STREAMER, [STREAMER_HANDLE])


async def seed_stream(api: ApiHarness) -> None:
    """The store has seen the fixture room, so its streamer (the targets' scope) is known."""
    await api.seed(events(1, "CONNECTED"))


def switch(healthy: Callable[[], bool]) -> Callable[[Request], Reply]:
    return lambda _: Reply(200) if healthy() else Reply(500)


# -- pause / resume ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "api_env", [{**ALLOW_LOOPBACK, "FORWARD_MAX_ATTEMPTS": 10_000}], indirect=True
)
async def test_pause_holds_pending_deliveries_and_queues_nothing_new_then_resume_sends(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_stream(api)
    headers = await streamer(api)
    healthy = False
    async with Receiver(switch(lambda: healthy)) as rx:
        target = await create_target(api, rx.url, eventTypes=["CHAT"])
        tid = target["id"]
        chats = events(4)
        async with Rig(api, monkeypatch=monkeypatch) as rig:
            await rig.send(chats[:2])
            await rig.wait_rows(
                "two failed first attempts",
                lambda rows: len(rows) == 2 and all(r["attempts"] >= 1 for r in rows),
            )
            paused = await api.client.post(f"/forward/targets/{tid}/pause", headers=headers)
            assert paused.status_code == 200, paused.text
            assert paused.json()["enabled"] is False
            assert paused.json()["counts"]["pending"] == 2

            await rig.forwarder.targets(force=True)  # as the reload would within 2 s
            worker = rig.forwarder.workers[tid]
            await wait_for(
                lambda: not worker.running, what="in-flight attempts done", timeout=WAIT_S
            )
            healthy = True
            sent = len(rx.requests)
            await rig.send(chats[2:])  # arrive while paused: not queued
            # Held: due, a healthy receiver, and still nothing sent over several worker steps.
            await rig.wait_rows(
                "rows due again",
                lambda rows: all(r["next_attempt_at"] <= rows_now(rows) for r in rows),
            )
            start = rig.steps[tid]
            await wait_for(lambda: rig.steps[tid] >= start + 3, what="3 steps", timeout=WAIT_S)
            assert len(rx.requests) == sent
            rows = await rig.rows()
            assert [r["status"] for r in rows] == ["pending", "pending"]
            assert {r["event_id"] for r in rows} == {e.event_id for e in chats[:2]}

            resumed = await api.client.post(f"/forward/targets/{tid}/resume", headers=headers)
            assert resumed.status_code == 200, resumed.text
            assert resumed.json()["enabled"] is True
            await rig.forwarder.targets(force=True)
            await rig.wait_rows("held rows delivered", statuses("delivered", 2))
    delivered = {r.headers["x-ttlp-event-id"] for r in rx.requests[sent:]}
    assert delivered == {e.event_id for e in chats[:2]}  # the events of the pause never go


def rows_now(rows: list[dict[str, Any]]) -> Any:
    """Now, in the form the rows' timestamps have (naive UTC on SQLite, aware on PostgreSQL)."""
    now = utcnow()
    return now.replace(tzinfo=None) if rows and rows[0]["next_attempt_at"].tzinfo is None else now


async def test_pausing_twice_and_resuming_a_running_target_change_nothing(
    api: ApiHarness,
) -> None:
    headers = await streamer(api)
    target = await create_target(api, "https://hooks.example.com/in")
    tid = target["id"]
    for op, enabled in [("pause", False), ("pause", False), ("resume", True), ("resume", True)]:
        answer = await api.client.post(f"/forward/targets/{tid}/{op}", headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["enabled"] is enabled
        shown = (await api.client.get(f"/forward/targets/{tid}", headers=headers)).json()
        assert shown["enabled"] is enabled
        assert "secret" not in answer.json()


# -- the test event ------------------------------------------------------------------------------
async def test_a_test_event_reaches_the_receiver_signed_and_is_not_stored(
    api: ApiHarness,
) -> None:
    headers = await streamer(api)
    async with Receiver(lambda _: Reply(202, b'{"received": true}')) as rx:
        target = await create_target(api, f"{rx.url}/hook", eventTypes=["LIKE", "GIFT"])
        tid = target["id"]
        paused = await api.client.post(f"/forward/targets/{tid}/pause", headers=headers)
        assert paused.status_code == 200  # a paused target can be tested too
        answer = await api.client.post(f"/forward/targets/{tid}/test", headers=headers)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        chat = await api.client.post(
            f"/forward/targets/{tid}/test", json={"eventType": "CHAT"}, headers=headers
        )
        assert chat.status_code == 200, chat.text
    assert result["ok"] is True
    assert (result["statusCode"], result["error"]) == (202, None)
    assert result["responseExcerpt"] == '{"received": true}'
    assert 0 < result["latencyMs"] < 15_000
    assert result["eventType"] == "GIFT"  # the target's first type

    first, second = rx.requests
    assert (first.method, first.path) == ("POST", "/hook")
    assert verify(target["secret"], first.headers, first.body)
    assert first.headers["x-ttlp-test"] == "1"
    assert first.headers["x-ttlp-event-id"] == result["eventId"]
    event = decode_event(first.body)  # a valid UnifiedEvent v1
    assert (event.event_id, event.__struct_config__.tag) == (result["eventId"], "GIFT")
    assert (event.stream_id, event.session_id) == ("0", "00000000-0000-0000-0000-000000000000")
    assert event.user.unique_id == "ttlp.test"

    chat_event = json.loads(second.body)
    assert chat_event["eventType"] == "CHAT"
    assert "ttlp test event" in chat_event["payload"]["message"]
    assert chat_event["eventId"] != result["eventId"]  # each test is a new event
    assert verify(target["secret"], second.headers, second.body)

    async with api.engine.connect() as conn:
        stored = await conn.scalar(select(func.count()).select_from(events_table))
        queued = await conn.scalar(select(func.count()).select_from(forward_deliveries))
    assert (stored, queued) == (0, 0)
    assert await api.bus.length(api.keys.events) == 0  # never published


@pytest.mark.parametrize(
    "api_env", [{**ALLOW_LOOPBACK, "OUTBOUND_READ_TIMEOUT_S": "0.3"}], indirect=True
)
async def test_a_test_event_says_how_the_receiver_failed(api: ApiHarness) -> None:
    headers = await streamer(api)
    never = asyncio.Event()

    async def hang(_: Request) -> Reply:
        await never.wait()
        return Reply(200)

    async def tested(url: str) -> dict[str, Any]:
        target = await create_target(api, url)
        answer = await api.client.post(f"/forward/targets/{target['id']}/test", headers=headers)
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        assert result["ok"] is False
        return result

    async with Receiver(lambda _: Reply(500, b"boom")) as failing, Receiver(hang) as slow:
        refused = await tested(failing.url)
        assert (refused["statusCode"], refused["error"]) == (500, "HTTP 500")
        assert refused["responseExcerpt"] == "boom"
        timed_out = await tested(slow.url)
        assert timed_out["statusCode"] is None
        assert "timeout" in timed_out["error"]
        never.set()
    nobody = await tested(f"http://127.0.0.1:{free_port()}/")
    assert nobody["statusCode"] is None
    assert "cannot connect" in nobody["error"]


# -- deliveries ----------------------------------------------------------------------------------
async def test_deliveries_are_listed_newest_first_filtered_and_paged(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_stream(api)
    headers = await streamer(api)
    chats = events(5)
    failing = {chats[1].event_id, chats[3].event_id}

    def receiver(request: Request) -> Reply:
        return Reply(503) if request.headers["x-ttlp-event-id"] in failing else Reply(200)

    async with Receiver(receiver) as rx:
        target = await create_target(api, rx.url)
        tid = target["id"]
        async with Rig(api, monkeypatch=monkeypatch) as rig:
            await rig.send(chats)
            rows = await rig.wait_rows(
                "3 delivered, 2 dead",
                lambda rows: sorted(r["status"] for r in rows) == ["dead"] * 2 + ["delivered"] * 3,
            )
    url = f"/forward/targets/{tid}/deliveries"
    page = (await api.client.get(url, headers=headers)).json()
    assert page["nextBefore"] is None
    assert [x["id"] for x in page["items"]] == sorted((r["id"] for r in rows), reverse=True)
    by_event = {x["eventId"]: x for x in page["items"]}
    for event in chats:
        item = by_event[event.event_id]
        assert item["eventType"] == "CHAT"
        assert item["nextAttemptAt"] is None  # finished
        assert item["createdAt"]
        assert item["updatedAt"]
        if event.event_id in failing:
            assert (item["status"], item["attempts"], item["lastError"]) == ("dead", 3, "HTTP 503")
        else:
            assert (item["status"], item["attempts"], item["lastError"]) == ("delivered", 1, None)

    dead = (await api.client.get(url, params={"status": "dead"}, headers=headers)).json()
    assert {x["eventId"] for x in dead["items"]} == failing

    seen: list[int] = []
    before: int | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"before": before} if before else {})}
        answer = (await api.client.get(url, params=params, headers=headers)).json()
        assert len(answer["items"]) <= 2
        seen += [x["id"] for x in answer["items"]]
        before = answer["nextBefore"]
        if before is None:
            break
    assert seen == [x["id"] for x in page["items"]]


async def test_a_pending_delivery_shows_when_it_is_tried_next(api: ApiHarness) -> None:
    headers = await streamer(api)
    target = await create_target(api, "https://hooks.example.com/in")
    [event] = events(1)
    data = msgspec.json.encode(event).decode()
    await ForwardStore(api.engine).enqueue([(target["id"], event.event_id, data)])
    page = (
        await api.client.get(f"/forward/targets/{target['id']}/deliveries", headers=headers)
    ).json()
    [item] = page["items"]
    assert (item["status"], item["attempts"], item["eventId"]) == ("pending", 0, event.event_id)
    assert item["nextAttemptAt"]


async def test_redeliver_of_a_dead_delivery_delivers_it(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_stream(api)
    headers = await streamer(api)
    healthy = False
    async with Receiver(switch(lambda: healthy)) as rx:
        target = await create_target(api, rx.url)
        tid = target["id"]
        async with Rig(api, monkeypatch=monkeypatch) as rig:
            await rig.send(events(1))
            [row] = await rig.wait_rows("the delivery is dead", statuses("dead", 1))
            healthy = True
            url = f"/forward/targets/{tid}/deliveries/{row['id']}/redeliver"
            answer = await api.client.post(url, headers=headers)
            assert answer.status_code == 200, answer.text
            queued = answer.json()
            assert (queued["status"], queued["attempts"], queued["lastError"]) == (
                "pending",
                0,
                None,
            )
            assert queued["nextAttemptAt"]
            [done] = await rig.wait_rows("delivered after redeliver", statuses("delivered", 1))
            assert done["attempts"] == 1  # counted from zero again
            assert len(rx.requests) == 4  # 3 failed attempts, then the redelivery

            again = await api.client.post(url, headers=headers)  # a delivered one may go again
            assert again.status_code == 200, again.text
            await wait_for(lambda: len(rx.requests) == 5, what="sent once more", timeout=WAIT_S)
    assert len({r.headers["x-ttlp-event-id"] for r in rx.requests}) == 1


async def test_redeliver_of_a_pending_delivery_is_a_conflict(api: ApiHarness) -> None:
    headers = await streamer(api)
    target = await create_target(api, "https://hooks.example.com/in")
    [event] = events(1)
    data = msgspec.json.encode(event).decode()
    store = ForwardStore(api.engine)
    await store.enqueue([(target["id"], event.event_id, data)])
    [row] = await delivery_rows(api)
    url = f"/forward/targets/{target['id']}/deliveries/{row['id']}/redeliver"
    body = assert_json_error(await api.client.post(url, headers=headers), 409)
    assert "pending already" in body["detail"]
    [after] = await delivery_rows(api)
    assert after == row  # untouched


# -- streakEndOnly -------------------------------------------------------------------------------
def late_closed_gift() -> UnifiedEvent:
    """A frame of a streak the ingest already closed: neither active nor an end."""
    gift = next(e for e in events(12, "GIFT") if e.payload.streak_active)  # type: ignore[union-attr]
    data = json.loads(msgspec.json.encode(gift))
    data["eventId"] = "f" * 64
    data["payload"].update(streakActive=False, streakEnd=False)
    return decode_event(json.dumps(data))


async def test_streak_end_only_forwards_one_post_per_streak(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_stream(api)
    gifts = events(12, "GIFT")
    counted = [g for g in gifts if g.payload.streak_end]  # type: ignore[union-attr]
    assert len(counted) == 4  # two streaks' end frames, two single gifts
    async with Receiver() as ends, Receiver() as every:
        end_target = await create_target(
            api, ends.url, eventTypes=["GIFT", "CHAT"], streakEndOnly=True
        )
        every_target = await create_target(api, every.url, eventTypes=["GIFT"])
        assert (end_target["streakEndOnly"], every_target["streakEndOnly"]) == (True, False)
        async with Rig(api, monkeypatch=monkeypatch) as rig:
            await rig.send([*gifts, late_closed_gift(), *events(2)])
            await rig.wait_rows("every delivery done", statuses("delivered", 4 + 2 + 13))
    got = [json.loads(r.body) for r in ends.requests]
    assert sorted(e["eventId"] for e in got if e["eventType"] == "GIFT") == sorted(
        g.event_id for g in counted
    )
    per_streak = Counter(
        (e["user"]["userId"], e["payload"]["giftId"]) for e in got if e["eventType"] == "GIFT"
    )
    assert set(per_streak.values()) == {1}
    rose = next(e for e in got if e["eventType"] == "GIFT" and e["payload"]["giftName"] == "Rose")
    assert rose["payload"]["giftCount"] == 5  # the streak's total
    assert sum(e["eventType"] == "CHAT" for e in got) == 2  # other types as before
    assert len(every.requests) == 13  # every frame, the late one too


async def test_streak_end_only_is_kept_replaced_and_defaults_to_false(api: ApiHarness) -> None:
    headers = await streamer(api)
    plain = await create_target(api, "https://hooks.example.com/a")
    assert plain["streakEndOnly"] is False
    tid = plain["id"]
    body = {"name": "a", "url": "https://hooks.example.com/a", "scope": STREAMER_HANDLE}
    on = await api.client.put(
        f"/forward/targets/{tid}", json={**body, "streakEndOnly": True}, headers=headers
    )
    assert on.json()["streakEndOnly"] is True
    listed = (await api.client.get("/forward/targets", headers=headers)).json()
    assert [t["streakEndOnly"] for t in listed] == [True]
    off = await api.client.put(f"/forward/targets/{tid}", json=body, headers=headers)
    assert off.json()["streakEndOnly"] is False


# -- who may, and bad input ----------------------------------------------------------------------
NEW_ENDPOINTS = [
    ("POST", "/forward/targets/{t}/pause"),
    ("POST", "/forward/targets/{t}/resume"),
    ("POST", "/forward/targets/{t}/test"),
    ("GET", "/forward/targets/{t}/deliveries"),
    ("POST", "/forward/targets/{t}/deliveries/{d}/redeliver"),
]


async def test_the_new_endpoints_need_a_streamer_of_the_targets_scope(api: ApiHarness) -> None:
    async with Receiver() as rx:
        target = await create_target(api, rx.url)
        tid = target["id"]
        [event] = events(1)
        data = msgspec.json.encode(event).decode()
        await ForwardStore(api.engine).enqueue([(tid, event.event_id, data)])
        [row] = await delivery_rows(api)
        moderator = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
        viewer = await api.login("viewer", Role.VIEWER, [STREAMER_HANDLE])
        stranger = await api.login("stranger", Role.STREAMER, [OTHER_HANDLE])
        for method, template in NEW_ENDPOINTS:
            path = template.format(t=tid, d=row["id"])
            assert_json_error(await api.client.request(method, path), 401)
            for headers in (moderator, viewer):
                assert_json_error(await api.client.request(method, path, headers=headers), 403)
            body = assert_json_error(await api.client.request(method, path, headers=stranger), 403)
            assert "scope" in body["detail"]
    assert rx.requests == []  # no test event went out for anyone of them
    assert (await ForwardStore(api.engine).target_row(tid)).enabled is True  # type: ignore[union-attr]


async def test_the_new_endpoints_answer_bad_input_with_4xx_json(api: ApiHarness) -> None:
    headers = await streamer(api)
    other = await create_target(api, "https://hooks.example.com/other")
    target = await create_target(api, "https://hooks.example.com/in")
    tid = target["id"]
    [event] = events(1)
    data = msgspec.json.encode(event).decode()
    await ForwardStore(api.engine).enqueue([(other["id"], event.event_id, data)])
    [foreign] = await delivery_rows(api)
    missing = tid + 1000
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("GET", f"/forward/targets/{tid}/deliveries?status=bogus", {}, 400),
        ("GET", f"/forward/targets/{tid}/deliveries?status=", {}, 400),
        ("GET", f"/forward/targets/{tid}/deliveries?limit=0", {}, 400),
        ("GET", f"/forward/targets/{tid}/deliveries?limit=100000", {}, 400),
        ("GET", f"/forward/targets/{tid}/deliveries?limit=ten", {}, 400),
        ("GET", f"/forward/targets/{tid}/deliveries?before=0", {}, 400),
        ("GET", f"/forward/targets/{tid}/deliveries?before={2**80}", {}, 400),
        ("GET", f"/forward/targets/{missing}/deliveries", {}, 404),
        ("GET", f"/forward/targets/{2**80}/deliveries", {}, 400),
        ("GET", "/forward/targets/0/deliveries", {}, 400),
        ("POST", f"/forward/targets/{missing}/pause", {}, 404),
        ("POST", f"/forward/targets/{missing}/resume", {}, 404),
        ("POST", f"/forward/targets/{missing}/test", {}, 404),
        ("POST", f"/forward/targets/{tid}/test", {"json": {"eventType": "NOPE"}}, 400),
        ("POST", f"/forward/targets/{tid}/test", {"json": {"eventType": "GIFT", "x": 1}}, 400),
        ("POST", f"/forward/targets/{tid}/test", {"json": ["GIFT"]}, 400),
        ("POST", f"/forward/targets/{tid}/test", {"content": b"{not json"}, 400),
        ("POST", f"/forward/targets/{tid}/deliveries/{foreign['id']}/redeliver", {}, 404),
        ("POST", f"/forward/targets/{tid}/deliveries/{2**40}/redeliver", {}, 404),
        ("POST", f"/forward/targets/{tid}/deliveries/0/redeliver", {}, 400),
        ("POST", f"/forward/targets/{tid}/deliveries/{2**80}/redeliver", {}, 400),
        ("POST", f"/forward/targets/{missing}/deliveries/1/redeliver", {}, 404),
    ]
    for method, path, extra, status in cases:
        if "content" in extra:
            extra = {**extra, "headers": {**headers, "content-type": "application/json"}}
        else:
            extra = {**extra, "headers": headers}
        answer = await api.client.request(method, path, **extra)
        assert answer.status_code == status, (method, path, answer.text)
        assert_json_error(answer, status)
    body = {"name": "x", "url": "https://hooks.example.com/x", "scope": STREAMER_HANDLE}
    bad = await api.client.post(
        "/forward/targets", json={**body, "streakEndOnly": "yes"}, headers=headers
    )
    assert_json_error(bad, 400)
