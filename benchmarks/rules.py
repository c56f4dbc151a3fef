"""Rules benchmark (DESIGN §12): events/s through the rules role with 100 enabled rules, and
a backtest of one rule over a three-hour session (``--backtest``).

    .venv/bin/python benchmarks/rules.py                   # 20,000 events, PostgreSQL
    .venv/bin/python benchmarks/rules.py --events 50000 --rules 100 --sqlite
    .venv/bin/python benchmarks/rules.py --backtest        # 200,000 events, embedded SQLite

The rules role's events handler (``ttlp.roles.rules.make_events_handler``) is driven by the
one consume loop (``Consumer``, burst mode) over the in-process bus, on a scratch PostgreSQL
database (``TTLP_BENCH_DATABASE_URL``, default loopback; removed afterwards) or a SQLite file
(``--sqlite``). The events are the bundled session's 46 UnifiedEvents repeated with fresh
ids; the rules are ``--rules`` enabled rules spread over the event types, with mixed JSON
Logic conditions (comparisons, ``and``/``or``, ``in`` over chat text, ``var`` defaults) and the
``log`` action, so the figure is the engine plus its ``actions_log`` writes, not a remote API.
Two runs: one where about a third of the (event, rule) pairs fire, one where none does (pure
evaluation). The machine's PostgreSQL batched INSERT rate is printed alongside.

``--backtest`` (issue 18; target: a 3-hour session of 200,000 events answered in under 5 s on
the embedded default) stores two sessions of ``--events`` events over three hours in a scratch
SQLite file through ``Store.write_events``: a night's mix (likes, chat, joins, gifts with
streak frames, viewer counts, follows...; 3,000 viewers) and the worst case, every event a
gift (the rule is run on all of them). Each backtest is timed end to end: ``POST
/rules/backtest`` to the api app (uvicorn in this process, on a loopback port), the NDJSON
read to its result line; ``Backtest.result()`` alone is timed too. Rules: a thank-you
announcement for gifts of 100+ coins with a 60 s per-user cooldown (the issue's example), a
webhook on chat containing "hello" with a 30 s cooldown, and the gift rule on the all-gifts
session. Printed alongside, the machine's limits in the same run: reading the session's events
through ``Queries.events_page`` alone (no rules), and SQLite's batched INSERT rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
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
from ttlp.contracts.events import decode_event
from ttlp.db.engine import create_engine, normalize_database_url
from ttlp.db.migrate import upgrade
from ttlp.db.queries import MAX_PAGE, EventFilter, Queries
from ttlp.db.store import Store
from ttlp.roles.rules import make_events_handler
from ttlp.rules.actions import Actions
from ttlp.rules.backtest import Backtest, Source
from ttlp.rules.engine import CompiledRule, Engine
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


# -- backtest (issue 18) -----------------------------------------------------------------------
HOURS = 3
VIEWERS = 3000
BACKTEST_TARGET_S = 5.0
PASSWORD = "bench password 1"
NIGHT_MIX = (
    ("LIKE", 30),
    ("CHAT", 25),
    ("JOIN", 15),
    ("GIFT", 15),
    ("ROOM_USER", 5),
    ("FOLLOW", 3),
    ("SHARE", 2),
    ("EMOTE", 2),
    ("SUBSCRIBE", 1),
    ("RAW", 2),
)
GIFTS = (("Rose", 5655, 1), ("Finger Heart", 5487, 5), ("Doughnut", 5879, 30))
BIG_GIFTS = (("Hand Hearts", 5660, 100), ("Galaxy", 11046, 1000), ("Lion", 6369, 29999))
PHRASES = ("hello!", "love this song", "hello from Kazan", "🔥🔥🔥", "what game is this", "lol")
THANKS = {
    "name": "thank every gift of 100 coins",
    "scope": "luna.beats",
    "event_type": "GIFT",
    "condition": {">=": [{"var": "payload.coins"}, 100]},
    "action": {"type": "announce", "template": "Thank you {displayName} for {giftName}!"},
    "user_cooldown_s": 60,
}
HELLO = {
    "name": "webhook on hello",
    "scope": "luna.beats",
    "event_type": "CHAT",
    "condition": {"in": ["hello", {"var": "payload.message"}]},
    "action": {"type": "webhook", "url": "https://hooks.example.com/ttlp", "template": "{message}"},
    "cooldown_s": 30,
}


def night(session: str, count: int, mix: tuple[tuple[str, int], ...], seed: int) -> list[str]:
    """``count`` UnifiedEvents of one session over ``HOURS`` hours, of the types of ``mix``
    (weights), from the bundled session's events of each type with fresh ids, users, times."""
    import random
    from datetime import UTC, datetime, timedelta

    rng = random.Random(seed)
    base = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    template = {}
    for event in base:
        template.setdefault(event["eventType"], event)
    kinds = [k for k, _ in mix]
    weights = [w for _, w in mix]
    start = datetime(2025, 3, 1, 19, 0, tzinfo=UTC)
    step = HOURS * 3600 / count
    out = []
    for i in range(count):
        kind = rng.choices(kinds, weights)[0]
        event = json.loads(json.dumps(template[kind]))
        viewer = rng.randrange(VIEWERS)
        at = start + timedelta(seconds=i * step)
        event["sessionId"] = session
        event["eventId"] = hashlib.sha256(f"{session}:{i}".encode()).hexdigest()
        event["seqNo"] = 10**12 + seed * 10**9 + i
        event["timestamp"] = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        event["ingestedAt"] = event["timestamp"]
        if event["user"]["userId"] != "0":
            event["user"].update(
                userId=str(7_100_000_000_000_000_000 + viewer),
                uniqueId=f"viewer_{viewer}",
                displayName=f"Viewer {viewer}",
            )
        payload = event.get("payload") or {}
        if kind == "GIFT":
            name, gift_id, diamonds = rng.choice(BIG_GIFTS if rng.random() < 0.2 else GIFTS)
            count_ = rng.randint(1, 10)
            streaking = diamonds < 100 and rng.random() < 0.4
            payload.update(
                giftId=gift_id,
                giftName=name,
                giftCount=count_,
                coins=diamonds * count_,
                diamondCount=diamonds,
                streakActive=streaking,
                streakEnd=not streaking,
            )
        elif kind == "CHAT":
            payload["message"] = rng.choice(PHRASES)
        out.append(json.dumps(event, ensure_ascii=False))
    return out


