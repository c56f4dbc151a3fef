"""Pipeline benchmark (DESIGN §12): mock provider → every role (normalize, store, api, rules,
forward) in one process, as ``ttlp run --roles all`` runs them.

For each backend (Redis + PostgreSQL, and the embedded in-process bus + SQLite):
  1. throughput: N frames published by the mock provider as fast as the consumers keep up;
     events/s from the first publish to the last committed row, latency ingest → committed
     (p50/p99; this includes the queueing a full-speed producer causes), peak RSS;
  2. latency: the mock provider at a fixed rate (1,000 frames/s) for a few seconds; p50/p99
     ingest → committed (target p99 ≤ 250 ms).
It also measures the machine's own limits in the same run: Redis XADD rate (pipelined, frames
of the real size) and batched insert rate of PostgreSQL / SQLite (rows like the events table).

    python benchmarks/pipeline.py                  # both backends, 100,000 frames
    python benchmarks/pipeline.py --backend embedded -n 20000
    ttlp bench ...                                 # the same, from a checkout

Redis and PostgreSQL default to 127.0.0.1 (TTLP_BENCH_REDIS_URL / TTLP_BENCH_DATABASE_URL);
a scratch database and a unique key prefix are created and removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from machine import (
    insert_rate,
    redis_url,
    redis_xadd_rate,
    rss_mb,
    scratch_postgres,
    scratch_prefix,
)

from ttlp.contracts.events import UnifiedEvent
from ttlp.runtime import ROLES, Context, open_context
from ttlp.settings import Settings
from ttlp.tiktok.providers.mock import MockProvider, bundled_fixture, load_fixture
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.supervisor import StreamerSupervisor

BENCH_ROLES = ("normalize", "store", "api", "rules", "forward")
"""Every role of ``--roles all`` but ingest, whose work the benchmark's mock provider does."""


@dataclass
class Latencies:
    samples: list[float] = field(default_factory=list)
    committed: int = 0
    last_commit: float = 0.0

    def pct(self, q: float) -> float:
        if not self.samples:
            return float("nan")
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _instrument(ctx: Context, latencies: Latencies) -> None:
    """Record ingest → committed latency of every event the store commits."""
    store = ctx.store
    write = store.write_events

    async def timed(events: Sequence[UnifiedEvent]) -> Any:
        result = await write(events)
        now = time.time()
        for event in events:
            if isinstance(event.ingested_at, str):
                latencies.samples.append(
                    now - datetime.fromisoformat(event.ingested_at).timestamp()
                )
        latencies.committed += len(events)
        latencies.last_commit = time.perf_counter()
        return result

    store.write_events = timed  # type: ignore[method-assign]


