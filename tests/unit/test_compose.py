"""The container files say what DESIGN §9 asks, and Compose would accept them.

No Docker engine runs where these tests run, so the compose files are checked by loading the YAML
and validating it against the Compose Specification's JSON Schema, then by asserting what they
must say: images, the Redis password, healthchecks, the roles each service runs, the profiles,
the test override. The merged stack (``docker-compose.yml`` + ``docker-compose.test.yml``) is
built with the merge rules Compose applies and validated too. Where the ``docker compose`` plugin
is installed, ``docker compose config`` (which needs no engine) checks the same files for real.

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
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_TEST = ROOT / "docker-compose.test.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"

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
SECRET_KEY = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN|SESSION_ID|AUTH", re.IGNORECASE)
REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?+][^}]*)?\}")
DUMMY_ENV = {
    "POSTGRES_PASSWORD": "pg-test-password",
    "REDIS_PASSWORD": "redis-test-password",
    "JWT_SECRET": "jwt-test-secret",
}


# -- helpers -----------------------------------------------------------------------------------
def load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


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


def assert_valid(document: Mapping[str, Any], what: str) -> None:
    errors = sorted(validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    details = "\n".join(
        f"  {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )
    assert not errors, f"{what} does not follow the Compose Specification:\n{details}"


def volume_target(volume: str | Mapping[str, Any]) -> str:
    if isinstance(volume, Mapping):
        return str(volume["target"])
    parts = volume.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def environment(service: Mapping[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def merge(base: Any, override: Any, path: tuple[str, ...] = ()) -> Any:
    """Merge two compose documents the way Compose merges ``-f a.yml -f b.yml``.

    Mappings merge key by key; ``environment`` merges by variable; ``volumes`` of a service merge
    by mount target (so an override can replace a named volume with a tmpfs); ``command``,
    ``entrypoint`` and ``healthcheck.test`` are replaced; other sequences are appended without
    duplicates.
    """
    in_service = len(path) == 3 and path[0] == "services"
    key = path[-1] if path else ""
    if in_service and key == "environment":
        return {**environment({"environment": base}), **environment({"environment": override})}
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = {k: copy.deepcopy(v) for k, v in base.items()}
        for k, v in override.items():
            merged[k] = merge(base[k], v, (*path, k)) if k in base else copy.deepcopy(v)
        return merged
    if in_service and key == "volumes":
        by_target = {volume_target(v): v for v in base}
        by_target.update({volume_target(v): v for v in override})
        return list(by_target.values())
    if key in {"command", "entrypoint", "test"}:
        return copy.deepcopy(override)
    if isinstance(base, list) and isinstance(override, list):
        return copy.deepcopy(base + [v for v in override if v not in base])
    return copy.deepcopy(override)


_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
)


class MissingVariable(Exception):
    pass


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$`` substitution."""
    if isinstance(value, Mapping):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        current = env.get(name)
        unset = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in {"-", ":-"}:
            return arg if unset else str(current)
        if op in {"?", ":?"}:
            if unset:
                raise MissingVariable(f"{name}: {arg}")
            return str(current)
        if op in {"+", ":+"}:
            return "" if unset else arg
        return current or ""

    return _INTERPOLATION.sub(substitute, value)


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


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "Dockerfile ends inside a line continuation"
    out = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        out.append((instruction.upper(), args.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (ins, _) in enumerate(instructions) if ins == "FROM")
    return instructions[last_from:]


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE)


@pytest.fixture(scope="module")
def compose_test() -> dict[str, Any]:
    return load(COMPOSE_TEST)


