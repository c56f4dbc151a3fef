"""Pipeline benchmark (DESIGN §12, issue 17): mock provider → every role (normalize, store, api,
rules, forward) in one process, as ``ttlp run --roles all`` runs them.

For each backend (Redis + PostgreSQL, and the embedded in-process bus + SQLite) this process
makes the scratch database / data directory and measures the machine; every pipeline run is
then a fresh process of its own (this script with ``--run``), started up (imports, protobuf
descriptors) before it is timed, so the RSS a run reports is that one pipeline's alone:
  0. the machine's own limits, in the same run: Redis XADD rate (pipelined, frames of the real
     size) and batched INSERT rate of PostgreSQL / SQLite (rows like the events table);
  1. throughput: N frames (protobuf, then JSON) published by the mock provider as fast as the
     consumers keep up; events/s = N / (last commit − first publish), and latency ingest →
     committed (p50/p99; this includes the queueing a full-speed producer causes);
  2. latency: the mock provider at a fixed rate (``--latency-rate``, 1,000 protobuf frames/s)
     for a 1 s warm-up (from the first event committed) and ``--latency-seconds`` more; over
     the frames ingested after the warm-up, ingest → committed (the store's commit) p50/p99.
     Then the same run again while ``--sse-clients`` (100) clients read the live feed
     (``GET /streams/{room}/events``, as an account of the scratch database) from a process of
     their own (this script with ``--sse-client``): ingest → committed under that load, and
     ingest → SSE client (the client's read of each event − its ``ingestedAt``, every
     delivery), p50/p99;
  3. memory: the highest peak RSS (VmHWM) of those runs' processes, and the RSS at the end of
     the last run (VmRSS), its roles still running.
A table at the end puts the backends side by side with DESIGN §12's targets.

    python benchmarks/pipeline.py                  # both backends, 100,000 frames
    python benchmarks/pipeline.py --backend embedded -n 20000
    python benchmarks/pipeline.py --profile        # + cProfile's top entries of a run
    python benchmarks/pipeline.py --soak 600 --rate 1000   # 10 minutes: RSS, latency per minute
    ttlp bench ...                                 # the same, from a checkout

Redis and PostgreSQL default to 127.0.0.1 (TTLP_BENCH_REDIS_URL / TTLP_BENCH_DATABASE_URL);
a scratch database and a unique key prefix are created and removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import math
import os
import pstats
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import cycle, islice
from operator import itemgetter
from pathlib import Path
from typing import Any, Final, cast

from api import SseClient, pct, wait_metric
from machine import (
    insert_rate,
    proc_status_mb,
    redis_url,
    redis_xadd_rate,
    rss_now_mb,
    rss_peak_mb,
    scratch_postgres,
    scratch_prefix,
)

from ttlp.contracts.events import UnifiedEvent
from ttlp.runtime import ROLES, Context, open_context, plan_workers, running_workers
from ttlp.settings import Settings
from ttlp.tiktok.providers.mock import Line, MockProvider, bundled_fixture, load_fixture
from ttlp.tiktok.supervisor import StreamerSupervisor

BENCH_ROLES = ("normalize", "store", "api", "rules", "forward")
"""Every role of ``--roles all`` but ingest, whose work the benchmark's mock provider does."""

TARGET_EVENTS_S: Final = 10_000.0
TARGET_COMMITTED_P99_MS: Final = 100.0
TARGET_SSE_P99_MS: Final = 50.0
TARGET_RSS_MB: Final = 200.0
WARMUP_S: Final = 1.0
"""Frames ingested in the first second of a fixed-rate run are not in its latency figures."""
PROFILE_TOP: Final = 25
FEED_USER: Final = "bench"
FEED_PASSWORD: Final = "benchmark password"
FEED_WAVE: Final = 50
"""SSE clients connected at once (no SYN storm)."""
FEED_READY_S: Final = 120.0
FEED_CATCH_UP_S: Final = 30.0
"""How long the clients may take, after the last commit, to read the last event."""
INGESTED_AT: Final = b'"ingestedAt":"'
SCRIPT: Final = Path(__file__).resolve()
KINDS: Final = ("redis-pg", "embedded")
LABELS: Final = {"redis-pg": "Redis Streams + PostgreSQL", "embedded": "in-process bus + SQLite"}


def label(kind: str, processes: int = 1) -> str:
    """The backend's name, and its processes when ``TTLP_WORKERS`` makes it more than one."""
    if kind == "redis-pg" and processes > 1:
        return f"{LABELS[kind]}, {processes} processes"
    return LABELS[kind]


