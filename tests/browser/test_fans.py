"""The Fans page (``#/fans``, MODERATOR and up): a row per fan of the picked streamer, sorted by
clicking a header, narrowed by the search box, downloaded as CSV, each fan linking to the
moderator view; at 1400 px and on a phone (390×844: the table scrolls sideways, the fan column
stays in view, no column is squeezed). Screenshots: ``fans-*``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, Final

import pytest

from tests.support.browser import STREAMER, WAIT_MS, screenshot, wait_until
from ttlp.api.routes.fans import CSV_COLUMNS

pytestmark = pytest.mark.browser

PHONE: Final = {"width": 390, "height": 844}
FIXTURE_FANS: Final = 5
"""The TikTok users of the fixture the mock loops over."""
ROWS: Final = "table.fans tbody tr[data-user]"
FIGURE: Final = re.compile(r"^\d{1,3}(,\d{3})*$")

ALL_FANS_STORED = (
    f"fetch('/streams/@{STREAMER}/fans?limit=1').then((r) => r.json())"
    f".then((b) => b.total >= {FIXTURE_FANS})"
)
"""The store has every user of one pass of the fixture (the server may have just started)."""


def column(page: Any, key: str) -> list[str]:
    return [
        cell.inner_text().strip() for cell in page.query_selector_all(f"{ROWS} [data-col={key}]")
    ]


def figures(page: Any, key: str) -> list[int]:
    return [int(text.replace(",", "")) for text in column(page, key)]


def handles(page: Any) -> list[str]:
    return [a.inner_text() for a in page.query_selector_all(f"{ROWS} a.handle")]


def aria_sort(page: Any, key: str) -> str | None:
    value = page.get_attribute(f"table.fans thead th[data-col={key}]", "aria-sort")
    return str(value) if value is not None else None


def sorted_by(page: Any, key: str, order: str) -> bool:
    values = figures(page, key)
    return len(values) >= FIXTURE_FANS and values == sorted(values, reverse=order == "desc")


def open_fans(page: Any) -> None:
    wait_until(page, ALL_FANS_STORED)
    page.goto("/#/fans")
    page.wait_for_selector(ROWS, timeout=WAIT_MS)


def saved_csv(page: Any) -> tuple[str, list[list[str]]]:
    with page.expect_download() as info:
        page.click("a.fans-csv")
    download = info.value
    with Path(download.path()).open(encoding="utf-8-sig", newline="") as saved:
        return download.suggested_filename, list(csv.reader(saved))


def test_fans_sort_by_a_header_search_and_download(login: Any) -> None:
    page = login("moderator")
    assert "fans" in [a.get_attribute("data-view") for a in page.query_selector_all("#nav a")]
    open_fans(page)

    # Largest coins first, figures written as on the other pages.
    assert aria_sort(page, "coins") == "descending"
    assert aria_sort(page, "messages") == "none"
    assert aria_sort(page, "fan") is None  # not sortable: no aria-sort at all
    assert sorted_by(page, "coins", "desc")
    assert all(FIGURE.match(text) for text in column(page, "coins"))
    assert "fans" in page.inner_text(".fans-count")
    screenshot(page, "fans-desktop")

    # A click on the sorted header flips it; a click on another sorts by that one.
    top = handles(page)[0]
    page.click("table.fans thead th[data-col=coins] button.sort")
    wait_until(
        page,
        "document.querySelector('table.fans th[data-col=coins]')"
        ".getAttribute('aria-sort') === 'ascending'",
    )
    wait_until(page, f"document.querySelector('{ROWS} a.handle').textContent !== '{top}'")
    assert sorted_by(page, "coins", "asc")
    page.click("table.fans thead th[data-col=likes] button.sort")
    wait_until(
        page,
        "document.querySelector('table.fans th[data-col=likes]')"
        ".getAttribute('aria-sort') === 'descending'",
    )
    assert aria_sort(page, "coins") == "none"
    wait_until(page, "!document.querySelector('table.fans').matches('[aria-busy=true]')")
    assert sorted_by(page, "likes", "desc")

    # The search box narrows the table (after typing stops), by handle or display name.
    page.fill("input.fans-search", "ZOE")
    wait_until(
        page,
        f"(() => {{ const rows = [...document.querySelectorAll('{ROWS} a.handle')];"
        " return rows.length === 1 && rows[0].textContent === '@zoe.petals'; })()",
    )
    assert "matching" in page.inner_text(".fans-count")
    screenshot(page, "fans-search")

    # The CSV link downloads what is shown: here the one fan searched for.
    filename, rows = saved_csv(page)
    assert filename == f"ttlp-fans-{STREAMER}.csv"
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row[1] for row in rows[1:]] == ["zoe.petals"]

    # A fan links to the moderator view with that user open.
    link = page.locator(f"{ROWS} a.handle").first
    user_id = page.get_attribute(ROWS, "data-user")
    assert link.get_attribute("href") == f"#/moderate/{user_id}"
    link.click()
    page.wait_for_selector("#user-panel .handle", timeout=WAIT_MS)
    assert page.inner_text("#user-panel .handle") == "@zoe.petals"

    # Every matching fan, not one page: with no search, all of them.
    open_fans(page)
    _, everyone = saved_csv(page)
    assert len(everyone) - 1 >= FIXTURE_FANS
    assert {row[1] for row in everyone[1:]} >= {
        "zoe.petals",
        "akhmed_kzn",
        "xiaoming88",
        "mallory",
        "night.owl",
    }


FITS_SCREEN = (
    "(() => { const w = innerWidth; return document.documentElement.scrollWidth <= w"
    " && document.body.scrollWidth <= w; })()"
)
NOTHING_CLIPPED = (
    "[...document.querySelectorAll('table.fans th, table.fans td')]"
    ".filter((c) => c.scrollWidth > c.clientWidth + 1).map((c) => c.dataset.col || c.className)"
)
"""The cells whose content does not fit them (a squeezed column)."""


def test_fans_on_a_phone_scroll_sideways_with_the_fan_in_view(login: Any) -> None:
    page = login("moderator")
    page.set_viewport_size(PHONE)
    open_fans(page)
    wait_until(page, FITS_SCREEN)  # the page itself is never wider than the phone
    assert page.evaluate(NOTHING_CLIPPED) == []
    scroller = page.locator(".fans-scroll")
    width = scroller.evaluate("(el) => [el.scrollWidth, el.clientWidth]")
    assert width[0] > width[1], "the table scrolls inside its box"
    assert width[1] <= PHONE["width"]
    screenshot(page, "fans-phone")

    scroller.evaluate("(el) => { el.scrollLeft = el.scrollWidth; }")
    wait_until(page, "document.querySelector('.fans-scroll').scrollLeft > 0")
    box = scroller.bounding_box()
    fan = page.locator(f"{ROWS} th.fan").first.bounding_box()
    assert box is not None
    assert fan is not None
    assert abs(fan["x"] - box["x"]) <= 2, "the fan column stays at the left edge"
    screenshot(page, "fans-phone-scrolled")


def test_a_viewer_has_no_fans_page(login: Any) -> None:
    page = login("viewer")
    assert "fans" not in [a.get_attribute("data-view") for a in page.query_selector_all("#nav a")]
    page.goto("/#/fans")
    page.wait_for_selector("#view-analytics", timeout=WAIT_MS)
    assert page.locator("table.fans").count() == 0
