"""The folder tree is the architecture (STYLE "Layout"): what may import what.

The import graph is read from the source with ``ast`` (every ``import`` and ``from … import``
of a ``ttlp`` module, at module level or inside a function; ``if TYPE_CHECKING:`` blocks
included, since a type-only cycle is still a cycle for the reader).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

import ttlp

SRC: Final = Path(ttlp.__file__).resolve().parent
TOP_LEVEL: Final = {"__init__", "__main__", "aio", "cli", "errors", "log", "runtime", "settings"}
"""Entry points and cross-cutting basics; everything else lives in the package of its concern."""
APPLICATION: Final = {"ttlp.runtime", "ttlp.roles", "ttlp.cli", "ttlp.__main__"}
"""What wires the packages together: a package never imports these."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The ``ttlp`` modules ``path`` imports (``from ttlp.x import y`` counts as ``ttlp.x.y``
    when that is a module, else ``ttlp.x``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "ttlp")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != "ttlp":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return found


MODULES: Final = {module_name(p) for p in SRC.rglob("*.py")}
GRAPH: Final = {module_name(p): imports_of(p) for p in SRC.rglob("*.py")}


def owner(module: str) -> str:
    """The top-level unit a module belongs to: ``ttlp.tiktok.providers.mock`` → ``ttlp.tiktok``."""
    return ".".join(module.split(".")[:2])


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that starts and ends at the same node, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt == node:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_import_graph_is_read() -> None:
    # The test below must see real edges: a parser that found nothing would pass it.
    assert "ttlp.bus.base" in GRAPH["ttlp.bus.consumer"]
    assert "ttlp.tiktok.providers.base" in GRAPH["ttlp.tiktok.supervisor"]
    assert "ttlp.runtime" in GRAPH["ttlp.roles.ingest"]
    assert len(MODULES) > 60


def test_no_module_import_cycle() -> None:
    assert find_cycle(GRAPH) is None, " → ".join(find_cycle(GRAPH) or [])


def test_no_package_import_cycle() -> None:
    """Between top-level packages too: ``bus`` never needs ``tiktok`` back, and so on."""
    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        packages.setdefault(owner(module), set()).update(owner(t) for t in targets)
    assert find_cycle(packages) is None, " → ".join(find_cycle(packages) or [])


def test_packages_never_import_the_runtime_roles_or_cli() -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if not any(module == a or module.startswith(a + ".") for a in APPLICATION)
        for target in targets
        if any(target == a or target.startswith(a + ".") for a in APPLICATION)
    )
    assert offenders == []


def test_top_level_holds_only_entry_points_and_basics() -> None:
    top = {p.stem for p in SRC.glob("*.py")} | {
        p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    modules = {p.stem for p in SRC.glob("*.py")}
    assert modules <= TOP_LEVEL, sorted(modules - TOP_LEVEL)
    assert {"api", "bus", "contracts", "db", "forward", "roles", "rules", "tiktok"} <= top


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
