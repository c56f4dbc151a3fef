"""The dead-letter page against a running ttlp (embedded default, the mock publishing the
fixture once, with three frames the normalizer cannot read): each letter shows its id; Retry
and Purge ask twice (the armed-button pattern), per letter and for every letter shown, and the
list reloads after each. A retried frame reaches the normalizer again, which dead-letters it
anew (a new id: the frame is as broken as before)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import (
    WAIT_MS,
    Server,
    screenshot,
    start_server,
    stop_server,
    wait_until,
)
from tests.support.paths import FIXTURES
from tests.support.processes import TTLP

pytestmark = pytest.mark.browser

BROKEN = ("data-not-json", "data-is-array", "gift-repeat-count-not-number")
ROWS = "table.dead-letters tbody tr[data-id]"


@pytest.fixture(scope="module")
def dlq_server(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Server]:
    """ttlp reading the fixture once, then three broken frames: three dead letters."""
    workdir = tmp_path_factory.mktemp("dlq-ui")
    lines = (FIXTURES / "raw-frames.ndjson").read_text().splitlines()
    for line in (FIXTURES / "dlq-frames.ndjson").read_text().splitlines():
        case = json.loads(line)
        if case["case"] in BROKEN:
            lines.append(json.dumps({"fields": case["fields"]}))
    fixture = workdir / "frames.ndjson"
    fixture.write_text("\n".join(lines) + "\n")
    instance = start_server(workdir, fixture=fixture)
    yield instance
    stop_server(instance)


def shown_ids(page: Any) -> list[str]:
    ids: list[str] = page.eval_on_selector_all(ROWS, "rows => rows.map(r => r.dataset.id)")
    return ids


def wait_for_rows(page: Any, n: int) -> list[str]:
    wait_until(page, f"document.querySelectorAll({json.dumps(ROWS)}).length === {n}")
    return shown_ids(page)


def wait_for_letters(page: Any, n: int) -> None:
    """Until the server holds ``n`` dead letters: the page loads the list once (and after each
    action, or on Refresh), so it is opened once the normalizer has dead-lettered the frames."""
    wait_until(page, f"fetch('/dlq?limit=1').then(r => r.json()).then(b => b.total === {n})")


def test_the_list_follows_a_retry_from_a_shell_by_itself(login: Any, dlq_server: Server) -> None:
    """The page loads the newest letters again by itself: ``ttlp dlq retry`` in another
    process takes a letter away (the pipeline's process moves it back to ttlc:raw), and the
    normalizer dead-letters the frame anew under a new id. Nothing on the page is clicked."""
    page = login("streamer", dlq_server)
    wait_for_letters(page, len(BROKEN))
    page.goto("/#/dlq")
    before = wait_for_rows(page, len(BROKEN))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_"))}
    env["TTLP_DATA_DIR"] = str(dlq_server.data_dir)
    done = subprocess.run(
        [*TTLP, "dlq", "retry", before[0]], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "1 dead letter retried" in done.stdout  # the running ttlp took it

    wait_until(
        page,
        f"(() => {{ const ids = [...document.querySelectorAll({json.dumps(ROWS)})]"
        f".map((r) => r.dataset.id); return ids.length === {len(BROKEN)} "
        f"&& !ids.includes({json.dumps(before[0])}); }})()",
        timeout_s=30,
    )
    after = shown_ids(page)
    assert set(before[1:]) < set(after)
    assert after[0] not in before  # the frame's new letter, newest first


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
FITS = (
    "(() => { const w = innerWidth; return document.documentElement.scrollWidth <= w"
    " && document.body.scrollWidth <= w && document.getElementById('main').scrollWidth <= w; })()"
)
"""Nothing on the page is wider than the screen (no sideways scrolling of the page)."""


def test_on_a_phone_each_letter_is_a_card_that_fits_the_screen(
    login: Any, dlq_server: Server
) -> None:
    """At 390 px the eight columns do not fit side by side: each letter is a card of labelled
    lines, its error as wide as the screen, its buttons on it. (Before the purges below.)"""
    page = login("streamer", dlq_server, **PHONE)
    wait_for_letters(page, len(BROKEN))
    page.goto("/#/dlq")
    wait_for_rows(page, len(BROKEN))

    assert page.evaluate(FITS)
    cards = page.eval_on_selector_all(
        ROWS,
        """rows => rows.map((r) => {
          const box = (el) => el.getBoundingClientRect();
          const error = r.querySelector('td.dlq-error');
          const buttons = [...r.querySelectorAll('button')].map(box);
          return { width: box(r).width, height: box(r).height, errorWidth: box(error).width,
                   label: getComputedStyle(error, '::before').content,
                   buttonsIn: buttons.length === 2
                     && buttons.every((b) => b.left >= 0 && b.right <= innerWidth) };
        })""",
    )
    for card in cards:
        assert card["errorWidth"] >= 0.8 * 390, card  # not a squeezed column
        assert card["label"] == '"error"', card
        assert card["buttonsIn"], card
        assert card["height"] < 844, card  # a card, not a column of one word a line
    screenshot(page, "dlq-phone")
    page.locator(f"{ROWS} summary").first.click()  # the payload opens inside the card
    page.locator(f"{ROWS} details[open] pre.payload").wait_for()
    assert page.evaluate(FITS)
    screenshot(page, "dlq-phone-payload")


def test_retry_and_purge_ask_first_then_act_and_the_list_reloads(
    login: Any, dlq_server: Server
) -> None:
    page = login("streamer", dlq_server)
    wait_for_letters(page, len(BROKEN))
    page.goto("/#/dlq")
    first = wait_for_rows(page, len(BROKEN))
    for entry_id in first:  # each letter shows its id
        row = page.locator(f"{ROWS}[data-id='{entry_id}']")
        assert row.locator("td.letter-id").inner_text() == entry_id
    assert page.locator("th").first.inner_text() == "id"
    screenshot(page, "dlq-letters")

    # An armed button that is not clicked again disarms by itself, and nothing happens.
    oldest = page.locator(f"{ROWS}[data-id='{first[-1]}'] button.purge")
    oldest.click()
    assert oldest.get_attribute("data-armed") == "1"
    wait_until(page, "!document.querySelector('button[data-armed]')", timeout_s=10)
    assert oldest.inner_text() == "Purge"
    assert shown_ids(page) == first

    # Retry one: the first click only arms the button.
    newest = page.locator(f"{ROWS}[data-id='{first[0]}']")
    newest.locator("button.retry").click()
    armed = newest.locator("button.retry[data-armed='1']")
    armed.wait_for()
    assert armed.inner_text() == "Really retry?"
    page.wait_for_timeout(300)
    assert shown_ids(page) == first  # nothing happened yet
    screenshot(page, "dlq-retry-armed")
    armed.click()
    page.wait_for_selector("#toast.show:has-text('1 dead letter retried')", timeout=WAIT_MS)
    # Gone from the list; the frame went back to ttlc:raw and the normalizer dead-lettered it
    # again: a newer letter of the same frame, at the top once the list is loaded again.
    wait_until(page, f"!document.querySelector('{ROWS}[data-id=\"{first[0]}\"]')")
    wait_for_letters(page, len(BROKEN))
    page.locator("button.refresh").click()
    again = wait_for_rows(page, len(BROKEN))
    assert first[0] not in again
    assert set(first[1:]) < set(again)
    screenshot(page, "dlq-retried")

    # Purge one, with the same confirmation.
    victim = again[-1]
    row = page.locator(f"{ROWS}[data-id='{victim}']")
    row.locator("button.purge").click()
    assert row.locator("button.purge[data-armed='1']").inner_text() == "Really purge?"
    screenshot(page, "dlq-purge-armed")
    row.locator("button.purge[data-armed='1']").click()
    page.wait_for_selector("#toast.show:has-text('1 dead letter purged')", timeout=WAIT_MS)
    left = wait_for_rows(page, len(BROKEN) - 1)
    assert victim not in left

    # Purge every letter shown.
    everything = page.locator(".dlq-tools button.purge")
    assert everything.inner_text() == f"Purge all {len(left)} shown"
    everything.click()
    page.locator(".dlq-tools button.purge[data-armed='1']").wait_for()
    assert page.locator(".dlq-tools button.purge").inner_text() == "Really purge all 2 shown?"
    assert wait_for_rows(page, len(left)) == left  # still there until the second click
    page.locator(".dlq-tools button.purge[data-armed='1']").click()
    page.wait_for_selector(f"#toast.show:has-text('{len(left)} dead letters purged')")
    page.wait_for_selector("table.dead-letters tr.none:has-text('No dead letters.')")
    assert "0 in ttlc:dlq" in page.inner_text(".dlq-summary")
    screenshot(page, "dlq-purged")