async def store_night(db: Any, lines: list[str]) -> float:
    store = Store(db)
    started = time.perf_counter()
    for at in range(0, len(lines), 2000):
        await store.write_events([decode_event(line) for line in lines[at : at + 2000]])
    return time.perf_counter() - started


async def read_alone(db: Any, session: str, types: list[str]) -> tuple[int, float]:
    """The session's events of ``types`` through the history pages alone (no rules)."""
    queries = Queries(db)
    where = EventFilter(session_id=session, types=types)
    started = time.perf_counter()
    cursor, read = None, 0
    while True:
        page = await queries.events_page(where, limit=MAX_PAGE, cursor=cursor)
        read += len(page.items)
        if page.next_cursor is None:
            return read, time.perf_counter() - started
        cursor = page.next_cursor


def compiled(definition: dict[str, Any]) -> CompiledRule:
    row = {
        "id": 1,
        "priority": 0,
        "cooldown_s": 0,
        "user_cooldown_s": 0,
        "skip_replay": True,
        "streak_end_only": definition["event_type"] == "GIFT",
        **definition,
    }
    return CompiledRule.from_row(row)


@contextlib.asynccontextmanager
async def api_server(settings: Settings, db: Any) -> AsyncIterator[str]:
    """The api app on a loopback port in this event loop; its base URL."""
    import socket

    import uvicorn

    from ttlp.api.app import create_app
    from ttlp.roles.api import ApiServer

    stop = asyncio.Event()
    bus = MemoryBus(maxlen=1000)
    app = create_app(settings, bus, Keys(f"bench-{uuid.uuid4().hex[:6]}-"), db, stop)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ApiServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            raise RuntimeError("the api server did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        app.state.api.feed.close()
        server.should_exit = True
        await serving


async def post_backtest(http: Any, body: dict[str, Any]) -> tuple[dict[str, Any], float, int]:
    """POST /rules/backtest, read to the result line: (result, seconds, progress lines)."""
    started = time.perf_counter()
    progress = 0
    result: dict[str, Any] = {}
    async with http.stream("POST", "/rules/backtest", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            message = json.loads(line)
            if message["type"] == "progress":
                progress += 1
            elif message["type"] == "result":
                result = message
            else:
                raise RuntimeError(f"the backtest failed: {message}")
    return result, time.perf_counter() - started, progress


def api_rule(definition: dict[str, Any]) -> dict[str, Any]:
    """A rule definition as ``POST /rules`` takes it (camelCase)."""
    names = {
        "event_type": "eventType",
        "cooldown_s": "cooldownS",
        "user_cooldown_s": "userCooldownS",
    }
    return {names.get(k, k): v for k, v in definition.items()}


async def backtest_main(args: argparse.Namespace) -> None:
    import httpx

    from ttlp.api.accounts import Accounts, Role
    from ttlp.db import tables

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    n = args.events
    print(
        f"rules backtest benchmark: embedded SQLite, {n:,} events over {HOURS} h per session, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = normalize_database_url(f"sqlite:///{tmp}/ttlp.db", Path(tmp))
        await asyncio.to_thread(upgrade, url)
        settings = Settings.from_env(
            {
                "TTLP_DATA_DIR": tmp,
                "JWT_SECRET": "bench-secret-that-is-long-enough-for-hs256",
                "API_RATE_LIMIT_IP": "100000",
                "API_RATE_LIMIT_ACCOUNT": "100000",
            }
        )
        db = create_engine(url)
        async with db.begin() as conn:
            await conn.execute(
                tables.streams.insert().values(id="7441234567890123456", unique_id="luna.beats")
            )
        mixed, gifts = str(uuid.uuid4()), str(uuid.uuid4())
        nights = ((mixed, NIGHT_MIX, "mixed"), (gifts, (("GIFT", 1),), "all-gift"))
        for seed, (session, mix, label) in enumerate(nights, start=1):  # seeds: distinct seqNos
            seconds = await store_night(db, night(session, n, mix, seed=seed))
            print(f"  stored the {label} session: {n / seconds:,.0f} events/s (Store.write_events)")
            assert await Queries(db).session_event_count(session) == n
        await Accounts(db).add("bench", PASSWORD, Role.MODERATOR, ["luna.beats"])
        runs = (
            ("gifts ≥ 100 coins, mixed night", THANKS, mixed),
            ("chat 'hello' webhook, mixed night", HELLO, mixed),
            ("gifts ≥ 100 coins, all-gift night", THANKS, gifts),
        )
        async with (
            api_server(settings, db) as base,
            httpx.AsyncClient(base_url=base, timeout=120) as http,
        ):
            login = await http.post("/auth/login", json={"username": "bench", "password": PASSWORD})
            login.raise_for_status()
            http.headers["Authorization"] = f"Bearer {login.json()['token']}"
            for label, definition, session in runs:
                body = {"rule": api_rule(definition), "sessions": [session], "outputs": 20}
                await post_backtest(http, body)  # warm-up: caches, first-page plans
                result, seconds, lines = await post_backtest(http, body)
                direct = Backtest(db, compiled(definition), Source(session_ids=(session,)))
                started = time.perf_counter()
                await direct.result()
                alone = time.perf_counter() - started
                read, read_s = await read_alone(db, session, [definition["event_type"]])
                met = "met" if seconds < BACKTEST_TARGET_S else "MISSED"
                considered = result["eventsConsidered"]
                print(
                    f"  {label}: {seconds:.2f} s end to end for the {n:,}-event session "
                    f"({n / seconds:,.0f} session events/s; target < {BACKTEST_TARGET_S:.0f} s: "
                    f"{met})\n"
                    f"      {considered:,} events of the rule's type considered "
                    f"({considered / seconds:,.0f}/s): {result['matches']:,} matches, "
                    f"{result['fires']:,} fires, skipped {result['skipped']}; {lines} progress "
                    f"lines\n"
                    f"      Backtest.result() alone {alone:.2f} s ({considered / alone:,.0f} "
                    f"considered/s); reading the same {read:,} events alone {read_s:.2f} s "
                    f"({read / read_s:,.0f} events/s)"
                )
        await db.dispose()
        rate = await insert_rate(url, 20_000)
        print(f"  machine: SQLite batched INSERT {rate:,.0f} rows/s")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--events", type=int, default=None, help="default 20,000 (200,000 for --backtest)"
    )
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument(
        "--backtest", action="store_true", help="backtest one rule over 3-hour sessions (SQLite)"
    )
    args = parser.parse_args()
    if args.backtest:
        args.events = args.events or 200_000
        asyncio.run(backtest_main(args))
        return
    args.events = args.events or 20_000
    asyncio.run(main(args))


if __name__ == "__main__":
    cli()
