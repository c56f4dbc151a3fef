"""Database URLs and engines for both backends: SQLite (embedded default) and PostgreSQL.

``normalize_database_url`` turns whatever a user pastes into ``DATABASE_URL`` into the async
driver URL ttlp uses; ``create_engine`` builds the ``AsyncEngine`` with per-backend settings
(SQLite: WAL so the api reads while the store writes; PostgreSQL: a pool, a short connect
timeout); ``SqliteWriter`` runs SQLite's write transactions in a thread of their own. JSON goes
through msgspec both ways, which also lets the ``Store`` hand over documents it has already
encoded (``msgspec.Raw``) without a second serialization.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

import msgspec
import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ttlp.errors import ConfigError
from ttlp.settings import redact_url

SQLITE_DRIVER: Final = "sqlite+aiosqlite"
POSTGRES_DRIVER: Final = "postgresql+asyncpg"
DEFAULT_SQLITE_FILE: Final = "ttlp.db"

_SQLITE_SCHEMES: Final = frozenset({"sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"})
_POSTGRES_SCHEMES: Final = frozenset(
    {
        "postgres",
        "postgresql",
        "postgresql+psycopg2",
        "postgresql+psycopg",
        "postgresql+asyncpg",
        "postgresql+pg8000",
    }
)

# libpq ``?param=`` forms → what asyncpg understands (DATABASE_URL is often a libpq URL).
_SSL_MODES: Final = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
_SSL_BOOLEANS: Final = {"true": "require", "1": "require", "false": "disable", "0": "disable"}
_RENAMED_PARAMS: Final = {"sslmode": "ssl", "connect_timeout": "timeout"}
_KEPT_PARAMS: Final = frozenset(
    {
        "host",  # e.g. a Unix socket directory: postgresql:///ttlp?host=/var/run/postgresql
        "port",
        "ssl",
        "timeout",
        "command_timeout",
        "application_name",
        "target_session_attrs",
        "prepared_statement_cache_size",
        "passfile",
    }
)
"""Parameters passed on: asyncpg keywords (``create_engine`` converts the numeric ones)."""
_DROPPED_PARAMS: Final = frozenset(
    {
        "channel_binding",  # asyncpg has no channel binding; TLS itself still applies
        "gssencmode",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "client_encoding",  # asyncpg always speaks UTF-8
    }
)
"""libpq tuning parameters asyncpg has no equivalent for; safe to ignore."""
_SSL_FILE_PARAMS: Final = {
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
}
_NUMERIC_CONNECT_ARGS: Final = {"timeout": float, "command_timeout": float}

PG_POOL_SIZE: Final = 10
"""Connections kept open: the store's two consumers, the api's readers, health checks."""
PG_MAX_OVERFLOW: Final = 10
PG_POOL_RECYCLE_S: Final = 1800
"""Reconnect idle connections now and then (proxies and load balancers drop long-lived ones)."""
PG_CONNECT_TIMEOUT_S: Final = 10.0
"""asyncpg waits 60 s by default; an unreachable server should be reported sooner."""
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
"""How long a writer waits for the other's lock (the archive and event writers share the file)."""


def normalize_database_url(url: str | None, data_dir: Path) -> str:
    """The async-driver URL for what a user configured, or ``ConfigError`` saying what is wrong.

    ``None`` / empty → the SQLite file ``ttlp.db`` in ``data_dir``; ``sqlite:///path`` →
    ``sqlite+aiosqlite:///path``; ``postgres://``, ``postgresql://``, ``postgresql+psycopg2://``
    ... → ``postgresql+asyncpg://`` with libpq query parameters translated for asyncpg
    (``sslmode=require`` → ``ssl=require``, ``connect_timeout`` → ``timeout``).
    """
    if url is None or not url.strip():
        path = (data_dir.expanduser() / DEFAULT_SQLITE_FILE).absolute()
        return f"{SQLITE_DRIVER}:///{path}"
    text = url.strip()
    try:
        parsed = make_url(text)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"DATABASE_URL {redact_url(text)!r} is not a database URL: use "
            "postgresql://user:password@host:5432/dbname or sqlite:///path/to/ttlp.db"
        ) from None
    scheme = parsed.drivername.lower()
    if scheme in _SQLITE_SCHEMES:
        return _sqlite_url(parsed, text)
    if scheme in _POSTGRES_SCHEMES:
        return _postgres_url(parsed, text)
    raise ConfigError(
        f"DATABASE_URL scheme {parsed.drivername!r} is not supported: use postgresql://... "
        "(PostgreSQL ≥ 15) or sqlite:///path/to/ttlp.db, or leave it unset for the embedded "
        "SQLite database"
    )


