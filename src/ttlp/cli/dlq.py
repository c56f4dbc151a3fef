"""``ttlp dlq list|show|retry|purge``: what ``ttlp.bus.dlq`` does, printed for people.

Works on both backends: on Redis it reads the stream, on the embedded default the database the
in-process bus keeps ``ttlc:dlq`` in, whether ``ttlp run`` is running or not. A retry from here
on the embedded default is carried out by the running ttlp (``MemoryBus.relay``); the command
waits ``SETTLE_S`` for it and says which letters are still queued when none took them.

Exit codes: 0 done (or nothing to do); 1 some letters could not be retried (each is named
with why); 2 a bad command line (an unknown stage or id, a missing selection).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any, Final

import click
import msgspec
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ttlp.aio import to_iso
from ttlp.bus import dlq
from ttlp.bus.memory import MOVING_FIELD
from ttlp.errors import ConfigError
from ttlp.runtime import open_context
from ttlp.settings import Settings

SETTLE_S: Final = 3.0
"""How long ``retry`` waits for the running ttlp to take letters it queued (embedded default;
the running ttlp looks every half second)."""


async def dlq_command(
    settings: Settings,
    action: str,
    *,
    ids: tuple[str, ...] = (),
    stage: str | None = None,
    limit: int = 50,
    before: datetime | None = None,
    everything: bool = False,
    yes: bool = False,
) -> int:
    """Run one ``ttlp dlq`` action; return the exit code."""
    if action in ("retry", "purge"):
        if ids and everything:
            raise ConfigError(f"dlq {action}: give entry ids or --all, not both")
        if not (ids or stage or before or everything):
            choices = "--stage, --before or --all" if action == "purge" else "--stage or --all"
            raise ConfigError(f"dlq {action}: give entry ids, {choices}")
    console = Console(highlight=False)
    # The embedded default keeps the letters in the database; a retry may need it on Redis too
    # (forwarder letters reset their delivery row).
    need_db = settings.embedded_bus or action == "retry"
    async with open_context(settings, need_db=need_db) as ctx:
        bus, keys = ctx.bus, ctx.keys
        if action == "list":
            shown, total = await dlq.newest(bus, keys, stage=stage, limit=limit)
            _print_list(console, keys.dlq, shown, total, stage)
            return 0
        if action == "show":
            (letter,) = await dlq.find(bus, keys, ids)
            click.echo(_describe(letter, keys.dlq))
            return 0
        chosen = await dlq.select(bus, keys, ids=ids, stage=stage, before=before)
        if not chosen:
            of = f" of stage {stage}" if stage else ""
            console.print(f"nothing to {action}: {keys.dlq} holds no dead letters{of}")
            return 0
        if action == "retry":
            from ttlp.forward.store import ForwardStore

            reset = ForwardStore(ctx.engine).reset if ctx.engine is not None else None
            result = await dlq.retry(bus, keys, reset, chosen)
            waiting = await dlq.settle(bus, keys, result.queued, SETTLE_S)
            went = len(result.retried) + len(result.queued) - len(waiting)
            for entry_id, why in result.skipped:
                console.print(Text(f"{entry_id} stays in the queue: {why}", style="yellow"))
            if went:
                console.print(f"{_count(went)} retried: sent back where they failed")
            if waiting:
                console.print(
                    f"{_count(len(waiting))} queued for retry: no running ttlp took them within "
                    f"{SETTLE_S:g} s; they go back where they failed when `ttlp run` starts"
                )
            return 1 if result.skipped else 0
        if action == "purge":
            if not yes and not click.confirm(f"delete {_summary(chosen)}?"):
                console.print("nothing deleted")
                return 0
            console.print(f"{_count(await dlq.purge(bus, keys, chosen))} deleted")
            return 0
        raise ValueError(action)  # pragma: no cover - the CLI only passes the actions above


def _count(n: int) -> str:
    return f"{n} dead letter{'' if n == 1 else 's'}"


def _summary(chosen: list[dlq.Letter]) -> str:
    """``3 dead letters (normalizer 2, forwarder 1)``."""
    stages = Counter(letter.stage for letter in chosen)
    return f"{_count(len(chosen))} ({', '.join(f'{s} {n}' for s, n in stages.items())})"


def _print_list(
    console: Console, stream: str, shown: list[dlq.Letter], total: int, stage: str | None
) -> None:
    """``shown``: the newest letters, newest first; ``total``: how many there are."""
    of = f" of stage {stage}" if stage else ""
    if not shown:
        console.print(f"no dead letters{of} in {stream}")
        return
    which = "newest first" if len(shown) == total else f"the newest {len(shown)}"
    table = Table(
        title=f"{stream}: {_count(total)}{of}, {which}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("id", no_wrap=True, min_width=max(len(x.id) for x in shown))
    table.add_column("stage", no_wrap=True)
    table.add_column("reason", no_wrap=True)
    table.add_column("failed (UTC)", no_wrap=True)
    table.add_column("detail", ratio=1, min_width=20)
    for letter in shown:
        detail = letter.detail()
        if letter.queued_to:
            detail = f"(retry queued) {detail}"
        table.add_row(
            letter.id,
            Text(letter.stage),
            Text(letter.reason),
            letter.time.strftime("%m-%d %H:%M:%S"),
            Text(detail),
        )
    console.print(table)
    console.print("`ttlp dlq show ID` prints one in full; `ttlp dlq retry ID` sends it back")


NOTES: Final = {
    "payloadEncoding": {
        "base64": "the entry was not UTF-8: the payload below is decoded from base64, its "
        "foreign bytes shown as U+FFFD (a retry sends the original bytes)"
    },
    "payloadTruncated": {
        "true": "only the first DLQ_MAX_PAYLOAD_BYTES of the entry are kept: it cannot be retried"
    },
}


def _describe(letter: dlq.Letter, stream: str) -> str:
    """One letter in full: every field, then the payload decoded and indented."""
    lines = [f"dead letter {letter.id} in {stream}"]
    rows: list[tuple[str, str]] = [("time", to_iso(letter.time))]
    for name, value in letter.fields.items():
        if name in ("payload", MOVING_FIELD):
            continue
        note = NOTES.get(name, {}).get(value)
        rows.append((name, f"{value} ({note})" if note else value))
    if letter.queued_to:
        rows.append(("retry", f"queued: goes to {letter.queued_to} when ttlp runs"))
    width = max(len(name) for name, _ in rows)
    lines += [f"  {name.ljust(width)}  {_printable(value)}" for name, value in rows]
    body = letter.body
    if isinstance(body, dict | list):
        what = "JSON"
        if isinstance(body, dict):
            body, decoded = _unpacked(body)
            if decoded:
                what += f", its {' and '.join(decoded)} decoded from the JSON text it carries"
        lines.append(f"payload ({what}):")
        lines.append(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        lines.append("payload (not JSON: as it is):")
        lines.append(_printable(letter.payload_text))
    return "\n".join(lines)


PACKED: Final = ("data", "event")
"""Payload fields that carry JSON as a string (a raw frame's data, a forwarded event)."""


def _unpacked(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``body`` with its ``PACKED`` fields decoded where they hold a JSON object or array."""
    decoded = []
    out = dict(body)
    for name in PACKED:
        if isinstance(out.get(name), str):
            try:
                value = msgspec.json.decode(out[name])
            except msgspec.DecodeError:
                continue
            if isinstance(value, dict | list):
                out[name] = value
                decoded.append(name)
    return out, decoded


def _printable(text: Any) -> str:
    """Text a terminal can take: bytes that are not UTF-8 (surrogate-escaped) as U+FFFD."""
    value = str(text)
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a lone surrogate that does not stand for a byte
        return value.encode("utf-8", "replace").decode()
