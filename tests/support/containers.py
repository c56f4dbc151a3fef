"""The container files, read the way Docker and Compose read them.

The Dockerfile is parsed with ``dockerfile-parse`` (its instructions, the stages, ``ARG``
substitution in ``FROM``, the final stage's ``ENV``); the build context is what the Docker SDK's
own ``.dockerignore`` matcher (``docker.utils.build.exclude_paths``) keeps; the Compose files are
YAML. Nothing here re-implements Docker or Compose: the helpers only pick the parsed values apart.
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
