"""The Compose files say what DESIGN §9 asks, and Compose accepts them.

Where the ``docker compose`` plugin and a Docker engine are installed, Compose itself checks the
files: ``docker compose config`` (interpolation, profiles, the merge of the test override) and
``up --build --wait`` + the smoke service (the stack builds, starts and turns healthy). Where they
are not (this machine's docker client has neither), those tests are skipped with the reason, and
the files are checked without re-implementing Compose: each is validated against the Compose
Specification's JSON Schema, and the parsed YAML is checked for what the project decided (images,
secrets by reference only, healthchecks, the roles and profiles, the test override's changes).
Every variable an app service sets is one ttlp reads, and the environment builds valid ttlp
``Settings``. The commands the containers run (healthchecks, the smoke probe) are run for real in
``tests/e2e/test_container.py``.

``tests/fixtures/compose-spec.json`` is a verbatim copy of the Compose Specification's JSON Schema
(compose-spec/compose-spec, ``schema/compose-spec.json``), taken from the project's shared
conformance data (``shared/conformance/compose-spec.json``). Replace it with a newer release of
that file when Compose gains attributes the project wants to use.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import jsonschema
import pytest

from tests.support.containers import (
    COMPOSE,
    COMPOSE_TEST,
    REFERENCE,
    container_environment,
    env_file_values,
    environment,
    exec_form,
    load_compose,
    stages,
    values,
)
from tests.support.paths import FIXTURES, REPO
from tests.support.readme import code_blocks, commands, configuration_table, section
from ttlp.settings import Settings, documented_variables
from ttlp.tiktok.providers.fallback import fake_events_warning

ENV_EXAMPLE = REPO / ".env.example"
SCHEMA = FIXTURES / "compose-spec.json"

ROLES = ("ingest", "normalize", "store", "api", "rules", "forward")
INFRASTRUCTURE = {"postgres", "redis", "migrate"}
ONE_SHOT = {"migrate", "smoke"}  # exit when done: no healthcheck
SECRET_VARIABLES = {
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "EULER_API_KEY",
    "SESSION_ID",
    "JWT_SECRET",
}
REQUIRED_SECRETS = {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "JWT_SECRET"}
SECRET_KEY = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN|SESSION_ID|AUTH", re.IGNORECASE)
DUMMY_SECRET = "0123456789abcdef" * 4
DUMMY_ENV = dict.fromkeys(REQUIRED_SECRETS, DUMMY_SECRET)
COMPOSE_ONLY = {"COMPOSE_PROFILES", "TTLP_IMAGE", "POSTGRES_PASSWORD", "REDIS_PASSWORD"}
"""Variables of .env.example that configure Compose, not ttlp."""
FORCED = {
    "REDIS_URL": f"redis://:{DUMMY_SECRET}@redis:6379/0",
    "DATABASE_URL": f"postgresql://ttlp:{DUMMY_SECRET}@postgres:5432/ttlp",
    "API_HOST": "0.0.0.0",
    "API_PORT": "3000",
    "METRICS_PORT": "9100",
    "TTLP_DATA_DIR": "/data",
    "CONSUMER_NAME": "",
}
"""What docker-compose.yml gives every ttlp service whatever .env says (with the dummy
passwords): its ``environment:`` wins over ``env_file``."""
CHECKED = {"JWT_SECRET"}
"""In ``environment:`` only so that Compose refuses to start without it: .env's value."""
COMMENTED = re.compile(r"#\s?([A-Z][A-Z0-9_]*)=(.*)")


