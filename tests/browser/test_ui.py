"""The web UI against a running ttlp (mock provider, fixture in a loop): role gating, the live
feed and its filters, the moderator view and notes, replay, HTML injection."""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

import pytest

from tests.support.browser import WAIT_MS, XSS, Server, screenshot, wait_until
from tests.support.paths import FIXTURES

FIXTURE_ROOM = "7441234567890123456"

pytestmark = pytest.mark.browser

NAV = {
    "streamer": [
        "live",
        "moderate",
        "analytics",
        "sessions",
        "fans",
        "rules",
        "overlays",
        "forward",
        "dlq",
    ],
    "moderator": ["live", "moderate", "analytics", "sessions", "fans", "rules"],
    "viewer": ["analytics", "sessions"],
}
STREAK_WAIT_S = 45.0
"""A whole Galaxy streak (five frames) must arrive after the filters are set: one pass of the
looping fixture takes 2.5 s, so this is slack for a loaded machine, not the expected wait."""


def nav_views(page: Any) -> list[str]:
    return [a.get_attribute("data-view") for a in page.query_selector_all("#nav a")]


ROWS_WHERE = (
    "(() => { const rows = [...document.querySelectorAll('#feed .row')];"
    " return rows.length > 0 && rows.every((r) => %s); })()"
)
"""A feed that shows rows, all of them matching the condition on ``r`` (a row)."""


def feed_types(page: Any) -> set[str]:
    return {row.get_attribute("data-type") for row in page.query_selector_all("#feed .row")}


@pytest.mark.parametrize("name", ["streamer", "moderator", "viewer"])
def test_each_role_sees_exactly_the_views_it_may_use(login: Any, name: str) -> None:
    page = login(name)
    assert nav_views(page) == NAV[name]
    page.goto("/#/sessions")
    page.wait_for_selector("table.sessions tbody tr[data-session]", timeout=WAIT_MS)
    replay_buttons = page.locator("button.replay").count()
    if name == "streamer":
        assert replay_buttons > 0
    else:
        assert replay_buttons == 0  # not rendered at all, not merely disabled
    page.goto("/#/live")
    if name == "viewer":
        page.wait_for_selector("#view-analytics")  # no live feed: sent to analytics
        assert page.locator("#feed").count() == 0
        page.goto("/#/moderate/1")
        page.wait_for_selector("#view-analytics")
        assert page.locator("#user-panel").count() == 0
    else:
        page.wait_for_selector("#feed .row", timeout=WAIT_MS)
    page.reload()  # the HttpOnly cookie keeps the session
    page.wait_for_selector("#nav a")
    assert nav_views(page) == NAV[name]
    screenshot(page, f"role-{name}")
    page.click("#logout")
    page.wait_for_selector("form#login")


def test_dashboard_feed_shows_events_and_filters_narrow_it(login: Any) -> None:
    page = login("streamer")
    wait_until(page, "document.querySelectorAll('#feed .row').length >= 10")
    page.wait_for_selector("#feed .t-GIFT .coins", timeout=WAIT_MS)
    page.wait_for_selector("#overview .chart", timeout=WAIT_MS)
    screenshot(page, "dashboard")
    assert len(feed_types(page)) > 1
    for chip in page.query_selector_all(".chip[aria-pressed=true]"):
        if chip.get_attribute("data-chip") != "CHAT":
            chip.click()
    # Rows are redrawn on the next animation frame and the matching events may still be on
    # their way: wait for the filtered feed itself, then check all of it.
    wait_until(page, ROWS_WHERE % "r.dataset.type === 'CHAT'")
    assert feed_types(page) == {"CHAT"}
    page.fill(".feed-search", "Казани")
    wait_until(page, ROWS_WHERE % "r.textContent.includes('Казани')")
    texts = [row.inner_text() for row in page.query_selector_all("#feed .row")]
    assert texts
    assert all("Казани" in text for text in texts)
    page.fill(".feed-search", "")
    page.fill(".feed-user", "@zoe.petals")
    wait_until(page, ROWS_WHERE % "r.textContent.includes('@zoe.petals')")
    handles = {u.inner_text().strip() for u in page.query_selector_all("#feed .row .user")}
    assert handles == {"@zoe.petals"}
    screenshot(page, "dashboard-filtered")


