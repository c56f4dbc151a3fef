"""The web UI on a phone (390 × 844, touch): a moderator moderates from one. The live feed
fills the screen, its type chips wrap, a long press on a chip shows only that type, the chosen
user's panel is a bottom sheet over the feed (closed by its button, Escape and back), and
nothing is wider than the screen. At 1400 px the moderator view keeps its two columns."""

from __future__ import annotations

from typing import Any, Final

import pytest

from tests.support.browser import WAIT_MS, screenshot, wait_until

pytestmark = pytest.mark.browser

WIDTH: Final = 390
PHONE: Final = {
    "viewport": {"width": WIDTH, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}

FITS = (
    "(() => { const w = innerWidth; return document.documentElement.scrollWidth <= w"
    " && document.body.scrollWidth <= w && document.getElementById('main').scrollWidth <= w; })()"
)
"""Nothing on the page is wider than the screen (no sideways scrolling of the page)."""

PRESSED = "[...document.querySelectorAll('.chip[aria-pressed=true]')].map(c => c.dataset.chip)"

ONLY = (
    "(() => { const on = "
    + PRESSED
    + "; const rows = [...document.querySelectorAll('#feed .row')];"
    " return on.length === 1 && on[0] === '%s' && rows.length > 0"
    " && rows.every(r => r.dataset.type === '%s'); })()"
)
"""Only the chip of one type is on, and the feed shows rows of that type alone."""

SHEET = (
    "(() => { const r = document.getElementById('user-panel').getBoundingClientRect();"
    " return Math.round(r.top) + ',' + Math.round(r.bottom) + ',' + Math.round(r.width); })()"
)

SHEET_OPEN = (
    "(() => { const p = document.getElementById('user-panel'); if (!p) return false;"
    " const r = p.getBoundingClientRect(); return p.dataset.open === '1'"
    " && getComputedStyle(p).visibility === 'visible' && Math.abs(r.bottom - innerHeight) < 1"
    " && !!p.querySelector('.handle'); })()"
)
"""The sheet has slid all the way up (its bottom on the screen's) and shows a user (false
while the moderator view is still being put up, e.g. a user tapped in the Live feed)."""

SHEET_CLOSED = (
    "(() => { const p = document.getElementById('user-panel');"
    " return !!p && p.dataset.open === '0' && getComputedStyle(p).visibility === 'hidden'"
    " && p.getBoundingClientRect().top >= innerHeight"
    " && document.querySelector('.sheet-backdrop').hidden; })()"
)
"""The sheet is down, below the screen, and hidden; the backdrop is gone."""


def phone(login: Any, name: str = "moderator") -> Any:
    page = login(name, **PHONE)
    page.wait_for_selector("#feed .row", timeout=WAIT_MS)
    return page


def touch_hold(page: Any, selector: str, until: str) -> None:
    """Put a finger on ``selector`` and keep it there until ``until`` holds, then lift it."""
    box = page.locator(selector).bounding_box()
    point = {"x": box["x"] + box["width"] / 2, "y": box["y"] + box["height"] / 2}
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [point]})
    try:
        wait_until(page, until)
    finally:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        cdp.detach()


def settled(page: Any) -> None:
    """Two animation frames: whatever the last input set off has been handled and painted."""
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def test_the_live_feed_fills_a_phone_and_its_chips_wrap(login: Any) -> None:
    page = phone(login)
    assert page.url.endswith("#/live")
    layout = page.evaluate(
        "(() => { const feed = document.getElementById('feed').getBoundingClientRect();"
        " const chips = document.querySelector('#feed .chips');"
        " const boxes = [...chips.children].filter(c => !c.hidden)"
        ".map(c => c.getBoundingClientRect());"
        " const box = chips.getBoundingClientRect();"
        " return { feed: feed.width, rows: new Set(boxes.map(b => Math.round(b.top))).size,"
        " inside: boxes.every(b => b.left >= box.left - 0.5 && b.right <= box.right + 0.5),"
        " chipsScroll: chips.scrollWidth - chips.clientWidth,"
        " list: document.querySelector('#feed .vlist').getBoundingClientRect().height }; })()"
    )
    assert layout["feed"] >= 0.9 * WIDTH, layout
    assert layout["rows"] > 1, layout  # wrapped, not squeezed into one row
    assert layout["inside"], layout
    assert layout["chipsScroll"] == 0, layout
    assert layout["list"] >= 300, layout  # rows to read, not a strip under the controls
    assert page.evaluate(FITS)
    screenshot(page, "mobile-live")
    # The overview (analytics) is below the feed, a scroll away.
    page.wait_for_selector("#overview .stats", timeout=WAIT_MS)
    page.evaluate("document.getElementById('overview').scrollIntoView()")
    assert page.evaluate(FITS)
    screenshot(page, "mobile-live-overview")