@pytest.fixture(scope="module")
def merged(compose: dict[str, Any], compose_test: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = merge(compose, compose_test)
    return result


# -- schema ------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [COMPOSE, COMPOSE_TEST], ids=lambda p: p.name)
def test_compose_file_follows_the_compose_specification(path: Path) -> None:
    document = load(path)
    assert_valid(document, path.name)
    assert_valid(interpolate(document, DUMMY_ENV), f"{path.name} after interpolation")


def test_merged_test_stack_follows_the_compose_specification(merged: dict[str, Any]) -> None:
    assert_valid(merged, "docker-compose.yml + docker-compose.test.yml")
    assert_valid(interpolate(merged, DUMMY_ENV), "the merged stack after interpolation")


def test_schema_rejects_a_broken_compose_file(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["postgres"]["restart"] = ["always"]
    broken["services"]["redis"]["no_such_attribute"] = True
    assert len(list(validator().iter_errors(broken))) == 2


# -- what docker-compose.yml says ----------------------------------------------------------------
def test_uses_postgres_16_alpine_and_redis_7_alpine(compose: dict[str, Any]) -> None:
    assert compose["services"]["postgres"]["image"] == "postgres:16-alpine"
    assert compose["services"]["redis"]["image"] == "redis:7-alpine"


def test_redis_requires_a_password_from_the_environment(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    password = command[command.index("--requirepass") + 1]
    assert password.startswith("${REDIS_PASSWORD:?")
    assert command[command.index("--appendonly") + 1] == "yes"
    assert not any("REDIS_PASSWORD" in s for s in strings(redis["healthcheck"]))
    for name, service in app_services(compose).items():
        url = environment(service)["REDIS_URL"]
        assert url.startswith("redis://:${REDIS_PASSWORD:?"), name
        assert url.endswith("@redis:6379/0"), name


def test_missing_passwords_stop_compose_with_a_message(compose: dict[str, Any]) -> None:
    for variable in ("POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        env = {k: v for k, v in DUMMY_ENV.items() if k != variable}
        with pytest.raises(MissingVariable, match=rf"{variable}: set {variable} in \.env"):
            interpolate(compose, env)
        with pytest.raises(MissingVariable):
            interpolate(compose, {**env, variable: ""})


def test_app_services_reach_postgres_and_redis_by_service_name(compose: dict[str, Any]) -> None:
    rendered = interpolate(compose, DUMMY_ENV)
    for name, service in app_services(rendered).items():
        env = environment(service)
        assert env["DATABASE_URL"] == ("postgresql://ttlp:pg-test-password@postgres:5432/ttlp"), (
            name
        )
        assert env["REDIS_URL"] == "redis://:redis-test-password@redis:6379/0", name
        assert env["API_PORT"] == "3000", name
    postgres = environment(rendered["services"]["postgres"])
    assert postgres == {
        "POSTGRES_USER": "ttlp",
        "POSTGRES_DB": "ttlp",
        "POSTGRES_PASSWORD": "pg-test-password",
    }


def test_app_services_pass_the_tiktok_settings_through(compose: dict[str, Any]) -> None:
    passed = {
        "INGEST_PROVIDER",
        "TIKTOK_UNIQUE_ID",
        "EULER_API_KEY",
        "SESSION_ID",
        "RECONNECT_MAX_ATTEMPTS",
        "EVENT_RETENTION_DAYS",
        "LOG_LEVEL",
        "REDIS_CONSUMER_GROUP_PREFIX",
        "MOCK_RATE",
        "MOCK_LOOP",
    }
    for name, service in app_services(compose).items():
        env = environment(service)
        for variable in passed:
            assert env.get(variable) == f"${{{variable}:-}}", f"{name}: {variable}"


def test_every_long_running_service_has_a_healthcheck(merged: dict[str, Any]) -> None:
    for document in (load(COMPOSE), merged):
        for name, service in document["services"].items():
            healthcheck = service.get("healthcheck", {})
            if name in ONE_SHOT:
                assert service.get("restart") == "no", name
                continue
            assert not healthcheck.get("disable"), f"{name}: healthcheck disabled"
            assert healthcheck.get("test"), f"{name} has no healthcheck"
    api_like = ("ttlp", "api")
    for name in api_like:
        test = " ".join(load(COMPOSE)["services"][name]["healthcheck"]["test"])
        assert "http://127.0.0.1:3000/health" in test, name


def test_one_shot_migrate_runs_before_every_role(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
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
                for match in re.finditer(r"://[^/@\s]*:([^@\s]*)@", value):
                    assert REFERENCE.fullmatch(match.group(1)), f"{name}: password in {value}"
            command = service.get("command")
            if isinstance(command, list) and "--requirepass" in command:
                assert REFERENCE.fullmatch(command[command.index("--requirepass") + 1]), name
    for path in (COMPOSE, COMPOSE_TEST):
        text = path.read_text(encoding="utf-8")
        for variable in SECRET_VARIABLES:
            for match in re.finditer(rf"(?m)^[\s-]*{variable}\s*[:=][ \t]*(\S*)", text):
                assert match.group(1) in {'""', "''"} or match.group(1).startswith("${"), (
                    f"{path.name}: {match.group(0)}"
                )


def test_env_example_leaves_every_secret_blank() -> None:
    values = env_example()
    for variable in SECRET_VARIABLES:
        assert values.get(variable) == "", variable
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert text.lower().count("never commit") >= len(SECRET_VARIABLES)


def test_env_example_documents_every_variable(compose: dict[str, Any]) -> None:
    referenced = set()
    for path in (COMPOSE, COMPOSE_TEST):
        referenced |= set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", path.read_text("utf-8")))
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
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
    lines = text.splitlines()
    for variable in sorted(referenced | design):
        found = [i for i, line in enumerate(lines) if re.match(rf"#?\s*{variable}=", line)]
        assert found, f"{variable} is missing from .env.example"
        assert lines[found[0] - 1].startswith("#"), f"{variable} has no comment above it"
    defaults = env_example()
    assert defaults["API_PORT"] == "3000"
    assert defaults["RECONNECT_MAX_ATTEMPTS"] == "0"
    assert defaults["EVENT_RETENTION_DAYS"] == "90"
    assert defaults["LOG_LEVEL"] == "info"


# -- what docker-compose.test.yml says -----------------------------------------------------------
def test_test_override_keeps_postgres_and_redis_off_the_disk(merged: dict[str, Any]) -> None:
    postgres = merged["services"]["postgres"]
    mounts = {volume_target(v): v for v in postgres["volumes"]}
    assert len(mounts) == len(postgres["volumes"]), "two mounts on one target"
    data = mounts["/var/lib/postgresql/data"]
    assert isinstance(data, Mapping)
    assert data["type"] == "tmpfs"
    redis = merged["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--save") + 1] == ""
    assert command[command.index("--appendonly") + 1] == "no"
    assert command[command.index("--requirepass") + 1].startswith("${REDIS_PASSWORD")
    assert {volume_target(v): v for v in redis["volumes"]}["/data"]["type"] == "tmpfs"


def test_test_override_runs_every_role_on_the_mock_provider(
    compose: dict[str, Any], compose_test: dict[str, Any], merged: dict[str, Any]
) -> None:
    assert set(app_services(compose)) <= set(compose_test["services"])
    for name in app_services(compose):
        env = environment(merged["services"][name])
        assert env["INGEST_PROVIDER"] == "mock", name
        assert str(env["MOCK_LOOP"]).lower() in {"false", "0"}, name
        assert env["EULER_API_KEY"] == env["SESSION_ID"] == env["TIKTOK_UNIQUE_ID"] == "", name
        assert merged["services"][name]["restart"] == "no", name
        # The override changes the environment only: the roles and images stay as in production.
        assert merged["services"][name]["command"] == compose["services"][name]["command"]


def test_test_override_smoke_service_polls_health_of_either_layout(
    compose_test: dict[str, Any],
) -> None:
    smoke = compose_test["services"]["smoke"]
    assert smoke["profiles"] == ["smoke"]
    urls = environment(smoke)["SMOKE_URLS"].split(",")
    assert urls == ["http://ttlp:3000/health", "http://api:3000/health"]
    assert smoke["entrypoint"] == ["python", "-c"]
    compile(smoke["command"][0], "smoke", "exec")
    assert "$" not in smoke["command"][0]  # Compose would interpolate it


# -- docker compose itself (only where the plugin is installed) ---------------------------------
def _docker_compose() -> list[str]:
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


def _config(
    tmp_path: Path, files: list[Path], profiles: list[str], env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / "empty.env"  # never the developer's own .env
    env_file.write_text("", encoding="utf-8")
    command = [*_docker_compose(), "--env-file", str(env_file), "--project-directory", str(ROOT)]
    for file in files:
        command += ["-f", str(file)]
    for profile in profiles:
        command += ["--profile", profile]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    clean.pop("POSTGRES_PASSWORD", None)
    clean.pop("REDIS_PASSWORD", None)
    return subprocess.run(
        [*command, "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, **env},
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
    result = _config(tmp_path, files, profiles, DUMMY_ENV)
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout)
    assert set(rendered["services"]) == expected
    if "ttlp" in expected:
        assert rendered["services"]["ttlp"]["command"] == ["run", "--roles", "all"]
    if COMPOSE_TEST in files:
        assert rendered["services"]["postgres"]["volumes"][0]["type"] == "tmpfs"
        assert len(rendered["services"]["postgres"]["volumes"]) == 1


def test_docker_compose_config_refuses_a_missing_password(tmp_path: Path) -> None:
    result = _config(tmp_path, [COMPOSE], ["all"], {"REDIS_PASSWORD": "x"})
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


# -- Dockerfile and .dockerignore ----------------------------------------------------------------
def test_dockerfile_is_multi_stage_on_a_pinned_python_311_slim() -> None:
    instructions = dockerfile_instructions()
    args = dict(a.split("=", 1) for ins, a in instructions if ins == "ARG" and "=" in a)
    images = [a.split()[0] for ins, a in instructions if ins == "FROM"]
    assert len(images) >= 2, "expected a builder stage and a final stage"
    resolved = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], i) for i in images]
    final = resolved[-1]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", final), final
    assert all(":" in i and not i.endswith(":latest") for i in resolved)
    builder = " ".join(a for ins, a in instructions if ins == "RUN")
    assert "/opt/venv" in builder
    assert "pip wheel" in builder
    assert any(
        ins == "COPY" and "--from=builder" in a and "/opt/venv" in a for ins, a in final_stage()
    )


def test_dockerfile_runs_as_a_non_root_user() -> None:
    stage = final_stage()
    users = [a for ins, a in stage if ins == "USER"]
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid not in {"root", "0", ""}
    assert uid == "10001"  # numeric, so runAsNonRoot-style checks can verify it
    assert gid in {"", "10001"}
    setup = " ".join(a for ins, a in stage if ins == "RUN")
    assert re.search(r"groupadd .*--gid 10001 ttlp", setup)
    assert re.search(r"useradd .*--uid 10001 .*ttlp", setup)
    assert re.search(r"chown ttlp:ttlp .*/data", setup)


def test_dockerfile_declares_port_health_entrypoint_and_data() -> None:
    stage = final_stage()
    by = {ins: [a for i, a in stage if i == ins] for ins, _ in stage}
    assert "3000" in " ".join(by["EXPOSE"]).split()
    assert len(by["HEALTHCHECK"]) == 1
    options, _, command = by["HEALTHCHECK"][0].partition("CMD ")
    assert "--interval=" in options
    probe = json.loads(command)  # exec form: no shell, no curl
    assert probe[:2] == ["python", "-c"]
    compile(probe[2], "healthcheck", "exec")
    assert "urllib.request" in probe[2]
    assert "'http://127.0.0.1:%s/health'" in probe[2]
    assert "os.environ.get('API_PORT') or '3000'" in probe[2]
    assert json.loads(by["ENTRYPOINT"][-1]) == ["ttlp"]
    assert json.loads(by["CMD"][-1]) == ["run", "--roles", "all"]
    assert json.loads(by["VOLUME"][-1]) == ["/data"]
    env = " ".join(by["ENV"])
    assert "PYTHONUNBUFFERED=1" in env
    assert "TTLP_DATA_DIR=/data" in env
    assert by["WORKDIR"][-1] == "/app"


def test_dockerfile_copies_everything_the_wheel_needs() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {p.split("/")[0] for p in wheel["packages"]} | set(wheel["force-include"])
    needed |= {"pyproject.toml", project["project"]["readme"]}
    copied = {
        source
        for ins, args in dockerfile_instructions()
        if ins == "COPY" and "--from=" not in args
        for source in args.split()[:-1]  # the last word is the destination
        if not source.startswith("--")
    }
    assert needed <= copied, f"not copied into the builder: {sorted(needed - copied)}"
    ignore = [line.strip() for line in DOCKERIGNORE.read_text("utf-8").splitlines()]
    rules = [line for line in ignore if line and not line.startswith("#")]
    for path in needed:
        top = path.split("/")[0]
        if top in rules:  # an excluded folder must re-include exactly this file
            assert f"!{path}" in rules, f".dockerignore drops {path}"


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    rules = {
        line.strip()
        for line in DOCKERIGNORE.read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (
        ".git",
        ".venv",
        "**/.env",
        "**/__pycache__",
        "**/.pytest_cache",
        "test-artifacts",
        "data",
        "**/*.db",
    ):
        assert required in rules, required
    assert not any(rule.startswith("!") and "env" in rule for rule in rules)