@dataclass
class Latencies:
    samples: list[float] = field(default_factory=list)
    committed: int = 0
    last_commit: float = 0.0
    since: float = 0.0
    """Events ingested before this wall time are counted but not sampled (a warm-up)."""
    warmup_s: float = 0.0
    """When not 0, ``since`` is set at the first commit to this much later: the roles'
    start (descriptors, the api's app, the groups) is no part of the warm-up."""
    target: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once ``target`` events (when not 0) are committed."""

    def pct(self, q: float) -> float:
        """The ``q`` quantile in milliseconds (NaN without samples)."""
        return pct(self.samples, q) * 1000

    def take(self) -> Latencies:
        """The samples so far, which this one forgets (a soak's interval)."""
        taken, self.samples = self.samples, []
        return Latencies(samples=taken)


def _instrument(ctx: Context, latencies: Latencies) -> None:
    """Record ingest → committed latency of every event the store commits."""
    store = ctx.store
    write = store.write_events

    async def timed(events: Sequence[UnifiedEvent]) -> Any:
        result = await write(events)
        now = time.time()
        if latencies.warmup_s and not latencies.committed:
            latencies.since = now + latencies.warmup_s
        since = latencies.since
        for event in events:
            if isinstance(event.ingested_at, str):
                ingested = datetime.fromisoformat(event.ingested_at).timestamp()
                if ingested >= since:
                    latencies.samples.append(now - ingested)
        latencies.committed += len(events)
        latencies.last_commit = time.perf_counter()
        if latencies.target and latencies.committed >= latencies.target:
            latencies.reached.set()
        return result

    store.write_events = timed  # type: ignore[method-assign]


def _api_env() -> dict[str, str]:
    """The api role runs too (its feed tails ttlc:events), on a free loopback port, with limits
    that let the benchmark's SSE clients in (one account, all from 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return {
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "JWT_SECRET": uuid.uuid4().hex * 2,
        "API_RATE_LIMIT_IP": "100000000",
        "API_RATE_LIMIT_ACCOUNT": "100000000",
        "API_MAX_FEEDS_PER_ACCOUNT": "100000",
    }


@contextlib.asynccontextmanager
async def backend(kind: str, processes: int = 1) -> AsyncIterator[tuple[dict[str, str], str]]:
    """The environment of a scratch pipeline on ``kind`` (``Settings.from_env`` takes it);
    yields (environment, label). ``processes``: ``TTLP_WORKERS`` on Redis (the in-process bus
    runs in one process)."""
    if kind == "embedded":
        with tempfile.TemporaryDirectory() as tmp:
            yield {"TTLP_DATA_DIR": tmp, "LOG_LEVEL": "warn", **_api_env()}, label(kind)
        return
    async with scratch_postgres("pipeline") as db_url, scratch_prefix("pipeline") as prefix:
        env = {
            "REDIS_URL": redis_url(),
            "DATABASE_URL": db_url,
            "LOG_LEVEL": "warn",
            "REDIS_CONSUMER_GROUP_PREFIX": prefix,
            "CONSUMER_NAME": "bench",
            "TTLP_WORKERS": str(processes),
            **_api_env(),
        }
        yield env, label(kind, processes)


def fixture_path(encoding: str) -> Path:
    """The bundled session as JSON objects, or as the providers deliver it (protobuf bytes)."""
    json_fixture = bundled_fixture()
    if encoding == "json":
        return json_fixture
    return json_fixture.with_name("raw-frames-protobuf.ndjson")


def fixture_frames(encoding: str) -> list[Line]:
    return [line for line in load_fixture(fixture_path(encoding)) if line.frame is not None]


class Repeated:
    """``count`` lines cycling over ``lines``, without a list of ``count`` (the mock provider
    only iterates its lines and counts them)."""

    def __init__(self, lines: list[Line], count: int) -> None:
        self.lines = lines
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Line]:
        return islice(cycle(self.lines), self.count)


async def add_feed_account(settings: Settings) -> str:
    """A MODERATOR of every stream for the SSE clients (also: no "no account yet" setup link
    in the api's log); → the room id of the bundled session, whose feed they read."""
    from ttlp.api.accounts import ALL_STREAMS, Accounts, Role

    async with open_context(settings, need_db=True) as ctx:
        assert ctx.engine is not None
        await Accounts(ctx.engine).add(FEED_USER, FEED_PASSWORD, Role.MODERATOR, [ALL_STREAMS])
    frame = fixture_frames("protobuf")[0].frame
    assert frame is not None
    return frame.stream_id


@dataclass
class Pipeline:
    ctx: Context
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]]
    """The roles', and the producer's once it publishes."""

    def publish(self, provider: MockProvider) -> asyncio.Task[None]:
        """Start ``provider`` through the supervisor, publishing as the ingest role would."""
        publisher = self.ctx.paced_publisher()
        supervisor = StreamerSupervisor(provider, "mock", publisher)
        task = asyncio.create_task(supervisor.run(self.stop))
        self.tasks.append(task)
        return task


@contextlib.asynccontextmanager
async def every_role(settings: Settings, latencies: Latencies) -> AsyncIterator[Pipeline]:
    """``BENCH_ROLES`` running on ``settings``, the store's commits timed into ``latencies``;
    stopped, as ``ttlp run`` stops them, on the way out."""
    async with open_context(settings, need_db=True) as ctx:
        _instrument(ctx, latencies)
        stop = asyncio.Event()
        planned = plan_workers(settings, list(BENCH_ROLES), stop)
        tasks = [
            asyncio.create_task((fn or ROLES[name].load())(ctx, stop))
            for name, fn in planned.items()
        ]
        try:
            await workers_reading(ctx, tasks)
            yield Pipeline(ctx, stop, tasks)
        finally:
            stop.set()
            await asyncio.gather(*tasks)


