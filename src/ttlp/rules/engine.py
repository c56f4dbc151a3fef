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
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, Protocol

import msgspec
from loguru import logger

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
    """What the engine needs to run an action (``ttlp.rules.actions.Actions``; fakes in tests)."""

    async def run(
        self, rule: CompiledRule, event: Mapping[str, Any], text: str | None, streamer: str
    ) -> Outcome: ...


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
    actions: ActionRunner
    reload_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
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

    def __post_init__(self) -> None:
        self.handles = HandleDirectory(self.store.stream_handle, clock=self.clock)

    # -- rules ---------------------------------------------------------------------------------
    @property
    def rules(self) -> list[CompiledRule]:
        return [rule for rules in self._by_type.values() for rule in rules]

    async def reload(self) -> None:
        """Re-read the enabled rules; a rule that no longer compiles is left out (logged)."""
        by_type: dict[str, list[CompiledRule]] = {}
        for row in await self.store.enabled_rules():
            try:
                rule = CompiledRule.from_row(row)
            except DefinitionError as exc:
                log.error("rule left out: it does not compile", rule_id=row["id"], error=str(exc))
                continue
            by_type.setdefault(rule.event_type, []).append(rule)
        for rules in by_type.values():
            rules.sort(key=lambda r: (-r.priority, r.id))
        self._by_type = by_type
        self._loaded_at = self.clock()
        self._reload_wanted = False
        log.info("rules loaded", count=sum(len(r) for r in by_type.values()))

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
        inserted = await self.store.record([execution for execution, _ in pending.values()])
        for key, (execution, rule) in pending.items():
            if rule is None:
                continue
            if key in inserted:
                log.info("rule fired", rule_id=rule.id, rule=rule.name, text=execution.rendered)
            else:
                self.stats.fired -= 1
                self.stats.duplicates += 1

    def _add(self, execution: Execution, rule: CompiledRule | None = None) -> None:
        self._pending.setdefault((execution.rule_id, execution.event_id), (execution, rule))

    async def _skip_reason(self, rule: CompiledRule, event: Mapping[str, Any]) -> str | None:
        if rule.skip_replay and event.get("source") == "replay":
            return "replay"
        now = datetime.now(UTC)
        if rule.cooldown_s > 0:
            window = timedelta(seconds=rule.cooldown_s)
            last = self._last_rule.get(rule.id)
            if last is None or now - last >= window:
                last = await self.store.last_success(rule.id)
            if last is not None and now - last < window:
                return "cooldown"
        if rule.user_cooldown_s > 0:
            user_id = _user_id(event)
            window = timedelta(seconds=rule.user_cooldown_s)
            last = self._last_user.get((rule.id, user_id))
            if last is None or now - last >= window:
                last = await self.store.last_success(rule.id, user_id)
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
        if not await self.store.claim(claim):
            self.stats.duplicates += 1
            return "duplicate"
        if render_error is not None:
            outcome = Outcome("failed", "template", render_error)
        else:
            try:
                outcome = await self.actions.run(rule, event, text, streamer)
            except Exception as exc:  # an action bug must not re-run the event: record it
                log.opt(exception=exc).error("action crashed", rule_id=rule.id)
                outcome = Outcome("failed", "error", f"{type(exc).__name__}: {exc}")
        duration = int((time.perf_counter() - started) * 1000)
        await self.store.finish(
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
            log.warning(
                "rule action failed", rule_id=rule.id, action=rule.action_type, error=outcome.error
            )
        return outcome.status

    def _succeeded(self, rule: CompiledRule, event: Mapping[str, Any]) -> None:
        self.stats.fired += 1
        now = datetime.now(UTC)
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
