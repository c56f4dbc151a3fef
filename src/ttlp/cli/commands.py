"""The one-shot commands behind ``ttlp replay``, ``ttlp status`` and ``ttlp accounts``."""

from __future__ import annotations

import asyncio
from typing import Final

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ttlp.bus.base import Bus
from ttlp.runtime import Context, is_drained, open_context
from ttlp.settings import Settings
from ttlp.tiktok.replay import replay_session

DRAIN_POLL_S: Final = 0.1


async def replay_command(settings: Settings, session_id: str, speed: float | None) -> None:
    """Publish the session's frames; on the embedded bus also run normalize + store to the end.

    With Redis the running pipeline picks the frames up; the embedded bus lives in this process
    only, so here the command carries the replay through to the database itself.
    """
    console = Console(stderr=True)
    async with open_context(settings, need_db=True) as ctx:
        total = await ctx.store.count_session_frames(session_id)
        stop = asyncio.Event()
        workers: list[asyncio.Task[None]] = []
        if settings.embedded_bus:
            from ttlp.roles import normalize, store

            workers = [asyncio.create_task(role.run(ctx, stop)) for role in (normalize, store)]
        try:
            with Progress(
                TextColumn("[bold]replay[/] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as progress:
                task = progress.add_task(session_id[:8], total=total)
                publisher = ctx.paced_publisher()
                result = await replay_session(
                    ctx.store,
                    publisher,
                    session_id,
                    speed=speed,
                    progress=lambda n: progress.advance(task, n),
                )
            if workers:
                await _drain(ctx)
        finally:
            stop.set()
            await asyncio.gather(*workers)
        console.print(
            f"replayed {result.frames} frames of {session_id} as session "
            f"[bold]{result.session_id}[/]"
        )
        print(result.session_id)


async def _drain(ctx: Context) -> None:
    """Wait until normalize and store have consumed everything the replay published."""
    while not await is_drained(ctx):  # noqa: ASYNC110 - polls the bus
        await asyncio.sleep(DRAIN_POLL_S)


async def status_command(settings: Settings) -> None:
    from ttlp.tiktok.providers.fallback import fake_events_warning

    console = Console()
    if (warning := fake_events_warning(settings)) is not None:  # the mock stands in for TikTok
        console.print(warning, style="bold red", markup=False)
    if settings.embedded_bus:
        console.print(
            "[yellow]No REDIS_URL: the in-process bus lives inside the running `ttlp run`; "
            "stream figures need Redis.[/]"
        )
        async with open_context(settings, need_db=True) as ctx:
            await _print_ingest(console, ctx)
            await _print_dlq(console, ctx)  # kept in the database: readable from here
            await _print_db(console, ctx)
        return
    async with open_context(settings, need_db=settings.db.url is not None) as ctx:
        await _print_ingest(console, ctx)
        await _print_bus(console, ctx.bus, ctx)
        if ctx.engine is not None:
            await _print_db(console, ctx)


async def _print_ingest(console: Console, ctx: Context) -> None:
    """Each watched streamer's ingest state, as its replica last reported it."""
    from ttlp.tiktok.status import decode_reports

    reports = decode_reports(await ctx.bus.statuses(ctx.keys.ingest_status))
    if not reports:
        console.print("ingest: no reports (no ingest role has run on this bus yet)")
        return
    table = Table(title="ingest", title_justify="left")
    for column in (
        "streamer",
        "provider",
        "state",
        "since",
        "until",
        "last message",
        "reconnects today",
        "replica",
        "reason",
    ):
        table.add_column(column, justify="right" if column == "reconnects today" else "left")
    for r in reports:
        state = r["state"].replace("_", " ") + (" [yellow](stale report)[/]" if r["stale"] else "")
        age = r["lastMessageAgeS"]
        table.add_row(
            f"@{r['uniqueId']}",
            r["provider"],
            state,
            r.get("since") or "",
            r.get("until") or "",
            "" if age is None else f"{age:g} s ago",
            str(r.get("reconnectsToday", 0)),
            r.get("replica") or "",
            escape(r.get("reason") or ""),
        )
    console.print(table)


async def _print_bus(console: Console, bus: Bus, ctx: Context) -> None:
    table = Table(title="streams", title_justify="left")
    for column in ("stream", "length", "group", "consumers", "pending", "lag", "last delivered"):
        table.add_column(
            column,
            justify="right" if column in {"length", "consumers", "pending", "lag"} else "left",
        )
    for stream in ctx.keys.streams:
        length = await bus.length(stream)
        groups = await bus.groups(stream)
        if not groups:
            table.add_row(stream, str(length), "-", "", "", "", "")
        for i, g in enumerate(groups):
            table.add_row(
                stream if i == 0 else "",
                str(length) if i == 0 else "",
                g.name,
                str(g.consumers),
                str(g.pending),
                "?" if g.lag is None else str(g.lag),
                g.last_delivered_id,
            )
    console.print(table)
    await _print_dlq(console, ctx)


async def _print_dlq(console: Console, ctx: Context) -> None:
    dlq = await ctx.bus.length(ctx.keys.dlq)
    colour = "red" if dlq else "green"
    console.print(f"dead-letter queue ({ctx.keys.dlq}): [{colour}]{dlq}[/] entries")


async def _print_db(console: Console, ctx: Context) -> None:
    totals = await ctx.store.totals()
    table = Table(
        title=f"database ({ctx.engine.dialect.name if ctx.engine else '-'})", title_justify="left"
    )
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in totals.items():
        table.add_row(name, str(count))
    console.print(table)
    from ttlp.cli.prune import print_last_prune

    assert ctx.engine is not None
    await print_last_prune(console, ctx.engine)
    await _print_forward(console, ctx)


async def _print_forward(console: Console, ctx: Context) -> None:
    """Forward outcomes per target (the figures of ``ttlp_forward_deliveries``). The URL is
    left out: a webhook URL often carries its token."""
    from ttlp.forward.store import ForwardStore

    assert ctx.engine is not None
    store = ForwardStore(ctx.engine)
    targets = await store.targets()
    if not targets:
        return
    counts = await store.counts()
    table = Table(title="forward targets", title_justify="left")
    table.add_column("id", justify="right")
    table.add_column("name")
    table.add_column("enabled")
    for column in ("delivered", "retried", "dead", "pending"):
        table.add_column(column, justify="right")
    for target in targets:
        c = counts.get(target.id)
        figures = (c.delivered, c.retried, c.dead, c.pending) if c else (0, 0, 0, 0)
        table.add_row(
            str(target.id), target.name, "yes" if target.enabled else "no", *map(str, figures)
        )
    console.print(table)


async def accounts_command(settings: Settings, action: str, *args: str, yes: bool = False) -> None:
    """``ttlp accounts add|list|disable|enable|set-password|set-role|set-scope|delete``
    against the configured database."""
    from ttlp.api.accounts import Accounts, NoSuchAccount, Role, parse_scopes

    console = Console()
    async with open_context(settings, need_db=True) as ctx:
        assert ctx.engine is not None
        accounts = Accounts(ctx.engine)
        if action == "add":
            username, password, role, scope = args
            account = await accounts.add(username, password, Role(role), parse_scopes(scope))
            console.print(
                f"account {account.username} created: {account.role.value}, "
                f"scope {', '.join(account.scopes)}"
            )
        elif action == "list":
            table = Table("username", "role", "scope", "status", "created", "owner")
            for account in await accounts.list():
                table.add_row(
                    account.username,
                    account.role.value,
                    ", ".join(account.scopes),
                    "disabled" if account.disabled else "active",
                    account.created_at.strftime("%Y-%m-%d %H:%M"),
                    "yes" if account.owner else "",
                )
            console.print(table)
        elif action in ("disable", "enable"):
            await accounts.set_disabled(args[0], action == "disable")
            console.print(f"account {args[0]} {action}d")
        elif action == "set-password":
            await accounts.set_password(args[0], args[1])
            console.print(f"password of {args[0]} changed; older tokens no longer work")
        elif action in ("set-role", "set-scope"):
            username, value = args
            before = await accounts.get(username)
            if action == "set-role":
                account = await accounts.change(username, role=Role(value))
            else:
                account = await accounts.change(username, scopes=parse_scopes(value))
            outcome = "unchanged" if account == before else "older tokens no longer work"
            console.print(
                f"account {account.username}: {account.role.value}, scope "
                f"{', '.join(account.scopes)}; {outcome}",
                markup=False,
            )
        elif action == "delete":
            (username,) = args
            doomed = await accounts.get(username)
            if doomed is None:
                raise NoSuchAccount(f"no account {username!r}")
            question = (
                f"delete account {doomed.username} ({doomed.role.value}, scope "
                f"{', '.join(doomed.scopes)})?"
            )
            if not yes and not click.confirm(question):
                console.print("nothing deleted")
                return
            await accounts.delete(username)
            console.print(f"account {username} deleted; its tokens no longer work", markup=False)
        else:  # pragma: no cover - the CLI only passes the actions above
            raise ValueError(action)
