"""Backtest: what a rule would have done over stored events (``POST /rules/backtest``,
``ttlp rules backtest``).

The live engine (``ttlp.rules.engine.Engine``) does the work, event by event in arrival order
(``events.id``, as the rules role read them off the bus): the same condition evaluation,
``streakEndOnly``, priority, ``skipReplay``, per-rule and per-user cooldowns. Three parts are
swapped through the engine's seams:

- time: cooldowns and the announcement throttle run in each event's own time
  (``event_time``), so three hours of a session are judged as they happened however fast they
  are read;
- actions: ``DryRunActions`` renders what would be sent (the announcement, the webhook's body,
  the moderation) and sends nothing;
- the ledger: ``BacktestLedger`` keeps the executions in memory; nothing is written to
  ``actions_log``.

Gift streaks whose end frame never came are closed by the ingest's streak timeout with a frame
of their own, stored like any other: the backtest sees them as the rules role saw them.

Announcements share one throttle per streamer with every other enabled announce rule, so an
announce rule is backtested together with those (``announce_companions``), in priority order
as live; the figures are of the backtested rule alone.

What is read (``Source``): sessions, each its own events (a replay session only when it is
named: its events are replayed ones, which ``skipReplay`` skips as live), in the order they
started; or rooms over a time range, their live events (replayed ones too when asked). Keyset
pages of ``Queries.events_page`` of the event types the rules are for.

``Backtest.run`` is an async iterator: ``Progress`` now and then, then the ``BacktestResult``.
Leaving the iteration (the client went away, Ctrl-C) stops the work; nothing is held between
pages but the engine's memory.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.aio import to_iso
from ttlp.db.queries import MAX_PAGE, EventFilter, Queries
from ttlp.db.tables import events
from ttlp.rules.actions import DryRunActions
from ttlp.rules.engine import (
    ALL_SCOPES,
    AnnounceAction,
    CompiledRule,
    DefinitionError,
    Engine,
    ModerateAction,
    event_time,
)
from ttlp.rules.store import Execution, RulesStore

PROGRESS_EVERY_S: Final = 0.25
"""Progress is reported after a page when this long has passed since the last report."""
DEFAULT_OUTPUTS: Final = 20
MAX_OUTPUTS: Final = 200
TOP_USERS: Final = 10
TEMPLATE_ERRORS: Final = 10
"""Distinct template errors reported at most (each with its count and first event)."""
MAX_SERIES_POINTS: Final = 360
BUCKETS_S: Final = (60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)
"""Chart buckets: a minute while the span has at most ``MAX_SERIES_POINTS`` of them (six
hours), else the first of these that keeps it under that."""


# -- what is reported --------------------------------------------------------------------------
class _Out(msgspec.Struct, rename="camel", kw_only=True):
    pass


class RuleSummary(_Out):
    id: int | None
    """The stored rule's id; null for an unsaved one (``UNSAVED_RULE_ID``, or an edit)."""
    name: str
    scope: str
    event_type: str
    action_type: str


class UserFires(_Out):
    user_id: str
    unique_id: str | None
    display_name: str | None
    fires: int


class Output(_Out):
    """One firing: what it would have sent, and the event it came from."""

    event_id: str
    session_id: str
    timestamp: str
    user_id: str
    unique_id: str | None
    display_name: str | None
    action_type: str
    rendered: str | None
    """The announcement, the webhook's JSON body, ``mute @handle 60s``, the log line."""
    event: dict[str, Any]


class TemplateProblem(_Out):
    error: str
    count: int
    event_id: str
    """The first event it failed on."""


class Series(_Out):
    """Firings over event time: ``counts[i]`` in [start + i·bucketSeconds, + bucketSeconds)."""

    start: str
    bucket_seconds: int
    counts: list[int]


class SessionFigures(_Out):
    session_id: str
    events: int
    """Events of the rule's type."""
    matches: int
    fires: int


class Progress(_Out, tag="progress", tag_field="type"):
    done: int
    """Events read so far (of every type the backtest reads)."""
    total: int
    """Events to read, counted at the start (a running session may add some)."""
    fires: int
    elapsed_ms: int


