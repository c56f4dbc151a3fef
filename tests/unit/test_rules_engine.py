"""The rule engine's decisions, with an in-memory store and recording actions (no services);
the warnings of a misconfigured rule (once per rule and hour, not once per event); the seams a
backtest uses (event time, the dry-run actions, an in-memory ledger)."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pytest
from loguru import logger

from tests.support.paths import FIXTURES
from ttlp import log
from ttlp.rules.actions import Actions, DryRunActions, webhook_body
from ttlp.rules.backtest import BacktestLedger
from ttlp.rules.engine import (
    USER_COOLDOWNS_MAX,
    WARN_EVERY_S,
    CompiledRule,
    DefinitionError,
    Engine,
    ModerateAction,
    Outcome,
    compile_definition,
    event_time,
    try_rule,
)
from ttlp.rules.store import Execution, RulesStore
from ttlp.rules.templates import SAMPLE_EVENTS
from ttlp.settings import Settings

HANDLE = "luna.beats"
ROOM = "7441234567890123456"


def fixture_events() -> list[dict[str, Any]]:
    text = (FIXTURES / "unified-events.ndjson").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def gifts_of(user: str) -> list[dict[str, Any]]:
    return [
        e for e in fixture_events() if e["eventType"] == "GIFT" and e["user"]["uniqueId"] == user
    ]


def chat(n: int, user_id: str = "7012345678901234501", **changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(SAMPLE_EVENTS["CHAT"])
    event["eventId"] = f"{n:064x}"
    event["user"]["userId"] = user_id
    event["payload"]["message"] = f"message {n}"
    event.update(changes)
    return event


@dataclass
class FakeStore(RulesStore):
    """What the engine needs from the database, in memory."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    log: dict[tuple[int, str], Execution] = field(default_factory=dict)
    times: dict[tuple[int, str], datetime] = field(default_factory=dict)
    handles: dict[str, str] = field(default_factory=dict)

    async def enabled_rules(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["enabled"]]

    async def stream_handle(self, stream_id: str) -> str | None:
        return self.handles.get(stream_id)

    async def claim(self, execution: Execution) -> bool:
        key = (execution.rule_id, execution.event_id)
        if key in self.log:
            return False
        self.log[key] = execution
        self.times[key] = datetime.now(UTC)
        return True

    async def record(self, executions: Sequence[Execution]) -> set[tuple[int, str]]:
        return {(e.rule_id, e.event_id) for e in executions if await self.claim(e)}

    async def finish(self, execution: Execution) -> None:
        self.log[(execution.rule_id, execution.event_id)] = execution

    async def last_success(self, rule_id: int, user_id: str | None = None) -> datetime | None:
        times = [
            self.times[key]
            for key, e in self.log.items()
            if e.rule_id == rule_id
            and e.status == "success"
            and (user_id is None or e.user_id == user_id)
        ]
        return max(times) if times else None

    def add(self, **values: Any) -> int:
        rule_id = len(self.rows) + 1
        event_type = values.get("event_type", "CHAT")
        self.rows.append(
            {
                "id": rule_id,
                "name": f"rule {rule_id}",
                "scope": "*",
                "event_type": event_type,
                "condition": True,
                "action": {"type": "log", "template": "{message}"},
                "enabled": True,
                "priority": 0,
                "cooldown_s": 0,
                "user_cooldown_s": 0,
                "skip_replay": True,
                "streak_end_only": event_type == "GIFT",
                **values,
            }
        )
        return rule_id


@dataclass
class RecordingActions:
    calls: list[tuple[int, str, str | None]] = field(default_factory=list)
    store: FakeStore | None = None
    seen_during_run: list[Execution] = field(default_factory=list)
    lines: list[tuple[int, str | None]] = field(default_factory=list)

    async def run(
        self, rule: CompiledRule, event: Mapping[str, Any], text: str | None, streamer: str
    ) -> Outcome:
        self.calls.append((rule.id, str(event["eventId"]), text))
        if self.store is not None:
            self.seen_during_run.append(self.store.log[(rule.id, str(event["eventId"]))])
        return Outcome("success")

    def log_line(self, rule: CompiledRule, text: str | None) -> None:
        self.lines.append((rule.id, text))


