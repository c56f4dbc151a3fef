"""API benchmark (DESIGN §12): live-feed fan-out over SSE, and history paging.

    .venv/bin/python benchmarks/api.py                       # the default run, ~2-3 minutes
    .venv/bin/python benchmarks/api.py --runs 1000x1,20x500 --seconds 20 --events 200000
    .venv/bin/python benchmarks/api.py --skip-history        # or --skip-feed

Everything runs on Redis + PostgreSQL (TTLP_BENCH_REDIS_URL / TTLP_BENCH_DATABASE_URL, default
loopback) in a scratch database and under a unique key prefix, both removed afterwards.

1. Feed fan-out. The api role runs as it does in production (``ttlp run --roles api``) in a
   process of its own, so the server has one core to itself; this process holds the SSE
   clients (raw asyncio protocols that only look for the ``id:`` lines, ~µs per event) and the
   publisher, which XADDs UnifiedEvents to ``ttlc:events`` at a fixed rate in batches every
   10 ms, as the normalizer does. Each run (``RATExCLIENTS``: events/s × clients on one
   stream) connects the clients, waits for the server to report them subscribed, publishes
   for a warm-up second and then ``--seconds`` more, and waits for the clients to catch up.
   Latency is from the moment before the XADD of an event's batch to the client's read of
   it (both clocks are this process's), over every delivery of the measured window.
2. History paging. The events table is filled with ``--events`` events (INSERT ... SELECT
   over generate_series from the bundled session's 46 events, in ``--sessions`` sessions of
   one stream), then keyset pages of 100 of one session are read at ``--walks`` depths
   spread over the session, ``--pages`` consecutive pages each: through ``Queries.events_page``
   (what the route calls) and through ``GET /sessions/{id}/events?limit=100&cursor=...`` over
   a keep-alive HTTP connection; without a filter, with a common type (GIFT, ~28 % of the
   events) and a rare one (SUBSCRIBE, ~2 %).

The machine's own limits are measured in the same run (Redis XADD rate, PostgreSQL batched
INSERT rate), as ``ttlp bench`` does, so the figures read as ratios. Targets: SSE p99 ≤ 50 ms
at 1,000 events/s; history page p95 ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import httpx
import msgspec
from machine import (
    insert_rate,
    pg_url,
    redis_url,
    redis_xadd_rate,
    scratch_postgres,
    scratch_prefix,
)

from ttlp.api.accounts import Accounts, Role
from ttlp.bus.keys import Keys
from ttlp.bus.redis import RedisBus
from ttlp.contracts.events import UnifiedEvent, decode_event
from ttlp.db.engine import create_engine, normalize_database_url
from ttlp.db.queries import EventFilter, Queries, encode_cursor
from ttlp.db.store import Store

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "unified-events.ndjson"
JWT_SECRET = "benchmark-secret-that-is-long-enough-for-hs256"
PASSWORD = "benchmark password"
TICK_S = 0.01
SSE_TARGET_MS = 50.0
HISTORY_TARGET_MS = 20.0
DEFAULT_RUNS = "1000x1,1000x10,1000x100,20x500,100x500"
PROFILE: list[str] = []
"""``-m cProfile -o FILE`` for the api process (``--profile-server FILE``)."""


# -- shared ---------------------------------------------------------------------------------
def pct(samples: Sequence[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fixture_events() -> list[UnifiedEvent]:
    return [decode_event(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


@dataclass
class Scratch:
    db_url: str
    prefix: str
    keys: Keys
    tmp: Path


@contextlib.asynccontextmanager
async def scratch() -> AsyncIterator[Scratch]:
    """A migrated scratch PostgreSQL database and a key prefix; both removed afterwards."""
    async with scratch_postgres("api") as db_url, scratch_prefix("api") as prefix:
        with tempfile.TemporaryDirectory() as tmp:
            yield Scratch(db_url, prefix, Keys(prefix), Path(tmp))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def api_process(env: Scratch, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``ttlp run --roles api`` on ``port``, as deployed (its own process, GC tuning, logs)."""
    log_path = env.tmp / "api.log"
    proc_env = {
        **os.environ,
        "REDIS_URL": redis_url(),
        "DATABASE_URL": env.db_url,
        "REDIS_CONSUMER_GROUP_PREFIX": env.prefix,
        "JWT_SECRET": JWT_SECRET,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_RATE_LIMIT_IP": "100000000",
        "API_RATE_LIMIT_ACCOUNT": "100000000",
        "API_MAX_FEEDS_PER_ACCOUNT": "100000",
        "LOG_LEVEL": "warn",
        "TTLP_DATA_DIR": str(env.tmp),
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, *PROFILE, "-m", "ttlp", "run", "--roles", "api"],
            env=proc_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.returncode not in (0, -15):
            print(f"api process exited with {proc.returncode}; its log:")
            print(log_path.read_text()[-4000:])


