"""Role registry and supervisor: roles run as asyncio tasks in one process (DESIGN §1).

``ROLES`` names every role and what it needs. ``run_roles`` opens the shared resources (bus,
database), starts one task per role, and stops them all cleanly: SIGINT/SIGTERM set the stop
event (roles stop reading, finish and ack their batch, return), a second signal cancels at once,
and a role that crashes stops the others and makes the process exit non-zero. On Redis,
``TTLP_WORKERS`` moves the normalizer into worker processes that the supervisor runs as roles
(the last section).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgspec
from loguru import logger

from ttlp.bus import names
from ttlp.bus.base import Bus
from ttlp.bus.consumer import BatchHandler, Consumer
from ttlp.bus.keys import GROUP_ARCHIVE, GROUP_NORMALIZER, GROUP_STORAGE, Keys
from ttlp.errors import ConfigError, TtlpError
from ttlp.settings import Settings

if TYPE_CHECKING:
    from loguru import Logger
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ttlp.bus.names import ConsumerName
    from ttlp.db.store import Store
    from ttlp.tiktok.publish import FramePublisher

GC_THRESHOLD: Final = 50_000
STATUS_FILE: Final = "bus-status.json"
"""On the embedded default, the in-process bus mirrors its status reports (ingest's state per
streamer) to this file in the data directory, for the CLI in another process."""

RoleFn = Callable[["Context", asyncio.Event], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class RoleSpec:
    name: str
    module: str
    needs_db: bool
    summary: str

    def load(self) -> RoleFn:
        fn: RoleFn = importlib.import_module(self.module).run
        return fn


ROLES: Final[dict[str, RoleSpec]] = {
    spec.name: spec
    for spec in (
        RoleSpec("ingest", "ttlp.roles.ingest", True, "TikTok / mock / replay → ttlc:raw"),
        RoleSpec("normalize", "ttlp.roles.normalize", False, "ttlc:raw → ttlc:events, ttlc:dlq"),
        RoleSpec("store", "ttlp.roles.store", True, "ttlc:raw + ttlc:events → database"),
        RoleSpec("api", "ttlp.roles.api", True, "database + ttlc:events → REST, SSE, WebSocket"),
        RoleSpec("rules", "ttlp.roles.rules", True, "ttlc:events → actions, actions_log"),
        RoleSpec("forward", "ttlp.roles.forward", True, "ttlc:events → HTTP targets, ttlc:dlq"),
    )
}


def parse_roles(value: str) -> list[str]:
    """``"all"`` or a comma-separated list of known role names → names in registry order.

    An empty list is refused, not read as "all": an unset variable in a service definition
    (``--roles ${TTLP_ROLES}``) must not start every role in one more process."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"no role given: choose from {', '.join(ROLES)} or 'all'")
    if names == ["all"]:
        return list(ROLES)
    unknown = [n for n in names if n not in ROLES]
    if unknown:
        raise ConfigError(
            f"unknown role(s) {', '.join(unknown)}: choose from {', '.join(ROLES)} or 'all'"
        )
    return [n for n in ROLES if n in names]


@dataclass
class Context:
    """What roles share: settings, the bus, key names, the database (when a role needs it)."""

    settings: Settings
    bus: Bus
    keys: Keys
    engine: AsyncEngine | None = None
    _store: Store | None = field(default=None, repr=False)

    @property
    def store(self) -> Store:
        if self._store is None:
            if self.engine is None:
                raise RuntimeError("this role was started without a database")
            from ttlp.db.store import Store

            self._store = Store(self.engine, pseudonym_salt=self.settings.retention.pseudonym_salt)
        return self._store

    def paced_publisher(self, **kwargs: Any) -> FramePublisher:
        """A publisher to ``ttlc:raw`` that waits for the pipeline's consumers (the mock, a
        replay): the backlog on raw and events, counting a group yet to be created."""
        from ttlp.tiktok.publish import FramePublisher

        return FramePublisher(
            self.bus,
            self.keys.raw,
            paced=True,
            downstream=(self.keys.events,),
            expected=pipeline_groups(self.keys),
            **kwargs,
        )

    def consumer(
        self, *, stream: str, group: str, handler: BatchHandler, stage: str, start: str = "0"
    ) -> Consumer:
        return Consumer(
            bus=self.bus,
            stream=stream,
            group=self.keys.group(group),
            name=self.settings.bus.consumer_name,
            handler=handler,
            dlq_stream=self.keys.dlq,
            stage=stage,
            settings=self.settings.bus,
            start=start,
        )


