"""Rules end to end on both backends: the API, the rules role's handlers on the bus, the
database's ``actions_log``, and a fake Euler API receiving the chat calls (DESIGN §8).

The last test runs ``ttlp run --roles rules`` as a process on Redis + PostgreSQL, kills it
(SIGKILL) while a batch is in flight and restarts it: no action runs twice.
"""

from __future__ import annotations

import asyncio
import copy
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from tests.fakes.euler_api import API_KEY, FakeEulerApi
from tests.support.api import (
    FIXTURE_ROOM,
    STREAMER_HANDLE,
    ApiHarness,
    fixture_events,
)
from tests.support.processes import Ttlp
from tests.support.wait import free_port, wait_for
from ttlp.api.accounts import Role
from ttlp.bus import keys
from ttlp.bus.base import Entry
from ttlp.bus.consumer import Consumer
from ttlp.contracts.events import UnifiedEvent, decode_event
from ttlp.db import tables
from ttlp.db.engine import create_engine, normalize_database_url
from ttlp.db.migrate import upgrade
from ttlp.roles.ingest import make_control_handler as ingest_control_handler
from ttlp.roles.rules import make_control_handler, make_events_handler
from ttlp.rules.actions import Actions
from ttlp.rules.engine import Engine
from ttlp.rules.store import RulesStore
from ttlp.rules.templates import SAMPLE_EVENTS
from ttlp.settings import Settings

pytestmark = pytest.mark.integration

SESSION = "sid-of-the-announcer"
GIFT_RULE: dict[str, Any] = {
    "name": "big gifts",
    "scope": STREAMER_HANDLE,
    "eventType": "GIFT",
    "condition": {">=": [{"var": "payload.coins"}, 1000]},
    "action": {"type": "announce", "template": "Thank you {displayName} for {coins} coins!"},
}


def nested(depth: int) -> Any:
    """A condition ``depth`` operations deep."""
    condition: Any = True
    for _ in range(depth):
        condition = {"!": [condition]}
    return condition


def chat_rule(**changes: Any) -> dict[str, Any]:
    return {
        "name": "chat",
        "scope": STREAMER_HANDLE,
        "eventType": "CHAT",
        "action": {"type": "announce", "template": "re: {message}"},
        **changes,
    }


def gifts_of(user: str) -> list[UnifiedEvent]:
    return [
        e
        for e in fixture_events()
        if e.__struct_config__.tag == "GIFT" and e.user.unique_id == user
    ]


def chat(n: int, user_id: str = "7012345678901234501", **changes: Any) -> UnifiedEvent:
    data = copy.deepcopy(SAMPLE_EVENTS["CHAT"])
    data["eventId"] = f"{n + 1:064x}"
    data["user"]["userId"] = user_id
    data["payload"]["message"] = f"message {n}"
    data.update(changes)
    return decode_event(json.dumps(data))


def euler_settings(settings: Settings, url: str) -> Settings:
    return msgspec.structs.replace(
        settings,
        rules=msgspec.structs.replace(
            settings.rules, euler_api_url=url, announce_min_interval_s=0.0
        ),
        ingest=msgspec.structs.replace(settings.ingest, euler_api_key=API_KEY, session_id=SESSION),
    )


class RulesRole:
    """The rules role's two consumers, driven in burst mode."""

    def __init__(self, api: ApiHarness, euler: FakeEulerApi) -> None:
        settings = euler_settings(api.ctx.settings, euler.url)
        self.actions = Actions(settings)
        self.engine = Engine(RulesStore(api.engine), self.actions, reload_s=3600)
        self.events: Consumer = api.ctx.consumer(
            stream=api.keys.events,
            group=keys.GROUP_RULES,
            handler=make_events_handler(self.engine),
            stage="rules",
            start="$",
        )
        self.control: Consumer = api.ctx.consumer(
            stream=api.keys.control,
            group=keys.GROUP_RULES,
            handler=make_control_handler(self.engine),
            stage="rules",
            start="$",
        )

    async def start(self) -> None:
        await self.engine.reload()
        await self.events.setup()
        await self.control.setup()

    async def drain(self) -> None:
        await self.control.run_until_idle()
        await self.events.run_until_idle()


@pytest.fixture
async def role(api: ApiHarness, euler: FakeEulerApi) -> AsyncIterator[RulesRole]:
    await api.seed()  # luna.beats' room is known: scoped rules can match
    rules = RulesRole(api, euler)
    await rules.start()
    try:
        yield rules
    finally:
        await rules.actions.aclose()