def test_a_long_press_on_a_chip_shows_only_its_type(login: Any) -> None:
    page = phone(login)
    # The hold alone (the finger still down) switches every other type off.
    touch_hold(page, ".chip[data-chip=CHAT]", ONLY % ("CHAT", "CHAT"))
    settled(page)
    # Lifting the finger must not toggle the chat chip off again.
    assert page.evaluate(PRESSED) == ["CHAT"]
    wait_until(page, ONLY % ("CHAT", "CHAT"))
    screenshot(page, "mobile-chips-only-chat")
    # "all" brings every type back and goes away.
    page.tap(".chip-all")
    wait_until(page, f"{PRESSED}.length === 11 && document.querySelector('.chip-all').hidden")
    # A short tap still toggles one type (the long press did not change what a tap does).
    page.tap(".chip[data-chip=GIFT]")
    wait_until(page, f"!{PRESSED}.includes('GIFT') && {PRESSED}.length === 10")
    assert page.is_visible(".chip-all")
    screenshot(page, "mobile-chips-tapped")


def test_only_this_type_by_mouse_and_keyboard(login: Any) -> None:
    """Without a touch screen: a right-click on a chip, the "only" menu, and from the
    keyboard that menu and the context-menu key (Shift+F10) on a chip."""
    page = login("moderator")
    page.wait_for_selector("#feed .row", timeout=WAIT_MS)
    page.click(".chip[data-chip=GIFT]", button="right")
    wait_until(page, ONLY % ("GIFT", "GIFT"))
    page.click(".chip-all")
    wait_until(page, f"{PRESSED}.length === 11")
    page.select_option("select.chip-only", "CHAT")
    wait_until(page, ONLY % ("CHAT", "CHAT"))
    assert page.input_value("select.chip-only") == ""  # a menu: it does not stay chosen
    page.focus(".chip-all")
    page.keyboard.press("Enter")
    wait_until(page, f"{PRESSED}.length === 11")
    page.focus(".chip[data-chip=JOIN]")
    page.keyboard.press("Shift+F10")
    wait_until(
        page, f"(() => {{ const on = {PRESSED}; return on.length === 1 && on[0] === 'JOIN'; }})()"
    )
    page.keyboard.press("Space")  # the focused chip still toggles from the keyboard
    wait_until(page, f"{PRESSED}.length === 0")
    screenshot(page, "chips-keyboard")


def open_a_user(page: Any) -> str:
    """Tap the first user in the feed; the sheet slides up with them. Their user id.

    The feed takes 20 events a second, newest on top: under load a row can move between
    Playwright finding it and the touch landing, and the tap hits the gap between rows (the
    hash stays ``#/moderate``). Then it taps again, at most three times."""
    for attempt in range(3):
        page.tap("#feed .row .user", timeout=WAIT_MS)
        try:
            wait_until(page, "location.hash.startsWith('#/moderate/')", timeout_s=5)
            break
        except AssertionError:
            if attempt == 2:
                raise
    wait_until(page, SHEET_OPEN)
    return str(page.evaluate("location.hash.split('/')[2]"))


