"""A gap in a streamer's coverage on the session page (README "Streaks, silence and gaps").

The mock publishes a recorded night as written: two sessions of one room, the first cut after a
minute of silence, the second connected 42 s after the first one's last message; and a session
of another room, complete.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import Server, screenshot, start_server, stop_server, wait_until
from tests.support.paths import FIXTURES

pytestmark = pytest.mark.browser

T0 = datetime(2026, 3, 7, 21, 12, 0, tzinfo=UTC)
OTHER_ROOM = "7449999999999999999"
SILENCE = (
    "no message from TikTok for 60 s while connected (INGEST_SILENCE_S=60): the connection is dead"
)
Night = tuple[Server, str, str, str]


def stamp(seconds: float) -> str:
    moment = T0 + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def recorded_night(path: Path) -> tuple[Path, str, str, str]:
    frames = [
        json.loads(line) for line in (FIXTURES / "raw-frames.ndjson").read_text().splitlines()
    ]
    connected = next(f for f in frames if f["type"] == "ControlEvent.CONNECTED")
    chat = next(
        f for f in frames if f["type"] == "WebcastChatMessage" and isinstance(f["data"], dict)
    )
    disconnected = {**connected, "type": "ControlEvent.DISCONNECTED", "data": {}}
    first, second, elsewhere = (str(uuid.uuid4()) for _ in range(3))

    def frame(
        base: dict[str, Any], session: str, seq: int, t: float, room: str | None = None, **data: Any
    ) -> str:
        out = {**base, "sessionId": session, "seqNo": seq}
        out.update(timestamp=stamp(t), ingestedAt=stamp(t + 0.2), data={**base["data"], **data})
        if room:
            out["streamId"] = room
        return json.dumps(out)

    lines = [
        frame(connected, first, 1, 0),
        frame(chat, first, 7441000000000000001, 5),
        frame(disconnected, first, 2, 65, reason=SILENCE, willReconnect=True),
        frame(connected, second, 1, 47),  # 42 s after the first session's last message
        frame(chat, second, 7441000000000000002, 48),
        frame(connected, elsewhere, 1, 0, OTHER_ROOM, roomId=OTHER_ROOM),
        frame(chat, elsewhere, 7441000000000000003, 2, OTHER_ROOM),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path, first, second, elsewhere


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Night]:
    workdir = tmp_path_factory.mktemp("gaps")
    fixture, first, second, elsewhere = recorded_night(workdir / "night.ndjson")
    server = start_server(workdir, fixture=fixture)
    yield server, first, second, elsewhere
    stop_server(server)


def coverage(page: Any, session: str) -> list[str]:
    page.goto(f"/#/session/{session}")
    try:
        wait_until(
            page, "document.querySelectorAll('.session-head .coverage').length > 0", timeout_s=30
        )
    except AssertionError as exc:  # what the page says instead (a load that failed?)
        head = page.evaluate("document.querySelector('.session-head')?.innerText ?? '(none)'")
        raise AssertionError(f"{exc}\nsession head: {head}") from None
    return [p.inner_text() for p in page.query_selector_all(".session-head .coverage")]


def test_the_session_page_says_what_is_missing(login: Any, night: Night) -> None:
    server, first, second, elsewhere = night
    page = login("streamer", server)
    # The mock's frames are stored within moments of the start: wait until every session holds
    # all its events (a session's row is made with its first archived frame, before the store
    # has its events: under a loaded CI the store may still be behind).
    counts = {first: 3, second: 2, elsewhere: 2}
    for session, n in counts.items():
        wait_until(
            page,
            f"fetch('/sessions/{session}').then((r) => r.ok ? r.json() : null)"
            f".then((b) => b !== null && b.eventCount === {n})",
            timeout_s=30,
        )
    at = page.evaluate("new Date('2026-03-07T21:12:05Z').toLocaleTimeString([], { hour12: false })")
    expected = [f"missing 00:42 at {at} ({SILENCE})"]
    assert coverage(page, second) == expected
    assert page.query_selector(".session-head .coverage.gap") is not None
    screenshot(page, "session-gap")
    assert coverage(page, first) == expected
    assert coverage(page, elsewhere) == ["complete: connected all the while the streamer was live"]