# -- helpers -----------------------------------------------------------------------------------
def validator() -> jsonschema.protocols.Validator:
    """A validator of the schema's own draft, picked by name: the schema's ``$schema`` lacks the
    ``#`` that jsonschema's own lookup needs, which would otherwise fall back with a warning."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    drafts = {
        "draft-04": jsonschema.Draft4Validator,
        "draft-06": jsonschema.Draft6Validator,
        "draft-07": jsonschema.Draft7Validator,
        "2019-09": jsonschema.Draft201909Validator,
        "2020-12": jsonschema.Draft202012Validator,
    }
    matches = [cls for name, cls in drafts.items() if name in schema.get("$schema", "")]
    assert len(matches) == 1, f"unknown $schema {schema.get('$schema')!r}"
    cls = matches[0]
    cls.check_schema(schema)
    return cls(schema)


def schema_errors(document: Mapping[str, Any]) -> list[str]:
    errors = sorted(validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def volume_target(volume: str | Mapping[str, Any]) -> str:
    """The mount point of a volume in short (``src:target[:mode]``) or long syntax."""
    if isinstance(volume, Mapping):
        return str(volume["target"])
    parts = volume.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def references(value: Any) -> Iterator[re.Match[str]]:
    """Every ``${...}`` reference in the strings of a parsed document."""
    for text in strings(value):
        yield from REFERENCE.finditer(text)


def with_placeholders(value: str) -> str:
    """``value`` with each reference replaced by its default (``${X:-d}`` → ``d``), or by a
    dummy secret: enough to parse a URL or a number, not Compose's interpolation."""

    def placeholder(match: re.Match[str]) -> str:
        return match["arg"] if match["op"] in {"-", ":-"} else DUMMY_SECRET

    return REFERENCE.sub(placeholder, value)


def active(services: Mapping[str, Any], profiles: set[str]) -> set[str]:
    """Services Compose starts for these profiles (unprofiled services always start)."""
    return {
        name
        for name, service in services.items()
        if not service.get("profiles") or profiles & set(service["profiles"])
    }


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def app_services(compose: Mapping[str, Any]) -> dict[str, Any]:
    """Services that run the ttlp image (the all-in-one, the split roles, migrate)."""
    return {name: s for name, s in compose["services"].items() if "build" in s}


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    return values


def option(command: list[str], flag: str) -> str:
    """The value after ``flag`` in an exec-form command."""
    assert flag in command, f"{flag} missing from {command}"
    return command[command.index(flag) + 1]


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose(COMPOSE)


@pytest.fixture(scope="module")
def compose_test() -> dict[str, Any]:
    return load_compose(COMPOSE_TEST)


# -- the Compose Specification -------------------------------------------------------------------
@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_TEST], ids=lambda p: p.name)
def test_compose_file_follows_the_compose_specification(path: Path) -> None:
    errors = schema_errors(load_compose(path))
    assert not errors, f"{path.name} does not follow the Compose Specification:\n" + "\n".join(
        errors
    )