class BacktestResult(_Out, tag="result", tag_field="type"):
    rule: RuleSummary
    events_considered: int
    """Events of the rule's type it was run on."""
    matches: int
    """Of those, the ones the rule acts on: the condition holds (and, with ``streakEndOnly``,
    the last frame of a streak), before cooldowns, ``skipReplay`` and the throttle."""
    fires: int
    """Executions that would have happened (succeeded)."""
    skipped: dict[str, int]
    """Matches not acted on, by reason: ``cooldown``, ``user_cooldown``, ``replay``,
    ``throttled`` (announcements: one per streamer every ANNOUNCE_MIN_INTERVAL_S)."""
    failed: dict[str, int]
    """Matches that would have failed, by reason (``template``, ``condition_error``,
    ``empty``, ``no_user``)."""
    fires_per_bucket: Series | None
    outputs: list[Output]
    """The first firings, in order."""
    top_users: list[UserFires]
    template_errors: list[TemplateProblem]
    sessions: list[SessionFigures]
    notes: list[str]
    """What to know to read the figures (a scope that is not the sessions' streamer, an
    integration that is not configured, the rules run alongside)."""
    events_read: int
    elapsed_ms: int
    events_per_second: float


Message = Progress | BacktestResult


# -- what is read ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Sessions (their own events, in the order given: oldest first), or rooms over a time
    range (their live events; replayed ones too with ``include_replays``)."""

    session_ids: tuple[str, ...] = ()
    stream_ids: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_replays: bool = False

    def filters(self, types: Sequence[str]) -> list[EventFilter]:
        if self.session_ids:
            return [EventFilter(session_id=s, types=types) for s in self.session_ids]
        return [
            EventFilter(
                stream_ids=self.stream_ids,
                types=types,
                since=self.since,
                until=self.until,
                live_only=not self.include_replays,
            )
        ]


def in_start_order(sessions: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """Session rows' ids, the oldest first (the order a backtest reads them in)."""
    oldest = datetime.min.replace(tzinfo=UTC)

    def started(row: Mapping[str, Any]) -> datetime:
        value = row.get("created_at")
        if not isinstance(value, datetime):
            return oldest
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    return tuple(str(row["id"]) for row in sorted(sessions, key=started))


async def announce_companions(
    store: RulesStore, rule: CompiledRule, replaces: int | None = None
) -> list[CompiledRule]:
    """The enabled announce rules an announce rule shares the per-streamer throttle with
    (without the stored version of the rule itself, ``replaces``); none for other actions."""
    if not isinstance(rule.action, AnnounceAction):
        return []
    companions = []
    for row in await store.enabled_rules():
        if row["id"] in (rule.id, replaces) or (row.get("action") or {}).get("type") != "announce":
            continue
        try:
            companions.append(CompiledRule.from_row(row))
        except DefinitionError:
            continue  # the rules role leaves it out too
    return companions


# -- the run -----------------------------------------------------------------------------------
class BacktestLedger:
    """The engine's ``Ledger`` in a backtest: executions kept in memory, each successful one
    at its event's time (what cooldowns read), those of ``rule_id`` handed to the tally."""

    def __init__(self, rule_id: int) -> None:
        self.rule_id = rule_id
        self._page: dict[str, tuple[int, Mapping[str, Any]]] = {}
        self._mine: list[Execution] = []
        self._last: dict[tuple[int, str | None], datetime] = {}

    def begin(self, page: Sequence[Mapping[str, Any]]) -> None:
        self._page = {str(event.get("eventId")): (i, event) for i, event in enumerate(page)}

    def take(self) -> list[tuple[Execution, Mapping[str, Any]]]:
        """The rule's executions of the page, in the order of their events."""
        mine, self._mine = self._mine, []
        found = [(self._page[e.event_id], e) for e in mine]
        found.sort(key=lambda item: item[0][0])
        return [(execution, event) for (_, event), execution in found]

    async def claim(self, execution: Execution) -> bool:
        return True  # each stored event is read once: no other replica to race

    async def finish(self, execution: Execution) -> None:
        self._final(execution)

    async def record(self, executions: Sequence[Execution]) -> set[tuple[int, str]]:
        for execution in executions:
            self._final(execution)
        return {(e.rule_id, e.event_id) for e in executions}

    async def last_success(self, rule_id: int, user_id: str | None = None) -> datetime | None:
        return self._last.get((rule_id, user_id))

    def _final(self, execution: Execution) -> None:
        if execution.status == "success":
            at = event_time(self._page[execution.event_id][1])
            self._last[(execution.rule_id, None)] = at
            self._last[(execution.rule_id, execution.user_id)] = at
        if execution.rule_id == self.rule_id:
            self._mine.append(execution)


