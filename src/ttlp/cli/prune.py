"""``ttlp prune [--dry-run]``: apply retention now (``ttlp.db.retention``), with a progress bar
while it runs and a table of what each step did (or, a dry run, would do).

Works on both backends (DATABASE_URL, or the embedded SQLite default), whether ``ttlp run`` is
running or not; a run is recorded as the store role's daily ones are, so the next daily run
counts its interval from it. On PostgreSQL, while a store replica prunes, a real run here
says so and exits 2 (a dry run goes on: it changes nothing).
"""

from __future__ import annotations

from typing import Final

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.aio import to_iso
from ttlp.db import retention
from ttlp.runtime import open_context
from ttlp.settings import RetentionSettings, Settings
from ttlp.tiktok.mentions import users_named_in_frame

WOULD: Final = {
    "restored": "would restore",
    "archived": "would archive",
    "deleted": "would delete",
    "pseudonymized": "would pseudonymize",
    "re-keyed": "would re-key",
    "erased": "would erase",
}


async def prune_command(settings: Settings, dry_run: bool) -> int:
    """Run (or count) one prune; print the table. → the exit code (0)."""
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    async with open_context(settings, need_db=True) as ctx:
        assert ctx.engine is not None
        out.print(describe_settings(settings.retention), soft_wrap=True)
        await print_last_prune(out, ctx.engine)
        with Progress(
            TextColumn("[bold]prune[/] {task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(key: str, done: int, total: int | None) -> None:
                if key not in tasks:
                    tasks[key] = bar.add_task(key, total=total)
                bar.update(tasks[key], completed=done, total=total)

            report = await retention.prune(
                ctx.engine,
                settings.retention,
                dry_run=dry_run,
                progress=progress,
                frame_subjects=users_named_in_frame,
            )
    out.print(report_table(report))
    if dry_run:
        out.print("dry run: nothing was changed; `ttlp prune` does the above")
    return 0


def report_table(report: retention.PruneReport) -> Table:
    """One row per step: the table, what happened to its rows, how many."""
    when = to_iso(report.at.replace(microsecond=0), precision="auto")
    title = (
        f"dry run as of {when}"
        if report.dry_run
        else f"pruned at {when}: {report.total:,} rows in {report.seconds:.1f} s"
    )
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, min_width=len(title))
    table.add_column("table")
    table.add_column("rows")
    table.add_column("count", justify="right")
    for key in retention.STEP_KEYS:
        name, _, action = key.partition(".")
        table.add_row(name, WOULD[action] if report.dry_run else action, f"{report.rows[key]:,}")
    return table


def describe_settings(settings: RetentionSettings) -> str:
    """The retention in effect, in one line (0 = forever)."""

    def days(n: int) -> str:
        return f"{n} days" if n else "forever"

    events = days(settings.event_retention_days)
    if settings.event_retention_days:
        events += f" (+{settings.grace_days} archived)"
    return (
        f"retention: events {events}, actions log {days(settings.actions_log_retention_days)}, "
        f"sessions {days(settings.session_retention_days)}, users "
        f"{days(settings.user_retention_days)}"
    )


async def print_last_prune(console: Console, engine: AsyncEngine) -> None:
    """When retention last ran, and what it did (for ``ttlp prune`` and ``ttlp status``)."""
    last = await retention.last_prune(engine)
    if last is None:
        console.print("last prune: never", soft_wrap=True)
        return
    changed = ", ".join(f"{key} {n:,}" for key, n in last.changed().items()) or "nothing to do"
    when = to_iso(last.at.replace(microsecond=0), precision="auto")
    console.print(f"last prune: {when} ({last.seconds:.1f} s): {changed}", soft_wrap=True)
