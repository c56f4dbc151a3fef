"""``POST /rules/backtest``: what a rule would have done over stored sessions (MODERATOR and up).

The rule is a stored one (``ruleId``), an unsaved one (``rule``, as ``POST /rules`` takes it),
or the unsaved edit of a stored one (both). It runs over named sessions (``sessions``, each in
the account's scope) or over a stream (a room id or ``@handle``) between ``since`` and
``until`` (live events; replayed ones too with ``includeReplays``), through the rules role's
own engine in dry run (``ttlp.rules.backtest``): nothing is sent, nothing is written.

The answer streams NDJSON (``application/x-ndjson``), one JSON object per line: ``{"type":
"progress", "done", "total", "fires", "elapsedMs"}`` now and then, then ``{"type": "result",
...}`` (``BacktestResult``), or ``{"type": "error", "detail"}`` if the run broke off. Every
check comes first, so a bad request is an ordinary 4xx JSON answer. Why a stream and not a job
resource to poll: a POST carries the rule (an EventSource could not), every api replica can
answer it alone (a job would live in one replica's memory), and a client that goes away
(closing the panel, Ctrl-C, a dropped connection) stops the work at once, with nothing left
behind to cancel. An account runs ``MAX_PER_ACCOUNT`` backtests at a time (429 beyond).

The work runs in the api's event loop a page of events at a time; each page's database read
gives the loop back, so a long backtest delays other requests by a page's evaluation at most.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncGenerator, Iterator
from datetime import datetime
from typing import Annotated, Any, Final

import msgspec
from litestar import post
from litestar.background_tasks import BackgroundTask
from litestar.exceptions import TooManyRequestsException, ValidationException
from litestar.params import JSONBody
from litestar.response import Stream
from litestar.status_codes import HTTP_200_OK
from loguru import logger

from ttlp.aio import hold
from ttlp.api.accounts import Account, Role
from ttlp.api.auth import current_account, normalize_scope, require
from ttlp.api.errors import Unprocessable
from ttlp.api.routes.history import ROOM_OR_HANDLE, session_in_scope, utc
from ttlp.api.routes.rules import MAX_ID, RuleIn, rule_in_scope
from ttlp.api.state import Api, Req, resolve_stream
from ttlp.errors import UnprocessableError
from ttlp.rules.actions import missing_euler_settings
from ttlp.rules.backtest import (
    DEFAULT_OUTPUTS,
    MAX_OUTPUTS,
    Backtest,
    Source,
    announce_companions,
    encode_line,
    in_start_order,
)
from ttlp.rules.engine import (
    UNSAVED_RULE_ID,
    CompiledRule,
    DefinitionError,
    default_streak_end_only,
)
from ttlp.rules.store import RulesStore

MAX_SESSIONS: Final = 100
MAX_PER_ACCOUNT: Final = 2
RETRY_AFTER_S: Final = "5"
SESSION_ID_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,64}$"
NDJSON: Final = "application/x-ndjson"

log = logger.bind(role="api")
_running: Counter[str] = Counter()
"""Backtests running per account in this process (one response each)."""

SessionId = Annotated[str, msgspec.Meta(pattern=SESSION_ID_PATTERN)]


class BacktestIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    rule: RuleIn | None = None
    """An unsaved rule (as ``POST /rules`` takes it); or ``ruleId`` alone for a stored one."""
    rule_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)] | None = None
    """A stored rule; with ``rule``, the stored rule ``rule`` is an edit of (it is then left
    out of the enabled rules run alongside)."""
    sessions: Annotated[list[SessionId], msgspec.Meta(max_length=MAX_SESSIONS)] = []
    """Stored sessions, read in the order they started (replay sessions only when named)."""
    stream: Annotated[str, msgspec.Meta(pattern=ROOM_OR_HANDLE)] | None = None
    """Or a room id, or ``@handle`` for all the streamer's rooms, with ``since``/``until``."""
    since: datetime | None = None
    until: datetime | None = None
    include_replays: bool = False
    """With ``stream``: replayed events too (default: live events only)."""
    outputs: Annotated[int, msgspec.Meta(ge=0, le=MAX_OUTPUTS)] = DEFAULT_OUTPUTS
    """How many of the first firings to return in full (rendered output and event)."""


class BacktestFailed(msgspec.Struct, tag="error", tag_field="type"):
    detail: str


