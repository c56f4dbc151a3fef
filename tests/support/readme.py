"""The README, read the way its readers do: by section, its tables and its code blocks, so that
tests can run and check what it tells people to type."""

from __future__ import annotations

import re

from tests.support.paths import REPO

README = REPO / "README.md"
VARIABLE_ROW = re.compile(r"\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \|")
FENCE = re.compile(r"^```[a-z]*\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def section(title: str) -> str:
    """The text of the ``## title`` section, up to the next ``## `` heading."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks of ``text``, without their fences."""
    return FENCE.findall(text)


def configuration_table() -> dict[str, str]:
    """The Configuration section's table: variable name → its default cell."""
    table: dict[str, str] = {}
    for line in section("Configuration").splitlines():
        match = VARIABLE_ROW.match(line)
        if match:
            assert match.group(1) not in table, f"{match.group(1)} twice"
            table[match.group(1)] = match.group(2).strip()
    return table


def commands(block: str) -> list[str]:
    """The shell commands of a code block: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        command = re.sub(r"(^|\s)#.*$", "", line).strip()
        if command:
            out.append(command)
    return out