def make_engine() -> tuple[Engine, FakeStore, RecordingActions]:
    store = FakeStore()
    store.handles[ROOM] = HANDLE
    actions = RecordingActions(store=store)
    return Engine(store, actions), store, actions


ANNOUNCE = {"type": "announce", "template": "Thank you {displayName} for {coins} coins!"}


async def test_a_gift_rule_fires_once_on_the_end_frame_of_a_1000_coin_streak() -> None:
    engine, store, actions = make_engine()
    rule = store.add(
        event_type="GIFT",
        condition={">=": [{"var": "payload.coins"}, 1000]},
        action=ANNOUNCE,
    )
    await engine.reload()
    galaxy = gifts_of("zoe.petals")
    money_gun = gifts_of("night.owl")
    assert len(galaxy) == 5
    assert money_gun[0]["payload"]["coins"] == 500
    for event in [*galaxy, *money_gun]:
        await engine.process(event)
    assert actions.calls == [(rule, galaxy[-1]["eventId"], "Thank you Zoë 🌸 for 1000 coins!")]


async def test_streak_end_only_off_acts_on_every_frame() -> None:
    engine, store, actions = make_engine()
    store.add(event_type="GIFT", streak_end_only=False, action=ANNOUNCE)
    await engine.reload()
    for event in gifts_of("zoe.petals"):
        await engine.process(event)
    assert len(actions.calls) == 5


async def test_rules_run_in_priority_order_higher_first() -> None:
    engine, store, actions = make_engine()
    low = store.add(priority=1, action={"type": "announce", "template": "low"})
    high = store.add(priority=5, action={"type": "announce", "template": "high"})
    same = store.add(priority=1, action={"type": "announce", "template": "low too"})
    await engine.reload()
    await engine.process(chat(1))
    assert [c[0] for c in actions.calls] == [high, low, same]


async def test_a_replayed_event_is_skipped_and_logged_unless_the_rule_opts_in() -> None:
    engine, store, actions = make_engine()
    skipping = store.add(action=ANNOUNCE | {"template": "a"})
    opted_in = store.add(action=ANNOUNCE | {"template": "b"}, skip_replay=False)
    await engine.reload()
    event = chat(1, source="replay")
    await engine.process(event)
    await engine.flush()
    assert [c[0] for c in actions.calls] == [opted_in]
    row = store.log[(skipping, event["eventId"])]
    assert (row.status, row.reason) == ("skipped", "replay")


async def test_rule_cooldown_skips_and_logs_the_next_events() -> None:
    engine, store, actions = make_engine()
    rule = store.add(cooldown_s=60, action=ANNOUNCE | {"template": "hi"})
    await engine.reload()
    for n in range(3):
        await engine.process(chat(n, user_id=str(7000 + n)))
    await engine.flush()
    assert len(actions.calls) == 1
    assert [store.log[(rule, chat(n)["eventId"])].reason for n in (1, 2)] == ["cooldown"] * 2


async def test_user_cooldown_holds_per_tiktok_user() -> None:
    engine, store, actions = make_engine()
    rule = store.add(user_cooldown_s=60, action=ANNOUNCE | {"template": "hi"})
    await engine.reload()
    await engine.process(chat(1, user_id="111"))
    await engine.process(chat(2, user_id="222"))
    await engine.process(chat(3, user_id="111"))
    await engine.flush()
    assert [c[1] for c in actions.calls] == [chat(1)["eventId"], chat(2)["eventId"]]
    assert store.log[(rule, chat(3)["eventId"])].reason == "user_cooldown"


