"""What the store's refusal of erased users costs per batch (issue 14): ``Store.write_events``
on 500-event batches, as the storage consumer writes them at 10,000 events/s.

    .venv/bin/python benchmarks/gdpr.py [--batches 60] [--backend sqlite|postgresql|both]

Fresh events (every batch a new session, 2,000 distinct users), with ``gdpr_erasures`` empty
and then holding 100 erasures (the hashes loaded: every event's user is looked up, hashed once
per user and the verdict remembered). The check's two parts are timed where they run, so the
figures hold on a busy machine too: before the INSERT (``ErasedSubjects.keep``, no I/O) and in
the write transaction after it (``refresh``: one ``SELECT max(id) FROM gdpr_erasures``, and the
hashes read again when it moved). Prints the medians per batch beside the whole write's.

PostgreSQL runs in a scratch database (TTLP_BENCH_DATABASE_URL, default loopback), SQLite in a
temporary file.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from machine import scratch_postgres
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ttlp.contracts.events import ChatEvent, ChatPayload, EventUser, UnifiedEvent
from ttlp.db import tables
from ttlp.db.engine import create_engine, normalize_database_url
from ttlp.db.migrate import upgrade
from ttlp.db.store import Store

BATCH = 500
USERS = 2_000
STREAM = "7400000000000000001"
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def batch(n: int) -> list[UnifiedEvent]:
    session = str(uuid.uuid4())
    out: list[UnifiedEvent] = []
    for i in range(BATCH):
        user = (n * BATCH + i) % USERS
        at = (T0 + timedelta(milliseconds=n * BATCH + i)).isoformat().replace("+00:00", "Z")
        out.append(
            ChatEvent(
                schema_version="1",
                event_id=hashlib.sha256(f"{session}:{i}".encode()).hexdigest(),
                stream_id=STREAM,
                session_id=session,
                timestamp=at,
                ingested_at=at,
                source="live",
                seq_no=n * BATCH + i,
                user=EventUser(user_id=str(7_000_000_000_000_000_000 + user), unique_id=f"u{user}"),
                trigger_id=1,
                payload=ChatPayload(message="hello there 👋"),
            )
        )
    return out


class Timed:
    """The store's ``ErasedSubjects`` with its two calls timed (seconds, one entry a batch)."""

    def __init__(self, store: Store) -> None:
        erased = store.erased
        self.keep_s: list[float] = []
        self.refresh_s: list[float] = []
        keep, refresh = erased.keep, erased.refresh

        def timed_keep(events: Sequence[UnifiedEvent]) -> Sequence[UnifiedEvent]:
            began = time.perf_counter()
            try:
                return keep(events)
            finally:
                self.keep_s.append(time.perf_counter() - began)

        async def timed_refresh(conn: AsyncConnection) -> bool:
            began = time.perf_counter()
            try:
                return await refresh(conn)
            finally:
                self.refresh_s.append(time.perf_counter() - began)

        erased.keep = timed_keep  # type: ignore[method-assign, assignment]
        erased.refresh = timed_refresh  # type: ignore[method-assign]


async def measure(store: Store, batches: int, start: int) -> tuple[float, float, float]:
    """Median seconds per batch: the whole write, the check before it, the check inside it."""
    await store.write_events(batch(start))  # warm up: statements, pool, the hashes
    timer = Timed(store)
    took = []
    for n in range(start + 1, start + 1 + batches):
        events = batch(n)
        began = time.perf_counter()
        await store.write_events(events)
        took.append(time.perf_counter() - began)
    median = statistics.median
    return median(took), median(timer.keep_s), median(timer.refresh_s)


async def erasures(engine: AsyncEngine, n: int) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "subject_hash": hashlib.sha256(f"someone {i}".encode()).hexdigest(),
            "requested_by": "bench",
            "erased_at": now,
            "rows": {"events": 1},
            "total_rows": 1,
        }
        for i in range(n)
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(tables.gdpr_erasures), rows)


async def run(url: str, batches: int) -> None:
    engine = create_engine(url)
    store = Store(engine, pseudonym_salt="bench salt")
    print(f"{engine.dialect.name}: {BATCH}-event batches ({USERS} users), median of {batches}")
    for label, erased in (("no erasure", 0), ("100 erasures", 100)):
        if erased:
            await erasures(engine, erased)
        write, keep, refresh = await measure(store, batches, 10 * batches * bool(erased))
        check = keep + refresh
        print(
            f"  {label:<13} write {write * 1e3:7.2f} ms; check {check * 1e6:6.0f} µs "
            f"({check / write:.1%}): before the INSERT {keep * 1e6:5.0f} µs, "
            f"in the transaction {refresh * 1e6:5.0f} µs"
        )
    await engine.dispose()


async def main(backends: list[str], batches: int) -> None:
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                url = normalize_database_url(f"sqlite:///{Path(tmp) / 'ttlp.db'}", Path(tmp))
                await asyncio.to_thread(upgrade, url)
                await run(url, batches)
        else:
            async with scratch_postgres("gdpr") as pg:
                await run(normalize_database_url(pg, Path.cwd()), batches)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    chosen = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    asyncio.run(main(chosen, args.batches))
