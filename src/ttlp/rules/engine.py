"""The rule engine: which rules an event fires, in which order, and exactly once (DESIGN §8).

A rule is a definition (``RuleDefinition``: event type, JSON Logic condition, action, switches)
checked and compiled once (``compile_definition``: a bad condition or template is refused with
``DefinitionError`` naming the problem, which the API answers with 422). ``Engine`` keeps the
enabled rules in memory, re-read on a change notice or every ``reload_s``, and for each event:

1. takes the enabled rules of its event type whose scope is the event's streamer (the handle of
   its room, from ``streams.unique_id``, cached; CONNECTED events teach it too) or ``*``, in
   priority order (higher first, then the older rule);
2. passes over the frames of a gift streak that are not its last (``streakEndOnly``), and rules
   whose condition is false: neither is an execution, nothing is written;
3. skips (status ``skipped``) on a replayed event when ``skipReplay`` (reason ``replay``), and
   inside the rule's cooldown or the TikTok user's (``cooldown`` / ``user_cooldown``). Cooldowns
   are measured against the successes in ``actions_log``, so they hold across restarts and
   replicas (a success of this process is remembered too, to spare the query);
4. otherwise runs the action, exactly once per (rule, event): the ``actions_log`` row is
   inserted first (``ON CONFLICT DO NOTHING``; a conflict means the rule already ran or was
   skipped for this event, here or on another replica: nothing happens), with status
   ``failed`` / reason ``interrupted``; then the action runs; then the row is updated to its
   outcome with the rendered text and the duration. A process that dies between the insert and
   the update leaves that honest ``failed/interrupted`` row and never runs the action again: an
   announcement or a mute that may have happened is not repeated (at most once, recorded).

Skips and ``log`` actions are written at the end of the batch, in one multi-row insert
(``flush``, before the batch is acked), also ``ON CONFLICT DO NOTHING``; the log line of a log
action is written once its row is in, only for the rows this insert added. A crash before the
flush leaves the batch pending: it is evaluated again on the next start.

The same engine backtests a rule over stored events (``ttlp.rules.backtest``): what it does
with the world goes through two seams, so the decisions above are made by this one code, live
or not. ``actions`` (``ActionRunner``) sends; ``ledger`` (``Ledger``: ``actions_log`` through
``RulesStore`` live) records executions and answers when a rule last succeeded. A backtest
passes dry-run ones (``ttlp.rules.actions.DryRunActions``: render, send nothing; a ledger
that keeps the executions in memory), and ``now``, the time cooldowns are measured in: the
wall clock live, each event's own ``timestamp`` in a backtest.

A misconfigured rule (an announcement without the Euler settings, a template that fails on
the data, a condition that cannot be evaluated, a rule that no longer compiles) fails on every
event it matches: its warning is logged once per rule and kind of failure every
``WARN_EVERY_S`` (``WarningGate``), with the count of those held back since; every failure
still has its ``actions_log`` row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, Protocol

import msgspec
from loguru import logger

from ttlp.aio import parse_iso
from ttlp.contracts.events import EVENT_CLASSES
from ttlp.db.handles import HandleDirectory
from ttlp.errors import UnprocessableError
from ttlp.rules import jsonlogic
from ttlp.rules.store import Execution, RulesStore
from ttlp.rules.templates import CHAT_MAX_LENGTH, Template, TemplateError, compile_template

ALL_SCOPES: Final = "*"
RULES_CHANGED: Final = "rules-changed"
"""The ``command`` of the ``ttlc:control`` notice the API publishes on every rule change."""
USER_COOLDOWNS_MAX: Final = 10_000
"""Per-user cooldown times remembered at most (then the map starts afresh)."""
MUTE_DURATIONS: Final = (5, 30, 60, 300, -1)
"""What Euler's mute endpoint accepts, in seconds (-1: until unmuted)."""
DEFAULT_LOG_TEMPLATE: Final = "{eventType} from {username}"
UNSAVED_RULE_ID: Final = 2**53
"""A rule not saved yet (a backtest of an editor's form): the newest id, so it runs after the
older rules of its priority as it will once saved (API ids stay below it)."""
WARN_EVERY_S: Final = 3600.0
"""A rule's failure of one kind is logged at most this often (the rest are counted)."""
EVENT_TYPE_PATTERN: Final = "^(" + "|".join(EVENT_CLASSES) + ")$"

log = logger.bind(role="rules")


