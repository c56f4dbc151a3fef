"""Settings: the seed's variable names, defaults, flags over environment, clear errors."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from ttlp.errors import ConfigError
from ttlp.settings import _ENV_MAP, Settings, redact_url


def test_defaults_are_the_embedded_setup() -> None:
    s = Settings.from_env({"HOME": "/home/u"})
    assert s.bus.redis_url is None
    assert s.embedded_bus
    assert s.db.url is None
    assert s.ingest.provider == "mock"
    assert (s.api.port, s.ingest.reconnect_max_attempts, s.db.event_retention_days) == (3000, 0, 90)
    assert s.log_level == "info"
    assert s.bus.prefix == ""
    assert s.bus.consumer_name  # the host name
    assert s.bus.stream_maxlen == 10_000  # the in-process bus keeps its entries in RAM
    assert Settings.from_env({"REDIS_URL": "redis://r:6379/0"}).bus.stream_maxlen == 100_000


def test_seed_variables_are_read() -> None:
    s = Settings.from_env(
        {
            "INGEST_PROVIDER": "euler",
            "TIKTOK_UNIQUE_ID": "@alice, bob,,",
            "EULER_API_KEY": "k" * 8,
            "SESSION_ID": "s" * 8,
            "REDIS_URL": "redis://r:6379/0",
            "DATABASE_URL": "postgres://x/y",
            "API_PORT": "8080",
            "RECONNECT_MAX_ATTEMPTS": "7",
            "EVENT_RETENTION_DAYS": "30",
            "LOG_LEVEL": "DEBUG",
            "REDIS_CONSUMER_GROUP_PREFIX": "t1-",
            "STREAM_MAXLEN": "500",
            "MOCK_LOOP": "true",
            "MOCK_RATE": "2.5",
        }
    )
    assert s.ingest.provider == "euler"
    assert s.ingest.unique_ids == ("alice", "bob")
    assert (s.bus.redis_url, s.db.url, s.api.port) == ("redis://r:6379/0", "postgres://x/y", 8080)
    assert (s.ingest.reconnect_max_attempts, s.db.event_retention_days) == (7, 30)
    assert (s.log_level, s.bus.prefix, s.bus.stream_maxlen) == ("debug", "t1-", 500)
    assert (s.ingest.mock_loop, s.ingest.mock_rate) == (True, 2.5)


def test_provider_defaults_to_direct_when_a_streamer_is_named() -> None:
    assert Settings.from_env({"TIKTOK_UNIQUE_ID": "alice"}).ingest.provider == "direct"


def test_blank_values_count_as_unset() -> None:
    s = Settings.from_env({"REDIS_URL": "", "API_PORT": "  ", "INGEST_PROVIDER": ""})
    assert s.bus.redis_url is None
    assert s.api.port == 3000


def test_flags_override_the_environment() -> None:
    s = Settings.from_env(
        {"API_PORT": "8080", "INGEST_PROVIDER": "direct"},
        **{"api.port": 9000, "ingest.provider": "mock", "bus.prefix": None},
    )
    assert (s.api.port, s.ingest.provider, s.bus.prefix) == (9000, "mock", "")


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("API_PORT", "http"),
        ("INGEST_PROVIDER", "tiktok"),
        ("LOG_LEVEL", "loud"),
        ("MAX_DELIVERIES", "x"),
    ],
)
def test_bad_values_name_the_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=var):
        Settings.from_env({var: value})


def test_secrets_are_known_and_never_printed() -> None:
    s = Settings.from_env(
        {
            "EULER_API_KEY": "euler-key-123",
            "SESSION_ID": "tiktok-sess-456",
            "DATABASE_URL": "postgresql://u:dbpass789@h/db",
            "REDIS_URL": "redis://:redispass0@h:6379/0",
        }
    )
    assert set(s.secrets()) == {"euler-key-123", "tiktok-sess-456", "dbpass789", "redispass0"}
    encoded = Settings.from_env({"EULER_API_KEY": "k/y+z=1 2"}).secrets()
    assert set(encoded) == {"k/y+z=1 2", "k%2Fy%2Bz%3D1%202", "k%2Fy%2Bz%3D1+2"}
    for text in (repr(s), str(s)):
        assert not any(secret in text for secret in s.secrets())
    assert redact_url("postgresql://u:dbpass789@h/db") == "postgresql://u:***@h/db"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"


def test_every_environment_variable_is_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    names = [var for _, _, var in _ENV_MAP] + ["TIKTOK_UNIQUE_ID", "WEBHOOK_ALLOWLIST"]
    assert [name for name in names if f"`{name}`" not in readme] == []