def tune_gc() -> None:
    """Fewer, larger garbage collections: the pipeline allocates many short-lived objects per
    event and the default thresholds (700) ran the collector thousands of times a second,
    ~10 % of the CPU per event. Objects alive after start-up are frozen out of collections."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 50, 100)


def make_bus(settings: Settings) -> Bus:
    if settings.bus.redis_url:
        from ttlp.bus.redis import RedisBus

        return RedisBus(settings.bus.redis_url, maxlen=settings.bus.stream_maxlen)
    from ttlp.bus.memory import MemoryBus

    return MemoryBus(
        maxlen=settings.bus.stream_maxlen, status_file=settings.data_path / STATUS_FILE
    )


def keep_dead_letters(bus: Bus, keys: Keys, engine: AsyncEngine) -> None:
    """On the in-process bus, keep ``ttlc:dlq`` in the database (``ttlp.db.letters``): the
    letters outlive the process and ``ttlp dlq`` in another process sees them. Capped as the
    stream is on Redis by default (disk, not memory, holds them here), or at STREAM_MAXLEN
    when that is larger. Redis keeps the stream itself."""
    from ttlp.bus.memory import MemoryBus

    if isinstance(bus, MemoryBus):
        from ttlp.db.letters import LetterTable
        from ttlp.settings import REDIS_STREAM_MAXLEN

        bus.keep(keys.dlq, LetterTable(engine, maxlen=max(bus.maxlen, REDIS_STREAM_MAXLEN)))


async def relay_moves(ctx: Context, stop: asyncio.Event) -> None:
    """Run beside the roles on the in-process bus: carries out the retries ``ttlp dlq retry``
    asked for from another process (``MemoryBus.relay``). Stops first, with ingest: what it
    publishes must be drained like everything else."""
    from ttlp.bus.memory import MemoryBus

    if isinstance(ctx.bus, MemoryBus):
        await ctx.bus.relay(stop)


RELAY: Final = "dlq-relay"


@contextlib.asynccontextmanager
async def open_context(
    settings: Settings, *, need_db: bool, claim_name: bool = False
) -> AsyncIterator[Context]:
    """Connect the bus (and the database when ``need_db``), checking both are usable.

    ``claim_name``: hold this process's consumer name for as long as the context is open
    (``ttlp.bus.names``), so no two live processes consume under one name."""
    bus = make_bus(settings)
    engine = None
    name: ConsumerName | None = None
    keeper: asyncio.Task[None] | None = None
    try:
        await bus.ping()
        if claim_name:
            host = socket.gethostname()
            requested = settings.bus.consumer_name
            name = await names.claim(
                bus, Keys(settings.bus.prefix), requested, explicit=requested != host, host=host
            )
            if name.name != requested:
                logger.bind(role="runtime").info(
                    "consumer name taken by another process on this host; using the next",
                    consumer=name.name,
                )
            bus_settings = msgspec.structs.replace(settings.bus, consumer_name=name.name)
            settings = msgspec.structs.replace(settings, bus=bus_settings)
            keeper = asyncio.create_task(name.keep(), name="consumer-name")
        if need_db:
            from ttlp.db.engine import create_engine, normalize_database_url
            from ttlp.db.migrate import check_ready, upgrade

            url = normalize_database_url(settings.db.url, settings.data_path)
            if url.startswith("sqlite"):
                # The embedded default migrates itself: nobody should have to run a command
                # before `ttlp run` works on a fresh machine.
                await asyncio.to_thread(upgrade, url)
            engine = create_engine(url)
            await check_ready(engine)
        keys = Keys(settings.bus.prefix)
        if engine is not None:
            keep_dead_letters(bus, keys, engine)
        yield Context(settings=settings, bus=bus, keys=keys, engine=engine)
    finally:
        if keeper is not None:
            keeper.cancel()
        if name is not None:
            await name.release()
        if engine is not None:
            from ttlp.db.engine import dispose_engine

            await dispose_engine(engine)
        await bus.close()


async def run_roles(settings: Settings, roles: list[str], *, worker_of_parent: bool = False) -> int:
    """Run ``roles`` until a signal or a crash; return the process exit code.

    With ``settings.workers`` above 1 some of them run in worker processes (``plan_workers``);
    ``worker_of_parent``: this process is such a worker, and stops when its stdin closes."""
    if settings.embedded_bus and set(roles) != set(ROLES):
        raise ConfigError(
            f"running only some roles ({','.join(roles)}) needs REDIS_URL: roles in different "
            "processes talk through Redis Streams. Set REDIS_URL, or run all roles with "
            "--roles all"
        )
    if "ingest" in roles and not settings.replay_session:
        from ttlp.tiktok.providers import check_settings

        check_settings(settings)
    if "api" in roles and settings.bus.redis_url and not settings.api.jwt_secret:
        raise ConfigError(
            "the api on Redis needs JWT_SECRET: every api replica must sign and check login "
            "tokens with the same key (generate one with `openssl rand -hex 32`)"
        )
    check_workers(settings)
    stop = asyncio.Event()
    fns = {
        name: fn or ROLES[name].load() for name, fn in plan_workers(settings, roles, stop).items()
    }
    if settings.embedded_bus:
        fns[RELAY] = relay_moves
    tune_gc()
    need_db = any(ROLES[name].needs_db for name in roles if name in fns)
    metrics = None
    if settings.metrics_port and "api" not in roles:
        from ttlp.bus.telemetry import serve_metrics

        metrics = serve_metrics(settings.api.host, settings.metrics_port)
    try:
        async with open_context(settings, need_db=need_db, claim_name=True) as ctx:
            parent = asyncio.create_task(watch_parent(stop)) if worker_of_parent else None
            try:
                return await supervise(ctx, fns, grace_s=settings.grace_period_s, stop=stop)
            finally:
                if parent is not None:
                    parent.cancel()
    finally:
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()


async def supervise(
    ctx: Context,
    roles: dict[str, RoleFn],
    *,
    grace_s: float,
    stop: asyncio.Event | None = None,
    install_signals: bool = True,
) -> int:
    """Run each role as a task; stop all on a signal, on ``stop``, or when one crashes."""
    stop = stop or asyncio.Event()
    hurry = asyncio.Event()
    loop = asyncio.get_running_loop()
    if install_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, _on_signal, stop, hurry, sig)
    # Each role has its own stop event, so shutdown can go in pipeline order (see _shutdown).
    role_stops = {name: asyncio.Event() for name in roles}
    tasks: dict[asyncio.Task[None], str] = {
        asyncio.create_task(fn(ctx, role_stops[name]), name=name): name
        for name, fn in roles.items()
    }
    logger.bind(role="runtime").info(
        "ttlp started",
        roles=list(roles),
        bus="redis" if ctx.settings.bus.redis_url else "in-process",
        database=_backend(ctx),
    )
    exit_code = 0
    try:
        pending: set[asyncio.Task[Any]] = set(tasks)
        stop_wait: asyncio.Task[Any] = asyncio.create_task(stop.wait())
        while pending and not stop.is_set():
            done, pending = await asyncio.wait(
                pending | {stop_wait}, return_when=asyncio.FIRST_COMPLETED
            )
            pending.discard(stop_wait)
            for task in done - {stop_wait}:
                exc = task.exception()
                if exc is not None:
                    logger.bind(role=tasks[task]).opt(exception=exc).error(
                        "role crashed; stopping", error=_describe(exc)
                    )
                    exit_code = 1
                    stop.set()
        stop_wait.cancel()
        if pending:
            code = await _shutdown(
                ctx, tasks, role_stops, pending, grace_s, hurry, drain=exit_code == 0
            )
            exit_code = max(exit_code, code)
    finally:
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
    logger.bind(role="runtime").info("ttlp stopped", exit_code=exit_code)
    return exit_code


# Roles that put new entries into the pipeline from outside it; they stop first.
PRODUCERS: Final = frozenset({"ingest", RELAY})
DRAIN_POLL_S: Final = 0.05


async def _shutdown(
    ctx: Context,
    names: dict[asyncio.Task[None], str],
    role_stops: dict[str, asyncio.Event],
    pending: set[asyncio.Task[Any]],
    grace_s: float,
    hurry: asyncio.Event,
    *,
    drain: bool,
) -> int:
    """Stop the roles within ``grace_s``; on the in-process bus, drain it first.

    Redis keeps unread entries for the next start, so there every role just finishes its
    batch. The in-process bus dies with the process: producers stop first, the other roles
    consume what is left (within the grace period), and only then are they stopped.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    if drain and ctx.settings.embedded_bus:
        producers = {t for t in pending if names[t] in PRODUCERS}
        for task in producers:
            role_stops[names[task]].set()
        if producers:
            await asyncio.wait(producers, timeout=max(deadline - loop.time(), 0))
        while not hurry.is_set() and loop.time() < deadline and not await is_drained(ctx):
            if any(t.done() for t in pending - producers):
                break  # a consumer died: nothing will drain the rest
            await asyncio.sleep(DRAIN_POLL_S)
    for event in role_stops.values():
        event.set()
    return await _finish(names, pending, max(deadline - loop.time(), 0), hurry)