def test_the_user_panel_is_a_bottom_sheet_over_the_feed(login: Any) -> None:
    page = phone(login)
    page.goto("/#/moderate")
    page.wait_for_selector("#feed .row .user", timeout=WAIT_MS)
    wait_until(page, SHEET_CLOSED)
    feed = page.evaluate("document.getElementById('feed').getBoundingClientRect().width")
    assert feed >= 0.9 * WIDTH  # the feed alone, full width, while no user is chosen
    assert page.evaluate(FITS)
    screenshot(page, "mobile-moderate")

    # Opened from the feed: over it, full width, with the user's details; Close closes it.
    user_id = open_a_user(page)
    page.wait_for_selector("#user-history .row", timeout=WAIT_MS)
    top, bottom, width = map(int, page.evaluate(SHEET).split(","))
    assert width == WIDTH
    assert bottom == 844
    assert top < 844 // 2  # a sheet one can work in, not a strip
    assert page.is_visible(".sheet-backdrop")
    assert page.evaluate("document.activeElement.classList.contains('sheet-close')")
    assert page.inner_text("#user-panel .user-id") == user_id
    assert page.evaluate(FITS)
    screenshot(page, "mobile-sheet-open")
    page.tap(".sheet-close")
    wait_until(page, SHEET_CLOSED)
    assert page.evaluate("location.hash") == "#/moderate"  # back where it was opened from
    screenshot(page, "mobile-sheet-closed")

    # Escape closes it.
    open_a_user(page)
    page.keyboard.press("Escape")
    wait_until(page, SHEET_CLOSED)
    assert page.evaluate("location.hash") == "#/moderate"

    # So does the browser's back.
    open_a_user(page)
    page.go_back()
    wait_until(page, SHEET_CLOSED)
    assert page.evaluate("location.hash") == "#/moderate"

    # And a tap on the feed around it (the backdrop).
    open_a_user(page)
    page.touchscreen.tap(WIDTH // 2, 60)
    wait_until(page, SHEET_CLOSED)
    assert page.evaluate(FITS)


def test_a_user_opened_from_the_live_feed_closes_back_to_it(login: Any) -> None:
    page = phone(login)
    assert page.url.endswith("#/live")
    open_a_user(page)
    page.tap(".sheet-close")
    page.wait_for_selector("#view-live #feed .row", timeout=WAIT_MS)
    assert page.evaluate("location.hash") == "#/live"


def test_a_user_opened_from_a_link_closes_to_the_feed(login: Any) -> None:
    """Not opened from a feed (a link, the palette): closing stays in the moderator view."""
    page = phone(login)
    page.goto("/#/moderate")
    page.wait_for_selector("#feed .row .user", timeout=WAIT_MS)
    user_id = page.get_attribute("#feed .row .user", "title") or ""
    user_id = user_id.rsplit("(", 1)[-1].rstrip(")")
    assert user_id.isdigit(), user_id
    page.goto(f"/#/moderate/{user_id}")
    wait_until(page, SHEET_OPEN)
    page.tap(".sheet-close")
    wait_until(page, SHEET_CLOSED)
    assert page.evaluate("location.hash") == "#/moderate"


def test_every_view_of_a_streamer_fits_the_phone(login: Any) -> None:
    """The header (every view link of the owner's role) and the views a moderator uses away
    from a desk: nothing wider than the screen; the view links are one swipeable row."""
    page = phone(login, "streamer")
    links = page.evaluate(
        "(() => { const nav = document.getElementById('nav');"
        " const tops = [...nav.children].map(a => Math.round(a.getBoundingClientRect().top));"
        " return { rows: new Set(tops).size, count: tops.length,"
        " scrolls: nav.scrollWidth > nav.clientWidth }; })()"
    )
    assert links["count"] >= 6, links
    assert links["rows"] == 1, links
    assert page.evaluate(FITS)
    header = page.evaluate("document.getElementById('top').getBoundingClientRect().height")
    assert header <= 130, header  # the feed keeps the screen
    screenshot(page, "mobile-header")
    shown = {"live": "#overview .stats", "moderate": "#feed .row", "analytics": ".chart .bar"}
    for view, content in shown.items():
        page.goto(f"/#/{view}")
        page.wait_for_selector(f"#view-{view} {content}", timeout=WAIT_MS)
        settled(page)
        assert page.evaluate(FITS), view
        screenshot(page, f"mobile-{view}-streamer")


def test_the_desktop_keeps_two_columns(login: Any) -> None:
    page = login("moderator")
    page.goto("/#/moderate")
    page.wait_for_selector("#feed .row .user", timeout=WAIT_MS)
    page.click("#feed .row .user")
    page.wait_for_selector("#user-panel .handle", timeout=WAIT_MS)
    layout = page.evaluate(
        "(() => { const f = document.getElementById('feed').getBoundingClientRect();"
        " const p = document.getElementById('user-panel').getBoundingClientRect();"
        " const chips = [...document.querySelectorAll('#feed .chips > *')].filter(c => !c.hidden);"
        " return { feed: f.width, beside: p.left >= f.right, top: Math.abs(p.top - f.top),"
        " chipRows: new Set(chips.map(c => Math.round(c.getBoundingClientRect().top))).size }; })()"
    )
    assert layout["feed"] > 700, layout
    assert layout["beside"], layout
    assert layout["top"] < 1, layout
    assert layout["chipRows"] == 1, layout  # the chips and their "only" menu and "all" on one line
    assert not page.is_visible(".sheet-close")
    assert not page.is_visible(".sheet-backdrop")
    page.keyboard.press("Escape")  # no sheet to close: the user stays
    settled(page)
    assert page.is_visible("#user-panel .handle")
    assert page.evaluate(FITS)
    screenshot(page, "desktop-moderate")
    page.goto("/#/live")
    page.wait_for_selector("#overview .stats", timeout=WAIT_MS)
    beside = page.evaluate(
        "document.getElementById('overview').getBoundingClientRect().left"
        " >= document.getElementById('feed').getBoundingClientRect().right"
    )
    assert beside
    screenshot(page, "desktop-live")
