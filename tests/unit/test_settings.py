"""Settings: the seed's variable names, defaults, flags over environment, clear errors; each
variable declared once (next to its field) and the README table and .env.example checked
against those declarations."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from tests.support.paths import REPO
from ttlp.errors import ConfigError
from ttlp.settings import Settings, Variable, documented_variables, redact_url

VARIABLES = documented_variables()
BY_NAME = {v.name: v for v in VARIABLES}


def field_value(settings: Settings, variable: Variable) -> Any:
    value: Any = settings
    for part in variable.field.split("."):
        value = getattr(value, part)
    return value


def field_type(variable: Variable) -> mi.Type:
    """The msgspec type of the variable's field, without its metadata."""
    *sections, name = variable.field.split(".")
    owner: type[msgspec.Struct] = Settings
    for section in sections:
        owner = type(getattr(Settings(), section))
    info = mi.type_info(owner)
    assert isinstance(info, mi.StructType)
    (found,) = (f.type for f in info.fields if f.name == name)
    return found.type if isinstance(found, mi.Metadata) else found


def test_defaults_are_the_embedded_setup() -> None:
    s = Settings.from_env({"HOME": "/home/u"})
    assert s.bus.redis_url is None
    assert s.embedded_bus
    assert s.db.url is None
    assert s.ingest.provider == "mock"
    assert (s.api.port, s.ingest.reconnect_max_attempts, s.retention.event_retention_days) == (
        3000,
        0,
        90,
    )
    assert s.log_level == "info"
    assert s.bus.prefix == ""
    assert s.bus.consumer_name  # the host name
    assert s.bus.stream_maxlen == 2_000  # the in-process bus keeps its entries in RAM
    assert s.data_dir == "/home/u/.local/share/ttlp"
    assert Settings.from_env({"REDIS_URL": "redis://r:6379/0"}).bus.stream_maxlen == 100_000
    xdg = Settings.from_env({"HOME": "/home/u", "XDG_DATA_HOME": "/xdg"})
    assert xdg.data_dir == "/xdg/ttlp"


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
    assert (s.ingest.reconnect_max_attempts, s.retention.event_retention_days) == (7, 30)
    assert (s.log_level, s.bus.prefix, s.bus.stream_maxlen) == ("debug", "t1-", 500)
    assert (s.ingest.mock_loop, s.ingest.mock_rate) == (True, 2.5)


def test_provider_defaults_to_direct_when_a_streamer_is_named() -> None:
    assert Settings.from_env({"TIKTOK_UNIQUE_ID": "alice"}).ingest.provider == "direct"
    assert Settings.from_env({"TIKTOK_UNIQUE_ID": " , "}).ingest.provider == "mock"


def test_a_streamer_flag_alone_means_the_direct_provider_too() -> None:
    """``ttlp run --unique-id alice`` watches alice, as TIKTOK_UNIQUE_ID=alice does."""
    s = Settings.from_env({}, **{"ingest.unique_ids": ("alice",)})
    assert (s.ingest.provider, s.ingest.provider_fallback) == ("direct", False)


@pytest.mark.parametrize(
    ("env", "flags", "fallback"),
    [
        ({}, {}, True),
        ({"TIKTOK_UNIQUE_ID": " , "}, {}, True),
        ({"INGEST_PROVIDER": "mock"}, {}, False),
        ({}, {"ingest.provider": "mock"}, False),
        ({"TIKTOK_UNIQUE_ID": "alice"}, {}, False),
    ],
    ids=["nothing", "blank-streamer", "variable", "flag", "streamer"],
)
def test_the_mock_is_a_fallback_only_when_nothing_named_a_provider_or_streamer(
    env: dict[str, str], flags: dict[str, Any], fallback: bool
) -> None:
    assert Settings.from_env(env, **flags).ingest.provider_fallback is fallback


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


