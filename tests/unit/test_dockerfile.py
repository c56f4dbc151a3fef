"""The Dockerfile and .dockerignore, read the way Docker reads them.

The Dockerfile is parsed with ``dockerfile-parse`` (instructions, stages, ``ARG`` substitution in
``FROM``) and the instructions that matter are checked: one pinned base for both stages, only the
virtualenv copied into the final stage, a numeric non-root user, the exec-form healthcheck,
entrypoint and command, the port and the data volume agreeing with ttlp's own defaults. The build
context is computed from ``.dockerignore`` by the Docker SDK's own matcher (see
``tests/support/containers.py``). What the image runs is run for real in
``tests/e2e/test_container.py`` (the builder's steps, the command and its healthcheck), and the
image is built and started where Docker is installed (``tests/unit/test_compose.py``).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from tests.support.containers import (
    DOCKERFILE,
    DOCKERIGNORE,
    build_context,
    commands,
    copies,
    exec_form,
    final_env,
    flag,
    healthcheck,
    seconds,
    stages,
    values,
)
from tests.support.paths import REPO
from ttlp.runtime import ROLES, parse_roles
from ttlp.settings import Settings

UID = 10001


# -- the stages ------------------------------------------------------------------------------
def test_both_stages_use_one_pinned_python_311_slim_image() -> None:
    images = DockerfileParser(path=str(DOCKERFILE)).parent_images  # ARG defaults substituted
    assert len(images) == 2, "expected a builder stage and a final stage"
    assert len(set(images)) == 1, f"the stages use different bases: {images}"
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", images[0]), images[0]
    builder, _ = stages()
    assert builder[0]["value"].split()[-2:] == ["AS", "builder"]


def test_the_final_stage_copies_only_the_virtualenv_from_the_builder() -> None:
    *_, final = stages()
    assert not values(final, "ADD")
    assert copies(final) == [(["/opt/venv"], "/opt/venv", {"from": "builder"})]
    assert final_env()["PATH"].startswith("/opt/venv/bin:")
    builder = [c for run in values(stages()[0], "RUN") for c in commands(run)]
    assert ["python", "-m", "venv", "/opt/venv"] in builder


def test_the_final_stage_runs_as_a_numeric_non_root_user() -> None:
    *_, final = stages()
    users = values(final, "USER")
    assert users, "the final stage sets no USER"
    # Numeric, so runtimes that enforce "non-root" (Kubernetes runAsNonRoot) can verify it.
    assert users[-1] == f"{UID}:{UID}"
    setup = [c for run in values(final, "RUN") for c in commands(run)]
    (groupadd,) = [c for c in setup if c[0] == "groupadd"]
    (useradd,) = [c for c in setup if c[0] == "useradd"]
    assert flag(groupadd, "--gid") == str(UID)
    assert flag(useradd, "--uid") == str(UID)
    assert flag(useradd, "--gid") == groupadd[-1] == useradd[-1] == "ttlp"
    assert flag(useradd, "--shell") == "/usr/sbin/nologin"
    (chown,) = [c for c in setup if c[0] == "chown"]
    assert chown[1] == "ttlp:ttlp"
    assert final_env()["TTLP_DATA_DIR"] in chown[2:]  # the user may write its data


def test_the_healthcheck_is_an_exec_form_python_probe_within_its_interval() -> None:
    options, command = healthcheck(stages()[-1])
    # No curl in the slim image, no shell: the interpreter of the virtualenv on PATH.
    assert command[:2] == ["python", "-c"]
    assert len(command) == 3
    compile(command[2], "HEALTHCHECK", "exec")
    assert seconds(options["timeout"]) < seconds(options["interval"])
    assert int(options["retries"]) >= 1
    assert seconds(options["start-period"]) > 0


def test_entrypoint_and_command_run_every_role_of_the_installed_ttlp() -> None:
    *_, final = stages()
    entrypoint = exec_form(values(final, "ENTRYPOINT")[-1])
    command = exec_form(values(final, "CMD")[-1])
    with (REPO / "pyproject.toml").open("rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert entrypoint == ["ttlp"]
    assert scripts["ttlp"] == "ttlp.cli:main"  # the console script the wheel installs
    assert command[:2] == ["run", "--roles"]
    assert parse_roles(command[2]) == list(ROLES)


def test_the_exposed_port_is_the_default_api_port() -> None:
    *_, final = stages()
    exposed = " ".join(values(final, "EXPOSE")).split()
    assert exposed == [str(Settings.from_env({}).api.port)]


def test_the_data_volume_is_the_data_dir() -> None:
    *_, final = stages()
    env = final_env()
    assert exec_form(values(final, "VOLUME")[-1]) == [env["TTLP_DATA_DIR"]]
    settings = Settings.from_env(env)
    assert settings.data_dir == env["TTLP_DATA_DIR"]
    assert env["PYTHONUNBUFFERED"] == "1"  # logs reach `docker logs` at once
    assert values(final, "WORKDIR")[-1] == "/app"


# -- the build context -----------------------------------------------------------------------
def copied_sources() -> list[str]:
    """What the builder copies from the build context."""
    builder, _ = stages()
    return [source for sources, _, options in copies(builder) if not options for source in sources]


def test_everything_the_builder_copies_is_in_the_build_context() -> None:
    context = build_context(REPO)
    for source in copied_sources():
        found = source in context or any(p.startswith(f"{source}/") for p in context)
        assert found, f"COPY {source}: not in the build context (.dockerignore drops it?)"


def test_the_builder_copies_everything_the_wheel_needs() -> None:
    with (REPO / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = set(wheel["packages"]) | set(wheel["force-include"])
    needed |= {"pyproject.toml", project["project"]["readme"]}
    copied = copied_sources()
    for path in needed:
        assert any(path == c or path.startswith(f"{c}/") for c in copied), path


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        "deploy/.env",
        ".env.production",
        "certs/server.key",
        "certs/server.pem",
        ".git/HEAD",
        ".venv/bin/python",
        "src/ttlp/__pycache__/cli.cpython-311.pyc",
        ".pytest_cache/v/cache/nodeids",
        "data/ttlp.db",
        "ttlp.db",
        "ttlp.db-wal",
        "test-artifacts/report.xml",
        "tests/unit/test_x.py",
        "tests/fixtures/unified-events.ndjson",
        "benchmarks/pipeline.py",
        "docker-compose.yml",
    ],
)
def test_dockerignore_keeps_secrets_and_local_state_out(tmp_path: Path, path: str) -> None:
    (tmp_path / ".dockerignore").write_bytes(DOCKERIGNORE.read_bytes())
    kept = [
        "pyproject.toml",
        "README.md",
        "src/ttlp/cli.py",
        "tests/fixtures/raw-frames.ndjson",
        "tests/fixtures/raw-frames-protobuf.ndjson",
    ]
    for name in [*kept, path]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    context = build_context(tmp_path)
    assert path not in context
    assert set(kept) <= context
