"""``POST /rules/backtest`` on both backends (in-process bus + SQLite, Redis + PostgreSQL).

The backtest is held against the live rules role itself: the fixture session (with more chat)
goes through the real pipeline, is backtested, then replayed while the rules role's own
handler (``make_events_handler`` over ``Engine`` with the real ``Actions``) runs the same rule
enabled, posting to a local webhook receiver: the replay's ``actions_log`` rows and the
backtest's firings are the same, in the same order. The other tests: cooldowns and the
announcement throttle in event time; nothing sent (Euler, webhooks) and nothing written
during a backtest; the streamed progress, a client that goes away stopping the work, the
per-account limit; scope, roles and bad input.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fakes.euler_api import API_KEY, FakeEulerApi
from tests.fakes.receiver import Receiver
from tests.support import events as ev
from tests.support.api import FIXTURE_ROOM, OTHER_HANDLE, STREAMER_HANDLE, ApiHarness
from tests.support.http import assert_json_error
from tests.support.paths import FIXTURES
from tests.support.pipelines import running_pipeline, settled
from tests.support.wait import wait_for
from ttlp.api.accounts import Role
from ttlp.api.routes import backtest as backtest_route
from ttlp.bus import keys
from ttlp.contracts.events import RawFrame, UnifiedEvent, decode_raw_frame
from ttlp.db import tables
from ttlp.db.queries import Queries
from ttlp.roles.rules import make_events_handler
from ttlp.rules.actions import Actions
from ttlp.rules.engine import Engine
from ttlp.rules.store import RulesStore
from ttlp.settings import Settings
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.replay import replay_session

pytestmark = pytest.mark.integration

FIXTURE_SESSION: Final = "3f1c2a9e-6b7d-4e21-9c55-0d8e7a41b2f6"
WEEK_S: Final = 7 * 24 * 3600
CHATTERS: Final = ("7012345678901234601", "7012345678901234602", "7012345678901234603")


@pytest.fixture
def api_env(euler: FakeEulerApi) -> dict[str, object]:
    """Euler configured against the fake (so an announcement could be sent), loopback webhooks
    allowed (so a webhook could be posted): a backtest must do neither."""
    return {
        "EULER_API_URL": euler.url,
        "EULER_API_KEY": API_KEY,
        "SESSION_ID": "tiktok-session-cookie",
        "WEBHOOK_ALLOWLIST": "127.0.0.1",
    }


# -- helpers -----------------------------------------------------------------------------------
async def backtest(
    api: ApiHarness, headers: dict[str, str], body: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """POST /rules/backtest read to its end: (progress lines, the result line)."""
    progress: list[dict[str, Any]] = []
    result: dict[str, Any] | None = None
    async with api.client.stream("POST", "/rules/backtest", json=body, headers=headers) as r:
        assert r.status_code == 200, (await r.aread()).decode()
        assert r.headers["content-type"].startswith("application/x-ndjson")
        async for line in r.aiter_lines():
            message = json.loads(line)
            assert result is None, "nothing comes after the result"
            if message["type"] == "progress":
                progress.append(message)
            else:
                assert message["type"] == "result", message
                result = message
    assert result is not None
    return progress, result


def webhook_rule(url: str, **changes: Any) -> dict[str, Any]:
    return {
        "name": "gift webhook",
        "scope": STREAMER_HANDLE,
        "eventType": "GIFT",
        "condition": {">=": [{"var": "payload.coins"}, 100]},
        "action": {"type": "webhook", "url": url, "template": "{username}: {giftName}"},
        "skipReplay": False,
        **changes,
    }


def chat_rule(**changes: Any) -> dict[str, Any]:
    return {
        "name": "chat",
        "scope": STREAMER_HANDLE,
        "eventType": "CHAT",
        "action": {"type": "log", "template": "{username}: {message}"},
        **changes,
    }


def session_with_more_chat() -> list[RawFrame]:
    """The fixture session with 30 more chat messages of three viewers before its
    DISCONNECTED, three of four saying hello (JSON frames, as the mock provider sends)."""
    lines = (FIXTURES / "raw-frames.ndjson").read_text().splitlines()
    frames = [json.loads(line) for line in lines if line.strip()]
    template = next(f for f in frames if f["type"] == "WebcastChatMessage")
    extra = []
    for i in range(30):
        frame = json.loads(json.dumps(template))
        seq = 7442000000000000000 + i
        created = 1732217420000 + i * 500  # 19:30:20 on, within the session
        user_id = CHATTERS[i % len(CHATTERS)]
        frame["seqNo"] = seq
        frame["timestamp"] = f"2024-11-21T19:30:{20 + i // 2:02d}.{(i % 2) * 500:03d}Z"
        frame["ingestedAt"] = frame["timestamp"]
        data = frame["data"]
        data["common"].update(msgId=str(seq), createTime=str(created))
        data["content"] = f"hello {i}" if i % 4 else f"gg {i}"
        data["user"].update(id=user_id, displayId=f"chatter_{user_id[-1]}", nickname="Chatter")
        extra.append(frame)
    ordered = [*frames[:-1], *extra, frames[-1]]
    return [decode_raw_frame(json.dumps(f)) for f in ordered]


def pipeline_settings(
    backend: str, redis_url: str | None, prefix: str, tmp: Path, request: pytest.FixtureRequest
) -> Settings:
    return Settings.from_env(
        {"WEBHOOK_ALLOWLIST": "127.0.0.1", "TTLP_DATA_DIR": str(tmp)},
        **{
            "bus.redis_url": redis_url,
            "bus.prefix": prefix,
            "bus.block_ms": 50,
            "db.url": str(request.getfixturevalue(f"{backend}_database_url")),
        },
    )


async def stored(engine: AsyncEngine, session: str) -> int:
    async with engine.connect() as conn:
        e = tables.events
        return int(await conn.scalar(select(func.count()).where(e.c.session_id == session)) or 0)


async def log_rows(engine: AsyncEngine, rule_id: int | None = None) -> list[Any]:
    a = tables.actions_log
    query = select(a).order_by(a.c.id)
    if rule_id is not None:
        query = query.where(a.c.rule_id == rule_id)
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def create(api: ApiHarness, headers: dict[str, str], rule: dict[str, Any]) -> int:
    response = await api.client.post("/rules", json=rule, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def chats(session: str, seconds: int, users: tuple[int, ...] = (1,)) -> list[UnifiedEvent]:
    """One chat a second in luna.beats' room, ``users`` taking turns."""
    return [
        ev.chat(session, 100 + t, who=ev.user(users[t % len(users)]), t=t, stream=FIXTURE_ROOM)
        for t in range(seconds)
    ]


