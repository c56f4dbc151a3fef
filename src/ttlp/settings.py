"""Settings: built once from the environment (seed variable names), overridden by CLI flags.

Nothing here reads the environment at import time: ``Settings.from_env(os.environ)`` is called
once by the CLI and the result is passed down. Every variable is documented where it is declared
and listed in the README with its default.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, quote_plus

import msgspec

from ttlp.errors import ConfigError

REDIS_STREAM_MAXLEN = 100_000
MEMORY_STREAM_MAXLEN = 10_000


class BusSettings(msgspec.Struct, frozen=True, kw_only=True):
    redis_url: str | None = None
    """REDIS_URL: Redis ≥ 7 for the streams; unset → the in-process bus (one process only)."""
    prefix: str = ""
    """REDIS_CONSUMER_GROUP_PREFIX: prepended to every stream key and group name."""
    stream_maxlen: int = 0
    """STREAM_MAXLEN: approximate cap on every XADD (the database is the source of truth);
    default 100,000 on Redis, 10,000 on the in-process bus (whose entries live in RAM)."""
    batch_size: int = 500
    """BUS_BATCH_SIZE: entries read per XREADGROUP call."""
    block_ms: int = 1000
    """BUS_BLOCK_MS: how long one read waits for new entries."""
    claim_idle_ms: int = 30_000
    """CLAIM_IDLE_MS: entries pending this long for another consumer are claimed (XAUTOCLAIM)."""
    claim_interval_s: float = 5.0
    """CLAIM_INTERVAL_S: how often a consumer looks for idle entries to claim."""
    max_deliveries: int = 5
    """MAX_DELIVERIES: an entry delivered more often than this goes to the dead-letter stream."""
    consumer_name: str = ""
    """CONSUMER_NAME: stable name of this replica in every group (default: the host name)."""


class DatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str | None = None
    """DATABASE_URL: PostgreSQL (postgresql://, postgres://, postgresql+asyncpg://) or sqlite:///;
    unset → SQLite file ``ttlp.db`` in the data directory."""
    event_retention_days: int = 90
    """EVENT_RETENTION_DAYS: events older than this are eligible for pruning."""


class IngestSettings(msgspec.Struct, frozen=True, kw_only=True):
    provider: Literal["direct", "euler", "mock"] = "mock"
    """INGEST_PROVIDER: direct | euler | mock (default: direct when TIKTOK_UNIQUE_ID is set,
    else mock)."""
    unique_ids: tuple[str, ...] = ()
    """TIKTOK_UNIQUE_ID: streamer handle(s) to watch, comma-separated."""
    euler_api_key: str | None = None
    """EULER_API_KEY: Euler Stream key (secret)."""
    session_id: str | None = None
    """SESSION_ID: TikTok session cookie for authenticated actions (secret)."""
    reconnect_max_attempts: int = 0
    """RECONNECT_MAX_ATTEMPTS: 0 = reconnect forever."""
    mock_fixture: str | None = None
    """MOCK_FIXTURE: NDJSON of raw.v1 frames for the mock provider (default: the bundled one)."""
    mock_rate: float = 0.0
    """MOCK_RATE: frames per second the mock provider publishes (0 = as fast as possible)."""
    mock_loop: bool = False
    """MOCK_LOOP: repeat the fixture forever, one new session per pass."""
    max_frame_bytes: int = 1_048_576
    """MAX_FRAME_BYTES: raw frames larger than this are dead-lettered (FRAME_TOO_LARGE)."""
    sign_api_url: str = "https://api.eulerstream.com"
    """SIGN_API_URL: the sign server TikTokLive's client uses (direct provider)."""
    sign_api_key: str | None = None
    """SIGN_API_KEY: key for the sign server (secret)."""
    tiktok_app_url: str = "https://www.tiktok.com"
    """TIKTOK_APP_URL: TikTok's web app (room lookups; tests point it at a local server)."""
    tiktok_webcast_url: str = "https://webcast.tiktok.com/webcast"
    """TIKTOK_WEBCAST_URL: TikTok's webcast API (tests point it at a local server)."""
    euler_ws_url: str = "wss://ws.eulerstream.com"
    """EULER_WS_URL: the Euler Stream WebSocket (euler provider)."""
    poll_interval_s: float = 30.0
    """INGEST_POLL_INTERVAL_S: how often an offline streamer is checked again."""
    lease_ms: int = 15_000
    """INGEST_LEASE_MS: how long a replica's hold on a streamer lasts without renewal (Redis);
    a dead replica's streamers move to another within this time."""


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "0.0.0.0"
    """API_HOST: interface the api role listens on."""
    port: int = 3000
    """API_PORT: port the api role listens on."""
    jwt_secret: str | None = None
    """JWT_SECRET: key that signs login tokens (secret); unset → a random one created once and
    kept in the data directory (``jwt-secret``), so tokens survive restarts."""
    token_ttl_s: int = 43_200
    """JWT_TTL_S: how long a login token (and its cookie) is valid."""
    cookie_secure: bool = False
    """API_COOKIE_SECURE: send the login cookie only over HTTPS (set behind a TLS proxy)."""
    rate_limit_ip: int = 600
    """API_RATE_LIMIT_IP: requests per window (a minute) from one IP address (429 beyond)."""
    rate_limit_account: int = 1200
    """API_RATE_LIMIT_ACCOUNT: requests per window (a minute) from one logged-in account (429
    beyond); anonymous requests have the per-IP limit only."""
    rate_limit_window: Literal["second", "minute", "hour", "day"] = "minute"
    """API_RATE_LIMIT_WINDOW: second | minute | hour | day, the window the two rate limits
    count in (``API_RATE_LIMIT_IP=600`` with ``minute`` = 600 requests per minute)."""
    max_feeds_per_account: int = 5
    """API_MAX_FEEDS_PER_ACCOUNT: concurrent SSE/WebSocket feeds one account may hold."""
    max_body_bytes: int = 65_536
    """API_MAX_BODY_BYTES: larger request bodies are refused with 413."""
    sse_heartbeat_s: float = 15.0
    """SSE_HEARTBEAT_S: a comment line this often keeps idle feeds (and proxies) alive."""
    sse_backlog: int = 2_000
    """SSE_BACKLOG: events queued for one feed client; a client this far behind is dropped (it
    reconnects with Last-Event-ID and gets what it missed)."""


class OutboundSettings(msgspec.Struct, frozen=True, kw_only=True):
    """HTTP that ttlp sends on its own: webhook actions and the forwarder (DESIGN §8)."""

    allowlist: tuple[str, ...] = ()
    """WEBHOOK_ALLOWLIST: hosts or CIDRs that may be reached although they are loopback,
    private, link-local, CGNAT or metadata addresses (comma-separated); empty = none."""
    connect_timeout_s: float = 3.0
    """OUTBOUND_CONNECT_TIMEOUT_S: connect timeout of webhooks and forwarded deliveries."""
    read_timeout_s: float = 10.0
    """OUTBOUND_READ_TIMEOUT_S: read timeout of webhooks and forwarded deliveries."""
    max_response_bytes: int = 65_536
    """OUTBOUND_MAX_RESPONSE_BYTES: responses are read up to this size, the rest dropped."""


class RulesSettings(msgspec.Struct, frozen=True, kw_only=True):
    euler_api_url: str = "https://api.eulerstream.com"
    """EULER_API_URL: Euler Stream's REST API (announce: room chat; moderate: mute, kick); the
    base TikTokLive's own ``send_room_chat`` uses."""
    announce_min_interval_s: float = 3.0
    """ANNOUNCE_MIN_INTERVAL_S: at most one chat announcement per streamer this often."""
    reload_s: float = 30.0
    """RULES_RELOAD_S: rules are re-read this often even without a change notice."""


class ForwardSettings(msgspec.Struct, frozen=True, kw_only=True):
    max_attempts: int = 8
    """FORWARD_MAX_ATTEMPTS: deliveries to a target before the event goes to the DLQ."""
    concurrency: int = 4
    """FORWARD_CONCURRENCY: deliveries in flight per target."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    bus: BusSettings = BusSettings()
    db: DatabaseSettings = DatabaseSettings()
    ingest: IngestSettings = IngestSettings()
    api: ApiSettings = ApiSettings()
    outbound: OutboundSettings = OutboundSettings()
    rules: RulesSettings = RulesSettings()
    forward: ForwardSettings = ForwardSettings()
    data_dir: str = ""
    """TTLP_DATA_DIR: where the embedded default keeps its SQLite file (default
    ``$XDG_DATA_HOME/ttlp`` or ``~/.local/share/ttlp``)."""
    log_level: Literal["debug", "info", "warn", "warning", "error"] = "info"
    """LOG_LEVEL: debug | info | warn | error."""
    log_format: Literal["json", "pretty"] = "json"
    """LOG_FORMAT: json (one JSON object per line) | pretty (human-readable, for a terminal)."""
    grace_period_s: float = 10.0
    """SHUTDOWN_GRACE_S: how long roles may finish in-flight batches after SIGTERM."""
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    """METRICS_PORT: a process without the api role serves its consume loops' Prometheus
    figures at ``http://API_HOST:METRICS_PORT/metrics`` (0 = not served; the api role has
    them on its own ``/metrics``)."""
    replay_session: str | None = None
    """Flag only (``ttlp run --replay-session ID``): the ingest role replays this session
    instead of running a provider."""

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from environment variables, then apply non-None ``overrides``.

        ``overrides`` use dotted names (``{"ingest.provider": "mock"}``) so CLI flags map onto
        the same fields; a bad value raises ``ConfigError`` naming the variable.
        """
        env = dict(os.environ if environ is None else environ)
        raw: dict[str, dict[str, Any]] = {
            section: {}
            for section in ("bus", "db", "ingest", "api", "outbound", "rules", "forward", "")
        }

        def put(section: str, field: str, var: str) -> None:
            value = env.get(var)
            if value is not None and value.strip() != "":
                raw[section][field] = value.strip()

        for section, field, var in _ENV_MAP:
            put(section, field, var)
        unique = env.get("TIKTOK_UNIQUE_ID", "")
        handles = tuple(h.strip().lstrip("@") for h in unique.split(",") if h.strip())
        if handles:
            raw["ingest"]["unique_ids"] = handles
        allow = env.get("WEBHOOK_ALLOWLIST", "")
        allowed = tuple(a.strip() for a in allow.split(",") if a.strip())
        if allowed:
            raw["outbound"]["allowlist"] = allowed
        if "provider" not in raw["ingest"]:
            raw["ingest"]["provider"] = "direct" if handles else "mock"
        if "log_level" in raw[""]:
            raw[""]["log_level"] = raw[""]["log_level"].lower()

        for dotted, value in overrides.items():
            if value is None:
                continue
            section, _, field = dotted.rpartition(".")
            raw[section][field] = value

        top = raw.pop("")
        try:
            settings = msgspec.convert({**top, **raw}, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"invalid configuration: {_explain(exc)}") from None
        return settings._finish()

    def _finish(self) -> Settings:
        changes: dict[str, Any] = {}
        if not self.data_dir:
            base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
            changes["data_dir"] = str(Path(base) / "ttlp")
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

    def __repr__(self) -> str:  # never print secrets by accident
        return "Settings(<redacted>)"


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