def test_gift_streak_is_one_growing_entry(login: Any) -> None:
    page = login("streamer")
    # The live view must be up before its chips are switched: clicked too early (the view
    # mounts after login), they stay on, and the chat "GALAXY x5 incoming" matches the search.
    page.wait_for_selector("#feed .row", timeout=WAIT_MS)
    for chip in page.query_selector_all(".chip[aria-pressed=true]"):
        if chip.get_attribute("data-chip") != "GIFT":
            chip.click()
    pressed = page.query_selector_all(".chip[aria-pressed=true]")
    assert [chip.get_attribute("data-chip") for chip in pressed] == ["GIFT"]
    page.fill(".feed-search", "Galaxy")
    # The Galaxy streak sends five frames (×1 … ×5): the feed shows one entry per streak (per
    # pass of the looping mock, and per replay running beside it), which grows in place.
    rows = wait_until(
        page,
        "(() => { const all = [...document.querySelectorAll('#feed .row')];"
        " if (!all.every(r => r.dataset.type === 'GIFT')) return false;"  # filters applied
        " const rows = all.map(r => ["
        "r.querySelector('.gift-count')?.textContent, Boolean(r.querySelector('.streak'))]);"
        " return rows.some(([c]) => c === '×5') && rows; })()",
        STREAK_WAIT_S,
    )
    assert all(count in {"×1", "×2", "×3", "×4", "×5"} for count, _ in rows), rows
    # Folded: about one row per streak, not five (×1 … ×5) as unfolded frames would give.
    ended = sum(1 for count, _ in rows if count == "×5")
    assert len(rows) < 3 * ended + 2, rows
    # An entry that reached its end frame (×5) is no longer marked as growing.
    assert not any(count == "×5" and still_open for count, still_open in rows), rows


def test_html_in_a_chat_message_renders_as_text(login: Any) -> None:
    page = login("streamer")
    dialogs: list[str] = []
    requests: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("request", lambda r: requests.append(r.url))
    page.fill(".feed-search", "onerror")
    wait_until(page, ROWS_WHERE % "r.textContent.includes('onerror')")
    message = page.query_selector("#feed .t-CHAT .msg")
    assert message is not None
    assert message.inner_text() == XSS
    assert message.query_selector("img") is None
    page.wait_for_timeout(500)
    assert dialogs == []
    assert not [url for url in requests if url.rstrip("/").endswith("/x")]
    screenshot(page, "xss-as-text")


def test_moderator_sees_a_users_history_and_saves_a_note(login: Any, server: Server) -> None:
    page = login("moderator")
    page.goto("/#/moderate")
    page.wait_for_selector("#feed .row", timeout=WAIT_MS)
    assert page.locator(".chip[data-chip=LIKE][aria-pressed=false]").count() == 1
    page.fill(".feed-user", "@night.owl")
    # That user's row: the rows of others may still be there while the filter applies.
    page.click("#feed .row .user:text-is('@night.owl')", timeout=WAIT_MS)
    page.wait_for_selector("#user-panel .handle:text('@night.owl')", timeout=WAIT_MS)
    page.wait_for_selector("#user-history .row", timeout=WAIT_MS)
    user_id = page.inner_text("#user-panel .user-id")
    assert user_id.isdigit()
    assert page.url.endswith(f"#/moderate/{user_id}")
    page.fill("#user-panel textarea", "gifts a lot; friendly")
    page.click("#user-panel .note-form button")
    page.wait_for_selector("#notes p:text-is('gifts a lot; friendly')")
    screenshot(page, "moderator")
    with sqlite3.connect(server.database) as db:
        rows = db.execute("SELECT user_id, author, body FROM user_notes").fetchall()
    assert (user_id, "moderator", "gifts a lot; friendly") in rows


