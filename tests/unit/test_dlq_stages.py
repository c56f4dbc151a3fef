"""Every stage that dead-letters is one ``ttlp dlq --stage`` and ``GET /dlq?stage=`` accept:
``STAGES`` names them all (an unknown stage is an error, so a missing one could not be listed)."""

from __future__ import annotations

import ast
from pathlib import Path

from ttlp.bus.keys import STAGES
from ttlp.forward.dispatcher import STAGE as FORWARDER

SRC = Path(__file__).resolve().parents[2] / "src" / "ttlp"


def stages_in_source() -> set[str]:
    """The string constants passed as ``stage=`` anywhere in the package (each role's consume
    loops), and the forwarder's own."""
    found = {FORWARDER}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "stage"
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                found.add(node.value.value)
    return found


def test_every_stage_in_the_code_is_a_known_stage() -> None:
    used = stages_in_source()
    assert {"normalizer", "store", "rules", "ingest", "forwarder"} <= used
    assert used <= set(STAGES)