def _explain(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    for section, field, var in _ENV_MAP:
        path = f"$.{section}.{field}" if section else f"$.{field}"
        if message.endswith(f"`{path}`"):
            return f"{var}: {message.rsplit(' - at ', 1)[0]}"
    return message


_ENV_MAP: tuple[tuple[str, str, str], ...] = (
    ("bus", "redis_url", "REDIS_URL"),
    ("bus", "prefix", "REDIS_CONSUMER_GROUP_PREFIX"),
    ("bus", "stream_maxlen", "STREAM_MAXLEN"),
    ("bus", "batch_size", "BUS_BATCH_SIZE"),
    ("bus", "block_ms", "BUS_BLOCK_MS"),
    ("bus", "claim_idle_ms", "CLAIM_IDLE_MS"),
    ("bus", "claim_interval_s", "CLAIM_INTERVAL_S"),
    ("bus", "max_deliveries", "MAX_DELIVERIES"),
    ("bus", "consumer_name", "CONSUMER_NAME"),
    ("db", "url", "DATABASE_URL"),
    ("db", "event_retention_days", "EVENT_RETENTION_DAYS"),
    ("ingest", "provider", "INGEST_PROVIDER"),
    ("ingest", "euler_api_key", "EULER_API_KEY"),
    ("ingest", "session_id", "SESSION_ID"),
    ("ingest", "reconnect_max_attempts", "RECONNECT_MAX_ATTEMPTS"),
    ("ingest", "mock_fixture", "MOCK_FIXTURE"),
    ("ingest", "mock_rate", "MOCK_RATE"),
    ("ingest", "mock_loop", "MOCK_LOOP"),
    ("ingest", "max_frame_bytes", "MAX_FRAME_BYTES"),
    ("ingest", "sign_api_url", "SIGN_API_URL"),
    ("ingest", "sign_api_key", "SIGN_API_KEY"),
    ("ingest", "tiktok_app_url", "TIKTOK_APP_URL"),
    ("ingest", "tiktok_webcast_url", "TIKTOK_WEBCAST_URL"),
    ("ingest", "euler_ws_url", "EULER_WS_URL"),
    ("ingest", "poll_interval_s", "INGEST_POLL_INTERVAL_S"),
    ("ingest", "lease_ms", "INGEST_LEASE_MS"),
    ("api", "host", "API_HOST"),
    ("api", "port", "API_PORT"),
    ("api", "jwt_secret", "JWT_SECRET"),
    ("api", "token_ttl_s", "JWT_TTL_S"),
    ("api", "cookie_secure", "API_COOKIE_SECURE"),
    ("api", "rate_limit_ip", "API_RATE_LIMIT_IP"),
    ("api", "rate_limit_account", "API_RATE_LIMIT_ACCOUNT"),
    ("api", "rate_limit_window", "API_RATE_LIMIT_WINDOW"),
    ("api", "max_feeds_per_account", "API_MAX_FEEDS_PER_ACCOUNT"),
    ("api", "max_body_bytes", "API_MAX_BODY_BYTES"),
    ("api", "sse_heartbeat_s", "SSE_HEARTBEAT_S"),
    ("api", "sse_backlog", "SSE_BACKLOG"),
    ("outbound", "connect_timeout_s", "OUTBOUND_CONNECT_TIMEOUT_S"),
    ("outbound", "read_timeout_s", "OUTBOUND_READ_TIMEOUT_S"),
    ("outbound", "max_response_bytes", "OUTBOUND_MAX_RESPONSE_BYTES"),
    ("rules", "euler_api_url", "EULER_API_URL"),
    ("rules", "announce_min_interval_s", "ANNOUNCE_MIN_INTERVAL_S"),
    ("rules", "reload_s", "RULES_RELOAD_S"),
    ("forward", "max_attempts", "FORWARD_MAX_ATTEMPTS"),
    ("forward", "concurrency", "FORWARD_CONCURRENCY"),
    ("", "data_dir", "TTLP_DATA_DIR"),
    ("", "log_level", "LOG_LEVEL"),
    ("", "log_format", "LOG_FORMAT"),
    ("", "grace_period_s", "SHUTDOWN_GRACE_S"),
    ("", "metrics_port", "METRICS_PORT"),
)
