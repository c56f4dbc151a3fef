"""Settings: built once from the environment (seed variable names), overridden by CLI flags.

Nothing here reads the environment at import time: the CLI calls ``Settings.from_env()`` once (the
process environment) and passes the result down; ``from_env(environ)`` reads only the mapping it
is given. Each field names its variable once, in its annotation (``env("NAME")``), and is
documented by the docstring under it; the variable map, the comma-separated lists (a tuple-typed
field), the error messages and ``documented_variables()`` (which the README table is checked
against) all come from those declarations.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import os
import socket
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import quote, quote_plus

import msgspec
import msgspec.inspect as mi

from ttlp.errors import ConfigError

REDIS_STREAM_MAXLEN = 100_000
MEMORY_STREAM_MAXLEN = 2_000
"""The in-process bus holds its entries in RAM: 10,000 per stream held 40 MB (protobuf frames)
to 62 MB (JSON frames, emoji as 4 bytes a character) of the embedded pipeline's RSS. A paced
source (mock, replay) keeps the backlog under half of it; the live feed resumes from the bus
within it (about 2 s at 1,000 events/s, minutes on a usual stream), and says ``gap`` past it."""


def env(
    name: str,
    *,
    default: str | None = None,
    clean: Callable[[str], str] | None = None,
    **constraints: Any,
) -> msgspec.Meta:
    """The field is read from the environment variable ``name``.

    ``default`` describes a default that the field's own value does not show (one derived when the
    settings are built); ``clean`` normalizes the stripped value (each item of a list) before it
    is converted; ``constraints`` are ``msgspec.Meta``'s (``ge``, ``le``, ...). A tuple-typed
    field is read as a comma-separated list.
    """
    return msgspec.Meta(extra={"env": name, "default": default, "clean": clean}, **constraints)


def _without_at(handle: str) -> str:
    return handle.lstrip("@")


class BusSettings(msgspec.Struct, frozen=True, kw_only=True):
    redis_url: Annotated[str | None, env("REDIS_URL")] = None
    """Redis ≥ 7 for the streams; unset → the in-process bus (one process only)."""
    prefix: Annotated[str, env("REDIS_CONSUMER_GROUP_PREFIX")] = ""
    """Prepended to every stream key and group name."""
    stream_maxlen: Annotated[
        int,
        env(
            "STREAM_MAXLEN",
            default=f"{REDIS_STREAM_MAXLEN} on Redis, {MEMORY_STREAM_MAXLEN} in-process",
        ),
    ] = 0
    """Approximate cap on every XADD (the database is the source of truth); lower on the
    in-process bus, whose entries live in RAM."""
    batch_size: Annotated[int, env("BUS_BATCH_SIZE")] = 500
    """Entries read per XREADGROUP call."""
    block_ms: Annotated[int, env("BUS_BLOCK_MS")] = 1000
    """How long one read waits for new entries."""
    linger_ms: Annotated[int, env("BUS_LINGER_MS", ge=0)] = 10
    """A consumer whose last read was not a full batch waits this long before the next, so
    entries arriving one at a time are handled in batches (0: read again at once)."""
    claim_idle_ms: Annotated[int, env("CLAIM_IDLE_MS")] = 30_000
    """Entries pending this long for another consumer are claimed (XAUTOCLAIM)."""
    claim_interval_s: Annotated[float, env("CLAIM_INTERVAL_S")] = 5.0
    """How often a consumer looks for idle entries to claim."""
    max_deliveries: Annotated[int, env("MAX_DELIVERIES")] = 5
    """An entry delivered more often than this goes to the dead-letter stream."""
    dlq_max_payload: Annotated[int, env("DLQ_MAX_PAYLOAD_BYTES", ge=1024)] = 65_536
    """A dead letter keeps at most this much of the entry (with its full size and SHA-256)."""
    consumer_name: Annotated[str, env("CONSUMER_NAME", default="the host name")] = ""
    """Stable name of this replica in every consumer group."""


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: Annotated[str | None, env("DATABASE_URL")] = None
    """PostgreSQL (postgresql://, postgres://, postgresql+asyncpg://) or sqlite:///;
    unset → SQLite file ``ttlp.db`` in the data directory."""


class RetentionSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How long data is kept (DESIGN §6, ttlp.db.retention). 0 = kept forever."""

    event_retention_days: Annotated[int, env("EVENT_RETENTION_DAYS", ge=0)] = 90
    """Events and raw frames older than this (by TikTok time) are archived: hidden from every
    view, then deleted after RETENTION_GRACE_DAYS."""
    grace_days: Annotated[int, env("RETENTION_GRACE_DAYS", ge=0)] = 7
    """Archived events and frames are deleted this long after they were archived; until then
    raising EVENT_RETENTION_DAYS and pruning again brings them back."""
    actions_log_retention_days: Annotated[int, env("ACTIONS_LOG_RETENTION_DAYS", ge=0)] = 90
    """Rule firings (actions_log) and finished forward deliveries older than this are deleted."""
    session_retention_days: Annotated[int, env("SESSION_RETENTION_DAYS", ge=0)] = 365
    """Sessions and streams that ended longer ago than this, with no events left, are deleted."""
    user_retention_days: Annotated[int, env("USER_RETENTION_DAYS", ge=0)] = 365
    """TikTok users not seen for this long are pseudonymized: handle, names and avatar
    replaced, the id kept as a salted hash so counts survive; their notes are deleted."""
    batch_size: Annotated[int, env("PRUNE_BATCH_SIZE", ge=100)] = 1_000
    """At most this many rows archived or deleted per transaction; a batch that holds the
    database longer than 50 ms halves the next, so the live pipeline never waits long."""
    pause_ratio: Annotated[float, env("PRUNE_PAUSE_RATIO", ge=0)] = 1.0
    """After each batch a prune rests this many times as long as the batch took (0 = no
    rest), so the live pipeline keeps its latency while a large backlog is pruned."""
    interval_s: Annotated[float, env("PRUNE_INTERVAL_S", ge=0)] = 86_400.0
    """How often the store role prunes (0 = never: prune with `ttlp prune` only)."""
    pseudonym_salt: Annotated[
        str | None, env("PSEUDONYM_SALT", default="random, kept in the database")
    ] = None
    """Secret salt of pseudonymized and erased user ids (secret); unset → generated once and
    kept in the database's ttlp_meta table."""

    def check(self) -> None:
        """A user is pseudonymized only once nothing else names them: their events and raw
        frames (raw frames are kept as received and cannot be rewritten) are deleted first."""
        users, events = self.user_retention_days, self.event_retention_days
        if users and (not events or users < events + self.grace_days):
            raise ConfigError(
                f"USER_RETENTION_DAYS ({users}) must be at least EVENT_RETENTION_DAYS + "
                f"RETENTION_GRACE_DAYS ({events} + {self.grace_days}; 0 = events kept forever): "
                "a user is pseudonymized only after their events and raw frames are deleted. "
                "Raise USER_RETENTION_DAYS, or set it to 0 to keep users as they are"
            )


class IngestSettings(msgspec.Struct, frozen=True, kw_only=True):
    provider: Annotated[
        Literal["direct", "euler", "mock"],
        env("INGEST_PROVIDER", default="direct when TIKTOK_UNIQUE_ID is set, else mock"),
    ] = "mock"
    """direct | euler | mock."""
    unique_ids: Annotated[tuple[str, ...], env("TIKTOK_UNIQUE_ID", clean=_without_at)] = ()
    """Streamer handle(s) to watch, comma-separated, with or without the @."""
    euler_api_key: Annotated[str | None, env("EULER_API_KEY")] = None
    """Euler Stream key (secret)."""
    session_id: Annotated[str | None, env("SESSION_ID")] = None
    """TikTok session cookie for authenticated actions (secret)."""
    reconnect_max_attempts: Annotated[int, env("RECONNECT_MAX_ATTEMPTS")] = 0
    """Reconnects per streamer after a disconnect; 0 = reconnect forever."""
    mock_fixture: Annotated[
        str | None, env("MOCK_FIXTURE", default="the bundled raw-frames.ndjson")
    ] = None
    """NDJSON of raw.v1 frames for the mock provider."""
    mock_rate: Annotated[float, env("MOCK_RATE")] = 0.0
    """Frames per second the mock provider publishes (0 = as fast as possible)."""
    mock_loop: Annotated[bool, env("MOCK_LOOP")] = False
    """Repeat the fixture forever, one new session per pass."""
    buffer_frames: Annotated[int, env("INGEST_BUFFER_FRAMES", ge=1)] = 50_000
    """Frames held while the bus is unreachable; a full buffer pauses the source (live sources
    record the pause as an ERROR lifecycle frame, code INGEST_PAUSED)."""
    max_frame_bytes: Annotated[int, env("MAX_FRAME_BYTES")] = 1_048_576
    """Raw frames larger than this are dead-lettered (FRAME_TOO_LARGE)."""
    sign_api_url: Annotated[str, env("SIGN_API_URL")] = "https://api.eulerstream.com"
    """The sign server TikTokLive's client uses (direct provider)."""
    sign_api_key: Annotated[str | None, env("SIGN_API_KEY")] = None
    """Key for the sign server (secret)."""
    tiktok_app_url: Annotated[str, env("TIKTOK_APP_URL")] = "https://www.tiktok.com"
    """TikTok's web app (room lookups; tests point it at a local server)."""
    tiktok_webcast_url: Annotated[str, env("TIKTOK_WEBCAST_URL")] = (
        "https://webcast.tiktok.com/webcast"
    )
    """TikTok's webcast API (tests point it at a local server)."""
    euler_ws_url: Annotated[str, env("EULER_WS_URL")] = "wss://ws.eulerstream.com"
    """The Euler Stream WebSocket (euler provider)."""
    poll_interval_s: Annotated[float, env("INGEST_POLL_INTERVAL_S")] = 30.0
    """How often an offline streamer is checked again."""
    lease_ms: Annotated[int, env("INGEST_LEASE_MS")] = 15_000
    """How long a replica's hold on a streamer lasts without renewal (Redis); a dead replica's
    streamers move to another within this time."""
    silence_s: Annotated[float, env("INGEST_SILENCE_S", ge=0)] = 60.0
    """A connection with no message from TikTok for this long is cut and reconnected, with a
    DISCONNECTED saying so (a live room sends viewer counts every few seconds); 0 = never."""
    streak_timeout_s: Annotated[float, env("STREAK_TIMEOUT_S", ge=0)] = 10.0
    """A gift streak idle this long without TikTok's end frame is closed with its last count,
    once, for analytics, rules, the forwarder and the UI alike; 0 = never."""
    provider_fallback: bool = False
    """Not a variable: True when nothing named the provider (neither INGEST_PROVIDER nor
    ``--provider``) nor a streamer (TIKTOK_UNIQUE_ID, ``--unique-id``), so the ingest runs the
    mock: fake events. Fine for the embedded demo; on Redis or PostgreSQL the ingest warns."""


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: Annotated[str, env("API_HOST")] = "0.0.0.0"
    """Interface the api role listens on."""
    port: Annotated[int, env("API_PORT")] = 3000
    """Port the api role listens on."""
    jwt_secret: Annotated[str | None, env("JWT_SECRET")] = None
    """Key that signs login tokens (secret); unset → a random one created once and kept in the
    data directory (``jwt-secret``), so tokens survive restarts."""
    token_ttl_s: Annotated[int, env("JWT_TTL_S")] = 43_200
    """How long a login token (and its cookie) is valid."""
    cookie_secure: Annotated[bool, env("API_COOKIE_SECURE")] = False
    """Send the login cookie only over HTTPS (set behind a TLS proxy)."""
    rate_limit_ip: Annotated[int, env("API_RATE_LIMIT_IP")] = 600
    """Requests per window (a minute) from one IP address (429 beyond)."""
    rate_limit_account: Annotated[int, env("API_RATE_LIMIT_ACCOUNT")] = 1200
    """Requests per window (a minute) from one logged-in account (429 beyond); anonymous
    requests have the per-IP limit only."""
    rate_limit_window: Annotated[
        Literal["second", "minute", "hour", "day"], env("API_RATE_LIMIT_WINDOW")
    ] = "minute"
    """second | minute | hour | day, the window the two rate limits count in
    (``API_RATE_LIMIT_IP=600`` with ``minute`` = 600 requests per minute)."""
    max_feeds_per_account: Annotated[int, env("API_MAX_FEEDS_PER_ACCOUNT")] = 5
    """Concurrent SSE/WebSocket feeds one account may hold."""
    max_body_bytes: Annotated[int, env("API_MAX_BODY_BYTES")] = 65_536
    """Larger request bodies are refused with 413."""
    sse_heartbeat_s: Annotated[float, env("SSE_HEARTBEAT_S")] = 15.0
    """A comment line this often keeps idle feeds (and proxies) alive."""
    sse_backlog: Annotated[int, env("SSE_BACKLOG")] = 2_000
    """Events queued for one feed client; a client this far behind is dropped (it reconnects
    with Last-Event-ID and gets what it missed)."""


class OutboundSettings(msgspec.Struct, frozen=True, kw_only=True):
    """HTTP that ttlp sends on its own: webhook actions and the forwarder (DESIGN §8)."""

    allowlist: Annotated[tuple[str, ...], env("WEBHOOK_ALLOWLIST")] = ()
    """Hosts or CIDRs that may be reached although they are loopback, private, link-local, CGNAT
    or metadata addresses (comma-separated); empty = none."""
    connect_timeout_s: Annotated[float, env("OUTBOUND_CONNECT_TIMEOUT_S")] = 3.0
    """Connect timeout of webhooks and forwarded deliveries."""
    read_timeout_s: Annotated[float, env("OUTBOUND_READ_TIMEOUT_S")] = 10.0
    """Read timeout of webhooks and forwarded deliveries."""
    max_response_bytes: Annotated[int, env("OUTBOUND_MAX_RESPONSE_BYTES")] = 65_536
    """Responses are read up to this size, the rest dropped."""


class RulesSettings(msgspec.Struct, frozen=True, kw_only=True):
    euler_api_url: Annotated[str, env("EULER_API_URL")] = "https://api.eulerstream.com"
    """Euler Stream's REST API (announce: room chat; moderate: mute, kick; the euler
    provider's live check); the base TikTokLive's own ``send_room_chat`` uses."""
    announce_min_interval_s: Annotated[float, env("ANNOUNCE_MIN_INTERVAL_S")] = 3.0
    """At most one chat announcement per streamer this often."""
    reload_s: Annotated[float, env("RULES_RELOAD_S")] = 30.0
    """Rules are re-read this often even without a change notice."""


class ForwardSettings(msgspec.Struct, frozen=True, kw_only=True):
    max_attempts: Annotated[int, env("FORWARD_MAX_ATTEMPTS")] = 8
    """Deliveries to a target before the event goes to the DLQ."""
    concurrency: Annotated[int, env("FORWARD_CONCURRENCY")] = 4
    """Deliveries in flight per target."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    bus: BusSettings = BusSettings()
    db: DatabaseSettings = DatabaseSettings()
    ingest: IngestSettings = IngestSettings()
    api: ApiSettings = ApiSettings()
    outbound: OutboundSettings = OutboundSettings()
    rules: RulesSettings = RulesSettings()
    forward: ForwardSettings = ForwardSettings()
    retention: RetentionSettings = RetentionSettings()
    data_dir: Annotated[
        str, env("TTLP_DATA_DIR", default="$XDG_DATA_HOME/ttlp or ~/.local/share/ttlp")
    ] = ""
    """Where the embedded default keeps its SQLite file (and ``jwt-secret``)."""
    log_level: Annotated[
        Literal["debug", "info", "warn", "warning", "error"], env("LOG_LEVEL", clean=str.lower)
    ] = "info"
    """debug | info | warn | error (any case)."""
    log_format: Annotated[Literal["json", "pretty"], env("LOG_FORMAT")] = "json"
    """json (one JSON object per line) | pretty (human-readable, for a terminal)."""
    grace_period_s: Annotated[float, env("SHUTDOWN_GRACE_S")] = 10.0
    """How long roles may finish in-flight batches after SIGTERM."""
    metrics_port: Annotated[int, env("METRICS_PORT", ge=0, le=65535)] = 0
    """A process without the api role serves its consume loops' Prometheus figures at
    ``http://API_HOST:METRICS_PORT/metrics`` (0 = not served; the api role has them on its own
    ``/metrics``)."""
    workers: Annotated[int, env("TTLP_WORKERS", ge=1, le=64)] = 1
    """Processes ``ttlp run`` uses on Redis: from 2, the normalizer runs in WORKERS - 1 worker
    processes that ``ttlp run`` starts, stops and watches (one more core for the busiest role),
    and this process runs the other roles. 1 = every role in one process (the in-process bus
    needs 1)."""
    replay_session: str | None = None
    """Flag only (``ttlp run --replay-session ID``): the ingest role replays this session
    instead of running a provider."""

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (None: the process environment), then apply
        non-None ``overrides``.

        Only ``environ`` is read. ``overrides`` use dotted names (``{"ingest.provider": "mock"}``)
        so CLI flags map onto the same fields; a bad value raises ``ConfigError`` naming the
        variable.
        """
        if environ is None:
            environ = os.environ
        raw: dict[str, dict[str, Any]] = {section: {} for section in _sections()}
        for binding in _bindings():
            value = binding.read(environ)
            if value is not None:
                raw[binding.section][binding.field] = value
        for dotted, value in overrides.items():
            if value is None:
                continue
            section, _, field = dotted.rpartition(".")
            raw[section][field] = value
        # After the flags: `--unique-id alice` alone means the direct provider, as the variable.
        ingest = raw["ingest"]
        if "provider" not in ingest:
            ingest["provider"] = "direct" if ingest.get("unique_ids") else "mock"
            ingest["provider_fallback"] = ingest["provider"] == "mock"

        top = raw.pop("")
        try:
            settings = msgspec.convert({**top, **raw}, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"invalid configuration: {_explain(exc)}") from None
        return settings._finish(environ)

    def _finish(self, environ: Mapping[str, str]) -> Settings:
        """Fill the defaults derived from other values (and from ``environ``'s home)."""
        self.retention.check()
        changes: dict[str, Any] = {}
        if not self.data_dir:
            changes["data_dir"] = str(_data_home(environ) / "ttlp")
        bus_changes: dict[str, Any] = {}
        if not self.bus.consumer_name:
            bus_changes["consumer_name"] = socket.gethostname()
        if self.bus.stream_maxlen <= 0:
            bus_changes["stream_maxlen"] = (
                REDIS_STREAM_MAXLEN if self.bus.redis_url else MEMORY_STREAM_MAXLEN
            )
        if bus_changes:
            changes["bus"] = msgspec.structs.replace(self.bus, **bus_changes)
        return msgspec.structs.replace(self, **changes) if changes else self

    # -- derived -------------------------------------------------------------------------------
    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def embedded_bus(self) -> bool:
        return self.bus.redis_url is None

    def secrets(self) -> list[str]:
        """Values that must never reach a log line, an error response or an event."""
        values = [
            self.ingest.euler_api_key,
            self.ingest.session_id,
            self.ingest.sign_api_key,
            self.api.jwt_secret,
            self.retention.pseudonym_salt,
        ]
        for url in (self.db.url, self.bus.redis_url):
            if url:
                password = _url_password(url)
                if password:
                    values.append(password)
        plain = [v for v in values if v and len(v) >= 4]
        # Also as they appear inside URLs (a key in a query string is percent-encoded).
        quoted = {form for v in plain for form in (quote(v, safe=""), quote_plus(v))}
        return plain + sorted(quoted - set(plain))

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment ``from_env`` reads these settings back from: ``base`` (the other
        variables a process needs: PATH, HOME...) without any of the settings' variables, and
        each of them set as these settings hold it (an unset one left out).

        How a worker process (``ttlp.runtime.worker_process``) gets the settings of the ``ttlp
        run`` that started it, command-line flags included; values stay out of the command line
        (``ps`` shows that to every user)."""
        bindings = _bindings()
        names = {binding.variable.name for binding in bindings}
        values = {k: v for k, v in (base or {}).items() if k not in names}
        for binding in bindings:
            section = getattr(self, binding.section) if binding.section else self
            value = getattr(section, binding.field)
            if value is None or (binding.field == "provider" and self.ingest.provider_fallback):
                continue  # unset (the mock as a fallback is the provider left unset)
            if binding.is_list:
                values[binding.variable.name] = ",".join(map(str, value))
            elif isinstance(value, bool):
                values[binding.variable.name] = "true" if value else "false"
            else:
                values[binding.variable.name] = str(value)
        return values

    def __repr__(self) -> str:  # never print secrets by accident
        return "Settings(<redacted>)"


def _data_home(environ: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME``, else ``$HOME/.local/share``, read from ``environ`` (without HOME in
    it: the account's home directory, as ``~`` would expand)."""
    if environ.get("XDG_DATA_HOME"):
        return Path(environ["XDG_DATA_HOME"])
    home = environ.get("HOME")
    if not home:
        try:
            import pwd

            home = pwd.getpwuid(os.getuid()).pw_dir
        except (ImportError, KeyError):
            home = str(Path.home())
    return Path(home) / ".local" / "share"