def test_command_palette_jumps_to_a_user(login: Any) -> None:
    page = login("moderator")
    page.wait_for_selector("#feed .row .user:text-is('@zoe.petals')", timeout=WAIT_MS)
    page.keyboard.press("Control+k")
    page.wait_for_selector("#palette[open]")
    page.fill("#palette-input", "@zoe")
    page.wait_for_selector("#palette li:text('@zoe.petals')")
    screenshot(page, "palette")
    page.keyboard.press("Enter")
    page.wait_for_selector("#user-panel .handle:text('@zoe.petals')", timeout=WAIT_MS)
    page.keyboard.press("Control+k")
    page.fill("#palette-input", "sessions")
    page.keyboard.press("Enter")
    page.wait_for_selector("#view-sessions")


def test_replay_from_the_sessions_list_shows_the_replayed_session(login: Any) -> None:
    page = login("streamer")
    page.goto("/#/sessions")
    # An ended live session (the fixture ends each pass with STREAM_END).
    source = wait_until(
        page,
        "[...document.querySelectorAll('table.sessions tbody tr')]"
        ".find(r => r.cells[1].textContent === 'live' && r.cells[3].textContent !== '—')"
        "?.dataset.session",
    )
    page.click(f"tr[data-session='{source}'] button.replay")
    page.wait_for_selector(f"tr[data-session='{source}'] .progress.done", timeout=60_000)
    replayed = page.locator(f"a.replayed-from[href='#/session/{source}']")
    replayed.first.wait_for(timeout=WAIT_MS)
    screenshot(page, "sessions")
    replay_id = page.evaluate(
        f"document.querySelector(\"a.replayed-from[href='#/session/{source}']\")"
        ".closest('tr').dataset.session"
    )
    page.goto(f"/#/session/{replay_id}")
    page.wait_for_selector("#session-events .row.replay", timeout=WAIT_MS)
    screenshot(page, "session")


def test_the_sessions_list_and_a_sessions_summary(login: Any) -> None:
    page = login("streamer")
    page.goto("/#/sessions")
    page.wait_for_selector(
        "table.sessions tbody tr[data-session] td[data-col=coins]", timeout=WAIT_MS
    )
    # The running session (the mock is connected) is first, marked live; the others follow.
    # The looping mock ends a session and starts the next between passes; the list follows.
    wait_until(
        page,
        "(() => { const rows = [...document.querySelectorAll("
        "'table.sessions tbody tr[data-session]')].map(r => r.matches('.running'));"
        " return rows[0] === true && !rows.slice(1).includes(true)"
        " && !!document.querySelector('table.sessions tbody tr.running .badge.live'); })()",
    )
    screenshot(page, "sessions-summary")
    # An ended live session with gifts: its page shows the summary, the header no "null".
    source = wait_until(
        page,
        "[...document.querySelectorAll('table.sessions tbody tr')]"
        ".find(r => r.cells[1].textContent === 'live' && r.cells[3].textContent !== '—'"
        " && r.querySelector('td[data-col=coins]').textContent !== '0')?.dataset.session",
    )
    listed = page.text_content(f"tr[data-session='{source}'] td[data-col=coins]")
    page.goto(f"/#/session/{source}")
    coins = page.locator(".session-summary tr[data-figure=coins] td")
    coins.wait_for(timeout=WAIT_MS)
    assert coins.text_content() == listed
    page.wait_for_selector(".session-summary ol.top-gifters li", timeout=WAIT_MS)
    assert page.text_content(".session-summary tr[data-figure=coverage] td") != "—"
    head = page.text_content(".session-head") or ""
    assert head.strip()
    assert "null" not in head
    assert "undefined" not in head
    screenshot(page, "session-summary")


ENDED_WITH_GIFTS = (
    "[...document.querySelectorAll('table.sessions tbody tr')]"
    ".find(r => r.cells[1].textContent === 'live' && r.cells[3].textContent !== '—'"
    " && r.querySelector('td[data-col=coins]').textContent !== '0')?.dataset.session"
)
"""An ended live session with gifts in the sessions list (its id)."""


def fetch_json(page: Any, path: str) -> Any:
    """GET ``path`` as the page's account (its cookie)."""
    return page.evaluate(f"fetch({json.dumps(path)}).then(r => r.json())")