def test_from_env_reads_only_the_mapping_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in VARIABLES:  # a bad value everywhere: read, any of them would fail
        monkeypatch.setenv(variable.name, "not-from-the-mapping!")
    monkeypatch.setenv("XDG_DATA_HOME", "/from-os-environ")
    monkeypatch.setenv("HOME", "/from-os-environ")
    s = Settings.from_env({"HOME": "/home/u", "API_PORT": "8080"})
    assert s.api.port == 8080
    assert (s.bus.redis_url, s.ingest.unique_ids, s.outbound.allowlist) == (None, (), ())
    assert s.data_dir == "/home/u/.local/share/ttlp"
    assert "from-os-environ" not in Settings.from_env({}).data_dir
    defaults = Settings.from_env({"HOME": "/home/u"})
    assert msgspec.structs.asdict(s) == {
        **msgspec.structs.asdict(defaults),
        "api": msgspec.structs.replace(defaults.api, port=8080),
    }


def test_without_a_mapping_the_process_environment_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("API_PORT", "8123")
    monkeypatch.setenv("XDG_DATA_HOME", "/xdg")
    s = Settings.from_env()
    assert (s.api.port, s.data_dir) == (8123, "/xdg/ttlp")


# -- each variable, as its field declares it -----------------------------------------------------
def test_each_variable_is_declared_once() -> None:
    names = [v.name for v in VARIABLES]
    fields = [v.field for v in VARIABLES]
    assert len(set(names)) == len(names)
    assert len(set(fields)) == len(fields)
    assert all(v.description for v in VARIABLES), "a field without its docstring"
    for seed in (  # DESIGN §10
        "INGEST_PROVIDER",
        "TIKTOK_UNIQUE_ID",
        "EULER_API_KEY",
        "SESSION_ID",
        "REDIS_URL",
        "DATABASE_URL",
        "API_PORT",
        "RECONNECT_MAX_ATTEMPTS",
        "EVENT_RETENTION_DAYS",
        "LOG_LEVEL",
        "REDIS_CONSUMER_GROUP_PREFIX",
    ):
        assert seed in BY_NAME


LISTS = {
    "TIKTOK_UNIQUE_ID": (" @alice, bob,,@carol ,", ("alice", "bob", "carol")),
    "WEBHOOK_ALLOWLIST": (
        " 127.0.0.1, 10.1.0.0/16,,hooks.internal ",
        ("127.0.0.1", "10.1.0.0/16", "hooks.internal"),
    ),
}


def test_every_tuple_field_is_a_list_variable() -> None:
    tuples = {v.name for v in VARIABLES if isinstance(field_type(v), mi.VarTupleType)}
    assert tuples == set(LISTS)


@pytest.mark.parametrize("name", sorted(LISTS))
def test_list_variables_are_comma_separated(name: str) -> None:
    raw, expected = LISTS[name]
    variable = BY_NAME[name]
    assert field_value(Settings.from_env({name: raw}), variable) == expected
    assert field_value(Settings.from_env({name: " , ,"}), variable) == ()


def sample(variable: Variable, default: Any) -> tuple[str, Any]:
    """A value other than the default: (as set in the environment, as the field holds it)."""
    kind = field_type(variable)
    if isinstance(kind, mi.LiteralType):
        value = next(v for v in kind.values if v != default)
        return str(value), value
    if isinstance(kind, mi.BoolType):
        return str(not default).lower(), not default
    if isinstance(kind, mi.IntType):
        return str(default + 7), default + 7
    if isinstance(kind, mi.FloatType):
        return str(default + 1.5), default + 1.5
    if isinstance(kind, mi.VarTupleType):
        return "a, b", ("a", "b")
    assert isinstance(kind, (mi.StrType, mi.UnionType)), (variable.name, kind)
    return f"value-of-{variable.name}", f"value-of-{variable.name}"


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_every_variable_sets_its_field(name: str) -> None:
    variable = BY_NAME[name]
    default = field_value(Settings(), variable)
    raw, expected = sample(variable, default)
    assert expected != default
    assert field_value(Settings.from_env({name: raw}), variable) == expected


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_a_worker_process_reads_back_the_settings_it_is_given(name: str) -> None:
    """``environment()`` is how a worker process (``ttlp.runtime.worker_process``) gets its
    parent's settings: every variable's value comes back as it was, whatever else is in the
    parent's environment."""
    variable = BY_NAME[name]
    raw, _ = sample(variable, field_value(Settings(), variable))
    parent = Settings.from_env({name: raw, "INGEST_PROVIDER": "mock"})

    assert Settings.from_env(parent.environment()) == parent
    noise = {v.name: sample(v, field_value(Settings(), v))[0] for v in VARIABLES if v != variable}
    assert Settings.from_env(parent.environment(noise)) == parent
    assert parent.environment({"PATH": "/bin", **noise})["PATH"] == "/bin"


