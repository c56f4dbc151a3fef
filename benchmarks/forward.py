"""Forwarder benchmark (issue 5): deliveries/s to a fast local receiver.

    .venv/bin/python benchmarks/forward.py                    # both databases, 5,000 events
    .venv/bin/python benchmarks/forward.py --events 20000 --targets 2 --backend postgresql

The receiver (a minimal keep-alive HTTP/1.1 server answering 200 at once) runs in a process of
its own so it does not share this process's core. This process runs the forwarder as the
forward role does: the consume loop's handler writes the delivery rows (measured alone first:
"enqueue"), and the per-target workers (FORWARD_CONCURRENCY requests in flight each) send
them, signed, through the SSRF-checked outbound client; the clock stops when every row is
``delivered`` in the table. The bus is the in-process one (its cost is not the subject);
PostgreSQL runs in a scratch database (TTLP_BENCH_DATABASE_URL, default loopback), SQLite in a
temporary file. The machine's own limit is printed first: plain httpx POSTs/s to the same
receiver at the same concurrency, without database or signing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
from machine import scratch_postgres
from sqlalchemy import func, select

from ttlp.bus.consumer import Consumer
from ttlp.bus.keys import GROUP_FORWARDER, Keys
from ttlp.bus.memory import MemoryBus
from ttlp.contracts.events import decode_event
from ttlp.db.engine import create_engine, normalize_database_url
from ttlp.db.migrate import upgrade
from ttlp.db.tables import forward_deliveries
from ttlp.forward.dispatcher import Forwarder
from ttlp.forward.store import ForwardStore, Target
from ttlp.settings import Settings

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "unified-events.ndjson"
REPLY = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


# -- the receiver (a child process) --------------------------------------------------------------
async def _serve(port_file: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(REPLY)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port = str(server.sockets[0].getsockname()[1])
    await asyncio.to_thread(Path(port_file).write_text, port)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def receiver() -> Iterator[int]:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "port")
        proc = subprocess.Popen([sys.executable, __file__, "--serve", port_file])
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(port_file) or not Path(port_file).read_text():
                if time.monotonic() > deadline:
                    raise RuntimeError("the receiver did not start")
                time.sleep(0.02)
            yield int(Path(port_file).read_text())
        finally:
            proc.terminate()
            proc.wait(10)


# -- databases -----------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def database(backend: str) -> AsyncIterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = normalize_database_url(f"sqlite:///{tmp}/bench.db", Path(tmp))
            await asyncio.to_thread(upgrade, url)
            yield url
        return
    async with scratch_postgres("fwd") as url:
        yield normalize_database_url(url, Path.cwd())


def event_bodies(n: int) -> list[str]:
    """``n`` distinct UnifiedEvents (the bundled session's, with new event ids)."""
    base = [msgspec.json.decode(line) for line in FIXTURE.read_text().splitlines() if line]
    out = []
    for i in range(n):
        data = dict(base[i % len(base)])
        data["eventId"] = f"{i:064x}"
        out.append(msgspec.json.encode(data).decode())
    decode_event(out[0])  # still valid
    return out


async def run_once(backend: str, events: int, targets: int, port: int) -> None:
    async with database(backend) as url:
        engine = create_engine(url)
        settings = Settings.from_env({"WEBHOOK_ALLOWLIST": "127.0.0.1", "TTLP_DATA_DIR": "/tmp"})
        bus = MemoryBus(maxlen=events * 2)
        keys = Keys("bench-")
        store = ForwardStore(engine)
        try:
            for t in range(targets):
                await store.create_target(
                    {
                        "name": f"t{t}",
                        "url": f"http://127.0.0.1:{port}/t{t}",
                        "secret": "s" * 32,
                        "event_types": [],
                        "scope": "*",
                        "enabled": True,
                        "created_by": "bench",
                    }
                )
            forwarder = Forwarder(
                store, bus, settings, dlq_stream=keys.dlq, events_stream=keys.events
            )
            consumer = Consumer(
                bus=bus,
                stream=keys.events,
                group=keys.group(GROUP_FORWARDER),
                name="bench",
                handler=forwarder.handle,
                dlq_stream=keys.dlq,
                stage="forwarder",
                settings=settings.bus,
            )
            await bus.publish_many(keys.events, [{"event": b} for b in event_bodies(events)])
            await forwarder.targets(force=True)  # workers start, nothing queued yet
            paused = {w: w.target for w in forwarder.workers.values()}
            for worker in paused:  # hold the workers so enqueue is measured alone
                worker.target = _disabled(worker.target)
            start = time.perf_counter()
            await consumer.run_until_idle()
            enqueue_s = time.perf_counter() - start
            total = events * targets
            for worker, target in paused.items():
                worker.target = target
                worker.wake()
            start = time.perf_counter()
            while True:
                async with engine.connect() as conn:
                    done = await conn.scalar(
                        select(func.count()).where(forward_deliveries.c.status == "delivered")
                    )
                if done >= total:
                    break
                await asyncio.sleep(0.05)
            deliver_s = time.perf_counter() - start
            await forwarder.close()
        finally:
            await engine.dispose()
    print(
        f"{backend:10} events={events} targets={targets} "
        f"concurrency={settings.forward.concurrency}: "
        f"enqueue {events / enqueue_s:,.0f} events/s ({total / enqueue_s:,.0f} rows/s); "
        f"delivery {total / deliver_s:,.0f} deliveries/s ({deliver_s:.2f} s for {total})"
    )


def _disabled(target: Target) -> Target:
    return dataclasses.replace(target, enabled=False)


async def httpx_rate(port: int, concurrency: int, n: int = 2000) -> float:
    """The machine's own limit: plain httpx POSTs/s to the same receiver, no database."""
    import httpx

    url = f"http://127.0.0.1:{port}/plain"
    body = event_bodies(1)[0].encode()
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient() as client:
        await client.post(url, content=body)

        async def one() -> None:
            async with gate:
                await client.post(url, content=body)

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - start)


async def main(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    with receiver() as port:
        concurrency = Settings.from_env({}).forward.concurrency
        rate = await httpx_rate(port, concurrency)
        print(f"machine: plain httpx {rate:,.0f} POSTs/s at concurrency {concurrency}")
        for backend in backends:
            await run_once(backend, args.events, args.targets, port)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        asyncio.run(_serve(sys.argv[2]))
        raise SystemExit
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--targets", type=int, default=1)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    asyncio.run(main(parser.parse_args()))