async def committed_all(
    latencies: Latencies, tasks: list[asyncio.Task[None]], producer: asyncio.Task[None]
) -> None:
    """Wait for ``latencies.target`` events committed; raise if a role (or the producer) fails
    or a role ends first (the producer ends when it has published every frame)."""
    reached = asyncio.create_task(latencies.reached.wait())
    watched = {reached, *tasks}
    try:
        while not reached.done():
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {reached}:
                task.result()
                if task is not producer:
                    raise RuntimeError("a role ended before every frame was committed")
            watched -= done
    finally:
        reached.cancel()


async def run_pipeline(
    settings: Settings,
    frames: int,
    rate: float,
    encoding: str = "protobuf",
    *,
    warmup_s: float = 0.0,
    before: Callable[[], Awaitable[None]] | None = None,
    after: Callable[[], Awaitable[None]] | None = None,
) -> tuple[float, Latencies]:
    """Run every role in-process until ``frames`` events are committed; → (seconds, latencies).

    The mock provider publishes directly (what the ingest role would do); the other roles run
    as in ``ttlp run``: the api tails ttlc:events for its live feed, rules and forward read
    every event in their own consumer groups (no rules or targets configured: their cost is
    reading, decoding and acknowledging every event). ``before`` runs once the roles are
    started and before the first frame, ``after`` once the last event is committed and before
    the roles stop; latencies are sampled for frames ingested ``warmup_s`` after the first
    event was committed."""
    lines = Repeated(fixture_frames(encoding), frames)
    latencies = Latencies(target=frames)
    async with every_role(settings, latencies) as pipeline:
        if before is not None:
            await before()
        # MockProvider takes a list; it only iterates it and takes its length.
        provider = MockProvider(cast(list[Line], lines), rate=rate, loop=False, restamp=True)
        latencies.warmup_s = warmup_s
        started = time.perf_counter()
        producer = pipeline.publish(provider)
        await committed_all(latencies, pipeline.tasks, producer)
        elapsed = latencies.last_commit - started
        if after is not None:
            await after()
    return elapsed, latencies


WORKERS_READY_S: Final = 120.0
WORKERS_POLL_S: Final = 0.05


async def workers_reading(ctx: Context, tasks: list[asyncio.Task[None]]) -> None:
    """Wait until every worker process's normalizer reads ``ttlc:raw`` (a consumer of its
    name that Redis saw since now): a worker's start-up (imports, protobuf descriptors, ~2 s
    here) is not the pipeline's throughput, as the roles' own start is not."""
    expected = {f"{ctx.settings.bus.consumer_name}-w{i}" for i in range(1, ctx.settings.workers)}
    if not expected:
        return
    from redis.exceptions import ResponseError

    from ttlp.bus.keys import GROUP_NORMALIZER
    from ttlp.bus.redis import RedisBus

    assert isinstance(ctx.bus, RedisBus)
    started = time.monotonic()
    while (waited := time.monotonic() - started) < WORKERS_READY_S:
        for task in tasks:
            if task.done():
                task.result()
                raise RuntimeError("a role ended before the worker processes read")
        try:
            consumers = await ctx.bus.client.xinfo_consumers(
                ctx.keys.raw, ctx.keys.group(GROUP_NORMALIZER)
            )
        except ResponseError:  # no group yet
            consumers = []
        # A consumer of an earlier run on this prefix was last seen before this one started.
        if expected <= {c["name"] for c in consumers if c["idle"] < waited * 1000}:
            return
        await asyncio.sleep(WORKERS_POLL_S)
    raise RuntimeError(f"the worker processes did not read within {WORKERS_READY_S:g} s")


def workers_mb(field: str) -> float:
    """``VmRSS`` or ``VmHWM`` of the worker processes running now (``TTLP_WORKERS``), summed:
    a process's memory figures are its own, and ``ttlp run`` with workers is all of them."""
    return sum(proc_status_mb(field, worker.pid) for worker in running_workers())


# -- the SSE clients, in a process of their own --------------------------------------------
class Stamps(dict[bytes, float]):
    """``ingestedAt`` text → epoch seconds: every client reads the same stamps, parse once."""

    def __missing__(self, stamp: bytes) -> float:
        if len(self) > 100_000:
            self.clear()
        value = datetime.fromisoformat(stamp.decode()).timestamp()
        self[stamp] = value
        return value


@dataclass
class Deliveries:
    """Every delivery of every client: the event's ingest time and its latency (s)."""

    ingested: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    stamps: Stamps = field(default_factory=Stamps)


class FeedClient(SseClient):
    """An SSE client (benchmarks/api.py's) that records, per event, its read time (wall clock)
    − the event's ``ingestedAt``, and reads nothing else of it."""

    def __init__(self, request: bytes, expected: int, deliveries: Deliveries) -> None:
        super().__init__(request)
        self.expected = expected
        self.deliveries = deliveries
        self.received = 0
        self.dropped = False
        self.complete = asyncio.get_running_loop().create_future()
        """Done when ``expected`` events are read, or the feed dropped the client or ended."""

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.tail + data if self.tail else data
        end = buf.rfind(b"\r\n\r\n")  # the end of the last whole message
        if end < 0:
            self.tail = buf
            return
        self.tail = buf[end + 4 :]
        stamps, ingested, latency = (
            self.deliveries.stamps,
            self.deliveries.ingested,
            self.deliveries.latency,
        )
        start = 0
        while (i := buf.find(INGESTED_AT, start, end)) >= 0:
            i += len(INGESTED_AT)
            start = buf.find(b'"', i, end)
            at = stamps[buf[i:start]]
            ingested.append(at)
            latency.append(now - at)
            self.received += 1
        if b"event: dropped\r\n" in buf:
            self.dropped = True
        if (self.dropped or self.received >= self.expected) and not self.complete.done():
            self.complete.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.complete.done():
            self.complete.set_result(None)