def _url_password(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).password
    except ValueError:
        return None


def redact_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user:***@host/db``."""
    password = _url_password(url)
    return url.replace(f":{password}@", ":***@") if password else url


# -- the variables, as the fields declare them ---------------------------------------------------
class Variable(NamedTuple):
    """One environment variable as documented (the README table is checked against these)."""

    name: str
    default: str
    """As the README shows it: ``—`` = unset, ``empty`` = an empty string or list."""
    description: str
    field: str
    """Dotted path of the field (``bus.batch_size``; top-level fields have no section)."""


class _Binding(NamedTuple):
    section: str
    field: str
    variable: Variable
    is_list: bool
    clean: Callable[[str], str] | None

    def read(self, environ: Mapping[str, str]) -> str | tuple[str, ...] | None:
        """The variable's value in ``environ``, stripped (split if a list); None if blank."""
        value = environ.get(self.variable.name, "").strip()
        if not value:
            return None
        clean = self.clean or str
        if self.is_list:
            items = tuple(clean(item.strip()) for item in value.split(",") if item.strip())
            return items or None
        return clean(value)


_LIST_TYPES = (mi.VarTupleType, mi.TupleType, mi.ListType, mi.SetType, mi.FrozenSetType)


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value in ("", ()):
        return "empty"
    return str(value)