def definition_row(data: RuleIn, rule_id: int) -> dict[str, Any]:
    """An unsaved rule as a ``rules`` row (what ``CompiledRule.from_row`` compiles)."""
    return {
        "id": rule_id,
        "name": data.name,
        "scope": normalize_scope(data.scope),
        "event_type": data.event_type,
        "condition": data.condition,
        "action": msgspec.to_builtins(data.action),
        "priority": data.priority,
        "cooldown_s": data.cooldown_s,
        "user_cooldown_s": data.user_cooldown_s,
        "skip_replay": data.skip_replay,
        "streak_end_only": default_streak_end_only(data.event_type)
        if data.streak_end_only is None
        else data.streak_end_only,
    }


def compile_row(row: dict[str, Any], stored: bool) -> CompiledRule:
    try:
        return CompiledRule.from_row(row)
    except DefinitionError as exc:
        if stored:
            raise UnprocessableError(f"the stored rule does not compile: {exc}") from None
        raise


async def source_of(api: Api, request: Req, data: BacktestIn) -> Source:
    if bool(data.sessions) == (data.stream is not None):
        raise ValidationException("give sessions, or a stream (with since and until)")
    if data.sessions:
        if data.since is not None or data.until is not None or data.include_replays:
            raise ValidationException("since, until and includeReplays go with a stream")
        rows = [await session_in_scope(api, request, s) for s in dict.fromkeys(data.sessions)]
        return Source(session_ids=in_start_order(rows))
    assert data.stream is not None
    since, until = utc(data.since, "since"), utc(data.until, "until")
    if since is not None and until is not None and since >= until:
        raise ValidationException("since must be before until")
    ref = await resolve_stream(api, data.stream, current_account(request))
    return Source(
        stream_ids=tuple(ref.stream_ids),
        since=since,
        until=until,
        include_replays=data.include_replays,
    )


@contextlib.contextmanager
def backtest_slot(account: Account) -> Iterator[None]:
    """One of the account's concurrent backtests (``MAX_PER_ACCOUNT``), or 429."""
    if _running[account.username] >= MAX_PER_ACCOUNT:
        raise TooManyRequestsException(
            f"this account already runs {MAX_PER_ACCOUNT} backtests; wait for one to end",
            headers={"Retry-After": RETRY_AFTER_S},
        )
    _running[account.username] += 1
    try:
        yield
    finally:
        _running[account.username] -= 1
        if _running[account.username] <= 0:
            del _running[account.username]  # no entry kept per account that ever ran one
        if _running[account.username] <= 0:
            del _running[account.username]


@post(
    "/rules/backtest",
    guards=[require(Role.MODERATOR)],
    status_code=HTTP_200_OK,
    media_type=NDJSON,
    raises=[Unprocessable, TooManyRequestsException],
    summary="Backtest a rule over stored sessions: NDJSON progress lines, then the result",
    description="Nothing is sent and nothing is written to actions_log. Lines: "
    '{"type":"progress",...}, then {"type":"result",...} or {"type":"error","detail"}. '
    "Closing the connection stops the backtest.",
)
async def backtest_rule(api: Api, request: Req, data: JSONBody[BacktestIn]) -> Stream:
    account = current_account(request)
    store = RulesStore(api.engine)
    if data.rule is None and data.rule_id is None:
        raise ValidationException("give rule, ruleId, or both (an edit of a stored rule)")
    stored = None if data.rule_id is None else await rule_in_scope(api, request, data.rule_id)
    if data.rule is not None:
        rule = compile_row(definition_row(data.rule, data.rule_id or UNSAVED_RULE_ID), stored=False)
    else:
        assert stored is not None
        rule = compile_row(stored, stored=True)
    source = await source_of(api, request, data)
    companions = await announce_companions(store, rule, replaces=data.rule_id)
    backtest = Backtest(
        api.engine,
        rule,
        source,
        saved=data.rule is None,
        companions=companions,
        announce_min_interval_s=api.settings.rules.announce_min_interval_s,
        outputs=data.outputs,
        euler_missing=missing_euler_settings(api.settings),
    )
    release = hold(backtest_slot(account))  # 429 now, before the response starts

    async def lines() -> AsyncGenerator[bytes, None]:
        stop = request.app.state.stop
        try:
            async for message in backtest.run():
                if stop.is_set():
                    return
                yield encode_line(message)
        except Exception as exc:  # the status is sent: say it on the stream, log the rest
            log.opt(exception=exc).error("backtest failed", rule=rule.name)
            failed = BacktestFailed("the backtest failed on the server (its log says why)")
            yield msgspec.json.encode(failed) + b"\n"
        finally:
            await release()

    return Stream(
        lines(),
        media_type=NDJSON,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(release),
    )


routes = [backtest_rule]
