"""The rule editor's Backtest panel against a running ttlp whose mock played one hour of chat
(3,000 messages of 40 viewers in waves, one with an HTML injection; faithful mode, so the
session keeps its own times): a STREAMER backtests a stored, disabled rule and sees the
figures, the fires-per-minute chart and the first outputs with their events; a MODERATOR runs
it from the read-only view; a backtest in flight shows its progress and is cancelled.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from tests.support.browser import (
    PASSWORD,
    XSS,
    Server,
    screenshot,
    start_server,
    stop_server,
    wait_until,
)
from tests.support.paths import FIXTURES

pytestmark = pytest.mark.browser

MESSAGES: Final = 3000
STORE_TIMEOUT_S: Final = 120
VIEWERS: Final = 40
START: Final = datetime(2025, 3, 1, 20, 0, tzinfo=UTC)
RULE_NAME: Final = "hello back (backtest ui)"
RULE: Final = {
    "name": RULE_NAME,
    "scope": "luna.beats",
    "eventType": "CHAT",
    "condition": {"in": ["hello", {"var": "payload.message"}]},
    "action": {"type": "log", "template": "{username}: {message}"},
    "userCooldownS": 120,
    "enabled": False,  # a backtest runs it all the same; the live rules role leaves it alone
}


def hour_of_chat(path: Path) -> Path:
    """The fixture's CONNECTED, 3,000 chat messages over an hour, its DISCONNECTED: raw.v1
    JSON frames as the mock reads them. Viewers come and go in waves; one in three says hello."""
    lines = [json.loads(x) for x in (FIXTURES / "raw-frames.ndjson").read_text().splitlines()]
    connected, disconnected = lines[0], lines[-1]
    chat = next(
        f for f in lines if f["type"] == "WebcastChatMessage" and isinstance(f["data"], dict)
    )
    chat["data"]["user"].pop("badgeList", None)  # a smaller file
    out = [_at(connected, START)]
    for i in range(MESSAGES):
        at = START + timedelta(seconds=i * 3600 / MESSAGES)
        active = 4 + int((VIEWERS - 4) * math.sin(math.pi * i / (MESSAGES / 3)) ** 2)
        viewer = (i * 7) % active
        frame = json.loads(json.dumps(chat))
        seq = 7443000000000000000 + i
        frame["seqNo"] = seq
        data = frame["data"]
        data["common"].update(msgId=str(seq))
        data["content"] = ("hello " + (XSS if i == 1 else f"#{i}")) if i % 3 == 1 else "nice"
        user_id = str(7013000000000000000 + viewer)
        data["user"].update(id=user_id, displayId=f"viewer_{viewer}", nickname=f"Viewer {viewer}")
        out.append(_at(frame, at))
    out.append(_at(disconnected, START + timedelta(hours=1, seconds=1)))
    path.write_text("\n".join(json.dumps(f, ensure_ascii=False) for f in out) + "\n")
    return path


def _at(frame: dict[str, Any], at: datetime) -> dict[str, Any]:
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    frame = {**frame, "timestamp": stamp, "ingestedAt": stamp}
    if isinstance(frame.get("data"), dict) and "common" in frame["data"]:
        frame["data"]["common"]["createTime"] = str(int(at.timestamp() * 1000))
    return frame


@dataclass(frozen=True)
class Night:
    server: Server
    rule_id: int


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Night]:
    """ttlp with the hour of chat played once, at full speed, times kept; every message stored;
    the rule saved (disabled) through the API."""
    workdir = tmp_path_factory.mktemp("backtest-ui")
    fixture = hour_of_chat(workdir / "hour.ndjson")
    server = start_server(workdir, "--rate", "0", fixture=fixture)
    try:
        deadline = time.monotonic() + STORE_TIMEOUT_S
        while _chats(server) < MESSAGES:
            assert server.proc.poll() is None, "ttlp run exited"
            assert time.monotonic() < deadline, f"only {_chats(server)} chat messages stored"
            time.sleep(0.25)  # polls a database file another process writes
        with httpx.Client(base_url=server.url, timeout=30) as http:
            login = http.post("/auth/login", json={"username": "streamer", "password": PASSWORD})
            login.raise_for_status()
            made = http.post(
                "/rules", json=RULE, headers={"Authorization": f"Bearer {login.json()['token']}"}
            )
            assert made.status_code == 201, made.text
        yield Night(server, int(made.json()["id"]))
    finally:
        stop_server(server)


def _chats(server: Server) -> int:
    if not server.database.exists():
        return 0
    with sqlite3.connect(server.database) as db:
        try:
            return int(
                db.execute("SELECT count(*) FROM events WHERE event_type='CHAT'").fetchone()[0]
            )
        except sqlite3.OperationalError:  # not migrated yet
            return 0


def open_rule(page: Any, rule_id: int, button: str) -> Any:
    page.goto("/#/rules")
    row = page.locator(f"table.rules tbody tr[data-rule='{rule_id}']")
    row.wait_for()
    row.locator(button).click()
    panel = page.locator("#backtest")
    panel.wait_for()
    # The stream's one session, chosen for the user.
    panel.locator("#backtest-sessions input[name=btSession]:checked").wait_for()
    return panel


def test_a_streamer_backtests_a_rule_over_the_hour(login: Any, night: Night) -> None:
    page = login("streamer", night.server)
    panel = open_rule(page, night.rule_id, "button.edit-rule")
    panel.locator("button.run-backtest").click()
    result = panel.locator("#backtest-result")
    result.wait_for()

    figures = dict(
        zip(
            result.locator("table.bt-figures th").all_inner_texts(),
            result.locator("table.bt-figures td").all_inner_texts(),
            strict=True,
        )
    )
    assert figures["events considered"] == "3,000"
    assert figures["matches"] == "1,000"  # one in three says hello
    fires = int(figures["fires"].replace(",", ""))
    assert 0 < fires < 1000  # thinned out by the per-user cooldown of two minutes
    assert int(figures["skipped: per-user cooldown"].replace(",", "")) == 1000 - fires
    # One bar a minute over the hour, their sum the fires.
    bars = result.locator("figure.chart-box svg rect.bar")
    assert 60 <= bars.count() <= 61
    assert result.locator("figure.chart-box figcaption").inner_text() == "Fires per minute"
    heights = [
        float(h) for h in bars.evaluate_all("(bs) => bs.map((b) => b.getAttribute('height'))")
    ]
    assert len({round(h) for h in heights}) > 3  # the waves show
    # The first 20 outputs, each with the event it came from; HTML in a message stays text.
    outputs = result.locator("#backtest-outputs > li")
    assert outputs.count() == 20
    first = outputs.first
    assert first.locator(".rendered").inner_text() == f"viewer_3: hello {XSS}"  # message #1
    assert "@viewer_3" in first.locator(".bt-event").inner_text()
    assert result.locator("#backtest-outputs img").count() == 0
    assert result.locator(".bt-users li").count() == 10
    assert page.locator("#backtest-errors p").count() == 0
    panel.scroll_into_view_if_needed()
    result.locator("figure.chart-box").scroll_into_view_if_needed()
    screenshot(page, "backtest-result")
    page.set_viewport_size({"width": 390, "height": 844})
    result.locator("figure.chart-box").scroll_into_view_if_needed()
    screenshot(page, "backtest-result-phone")


def test_a_moderator_backtests_the_stored_rule_from_the_read_only_view(
    login: Any, night: Night
) -> None:
    page = login("moderator", night.server)
    panel = open_rule(page, night.rule_id, "button.view-rule")
    assert page.locator("button.save-rule").count() == 0
    panel.locator("button.run-backtest").click()
    result = panel.locator("#backtest-result")
    result.wait_for()
    assert result.locator("#backtest-outputs > li").count() == 20


def test_a_backtest_in_flight_shows_progress_and_cancels(login: Any, night: Night) -> None:
    page = login("streamer", night.server)
    panel = open_rule(page, night.rule_id, "button.edit-rule")
    held: list[Any] = []
    page.route("**/rules/backtest", lambda route: held.append(route))  # held: no answer yet
    panel.locator("button.run-backtest").click()
    progress = panel.locator("#backtest-progress")
    progress.wait_for()
    assert "starting" in progress.inner_text()
    assert panel.locator("button.run-backtest").is_disabled()
    wait_until(page, "document.querySelectorAll('#backtest-progress progress').length === 1")
    progress.scroll_into_view_if_needed()
    screenshot(page, "backtest-running")
    panel.locator("button.cancel-backtest").click()
    panel.locator("#backtest-errors p:text-is('Cancelled.')").wait_for()
    assert progress.count() == 0
    assert panel.locator("#backtest-result").count() == 0
    assert len(held) == 1
    page.unroute("**/rules/backtest")
    # Run again, for real: the answer's progress lines lead to the result.
    panel.locator("button.run-backtest").click()
    panel.locator("#backtest-result").wait_for()
    assert panel.locator("#backtest-errors p").count() == 0