def test_schema_rejects_a_broken_compose_file(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["postgres"]["restart"] = ["always"]
    broken["services"]["redis"]["no_such_attribute"] = True
    assert len(schema_errors(broken)) == 2


def test_every_reference_is_well_formed(
    compose: dict[str, Any], compose_test: dict[str, Any]
) -> None:
    """Compose refuses ``$`` not followed by a name or brace; ``$$`` is a literal dollar."""
    for document in (compose, compose_test):
        for text in strings(document):
            bare = REFERENCE.sub("", text).replace("$$", "")
            assert "$" not in bare, f"a malformed reference in {text!r}"


# -- what docker-compose.yml says ----------------------------------------------------------------
def test_uses_postgres_16_alpine_and_redis_7_alpine(compose: dict[str, Any]) -> None:
    assert compose["services"]["postgres"]["image"] == "postgres:16-alpine"
    assert compose["services"]["redis"]["image"] == "redis:7-alpine"


def test_redis_requires_a_password_from_the_environment(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    password = REFERENCE.fullmatch(option(redis["command"], "--requirepass"))
    assert password is not None
    assert password["name"] == "REDIS_PASSWORD"
    assert option(redis["command"], "--appendonly") == "yes"
    # redis-cli reads the password from REDISCLI_AUTH: never on the healthcheck's command line.
    assert REFERENCE.fullmatch(environment(redis)["REDISCLI_AUTH"])["name"] == "REDIS_PASSWORD"  # type: ignore[index]
    assert not any("REDIS_PASSWORD" in s for s in strings(redis["healthcheck"]))


def test_missing_passwords_stop_compose_with_a_message(
    compose: dict[str, Any], compose_test: dict[str, Any]
) -> None:
    """Every use of a required secret is ``${NAME:?message}``: Compose stops, naming it, when the
    variable is unset or empty (``docker compose config`` shows it where Compose is installed)."""
    seen = set()
    for document in (compose, compose_test):
        for match in references(document):
            if match["name"] in REQUIRED_SECRETS:
                seen.add(match["name"])
                assert match["op"] == ":?", match.group(0)
                assert f"set {match['name']}" in match["arg"], match.group(0)
    assert seen == REQUIRED_SECRETS


def test_app_services_reach_postgres_and_redis_by_service_name(compose: dict[str, Any]) -> None:
    for name, service in app_services(compose).items():
        env = environment(service)
        database = urlsplit(with_placeholders(env["DATABASE_URL"]))
        assert (database.scheme, database.hostname, database.port) == (
            "postgresql",
            "postgres",
            5432,
        ), name
        assert (database.username, database.password, database.path) == (
            "ttlp",
            DUMMY_SECRET,
            "/ttlp",
        ), name
        redis = urlsplit(with_placeholders(env["REDIS_URL"]))
        assert (redis.scheme, redis.hostname, redis.port, redis.path) == (
            "redis",
            "redis",
            6379,
            "/0",
        ), name
        assert redis.password == DUMMY_SECRET, name
        assert env["API_PORT"] == "3000", name
    postgres = environment(compose["services"]["postgres"])
    assert {k: v for k, v in postgres.items() if k != "POSTGRES_PASSWORD"} == {
        "POSTGRES_USER": "ttlp",
        "POSTGRES_DB": "ttlp",
    }


def test_app_services_set_only_variables_ttlp_reads(
    compose: dict[str, Any], compose_test: dict[str, Any]
) -> None:
    known = {variable.name for variable in documented_variables()}
    for document in (compose, compose_test):
        for name, service in app_services(compose).items():
            service = document["services"].get(name, {})
            unknown = set(environment(service)) - known
            assert not unknown, f"{name}: ttlp reads no {sorted(unknown)}"


@pytest.mark.parametrize("name", ["ttlp", *ROLES, "migrate"])
def test_app_service_environment_builds_valid_settings(
    compose: dict[str, Any], compose_test: dict[str, Any], name: str
) -> None:
    """What the container's ttlp reads: production values, then the test override's."""
    for env in (
        environment(compose["services"][name]),
        {
            **environment(compose["services"][name]),
            **environment(compose_test["services"][name]),
        },
    ):
        rendered = {k: with_placeholders(str(v)) for k, v in env.items() if v is not None}
        settings = Settings.from_env(rendered)
        assert settings.api.port == 3000
        assert urlsplit(settings.bus.redis_url or "").hostname == "redis"
        assert settings.metrics_port == 9100


# -- every setting reaches every ttlp service: the README table, .env.example, Compose ----------
def dot_env(tmp_path: Path, text: str) -> dict[str, str]:
    """``text`` as the project's .env (next to a copy of docker-compose.yml's directory view):
    the variables Compose interpolates with, the required secrets filled in as a user would."""
    filled = re.sub(
        rf"^({'|'.join(sorted(REQUIRED_SECRETS))})=$", rf"\1={DUMMY_SECRET}", text, flags=re.M
    )
    (tmp_path / ".env").write_text(filled, encoding="utf-8")
    return env_file_values(filled)


def received(
    compose: dict[str, Any], name: str, tmp_path: Path, env: dict[str, str]
) -> dict[str, str]:
    """What the ttlp process of service ``name`` gets, with ``tmp_path/.env`` as the project's
    .env (the one `env_file: .env` names, relative to the compose file)."""
    return container_environment(compose["services"][name], tmp_path, env)


def example_lines() -> dict[str, tuple[bool, str]]:
    """Every variable .env.example shows: name → (set, i.e. not commented out; its value)."""
    shown: dict[str, tuple[bool, str]] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        set_ = re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line)
        commented = COMMENTED.fullmatch(line)
        match = set_ or commented
        if match and match.group(1) not in shown:
            shown[match.group(1)] = (set_ is not None, match.group(2))
    return shown


def test_the_readme_table_env_example_and_compose_name_the_same_variables(
    compose: dict[str, Any],
) -> None:
    """The three lists: the README's Configuration table is every variable ttlp reads,
    .env.example shows each of them (set, or commented out at its default), and each ttlp
    service reads .env whole, its ``environment:`` forcing only the documented few."""
    readme = configuration_table()
    assert set(readme) == {v.name for v in documented_variables()}
    shown = example_lines()
    assert sorted(set(readme) - set(shown)) == [], "README variables missing from .env.example"
    assert sorted(set(shown) - set(readme) - COMPOSE_ONLY) == [], "unknown in .env.example"
    defaults = {v.name: v.default for v in documented_variables()}
    for name, (is_set, value) in shown.items():
        if name in readme and not is_set:  # uncommenting it must not change anything
            assert value in {"", defaults[name]}, f"# {name}={value}: not ttlp's default"
    for name, service in app_services(compose).items():
        assert set(environment(service)) == set(FORCED) | CHECKED, name
        assert [(f["path"], f["required"]) for f in service["env_file"]] == [(".env", False)], name


def test_every_variable_set_in_env_example_reaches_every_ttlp_service(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    env = dot_env(tmp_path, ENV_EXAMPLE.read_text(encoding="utf-8"))
    for name in app_services(compose):
        got = received(compose, name, tmp_path, env)
        for variable, value in env.items():
            assert got[variable] == FORCED.get(variable, value), f"{name}: {variable}"
        for variable, value in FORCED.items():
            assert got[variable] == value, f"{name}: {variable}"


def test_every_readme_variable_set_in_env_reaches_every_ttlp_service(
    compose: dict[str, Any], compose_test: dict[str, Any], tmp_path: Path
) -> None:
    """.env.example with every line uncommented and a value of its own: each reaches each ttlp
    service, except what the compose file forces (and the test override, its own)."""
    lines = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"#?\s?([A-Z][A-Z0-9_]*)=.*", line)
        if match and match.group(1) not in COMPOSE_ONLY:
            line = f"{match.group(1)}=from-env-{match.group(1).lower()}"
        lines.append(line)
    env = dot_env(tmp_path, "\n".join(lines) + "\n")
    assert set(configuration_table()) <= set(env)
    for name in app_services(compose):
        got = received(compose, name, tmp_path, env)
        for variable in configuration_table():
            expected = FORCED.get(variable, env[variable])
            assert got[variable] == expected, f"{name}: {variable}"
        merged = {
            **compose["services"][name],
            "environment": {
                **environment(compose["services"][name]),
                **environment(compose_test["services"][name]),
            },
        }
        under_test = container_environment(merged, tmp_path, env)
        assert under_test["INGEST_PROVIDER"] == "mock", name
        assert under_test["TIKTOK_UNIQUE_ID"] == "", name
        assert under_test["WEBHOOK_ALLOWLIST"] == env["WEBHOOK_ALLOWLIST"], name


def test_env_example_as_env_runs_the_mock_and_says_so(
    compose: dict[str, Any], compose_test: dict[str, Any], tmp_path: Path
) -> None:
    """Copied as it is, .env.example names no streamer: every ttlp service gets valid settings
    that run the mock provider and carry its warning; with a streamer, no warning; under the
    test override the mock is chosen on purpose, also without it."""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    env = dot_env(tmp_path, text)
    for name in app_services(compose):
        settings = Settings.from_env(received(compose, name, tmp_path, env))
        assert (settings.api.port, settings.metrics_port) == (3000, 9100), name
        assert settings.ingest.provider == "mock", name
        assert fake_events_warning(settings) is not None, name
        merged = {
            **compose["services"][name],
            "environment": {
                **environment(compose["services"][name]),
                **environment(compose_test["services"][name]),
            },
        }
        assert (
            fake_events_warning(Settings.from_env(container_environment(merged, tmp_path, env)))
            is None
        )
    env = dot_env(
        tmp_path, text.replace("\nTIKTOK_UNIQUE_ID=\n", "\nTIKTOK_UNIQUE_ID=luna.beats\n")
    )
    settings = Settings.from_env(received(compose, "ingest", tmp_path, env))
    assert (settings.ingest.provider, settings.ingest.unique_ids) == ("direct", ("luna.beats",))
    assert fake_events_warning(settings) is None


def test_a_dot_env_for_running_ttlp_directly_cannot_misdirect_a_container(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    outside = "\n".join(
        [
            *(f"{name}={DUMMY_SECRET}" for name in sorted(REQUIRED_SECRETS)),
            "REDIS_URL=redis://localhost:6379/0",
            "DATABASE_URL=postgresql://me@localhost/ttlp",
            "API_HOST=127.0.0.1",
            "API_PORT=8080",
            "METRICS_PORT=9200",
            "TTLP_DATA_DIR=/home/me/ttlp",
            "CONSUMER_NAME=laptop",
        ]
    )
    env = dot_env(tmp_path, outside + "\n")
    for name in app_services(compose):
        got = received(compose, name, tmp_path, env)
        assert {k: got[k] for k in FORCED} == FORCED, name


def test_every_long_running_service_has_a_healthcheck(
    compose: dict[str, Any], compose_test: dict[str, Any]
) -> None:
    for name, service in compose["services"].items():
        healthcheck = service.get("healthcheck", {})
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            assert healthcheck.get("disable") is True, name
            continue
        assert not healthcheck.get("disable"), f"{name}: healthcheck disabled"
        assert healthcheck.get("test"), f"{name} has no healthcheck"
        assert healthcheck["test"][0] in {"CMD", "CMD-SHELL"}, name
    # The override disables no healthcheck of a long-running service, and replaces none.
    for name, service in compose_test["services"].items():
        if name not in ONE_SHOT:
            assert "healthcheck" not in service, name
    # The api-serving services probe the api; the workers, the bus they work on.
    for name in ("ttlp", "api"):
        assert "/health" in " ".join(compose["services"][name]["healthcheck"]["test"]), name
    for name in set(ROLES) - {"api"}:
        assert "REDIS_URL" in " ".join(compose["services"][name]["healthcheck"]["test"]), name


def test_one_shot_migrate_runs_before_every_role(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    # Redis too: one-off commands run in this service (`run --rm migrate accounts add ...`).
    assert services["migrate"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for name, service in app_services(compose).items():
        if name == "migrate":
            continue
        assert service["depends_on"] == {
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name


def test_all_in_one_runs_every_role_in_profile_all(compose: dict[str, Any]) -> None:
    ttlp = compose["services"]["ttlp"]
    assert ttlp["command"] == ["run", "--roles", "all"]
    assert ttlp["profiles"] == ["all"]
    assert ttlp["ports"] == ["${API_PORT:-3000}:3000"]
    assert ttlp["restart"] == "unless-stopped"
    assert ttlp["build"] == {"context": "."}


def test_split_profile_runs_each_role_in_its_own_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    split = {name for name, s in services.items() if "split" in s.get("profiles", [])}
    assert split == set(ROLES)
    for role in ROLES:
        assert services[role]["command"] == ["run", "--roles", role], role
        assert services[role]["profiles"] == ["split"], role
        assert services[role]["image"] == services["ttlp"]["image"], role
    assert services["normalize"]["deploy"]["replicas"] == 3
    assert services["store"]["deploy"]["replicas"] == 2
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"ttlp", "api"}


@pytest.mark.parametrize(
    ("profiles", "expected"),
    [
        ({"all"}, INFRASTRUCTURE | {"ttlp"}),
        ({"split"}, INFRASTRUCTURE | set(ROLES)),
        (set(), INFRASTRUCTURE),
    ],
    ids=["all", "split", "none"],
)
def test_profiles_select_one_deployment(
    compose: dict[str, Any], profiles: set[str], expected: set[str]
) -> None:
    services = compose["services"]
    started = active(services, profiles)
    assert started == expected
    for name in started:  # Compose refuses a service that depends on one left out
        assert set(services[name].get("depends_on", {})) <= started, name


def ttlp_command(args: list[str]) -> click.Context:
    """``ttlp args`` parsed by ttlp's own CLI, down to its subcommand, without running it (an
    unknown command, a missing required option or a bad value raises click's error)."""
    from ttlp.cli import cli

    command: click.Command = cli
    words, path = list(args), ["ttlp"]
    while isinstance(command, click.Group):
        assert words, f"`{' '.join(path)}` needs a subcommand"
        name, *words = words
        sub = command.get_command(click.Context(command), name)
        assert sub is not None, f"ttlp has no command `{' '.join([*path, name])}`"
        command, path = sub, [*path, name]
    return command.make_context(" ".join(path), words)


def compose_runs() -> list[list[str]]:
    """Every complete ``docker compose run --rm ...`` the README's Docker section shows."""
    text = section("Deploying with Docker Compose")
    shown = [c for block in code_blocks(text) for c in commands(block)]
    shown += re.findall(r"`(docker compose run [^`]*)`", text)
    return [shlex.split(c) for c in shown if c.startswith("docker compose run --rm ")]


def test_the_readme_first_account_command_works_in_either_profile(
    compose: dict[str, Any],
) -> None:
    """``docker compose run --rm <service> <ttlp args>``: the service exists whichever profile
    is up (it has none), runs the ttlp image's ``ttlp`` entrypoint with the stack's settings,
    starts what ``ttlp accounts`` connects to (PostgreSQL and Redis: it opens the bus too), and
    the rest is a command ttlp's CLI accepts."""
    runs = compose_runs()
    accounts = [argv for argv in runs if "accounts" in argv]
    assert len(accounts) == 1, "the README shows one first-account command"
    (entrypoint,) = values(stages()[-1], "ENTRYPOINT")
    assert exec_form(entrypoint) == ["ttlp"]
    services = compose["services"]
    for argv in runs:
        options, rest = argv[3:], []
        while options and options[0].startswith("-"):
            flag = options.pop(0)
            if flag in {"-e", "--env", "-u", "--user", "-w", "--workdir"}:
                options.pop(0)
        name, *rest = options
        service = services[name]
        for profiles in ({"all"}, {"split"}):
            assert name in active(services, profiles), f"{name} is not up in profile {profiles}"
        assert name in app_services(compose), name
        assert "entrypoint" not in service, name
        assert {"postgres", "redis"} <= set(service["depends_on"]), name
        assert "DATABASE_URL" in environment(service)
        assert "REDIS_URL" in environment(service)
        ttlp_command(rest)
    (first,) = accounts
    context = ttlp_command(first[first.index("accounts") :])
    assert context.command.name == "add"
    assert (context.params["role"].upper(), context.params["scope"]) == ("STREAMER", "luna.beats")


def test_a_command_ttlp_does_not_have_is_caught() -> None:
    with pytest.raises(click.UsageError):
        ttlp_command(["accounts", "add", "luna", "--scope", "x"])  # no --role
    with pytest.raises(AssertionError, match="no command"):
        ttlp_command(["acounts", "add"])


def test_env_example_makes_the_all_in_one_the_default(compose: dict[str, Any]) -> None:
    profiles = set(env_example()["COMPOSE_PROFILES"].split(","))
    assert "ttlp" in active(compose["services"], profiles)
    assert not set(ROLES) & active(compose["services"], profiles)


def test_no_secret_is_written_in_the_compose_files(
    compose: dict[str, Any], compose_test: dict[str, Any]
) -> None:
    for document in (compose, compose_test):
        for name, service in document["services"].items():
            for key, value in environment(service).items():
                if SECRET_KEY.search(key) and value:
                    assert REFERENCE.fullmatch(str(value)), f"{name}: {key} is a literal"
            for value in strings(service):
                url = urlsplit(with_placeholders(value))
                if url.scheme and url.netloc:
                    # Only a reference may stand where a URL carries a password.
                    assert url.password in {None, DUMMY_SECRET}, f"{name}: password in {value}"
            command = service.get("command")
            if isinstance(command, list) and "--requirepass" in command:
                assert REFERENCE.fullmatch(option(command, "--requirepass")), name


def test_env_example_leaves_every_secret_blank() -> None:
    values = env_example()
    for variable in SECRET_VARIABLES:
        assert values.get(variable) == "", variable
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert text.lower().count("never commit") >= len(SECRET_VARIABLES)


def test_env_example_documents_every_variable(
    compose: dict[str, Any], compose_test: dict[str, Any]
) -> None:
    referenced = {m["name"] for doc in (compose, compose_test) for m in references(doc)}
    design = {
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
        "TTLP_DATA_DIR",
        "CONSUMER_NAME",
        "MOCK_RATE",
        "MOCK_LOOP",
        "JWT_SECRET",
    }
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for variable in sorted(referenced | design):
        found = [i for i, line in enumerate(lines) if re.match(rf"#?\s*{variable}=", line)]
        assert found, f"{variable} is missing from .env.example"
        assert lines[found[0] - 1].startswith("#"), f"{variable} has no comment above it"
    defaults = env_example()
    assert defaults["API_PORT"] == "3000"
    assert defaults["RECONNECT_MAX_ATTEMPTS"] == "0"
    assert defaults["EVENT_RETENTION_DAYS"] == "90"
    assert defaults["LOG_LEVEL"] == "info"


def test_env_example_values_are_valid_ttlp_settings() -> None:
    """Copying .env.example to .env gives a configuration ttlp accepts."""
    values = {k: v for k, v in env_example().items() if k not in COMPOSE_ONLY}
    settings = Settings.from_env(values)
    assert settings.api.port == int(values["API_PORT"])
    assert settings.retention.event_retention_days == int(values["EVENT_RETENTION_DAYS"])


# -- what docker-compose.test.yml changes ----------------------------------------------------------
# Compose merges an override into the base file by these rules (Compose Specification, "Merge"):
# mappings key by key, ``environment`` by variable, ``volumes`` by mount target, ``command``
# replaced. The tests below check the override's own entries against the base's; the merged
# result itself is checked by ``docker compose config`` where Compose is installed.
def test_test_override_keeps_postgres_and_redis_off_the_disk(
    compose: dict[str, Any], compose_test: dict[str, Any]
) -> None:
    for name, target in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data")):
        base = {volume_target(v) for v in compose["services"][name]["volumes"]}
        mounts = {volume_target(v): v for v in compose_test["services"][name]["volumes"]}
        assert target in base, f"{name}: the base file mounts nothing at {target}"
        # Same target: the tmpfs replaces the named volume instead of adding a second mount.
        assert mounts[target]["type"] == "tmpfs", name
    redis = compose_test["services"]["redis"]["command"]
    assert redis[0] == compose["services"]["redis"]["command"][0] == "redis-server"
    assert option(redis, "--save") == ""
    assert option(redis, "--appendonly") == "no"
    assert REFERENCE.fullmatch(option(redis, "--requirepass"))["name"] == "REDIS_PASSWORD"  # type: ignore[index]


def test_test_override_runs_every_role_on_the_mock_provider(
    compose: dict[str, Any], compose_test: dict[str, Any]
) -> None:
    assert set(app_services(compose)) <= set(compose_test["services"])
    for name in app_services(compose):
        override = compose_test["services"][name]
        env = environment(override)
        assert env["INGEST_PROVIDER"] == "mock", name
        assert str(env["MOCK_LOOP"]).lower() in {"false", "0"}, name
        assert env["EULER_API_KEY"] == env["SESSION_ID"] == env["TIKTOK_UNIQUE_ID"] == "", name
        assert override["restart"] == "no", name
        # The override changes the environment only: the roles and images stay as in production.
        assert set(override) == {"environment", "restart"}, name


def test_test_override_smoke_service_polls_health_of_either_layout(
    compose_test: dict[str, Any],
) -> None:
    smoke = compose_test["services"]["smoke"]
    assert smoke["profiles"] == ["smoke"]
    urls = environment(smoke)["SMOKE_URLS"].split(",")
    assert [(urlsplit(u).hostname, urlsplit(u).path) for u in urls] == [
        ("ttlp", "/health"),
        ("api", "/health"),
    ]
    assert smoke["entrypoint"] == ["python", "-c"]
    assert not list(references(smoke["command"]))  # Compose would interpolate it
    assert "$" not in smoke["command"][0]


# -- docker compose itself (only where the plugin and an engine are installed) -----------------
def docker_compose() -> list[str]:
    """``docker compose`` (skips the test, with the reason, where it is not installed)."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on this machine")
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["no output"])[0]
        pytest.skip(f"the docker CLI has no compose plugin ({reason})")
    return [docker, "compose"]


def docker_engine() -> None:
    """Skip the test, with the reason, where no Docker engine answers."""
    info = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no output"])[0]
        pytest.skip(f"no Docker engine answers ({reason})")


def compose_command(tmp_path: Path, files: list[Path], profiles: list[str]) -> list[str]:
    env_file = tmp_path / "empty.env"  # never the developer's own .env
    env_file.write_text("", encoding="utf-8")
    command = [*docker_compose(), "--env-file", str(env_file), "--project-directory", str(REPO)]
    command += ["--project-name", f"ttlp-test-{os.getpid()}"]
    for file in files:
        command += ["-f", str(file)]
    for profile in profiles:
        command += ["--profile", profile]
    return command


def compose_env(env: Mapping[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    for name in REQUIRED_SECRETS:
        clean.pop(name, None)
    return {**clean, **env}


def compose_config(
    tmp_path: Path, files: list[Path], profiles: list[str], env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*compose_command(tmp_path, files, profiles), "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=compose_env(env),
    )


@pytest.mark.parametrize(
    ("files", "profiles", "expected"),
    [
        ([COMPOSE], ["all"], INFRASTRUCTURE | {"ttlp"}),
        ([COMPOSE], ["split"], INFRASTRUCTURE | set(ROLES)),
        ([COMPOSE, COMPOSE_TEST], ["all"], INFRASTRUCTURE | {"ttlp"}),
        ([COMPOSE, COMPOSE_TEST], ["split", "smoke"], INFRASTRUCTURE | set(ROLES) | {"smoke"}),
    ],
    ids=["all", "split", "test-all", "test-split"],
)
def test_docker_compose_config_accepts_the_files(
    tmp_path: Path, files: list[Path], profiles: list[str], expected: set[str]
) -> None:
    result = compose_config(tmp_path, files, profiles, DUMMY_ENV)
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout)
    assert set(rendered["services"]) == expected
    assert not schema_errors(rendered)
    if "ttlp" in expected:
        assert rendered["services"]["ttlp"]["command"] == ["run", "--roles", "all"]
    if COMPOSE_TEST in files:
        postgres = rendered["services"]["postgres"]["volumes"]
        assert [(v["type"], v["target"]) for v in postgres] == [
            ("tmpfs", "/var/lib/postgresql/data")
        ]
        for name in expected & (set(ROLES) | {"ttlp"}):
            service = rendered["services"][name]
            assert service["environment"]["INGEST_PROVIDER"] == "mock", name
            assert service["command"] == ["run", "--roles", "all" if name == "ttlp" else name]


@pytest.mark.parametrize("missing", sorted(REQUIRED_SECRETS))
def test_docker_compose_config_refuses_a_missing_secret(tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in DUMMY_ENV.items() if k != missing}
    result = compose_config(tmp_path, [COMPOSE], ["all"], env)
    assert result.returncode != 0
    assert missing in result.stderr


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_the_test_stack_builds_starts_and_answers_health(tmp_path: Path) -> None:
    """``up --build --wait`` (every healthcheck passes), then the smoke service gets a 200."""
    base = compose_command(tmp_path, [COMPOSE, COMPOSE_TEST], ["all"])
    docker_engine()
    env = compose_env({**DUMMY_ENV, "API_PORT": "0", "TTLP_IMAGE": "ttlp:compose-test"})

    def compose_run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], capture_output=True, text=True, timeout=timeout, check=False, env=env
        )

    try:
        up = compose_run("up", "--detach", "--build", "--wait", "--wait-timeout", "300")
        assert up.returncode == 0, up.stderr[-3000:]
        smoke = compose_run("run", "--rm", "smoke", timeout=300)
        assert smoke.returncode == 0, smoke.stderr[-3000:]
        assert "smoke: http://ttlp:3000/health 200" in smoke.stdout
    finally:
        compose_run("down", "--volumes", "--remove-orphans", timeout=300)