def pipeline_groups(keys: Keys) -> dict[str, set[str]]:
    """The consumer groups that must have read everything before the pipeline is idle."""
    return {
        keys.raw: {keys.group(GROUP_NORMALIZER), keys.group(GROUP_ARCHIVE)},
        keys.events: {keys.group(GROUP_STORAGE)},
    }


async def is_drained(ctx: Context) -> bool:
    """True when every pipeline group has read and acked everything on its stream.

    A group that does not exist yet (its role is still starting) counts as behind whenever its
    stream holds entries: created later, it starts from the beginning of the stream.
    """
    for stream, expected in pipeline_groups(ctx.keys).items():
        groups = {g.name: g for g in await ctx.bus.groups(stream)}
        if expected - set(groups) and await ctx.bus.length(stream) > 0:
            return False
        for name in expected & set(groups):
            if groups[name].pending or groups[name].lag:
                return False
    return True


async def _finish(
    names: dict[asyncio.Task[None], str],  # keyed by the role tasks
    pending: set[asyncio.Task[Any]],
    grace_s: float,
    hurry: asyncio.Event,
) -> int:
    """Let stopping roles finish within ``grace_s`` (or until a second signal), then cancel."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    hurry_wait: asyncio.Task[Any] = asyncio.create_task(hurry.wait())
    remaining = set(pending)
    while remaining and not hurry.is_set() and (timeout := deadline - loop.time()) > 0:
        _, remaining = await asyncio.wait(
            remaining | {hurry_wait}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        remaining.discard(hurry_wait)
    hurry_wait.cancel()
    for task in remaining:
        logger.bind(role=names[task]).warning("role did not stop in time; cancelling")
        task.cancel()
    code = 0
    ordered = list(pending)
    results = await asyncio.gather(*ordered, return_exceptions=True)
    for task, result in zip(ordered, results, strict=True):
        if isinstance(result, Exception):
            logger.bind(role=names[task]).error(
                "role failed while stopping", error=f"{type(result).__name__}: {result}"
            )
            code = 1
    return code


def _on_signal(stop: asyncio.Event, hurry: asyncio.Event, sig: signal.Signals) -> None:
    if stop.is_set():
        logger.bind(role="runtime").warning("second signal: stopping now", signal=sig.name)
        hurry.set()
    else:
        logger.bind(role="runtime").info("stopping: finishing in-flight batches", signal=sig.name)
        stop.set()


def _backend(ctx: Context) -> str:
    if ctx.engine is None:
        return "none"
    return ctx.engine.dialect.name


def _describe(exc: BaseException) -> str:
    """``Type: message`` of the errors that matter: a TaskGroup's wrapper names its leaves."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


