"""The pytest plugin of the test suite: registers the fixture modules of ``tests.support``.

``tests/conftest.py`` names this module in ``pytest_plugins``; every fixture below is then
available to every test without an import.
"""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.support.services",
    "tests.support.databases",
    "tests.support.buses",
    "tests.support.processes",
    "tests.support.api",
    "tests.support.fakes",
    "tests.support.browser",
    "tests.support.faults",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: Playwright's sync API keeps an event loop running in the main
    thread for the rest of the session, where pytest-asyncio could not start its own. (Under
    pytest-xdist the order of files is the scheduler's: ``make test`` runs them apart.)"""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
