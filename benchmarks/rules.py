"""Rules benchmark (DESIGN §12): events/s through the rules role with 100 enabled rules.

    .venv/bin/python benchmarks/rules.py                   # 20,000 events, PostgreSQL
    .venv/bin/python benchmarks/rules.py --events 50000 --rules 100 --sqlite

The rules role's events handler (``ttlp.roles.rules.make_events_handler``) is driven by the
one consume loop (``Consumer``, burst mode) over the in-process bus, on a scratch PostgreSQL
database (``TTLP_BENCH_DATABASE_URL``, default loopback; removed afterwards) or a SQLite file
(``--sqlite``). The events are the bundled session's 46 UnifiedEvents repeated with fresh
ids; the rules are ``--rules`` enabled rules spread over the event types, with mixed JSON
Logic conditions (comparisons, ``and``/``or``, ``in`` over chat text, ``var`` defaults) and the
``log`` action, so the figure is the engine plus its ``actions_log`` writes, not a remote API.
Two runs: one where about a third of the (event, rule) pairs fire, one where none does (pure
evaluation). The machine's PostgreSQL batched INSERT rate is printed alongside.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from loguru import logger
from machine import insert_rate, pg_url, scratch_postgres

from ttlp.bus.keys import GROUP_RULES, Keys
from ttlp.bus.memory import MemoryBus
from ttlp.db.engine import create_engine, normalize_database_url
from ttlp.db.migrate import upgrade
from ttlp.roles.rules import make_events_handler
from ttlp.rules.actions import Actions
from ttlp.rules.engine import Engine
from ttlp.rules.store import RulesStore
from ttlp.runtime import Context
from ttlp.settings import Settings

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "unified-events.ndjson"


def conditions(firing: bool) -> list[tuple[str, Any]]:
    """(event type, condition) pairs; with ``firing`` false none of them ever holds."""
    big = 0 if firing else 10**9
    follow = {"var": ["user.followRole", 0]}
    moderator_or_fan = {"or": [{"==": [{"var": "user.isModerator"}, True]}, {">": [follow, 1]}]}
    return [
        ("GIFT", {">=": [{"var": "payload.coins"}, 100 if firing else 10**9]}),
        (
            "GIFT",
            {
                "and": [
                    {"==": [{"var": "payload.streakEnd"}, True]},
                    {">": [{"var": "payload.giftCount"}, big]},
                ]
            },
        ),
        ("CHAT", {"in": ["a" if firing else "no-such-word", {"var": "payload.message"}]}),
        ("CHAT", moderator_or_fan if firing else {"==": [{"var": "user.uniqueId"}, "nobody"]}),
        ("LIKE", {">": [{"var": "payload.likeCount"}, big]}),
        (
            "JOIN",
            {"!=": [{"var": "user.uniqueId"}, "system" if firing else {"var": "user.uniqueId"}]},
        ),
        ("FOLLOW", {"==": [1, 1 if firing else 2]}),
        ("ROOM_USER", {">": [{"var": ["payload.viewerCount", 0]}, big]}),
    ]


def events(count: int) -> list[str]:
    base = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    out = []
    for i in range(count):
        event = dict(base[i % len(base)])
        event["eventId"] = hashlib.sha256(f"bench:{i}".encode()).hexdigest()
        out.append(json.dumps(event))
    return out


@contextlib.asynccontextmanager
async def database(sqlite: bool) -> AsyncIterator[str]:
    if sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = normalize_database_url(f"sqlite:///{tmp}/bench.db", Path(tmp))
            await asyncio.to_thread(upgrade, url)
            yield url
        return
    async with scratch_postgres("rules") as url:
        yield normalize_database_url(url, Path.cwd())


async def run(url: str, rules: int, texts: list[str], firing: bool) -> dict[str, float]:
    engine = create_engine(url)
    settings = Settings.from_env({"TTLP_DATA_DIR": tempfile.gettempdir()})
    store = RulesStore(engine)
    pairs = conditions(firing)
    for i in range(rules):
        event_type, condition = pairs[i % len(pairs)]
        await store.create_rule(
            {
                "name": f"rule {i}",
                "scope": "*" if i % 2 else "luna.beats",
                "event_type": event_type,
                "condition": condition,
                "action": {"type": "log", "template": "{eventType} from {username}"},
                "priority": i % 7,
                "streak_end_only": event_type == "GIFT",
            },
            "bench",
        )
    actions = Actions(settings)
    rules_engine = Engine(store, actions, reload_s=3600)
    await rules_engine.reload()
    bus = MemoryBus(maxlen=len(texts) + 1)
    ctx = Context(settings=settings, bus=bus, keys=Keys(f"bench-{uuid.uuid4().hex[:6]}-"))
    consumer = ctx.consumer(
        stream=ctx.keys.events,
        group=GROUP_RULES,
        handler=make_events_handler(rules_engine),
        stage="rules",
    )
    await consumer.setup()
    for start in range(0, len(texts), 1000):
        await bus.publish_many(ctx.keys.events, [{"event": t} for t in texts[start : start + 1000]])
    started = time.perf_counter()
    done = await consumer.run_until_idle()
    elapsed = time.perf_counter() - started
    await actions.aclose()
    await engine.dispose()
    stats = rules_engine.stats
    return {
        "events": done,
        "seconds": elapsed,
        "events_per_s": done / elapsed,
        "executions_per_s": (stats.fired + stats.skipped) / elapsed,
        "fired": stats.fired,
    }


async def main(args: argparse.Namespace) -> None:
    logger.remove()  # the log action writes a line per execution: measure the engine, not I/O
    logger.add(sys.stderr, level="WARNING")
    logging.getLogger().setLevel(logging.WARNING)
    texts = events(args.events)
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    print(f"rules benchmark: {args.rules} enabled rules, {args.events:,} events, {backend}")
    for firing in (True, False):
        async with database(args.sqlite) as url:
            # The streamer's room must be known for the half of the rules scoped to luna.beats.
            eng = create_engine(url)
            async with eng.begin() as conn:
                from ttlp.db import tables

                await conn.execute(
                    tables.streams.insert().values(id="7441234567890123456", unique_id="luna.beats")
                )
            await eng.dispose()
            result = await run(url, args.rules, texts, firing)
        label = "firing (log action)" if firing else "no rule fires     "
        print(
            f"  {label}: {result['events_per_s']:>9,.0f} events/s"
            f"  ({result['fired']:,.0f} executions written, "
            f"{result['executions_per_s']:,.0f}/s; {result['seconds']:.2f} s)"
        )
    if not args.sqlite:
        rate = await insert_rate(normalize_database_url(pg_url(), Path.cwd()), 20_000)
        print(f"  machine: PostgreSQL batched INSERT {rate:,.0f} rows/s")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