# -- the same as the live rules role -----------------------------------------------------------
@pytest.mark.parametrize("kind", ["gifts", "chat"])
async def test_a_backtest_fires_as_the_rules_role_did_on_the_sessions_replay(
    api: ApiHarness,
    kind: str,
    backend: str,
    backend_redis_url: str | None,
    key_prefix: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    settings = pipeline_settings(backend, backend_redis_url, key_prefix, tmp_path, request)
    frames = session_with_more_chat()
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    async with Receiver() as receiver, running_pipeline(settings) as ctx:
        assert ctx.engine is not None
        await FramePublisher(ctx.bus, ctx.keys.raw, paced=False).publish(frames)
        await settled(ctx, lambda: _at_least(ctx.engine, FIXTURE_SESSION, len(frames)))

        if kind == "gifts":  # streakEndOnly: the Galaxy streak fires on its end frame only
            rule = webhook_rule(f"{receiver.url}/hook")
        else:  # a per-user cooldown longer than the session: each chatter once
            rule = chat_rule(
                condition={"in": ["hello", {"var": "payload.message"}]},
                action={"type": "webhook", "url": f"{receiver.url}/hook", "template": "{message}"},
                userCooldownS=WEEK_S,
                skipReplay=False,
            )
        rule_id = await create(api, owner, rule)
        body = {"ruleId": rule_id, "sessions": [FIXTURE_SESSION], "outputs": 200}
        _, before = await backtest(api, owner, body)
        assert receiver.requests == []  # a backtest sends nothing...
        assert await log_rows(ctx.engine) == []  # ...and writes nothing

        # The live rules role, the rule enabled, over the session's replay.
        actions = Actions(settings)
        engine = Engine(RulesStore(ctx.engine), actions, reload_s=3600)
        await engine.reload()
        consumer = ctx.consumer(
            stream=ctx.keys.events,
            group=keys.GROUP_RULES,
            handler=make_events_handler(engine),
            stage="rules",
            start="$",
        )
        await consumer.setup()
        publisher = FramePublisher(ctx.bus, ctx.keys.raw, paced=True)
        replay = await replay_session(ctx.store, publisher, FIXTURE_SESSION)
        await settled(ctx, lambda: _at_least(ctx.engine, replay.session_id, len(frames)))
        await consumer.run_until_idle()
        await actions.aclose()
        rows = await log_rows(ctx.engine, rule_id)
        fired = [r for r in rows if r.status == "success"]
        _, on_replay = await backtest(api, owner, {**body, "sessions": [replay.session_id]})

    live = [_fired(json.loads(r.rendered)) for r in fired]
    assert len(live) >= 3, live
    # The live session's backtest: the same firings, in the same order, as the replay's rows.
    assert [_fired(json.loads(o["rendered"])) for o in before["outputs"]] == live
    assert (before["fires"], before["matches"]) == (len(fired), len(rows))
    skipped: dict[str, int] = {}
    for r in rows:
        if r.status == "skipped":
            skipped[r.reason] = skipped.get(r.reason, 0) + 1
    assert before["skipped"] == skipped
    if kind == "chat":
        assert skipped.get("user_cooldown", 0) > 0
    # Over the replay session itself: the very events the rules role acted on.
    assert [o["eventId"] for o in on_replay["outputs"]] == [r.event_id for r in fired]
    # And the receiver got, from the live role only, exactly those bodies.
    assert [_fired(json.loads(x.body)) for x in receiver.requests] == live


def _fired(body: dict[str, Any]) -> tuple[str, int, str]:
    """A webhook body's (user, seqNo, text): what is the same in a session and its replay."""
    return body["event"]["user"]["userId"], body["event"]["seqNo"], body["text"]


async def _at_least(engine: AsyncEngine | None, session: str, n: int) -> bool:
    assert engine is not None
    return await stored(engine, session) >= n


# -- time ----------------------------------------------------------------------------------------
async def test_cooldowns_and_the_throttle_run_in_event_time(api: ApiHarness) -> None:
    """A minute of chat, one a second, backtested in well under a second: cooldowns measured
    on the wall clock would let one message through; in event time they thin it out."""
    await api.seed()  # luna.beats' room is known
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    session = ev.new_session()
    await api.store.write_events(chats(session, 60, users=(1, 2, 3)))
    cases = {
        "rule": chat_rule(cooldownS=10),
        "user": chat_rule(userCooldownS=10),
        "throttle": chat_rule(action={"type": "announce", "template": "hi {username}"}),
    }
    results = {}
    for name, rule in cases.items():
        _, results[name] = await backtest(api, mod, {"rule": rule, "sessions": [session]})

    per_rule = results["rule"]
    assert (per_rule["fires"], per_rule["skipped"]) == (6, {"cooldown": 54})
    assert [o["timestamp"] for o in per_rule["outputs"]] == [ev.at(t) for t in range(0, 60, 10)]
    # Each viewer speaks every 3 s: with 10 s per viewer, at 0, 12, 24, 36, 48 s of their own.
    per_user = results["user"]
    assert (per_user["fires"], per_user["skipped"]) == (15, {"user_cooldown": 45})
    assert {u["uniqueId"]: u["fires"] for u in per_user["topUsers"]} == {
        "viewer1": 5,
        "viewer2": 5,
        "viewer3": 5,
    }
    # Announcements: one per streamer every ANNOUNCE_MIN_INTERVAL_S (3 s) of event time.
    throttle = results["throttle"]
    assert (throttle["fires"], throttle["skipped"]) == (20, {"throttled": 40})
    series = throttle["firesPerBucket"]
    assert (series["bucketSeconds"], sum(series["counts"])) == (60, 20)


async def test_sessions_are_read_in_the_order_they_started_and_cooldowns_carry_over(
    api: ApiHarness,
) -> None:
    await api.seed()
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    first, second = ev.new_session(), ev.new_session()
    await api.store.write_events(chats(first, 5))
    later = [
        ev.chat(second, 900 + t, who=ev.user(1), t=5 + t, stream=FIXTURE_ROOM) for t in range(5)
    ]
    await api.store.write_events(later)
    body = {"rule": chat_rule(cooldownS=8), "sessions": [second, first]}
    _, result = await backtest(api, mod, body)
    assert [o["timestamp"] for o in result["outputs"]] == [ev.at(0), ev.at(8)]
    assert [(s["sessionId"], s["fires"]) for s in result["sessions"]] == [(first, 1), (second, 1)]


# -- nothing sent, nothing written --------------------------------------------------------------
async def test_a_backtest_sends_nothing_and_writes_nothing(
    api: ApiHarness, euler: FakeEulerApi
) -> None:
    await api.seed()
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    async with Receiver() as receiver:
        announce = chat_rule(action={"type": "announce", "template": "thanks {username}"})
        hook = chat_rule(action={"type": "webhook", "url": f"{receiver.url}/x"})
        mute = chat_rule(action={"type": "moderate", "op": "mute", "durationS": 5})
        ids = [await create(api, owner, rule) for rule in (announce, hook, mute)]
        outcomes = []
        for rule_id in ids:
            _, result = await backtest(
                api, owner, {"ruleId": rule_id, "sessions": [FIXTURE_SESSION]}
            )
            outcomes.append(result)
        assert receiver.requests == []
    assert euler.calls == []
    assert await log_rows(api.engine) == []
    assert all(result["fires"] > 0 for result in outcomes), outcomes
    hook_body = json.loads(outcomes[1]["outputs"][0]["rendered"])
    assert set(hook_body) == {"rule", "event", "text"}  # the body the webhook would POST
    assert outcomes[2]["outputs"][0]["rendered"].startswith("mute @")
    # Euler is configured here: no note saying it is not.
    assert not any("not set" in note for note in outcomes[0]["notes"])


@pytest.mark.parametrize("api_env", [{}])
async def test_an_integration_that_is_not_configured_is_a_note_not_a_failure(
    api: ApiHarness,
) -> None:
    await api.seed()
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    rule = chat_rule(action={"type": "announce", "template": "hi {username}"})
    _, result = await backtest(api, mod, {"rule": rule, "sessions": [FIXTURE_SESSION]})
    assert result["fires"] > 0
    assert result["failed"] == {}
    assert any("EULER_API_KEY and SESSION_ID not set" in note for note in result["notes"])


async def test_template_errors_are_counted_with_their_first_event(api: ApiHarness) -> None:
    await api.seed()
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    session = ev.new_session()
    events = chats(session, 4)
    await api.store.write_events(events)
    # Valid on the sample, fails on data: a division by the length of "hello" less five.
    rule = chat_rule(action={"type": "log", "template": "{{ 1000 // (message|length - 5) }}"})
    _, result = await backtest(api, mod, {"rule": rule, "sessions": [session]})
    assert (result["fires"], result["failed"]) == (0, {"template": 4})
    [problem] = result["templateErrors"]
    assert (problem["count"], problem["eventId"]) == (4, events[0].event_id)
    assert "template failed" in problem["error"]


async def test_an_announce_rule_shares_the_throttle_with_the_enabled_ones(
    api: ApiHarness,
) -> None:
    """Live, every announce rule of a streamer shares one throttle: a higher-priority one that
    fires first leaves this one the gaps."""
    await api.seed()
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    session = ev.new_session()
    await api.store.write_events(chats(session, 30))
    announce = {"type": "announce", "template": "hi"}
    await create(api, owner, chat_rule(name="first", priority=5, action=announce))
    await create(api, owner, chat_rule(name="off", priority=9, action=announce, enabled=False))
    mine = chat_rule(name="mine", action=announce)
    _, result = await backtest(api, owner, {"rule": mine, "sessions": [session]})
    assert (result["fires"], result["skipped"]) == (0, {"throttled": 30})
    assert any("1 other enabled announce rule" in note for note in result["notes"])
    # Above it, it is the one that speaks.
    _, first = await backtest(api, owner, {"rule": {**mine, "priority": 6}, "sessions": [session]})
    assert first["fires"] == 10


# -- what is read ------------------------------------------------------------------------------
async def test_a_stream_and_a_time_range_read_its_live_events_only(api: ApiHarness) -> None:
    await api.seed()
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    session, replayed = ev.new_session(), ev.new_session()
    await api.store.write_events(chats(session, 20))
    await api.store.write_events(
        [ev.chat(replayed, 500 + t, t=t, stream=FIXTURE_ROOM, source="replay") for t in range(20)]
    )
    body = {
        "rule": chat_rule(skipReplay=False),
        "stream": f"@{STREAMER_HANDLE}",
        "since": ev.at(5),
        "until": ev.at(15),
    }
    _, live_only = await backtest(api, mod, body)
    assert (live_only["eventsConsidered"], live_only["fires"]) == (10, 10)
    _, both = await backtest(api, mod, {**body, "includeReplays": True})
    assert both["fires"] == 20


async def test_a_rule_of_another_streamer_matches_nothing_and_says_why(api: ApiHarness) -> None:
    await api.seed()
    owner = await api.login("owner", Role.STREAMER, ["*"])
    rule = chat_rule(scope=OTHER_HANDLE)
    _, result = await backtest(api, owner, {"rule": rule, "sessions": [FIXTURE_SESSION]})
    assert result["eventsConsidered"] > 0
    assert (result["matches"], result["fires"]) == (0, 0)
    assert any(f"@{STREAMER_HANDLE}'s" in note for note in result["notes"])


# -- progress, cancel, limits -------------------------------------------------------------------
class Gate:
    """Holds ``Queries.events_page`` after ``pages`` pages until opened: a database that is
    slow, so a backtest is still running while the test looks at it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, pages: int) -> None:
        self.pages = pages
        self.calls = 0
        self.opened = asyncio.Event()
        original = Queries.events_page

        async def held(queries: Queries, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls > self.pages:
                await self.opened.wait()
            return await original(queries, *args, **kwargs)

        monkeypatch.setattr(Queries, "events_page", held)


@contextlib.asynccontextmanager
async def started(
    api: ApiHarness, headers: dict[str, str], body: dict[str, Any]
) -> AsyncIterator[tuple[httpx.Response, Any]]:
    """A backtest whose response has begun: (the response, its line iterator)."""
    async with api.client.stream("POST", "/rules/backtest", json=body, headers=headers) as r:
        yield r, r.aiter_lines()


async def test_progress_streams_and_a_client_that_goes_away_stops_the_work(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await api.seed()
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    session = ev.new_session()
    await api.store.write_events(chats(session, 1500))  # three pages of 500
    gate = Gate(monkeypatch, pages=1)
    body = {"rule": chat_rule(), "sessions": [session]}
    async with started(api, mod, body) as (response, lines):
        assert response.status_code == 200
        first = json.loads(await anext(lines))
        assert (first["type"], first["done"], first["total"]) == ("progress", 0, 1500)
        await wait_for(lambda: gate.calls == 2, timeout=10, poll=0.01, what="the second page")
        assert backtest_route._running["mod"] == 1
    # The client is gone while the second page waits: the work stops, the slot is free.
    await wait_for(
        lambda: "mod" not in backtest_route._running, timeout=10, poll=0.01, what="a stop"
    )
    gate.opened.set()
    await asyncio.sleep(0)  # let anything still holding the gate run on (nothing should)
    assert gate.calls == 2
    monkeypatch.undo()
    progress, result = await backtest(api, mod, body)  # and, to its end, many lines
    assert result["fires"] == 1500
    assert [p["done"] for p in progress][-1] == 1500
    assert progress[0]["total"] == 1500


async def test_an_account_runs_two_backtests_at_a_time(
    api: ApiHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await api.seed()
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    other = await api.login("other", Role.MODERATOR, [STREAMER_HANDLE])
    gate = Gate(monkeypatch, pages=0)
    body = {"rule": chat_rule(), "sessions": [FIXTURE_SESSION]}
    async with started(api, mod, body) as (_, a), started(api, mod, body) as (_, b):
        await anext(a)
        await anext(b)
        third = await api.client.post("/rules/backtest", json=body, headers=mod)
        assert_json_error(third, 429)
        assert third.headers["retry-after"]
        gate.opened.set()
        _, result = await backtest(api, other, body)  # another account is not held back
        assert result["fires"] > 0


# -- scope, roles, bad input -------------------------------------------------------------------
async def test_backtests_need_a_moderator_in_scope(api: ApiHarness) -> None:
    await api.seed()
    body = {"rule": chat_rule(), "sessions": [FIXTURE_SESSION]}
    assert_json_error(await api.client.post("/rules/backtest", json=body), 401)
    viewer = await api.login("viewer", Role.VIEWER, [STREAMER_HANDLE])
    assert_json_error(await api.client.post("/rules/backtest", json=body, headers=viewer), 403)
    elsewhere = await api.login("elsewhere", Role.MODERATOR, [OTHER_HANDLE])
    for out_of_scope in (body, {"rule": chat_rule(), "stream": f"@{STREAMER_HANDLE}"}):
        response = await api.client.post("/rules/backtest", json=out_of_scope, headers=elsewhere)
        assert_json_error(response, 403)
    owner = await api.login("owner", Role.STREAMER, ["*"])
    theirs = await create(api, owner, chat_rule(scope=STREAMER_HANDLE))
    by_id = {"ruleId": theirs, "sessions": [FIXTURE_SESSION]}
    assert_json_error(await api.client.post("/rules/backtest", json=by_id, headers=elsewhere), 403)
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    _, result = await backtest(api, mod, by_id)
    assert result["rule"]["id"] == theirs


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"rule": None}, 400, "give rule, ruleId"),
        ({"stream": "@luna.beats"}, 400, "give sessions, or a stream"),
        ({"sessions": []}, 400, "give sessions, or a stream"),
        ({"since": "2024-11-21T19:30:00Z"}, 400, "go with a stream"),
        ({"sessions": ["no-such-session"]}, 404, "no session"),
        ({"rule": None, "ruleId": 424242}, 404, "no rule"),
        ({"outputs": 201}, 400, "outputs"),
        ({"surprise": 1}, 400, "surprise"),
        ({"rule": chat_rule(action={"type": "log", "template": "{nope}"})}, 422, "template"),
        ({"rule": chat_rule(condition={"frobnicate": [1]})}, 422, "frobnicate"),
    ],
)
async def test_bad_requests_are_refused_before_anything_runs(
    api: ApiHarness, change: dict[str, Any], status: int, says: str
) -> None:
    await api.seed()
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    body = {"rule": chat_rule(), "sessions": [FIXTURE_SESSION], **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = await api.client.post("/rules/backtest", json=body, headers=mod)
    error = assert_json_error(response, status)
    assert says in json.dumps(error), error


async def test_since_must_come_before_until(api: ApiHarness) -> None:
    await api.seed()
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    body = {
        "rule": chat_rule(),
        "stream": f"@{STREAMER_HANDLE}",
        "since": "2024-11-21T19:31:00Z",
        "until": "2024-11-21T19:30:00Z",
    }
    response = await api.client.post("/rules/backtest", json=body, headers=mod)
    assert "since must be before until" in assert_json_error(response, 400)["detail"]


# -- the command line ------------------------------------------------------------------------------
def test_ttlp_rules_backtest_prints_the_summary_of_a_rule_file_or_a_stored_rule(
    ttlp: Any, tmp_path: Path
) -> None:
    imported = ttlp.run("import", str(FIXTURES / "raw-frames.ndjson"))
    assert imported.returncode == 0, imported.stderr
    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps(webhook_rule("https://hooks.example.com/x", name="[b]big[/b]")))

    as_json = ttlp.run("rules", "backtest", str(rule), "--session", FIXTURE_SESSION, "--json")
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    assert result["type"] == "result"
    assert result["rule"] == {
        "id": None,
        "name": "[b]big[/b]",
        "scope": STREAMER_HANDLE,
        "eventType": "GIFT",
        "actionType": "webhook",
    }
    assert result["fires"] >= 2
    bodies = [json.loads(o["rendered"]) for o in result["outputs"]]
    assert "akhmed_kzn: Lion" in [body["text"] for body in bodies]
    assert bodies[0]["rule"] == {"id": None, "name": "[b]big[/b]"}  # not saved: no id yet

    shown = ttlp.run("rules", "backtest", str(rule), "--session", FIXTURE_SESSION)
    assert shown.returncode == 0, shown.stderr
    assert "[b]big[/b] (GIFT → webhook" in shown.stdout  # a name is text, not rich markup
    assert re.search(rf"^fires +{result['fires']} *$", shown.stdout, re.MULTILINE), shown.stdout
    assert "akhmed_kzn: Lion" in shown.stdout
    assert "backtest" in shown.stderr  # the progress bar

    over_a_range = ttlp.run(
        "rules",
        "backtest",
        str(rule),
        "--stream",
        f"@{STREAMER_HANDLE}",
        "--since",
        "2024-11-21T19:30:06Z",
        "--until",
        "2024-11-21T19:30:07Z",
        "--json",
    )
    assert over_a_range.returncode == 0, over_a_range.stderr
    assert json.loads(over_a_range.stdout)["fires"] == 1  # the Lion at 19:30:06.880

    refused = {
        ("999", "--session", FIXTURE_SESSION): "no rule 999",
        (str(rule), "--session", "nope"): "no session nope",
        (str(rule),): "give --session",
        (str(rule), "--session", FIXTURE_SESSION, "--since", "2024-11-21"): "go with --stream",
        (str(tmp_path / "missing.json"), "--session", FIXTURE_SESSION): "cannot read",
    }
    for args, says in refused.items():
        done = ttlp.run("rules", "backtest", *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert says in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