async def create(api: ApiHarness, rule: dict[str, Any], headers: dict[str, str]) -> int:
    response = await api.client.post("/rules", json=rule, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def executions(api: ApiHarness, rule_id: int, headers: dict[str, str]) -> list[Any]:
    response = await api.client.get(f"/rules/{rule_id}/executions", headers=headers)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


async def publish(api: ApiHarness, events: list[UnifiedEvent]) -> None:
    for event in events:
        await api.publish(event)


# -- firing ---------------------------------------------------------------------------------
async def test_a_1000_coin_gift_streak_is_announced_once_on_its_end_frame(
    api: ApiHarness, role: RulesRole, euler: FakeEulerApi
) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    rule_id = await create(api, GIFT_RULE, owner)
    await role.drain()  # the change notice: the role has the rule now
    galaxy, money_gun = gifts_of("zoe.petals"), gifts_of("night.owl")
    assert [getattr(g.payload, "coins", None) for g in galaxy] == [200, 400, 600, 800, 1000]
    await publish(api, [*galaxy, *money_gun])  # the 500-coin Money Gun must not fire
    await role.drain()

    [call] = euler.chats()
    assert call.method == "POST"
    assert call.body == {
        "content": "Thank you Zoë 🌸 for 1000 coins!",
        "targetRoomId": FIXTURE_ROOM,
    }
    assert call.headers["x-api-key"] == API_KEY
    assert call.headers["x-cookie-header"] == f"sessionid={SESSION}"
    assert call.headers["content-type"] == "application/json"
    [row] = await executions(api, rule_id, owner)
    assert row["eventId"] == galaxy[-1].event_id
    assert (row["status"], row["actionType"]) == ("success", "announce")
    assert row["rendered"] == "Thank you Zoë 🌸 for 1000 coins!"
    assert row["durationMs"] is not None


async def test_an_event_delivered_again_is_not_announced_again(
    api: ApiHarness, role: RulesRole, euler: FakeEulerApi
) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    rule_id = await create(api, chat_rule(), owner)
    await role.drain()
    await publish(api, [chat(1), chat(1)])
    await role.drain()
    assert len(euler.chats()) == 1
    assert len(await executions(api, rule_id, owner)) == 1


async def test_a_log_rule_writes_one_row_per_event_however_often_it_comes(
    api: ApiHarness, role: RulesRole
) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    rule_id = await create(api, chat_rule(action={"type": "log", "template": "{message}"}), owner)
    await role.drain()
    await publish(api, [chat(1), chat(2), chat(1)])  # a duplicate within the batch
    await role.drain()
    await publish(api, [chat(2)])  # and one in a later batch
    await role.drain()
    rows = await executions(api, rule_id, owner)
    assert sorted((r["rendered"], r["status"]) for r in rows) == [
        ("message 1", "success"),
        ("message 2", "success"),
    ]
    assert (role.engine.stats.fired, role.engine.stats.duplicates) == (2, 2)


async def test_cooldowns_per_rule_and_per_user_skip_and_are_logged(
    api: ApiHarness, role: RulesRole, euler: FakeEulerApi
) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    per_rule = await create(api, chat_rule(name="per rule", cooldownS=600), owner)
    per_user = await create(api, chat_rule(name="per user", userCooldownS=600, priority=-1), owner)
    await role.drain()
    await publish(api, [chat(1, "111"), chat(2, "222"), chat(3, "111")])
    await role.drain()

    rule_rows = sorted(await executions(api, per_rule, owner), key=lambda r: r["id"])
    assert [(r["status"], r["reason"]) for r in rule_rows] == [
        ("success", None),
        ("skipped", "cooldown"),
        ("skipped", "cooldown"),
    ]
    user_rows = sorted(await executions(api, per_user, owner), key=lambda r: r["id"])
    assert [(r["userId"], r["status"], r["reason"]) for r in user_rows] == [
        ("111", "success", None),
        ("222", "success", None),
        ("111", "skipped", "user_cooldown"),
    ]
    assert len(euler.chats()) == 3


async def test_a_replayed_event_is_skipped_when_skip_replay(
    api: ApiHarness, role: RulesRole, euler: FakeEulerApi
) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    skipping = await create(api, chat_rule(name="live only"), owner)
    replaying = await create(api, chat_rule(name="replays too", skipReplay=False), owner)
    await role.drain()
    await publish(api, [chat(1, source="replay")])
    await role.drain()
    [skipped] = await executions(api, skipping, owner)
    assert (skipped["status"], skipped["reason"]) == ("skipped", "replay")
    [fired] = await executions(api, replaying, owner)
    assert fired["status"] == "success"
    assert len(euler.chats()) == 1


async def test_rules_fire_in_priority_order(
    api: ApiHarness, role: RulesRole, euler: FakeEulerApi
) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    for name, priority in (("low", 1), ("high", 10), ("middle", 5)):
        rule = chat_rule(name=name, priority=priority)
        rule["action"] = {"type": "announce", "template": name}
        await create(api, rule, owner)
    await role.drain()
    await publish(api, [chat(1)])
    await role.drain()
    assert [c.body["content"] for c in euler.chats()] == ["high", "middle", "low"]


async def test_announce_without_a_session_is_a_failed_execution(
    api: ApiHarness, role: RulesRole, euler: FakeEulerApi
) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    rule_id = await create(api, chat_rule(), owner)
    role.actions.session_id = None
    await role.drain()
    await publish(api, [chat(1), chat(2)])
    await role.drain()
    rows = await executions(api, rule_id, owner)
    assert {(r["status"], r["reason"]) for r in rows} == {("failed", "not_configured")}
    assert all("SESSION_ID" in r["error"] for r in rows)
    assert euler.calls == []


# -- the API --------------------------------------------------------------------------------
async def test_rules_crud_publishes_a_change_notice_each_time(api: ApiHarness) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    rule_id = await create(api, GIFT_RULE, owner)
    listed = (await api.client.get("/rules", headers=owner)).json()
    assert [(r["id"], r["streakEndOnly"], r["skipReplay"]) for r in listed] == [
        (rule_id, True, True)
    ]
    changed = {**GIFT_RULE, "name": "renamed", "enabled": False}
    response = await api.client.put(f"/rules/{rule_id}", json=changed, headers=owner)
    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["enabled"]) == ("renamed", False)
    response = await api.client.delete(f"/rules/{rule_id}", headers=owner)
    assert response.status_code == 204
    assert (await api.client.get(f"/rules/{rule_id}", headers=owner)).status_code == 404
    notices = await api.bus.range(api.keys.control)
    assert [e.fields for e in notices] == [{"command": "rules-changed"}] * 3


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"condition": {"frobnicate": [1]}}, "unknown operator 'frobnicate'"),
        ({"condition": nested(40)}, "deep"),
        ({"action": {"type": "announce", "template": "{{ ''.__class__ }}"}}, "template"),
        (
            {"action": {"type": "announce", "template": "{{ cycler.__init__.__globals__ }}"}},
            "template",
        ),
        ({"action": {"type": "log", "template": "hi {password}"}}, "password"),
        ({"action": {"type": "webhook", "url": "http://169.254.169.254/x"}}, "action.url"),
    ],
    ids=["unknown-operator", "too-deep", "class-escape", "globals-escape", "unknown-token", "ssrf"],
)
async def test_bad_rules_are_refused_with_422_naming_the_problem(
    api: ApiHarness, change: dict[str, Any], problem: str
) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    response = await api.client.post("/rules", json={**GIFT_RULE, **change}, headers=owner)
    assert response.status_code == 422, response.text
    assert problem in response.json()["detail"]
    assert (await api.client.get("/rules", headers=owner)).json() == []