# -- worker processes (TTLP_WORKERS, on Redis) -----------------------------------------------
# Worker processes: ``ttlp run`` on Redis runs the normalizer in processes of its own.
#
# One process runs the pipeline on one core: on Redis + PostgreSQL it filled that core while
# Redis and PostgreSQL left ~0.65 of the second idle, and the normalizer was ~40 % of its work.
# With ``TTLP_WORKERS=2`` the normalizer runs in a second process (a replica in its consumer
# group, as separate deployments run it) and this process runs every other role:
# ``ttlp bench -n 30000 --backend redis-pg``, one and two processes taking turns on a 2-core
# machine, 1,815 / 2,019 → 2,837 / 2,615 protobuf and 1,732 / 2,138 → 2,739 / 2,304 JSON
# events/s. Keeping a normalizer here as well gained nothing (1,888 / 1,859 in a trial): the one
# core stayed the limit.
#
# To whoever runs it, ``ttlp run`` stays one process (DESIGN §12):
#
# - Each worker is a role to the supervisor (``supervise``): it starts with the other
#   roles and is stopped with them (SIGTERM, then a second SIGTERM, its own "stop now", when the
#   grace period runs out or a second signal reaches ``ttlp run``; killed if even that is not
#   enough within ``KILL_AFTER_S``).
# - A worker that fails (a non-zero exit, killed by a signal) is a role that crashed: the other
#   roles stop and ``ttlp run`` exits non-zero. One that stops cleanly by itself (someone sent it
#   SIGTERM) stops ``ttlp run`` cleanly too, so no half of the pipeline runs on alone.
# - Workers are in a session of their own: a Ctrl-C in the terminal reaches ``ttlp run`` only,
#   which passes it on once (not twice, which would mean "stop now").
# - A worker reads its stdin, a pipe from ``ttlp run``, and stops when it closes: when ``ttlp
#   run`` dies without stopping it (kill -9, a crash), no worker outlives it.
# - Workers write their logs to the same stdout and stderr, each line with ``"worker": <name>``.
# - Settings reach a worker in its environment (``Settings.environment``), flags included;
#   secrets never appear on a command line. Its consumer name is ``<name>-w<N>``, ``<name>`` the
#   one ``ttlp run`` holds; it serves no ``METRICS_PORT`` of its own (the port is taken).
#
# Worker processes use more memory: a normalizer process is ~80 MB on top of ``ttlp run``'s (peak
# 266 MB in all against 186 MB under the benchmark), so ``--roles all`` stays in one process by
# default (the < 200 MB target of DESIGN §12).
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
class WorkerProcess:
    """A running worker process, for the benchmark's memory figures (``running_workers``)."""

    name: str
    pid: int