def test_a_worker_process_gets_the_flags_too() -> None:
    parent = Settings.from_env(
        {"LOG_LEVEL": "debug", "REDIS_URL": "redis://env:6379/0"},
        **{"log_level": "warn", "bus.redis_url": "redis://:flag-secret@flag:6379/1"},
    )

    environment = parent.environment()

    assert environment["LOG_LEVEL"] == "warn"
    assert environment["REDIS_URL"] == "redis://:flag-secret@flag:6379/1"
    assert Settings.from_env(environment) == parent


TEXT = (mi.StrType, mi.UnionType, mi.VarTupleType)  # any string is a valid value
CHECKED = sorted(v.name for v in VARIABLES if not isinstance(field_type(v), TEXT))


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("API_PORT", "http"),
        ("INGEST_PROVIDER", "tiktok"),
        ("LOG_LEVEL", "loud"),
        ("MAX_DELIVERIES", "x"),
        ("METRICS_PORT", "70000"),
        *((name, "not a value!") for name in CHECKED),
    ],
)
def test_bad_values_name_the_variable(var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^invalid configuration: {var}: "):
        Settings.from_env({var: value})


def test_bad_flag_values_name_the_variable_too() -> None:
    with pytest.raises(ConfigError, match=r"^invalid configuration: API_PORT: "):
        Settings.from_env({}, **{"api.port": "http"})


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


# -- the README table and .env.example -----------------------------------------------------------
ROW = re.compile(r"\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \|")


def readme_tables() -> tuple[dict[str, str], dict[str, str]]:
    """(the Configuration section's table, every other variable table): name → default cell."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n## Configuration\n")
    end = readme.index("\n## ", start + 1)
    return rows(readme[start:end]), rows(readme[:start] + readme[end:])


def rows(text: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            assert match.group(1) not in table, f"{match.group(1)} twice"
            table[match.group(1)] = match.group(2)
    return table


def shows(cell: str, default: str) -> bool:
    """The README cell states the default (then maybe a remark: ``— (in-process bus)``)."""
    text = cell.replace("`", "").strip()
    return text == default or text.startswith(default + " ")


def test_the_readme_table_lists_every_variable_with_its_default() -> None:
    table, others = readme_tables()
    assert sorted(set(BY_NAME) - set(table)) == [], "in settings, not in the README table"
    assert sorted(set(table) - set(BY_NAME)) == [], "in the README table, not in settings"
    for name, cell in {**others, **table}.items():
        assert name in BY_NAME, f"README documents {name}, which settings do not read"
        assert shows(cell, BY_NAME[name].default), f"{name}: README {cell!r}, code {BY_NAME[name]}"


def test_env_example_names_only_known_variables() -> None:
    compose = {"COMPOSE_PROFILES"}  # read by docker compose itself
    for path in ("docker-compose.yml", "docker-compose.test.yml"):
        text = (REPO / path).read_text(encoding="utf-8")
        compose |= set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    lines = (REPO / ".env.example").read_text(encoding="utf-8").splitlines()
    assignments = [re.fullmatch(r"(#?)\s*([A-Z][A-Z0-9_]*)=(\S*).*", line) for line in lines]
    found = [m for m in assignments if m]
    assert found
    for match in found:
        commented, name, value = match.groups()
        assert name in BY_NAME or name in compose, f".env.example sets unknown {name}"
        if name in BY_NAME and value and not commented:  # "the values shown are the defaults"
            assert value == BY_NAME[name].default, f".env.example {name}={value}"