# -- definitions -------------------------------------------------------------------------------
class _Action(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    pass


Text = Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]


class AnnounceAction(_Action, frozen=True, tag="announce", tag_field="type"):
    """Send ``template``, rendered, as chat to the streamer's room (≤ 150 characters)."""

    template: Text


class ModerateAction(_Action, frozen=True, tag="moderate", tag_field="type"):
    """Mute the event's user for ``durationS`` seconds (5, 30, 60, 300; -1 = until unmuted),
    or kick them from the room."""

    op: Literal["mute", "kick"]
    duration_s: Literal[5, 30, 60, 300, -1] = 60


class WebhookAction(_Action, frozen=True, tag="webhook", tag_field="type"):
    """POST JSON ``{"rule", "event", "text"}`` to ``url`` (outbound safety rules apply)."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    template: Text | None = None


class LogAction(_Action, frozen=True, tag="log", tag_field="type"):
    """Write ``template``, rendered, to the log (and to ``actions_log``)."""

    template: Text = DEFAULT_LOG_TEMPLATE


Action = AnnounceAction | ModerateAction | WebhookAction | LogAction
ACTION_TYPES: Final = ("announce", "moderate", "webhook", "log")


class DefinitionError(UnprocessableError):
    """A rule that cannot be accepted: the message names the field and the problem."""


def default_streak_end_only(event_type: str) -> bool:
    return event_type == "GIFT"


def compile_definition(
    event_type: str, condition: Any, action: Action
) -> tuple[jsonlogic.Rule, Template | None]:
    """Check and compile a rule's condition and template, or raise ``DefinitionError``."""
    if event_type not in EVENT_CLASSES:
        raise DefinitionError(f"eventType: unknown event type {event_type!r}")
    try:
        compiled = jsonlogic.compile_rule(condition)
    except jsonlogic.RuleError as exc:
        raise DefinitionError(f"condition: {exc}") from None
    text = getattr(action, "template", None)
    template = None
    if text is not None:
        limit = CHAT_MAX_LENGTH if isinstance(action, AnnounceAction) else 4096
        try:
            template = compile_template(text, event_type=event_type, max_length=limit)
        except TemplateError as exc:
            raise DefinitionError(f"action.template: {exc}") from None
    return compiled, template


@dataclass(frozen=True)
class CompiledRule:
    id: int
    name: str
    scope: str
    event_type: str
    condition: jsonlogic.Rule
    action: Action
    template: Template | None
    priority: int
    cooldown_s: int
    user_cooldown_s: int
    skip_replay: bool
    streak_end_only: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CompiledRule:
        """A stored rule, compiled (``DefinitionError`` when it no longer compiles)."""
        try:
            action = msgspec.convert(row["action"], Action)  # type: ignore[arg-type]
        except msgspec.ValidationError as exc:
            raise DefinitionError(f"action: {exc}") from None
        condition, template = compile_definition(row["event_type"], row["condition"], action)
        return cls(
            id=int(row["id"]),
            name=row["name"],
            scope=str(row["scope"]).lower(),
            event_type=row["event_type"],
            condition=condition,
            action=action,
            template=template,
            priority=int(row["priority"]),
            cooldown_s=int(row["cooldown_s"]),
            user_cooldown_s=int(row["user_cooldown_s"]),
            skip_replay=bool(row["skip_replay"]),
            streak_end_only=bool(row["streak_end_only"]),
        )

    @property
    def action_type(self) -> str:
        return str(self.action.__struct_config__.tag)

    def render(self, event: Mapping[str, Any]) -> str | None:
        return self.template.render(event) if self.template is not None else None


def is_streak_frame(event: Mapping[str, Any]) -> bool:
    """A gift frame that is not the last of its streak (``streakActive``)."""
    payload = event.get("payload") or {}
    return bool(payload.get("streakActive")) and not payload.get("streakEnd")


def try_rule(rule: CompiledRule, event: Mapping[str, Any]) -> tuple[bool, str | None, str | None]:
    """``POST /rules/test``: (matched, rendered text, why not) for one event, no side effects.

    Matched means the rule would act on the event, cooldowns and replay aside: same event type,
    not a streak frame it passes over, condition true."""
    if event.get("eventType") != rule.event_type:
        return (
            False,
            None,
            f"the event is {event.get('eventType')}, the rule is for {rule.event_type}",
        )
    if rule.streak_end_only and is_streak_frame(event):
        return False, None, "a gift streak frame that is not the last (streakEndOnly)"
    try:
        if not rule.condition.matches(event):
            return False, None, "the condition is false"
    except jsonlogic.EvaluationError as exc:
        return False, None, f"the condition failed: {exc}"
    try:
        return True, rule.render(event), None
    except TemplateError as exc:
        return True, None, str(exc)