@functools.cache
def _sections() -> tuple[str, ...]:
    """``""`` (the top level) and the name of every section (a nested settings struct)."""
    fields = _struct_fields(Settings)
    return ("", *(f.name for f in fields if isinstance(f.type, mi.StructType)))


@functools.cache
def _bindings() -> tuple[_Binding, ...]:
    found: list[_Binding] = []

    def add(section: str, owner: type, field: mi.Field) -> None:
        meta = field.type
        if not isinstance(meta, mi.Metadata) or "env" not in (meta.extra or {}):
            return  # a flag-only field
        extra = meta.extra or {}
        variable = Variable(
            name=extra["env"],
            default=extra["default"] or _shown(field.default),
            description=_field_docs(owner).get(field.name, ""),
            field=f"{section}.{field.name}" if section else field.name,
        )
        is_list = isinstance(meta.type, _LIST_TYPES)
        found.append(_Binding(section, field.name, variable, is_list, extra["clean"]))

    for top in _struct_fields(Settings):
        if isinstance(top.type, mi.StructType):
            for field in top.type.fields:
                add(top.name, top.type.cls, field)
        else:
            add("", Settings, top)
    return tuple(found)


def _struct_fields(cls: type[msgspec.Struct]) -> tuple[mi.Field, ...]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return info.fields


@functools.cache
def _field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of ``cls``, on one line ({} without the source)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def documented_variables() -> tuple[Variable, ...]:
    """Every environment variable the settings read, in declaration order."""
    return tuple(binding.variable for binding in _bindings())


def _explain(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    for binding in _bindings():
        section, field = binding.section, binding.field
        path = f"$.{section}.{field}" if section else f"$.{field}"
        if message.endswith(f"`{path}`"):
            return f"{binding.variable.name}: {message.rsplit(' - at ', 1)[0]}"
    return message
