"""The test suite's one conftest: it registers the shared fixtures of ``tests/support``."""

from __future__ import annotations

pytest_plugins = ["tests.support.plugin"]
