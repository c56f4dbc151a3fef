"""The web UI's pure modules (JSON Logic builder, streak folding, formatting…) are tested in
JavaScript with Node's own runner (``tests/js/*.test.mjs``, no npm packages); this runs them
as part of ``make test``. Without ``node`` on PATH the test is skipped with a reason, except
under ``CI=true``, where that is a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
JS_TESTS = "tests/js/"
TIMEOUT_S = 60


def test_ui_javascript_unit_tests_pass_under_node() -> None:
    node = shutil.which("node")
    if node is None:
        message = "node is not on PATH: the UI's JavaScript unit tests (tests/js) cannot run"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; under CI=true they must run, not skip")
        pytest.skip(message)
    done = subprocess.run(
        [node, "--test", JS_TESTS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, (
        f"node --test {JS_TESTS} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