async def test_cooldowns_hold_across_a_restart_through_the_log() -> None:
    engine, store, actions = make_engine()
    store.add(cooldown_s=60, action=ANNOUNCE | {"template": "hi"})
    await engine.reload()
    await engine.process(chat(1))
    restarted = Engine(store, actions)  # a new process: nothing remembered in memory
    await restarted.reload()
    await restarted.process(chat(2))
    assert len(actions.calls) == 1


async def test_an_event_delivered_twice_runs_each_rule_once() -> None:
    engine, store, actions = make_engine()
    store.add(action=ANNOUNCE | {"template": "hi"})
    store.add(action={"type": "log"})
    await engine.reload()
    first = await engine.process(chat(1))
    await engine.flush()
    again = await engine.process(chat(1))
    await engine.flush()
    assert [s for _, s in first] == ["success", "success"]
    assert [s for _, s in again] == ["duplicate", "success"]  # a log row: known at the flush
    assert len(actions.calls) == 1
    assert (engine.stats.fired, engine.stats.duplicates) == (2, 2)


async def test_the_claim_is_recorded_as_interrupted_before_the_action_runs() -> None:
    engine, store, actions = make_engine()
    rule = store.add(action=ANNOUNCE | {"template": "hi"})
    await engine.reload()
    await engine.process(chat(1))
    during = actions.seen_during_run[0]
    assert (during.status, during.reason) == ("failed", "interrupted")
    after = store.log[(rule, chat(1)["eventId"])]
    assert (after.status, after.reason, after.rendered) == ("success", None, "hi")
    assert after.duration_ms is not None


async def test_a_false_condition_or_another_scope_writes_nothing() -> None:
    engine, store, actions = make_engine()
    store.add(condition={"==": [{"var": "payload.message"}, "nope"]})
    store.add(scope="other.streamer")
    mine = store.add(scope=HANDLE, action=ANNOUNCE | {"template": "hi"})
    await engine.reload()
    await engine.process(chat(1))
    await engine.flush()
    assert [c[0] for c in actions.calls] == [mine]
    assert list(store.log) == [(mine, chat(1)["eventId"])]


async def test_a_change_notice_reloads_the_rules() -> None:
    engine, store, actions = make_engine()
    await engine.reload()
    store.add(action=ANNOUNCE | {"template": "hi"})
    engine.request_reload()
    await engine.maybe_reload()
    await engine.process(chat(1))
    assert len(actions.calls) == 1


@pytest.mark.parametrize(
    ("condition", "action", "problem"),
    [
        ({"frobnicate": [1]}, {"type": "log"}, "condition: unknown operator 'frobnicate'"),
        (True, {"type": "announce", "template": "{{ ''.__class__ }}"}, "action.template"),
        (True, {"type": "announce", "template": "hi {nosuchtoken}"}, "action.template"),
    ],
)
def test_bad_conditions_and_templates_are_refused_with_the_problem_named(
    condition: Any, action: dict[str, Any], problem: str
) -> None:
    from ttlp.rules.engine import Action

    parsed = msgspec.convert(action, Action)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match=problem.replace("(", r"\(")):
        compile_definition("CHAT", condition, parsed)


def test_a_dry_run_says_whether_a_sample_event_matches_and_renders_the_text() -> None:
    store = FakeStore()
    store.add(event_type="GIFT", condition={">=": [{"var": "payload.coins"}, 5]}, action=ANNOUNCE)
    rule = CompiledRule.from_row(store.rows[0])
    assert try_rule(rule, SAMPLE_EVENTS["GIFT"]) == (
        True,
        "Thank you Zoë 🌸 for 5 coins!",
        None,
    )
    assert try_rule(rule, SAMPLE_EVENTS["CHAT"])[0] is False


def settings(**env: str) -> Settings:
    return Settings.from_env({"TTLP_DATA_DIR": "/tmp/ttlp-unit", **env})