_workers: dict[int, WorkerProcess] = {}


def running_workers() -> list[WorkerProcess]:
    """The worker processes this process has running now."""
    return list(_workers.values())


def check_workers(settings: Settings) -> None:
    """Refuse worker processes where they cannot work, saying why and what to do."""
    if settings.workers > 1 and settings.embedded_bus:
        raise ConfigError(
            f"TTLP_WORKERS={settings.workers} needs REDIS_URL: the in-process bus lives in one "
            "process. Set REDIS_URL, or leave TTLP_WORKERS at 1"
        )


def plan_workers(
    settings: Settings, roles: list[str], stop: asyncio.Event
) -> dict[str, RoleFn | None]:
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
        planned[f"worker-{index}"] = worker_process(inside, index, stop)
    return planned


def worker_process(roles: list[str], index: int, stop_all: asyncio.Event) -> RoleFn:
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
        _workers[proc.pid] = WorkerProcess(name, proc.pid)
        try:
            code = await _worker_until_stopped(proc, stop)
        except asyncio.CancelledError:
            await _worker_stop_now(proc, log)
            raise
        finally:
            _workers.pop(proc.pid, None)
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
        raise WorkerFailed(f"worker process {proc.pid} ({','.join(roles)}) {_worker_ended(code)}")

    return run


async def _worker_until_stopped(proc: asyncio.subprocess.Process, stop: asyncio.Event) -> int:
    """Wait for the process to end; once ``stop`` is set, send it SIGTERM and wait on."""
    ended = asyncio.ensure_future(proc.wait())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({ended, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not ended.done():
        _signal_worker(proc, signal.SIGTERM)
    return await ended


async def _worker_stop_now(proc: asyncio.subprocess.Process, log: Logger) -> None:
    """The second SIGTERM (the worker stops at once), then SIGKILL after ``KILL_AFTER_S``."""
    _signal_worker(proc, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), KILL_AFTER_S)
    except TimeoutError:
        log.warning("worker process did not stop; killing it", pid=proc.pid)
        _signal_worker(proc, signal.SIGKILL)
        await proc.wait()


def _signal_worker(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


def _worker_ended(code: int) -> str:
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
