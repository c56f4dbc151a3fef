"""Rules: CRUD, a dry run against an event, and each rule's executions (DESIGN §7.1, §8).

Reading and testing need MODERATOR, changing STREAMER. A rule's scope is one streamer handle
within the account's scope, or ``*`` (every streamer) for accounts whose scope is ``*``; a rule
outside the account's scope is 403 like the streams it acts on. Conditions and templates are
checked when a rule is written: a condition with an unknown operator, too deep or too large,
a template with an unknown placeholder or a sandbox escape, a webhook URL the outbound rules
refuse, all answer 422 naming the problem. Every change publishes ``{"command":
"rules-changed"}`` on ``ttlc:control``, which makes the rules role re-read the rules at once.

A rule that is valid but cannot act as things are set up is saved all the same, and the answer
to the create or update says so in ``warnings``: an ``announce`` or ``moderate`` rule while
Euler Stream is not configured (``EULER_API_KEY`` or ``SESSION_ID`` unset) would only write
failed executions (``not_configured``). It is not refused: the settings may come with the next
restart, and the rule then works unchanged. The api judges by its own environment, which every
deployment shares with the rules role (compose's ``.env``, systemd's ``ttlp.env``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from litestar import delete, get, post, put
from litestar.exceptions import (
    NotFoundException,
    ValidationException,
)
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ttlp.api.accounts import ALL_STREAMS, Account, Role
from ttlp.api.auth import (
    current_account,
    ensure_owned_scope,
    ensure_scope,
    normalize_scope,
    require,
)
from ttlp.api.errors import Unprocessable
from ttlp.api.state import Api, Req, iso
from ttlp.db.queries import decode_cursor, encode_cursor
from ttlp.errors import UnprocessableError
from ttlp.forward.outbound import OutboundRefused
from ttlp.rules.actions import missing_euler_settings
from ttlp.rules.engine import (
    EVENT_TYPE_PATTERN,
    RULES_CHANGED,
    Action,
    AnnounceAction,
    CompiledRule,
    DefinitionError,
    ModerateAction,
    WebhookAction,
    compile_definition,
    default_streak_end_only,
    try_rule,
)
from ttlp.rules.store import RulesStore
from ttlp.rules.templates import PLACEHOLDERS, SAMPLE_EVENTS

MAX_EXECUTIONS_PAGE: Final = 500
SCOPE_PATTERN: Final = r"^(\*|@?[A-Za-z0-9_.]{1,64})$"
EVENT_ID_PATTERN: Final = r"^[0-9a-f]{64}$"
MAX_COOLDOWN_S: Final = 7 * 24 * 3600
MAX_ID: Final = 2**53  # a row id; larger ones overflow SQLite and JSON numbers alike


EventType = Annotated[str, msgspec.Meta(pattern=EVENT_TYPE_PATTERN)]
RuleId = Annotated[int, Parameter(ge=1, le=MAX_ID, description="a rule id")]
Seconds = Annotated[int, msgspec.Meta(ge=0, le=MAX_COOLDOWN_S)]


class RuleIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    scope: Annotated[str, msgspec.Meta(pattern=SCOPE_PATTERN)]
    """A streamer handle (``luna.beats`` or ``@luna.beats``), or ``*`` for every streamer."""
    event_type: EventType
    action: Action
    condition: Any = True
    """JSON Logic over the UnifiedEvent, e.g. ``{">=": [{"var": "payload.coins"}, 1000]}``."""
    enabled: bool = True
    priority: Annotated[int, msgspec.Meta(ge=-1000, le=1000)] = 0
    """Higher runs first."""
    cooldown_s: Seconds = 0
    user_cooldown_s: Seconds = 0
    skip_replay: bool = True
    streak_end_only: bool | None = None
    """Act on the last frame of a gift streak only (default: true for GIFT)."""


class RuleOut(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    name: str
    scope: str
    event_type: str
    condition: Any
    action: Action
    enabled: bool
    priority: int
    cooldown_s: int
    user_cooldown_s: int
    skip_replay: bool
    streak_end_only: bool
    created_by: str
    created_at: str | None
    updated_at: str | None


class SavedRuleOut(RuleOut, kw_only=True):
    """A rule as created or replaced, with what keeps it from acting as set up now."""

    warnings: list[str]
    """E.g. ``announce: no chat integration configured (EULER_API_KEY and SESSION_ID unset) —
    this rule will not send``; empty when nothing stands in its way."""


class RuleTestIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    rule: RuleIn | None = None
    """A rule to try (not stored); or ``ruleId``."""
    rule_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)] | None = None
    event_type: EventType | None = None
    """Try against the sample event of this type (default: the rule's)."""
    event_id: Annotated[str, msgspec.Meta(pattern=EVENT_ID_PATTERN)] | None = None
    """Or against a stored event."""


class RuleTestOut(msgspec.Struct, rename="camel"):
    matched: bool
    rendered: str | None
    reason: str | None
    event: dict[str, Any]


class PlaceholderOut(msgspec.Struct):
    name: str
    description: str


class EditorHelpOut(msgspec.Struct):
    placeholders: list[PlaceholderOut]
    """The ``{token}`` placeholders a template may use."""
    fields: dict[str, list[str]]
    """eventType → the UnifiedEvent paths a condition may test (``payload.coins``, ...)."""
    types: dict[str, dict[str, str]]
    """eventType → path → the JSON type of its value in the sample event (``string``,
    ``number``, ``boolean``, ``null``, ``array``): the builder offers text checks on strings."""


class ExecutionOut(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    rule_id: int
    event_id: str
    session_id: str
    stream_id: str
    user_id: str
    action_type: str
    status: str
    reason: str | None
    rendered: str | None
    error: str | None
    duration_ms: int | None
    created_at: str | None


class ExecutionPage(msgspec.Struct, rename="camel"):
    items: list[ExecutionOut]
    next_cursor: str | None


# -- helpers -------------------------------------------------------------------------------------
def _store(api: Api) -> RulesStore:
    return RulesStore(api.engine)


def ensure_rule_scope(account: Account, scope: str) -> None:
    ensure_owned_scope(account, scope, "a rule")


async def _checked(data: RuleIn, api: Api) -> tuple[dict[str, Any], CompiledRule]:
    """The row values of a valid rule, and the rule compiled; 422 naming what is wrong (a
    webhook's host is resolved as a send would: one that is internal is refused now)."""
    condition, template = compile_definition(data.event_type, data.condition, data.action)
    if isinstance(data.action, WebhookAction):
        try:
            await api.outbound.check_destination(data.action.url)
        except OutboundRefused as exc:
            raise UnprocessableError(f"action.url: {exc.reason}") from None
    streak_end_only = (
        default_streak_end_only(data.event_type)
        if data.streak_end_only is None
        else data.streak_end_only
    )
    values = {
        "name": data.name,
        "scope": normalize_scope(data.scope),
        "event_type": data.event_type,
        "condition": data.condition,
        "action": msgspec.to_builtins(data.action),
        "enabled": data.enabled,
        "priority": data.priority,
        "cooldown_s": data.cooldown_s,
        "user_cooldown_s": data.user_cooldown_s,
        "skip_replay": data.skip_replay,
        "streak_end_only": streak_end_only,
    }
    compiled = CompiledRule(
        id=0,
        name=data.name,
        scope=values["scope"],
        event_type=data.event_type,
        condition=condition,
        action=data.action,
        template=template,
        priority=data.priority,
        cooldown_s=data.cooldown_s,
        user_cooldown_s=data.user_cooldown_s,
        skip_replay=data.skip_replay,
        streak_end_only=streak_end_only,
    )
    return values, compiled


def rule_out(row: dict[str, Any]) -> RuleOut:
    return RuleOut(
        id=int(row["id"]),
        name=row["name"],
        scope=row["scope"],
        event_type=row["event_type"],
        condition=row["condition"],
        action=msgspec.convert(row["action"], Action),  # type: ignore[arg-type]
        enabled=bool(row["enabled"]),
        priority=int(row["priority"]),
        cooldown_s=int(row["cooldown_s"]),
        user_cooldown_s=int(row["user_cooldown_s"]),
        skip_replay=bool(row["skip_replay"]),
        streak_end_only=bool(row["streak_end_only"]),
        created_by=row["created_by"],
        created_at=iso(row["created_at"]),
        updated_at=iso(row["updated_at"]),
    )


def event_paths(event: dict[str, Any], prefix: str = "") -> list[str]:
    """The leaf paths of an event (``payload.coins``), payload and user first."""
    paths: list[str] = []
    for key, value in event.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            paths.extend(event_paths(value, f"{path}."))
        else:
            paths.append(path)
    if not prefix:
        first = ("payload.", "user.")
        paths.sort(key=lambda p: next((i for i, f in enumerate(first) if p.startswith(f)), 2))
    return paths


def json_type(value: Any) -> str:
    """The JSON type of a value: string, number, boolean, null, array or object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def path_types(event: dict[str, Any]) -> dict[str, str]:
    """Each leaf path of ``event_paths`` → the JSON type of its value."""
    types: dict[str, str] = {}
    for path in event_paths(event):
        value: Any = event
        for key in path.split("."):
            value = value[key]
        types[path] = json_type(value)
    return types


def rule_warnings(api: Api, action: Action) -> list[str]:
    """What keeps a valid rule from acting as things are set up now: an ``announce`` or
    ``moderate`` action without Euler Stream configured (the same check its run makes)."""
    if not isinstance(action, AnnounceAction | ModerateAction):
        return []
    missing = missing_euler_settings(api.settings)
    if not missing:
        return []
    unset = f"{' and '.join(missing)} unset"
    if isinstance(action, AnnounceAction):
        return [f"announce: no chat integration configured ({unset}) — this rule will not send"]
    return [
        f"moderate: no moderation integration configured ({unset}) — this rule will not "
        f"{action.op} anyone"
    ]


def saved_out(row: dict[str, Any], warnings: list[str]) -> SavedRuleOut:
    return SavedRuleOut(**msgspec.structs.asdict(rule_out(row)), warnings=warnings)


async def rule_in_scope(api: Api, request: Req, rule_id: int) -> dict[str, Any]:
    row = await _store(api).get_rule(rule_id)
    if row is None:
        raise NotFoundException(f"no rule {rule_id}")
    ensure_rule_scope(current_account(request), row["scope"])
    return row


async def notify(api: Api) -> None:
    """Tell the rules role to re-read the rules now."""
    await api.bus.publish(api.keys.control, {"command": RULES_CHANGED})


# -- routes --------------------------------------------------------------------------------------
@get("/rules", guards=[require(Role.MODERATOR)], summary="Rules in the account's scope")
async def list_rules(api: Api, request: Req) -> list[RuleOut]:
    account = current_account(request)
    scopes = None if ALL_STREAMS in account.scopes else list(account.scopes)
    return [rule_out(row) for row in await _store(api).list_rules(scopes)]


@get(
    "/rules/placeholders",
    guards=[require(Role.MODERATOR)],
    summary="What the rule editor offers: template placeholders, condition fields per type",
)
async def editor_help() -> EditorHelpOut:
    return EditorHelpOut(
        placeholders=[PlaceholderOut(name, text) for name, text in PLACEHOLDERS.items()],
        fields={kind: event_paths(event) for kind, event in SAMPLE_EVENTS.items()},
        types={kind: path_types(event) for kind, event in SAMPLE_EVENTS.items()},
    )


@post(
    "/rules",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_201_CREATED,
    raises=[Unprocessable],
    summary="Create a rule (warnings: what keeps it from acting as set up now)",
)
async def create_rule(api: Api, request: Req, data: JSONBody[RuleIn]) -> SavedRuleOut:
    account = current_account(request)
    ensure_rule_scope(account, normalize_scope(data.scope))
    values, _ = await _checked(data, api)
    row = await _store(api).create_rule(values, account.username)
    await notify(api)
    return saved_out(row, rule_warnings(api, data.action))


@get("/rules/{rule_id:int}", guards=[require(Role.MODERATOR)], summary="One rule")
async def get_rule(api: Api, request: Req, rule_id: RuleId) -> RuleOut:
    return rule_out(await rule_in_scope(api, request, rule_id))


@put(
    "/rules/{rule_id:int}",
    guards=[require(Role.STREAMER)],
    raises=[Unprocessable],
    summary="Replace a rule (warnings: what keeps it from acting as set up now)",
)
async def replace_rule(
    api: Api, request: Req, rule_id: RuleId, data: JSONBody[RuleIn]
) -> SavedRuleOut:
    await rule_in_scope(api, request, rule_id)
    ensure_rule_scope(current_account(request), normalize_scope(data.scope))
    values, _ = await _checked(data, api)
    row = await _store(api).update_rule(rule_id, values)
    if row is None:
        raise NotFoundException(f"no rule {rule_id}")
    await notify(api)
    return saved_out(row, rule_warnings(api, data.action))


@delete(
    "/rules/{rule_id:int}",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_204_NO_CONTENT,
    summary="Delete a rule (its executions stay in actions_log)",
)
async def delete_rule(api: Api, request: Req, rule_id: RuleId) -> None:
    await rule_in_scope(api, request, rule_id)
    await _store(api).delete_rule(rule_id)
    await notify(api)


@post(
    "/rules/test",
    guards=[require(Role.MODERATOR)],
    status_code=HTTP_200_OK,
    raises=[Unprocessable, NotFoundException],
    summary="Try a rule (or ruleId) against a sample event or a stored one; no side effects",
)
async def dry_run_rule(api: Api, request: Req, data: JSONBody[RuleTestIn]) -> RuleTestOut:
    account = current_account(request)
    if (data.rule is None) == (data.rule_id is None):
        raise ValidationException("give exactly one of rule and ruleId")
    if data.event_type is not None and data.event_id is not None:
        raise ValidationException("give at most one of eventType and eventId")
    if data.rule is not None:
        _, rule = await _checked(data.rule, api)
    else:
        assert data.rule_id is not None
        row = await rule_in_scope(api, request, data.rule_id)
        try:
            rule = CompiledRule.from_row(row)
        except DefinitionError as exc:
            raise UnprocessableError(f"the stored rule does not compile: {exc}") from None
    if data.event_id is not None:
        event = await _store(api).event(data.event_id)
        if event is None:
            raise NotFoundException(f"no stored event {data.event_id}")
        handle = await _store(api).stream_handle(str(event.get("streamId")))
        ensure_scope(account, handle)
    else:
        event = SAMPLE_EVENTS[data.event_type or rule.event_type]
    matched, rendered, reason = try_rule(rule, event)
    return RuleTestOut(matched, rendered, reason, event)


Limit = Annotated[int, QueryParameter(ge=1, le=MAX_EXECUTIONS_PAGE, description="rows per page")]
Cursor = Annotated[str | None, QueryParameter(max_length=200, description="nextCursor of a page")]


@get(
    "/rules/{rule_id:int}/executions",
    guards=[require(Role.MODERATOR)],
    summary="A rule's executions (actions_log), newest first, in keyset pages",
)
async def rule_executions(
    api: Api, request: Req, rule_id: RuleId, limit: Limit = 100, cursor: Cursor = None
) -> ExecutionPage:
    await rule_in_scope(api, request, rule_id)
    fingerprint = f"rule-{rule_id}"
    before = None
    if cursor is not None:
        before = decode_cursor(cursor, "desc", fingerprint)
    rows = await _store(api).executions(rule_id, limit=limit, before=before)
    items = [
        ExecutionOut(
            id=int(r["id"]),
            rule_id=int(r["rule_id"]),
            event_id=r["event_id"],
            session_id=r["session_id"],
            stream_id=r["stream_id"],
            user_id=r["user_id"],
            action_type=r["action_type"],
            status=r["status"],
            reason=r["reason"],
            rendered=r["rendered"],
            error=r["error"],
            duration_ms=r["duration_ms"],
            created_at=iso(r["created_at"]),
        )
        for r in rows
    ]
    next_cursor = encode_cursor(items[-1].id, "desc", fingerprint) if len(items) == limit else None
    return ExecutionPage(items, next_cursor)


routes = [
    list_rules,
    editor_help,
    create_rule,
    dry_run_rule,
    get_rule,
    replace_rule,
    delete_rule,
    rule_executions,
]