def test_a_sessions_page_folds_each_gift_streak_into_one_entry(login: Any) -> None:
    page = login("moderator")
    page.goto("/#/sessions")
    source = wait_until(page, ENDED_WITH_GIFTS)
    events = fetch_json(page, f"/sessions/{source}/events?limit=500")["items"]
    gifts = [e["payload"] for e in events if e["eventType"] == "GIFT"]
    growing = [p for p in gifts if p.get("isGiftStreak") and not p.get("streakEnd")]
    assert len(growing) >= 4, gifts  # streaks of several frames: else this proves nothing
    # What the feed shows of them: each streak once, at its end frame; a single gift as it is.
    expected = [(p["giftName"], f"×{p['giftCount']}") for p in gifts if p not in growing]
    page.goto(f"/#/session/{source}")
    page.wait_for_selector("#session-events .row.t-GIFT", timeout=WAIT_MS)
    wait_until(page, "document.querySelector('#view-session button.more').hidden")  # all loaded
    shown = page.eval_on_selector_all(
        "#session-events .row.t-GIFT",
        "rows => rows.map(r => [r.querySelector('.gift-name').textContent,"
        " r.querySelector('.gift-count').textContent, !!r.querySelector('.streak')])",
    )
    assert [(name, count) for name, count, _ in shown] == expected
    assert not any(still_open for _, _, still_open in shown)  # ended: none marked growing
    rows = page.locator("#session-events .row").count()
    assert rows == len(events) - len(growing)  # the other events one row each
    page.locator("#session-events .row.t-GIFT").first.scroll_into_view_if_needed()
    screenshot(page, "session-streaks-folded")


def test_a_users_history_folds_gift_streaks_across_pages(login: Any) -> None:
    """zoe.petals sends one Galaxy streak (×1 … ×5) per pass of the looping fixture; her
    history comes newest first, 50 events a page: each streak is one entry at ×5, also when a
    page boundary cuts it."""
    page = login("moderator")
    page.goto("/#/moderate")
    page.fill(".feed-user", "@zoe.petals")
    # Her own row: the first row may still be someone else's while the filter applies.
    zoe = "#feed .row .user:text-is('@zoe.petals')"
    page.wait_for_selector(zoe, timeout=WAIT_MS)
    user_id = str(page.get_attribute(zoe, "title")).rsplit("(", 1)[-1].rstrip(")")
    # Two pages' worth of her events stored (a pass of the fixture takes 2.5 s).
    wait_until(
        page,
        f"fetch('/users/{user_id}').then(r => r.json()).then(u => u.eventCount > 60)",
        60,
    )
    page.goto(f"/#/moderate/{user_id}")
    page.wait_for_selector("#user-history .row.t-GIFT", timeout=WAIT_MS)
    first = page.locator("#user-history .row").count()
    page.click("#user-panel button.more:text('Older')")
    wait_until(page, f"document.querySelectorAll('#user-history .row').length > {first}")
    shown = page.eval_on_selector_all(
        "#user-history .row.t-GIFT",
        "rows => rows.map(r => [r.querySelector('.gift-count').textContent,"
        " !!r.querySelector('.streak')])",
    )
    assert len(shown) >= 2, shown
    # Unfolded, the frames would be rows of ×1 … ×4 too; only a streak still running (the
    # newest) may show less than ×5, marked as growing.
    assert all(count == "×5" for count, still_open in shown if not still_open), shown
    assert sum(1 for _, still_open in shown if still_open) <= 1, shown
    page.locator("#user-history .row.t-GIFT").nth(1).scroll_into_view_if_needed()
    screenshot(page, "user-history-streaks-folded")


def fixture_identities() -> tuple[set[str], set[str]]:
    """The fixture's viewers (their handles and display names) and chat messages."""
    people: set[str] = set()
    chat: set[str] = set()
    for line in (FIXTURES / "unified-events.ndjson").read_text().splitlines():
        event = json.loads(line)
        user = event.get("user") or {}
        if user.get("userId", "0") != "0":
            people |= {f"@{user['uniqueId']}", user.get("displayName") or user["uniqueId"]}
        if event["eventType"] == "CHAT":
            chat.add(event["payload"]["message"])
    return people, chat