def _sqlite_url(parsed: URL, original: str) -> str:
    database = parsed.database or ""
    if database in {"", ":memory:"} or parsed.query.get("mode") == "memory":
        raise ConfigError(
            f"DATABASE_URL {original!r} is an in-memory SQLite database, which ttlp's "
            "connections cannot share: give a file path (sqlite:///path/to/ttlp.db)"
        )
    if database.startswith("~"):
        database = str(Path(database).expanduser())
    out = parsed.set(drivername=SQLITE_DRIVER, database=database)
    return out.render_as_string(hide_password=False)


def _postgres_url(parsed: URL, original: str) -> str:
    query: dict[str, str] = {}
    for key, raw_value in parsed.query.items():
        value = raw_value if isinstance(raw_value, str) else raw_value[-1]
        name = _RENAMED_PARAMS.get(key, key)
        if key in _DROPPED_PARAMS:
            continue
        if key in _SSL_FILE_PARAMS:
            raise ConfigError(
                f"DATABASE_URL parameter {key!r} is not supported with asyncpg: set the "
                f"environment variable {_SSL_FILE_PARAMS[key]} instead"
            )
        if name not in _KEPT_PARAMS:
            raise ConfigError(
                f"DATABASE_URL parameter {key!r} is not supported with asyncpg; supported: "
                f"{', '.join(sorted(_KEPT_PARAMS | set(_RENAMED_PARAMS)))}"
            )
        if name == "ssl":
            value = _SSL_BOOLEANS.get(value.lower(), value.lower())
            if value not in _SSL_MODES:
                raise ConfigError(
                    f"DATABASE_URL {key}={raw_value!r} is not an SSL mode: use one of "
                    f"{', '.join(sorted(_SSL_MODES))}"
                )
        if name in _NUMERIC_CONNECT_ARGS or name == "prepared_statement_cache_size":
            try:
                float(value)
            except ValueError:
                raise ConfigError(
                    f"DATABASE_URL parameter {key}={value!r} must be a number"
                ) from None
        query[name] = value
    if not parsed.database:
        raise ConfigError(
            f"DATABASE_URL {redact_url(original)!r} names no database: add /dbname after the host"
        )
    out = parsed.set(drivername=POSTGRES_DRIVER, query=query)
    return out.render_as_string(hide_password=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An ``AsyncEngine`` for a URL from ``normalize_database_url``, tuned for its backend.

    SQLite: the parent directory is created; every connection runs in WAL mode with
    ``synchronous=NORMAL`` (durable at checkpoints, fast commits), foreign keys on and a busy
    timeout so concurrent writers wait rather than fail. PostgreSQL: a bounded pool with
    pre-ping (a restarted server does not break the first query), ``application_name=ttlp``.
    ``kwargs`` go to ``create_async_engine`` (tests pass ``poolclass`` and the like).
    """
    parsed = make_url(url)
    options: dict[str, Any] = dict(_JSON_CODEC)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        options.update(kwargs)
        engine = create_async_engine(parsed, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return engine
    connect_args, parsed = _asyncpg_connect_args(parsed)
    options["connect_args"] = connect_args
    if "poolclass" not in kwargs:  # sizing applies to the default queue pool only
        options.update(
            pool_size=PG_POOL_SIZE,
            max_overflow=PG_MAX_OVERFLOW,
            pool_recycle=PG_POOL_RECYCLE_S,
            pool_pre_ping=True,
        )
    options.update(kwargs)
    return create_async_engine(parsed, **options)


def _asyncpg_connect_args(parsed: URL) -> tuple[dict[str, Any], URL]:
    """Move typed parameters out of the URL (its query values are strings) into connect args."""
    query = dict(parsed.query)
    args: dict[str, Any] = {"timeout": PG_CONNECT_TIMEOUT_S}
    for key, convert in _NUMERIC_CONNECT_ARGS.items():
        if key in query:
            args[key] = convert(_one(query.pop(key)))
    args["server_settings"] = {"application_name": _one(query.pop("application_name", "ttlp"))}
    return args, parsed.set(query=query)


def _one(value: str | tuple[str, ...]) -> str:
    return value if isinstance(value, str) else value[-1]


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


_T = TypeVar("_T")


WRITER_SWITCH_INTERVAL_S: Final = 0.0002
"""The GIL switch interval of a process with a ``SqliteWriter`` (``sys.setswitchinterval``)."""


class SqliteWriter:
    """SQLite transactions run whole in one thread of their own: ``await writer.run(fn)`` calls
    ``fn(connection)`` in a transaction there, committed when ``fn`` returns.

    Through the async engine every statement is three or four trips between the event loop
    and aiosqlite's thread (cursor, execute, fetch, close), each resumed by the loop when it
    gets to it: a batch of events was 16-23 trips and a batch of frames 12-16 (counted on the
    bundled session), so with the loop busy (100 SSE clients at 1,000 events/s) every one of
    them waited behind whatever else the loop was doing. Here a batch is one trip. The thread
    has its own synchronous engine on the same file (``sqlite+pysqlite``, the same
    connection set-up and JSON codec), one connection, and runs one transaction at a time:
    the embedded default's writers (the archive and the storage consumer) also queue here
    rather than at SQLite's lock. Nothing here is specific to ttlp's tables: ``Store`` hands
    it the same synchronous bodies it runs on PostgreSQL through ``AsyncConnection.run_sync``.
    """

    def __init__(self, url: URL) -> None:
        # The thread hands the GIL back and forth with the event loop: sqlite3 releases it
        # around every prepare, step and commit, some twenty times a batch, and taking it back
        # waits until the busy loop lets go, which it does only when the switch interval runs
        # out (5 ms by default). Transactions took that much longer, the bus's window filled
        # and the loop sat idle in turn: the two threads together used about one core (their
        # CPU times, sampled during the embedded throughput run: ~60 % and ~45 %). At 0.2 ms
        # they use ~85 % and ~57 %: see README, "Where the pipeline stands". A thread holding
        # the GIL is asked to let go only when another waits for it; with no writer (Redis and
        # PostgreSQL) the interval stays Python's.
        sys.setswitchinterval(min(sys.getswitchinterval(), WRITER_SWITCH_INTERVAL_S))
        self.engine: Engine = sqlalchemy.create_engine(
            url.set(drivername="sqlite+pysqlite"),
            **_JSON_CODEC,
            pool_size=1,
            max_overflow=0,
            # Used by the one thread below only; closed from whichever thread disposes.
            connect_args={"check_same_thread": False},
        )
        event.listen(self.engine, "connect", _sqlite_on_connect)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ttlp-sqlite-writer")

    async def run(self, fn: Callable[[Connection], _T]) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._transaction, fn)

    def _transaction(self, fn: Callable[[Connection], _T]) -> _T:
        with self.engine.begin() as conn:
            return fn(conn)

    def close(self) -> None:
        """Finish what was queued, then close the connection (not from the writer thread)."""
        self._thread.shutdown(wait=True)
        self.engine.dispose()


_writers: weakref.WeakKeyDictionary[AsyncEngine, SqliteWriter] = weakref.WeakKeyDictionary()


def sqlite_writer(engine: AsyncEngine) -> SqliteWriter:
    """The writer of a SQLite ``engine``'s file (one per engine, made at first use)."""
    writer = _writers.get(engine)
    if writer is None:
        writer = _writers[engine] = SqliteWriter(engine.url)
    return writer


async def dispose_engine(engine: AsyncEngine) -> None:
    """``engine.dispose()``, and its SQLite writer's close when it has one."""
    writer = _writers.pop(engine, None)
    if writer is not None:
        await asyncio.to_thread(writer.close)
    await engine.dispose()


_json_encoder: Final = msgspec.json.Encoder()


def _json_dumps(value: Any) -> str:
    """JSON text for a column value; ``msgspec.Raw`` (already-encoded JSON) passes verbatim."""
    return _json_encoder.encode(value).decode()


_JSON_CODEC: Final[dict[str, Any]] = {
    "json_serializer": _json_dumps,
    "json_deserializer": msgspec.json.decode,
}
"""Every engine's JSON columns go through msgspec (``create_engine``, ``SqliteWriter``)."""


@asynccontextmanager
async def write_transaction(
    engine: AsyncEngine, lock: Sequence[str] = ()
) -> AsyncIterator[AsyncConnection]:
    """A transaction that reads, then writes, and whose reads stay true until it commits.

    SQLite: ``BEGIN IMMEDIATE``, the database's write lock from the start (a transaction that
    reads first could not write once another writer, the store, commits in between).
    PostgreSQL: the tables of ``lock`` in SHARE ROW EXCLUSIVE mode, which waits for the writes
    in flight, holds new ones and conflicts with itself, but not with reads; without ``lock``
    a plain transaction (the caller locks rows itself, e.g. ``FOR UPDATE``).
    """
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif lock:
            await conn.exec_driver_sql(f"LOCK TABLE {', '.join(lock)} IN SHARE ROW EXCLUSIVE MODE")
        try:
            yield conn
        except BaseException:
            await conn.rollback()
            raise
        await conn.commit()
