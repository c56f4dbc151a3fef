"""Worker processes: ``ttlp run`` on Redis runs the normalizer in processes of its own.

One process runs the pipeline on one core: on Redis + PostgreSQL it filled that core while
Redis and PostgreSQL left ~0.65 of the second idle, and the normalizer was ~40 % of its work.
With ``TTLP_WORKERS=2`` the normalizer runs in a second process (a replica in its consumer
group, as separate deployments run it) and this process runs every other role:
``ttlp bench -n 30000 --backend redis-pg``, one and two processes taking turns on a 2-core
machine, 1,815 / 2,019 → 2,837 / 2,615 protobuf and 1,732 / 2,138 → 2,739 / 2,304 JSON
events/s. Keeping a normalizer here as well gained nothing (1,888 / 1,859 in a trial): the one
core stayed the limit.

To whoever runs it, ``ttlp run`` stays one process (DESIGN §12):

- Each worker is a role to the supervisor (``ttlp.runtime.supervise``): it starts with the other
  roles and is stopped with them (SIGTERM, then a second SIGTERM, its own "stop now", when the
  grace period runs out or a second signal reaches ``ttlp run``; killed if even that is not
  enough within ``KILL_AFTER_S``).
- A worker that fails (a non-zero exit, killed by a signal) is a role that crashed: the other
  roles stop and ``ttlp run`` exits non-zero. One that stops cleanly by itself (someone sent it
  SIGTERM) stops ``ttlp run`` cleanly too, so no half of the pipeline runs on alone.
- Workers are in a session of their own: a Ctrl-C in the terminal reaches ``ttlp run`` only,
  which passes it on once (not twice, which would mean "stop now").
- A worker reads its stdin, a pipe from ``ttlp run``, and stops when it closes: when ``ttlp
  run`` dies without stopping it (kill -9, a crash), no worker outlives it.
- Workers write their logs to the same stdout and stderr, each line with ``"worker": <name>``.
- Settings reach a worker in its environment (``Settings.environment``), flags included;
  secrets never appear on a command line. Its consumer name is ``<name>-w<N>``, ``<name>`` the
  one ``ttlp run`` holds; it serves no ``METRICS_PORT`` of its own (the port is taken).

Worker processes use more memory: a normalizer process is ~80 MB on top of ``ttlp run``'s (peak
266 MB in all against 186 MB under the benchmark), so ``--roles all`` stays in one process by
default (the < 200 MB target of DESIGN §12).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from loguru import logger

from ttlp.errors import ConfigError, TtlpError

if TYPE_CHECKING:
    from loguru import Logger

    from ttlp.runtime import Context, RoleFn
    from ttlp.settings import Settings

IN_WORKERS: Final = ("normalize",)
"""The roles worker processes run: the normalizer, the busiest role, which its consumer group
spreads over replicas."""
KILL_AFTER_S: Final = 5.0
"""How long a worker may take after its second SIGTERM ("stop now") before it is killed."""
PARENT_FLAG: Final = "--worker-of-parent"
"""The hidden ``ttlp run`` flag that makes a process a worker: it stops when its stdin closes."""


class WorkerFailed(TtlpError):
    """A worker process ended while ``ttlp run`` was running (a crash, a signal)."""


@dataclass
class Worker:
    """A running worker process, for the benchmark's memory figures (``running_workers``)."""

    name: str
    pid: int


_running: dict[int, Worker] = {}


def running_workers() -> list[Worker]:
    """The worker processes this process has running now."""
    return list(_running.values())


def check(settings: Settings) -> None:
    """Refuse worker processes where they cannot work, saying why and what to do."""
    if settings.workers > 1 and settings.embedded_bus:
        raise ConfigError(
            f"TTLP_WORKERS={settings.workers} needs REDIS_URL: the in-process bus lives in one "
            "process. Set REDIS_URL, or leave TTLP_WORKERS at 1"
        )


def plan(settings: Settings, roles: list[str], stop: asyncio.Event) -> dict[str, RoleFn | None]:
    """The supervisor's roles: ``roles`` by name (``None``: the role itself, in this process),
    with those of ``IN_WORKERS`` replaced by ``settings.workers - 1`` worker processes.
    ``stop`` is ``ttlp run``'s own: a worker that stops by itself sets it.

    A process that runs none of ``IN_WORKERS`` has no workers, whatever ``TTLP_WORKERS`` says:
    one ``.env`` serves every service of a split deployment (Docker Compose's profile)."""
    inside = [name for name in roles if name in IN_WORKERS]
    if settings.workers == 1 or not inside:
        return dict.fromkeys(roles)
    planned: dict[str, RoleFn | None] = {name: None for name in roles if name not in inside}
    for index in range(1, settings.workers):
        planned[f"worker-{index}"] = worker(inside, index, stop)
    return planned


def worker(roles: list[str], index: int, stop_all: asyncio.Event) -> RoleFn:
    """A role that runs ``roles`` in a worker process until its stop event is set."""

    async def run(ctx: Context, stop: asyncio.Event) -> None:
        name = f"{ctx.settings.bus.consumer_name}-w{index}"
        environ = {
            **ctx.settings.environment(os.environ),
            "TTLP_WORKERS": "1",
            "METRICS_PORT": "0",
        }
        command = [
            *(sys.executable, "-m", "ttlp", "run", PARENT_FLAG),
            *("--roles", ",".join(roles), "--consumer-name", name),
        ]
        proc = await asyncio.create_subprocess_exec(
            *command, env=environ, stdin=asyncio.subprocess.PIPE, start_new_session=True
        )
        log = logger.bind(role=f"worker-{index}")
        log.info("worker process started", pid=proc.pid, roles=roles, consumer=name)
        _running[proc.pid] = Worker(name, proc.pid)
        try:
            code = await _until_stopped(proc, stop)
        except asyncio.CancelledError:
            await _stop_now(proc, log)
            raise
        finally:
            _running.pop(proc.pid, None)
            if proc.stdin is not None:
                proc.stdin.close()
        if stop.is_set():
            # -SIGTERM: stopped before it set up its signal handlers (still importing).
            if code not in (0, -signal.SIGTERM):
                raise WorkerFailed(f"worker process {proc.pid} exited with code {code} on stop")
            log.info("worker process stopped", pid=proc.pid)
            return
        if code == 0:
            log.warning("worker process stopped by itself; stopping ttlp", pid=proc.pid)
            stop_all.set()
            return
        raise WorkerFailed(f"worker process {proc.pid} ({','.join(roles)}) {_ended(code)}")

    return run


async def _until_stopped(proc: asyncio.subprocess.Process, stop: asyncio.Event) -> int:
    """Wait for the process to end; once ``stop`` is set, send it SIGTERM and wait on."""
    ended = asyncio.ensure_future(proc.wait())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({ended, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not ended.done():
        _signal(proc, signal.SIGTERM)
    return await ended


async def _stop_now(proc: asyncio.subprocess.Process, log: Logger) -> None:
    """The second SIGTERM (the worker stops at once), then SIGKILL after ``KILL_AFTER_S``."""
    _signal(proc, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), KILL_AFTER_S)
    except TimeoutError:
        log.warning("worker process did not stop; killing it", pid=proc.pid)
        _signal(proc, signal.SIGKILL)
        await proc.wait()


def _signal(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


def _ended(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


async def watch_parent(stop: asyncio.Event) -> None:
    """In a worker: set ``stop`` when stdin (the pipe from ``ttlp run``) closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        while await reader.read(4096):
            pass
    finally:
        transport.close()
    if not stop.is_set():
        logger.bind(role="runtime").warning("ttlp run is gone; stopping this worker")
        stop.set()