def test_a_viewers_session_page_shows_the_summary_and_nobody(login: Any) -> None:
    people, chat = fixture_identities()
    moderator = login("moderator")
    moderator.goto("/#/sessions")
    source = wait_until(moderator, ENDED_WITH_GIFTS)
    moderator.goto(f"/#/session/{source}")
    moderator.wait_for_selector("#session-events .row .user", timeout=WAIT_MS)
    seen = moderator.inner_text("#main")
    assert [x for x in people | chat if x in seen], "the moderator's page names nobody either"

    page = login("viewer")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.goto(f"/#/session/{source}")
    page.wait_for_selector(".session-summary ol.top-gifters li", timeout=WAIT_MS)
    page.wait_for_selector("#view-session .summary-only")
    page.wait_for_selector(".session-head p", timeout=WAIT_MS)  # everything has loaded
    text = page.inner_text("#main")
    assert [x for x in people | chat if x in text] == []
    assert set(re.findall(r"@[\w.]+", text)) <= {"@luna.beats"}  # the streamer alone
    for absent in ("#session-events", ".row", ".downloads", "button.more", "a[href^='#/moderate']"):
        assert page.locator(f"#main {absent}").count() == 0, absent
    assert not [url for url in asked if "/events" in url or "/export" in url]
    head = page.text_content(".session-head") or ""
    assert head.strip()
    assert "null" not in head
    assert "undefined" not in head
    screenshot(page, "session-viewer")


def test_analytics_and_rules_pages_render(login: Any) -> None:
    page = login("streamer")
    page.goto("/#/analytics")
    page.wait_for_selector("#view-analytics .chart rect.bar", timeout=WAIT_MS)
    page.wait_for_selector("#view-analytics table.grid td:text('@')", timeout=WAIT_MS)
    screenshot(page, "analytics")
    # A time range narrows it: nothing has happened in 2099 yet.
    page.fill("#view-analytics input[aria-label=From]", "2099-01-01T00:00")
    page.dispatch_event("#view-analytics input[aria-label=From]", "change")
    page.wait_for_selector(
        "#view-analytics .stat:has(span:text-is('events')) strong:text-is('0')", timeout=WAIT_MS
    )
    page.goto("/#/rules")
    page.wait_for_selector("#view-rules table.rules tbody tr")
    screenshot(page, "rules")


def test_a_streamer_sees_the_dead_letters_and_a_moderator_cannot(login: Any) -> None:
    page = login("streamer")
    page.goto("/#/dlq")
    # The fixture's unreadable frame, dead-lettered by the normalizer on every pass.
    row = page.locator("table.dead-letters tbody tr[data-stage=normalizer]").first
    row.wait_for(timeout=WAIT_MS)
    assert row.locator("td.reason").inner_text() == "PARSE_ERROR"
    assert row.locator("td.room").inner_text() == FIXTURE_ROOM
    row.locator("summary").click()
    payload = row.locator("pre.payload").inner_text()
    assert json.loads(payload)["streamId"] == FIXTURE_ROOM  # the entry as it was, as text
    assert "in ttlc:dlq" in page.inner_text(".dlq-summary")
    screenshot(page, "dead-letters")

    moderator = login("moderator")
    assert "dlq" not in nav_views(moderator)
    moderator.goto("/#/dlq")
    moderator.wait_for_selector("#view-live")  # not a view of this role: sent to its default
    assert moderator.locator("table.dead-letters").count() == 0


def test_the_header_shows_what_ingest_is_doing(login: Any) -> None:
    page = login("moderator")
    # The looping mock is between passes for a moment at most: connected, publishing.
    wait_until(page, "document.querySelector('#ingest-status').dataset.state === 'connected'")
    text = page.inner_text("#ingest-status")
    assert text.startswith("ingest: connected"), text
    assert page.get_attribute("#ingest-status", "title") is not None
    screenshot(page, "header-ingest-status")
