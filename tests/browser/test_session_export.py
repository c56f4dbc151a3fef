"""The session page's downloads (``GET /sessions/{id}/export``): offered to moderators and
streamers, a real file when clicked; not shown to a viewer, whom the API refuses."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import WAIT_MS, screenshot
from ttlp.db.export import CSV_COLUMNS, FORMATS

pytestmark = pytest.mark.browser


def open_a_session(page: Any) -> str:
    page.goto("/#/sessions")
    row = page.wait_for_selector("table.sessions tbody tr[data-session]", timeout=WAIT_MS)
    session = str(row.get_attribute("data-session"))
    page.goto(f"/#/session/{session}")
    page.wait_for_selector(".session-head p", timeout=WAIT_MS)  # the session has loaded
    return session


@pytest.mark.parametrize("name", ["streamer", "moderator"])
def test_a_download_link_saves_the_session_as_a_file(login: Any, name: str) -> None:
    page = login(name)
    session = open_a_session(page)
    links = page.locator(".session-head .downloads a")
    assert [links.nth(i).get_attribute("data-format") for i in range(links.count())] == list(
        FORMATS
    )
    with page.expect_download() as info:
        page.click(".session-head .downloads a[data-format=csv]")
    download = info.value
    assert download.suggested_filename == f"ttlp-session-{session}.csv"
    with Path(download.path()).open(encoding="utf-8-sig", newline="") as saved:
        rows = list(csv.reader(saved))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) > 1
    assert {row[1] for row in rows[1:]} == {session}
    screenshot(page, f"session-downloads-{name}")


def test_a_viewer_is_offered_no_download(login: Any) -> None:
    page = login("viewer")
    open_a_session(page)
    assert page.locator(".session-head .downloads").count() == 0