async def wait_healthy(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the api process exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get("/health")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError("the api did not become healthy in 60 s")


async def metric(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else float("nan")


async def wait_metric(client: httpx.AsyncClient, name: str, value: float, within: float) -> None:
    deadline = time.monotonic() + within
    while (current := await metric(client, name)) != value:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} is {current}, not {value}, after {within:.0f} s")
        await asyncio.sleep(0.1)


# -- 1. feed fan-out ------------------------------------------------------------------------
class SseClient(asyncio.Protocol):
    """One SSE client: records (entry id, arrival time) of every event; parses nothing else."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.samples: list[tuple[bytes, float]] = []
        self.tail = b""
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an asyncio.Transport subclass).
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.tail + data if self.tail else data
        start = 0
        samples = self.samples
        while (i := buf.find(b"\nid: ", start)) >= 0:
            j = buf.find(b"\r", i + 5)
            if j < 0:
                break
            samples.append((buf[i + 5 : j], now))
            start = j
        cut = buf.rfind(b"\n", start)
        self.tail = buf[cut:] if cut >= 0 else buf[start:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    @property
    def last_id(self) -> bytes | None:
        return self.samples[-1][0] if self.samples else None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class FanoutResult:
    rate: float
    clients: int
    seconds: float
    events: int = 0
    expected: int = 0
    delivered: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    dropped_clients: int = 0
    server_cpu: float = 0.0
    bench_cpu: float = 0.0
    deliver_s: float = 0.0


class Publisher:
    """XADDs events at ``rate``/s in batches every 10 ms; remembers when each batch went."""

    def __init__(self, bus: RedisBus, stream: str, events: list[UnifiedEvent]) -> None:
        self.bus = bus
        self.stream = stream
        self.payloads = [{"event": msgspec.json.encode(e).decode()} for e in events]
        self.sent_at: dict[bytes, float] = {}
        self.count = 0

    async def run(self, rate: float, seconds: float, *, record: bool) -> list[bytes]:
        ids: list[bytes] = []
        started = time.perf_counter()
        sent = 0
        total = int(rate * seconds)
        while sent < total:
            due = min(total, int((time.perf_counter() - started) * rate) + 1)
            if due > sent:
                n = len(self.payloads)
                batch = [self.payloads[(self.count + i) % n] for i in range(due - sent)]
                at = time.time()
                new = await self.bus.publish_many(self.stream, batch)
                self.count += len(batch)
                sent = due
                for entry_id in new:
                    key = entry_id.encode()
                    ids.append(key)
                    if record:
                        self.sent_at[key] = at
            await asyncio.sleep(TICK_S)
        return ids


async def fanout_run(
    http: httpx.AsyncClient,
    port: int,
    pid: int,
    token: str,
    publisher: Publisher,
    rate: float,
    n_clients: int,
    seconds: float,
) -> FanoutResult:
    result = FanoutResult(rate, n_clients, seconds)
    loop = asyncio.get_running_loop()
    request = (
        f"GET /streams/@luna.beats/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    dropped_before = await metric(http, "ttlp_api_feed_dropped_clients")
    clients: list[SseClient] = []
    for i in range(0, n_clients, 50):  # in waves: no SYN storm
        batch = await asyncio.gather(
            *(
                loop.create_connection(lambda: SseClient(request), "127.0.0.1", port)
                for _ in range(min(50, n_clients - i))
            )
        )
        clients.extend(protocol for _, protocol in batch)
    await wait_metric(http, "ttlp_api_feed_clients", n_clients, 60)
    await publisher.run(rate, 1.0, record=False)  # warm-up
    server0, bench0 = proc_cpu_s(pid), cpu_s()
    window = time.perf_counter()
    ids = await publisher.run(rate, seconds, record=True)
    result.events = len(ids)
    result.expected = len(ids) * n_clients
    last = ids[-1]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(  # noqa: ASYNC110 (polling many clients)
        c.last_id != last and not c.closed.done() for c in clients
    ):
        await asyncio.sleep(0.05)
    result.deliver_s = time.perf_counter() - window
    result.server_cpu = (proc_cpu_s(pid) - server0) / result.deliver_s
    result.bench_cpu = (cpu_s() - bench0) / result.deliver_s
    sent_at = publisher.sent_at
    for client in clients:
        for entry_id, at in client.samples:
            sent = sent_at.get(entry_id)
            if sent is not None:
                result.latencies_ms.append((at - sent) * 1000)
    result.delivered = len(result.latencies_ms)
    dropped = await metric(http, "ttlp_api_feed_dropped_clients")
    result.dropped_clients = int(dropped - dropped_before)
    for client in clients:
        client.close()
    await wait_metric(http, "ttlp_api_feed_clients", 0, 60)
    sent_at.clear()
    return result


def print_fanout(r: FanoutResult) -> None:
    lat = r.latencies_ms
    p99 = pct(lat, 0.99)
    target = ""
    if r.rate >= 1000:
        met = "met" if p99 <= SSE_TARGET_MS else "MISSED"
        target = f"  (target p99 ≤ {SSE_TARGET_MS:.0f} ms: {met})"
    print(
        f"  {r.rate:>6,.0f} ev/s × {r.clients:>4} clients: "
        f"{r.delivered:>8,}/{r.expected:,} delivered = {r.delivered / r.deliver_s:>9,.0f} "
        f"deliveries/s; latency p50 {pct(lat, 0.5):6.1f} ms, p99 {p99:6.1f} ms, "
        f"max {max(lat, default=float('nan')):6.1f} ms; dropped clients {r.dropped_clients}; "
        f"CPU server {r.server_cpu:4.0%}, clients+publisher {r.bench_cpu:4.0%}{target}",
        flush=True,
    )


async def bench_feed(env: Scratch, runs: list[tuple[float, int]], seconds: float) -> None:
    engine = create_engine(normalize_database_url(env.db_url, env.tmp))
    try:
        await Store(engine).write_events(fixture_events())  # the stream and its handle exist
        await Accounts(engine).add("bench", PASSWORD, Role.MODERATOR, ["luna.beats"])
    finally:
        await engine.dispose()
    port = free_port()
    bus = RedisBus(redis_url(), maxlen=100_000)
    events = [
        msgspec.structs.replace(e, event_id=uuid.uuid4().hex * 2) for e in fixture_events() * 5
    ]
    publisher = Publisher(bus, env.keys.events, events)
    with api_process(env, port) as proc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await wait_healthy(http, proc)
            login = await http.post("/auth/login", json={"username": "bench", "password": PASSWORD})
            login.raise_for_status()
            token = login.json()["token"]
            print(
                "\n== Live feed: SSE fan-out (api role in its own process via `ttlp run --roles "
                "api`; clients and publisher in this one)",
                flush=True,
            )
            for rate, n_clients in runs:
                result = await fanout_run(
                    http, port, proc.pid, token, publisher, rate, n_clients, seconds
                )
                print_fanout(result)
    await bus.close()


# -- 2. history paging ----------------------------------------------------------------------
FILL_SQL = """
INSERT INTO events (event_id, session_id, stream_id, event_type, trigger_id, schema_version,
                    user_id, raw_type, seq_no, timestamp, ingested_at, source, event_data)
SELECT md5(g::text) || md5((-g)::text), s.id, t.stream_id, t.event_type, t.trigger_id,
       t.schema_version, t.user_id, t.raw_type, g, t.timestamp + g * interval '1 millisecond',
       t.ingested_at, t.source,
       jsonb_set(t.event_data, '{eventId}', to_jsonb(md5(g::text) || md5((-g)::text)))
FROM generate_series($1::bigint, $2::bigint) AS g
JOIN bench_template t ON t.k = g % $3
JOIN bench_sessions s ON s.k = (g - 1) * $4 / $5
ORDER BY g
"""


async def fill(env: Scratch, n_events: int, n_sessions: int) -> list[str]:
    """``n_events`` events in ``n_sessions`` consecutive sessions of the fixture's stream;
    → the session ids."""
    import asyncpg

    engine = create_engine(normalize_database_url(env.db_url, env.tmp))
    try:
        await Store(engine).write_events(fixture_events())
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(env.db_url)
    try:
        template_session = await conn.fetchval("SELECT session_id FROM events LIMIT 1")
        sessions = [template_session] + [str(uuid.uuid4()) for _ in range(n_sessions - 1)]
        await conn.execute(
            "CREATE TEMP TABLE bench_template AS SELECT (row_number() OVER (ORDER BY id)) - 1"
            " AS k, * FROM events"
        )
        n_template = await conn.fetchval("SELECT count(*) FROM bench_template")
        await conn.execute("CREATE TEMP TABLE bench_sessions (k int, id text)")
        await conn.executemany(
            "INSERT INTO bench_sessions VALUES ($1, $2)", list(enumerate(sessions))
        )
        await conn.execute(
            "INSERT INTO sessions (id, stream_id, type, provider, unique_id, created_at)"
            " SELECT b.id, s.stream_id, s.type, s.provider, s.unique_id, s.created_at"
            " FROM bench_sessions b, sessions s WHERE s.id = $1 AND b.id <> $1",
            template_session,
        )
        chunk = 100_000
        started = time.perf_counter()
        for low in range(1, n_events + 1, chunk):
            high = min(n_events, low + chunk - 1)
            await conn.execute(FILL_SQL, low, high, n_template, n_sessions, n_events)
        filled = time.perf_counter() - started
        await conn.execute("VACUUM ANALYZE events")
        total = await conn.fetchval("SELECT count(*) FROM events")
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('events'))")
        print(
            f"  filled {total:,} events in {n_sessions} sessions ({size} with indexes) in "
            f"{filled:.1f} s ({n_events / filled:,.0f} rows/s, INSERT ... SELECT, 8 indexes)",
            flush=True,
        )
        return sessions
    finally:
        await conn.close()


@dataclass
class Walk:
    label: str
    types: list[str]
    cursors: list[str | None] = field(default_factory=list)
    query_ms: list[float] = field(default_factory=list)
    http_ms: list[float] = field(default_factory=list)
    items: int = 0


async def walk_queries(
    queries: Queries, session: str, bounds: tuple[int, int], walk: Walk, walks: int, pages: int
) -> None:
    """``walks`` walks of ``pages`` consecutive pages from depths spread over the session."""
    where = EventFilter(session_id=session, types=walk.types)
    low, high = bounds
    for w in range(walks):
        start = low + (high - low) * w // walks
        cursor: str | None = encode_cursor(start, "asc", where.fingerprint()) if w else None
        for _ in range(pages):
            walk.cursors.append(cursor)
            t0 = time.perf_counter()
            page = await queries.events_page(where, limit=100, cursor=cursor)
            walk.query_ms.append((time.perf_counter() - t0) * 1000)
            walk.items += len(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break


async def walk_http(client: httpx.AsyncClient, session: str, walk: Walk) -> None:
    for cursor in walk.cursors:
        params = {"limit": "100"}
        if walk.types:
            params["types"] = ",".join(walk.types)
        if cursor:
            params["cursor"] = cursor
        t0 = time.perf_counter()
        response = await client.get(f"/sessions/{session}/events", params=params)
        walk.http_ms.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()


def print_walk(walk: Walk) -> None:
    def fmt(samples: list[float]) -> str:
        return (
            f"p50 {pct(samples, 0.5):5.1f} ms, p95 {pct(samples, 0.95):5.1f} ms, "
            f"p99 {pct(samples, 0.99):5.1f} ms"
        )

    met = "met" if pct(walk.http_ms, 0.95) <= HISTORY_TARGET_MS else "MISSED"
    print(
        f"  {walk.label:<22} {len(walk.query_ms):>4} pages "
        f"({walk.items / max(1, len(walk.query_ms)):.0f} events each)\n"
        f"      Queries.events_page   {fmt(walk.query_ms)}\n"
        f"      HTTP GET              {fmt(walk.http_ms)}  (target p95 ≤ "
        f"{HISTORY_TARGET_MS:.0f} ms: {met})",
        flush=True,
    )


async def bench_history(
    env: Scratch, n_events: int, n_sessions: int, walks: int, pages: int
) -> None:
    print(f"\n== History: keyset pages of 100 from a {n_events:,}-event table", flush=True)
    sessions = await fill(env, n_events, n_sessions)
    session = sessions[n_sessions // 2]
    engine = create_engine(normalize_database_url(env.db_url, env.tmp))
    port = free_port()
    try:
        await Accounts(engine).add("bench-viewer", PASSWORD, Role.VIEWER, ["luna.beats"])
        import asyncpg

        conn = await asyncpg.connect(env.db_url)
        try:
            row = await conn.fetchrow(
                "SELECT min(id), max(id), count(*) FROM events WHERE session_id = $1", session
            )
        finally:
            await conn.close()
        print(f"  paging session {session}: {row[2]:,} events; {walks} depths × {pages} pages")
        queries = Queries(engine)
        plans = [
            Walk("no filter", []),
            Walk("types=GIFT (~28 %)", ["GIFT"]),
            Walk("types=SUBSCRIBE (~2 %)", ["SUBSCRIBE"]),
        ]
        for walk in plans:
            await walk_queries(queries, session, (row[0], row[1]), walk, walks, pages)
        with api_process(env, port) as proc:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                await wait_healthy(http, proc)
                login = await http.post(
                    "/auth/login", json={"username": "bench-viewer", "password": PASSWORD}
                )
                login.raise_for_status()
                http.headers["Authorization"] = f"Bearer {login.json()['token']}"
                for walk in plans:
                    await walk_http(http, session, Walk(walk.label, walk.types))  # warm-up
                    await walk_http(http, session, walk)
        for walk in plans:
            print_walk(walk)
    finally:
        await engine.dispose()


# -- main -----------------------------------------------------------------------------------
async def bench(args: argparse.Namespace) -> None:
    print(
        f"ttlp api benchmark: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"Redis {redis_url().rsplit('@', 1)[-1]}, PostgreSQL {pg_url().rsplit('@', 1)[-1]}",
        flush=True,
    )
    async with scratch() as env:
        xadd = await redis_xadd_rate()
        print(f"machine: Redis XADD (pipelined)        {xadd:>12,.0f} entries/s")
        url = normalize_database_url(env.db_url, env.tmp)
        print(f"machine: PostgreSQL batched INSERT      {await insert_rate(url):>12,.0f} rows/s")
        if not args.skip_feed:
            await bench_feed(env, args.runs, args.seconds)
        if not args.skip_history:
            await bench_history(env, args.events, args.sessions, args.walks, args.pages)


def parse_runs(text: str) -> list[tuple[float, int]]:
    runs = []
    for part in text.split(","):
        rate, _, clients = part.strip().partition("x")
        runs.append((float(rate), int(clients)))
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ttlp api benchmark (DESIGN §12)")
    parser.add_argument(
        "--runs",
        type=parse_runs,
        default=parse_runs(DEFAULT_RUNS),
        help="fan-out runs, RATExCLIENTS comma-separated (events/s × SSE clients on one "
        f"stream); default {DEFAULT_RUNS}",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the table")
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--walks", type=int, default=10, help="depths per history walk")
    parser.add_argument("--pages", type=int, default=20, help="consecutive pages per depth")
    parser.add_argument("--skip-feed", action="store_true")
    parser.add_argument(
        "--profile-server", metavar="FILE", help="run the api process under cProfile into FILE"
    )
    parser.add_argument("--skip-history", action="store_true")
    args = parser.parse_args(argv)
    if args.profile_server:
        PROFILE[:] = ["-m", "cProfile", "-o", str(Path(args.profile_server).resolve())]

    from ttlp import log

    log.configure("warn", "json")
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