async def test_a_global_rule_needs_an_account_of_scope_all(api: ApiHarness) -> None:
    luna = await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])
    response = await api.client.post("/rules", json={**GIFT_RULE, "scope": "*"}, headers=luna)
    assert response.status_code == 403
    everyone = await api.login("root", Role.STREAMER, ["*"])
    assert (
        await api.client.post("/rules", json={**GIFT_RULE, "scope": "*"}, headers=everyone)
    ).status_code == 201


async def test_a_dry_run_matches_a_sample_or_a_stored_event_and_renders(
    api: ApiHarness,
) -> None:
    await api.seed()
    moderator = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    response = await api.client.post(
        "/rules/test", json={"rule": GIFT_RULE, "eventType": "GIFT"}, headers=moderator
    )
    assert response.status_code == 200, response.text
    assert (response.json()["matched"], response.json()["rendered"]) == (False, None)
    end_frame = gifts_of("zoe.petals")[-1]
    response = await api.client.post(
        "/rules/test", json={"rule": GIFT_RULE, "eventId": end_frame.event_id}, headers=moderator
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["matched"], body["rendered"]) == (True, "Thank you Zoë 🌸 for 1000 coins!")


async def test_the_change_notice_reaches_the_rules_role_and_not_the_ingest_dlq(
    api: ApiHarness, role: RulesRole, euler: FakeEulerApi
) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    await create(api, chat_rule(), owner)
    assert role.engine.rules == []
    await role.control.run_until_idle()
    assert [r.name for r in role.engine.rules] == ["chat"]
    notice = Entry("1-0", {"command": "rules-changed"})
    stop = asyncio.Event()
    assert await ingest_control_handler(api.ctx, stop)([notice]) == []
    assert len(await ingest_control_handler(api.ctx, stop)([Entry("2-0", {})])) == 1


