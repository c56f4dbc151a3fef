"""The container files, read the way Docker and Compose read them.

The Dockerfile is parsed with ``dockerfile-parse`` (its instructions, the stages, ``ARG``
substitution in ``FROM``, the final stage's ``ENV``); the build context is what the Docker SDK's
own ``.dockerignore`` matcher (``docker.utils.build.exclude_paths``) keeps; the Compose files are
YAML. Nothing here re-implements Docker or Compose: the helpers only pick the parsed values apart,
except ``container_environment``, which applies the few documented Compose rules that decide what
a container's process receives (``env_file`` under ``environment``, ``${...}`` interpolation) to
the plain subset of them the project's files use, and fails on anything outside that subset.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from docker.utils.build import exclude_paths
from dockerfile_parse import DockerfileParser

from tests.support.paths import REPO

COMPOSE = REPO / "docker-compose.yml"
COMPOSE_TEST = REPO / "docker-compose.test.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


def instructions() -> list[dict[str, Any]]:
    """The Dockerfile's instructions (comments dropped), each with ``instruction`` and ``value``."""
    parser = DockerfileParser(path=str(DOCKERFILE))
    return [i for i in parser.structure if i["instruction"] != "COMMENT"]


def stages() -> list[list[dict[str, Any]]]:
    """The instructions of each build stage, from its ``FROM`` on."""
    out: list[list[dict[str, Any]]] = []
    for instruction in instructions():
        if instruction["instruction"] == "FROM":
            out.append([])
        if out:
            out[-1].append(instruction)
    return out


def values(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def exec_form(value: str) -> list[str]:
    """An exec-form (JSON array) argument: no shell between Docker and the process."""
    argv = json.loads(value)
    assert isinstance(argv, list), value
    assert all(isinstance(a, str) for a in argv), value
    return argv


def commands(run: str) -> Iterator[list[str]]:
    """The commands of a shell-form ``RUN``, split on ``&&`` (each must succeed)."""
    command: list[str] = []
    for word in shlex.split(run):
        if word == "&&":
            yield command
            command = []
        else:
            command.append(word)
    yield command


def flag(argv: list[str], name: str) -> str:
    """The value of ``--name value`` or ``--name=value`` in ``argv``."""
    for i, word in enumerate(argv):
        if word == name:
            return argv[i + 1]
        if word.startswith(f"{name}="):
            return word.split("=", 1)[1]
    raise AssertionError(f"{name} missing from {argv}")


def healthcheck(stage: list[dict[str, Any]]) -> tuple[dict[str, str], list[str]]:
    """(options, exec-form command) of the stage's one ``HEALTHCHECK``."""
    (value,) = values(stage, "HEALTHCHECK")
    match = re.fullmatch(r"((?:--[a-z-]+=\S+\s+)*)CMD\s+(\[.*\])", value.strip(), re.DOTALL)
    assert match, f"HEALTHCHECK is not `[--option=value ...] CMD [exec form]`: {value}"
    options = dict(option[2:].split("=", 1) for option in match.group(1).split())
    return options, exec_form(match.group(2))


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    assert match, duration
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[match.group(2)]


def final_env() -> dict[str, str]:
    envs: dict[str, str] = DockerfileParser(path=str(DOCKERFILE)).envs
    return envs


def build_context(root: Path) -> set[str]:
    """The files Docker sends as the build context of ``root`` (its ``.dockerignore`` applied)."""
    ignore = (root / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    return {p for p in exclude_paths(str(root), patterns) if (root / p).is_file()}


def copies(stage: list[dict[str, Any]]) -> list[tuple[list[str], str, dict[str, str]]]:
    """(sources, destination, flags) of each ``COPY`` of a stage, in order."""
    out = []
    for value in values(stage, "COPY"):
        words = shlex.split(value)
        options = dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
        paths = [w for w in words if not w.startswith("--")]
        out.append((paths[:-1], paths[-1], options))
    return out


def load_compose(path: Path) -> dict[str, Any]:
    """A Compose file as the YAML mapping it is."""
    with path.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


def environment(service: Mapping[str, Any]) -> dict[str, Any]:
    """A service's ``environment`` in either syntax (mapping or ``NAME=value`` list)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


# -- what a container receives -----------------------------------------------------------------
REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")
"""A variable reference as the Compose Specification's interpolation section writes it."""
ASSIGNMENT = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)")


def env_file_values(text: str) -> dict[str, str]:
    """``NAME=value`` lines of an env file, as Compose reads the plain ones: blank lines and
    ``#`` comments skipped, the value up to the end of the line, stripped. Quotes, ``export``,
    trailing comments and ``$`` (which Compose would interpolate) are refused, not emulated."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = ASSIGNMENT.fullmatch(stripped)
        assert match, f"line {number} is not NAME=value: {line!r}"
        value = match["value"].strip()
        plain = not value.startswith(("'", '"')) and " #" not in value and "$" not in value
        assert plain, f"line {number}: quotes, a trailing comment or $ in {line!r}"
        values[match["name"]] = value
    return values


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """``value`` with each ``${NAME...}`` resolved from ``variables`` (Compose's rules: ``:-``
    and ``-`` defaults, ``:?`` and ``?`` errors, ``:+`` and ``+`` alternatives, ``$$``)."""

    def resolve(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"]
        present = name in variables
        current = variables.get(name, "")
        empty = not current if op.startswith(":") else not present
        if op.endswith("-"):
            return arg if empty else current
        if op.endswith("?"):
            assert not empty, f"Compose refuses to start: {arg or name}"
            return current
        if op.endswith("+"):
            return "" if empty else arg
        return current

    return REFERENCE.sub(resolve, value.replace("$$", "\0")).replace("\0", "$")


def env_files(service: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(path, required) of each ``env_file`` entry, in order (short or long syntax)."""
    entries = service.get("env_file") or []
    if isinstance(entries, str):
        entries = [entries]
    out = []
    for entry in entries:
        if isinstance(entry, str):
            out.append((entry, True))
        else:
            required = entry.get("required", True)
            out.append((entry["path"], str(required).lower() not in {"false", "0"}))
    return out


def container_environment(
    service: Mapping[str, Any], project_dir: Path, variables: Mapping[str, str]
) -> dict[str, str]:
    """The variables a service's process gets from Compose: its ``env_file`` files (relative to
    ``project_dir``), then its ``environment`` over them (Compose: ``environment`` wins), each
    interpolated from ``variables`` (the shell and the project's .env, as Compose reads them).
    The image's own ``ENV`` is not included."""
    received: dict[str, str] = {}
    for path, required in env_files(service):
        file = project_dir / interpolate(path, variables)
        if not file.exists():
            assert not required, f"Compose refuses to start: env_file {file} is missing"
            continue
        received.update(env_file_values(file.read_text(encoding="utf-8")))
    for name, value in environment(service).items():
        assert value is not None, f"{name}: a bare name takes its value from the shell"
        received[name] = interpolate(str(value), variables)
    return received