async def feed_clients(port: int, room: str, n: int, events: int, warmup_s: float) -> None:
    """Log in, connect ``n`` SSE clients to the room's feed, say ``ready`` once the api counts
    them all; when told ``done`` (stdin), wait for each to read ``events`` events and print
    one JSON line: ingest → client latency over the events ingested ``warmup_s`` after the
    first one, every delivery."""
    import httpx

    deliveries = Deliveries()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        deadline = time.monotonic() + FEED_READY_S
        while True:  # the api role starts with the others: wait for it to listen
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/health")).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the api did not answer in {FEED_READY_S:.0f} s")
            await asyncio.sleep(0.1)
        login = await http.post(
            "/auth/login", json={"username": FEED_USER, "password": FEED_PASSWORD}
        )
        login.raise_for_status()
        request = (
            f"GET /streams/{room}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {login.json()['token']}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        loop = asyncio.get_running_loop()
        clients: list[FeedClient] = []
        for i in range(0, n, FEED_WAVE):
            wave = await asyncio.gather(
                *(
                    loop.create_connection(
                        lambda: FeedClient(request, events, deliveries), "127.0.0.1", port
                    )
                    for _ in range(min(FEED_WAVE, n - i))
                )
            )
            clients.extend(protocol for _, protocol in wave)
        await wait_metric(http, "ttlp_api_feed_clients", n, FEED_READY_S)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(client.complete for client in clients)), FEED_CATCH_UP_S
            )
        for client in clients:
            client.close()
    since = min(deliveries.ingested, default=0.0) + warmup_s
    measured = [
        latency * 1000
        for at, latency in zip(deliveries.ingested, deliveries.latency, strict=True)
        if at >= since
    ]
    result = {
        "clients": n,
        "expected": n * events,
        "delivered": len(deliveries.latency),
        "measured": len(measured),
        "p50_ms": pct(measured, 0.50),
        "p99_ms": pct(measured, 0.99),
        "max_ms": max(measured, default=float("nan")),
        "dropped_clients": sum(client.dropped for client in clients),
        "short_clients": sum(client.received < events for client in clients),
    }
    print(json.dumps(result), flush=True)


@dataclass
class FeedProcess:
    """The server's side of ``feed_clients``: the process, its ``ready``, its result."""

    port: int
    room: str
    clients: int
    events: int
    warmup_s: float
    proc: asyncio.subprocess.Process | None = None
    result: dict[str, Any] = field(default_factory=dict)

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            "--sse-client",
            f"{self.port},{self.room},{self.clients},{self.events},{self.warmup_s}",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if line.strip() != b"ready":
            await self.proc.wait()
            raise RuntimeError(f"the SSE client process exited with {self.proc.returncode}")

    async def finish(self) -> None:
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"done\n")
        await self.proc.stdin.drain()
        out, _ = await self.proc.communicate()
        if self.proc.returncode != 0:
            raise RuntimeError(f"the SSE client process exited with {self.proc.returncode}")
        self.result = json.loads(out.decode().strip().splitlines()[-1])

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


# -- one run, in a process of its own ------------------------------------------------------
RESULT: Final = "RESULT "
"""The prefix of a run process's last line: its figures, as JSON (the lines before it are
printed by the parent as they come)."""


def start_up() -> None:
    """What `ttlp run` does before its roles start: import them, build the protobuf
    descriptors (normalize builds them when it starts: ~0.7 s that would land in the run's
    figures), tune the garbage collector."""
    from ttlp.runtime import tune_gc
    from ttlp.tiktok.decode import prepare

    for name in BENCH_ROLES:
        ROLES[name].load()
    prepare()
    tune_gc()


