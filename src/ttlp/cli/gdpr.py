"""``ttlp gdpr erase|list``: GDPR erasure of one TikTok user (``ttlp.db.erasure``), for people.

``erase`` searches first and shows what it found, table by table, then asks and erases, in one
transaction, with the audit row (``--yes``: no question, nothing shown beforehand). A terminal
that cannot answer (a pipe, a cron job) is refused without ``--yes`` before anything is read:
an erasure cannot be undone. ``--dry-run`` shows the counts and stops. Works on both backends,
whether or not ``ttlp run`` is running (the running store refuses the user's events from then
on).
"""

from __future__ import annotations

import sys

import click
from rich import box
from rich.console import Console
from rich.table import Table

from ttlp.db.erasure import CLI, TABLES, Erasure, erase_user, list_erasures, parse_subject
from ttlp.errors import ConfigError
from ttlp.runtime import open_context
from ttlp.settings import Settings
from ttlp.tiktok.mentions import frame_names_user


async def erase_command(
    settings: Settings, *, user_id: str | None, handle: str | None, dry_run: bool, yes: bool
) -> None:
    """Search, show the counts, ask, erase (see the module docstring)."""
    user_id, handle = parse_subject(user_id, handle)
    if not (dry_run or yes or sys.stdin.isatty()):
        raise ConfigError(
            "gdpr erase asks before it erases, and this is not a terminal: nothing was erased. "
            "Add --yes to erase without the question (--dry-run shows what would go)"
        )
    who = f"TikTok user {user_id}" if user_id is not None else f"TikTok user @{handle}"
    console = Console(highlight=False)
    async with open_context(settings, need_db=True) as ctx:
        engine = ctx.engine
        assert engine is not None

        async def run(dry: bool) -> Erasure:
            return await erase_user(
                engine,
                frame_names_user,
                user_id=user_id,
                handle=handle,
                requested_by=CLI,
                pseudonym_salt=settings.retention.pseudonym_salt,
                dry_run=dry,
            )

        if dry_run or not yes:
            found = await run(dry=True)
            _counts(console, found, f"stored about {who}:")
            if dry_run:
                console.print(f"dry run: nothing erased ({_rows(found.total_rows)} would go)")
                return
            if not click.confirm(f"erase {_rows(found.total_rows)} about {who}, for good?"):
                console.print("nothing erased")
                return
        erasure = await run(dry=False)
    _counts(console, erasure, f"erased: {who}")
    console.print(
        f"{_rows(erasure.total_rows)} erased; audit row {erasure.id} "
        "(`ttlp gdpr list`); their events are refused from now on"
    )


async def list_command(settings: Settings, limit: int) -> None:
    """The audit rows, newest first: who asked, when, how many rows (never who was erased)."""
    console = Console(highlight=False)
    async with open_context(settings, need_db=True) as ctx:
        assert ctx.engine is not None
        erasures = await list_erasures(ctx.engine, limit)
    if not erasures:
        console.print("no GDPR erasure yet")
        return
    table = Table(title="GDPR erasures, newest first", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("id", justify="right")
    table.add_column("erased (UTC)", no_wrap=True)
    table.add_column("requested by")
    table.add_column("rows", justify="right")
    table.add_column("per table", ratio=1)
    for erasure in erasures:
        table.add_row(
            str(erasure.id),
            erasure.erased_at.strftime("%Y-%m-%d %H:%M:%S") if erasure.erased_at else "",
            erasure.requested_by,
            str(erasure.total_rows),
            ", ".join(f"{name}={n}" for name, n in erasure.rows.items() if n),
        )
    console.print(table, markup=False)
    console.print("the subjects are kept as salted hashes only (GET /gdpr/erasures shows them)")


def _counts(console: Console, erasure: Erasure, title: str) -> None:
    console.print(title, markup=False)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name in TABLES:
        table.add_row(name, str(erasure.rows.get(name, 0)))
    table.add_row("total", str(erasure.total_rows), style="bold")
    console.print(table)


def _rows(n: int) -> str:
    return f"{n} row{'' if n == 1 else 's'}"