# -- actions interface -------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What running an action came to (``actions_log`` status, reason, error)."""

    status: str
    reason: str | None = None
    error: str | None = None
    rendered: str | None = None


class ActionRunner(Protocol):
    """What the engine needs to run an action: ``ttlp.rules.actions.Actions`` live,
    ``DryRunActions`` in a backtest (renders, sends nothing); fakes in tests."""

    async def run(
        self, rule: CompiledRule, event: Mapping[str, Any], text: str | None, streamer: str
    ) -> Outcome: ...

    def log_line(self, rule: CompiledRule, text: str | None) -> None:
        """A ``log`` action's line, written once its ``actions_log`` row is in."""


class Ledger(Protocol):
    """Where executions are recorded, exactly once per (rule, event), and what cooldowns read:
    ``RulesStore`` (``actions_log``) live; a backtest keeps them in memory."""

    async def claim(self, execution: Execution) -> bool: ...

    async def finish(self, execution: Execution) -> None: ...

    async def record(self, executions: Sequence[Execution]) -> set[tuple[int, str]]: ...

    async def last_success(self, rule_id: int, user_id: str | None = None) -> datetime | None: ...


def wall_time(_event: Mapping[str, Any]) -> datetime:
    """Live cooldowns: now."""
    return datetime.now(UTC)


def event_time(event: Mapping[str, Any]) -> datetime:
    """Backtest cooldowns: the event's own time (TikTok's, else when it was ingested)."""
    return parse_iso(str(event["timestamp"]))


@dataclass
class WarningGate:
    """One log line per key every ``every_s`` instead of one per event (a misconfigured rule
    fails on every event it matches); counts what it held back."""

    every_s: float = WARN_EVERY_S
    clock: Callable[[], float] = time.monotonic
    _last: dict[Hashable, float] = field(default_factory=dict)
    _held: dict[Hashable, int] = field(default_factory=dict)

    def admit(self, key: Hashable) -> int | None:
        """None: hold this one back. Else log it: the number held back since the last one."""
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)


# -- the engine --------------------------------------------------------------------------------
@dataclass
class EngineStats:
    events: int = 0
    fired: int = 0
    skipped: int = 0
    duplicates: int = 0
    failed: int = 0