@dataclass
class _Tally:
    """The figures of the backtested rule, as its executions come."""

    rule: CompiledRule
    outputs_wanted: int
    considered: int = 0
    read: int = 0
    matches: int = 0
    fires: int = 0
    first_s: float | None = None
    last_s: float | None = None
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    fire_times: list[float] = field(default_factory=list)
    users: Counter[str] = field(default_factory=Counter)
    names: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    template_errors: dict[str, list[Any]] = field(default_factory=dict)
    sessions: dict[str, list[int]] = field(default_factory=dict)
    streams: set[str] = field(default_factory=set)

    def page(self, page: Sequence[Mapping[str, Any]]) -> None:
        self.read += len(page)
        kind = self.rule.event_type
        for event in page:
            if event.get("eventType") != kind:
                continue
            self.considered += 1
            self._session(event)[0] += 1
            self.streams.add(str(event.get("streamId")))
        if page:
            first, last = event_time(page[0]).timestamp(), event_time(page[-1]).timestamp()
            self.first_s = first if self.first_s is None else min(self.first_s, first)
            self.last_s = last if self.last_s is None else max(self.last_s, last)

    def add(self, execution: Execution, event: Mapping[str, Any]) -> None:
        if execution.reason == "condition_error":
            self.failed["condition_error"] += 1
            return
        self.matches += 1
        figures = self._session(event)
        figures[1] += 1
        if execution.status == "skipped":
            self.skipped[execution.reason or "skipped"] += 1
            return
        if execution.status != "success":
            reason = execution.reason or "failed"
            self.failed[reason] += 1
            if reason == "template" and execution.error:
                problem = self.template_errors.get(execution.error)
                if problem is not None:
                    problem[0] += 1
                elif len(self.template_errors) < TEMPLATE_ERRORS:
                    self.template_errors[execution.error] = [1, execution.event_id]
            return
        self.fires += 1
        figures[2] += 1
        self.fire_times.append(event_time(event).timestamp())
        user = event.get("user") or {}
        user_id = execution.user_id
        self.users[user_id] += 1
        self.names[user_id] = (user.get("uniqueId"), user.get("displayName"))
        if len(self.outputs) < self.outputs_wanted:
            self.outputs.append(
                Output(
                    event_id=execution.event_id,
                    session_id=execution.session_id,
                    timestamp=str(event.get("timestamp")),
                    user_id=user_id,
                    unique_id=user.get("uniqueId"),
                    display_name=user.get("displayName"),
                    action_type=execution.action_type,
                    rendered=execution.rendered,
                    event=dict(event),
                )
            )

    def _session(self, event: Mapping[str, Any]) -> list[int]:
        return self.sessions.setdefault(str(event.get("sessionId")), [0, 0, 0])

    def series(self) -> Series | None:
        if self.first_s is None or self.last_s is None:
            return None
        span = max(self.last_s - self.first_s, 0.0)
        bucket = next((b for b in BUCKETS_S if span / b < MAX_SERIES_POINTS), BUCKETS_S[-1])
        start = self.first_s - self.first_s % bucket
        counts = [0] * (int((self.last_s - start) // bucket) + 1)
        for at in self.fire_times:
            counts[min(max(int((at - start) // bucket), 0), len(counts) - 1)] += 1
        return Series(
            start=to_iso(datetime.fromtimestamp(start, UTC)), bucket_seconds=bucket, counts=counts
        )

    def top_users(self) -> list[UserFires]:
        return [
            UserFires(
                user_id=user_id,
                unique_id=self.names[user_id][0],
                display_name=self.names[user_id][1],
                fires=fires,
            )
            for user_id, fires in self.users.most_common(TOP_USERS)
        ]


class Backtest:
    """One rule over a ``Source``, through the live engine in dry run (module docstring)."""

    def __init__(
        self,
        db: AsyncEngine,
        rule: CompiledRule,
        source: Source,
        *,
        saved: bool = False,
        companions: Sequence[CompiledRule] = (),
        announce_min_interval_s: float = 3.0,
        outputs: int = DEFAULT_OUTPUTS,
        euler_missing: Sequence[str] = (),
    ) -> None:
        """``saved``: ``rule`` is a stored rule as stored (its id is reported). ``euler_missing``:
        the Euler settings that are not set where the rules role runs (a note, not failures)."""
        self.db = db
        self.rule = rule
        self.source = source
        self.saved = saved
        self.companions = list(companions)
        self.euler_missing = list(euler_missing)
        self.queries = Queries(db)
        self.ledger = BacktestLedger(rule.id)
        self.engine = Engine(
            RulesStore(db),
            DryRunActions(announce_min_interval_s),
            ledger=self.ledger,
            now=event_time,
            quiet=True,
        )
        self.engine.use([rule, *self.companions])
        self.tally = _Tally(rule, max(0, min(outputs, MAX_OUTPUTS)))

    @property
    def types(self) -> list[str]:
        return sorted({r.event_type for r in (self.rule, *self.companions)})

    async def count(self) -> int:
        """Events the run will read (for a progress bar)."""
        total = 0
        async with self.db.connect() as conn:
            for where in self.source.filters(self.types):
                # The conditions of the pages themselves, so the count and the pages agree.
                conditions = self.queries._conditions(where)
                query = select(func.count()).select_from(events).where(*conditions)
                total += int(await conn.scalar(query) or 0)
        return total

    async def run(self) -> AsyncIterator[Message]:
        """``Progress`` (first with the total, then at most every ``PROGRESS_EVERY_S``), then
        the ``BacktestResult``."""
        started = time.perf_counter()
        total = await self.count()
        reported = time.perf_counter()
        yield self._progress(total, started)
        for where in self.source.filters(self.types):
            cursor: str | None = None
            while True:
                page = await self.queries.events_page(where, limit=MAX_PAGE, cursor=cursor)
                await self._run_page(page.items)
                now = time.perf_counter()
                if now - reported >= PROGRESS_EVERY_S:
                    reported = now
                    yield self._progress(total, started)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        yield self._progress(max(total, self.tally.read), started)
        yield await self._result(started)

    async def result(self) -> BacktestResult:
        """Run to the end; the result alone."""
        async for message in self.run():
            if isinstance(message, BacktestResult):
                return message
        raise AssertionError("a backtest ends with its result")

    async def _run_page(self, page: list[dict[str, Any]]) -> None:
        self.ledger.begin(page)
        for event in page:
            await self.engine.process(event)
        await self.engine.flush()  # skips and log rows, as the rules role does per batch
        self.tally.page(page)
        for execution, source in self.ledger.take():
            self.tally.add(execution, source)

    def _progress(self, total: int, started: float) -> Progress:
        return Progress(
            done=self.tally.read,
            total=total,
            fires=self.tally.fires,
            elapsed_ms=int((time.perf_counter() - started) * 1000),
        )

    async def _result(self, started: float) -> BacktestResult:
        t = self.tally
        elapsed = time.perf_counter() - started
        rule = self.rule
        return BacktestResult(
            rule=RuleSummary(
                id=rule.id if self.saved else None,
                name=rule.name,
                scope=rule.scope,
                event_type=rule.event_type,
                action_type=rule.action_type,
            ),
            events_considered=t.considered,
            matches=t.matches,
            fires=t.fires,
            skipped=dict(t.skipped.most_common()),
            failed=dict(t.failed.most_common()),
            fires_per_bucket=t.series(),
            outputs=t.outputs,
            top_users=t.top_users(),
            template_errors=[
                TemplateProblem(error=error, count=count, event_id=event_id)
                for error, (count, event_id) in t.template_errors.items()
            ],
            sessions=[
                SessionFigures(session_id=s, events=n[0], matches=n[1], fires=n[2])
                for s, n in t.sessions.items()
            ],
            notes=await self._notes(),
            events_read=t.read,
            elapsed_ms=int(elapsed * 1000),
            events_per_second=round(t.read / elapsed, 1) if elapsed > 0 else 0.0,
        )

    async def _notes(self) -> list[str]:
        notes: list[str] = []
        rule = self.rule
        if rule.scope != ALL_SCOPES:
            handles = await self._handles()
            others = [f"@{h}'s" for h in sorted(h for h in handles if h and h != rule.scope)]
            if None in handles:
                others.append("of a room whose streamer is not known")
            if others:
                notes.append(
                    f"the rule's scope is @{rule.scope}; events here are {' and '.join(others)}:"
                    " live, the rule would not act on those"
                )
        if self.euler_missing and isinstance(rule.action, AnnounceAction | ModerateAction):
            what = "announcements" if isinstance(rule.action, AnnounceAction) else "moderations"
            notes.append(
                f"{' and '.join(self.euler_missing)} not set: live, these {what} would fail "
                "(not_configured); shown here is what they would do"
            )
        if self.companions:
            notes.append(
                f"run with the {len(self.companions)} other enabled announce rule(s), in "
                "priority order: they share the announcement throttle of each streamer"
            )
        return notes

    async def _handles(self) -> set[str | None]:
        return {await self.engine.handles.handle(s) for s in self.tally.streams}


def encode_line(message: Message) -> bytes:
    """One NDJSON line."""
    return msgspec.json.encode(message) + b"\n"