# -- kill and restart ------------------------------------------------------------------------
EVENTS_IN_FLIGHT = 12


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_killing_the_rules_role_mid_batch_never_runs_an_action_twice(
    backend: str,
    redis_url: str,
    pg_database_factory: Any,
    key_prefix: str,
    redis_cleanup: None,
    tmp_path: Path,
) -> None:
    url = normalize_database_url(pg_database_factory(), Path.cwd())
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    euler = FakeEulerApi(delay_s=0.3)
    euler.start_thread()
    from ttlp.bus.redis import RedisBus

    bus = RedisBus(redis_url, maxlen=10_000)
    env = {
        "TTLP_DATA_DIR": str(tmp_path / "data"),
        "REDIS_URL": redis_url,
        "DATABASE_URL": url,
        "REDIS_CONSUMER_GROUP_PREFIX": key_prefix,
        "CONSUMER_NAME": "rules-1",
        "EULER_API_URL": euler.url,
        "EULER_API_KEY": API_KEY,
        "SESSION_ID": SESSION,
        "ANNOUNCE_MIN_INTERVAL_S": "0",
        "BUS_BATCH_SIZE": "50",
        "PYTHONUNBUFFERED": "1",
        "API_PORT": str(free_port()),
    }
    runner = Ttlp(env, tmp_path, tmp_path)
    events_key = f"{key_prefix}{keys.EVENTS}"
    group = f"{key_prefix}{keys.GROUP_RULES}"
    try:
        store = RulesStore(engine)
        rule = await store.create_rule(
            {
                "name": "echo",
                "scope": "*",
                "event_type": "CHAT",
                "condition": True,
                "action": {"type": "announce", "template": "re: {message}"},
            },
            "test",
        )

        async def group_ready() -> bool:
            return any(g.name == group for g in await bus.groups(events_key))

        first = runner.start("run", "--roles", "rules")
        await wait_for(group_ready, what="the rules group", alive=first, timeout=60)
        events = [chat(n) for n in range(EVENTS_IN_FLIGHT)]
        await bus.publish_many(
            events_key, [{"event": msgspec.json.encode(e).decode()} for e in events]
        )

        async def some_sent() -> bool:
            return len(euler.chats()) >= 3

        await wait_for(some_sent, what="a batch in flight", alive=first, timeout=60, poll=0.05)
        runner.stop(first, signal.SIGKILL)
        sent_before_kill = len(euler.chats())
        assert sent_before_kill < EVENTS_IN_FLIGHT, "the batch finished before the kill"

        second = runner.start("run", "--roles", "rules")

        async def all_acked() -> bool:
            info = {g.name: g for g in await bus.groups(events_key)}.get(group)
            return info is not None and info.pending == 0 and info.lag == 0

        await wait_for(all_acked, what="the batch re-read and acked", alive=second, timeout=90)
        assert runner.stop(second) == 0, runner.log_of(second)

        contents = [c.body["content"] for c in euler.chats()]
        assert len(contents) == len(set(contents)), f"an action ran twice: {contents}"
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(tables.actions_log).where(tables.actions_log.c.rule_id == rule["id"])
                )
            ).all()
        assert sorted(r.event_id for r in rows) == sorted(e.event_id for e in events)
        interrupted = [r for r in rows if (r.status, r.reason) == ("failed", "interrupted")]
        succeeded = [r for r in rows if r.status == "success"]
        assert len(interrupted) <= 1, interrupted
        assert len(interrupted) + len(succeeded) == EVENTS_IN_FLIGHT
        # Every success was sent once; the interrupted one at most once (before the kill).
        assert len(succeeded) <= len(contents) <= len(succeeded) + len(interrupted)
    finally:
        runner.close()
        euler.stop_thread()
        await bus.close()
        await engine.dispose()
