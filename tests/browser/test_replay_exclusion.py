"""A replay never counts as live, seen in the web UI (issue 16): the bundled fixture played
once (no loop, so the figures hold still), the stream's Analytics read, the session replayed
from the Sessions page, and Analytics read again: the same figures, top gifters and chatters;
the replayed session's own page lists its events, each marked as a replay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import WAIT_MS, Server, screenshot, start_server, stop_server, wait_until

pytestmark = pytest.mark.browser

FIGURES = (
    "JSON.stringify({stats: [...document.querySelectorAll('#view-analytics .stat')]"
    ".map((s) => s.innerText), tables: [...document.querySelectorAll('#view-analytics table')]"
    ".map((t) => t.innerText)})"
)
"""Everything Analytics shows as text: the figures and the top lists."""


@pytest.fixture(scope="module")
def played_once(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("replay-exclusion"))
    yield server
    stop_server(server)


def analytics(page: Any) -> str:
    page.goto("/#/analytics")
    page.wait_for_selector("#view-analytics .chart rect.bar", timeout=WAIT_MS)
    page.wait_for_selector("#view-analytics table.grid td:text('@')", timeout=WAIT_MS)
    return str(page.evaluate(FIGURES))


def test_a_replay_leaves_the_streams_analytics_unchanged(login: Any, played_once: Server) -> None:
    page = login("streamer", base=played_once)
    # The fixture played to its end: its one session ended, with gifts.
    page.goto("/#/sessions")
    source = wait_until(
        page,
        "[...document.querySelectorAll('table.sessions tbody tr[data-session]')]"
        ".find((r) => r.cells[1].textContent === 'live' && r.cells[3].textContent !== '—'"
        " && r.querySelector('td[data-col=coins]').textContent !== '0')?.dataset.session",
    )
    before = analytics(page)
    assert "coins" in before  # the figures are there to compare

    page.goto("/#/sessions")
    page.click(f"tr[data-session='{source}'] button.replay", timeout=WAIT_MS)
    page.wait_for_selector(f"tr[data-session='{source}'] .progress.done", timeout=WAIT_MS)
    replayed = wait_until(
        page,
        f"document.querySelector(\"a.replayed-from[href='#/session/{source}']\")"
        "?.closest('tr')?.dataset.session",
    )
    screenshot(page, "replay-exclusion-sessions")

    after = analytics(page)
    assert after == before
    screenshot(page, "replay-exclusion-analytics")

    # The replay itself, asked for by name: its events, each marked as replayed.
    page.goto(f"/#/session/{replayed}")
    page.wait_for_selector("#session-events .row", timeout=WAIT_MS)
    marked = page.eval_on_selector_all(
        "#session-events .row", "rows => rows.map((r) => r.classList.contains('replay'))"
    )
    assert marked
    assert all(marked)