def print_profile(profiler: cProfile.Profile, kind: str, out_dir: str | None) -> None:
    print(
        f"-- cProfile of a protobuf throughput run on {LABELS[kind]} (one more run after the "
        "measured ones, slower under the profiler; not in the table). It sees the event-loop "
        "thread only: aiosqlite runs SQLite in a thread of its own, Redis and PostgreSQL work "
        "in their own processes."
    )
    for order in ("tottime", "cumtime"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(PROFILE_TOP)
        body = text.getvalue()
        for prefix in sorted({p for p in sys.path if p}, key=len, reverse=True):
            body = body.replace(f"{prefix}/", "")  # ttlp/roles/store.py, not the whole path
        print(f"\ntop {PROFILE_TOP} by {order}:\n{body[body.find('   ncalls') :].rstrip()}\n")
    if out_dir:
        path = Path(out_dir) / f"pipeline-{kind}-protobuf.prof"
        path.parent.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(path)
        print(f"profile written to {path}")


async def one_run(spec: dict[str, Any]) -> dict[str, Any]:
    """``run_pipeline`` as ``spec`` says (with SSE clients, under cProfile); → its figures."""
    settings = Settings.from_env(spec["env"])
    frames, clients = spec["frames"], spec["sse_clients"]
    feed = FeedProcess(settings.api.port, spec["room"], clients, frames, spec["warmup_s"])
    result: dict[str, Any] = {}

    async def after() -> None:  # the last event committed, the roles still running
        if clients:
            await feed.finish()
            result["sse"] = feed.result
        result["rss_final_mb"] = rss_now_mb() + workers_mb("VmRSS")
        result["workers_peak_mb"] = workers_mb("VmHWM")

    profiler = cProfile.Profile() if spec["profile"] else None
    if profiler is not None:
        profiler.enable()
    try:
        elapsed, lat = await run_pipeline(
            settings,
            frames,
            spec["rate"],
            spec["encoding"],
            warmup_s=spec["warmup_s"],
            before=feed.start if clients else None,
            after=after,
        )
    finally:
        feed.kill()
    if profiler is not None:
        profiler.disable()
        print_profile(profiler, spec["kind"], spec["profile_out"])
    result.update(
        events_s=frames / elapsed,
        elapsed_s=elapsed,
        p50_ms=lat.pct(0.50),
        p99_ms=lat.pct(0.99),
        rss_peak_mb=rss_peak_mb() + result.pop("workers_peak_mb"),
    )
    return result


async def soak_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Every role and the mock looping at ``rate`` frames/s for ``soak_s`` seconds; a line
    every ``soak_interval`` seconds: events committed, ingest → committed p50/p99 of that
    interval, RSS now and peak; → the intervals."""
    seconds, every = spec["soak_s"], spec["soak_interval"]
    intervals: list[dict[str, float]] = []
    latencies = Latencies(target=1)
    async with every_role(Settings.from_env(spec["env"]), latencies) as pipeline:
        producer = pipeline.publish(
            MockProvider(fixture_frames("protobuf"), rate=spec["rate"], loop=True)
        )
        # The clock starts at the first event committed: the roles' start (the normalizer's
        # descriptors, the api's app and schema, the groups) is not the soak's, and on a
        # loaded machine it took the whole first interval.
        await committed_all(latencies, pipeline.tasks, producer)
        latencies.take()
        started = time.monotonic()
        committed = latencies.committed
        for tick in range(1, math.ceil(seconds / every) + 1):
            timeout = max(0.0, started + min(tick * every, seconds) - time.monotonic())
            done, _ = await asyncio.wait(
                pipeline.tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                task.result()
            if done:
                raise RuntimeError("a role ended during the soak")
            window = latencies.take()
            row = {
                "elapsed_s": time.monotonic() - started,
                "committed": latencies.committed - committed,
                "p50_ms": window.pct(0.50),
                "p99_ms": window.pct(0.99),
                "rss_mb": rss_now_mb() + workers_mb("VmRSS"),
                "peak_mb": rss_peak_mb() + workers_mb("VmHWM"),
            }
            committed = latencies.committed
            intervals.append(row)
            print(
                f"  {row['elapsed_s']:6.0f} s: {row['committed']:>8,} events committed, "
                f"ingest → committed p50 {row['p50_ms']:7.1f} ms, p99 {row['p99_ms']:7.1f} ms; "
                f"RSS {row['rss_mb']:6.1f} MB, peak {row['peak_mb']:6.1f} MB",
                flush=True,
            )
    return {"intervals": intervals}


def run_child() -> None:
    """``--run``: one run, as the JSON spec on stdin says; its figures on the last line."""
    from ttlp import log

    spec = json.loads(sys.stdin.read())
    log.configure("warn", "json")
    start_up()
    result = asyncio.run(soak_run(spec) if spec.get("soak_s") else one_run(spec))
    print(RESULT + json.dumps(result), flush=True)


async def in_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``spec`` in a fresh process (this script with ``--run``; the spec, secrets and all,
    through its stdin), printing its lines as they come; → its figures."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), "--run", stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    result: dict[str, Any] | None = None
    try:
        proc.stdin.write(json.dumps(spec).encode())
        await proc.stdin.drain()
        proc.stdin.close()
        async for raw in proc.stdout:
            line = raw.decode()
            if line.startswith(RESULT):
                result = json.loads(line[len(RESULT) :])
            else:
                print(line, end="", flush=True)
    except BaseException:  # interrupted: the run must not outlive us
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    finally:
        await proc.wait()
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"a run process exited with {proc.returncode}")
    return result


# -- the parent: each backend, each run in a process of its own, then the table ------------
@dataclass(frozen=True)
class Options:
    frames: int = 100_000
    latency_rate: float = 1000.0
    latency_seconds: float = 10.0
    sse_clients: int = 100
    profile: bool = False
    profile_out: str | None = None
    soak_s: float | None = None
    rate: float = 1000.0
    soak_interval: float = 60.0
    processes: int = 1
    """``TTLP_WORKERS`` of the Redis runs."""


def met(ok: bool) -> str:
    return "met" if ok else "missed"


def latency_line(p50: float, p99: float, target_ms: float) -> str:
    return (
        f"p50 {p50:6.1f} ms, p99 {p99:6.1f} ms (target p99 ≤ {target_ms:.0f} ms: "
        f"{met(p99 <= target_ms)})"
    )


async def machine_limits(kind: str, settings: Settings, result: dict[str, Any]) -> None:
    """Redis XADD and the database's batched INSERT rate, into ``result`` and printed."""
    if kind == "redis-pg":
        from ttlp.db.engine import normalize_database_url

        result["xadd"] = await redis_xadd_rate()
        print(f"machine: Redis XADD (pipelined)        {result['xadd']:>12,.0f} entries/s")
        url = normalize_database_url(settings.db.url, settings.data_path)
        result["db"] = "PostgreSQL"
    else:
        url = f"sqlite+aiosqlite:///{settings.data_path / 'bench-insert.db'}"
        result["db"] = "SQLite"
    result["insert"] = await insert_rate(url)
    print(f"machine: {result['db'] + ' batched INSERT':<30}{result['insert']:>12,.0f} rows/s")


async def measure(kind: str, opts: Options) -> dict[str, Any]:
    """Runs 0-3 of the module docstring on one backend; → its figures for the table."""
    result: dict[str, Any] = {"kind": kind}
    async with backend(kind, opts.processes) as (env, name):
        print(f"\n== {name}", flush=True)
        settings = Settings.from_env(env)
        await machine_limits(kind, settings, result)
        room = await add_feed_account(settings)
        spec: dict[str, Any] = {
            "env": env,
            "kind": kind,
            "room": room,
            "frames": opts.frames,
            "rate": 0.0,
            "encoding": "protobuf",
            "warmup_s": 0.0,
            "sse_clients": 0,
            "profile": False,
            "profile_out": None,
        }
        peaks: list[float] = []
        for encoding in ("protobuf", "json"):
            run = await in_process({**spec, "encoding": encoding})
            rate = result[f"events_s_{encoding}"] = run["events_s"]
            ratios = f"{rate / result['insert']:.0%} of the {result['db']} INSERT rate"
            if "xadd" in result:
                ratios += f", {rate / result['xadd']:.0%} of XADD"
            peaks.append(run["rss_peak_mb"])
            print(
                f"throughput ({encoding} frames): {opts.frames:,} frames → committed rows in "
                f"{run['elapsed_s']:.2f} s = {rate:,.0f} events/s ({ratios}; target "
                f"≥ {TARGET_EVENTS_S:,.0f}: {met(rate >= TARGET_EVENTS_S)})\n"
                f"  latency ingest → committed at full speed (includes queueing): "
                f"p50 {run['p50_ms']:,.0f} ms, p99 {run['p99_ms']:,.0f} ms; peak RSS "
                f"{run['rss_peak_mb']:,.0f} MB",
                flush=True,
            )
        n = int(opts.latency_rate * (WARMUP_S + opts.latency_seconds))
        fixed = {**spec, "frames": n, "rate": opts.latency_rate, "warmup_s": WARMUP_S}
        print(
            f"latency at {opts.latency_rate:,.0f} protobuf frames/s for {opts.latency_seconds:g} "
            f"s after a {WARMUP_S:g} s warm-up (ingestedAt has ms precision: up to 1 ms high):",
            flush=True,
        )
        run = await in_process(fixed)
        result["committed_p50_ms"], result["committed_p99_ms"] = run["p50_ms"], run["p99_ms"]
        peaks.append(run["rss_peak_mb"])
        print(
            f"  {'ingest → committed, no SSE client:':<46}"
            f"{latency_line(run['p50_ms'], run['p99_ms'], TARGET_COMMITTED_P99_MS)}; peak RSS "
            f"{run['rss_peak_mb']:,.0f} MB",
            flush=True,
        )
        if opts.sse_clients:
            run = await in_process({**fixed, "sse_clients": opts.sse_clients})
            sse = result["sse"] = run["sse"]
            result["sse_committed_p50_ms"] = run["p50_ms"]
            result["sse_committed_p99_ms"] = run["p99_ms"]
            result["sse_client_p50_ms"], result["sse_client_p99_ms"] = sse["p50_ms"], sse["p99_ms"]
            peaks.append(run["rss_peak_mb"])
            clients = f"{opts.sse_clients} SSE clients"
            print(
                f"  {f'ingest → committed, {clients} reading:':<46}"
                f"{latency_line(run['p50_ms'], run['p99_ms'], TARGET_COMMITTED_P99_MS)}; peak "
                f"RSS {run['rss_peak_mb']:,.0f} MB\n"
                f"  {f'ingest → SSE client, {clients}:':<46}"
                f"{latency_line(sse['p50_ms'], sse['p99_ms'], TARGET_SSE_P99_MS)}; max "
                f"{sse['max_ms']:,.1f} ms; {sse['delivered']:,} of {sse['expected']:,} "
                f"deliveries read, {sse['measured']:,} after the warm-up; clients dropped by the "
                f"feed {sse['dropped_clients']}, short of events {sse['short_clients']}",
                flush=True,
            )
        result["rss_peak_mb"], result["rss_final_mb"] = max(peaks), run["rss_final_mb"]
        print(
            f"RSS: the highest peak (VmHWM) of the runs {max(peaks):,.0f} MB, at the end of the "
            f"last run (VmRSS, roles running) {run['rss_final_mb']:,.0f} MB (target < "
            f"{TARGET_RSS_MB:.0f} MB: {met(max(peaks) < TARGET_RSS_MB)})",
            flush=True,
        )
        if opts.profile:
            run = await in_process({**spec, "profile": True, "profile_out": opts.profile_out})
            print(f"(under the profiler: {run['events_s']:,.0f} events/s)", flush=True)
    return result


async def soak(kind: str, opts: Options) -> dict[str, Any]:
    async with backend(kind, opts.processes) as (env, name):
        print(
            f"\n== soak: {name}, {opts.rate:,.0f} protobuf frames/s for {opts.soak_s:g} s, "
            f"every role running; a line every {opts.soak_interval:g} s",
            flush=True,
        )
        await add_feed_account(Settings.from_env(env))
        spec = {
            "env": env,
            "kind": kind,
            "soak_s": opts.soak_s,
            "soak_interval": opts.soak_interval,
            "rate": opts.rate,
        }
        intervals = (await in_process(spec))["intervals"]
    first, last = intervals[0], intervals[-1]
    print(
        f"  RSS at the first interval {first['rss_mb']:.1f} MB, at the last {last['rss_mb']:.1f} "
        f"MB: {last['rss_mb'] - first['rss_mb']:+.1f} MB; peak {last['peak_mb']:.1f} MB "
        f"(target < {TARGET_RSS_MB:.0f} MB: {met(last['peak_mb'] < TARGET_RSS_MB)})",
        flush=True,
    )
    return {"kind": kind, "intervals": intervals}


Row = tuple[str, str, Callable[[dict[str, Any]], Any], str, Callable[[float], bool] | None]
"""A table row: label, target, its value in a backend's figures, the value's format, the
target's test."""


def table(rows: list[list[str]]) -> str:
    """Rows of cells as a fixed-width Markdown table (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])


def render(results: dict[str, dict[str, Any] | None], rows: list[Row], processes: int) -> str:
    """One column per backend; a cell is the value, with "met" / "missed" where there is a
    target, "–" where the backend has no such figure, "failed" where its runs failed."""

    def cell(result: dict[str, Any] | None, row: Row) -> str:
        _, _, value, fmt, ok = row
        if result is None:
            return "failed"
        try:
            v = value(result)
        except (KeyError, TypeError):
            return "–"
        if isinstance(v, str):
            return v
        if v is None or math.isnan(v):
            return "–"
        return f"{v:{fmt}} {met(ok(v))}" if ok else f"{v:{fmt}}"

    header = ["", "target", *(label(kind, processes) for kind in results)]
    body = [[row[0], row[1], *(cell(r, row) for r in results.values())] for row in rows]
    return table([header, *body])


def summary(results: dict[str, dict[str, Any] | None], opts: Options) -> str:
    def ratio(key: str, limit: str) -> Callable[[dict[str, Any]], float]:
        return lambda r: float(r[key] / r[limit])

    def reached(value: float) -> bool:
        return value >= TARGET_EVENTS_S

    def throughput(encoding: str, name: str) -> list[Row]:
        key = f"events_s_{encoding}"
        target = f"≥ {TARGET_EVENTS_S:,.0f}"
        return [
            (f"throughput {name} frames, events/s", target, itemgetter(key), ",.0f", reached),
            (f"  {name} ÷ batched INSERT rate", "", ratio(key, "insert"), ".0%", None),
            (f"  {name} ÷ Redis XADD rate", "", ratio(key, "xadd"), ".0%", None),
        ]

    def latency(label: str, key: str, target: float) -> list[Row]:
        """Rows of ``{key}_p50_ms`` and ``{key}_p99_ms``, the latter with its target."""
        return [
            (
                f"{label.format(q)}, ms",
                f"≤ {target:.0f}" if q == "p99" else "",
                itemgetter(f"{key}_{q}_ms"),
                ",.1f",
                (lambda v: v <= target) if q == "p99" else None,
            )
            for q in ("p50", "p99")
        ]

    def delivered(r: dict[str, Any]) -> str:
        return f"{r['sse']['delivered']:,} / {r['sse']['expected']:,}"

    def under_rss(value: float) -> bool:
        return value < TARGET_RSS_MB

    rss = f"< {TARGET_RSS_MB:.0f}"
    rate = f"{opts.latency_rate:,.0f} frames/s"
    with_sse = f"{rate}, {opts.sse_clients} SSE clients"
    rows: list[Row] = [
        ("machine: Redis XADD, entries/s", "", itemgetter("xadd"), ",.0f", None),
        (
            "machine: batched INSERT, rows/s",
            "",
            lambda r: f"{r['insert']:,.0f} ({r['db']})",
            "",
            None,
        ),
        *throughput("protobuf", "protobuf"),
        *throughput("json", "JSON"),
        *latency("ingest → committed {} at " + rate, "committed", TARGET_COMMITTED_P99_MS),
        *latency("ingest → committed {} at " + with_sse, "sse_committed", TARGET_COMMITTED_P99_MS),
        *latency("ingest → SSE client {} at " + with_sse, "sse_client", TARGET_SSE_P99_MS),
        ("SSE deliveries read / expected", "", delivered, "", None),
        ("peak RSS (VmHWM), MB", rss, itemgetter("rss_peak_mb"), ",.0f", under_rss),
        (
            "final RSS (VmRSS, roles running), MB",
            rss,
            itemgetter("rss_final_mb"),
            ",.0f",
            under_rss,
        ),
    ]
    return render(results, rows, opts.processes)


def soak_summary(results: dict[str, dict[str, Any] | None], processes: int) -> str:
    def first(r: dict[str, Any]) -> float:
        return float(r["intervals"][0]["rss_mb"])

    def last(r: dict[str, Any]) -> float:
        return float(r["intervals"][-1]["rss_mb"])

    rows: list[Row] = [
        ("RSS at the first interval, MB", "", first, ".1f", None),
        ("RSS at the last interval, MB", "", last, ".1f", None),
        ("RSS growth, MB", "flat", lambda r: last(r) - first(r), "+.1f", None),
        (
            "peak RSS (VmHWM), MB",
            f"< {TARGET_RSS_MB:.0f}",
            lambda r: r["intervals"][-1]["peak_mb"],
            ".1f",
            lambda v: v < TARGET_RSS_MB,
        ),
        (
            "worst interval's p99 ingest → committed, ms",
            f"≤ {TARGET_COMMITTED_P99_MS:.0f}",
            lambda r: max(i["p99_ms"] for i in r["intervals"]),
            ".1f",
            lambda v: v <= TARGET_COMMITTED_P99_MS,
        ),
    ]
    return render(results, rows, processes)


def main(
    frames: int = 100_000,
    backends: Sequence[str] = KINDS,
    latency_rate: float = 1000.0,
    latency_seconds: float = 10.0,
    *,
    sse_clients: int = 100,
    profile: bool = False,
    profile_out: str | None = None,
    soak_s: float | None = None,
    rate: float = 1000.0,
    soak_interval: float = 60.0,
    processes: int = 1,
) -> int:
    """Measure each backend, each run in a process of its own, then print the table;
    → the exit status (1 when a backend's runs failed)."""
    from ttlp import log

    opts = Options(
        frames,
        latency_rate,
        latency_seconds,
        sse_clients,
        profile,
        profile_out,
        soak_s,
        rate,
        soak_interval,
        processes,
    )
    log.configure("warn", "json")
    what = f"soak at {rate:,.0f} frames/s for {soak_s:g} s" if soak_s else f"{frames:,} frames"
    print(
        f"ttlp pipeline benchmark: {what}, Python {sys.version.split()[0]}, {os.cpu_count()} "
        f"CPUs; roles {', '.join(BENCH_ROLES)} (the mock provider publishes as ingest would); "
        "each run in a fresh process of its own, started up (imports, protobuf descriptors) "
        "before it is timed",
        flush=True,
    )
    if processes > 1 and "redis-pg" in backends:
        print(
            f"on Redis TTLP_WORKERS={processes}: normalize runs in {processes - 1} worker "
            "process(es) that the run starts as `ttlp run` does; RSS figures are summed over the "
            "processes, and --profile sees the first process only",
            flush=True,
        )
    results: dict[str, dict[str, Any] | None] = {}
    for kind in backends:
        try:
            results[kind] = asyncio.run(soak(kind, opts) if soak_s else measure(kind, opts))
        except Exception:
            traceback.print_exc()
            print(f"the {label(kind, processes)} runs failed", flush=True)
            results[kind] = None
    if soak_s:
        print(f"\n== Soak summary ({rate:,.0f} frames/s for {soak_s:g} s)")
        print(soak_summary(results, processes), flush=True)
    else:
        print("\n== Summary (targets: DESIGN §12, issue 17)")
        print(summary(results, opts), flush=True)
    return 0 if all(results.values()) else 1


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ttlp pipeline benchmark (DESIGN §12)")
    parser.add_argument("-n", "--frames", type=int, default=100_000)
    parser.add_argument("--backend", choices=["redis-pg", "embedded", "both"], default="both")
    parser.add_argument("--latency-rate", type=float, default=1000.0)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument(
        "--sse-clients", type=int, default=100, help="live-feed clients in the latency run"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile's top entries of a protobuf run"
    )
    parser.add_argument("--profile-out", metavar="DIR", help="also write the .prof files here")
    parser.add_argument(
        "--soak", type=float, metavar="SECONDS", help="only a soak this long, at --rate"
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="the soak's frames/s")
    parser.add_argument("--soak-interval", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="TTLP_WORKERS of the Redis runs: from 2, normalize in N - 1 worker processes",
    )
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sse-client", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        run_child()
        return
    if args.sse_client:
        port, room, n, events, warmup = args.sse_client.split(",")
        asyncio.run(feed_clients(int(port), room, int(n), int(events), float(warmup)))
        return
    kinds = list(KINDS) if args.backend == "both" else [args.backend]
    sys.exit(
        main(
            args.frames,
            kinds,
            args.latency_rate,
            args.latency_seconds,
            sse_clients=args.sse_clients,
            profile=args.profile,
            profile_out=args.profile_out,
            soak_s=args.soak,
            rate=args.rate,
            soak_interval=args.soak_interval,
            processes=args.workers,
        )
    )


if __name__ == "__main__":
    cli()