async def test_announce_without_key_or_session_is_a_failed_execution_saying_what_to_set() -> None:
    actions = Actions(settings(), client=httpx.AsyncClient())
    try:
        outcome = await actions.announce(chat(1), "hello", HANDLE)
    finally:
        await actions.aclose()
    assert outcome.status == "failed"
    assert outcome.reason == "not_configured"
    assert "EULER_API_KEY and SESSION_ID" in (outcome.error or "")


async def test_announcements_are_throttled_per_streamer() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"code": 0})

    now = [100.0]
    actions = Actions(
        settings(EULER_API_KEY="k" * 8, SESSION_ID="s" * 8, ANNOUNCE_MIN_INTERVAL_S="3"),
        client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
        clock=lambda: now[0],
    )
    try:
        first = await actions.announce(chat(1), "one", HANDLE)
        second = await actions.announce(chat(2), "two", HANDLE)
        other = await actions.announce(chat(3), "three", "other.streamer")
        now[0] += 3
        later = await actions.announce(chat(4), "four", HANDLE)
    finally:
        await actions.aclose()
    assert [o.status for o in (first, second, other, later)] == [
        "success",
        "skipped",
        "success",
        "success",
    ]
    assert second.reason == "throttled"
    assert [json.loads(r.content)["content"] for r in sent] == ["one", "three", "four"]


async def test_moderate_mutes_the_events_user_with_the_duration() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"code": 0})

    actions = Actions(
        settings(EULER_API_KEY="k" * 8, SESSION_ID="s" * 8, EULER_API_URL="http://euler.test"),
        client=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
    )
    try:
        outcome = await actions.moderate(ModerateAction(op="mute", duration_s=300), chat(1))
        kicked = await actions.moderate(ModerateAction(op="kick"), chat(2, user_id="555"))
    finally:
        await actions.aclose()
    assert (outcome.status, kicked.status) == ("success", "success")
    mute, kick = sent
    assert (mute.method, mute.url.path) == ("PUT", "/webcast/moderation/mutes")
    assert dict(mute.url.params) == {
        "room_id": ROOM,
        "user_id": "7012345678901234501",
        "duration": "300",
    }
    assert (kick.url.path, dict(kick.url.params)) == (
        "/webcast/moderation/bans",
        {"room_id": ROOM, "tiktok_user_id": "555"},
    )
    assert mute.headers["x-api-key"] == "k" * 8
    assert mute.headers["x-cookie-header"] == "sessionid=" + "s" * 8


def test_sample_rule_rows_compile() -> None:
    store = FakeStore()
    store.add(action={"type": "moderate", "op": "mute", "durationS": 30})
    rule = CompiledRule.from_row(store.rows[0])
    assert replace(rule).action == ModerateAction(op="mute", duration_s=30)


# -- misconfigured rules, and the seams a backtest uses (event time, dry-run actions, a ledger in
# memory) ----------------------------------------------------------------------------------------
@pytest.fixture
def out() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    log.configure("info", "json", [], stream=buffer)
    yield buffer
    logger.remove()