@dataclass
class Engine:
    store: RulesStore
    """The rules and the rooms' handles (read)."""
    actions: ActionRunner
    reload_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    """Monotonic: when to re-read the rules and rooms, and the warnings' hour."""
    ledger: Ledger | None = None
    """Where executions go (default: ``store``, i.e. ``actions_log``)."""
    now: Callable[[Mapping[str, Any]], datetime] = wall_time
    """The time of an event for cooldowns: ``wall_time`` live, ``event_time`` in a backtest."""
    quiet: bool = False
    """Log nothing per rule (a backtest reports its findings instead)."""
    stats: EngineStats = field(default_factory=EngineStats)
    _by_type: dict[str, list[CompiledRule]] = field(default_factory=dict)
    _loaded_at: float | None = None
    _reload_wanted: bool = False
    handles: HandleDirectory = field(init=False)
    _last_rule: dict[int, datetime] = field(default_factory=dict)
    _last_user: dict[tuple[int, str], datetime] = field(default_factory=dict)
    _pending: dict[tuple[int, str], tuple[Execution, CompiledRule | None]] = field(
        default_factory=dict
    )

    _ledger: Ledger = field(init=False)
    _warnings: WarningGate = field(init=False)

    def __post_init__(self) -> None:
        self.handles = HandleDirectory(self.store.stream_handle, clock=self.clock)
        self._ledger = self.ledger if self.ledger is not None else self.store
        self._warnings = WarningGate(clock=self.clock)

    # -- rules ---------------------------------------------------------------------------------
    @property
    def rules(self) -> list[CompiledRule]:
        return [rule for rules in self._by_type.values() for rule in rules]

    async def reload(self) -> None:
        """Re-read the enabled rules; a rule that no longer compiles is left out (logged)."""
        rules: list[CompiledRule] = []
        for row in await self.store.enabled_rules():
            try:
                rules.append(CompiledRule.from_row(row))
            except DefinitionError as exc:
                held = self._warnings.admit((row["id"], "compile"))
                if held is not None and not self.quiet:
                    log.error(
                        "rule left out: it does not compile",
                        rule_id=row["id"],
                        error=str(exc),
                        held_back=held,
                    )
        self.use(rules)
        self._loaded_at = self.clock()
        self._reload_wanted = False
        if not self.quiet:
            log.info("rules loaded", count=len(rules))

    def use(self, rules: Sequence[CompiledRule]) -> None:
        """Act with ``rules`` from now on (each event's in priority order: higher first, then
        the older rule). ``reload`` calls it with the enabled rules; a backtest with its own."""
        by_type: dict[str, list[CompiledRule]] = {}
        for rule in rules:
            by_type.setdefault(rule.event_type, []).append(rule)
        for same_type in by_type.values():
            same_type.sort(key=lambda r: (-r.priority, r.id))
        self._by_type = by_type

    def wants(self, event_type: str) -> bool:
        """Whether an enabled rule is for ``event_type`` (else its events need no decoding)."""
        return event_type in self._by_type

    def request_reload(self) -> None:
        """A change notice: re-read the rules before the next batch."""
        self._reload_wanted = True

    async def maybe_reload(self) -> None:
        if (
            self._reload_wanted
            or self._loaded_at is None
            or self.clock() - self._loaded_at >= self.reload_s
        ):
            await self.reload()

    # -- scope -----------------------------------------------------------------------------------
    async def handle_of(self, event: Mapping[str, Any]) -> str | None:
        """The streamer handle of the event's room (None while unknown)."""
        stream_id = str(event.get("streamId"))
        if event.get("eventType") == "CONNECTED":
            handle = (event.get("payload") or {}).get("uniqueId")
            if handle:
                self.handles.learn(stream_id, str(handle))
        return await self.handles.handle(stream_id)

    # -- per event -------------------------------------------------------------------------------
    def candidates(self, event: Mapping[str, Any], handle: str | None) -> list[CompiledRule]:
        rules = self._by_type.get(str(event.get("eventType")), [])
        return [r for r in rules if r.scope == ALL_SCOPES or r.scope == handle]

    async def process(self, event: Mapping[str, Any]) -> list[tuple[int, str]]:
        """Run the rules for one event; → (rule id, status) of each execution decided."""
        self.stats.events += 1
        rules = self._by_type.get(str(event.get("eventType")))
        if not rules:
            return []
        handle = await self.handle_of(event)
        decided: list[tuple[int, str]] = []
        for rule in self.candidates(event, handle):
            if rule.streak_end_only and is_streak_frame(event):
                continue
            try:
                if not rule.condition.matches(event):
                    continue
            except jsonlogic.EvaluationError as exc:
                self._skip(rule, event, "failed", "condition_error", error=str(exc))
                self._warn(rule, "condition_error", str(exc))
                decided.append((rule.id, "failed"))
                continue
            reason = await self._skip_reason(rule, event)
            if reason is not None:
                self._skip(rule, event, "skipped", reason)
                decided.append((rule.id, "skipped"))
                continue
            status = await self._execute(rule, event, handle or str(event.get("streamId")))
            decided.append((rule.id, status))
        return decided

    async def flush(self) -> None:
        """Write the batch's skip and log rows (before the batch is acked); log the lines of
        the log actions whose rows were not there yet."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        inserted = await self._ledger.record([execution for execution, _ in pending.values()])
        for key, (execution, rule) in pending.items():
            if rule is None:
                continue
            if key in inserted:
                self.actions.log_line(rule, execution.rendered)
            else:
                self.stats.fired -= 1
                self.stats.duplicates += 1

    def _add(self, execution: Execution, rule: CompiledRule | None = None) -> None:
        self._pending.setdefault((execution.rule_id, execution.event_id), (execution, rule))

    async def _skip_reason(self, rule: CompiledRule, event: Mapping[str, Any]) -> str | None:
        if rule.skip_replay and event.get("source") == "replay":
            return "replay"
        if not rule.cooldown_s and not rule.user_cooldown_s:
            return None
        now = self.now(event)
        if rule.cooldown_s > 0:
            window = timedelta(seconds=rule.cooldown_s)
            last = self._last_rule.get(rule.id)
            if last is None or now - last >= window:
                last = await self._ledger.last_success(rule.id)
            if last is not None and now - last < window:
                return "cooldown"
        if rule.user_cooldown_s > 0:
            user_id = _user_id(event)
            window = timedelta(seconds=rule.user_cooldown_s)
            last = self._last_user.get((rule.id, user_id))
            if last is None or now - last >= window:
                last = await self._ledger.last_success(rule.id, user_id)
            if last is not None and now - last < window:
                return "user_cooldown"
        return None

    def _skip(
        self,
        rule: CompiledRule,
        event: Mapping[str, Any],
        status: str,
        reason: str,
        error: str | None = None,
    ) -> None:
        self.stats.skipped += 1
        self._add(_execution(rule, event, status, reason=reason, error=error))

    async def _execute(self, rule: CompiledRule, event: Mapping[str, Any], streamer: str) -> str:
        started = time.perf_counter()
        text: str | None = None
        render_error: str | None = None
        try:
            text = rule.render(event)
        except TemplateError as exc:
            render_error = str(exc)
        if render_error is None and isinstance(rule.action, LogAction):
            # The row is the record: written with the batch, the line once the row is in.
            row = _execution(rule, event, "success", rendered=text, duration_ms=0)
            if (row.rule_id, row.event_id) in self._pending:  # twice in one batch
                self.stats.duplicates += 1
                return "duplicate"
            self._add(row, rule)
            self._succeeded(rule, event)
            return "success"
        claim = _execution(rule, event, "failed", reason="interrupted", rendered=text)
        if not await self._ledger.claim(claim):
            self.stats.duplicates += 1
            return "duplicate"
        if render_error is not None:
            outcome = Outcome("failed", "template", render_error)
        else:
            try:
                outcome = await self.actions.run(rule, event, text, streamer)
            except Exception as exc:  # an action bug must not re-run the event: record it
                if not self.quiet and self._warnings.admit((rule.id, "crash")) is not None:
                    log.opt(exception=exc).error("action crashed", rule_id=rule.id)
                outcome = Outcome("failed", "error", f"{type(exc).__name__}: {exc}")
        duration = int((time.perf_counter() - started) * 1000)
        await self._ledger.finish(
            _execution(
                rule,
                event,
                outcome.status,
                reason=outcome.reason,
                rendered=outcome.rendered if outcome.rendered is not None else text,
                error=outcome.error,
                duration_ms=duration,
            )
        )
        if outcome.status == "success":
            self._succeeded(rule, event)
        elif outcome.status == "failed":
            self.stats.failed += 1
            self._warn(rule, outcome.reason or "failed", outcome.error)
        return outcome.status

    def _warn(self, rule: CompiledRule, reason: str, error: str | None) -> None:
        """The failure's warning, once per rule and reason every ``WARN_EVERY_S``."""
        if self.quiet:
            return
        held = self._warnings.admit((rule.id, reason))
        if held is None:
            return
        log.warning(
            "rule action failed",
            rule_id=rule.id,
            rule=rule.name,
            action=rule.action_type,
            reason=reason,
            error=error,
            held_back=held,
            every_s=self._warnings.every_s,
        )

    def _succeeded(self, rule: CompiledRule, event: Mapping[str, Any]) -> None:
        self.stats.fired += 1
        if not rule.cooldown_s and not rule.user_cooldown_s:
            return
        now = self.now(event)
        if rule.cooldown_s:
            self._last_rule[rule.id] = now
        if rule.user_cooldown_s:
            if len(self._last_user) >= USER_COOLDOWNS_MAX:
                self._last_user.clear()
            self._last_user[(rule.id, _user_id(event))] = now


def _user_id(event: Mapping[str, Any]) -> str:
    return str((event.get("user") or {}).get("userId", "0"))


def _execution(
    rule: CompiledRule,
    event: Mapping[str, Any],
    status: str,
    *,
    reason: str | None = None,
    rendered: str | None = None,
    error: str | None = None,
    duration_ms: int | None = None,
) -> Execution:
    return Execution(
        rule_id=rule.id,
        event_id=str(event.get("eventId")),
        session_id=str(event.get("sessionId")),
        stream_id=str(event.get("streamId")),
        user_id=_user_id(event),
        action_type=rule.action_type,
        status=status,
        reason=reason,
        rendered=rendered,
        error=error,
        duration_ms=duration_ms,
    )
