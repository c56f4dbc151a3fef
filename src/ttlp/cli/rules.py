"""``ttlp rules backtest``: what a rule would have done over stored sessions, on the terminal.

The rule is a stored one (its id) or a JSON file as ``POST /rules`` takes it (a rule from
``GET /rules/{id}`` works too: its ``id`` then names the stored rule it is an edit of). It runs
over ``--session``s or a ``--stream`` (room id or @handle) between ``--since`` and
``--until``, through the rules role's engine in dry run (``ttlp.rules.backtest``): nothing is
sent, nothing written. A progress bar on stderr; the summary (or ``--json``: the API's result
object) on stdout. Only the database is used: no bus, whatever ``REDIS_URL`` says.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Final

import msgspec
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.cli.transfer import database_only
from ttlp.db import export as ex
from ttlp.db.queries import Queries
from ttlp.errors import InputError, NotFoundError, UnprocessableError
from ttlp.rules.actions import missing_euler_settings
from ttlp.rules.backtest import (
    Backtest,
    BacktestResult,
    Source,
    announce_companions,
    in_start_order,
)
from ttlp.rules.backtest import Progress as Step
from ttlp.rules.engine import UNSAVED_RULE_ID, CompiledRule, DefinitionError
from ttlp.rules.store import RulesStore
from ttlp.runtime import open_context
from ttlp.settings import Settings

OUTPUT_FIELDS: Final = ("id", "createdBy", "createdAt", "updatedAt", "warnings")
"""What ``GET /rules/{id}`` answers beyond the definition ``POST /rules`` takes."""
SHOWN_CHARS: Final = 120


async def load_rule(store: RulesStore, ref: str) -> tuple[CompiledRule, bool, int | None]:
    """(the rule, whether it is a stored one as stored, the stored rule it is an edit of)."""
    if ref.isdigit():
        row = await store.get_rule(int(ref))
        if row is None:
            raise NotFoundError(f"no rule {ref} in the database")
        try:
            return CompiledRule.from_row(row), True, int(ref)
        except DefinitionError as exc:
            raise UnprocessableError(f"rule {ref} does not compile: {exc}") from None
    from ttlp.api.routes.backtest import definition_row
    from ttlp.api.routes.rules import RuleIn

    try:
        data = json.loads(await asyncio.to_thread(Path(ref).read_text))
    except OSError as exc:
        raise InputError(f"cannot read {ref}: {exc.strerror}") from None
    except ValueError as exc:
        raise InputError(f"{ref} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{ref}: a rule is a JSON object")
    replaces = data.get("id") if type(data.get("id")) is int else None
    definition = {k: v for k, v in data.items() if k not in OUTPUT_FIELDS}
    try:
        rule_in = msgspec.convert(definition, RuleIn)
    except msgspec.ValidationError as exc:
        raise InputError(f"{ref}: {exc}") from None
    rule = CompiledRule.from_row(definition_row(rule_in, replaces or UNSAVED_RULE_ID))
    return rule, False, replaces


async def source_of(
    engine: AsyncEngine,
    sessions: tuple[str, ...],
    stream: str | None,
    since: datetime | None,
    until: datetime | None,
    include_replays: bool,
) -> Source:
    if bool(sessions) == (stream is not None):
        raise InputError("give --session (repeatable), or --stream with --since and --until")
    if sessions and (since is not None or until is not None or include_replays):
        raise InputError("--since, --until and --include-replays go with --stream")
    handle = stream[1:] if stream is not None and stream.startswith("@") else None
    selection = await ex.select_what(
        engine,
        session_ids=sessions,
        stream_id=stream if stream is not None and handle is None else None,
        streamer=handle,
        since=since,
        until=until,
    )
    if sessions:
        queries = Queries(engine)
        rows = [row for s in selection.session_ids if (row := await queries.session(s))]
        return Source(session_ids=in_start_order(rows))
    return Source(
        stream_ids=selection.stream_ids,
        since=since,
        until=until,
        include_replays=include_replays,
    )


async def backtest_command(
    settings: Settings,
    rule_ref: str,
    *,
    sessions: tuple[str, ...],
    stream: str | None,
    since: datetime | None,
    until: datetime | None,
    include_replays: bool,
    outputs: int,
    as_json: bool,
) -> None:
    err = Console(stderr=True, highlight=False)
    async with open_context(database_only(settings), need_db=True) as ctx:
        engine = ctx.engine
        assert engine is not None
        store = RulesStore(engine)
        rule, saved, replaces = await load_rule(store, rule_ref)
        source = await source_of(engine, sessions, stream, since, until, include_replays)
        backtest = Backtest(
            engine,
            rule,
            source,
            saved=saved,
            companions=await announce_companions(store, rule, replaces),
            announce_min_interval_s=settings.rules.announce_min_interval_s,
            outputs=outputs,
            euler_missing=missing_euler_settings(settings),
        )
        result: BacktestResult | None = None
        with Progress(
            TextColumn("[bold]backtest[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fires]} fires"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        ) as progress:
            task = progress.add_task(escape(rule.name[:40]), total=None, fires=0)
            async for message in backtest.run():
                if isinstance(message, Step):
                    progress.update(
                        task, completed=message.done, total=message.total, fires=message.fires
                    )
                else:
                    result = message
    assert result is not None
    if as_json:
        print(msgspec.json.encode(result).decode())
    else:
        print_summary(Console(highlight=False), result)


def print_summary(console: Console, r: BacktestResult) -> None:
    """The result as a person reads it: figures, notes, top users, first outputs, errors.
    What came from TikTok or a rule's author is escaped (rich would read ``[...]`` as markup)."""
    rule = r.rule
    console.print(
        f"[bold]{escape(rule.name)}[/] ({rule.event_type} → {rule.action_type}, "
        f"scope {escape(rule.scope)})"
    )
    figures = Table.grid(padding=(0, 2))
    figures.add_row("events considered", f"{r.events_considered:,}")
    figures.add_row("matches", f"{r.matches:,}")
    figures.add_row("fires", f"{r.fires:,}")
    for reason, count in r.skipped.items():
        figures.add_row(f"skipped ({reason})", f"{count:,}")
    for reason, count in r.failed.items():
        figures.add_row(f"failed ({reason})", f"{count:,}")
    if r.fires_per_bucket is not None and r.fires_per_bucket.counts:
        series = r.fires_per_bucket
        minutes = series.bucket_seconds / 60
        peak = max(series.counts)
        per = "minute" if minutes == 1 else f"{minutes:g} minutes"
        figures.add_row(f"peak per {per}", f"{peak:,}")
    figures.add_row(
        "read",
        f"{r.events_read:,} events in {r.elapsed_ms / 1000:.2f} s "
        f"({r.events_per_second:,.0f} events/s)",
    )
    console.print(figures)
    for note in r.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    if r.template_errors:
        console.print("[bold]template errors[/]")
        for problem in r.template_errors:
            console.print(
                f"  {problem.count:,}× {escape(problem.error)} (first: event {problem.event_id})"
            )
    if r.top_users:
        users = Table("user", "fires", title="top users", title_justify="left")
        for u in r.top_users:
            users.add_row(escape(f"@{u.unique_id}" if u.unique_id else u.user_id), f"{u.fires:,}")
        console.print(users)
    if r.outputs:
        out = Table("time", "user", "output", title="first outputs", title_justify="left")
        for o in r.outputs:
            shown = _shown(o.action_type, o.rendered)
            if len(shown) > SHOWN_CHARS:
                shown = shown[: SHOWN_CHARS - 1] + "…"
            who = f"@{o.unique_id}" if o.unique_id else o.user_id
            out.add_row(o.timestamp, escape(who), escape(shown))
        console.print(out)


def _shown(action_type: str, rendered: str | None) -> str:
    """An output as the summary shows it: a webhook by the ``text`` of its body, when it has
    one (the body is the event, mostly), anything else as rendered."""
    if action_type != "webhook" or not rendered:
        return rendered or ""
    try:
        text = json.loads(rendered).get("text")
    except (ValueError, AttributeError):
        return rendered
    return text if isinstance(text, str) and text else rendered