def _api_env() -> dict[str, str]:
    """The api role runs too (its feed tails ttlc:events), on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return {"API_HOST": "127.0.0.1", "API_PORT": str(port), "JWT_SECRET": uuid.uuid4().hex * 2}


@contextlib.asynccontextmanager
async def backend(kind: str) -> AsyncIterator[tuple[Settings, str]]:
    """Settings for a scratch pipeline on ``kind``; yields (settings, label)."""
    if kind == "embedded":
        with tempfile.TemporaryDirectory() as tmp:
            yield (
                Settings.from_env({"TTLP_DATA_DIR": tmp, "LOG_LEVEL": "warn", **_api_env()}),
                "in-process bus + SQLite",
            )
        return
    async with scratch_postgres("pipeline") as db_url, scratch_prefix("pipeline") as prefix:
        env = {
            "REDIS_URL": redis_url(),
            "DATABASE_URL": db_url,
            "LOG_LEVEL": "warn",
            "REDIS_CONSUMER_GROUP_PREFIX": prefix,
            "CONSUMER_NAME": "bench",
            **_api_env(),
        }
        yield Settings.from_env(env), "Redis Streams + PostgreSQL"


def fixture_path(encoding: str) -> Path:
    """The bundled session as JSON objects, or as the providers deliver it (protobuf bytes)."""
    json_fixture = bundled_fixture()
    if encoding == "json":
        return json_fixture
    return json_fixture.with_name("raw-frames-protobuf.ndjson")


async def run_pipeline(
    settings: Settings, frames: int, rate: float, encoding: str = "protobuf"
) -> tuple[float, Latencies]:
    """Run every role in-process until ``frames`` events are committed; → (seconds, latencies).

    The mock provider publishes directly (what the ingest role would do); the other roles run
    as in ``ttlp run``: the api tails ttlc:events for its live feed, rules and forward read
    every event in their own consumer groups (no rules or targets configured: their cost is
    reading, decoding and acknowledging every event)."""
    lines = load_fixture(fixture_path(encoding))
    lines = [line for line in lines if line.frame is not None]
    lines = (lines * (frames // len(lines) + 1))[:frames]
    latencies = Latencies()
    async with open_context(settings, need_db=True) as ctx:
        _instrument(ctx, latencies)
        stop = asyncio.Event()
        roles = [asyncio.create_task(ROLES[name].load()(ctx, stop)) for name in BENCH_ROLES]
        provider = MockProvider(lines, rate=rate, loop=False, restamp=True)
        publisher = FramePublisher(ctx.bus, ctx.keys.raw, paced=True, downstream=(ctx.keys.events,))
        started = time.perf_counter()
        producer = asyncio.create_task(StreamerSupervisor(provider, "mock", publisher).run(stop))
        while latencies.committed < frames:
            await asyncio.sleep(0.05)
            for task in roles:
                if task.done():
                    task.result()
        elapsed = latencies.last_commit - started
        stop.set()
        await asyncio.gather(producer, *roles)
    return elapsed, latencies


async def bench(kind: str, frames: int, latency_rate: float, latency_s: float) -> None:
    async with backend(kind) as (settings, label):
        print(f"\n== {label}", flush=True)
        if kind == "redis-pg":
            xadd = await redis_xadd_rate()
            print(f"machine: Redis XADD (pipelined)        {xadd:>12,.0f} entries/s")
            from ttlp.db.engine import normalize_database_url

            url = normalize_database_url(settings.db.url, settings.data_path)
            print(
                f"machine: PostgreSQL batched INSERT      {await insert_rate(url):>12,.0f} rows/s"
            )
        else:
            url = f"sqlite+aiosqlite:///{settings.data_path / 'bench-insert.db'}"
            print(
                f"machine: SQLite batched INSERT          {await insert_rate(url):>12,.0f} rows/s"
            )
        for encoding in ("protobuf", "json"):
            elapsed, lat = await run_pipeline(settings, frames, rate=0, encoding=encoding)
            print(
                f"throughput ({encoding} frames): {frames:,} frames → committed rows in "
                f"{elapsed:.2f} s = {frames / elapsed:,.0f} events/s "
                f"(target ≥ 10,000 on Redis + PostgreSQL)"
            )
            print(
                f"  latency ingest → committed at full speed (includes queueing): "
                f"p50 {lat.pct(0.50):,.0f} ms, p99 {lat.pct(0.99):,.0f} ms"
            )
        print(f"  peak RSS so far {rss_mb():,.0f} MB (target < 300 MB)")
        n = int(latency_rate * latency_s)
        _, lat = await run_pipeline(settings, n, rate=latency_rate)
        print(
            f"latency at {latency_rate:,.0f} protobuf frames/s for {latency_s:.0f} s: "
            f"p50 {lat.pct(0.50):.1f} ms, p99 {lat.pct(0.99):.1f} ms (target p99 ≤ 250 ms)"
        )


def main(
    frames: int = 100_000,
    backends: Sequence[str] = ("redis-pg", "embedded"),
    latency_rate: float = 1000.0,
    latency_seconds: float = 10.0,
) -> None:
    from ttlp import log
    from ttlp.runtime import tune_gc

    log.configure("warn", "json")
    tune_gc()  # as `ttlp run` does
    print(
        f"ttlp pipeline benchmark: {frames:,} frames, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs; roles {', '.join(BENCH_ROLES)} (the mock provider publishes "
        "as ingest would)"
    )
    for kind in backends:
        asyncio.run(bench(kind, frames, latency_rate, latency_seconds))


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ttlp pipeline benchmark (DESIGN §12)")
    parser.add_argument("-n", "--frames", type=int, default=100_000)
    parser.add_argument("--backend", choices=["redis-pg", "embedded", "both"], default="both")
    parser.add_argument("--latency-rate", type=float, default=1000.0)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    kinds = ["redis-pg", "embedded"] if args.backend == "both" else [args.backend]
    main(args.frames, kinds, args.latency_rate, args.latency_seconds)


if __name__ == "__main__":
    cli()
