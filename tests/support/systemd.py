"""The README's systemd recipe and the unit files it installs, read the way systemd reads them.

systemd cannot run where the tests run, so this module applies the few documented rules that
decide what a unit's process is (systemd.unit(5), systemd.service(5), systemd.exec(5)), to the
plain subset of them that ``deploy/systemd`` uses, and fails on anything outside that subset
rather than guess:

- a unit file is ``[Section]`` headers and ``Key=value`` lines (``#``/``;`` comments); a key may
  repeat (``EnvironmentFile=`` twice);
- specifiers ``%i`` (the instance), ``%H`` (the host name) and ``%%`` are replaced in values;
- the environment is ``Environment=`` assignments, then each ``EnvironmentFile=`` in order (a
  file overrides ``Environment=``, a later file an earlier one); ``-`` before the path makes the
  file optional;
- ``ExecStart=`` is split into words like a shell would for plain words, and a word that is
  exactly ``${NAME}`` becomes that variable's value as one word (empty when unset).

``systemd-analyze verify`` checks the real syntax where it is installed.
"""

from __future__ import annotations

import glob
import re
import shlex
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.paths import REPO
from tests.support.readme import code_blocks, commands, section

DEPLOY = REPO / "deploy" / "systemd"
RECIPE_SECTION = "Without Docker: one process per role under systemd"
SPECIFIER = re.compile(r"%(.)")
PLAIN_VALUE = re.compile(r"[^\"'$\\`]*")
"""Values of an environment file that read the same to systemd and to a shell."""


@dataclass
class Unit:
    name: str
    sections: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def values(self, section: str, key: str) -> list[str]:
        return [v for k, v in self.sections.get(section, []) if k == key]

    def value(self, section: str, key: str) -> str:
        (found,) = self.values(section, key)
        return found


def parse_unit(path: Path) -> Unit:
    unit = Unit(path.name)
    current: list[tuple[str, str]] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        assert not stripped.endswith("\\"), f"{path.name}:{number}: continuation lines"
        header = re.fullmatch(r"\[([A-Za-z]+)\]", stripped)
        if header:
            current = unit.sections.setdefault(header.group(1), [])
            continue
        key, sep, value = stripped.partition("=")
        assert sep, f"{path.name}:{number}: not Key=value: {line!r}"
        assert current is not None, f"{path.name}:{number}: outside a [Section]"
        current.append((key.strip(), value.strip()))
    return unit


def specifiers(value: str, instance: str, host: str) -> str:
    """``value`` with ``%i``, ``%H`` and ``%%`` replaced (any other specifier fails)."""
    known = {"i": instance, "H": host, "%": "%"}

    def replace(match: re.Match[str]) -> str:
        assert match.group(1) in known, f"specifier %{match.group(1)} is not emulated"
        return known[match.group(1)]

    return SPECIFIER.sub(replace, value)


def environment_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an EnvironmentFile (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", stripped)
        assert match, f"{path.name}:{number}: not NAME=value: {line!r}"
        assert PLAIN_VALUE.fullmatch(match.group(2)), f"{path.name}:{number}: quote or $"
        values[match.group(1)] = match.group(2)
    return values


@dataclass
class Process:
    """What systemd would start for one unit instance."""

    unit: str
    instance: str
    argv: list[str]
    env: dict[str, str]


def service_process(
    unit: Unit, instance: str, *, host: str, path: Callable[[str], Path]
) -> Process:
    """The command and environment of ``unit`` for ``instance``; ``path`` maps a file path of
    the host (``/etc/ttlp/x.env``) to where the test keeps it."""
    env: dict[str, str] = {}
    for assignment in unit.values("Service", "Environment"):
        words = shlex.split(specifiers(assignment, instance, host))
        for word in words:
            name, sep, value = word.partition("=")
            assert sep, f"{unit.name}: Environment={assignment}"
            env[name] = value
    for entry in unit.values("Service", "EnvironmentFile"):
        optional = entry.startswith("-")
        file = path(specifiers(entry.removeprefix("-"), instance, host))
        if not file.exists():
            assert optional, f"{unit.name}: EnvironmentFile {file} is missing: the unit fails"
            continue
        env.update(environment_file(file))
    (start,) = unit.values("Service", "ExecStart")
    argv = []
    for word in shlex.split(specifiers(start, instance, host)):
        variable = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", word)
        if variable:
            argv.append(env.get(variable.group(1), ""))
        else:
            assert "$" not in word, f"{unit.name}: only whole-word ${{NAME}} is emulated: {word}"
            argv.append(word)
    return Process(unit.name, instance, argv, env)


# -- the README's recipe ---------------------------------------------------------------------------
@dataclass
class Recipe:
    commands: list[str]
    installed: dict[str, list[Path]]
    """Destination directory → the repository files the recipe installs there."""
    edited: dict[str, list[str]]
    """File the recipe edits → the variables it says to set there."""
    instances: list[str]
    """``ttlp@<instance>`` units the recipe enables, in order."""


def recipe() -> Recipe:
    """The README's systemd recipe: its one code block, read command by command."""
    (block,) = code_blocks(section(RECIPE_SECTION))
    installed: dict[str, list[Path]] = {}
    edited: dict[str, list[str]] = {}
    instances: list[str] = []
    for line in block.splitlines():  # `editor FILE   # WHAT TO SET`: the comment matters here
        if line.startswith("editor "):
            file, _, note = line.partition("#")
            edited[shlex.split(file)[1]] = re.findall(r"[A-Z][A-Z0-9_]+", note)
    for command in commands(block):
        words = shlex.split(command)
        if words[0] == "install" and "-d" not in words:
            *sources, destination = install_operands(words[1:])
            for source in sources:
                matched = sorted(Path(p) for p in glob.glob(str(REPO / source)))
                assert matched, f"`{command}`: {source} matches nothing in the repository"
                installed.setdefault(destination.rstrip("/"), []).extend(matched)
        if words[:3] == ["systemctl", "enable", "--now"]:
            for unit in words[3:]:
                assert unit.startswith("ttlp@"), unit
                instances.append(unit.removeprefix("ttlp@").removesuffix(".service"))
    return Recipe(commands(block), installed, edited, instances)


def install_operands(words: list[str]) -> list[str]:
    """The operands of ``install`` (sources, then the destination), its options dropped."""
    operands = []
    words = list(words)
    while words:
        word = words.pop(0)
        if word in {"-m", "-g", "-o"}:
            words.pop(0)  # the option's value
        elif not word.startswith("-"):
            operands.append(word)
    return operands


def host_name() -> str:
    """``%H``: the host name, as systemd gives it."""
    return socket.gethostname()


def units(recipe: Recipe) -> dict[str, Unit]:
    """The unit files the recipe installs into /etc/systemd/system, by name."""
    return {p.name: parse_unit(p) for p in recipe.installed["/etc/systemd/system"]}


def files_at(recipe: Recipe, directory: str) -> Mapping[str, Path]:
    """File name → repository file, of what the recipe installs into ``directory``."""
    return {p.name: p for p in recipe.installed[directory]}
