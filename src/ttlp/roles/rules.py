"""rules: ``ttlc:events`` (group ``rules``) → rule actions (chat, moderation, webhooks, log) and
``actions_log``; ``ttlc:control`` (group ``rules``) → re-read the rules on a change notice.

The events group starts at the stream's end (``$``) when it is first created: rules act on
live traffic, not on the history a stream still holds. Every batch is acked after its
``actions_log`` rows are written; a redelivered event finds its rows and runs nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec
from loguru import logger

from ttlp.bus import keys
from ttlp.bus.base import Entry
from ttlp.bus.consumer import BatchHandler, Failure
from ttlp.contracts.events import decode_event, decode_event_head
from ttlp.rules.actions import Actions
from ttlp.rules.engine import RULES_CHANGED, Engine
from ttlp.rules.store import RulesStore
from ttlp.runtime import Context

log = logger.bind(role="rules")


def make_events_handler(engine: Engine) -> BatchHandler:
    """Run the rules over each event. Only events of a type some enabled rule is for are
    decoded in full (most are likes, joins and viewer counts, and most streamers have a few
    rules); the rest cost a read of ``eventType``. CONNECTED events are always read: they
    tell the engine a room's streamer."""

    async def handle(entries: list[Entry]) -> Sequence[Failure]:
        await engine.maybe_reload()
        for entry in entries:
            text = (entry.fields or {}).get("event", "")
            try:
                event_type = decode_event_head(text).event_type
                if not engine.wants(event_type) and event_type != "CONNECTED":
                    continue
                decode_event(text)  # the contract; the engine reads the plain JSON
                event = msgspec.json.decode(text)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue  # the store role dead-letters invalid events; once is enough
            await engine.process(event)
        await engine.flush()
        return ()

    return handle


def make_control_handler(engine: Engine) -> BatchHandler:
    """Change notices; every other command belongs to another role and is left alone."""

    async def handle(entries: list[Entry]) -> Sequence[Failure]:
        if any((e.fields or {}).get("command") == RULES_CHANGED for e in entries):
            await engine.reload()
        return ()

    return handle


async def run(ctx: Context, stop: asyncio.Event) -> None:
    if ctx.engine is None:
        raise RuntimeError("the rules role needs the database")
    actions = Actions(ctx.settings)
    engine = Engine(RulesStore(ctx.engine), actions, reload_s=ctx.settings.rules.reload_s)
    try:
        await engine.reload()
        events = ctx.consumer(
            stream=ctx.keys.events,
            group=keys.GROUP_RULES,
            handler=make_events_handler(engine),
            stage="rules",
            start="$",
        )
        control = ctx.consumer(
            stream=ctx.keys.control,
            group=keys.GROUP_RULES,
            handler=make_control_handler(engine),
            stage="rules",
            start="$",
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(events.run(stop))
            group.create_task(control.run(stop))
    finally:
        await actions.aclose()