def warnings(buffer: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    return [line for line in lines if line["level"] in ("warning", "error")]


def at(n: int, seconds: float, user_id: str = "7012345678901234501") -> dict[str, Any]:
    """Chat ``n`` at ``seconds`` past 19:00 (its own time, as TikTok stamped it)."""
    minutes, rest = divmod(seconds, 60)
    return chat(n, user_id, timestamp=f"2025-03-01T19:{int(minutes):02d}:{rest:06.3f}Z")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- misconfigured rules: one warning per rule and hour -----------------------------------------
async def test_an_announce_without_euler_warns_once_an_hour_with_the_count_held_back(
    out: io.StringIO,
) -> None:
    clock = Clock()
    store = FakeStore()
    store.handles["7441234567890123456"] = HANDLE
    actions = Actions(Settings.from_env({"TTLP_DATA_DIR": "/tmp/ttlp-unit"}))  # no Euler key
    engine = Engine(store, actions, clock=clock, reload_s=10**9)
    first = store.add(action=ANNOUNCE | {"template": "hi"})
    second = store.add(action=ANNOUNCE | {"template": "ho"})
    await engine.reload()
    try:
        for n in range(100):
            await engine.process(chat(n))
            clock.now += 10  # 1,000 s of chat
        lines = warnings(out)
        assert [(w["rule_id"], w["reason"], w["held_back"]) for w in lines] == [
            (first, "not_configured", 0),
            (second, "not_configured", 0),
        ]
        assert "EULER_API_KEY" in lines[0]["error"]
        clock.now += WARN_EVERY_S  # an hour after the first warning
        await engine.process(chat(100))
    finally:
        await actions.aclose()
    later = warnings(out)[2:]
    assert [(w["rule_id"], w["held_back"]) for w in later] == [(first, 99), (second, 99)]
    # Every failure still has its row.
    statuses = [e.reason for e in store.log.values()]
    assert statuses.count("not_configured") == 202


async def test_a_template_that_fails_on_the_data_warns_once_an_hour(out: io.StringIO) -> None:
    clock = Clock()
    engine, store, _ = _engine(clock)
    rule = store.add(action={"type": "log", "template": "{{ 1000 // (message|length - 9) }}"})
    await engine.reload()
    for n in range(50):  # "message 0" .. "message 9": nine characters
        await engine.process(chat(n))
    await engine.flush()
    assert [(w["rule_id"], w["reason"]) for w in warnings(out)] == [(rule, "template")]
    assert sum(e.reason == "template" for e in store.log.values()) == 10


async def test_a_rule_that_no_longer_compiles_is_reported_once_an_hour(out: io.StringIO) -> None:
    clock = Clock()
    engine, store, _ = _engine(clock)
    store.add(condition={"frobnicate": [1]})
    for _ in range(5):  # a reload every 30 s
        await engine.reload()
        clock.now += 30
    assert len(warnings(out)) == 1
    clock.now += WARN_EVERY_S
    await engine.reload()
    assert [w["held_back"] for w in warnings(out)] == [0, 4]


def _engine(clock: Clock) -> tuple[Engine, FakeStore, RecordingActions]:
    store = FakeStore()  # the handle of the fixture room is known
    store.handles["7441234567890123456"] = HANDLE
    actions = RecordingActions(store=store)
    return Engine(store, actions, clock=clock), store, actions


# -- the backtest's seams ----------------------------------------------------------------------
def dry_engine(store: FakeStore, ledger: BacktestLedger) -> Engine:
    return Engine(store, DryRunActions(3.0), ledger=ledger, now=event_time, quiet=True)


async def run_page(engine: Engine, ledger: BacktestLedger, page: list[dict[str, Any]]) -> list[Any]:
    ledger.begin(page)
    for event in page:
        await engine.process(event)
    await engine.flush()
    return [execution for execution, _ in ledger.take()]


async def test_cooldowns_are_measured_in_event_time_with_a_ledger_in_memory() -> None:
    store = FakeStore()
    store.handles["7441234567890123456"] = HANDLE
    rule = store.add(cooldown_s=10, action={"type": "log", "template": "{message}"})
    ledger = BacktestLedger(rule)
    engine = dry_engine(store, ledger)
    await engine.reload()
    page = [at(n, n * 2.0) for n in range(12)]  # one every 2 s over 22 s
    executions = await run_page(engine, ledger, page)
    assert [(e.status, e.reason) for e in executions if e.status == "success"] == [
        ("success", None)
    ] * 3
    assert [e.event_id for e in executions if e.status == "success"] == [
        page[n]["eventId"] for n in (0, 5, 10)
    ]
    assert store.log == {}  # the store's actions_log is not the ledger: nothing written


async def test_the_ledger_keeps_user_cooldowns_when_the_engine_forgets() -> None:
    """The engine's memory of per-user cooldowns is bounded; live, the store answers after
    it starts afresh; in a backtest, the ledger does, in event time."""
    store = FakeStore()
    store.handles["7441234567890123456"] = HANDLE
    rule = store.add(user_cooldown_s=3600, action={"type": "log"})
    ledger = BacktestLedger(rule)
    engine = dry_engine(store, ledger)
    await engine.reload()
    users = [str(10**12 + n) for n in range(USER_COOLDOWNS_MAX + 1)]
    page = [at(n, n * 0.001, user) for n, user in enumerate(users)]
    first = await run_page(engine, ledger, page)
    assert {e.status for e in first} == {"success"}
    again = await run_page(engine, ledger, [at(10**6, 60.0, users[0])])
    assert [(e.status, e.reason) for e in again] == [("skipped", "user_cooldown")]


async def test_dry_run_announcements_are_throttled_in_event_time_and_sent_nowhere() -> None:
    rule = _rule(action=ANNOUNCE | {"template": "hi"})
    actions = DryRunActions(3.0)
    outcomes = [
        await actions.run(rule, at(n, seconds), text, HANDLE)
        for n, (seconds, text) in enumerate([(0, "a"), (1, "b"), (3, "c"), (3.5, "d")])
    ]
    assert [(o.status, o.reason, o.rendered) for o in outcomes] == [
        ("success", None, "a"),
        ("skipped", "throttled", "b"),
        ("success", None, "c"),
        ("skipped", "throttled", "d"),
    ]
    long = await actions.run(rule, at(9, 100), "x" * 500, HANDLE)
    assert long.rendered == "x" * 150
    empty = await actions.run(rule, at(10, 200), "  ", HANDLE)
    assert (empty.status, empty.reason) == ("failed", "empty")
    assert not hasattr(actions, "client")  # nothing to send with


async def test_dry_run_webhooks_and_moderation_render_what_live_would_send() -> None:
    hook = _rule(action={"type": "webhook", "url": "https://hooks.example.com/x"})
    event = at(1, 0)
    outcome = await DryRunActions(3.0).run(hook, event, "text", HANDLE)
    assert outcome == Outcome("success", rendered=webhook_body(hook, event, "text").decode())
    assert json.loads(outcome.rendered or "") == {
        "rule": {"id": hook.id, "name": hook.name},
        "event": event,
        "text": "text",
    }
    mute = _rule(action={"type": "moderate", "op": "mute", "durationS": 30})
    assert isinstance(mute.action, ModerateAction)
    muted = await DryRunActions(3.0).run(mute, event, None, HANDLE)
    assert muted.rendered == "mute @zoe.petals 30s"
    system = {**event, "user": {"userId": "0", "uniqueId": "system"}}
    nobody = await DryRunActions(3.0).run(mute, system, None, HANDLE)
    assert (nobody.status, nobody.reason) == ("failed", "no_user")


def _rule(**values: Any) -> CompiledRule:
    store = FakeStore()
    store.add(**values)
    return CompiledRule.from_row(store.rows[0])


async def test_the_ledger_hands_over_the_rules_executions_in_event_order() -> None:
    ledger = BacktestLedger(7)
    page = [at(n, n) for n in range(3)]
    ledger.begin(page)

    def execution(n: int, rule_id: int = 7) -> Execution:
        return Execution(
            rule_id=rule_id,
            event_id=page[n]["eventId"],
            session_id="s",
            stream_id="r",
            user_id="u",
            action_type="log",
            status="success",
        )

    await ledger.finish(execution(2))
    await ledger.record([execution(0), execution(1, rule_id=8)])
    await ledger.finish(execution(1))
    assert [page.index(event) for _, event in ledger.take()] == [0, 1, 2]
    assert ledger.take() == []
