"""The first hour, as a new streamer lives it: ``ttlp run`` on an empty data directory prints
where the UI is and a setup link; the link makes the owner, logged in; the owner invites a
moderator; the moderator opens the invite in a browser of their own, picks a password and
lands on the moderator views. Screenshots of the setup, invite and accounts pages at desktop
(1400×900) and phone (390×844) widths go to tests/browser/artifacts/ (``first-run-*``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any, Final

import pytest

from tests.support.browser import (
    CDN_HOSTS,
    STREAMER,
    WAIT_MS,
    Server,
    screenshot,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.browser

DESKTOP: Final = {"width": 1400, "height": 900}
PHONE: Final = {"width": 390, "height": 844}
OWNER_PASSWORD: Final = "first night live"
MOD_PASSWORD: Final = "moderating with care"
LOG_WAIT_S: Final = 20.0


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory, chromium: Any) -> Iterator[Server]:
    """``ttlp run`` on a data directory of its own, with no account at all."""
    instance = start_server(
        tmp_path_factory.mktemp("first-run"), "--rate", "20", "--loop", accounts=False
    )
    yield instance
    stop_server(instance)


def printed(server: Server, pattern: str) -> str:
    """The first match of ``pattern`` in what ``ttlp run`` printed (waits for it)."""
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        found = re.search(pattern, server.log.read_text(errors="replace"))
        if found:
            return found.group(0)
        if time.monotonic() > deadline:
            raise AssertionError(f"ttlp run never printed {pattern!r}")
        time.sleep(0.2)


def new_page(browser: Any, server: Server, contexts: list[Any], viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, base_url=server.url)
    contexts.append(context)
    for host in CDN_HOSTS:  # no internet here: TikTok's pictures fail at once
        context.route(f"https://*.{host}/**", lambda route: route.abort())
    return context.new_page()


def nav_views(page: Any) -> list[str]:
    return [a.get_attribute("data-view") for a in page.query_selector_all("#nav a")]


def test_from_ttlp_run_to_a_moderator_watching_the_feed(browser: Any, first_run: Server) -> None:
    server = first_run
    contexts: list[Any] = []
    try:
        _first_run(browser, server, contexts)
    finally:
        for context in contexts:
            context.close()


def _first_run(browser: Any, server: Server, contexts: list[Any]) -> None:
    # -- what ttlp run printed: the UI, and the one-time setup link --------------------------
    assert printed(server, r"web UI at http://127\.0\.0\.1:\d+/") == f"web UI at {server.url}/"
    setup_link = printed(server, re.escape(server.url) + r"/#/setup/[A-Za-z0-9_-]{40,}")

    # The login page of a ttlp without accounts says where the way in is.
    stranger = new_page(browser, server, contexts, DESKTOP)
    stranger.goto("/")
    stranger.wait_for_selector("#setup-hint", timeout=WAIT_MS)
    assert "setup link" in stranger.inner_text("#setup-hint")
    screenshot(stranger, "first-run-login-hint")

    # -- the setup page, seen on a phone first (looking does not use the link) ---------------
    phone = new_page(browser, server, contexts, PHONE)
    phone.goto(setup_link)
    phone.wait_for_selector("form#setup", timeout=WAIT_MS)
    screenshot(phone, "first-run-setup-phone")

    owner = new_page(browser, server, contexts, DESKTOP)
    owner.goto(setup_link)
    owner.wait_for_selector("form#setup", timeout=WAIT_MS)
    screenshot(owner, "first-run-setup-desktop")
    owner.fill("form#setup input[name=username]", "luna")
    owner.fill("form#setup input[name=password]", "short")
    owner.fill("form#setup input[name=repeat]", "short")
    owner.click("form#setup button[type=submit]")
    owner.wait_for_selector("form#setup .error:text('at least 8 characters')")
    owner.fill("form#setup input[name=password]", OWNER_PASSWORD)
    owner.fill("form#setup input[name=repeat]", OWNER_PASSWORD)
    owner.click("form#setup button[type=submit]")

    # -- the owner is logged in, on the accounts page; the link is gone from the URL ----------
    owner.wait_for_selector("#view-accounts table.accounts tr[data-username=luna]", timeout=WAIT_MS)
    assert "accounts" in nav_views(owner)
    assert owner.inner_text("#who") == "luna · streamer"
    assert "/#/setup/" not in owner.url
    assert owner.locator("tr[data-username=luna] .tag.owner").count() == 1
    assert owner.locator("tr[data-username=luna] button.delete").is_disabled()  # the last owner

    # The setup link is dead now, and says so.
    phone.goto("/")
    phone.goto(setup_link)
    phone.wait_for_selector("#link-dead", timeout=WAIT_MS)
    assert "setup is done" in phone.inner_text("#link-dead").lower()

    # -- invite a moderator of the fixture's streamer -----------------------------------------
    owner.fill("#invite input[name=username]", "mod_anna")
    owner.select_option("#invite select[name=role]", "MODERATOR")
    owner.fill("#invite input[name=scope]", f"@{STREAMER}")
    owner.click("#invite button[type=submit]")
    owner.wait_for_selector("#invite-created .invite-link", timeout=WAIT_MS)
    invite_link = owner.input_value("#invite-created .invite-link")
    assert re.fullmatch(re.escape(server.url) + r"/#/invite/[A-Za-z0-9_-]{40,}", invite_link)
    owner.wait_for_selector("table.invites strong:text-is('mod_anna')", timeout=WAIT_MS)
    screenshot(owner, "first-run-accounts-desktop")

    owner_phone = new_page(browser, server, contexts, PHONE)
    owner_phone.goto("/")
    owner_phone.fill("input[name=username]", "luna")
    owner_phone.fill("input[name=password]", OWNER_PASSWORD)
    owner_phone.click("form#login button[type=submit]")
    owner_phone.wait_for_selector("#nav a")
    owner_phone.goto("/#/accounts")
    owner_phone.wait_for_selector("table.invites strong:text-is('mod_anna')", timeout=WAIT_MS)
    link = owner_phone.locator("#nav a[data-view=accounts]").bounding_box()
    assert link is not None
    assert link["x"] + link["width"] <= PHONE["width"], link  # not off the screen
    screenshot(owner_phone, "first-run-accounts-phone")
    owner_phone.locator("table.accounts").scroll_into_view_if_needed()
    screenshot(owner_phone, "first-run-accounts-phone-list")

    # -- the moderator, in a browser of their own ---------------------------------------------
    invite_phone = new_page(browser, server, contexts, PHONE)
    invite_phone.goto(invite_link)
    invite_phone.wait_for_selector("form#invite-accept", timeout=WAIT_MS)
    screenshot(invite_phone, "first-run-invite-phone")

    moderator = new_page(browser, server, contexts, DESKTOP)
    moderator.goto(invite_link)
    moderator.wait_for_selector("form#invite-accept", timeout=WAIT_MS)
    assert f"moderator of @{STREAMER}" in moderator.inner_text("form#invite-accept")
    assert moderator.input_value("form#invite-accept input[name=username]") == "mod_anna"
    screenshot(moderator, "first-run-invite-desktop")
    moderator.fill("form#invite-accept input[name=password]", MOD_PASSWORD)
    moderator.fill("form#invite-accept input[name=repeat]", MOD_PASSWORD)
    moderator.click("form#invite-accept button[type=submit]")
    moderator.wait_for_selector("#nav a", timeout=WAIT_MS)
    views = nav_views(moderator)
    assert {"live", "moderate", "rules"} <= set(views)
    assert "accounts" not in views
    assert moderator.inner_text("#who") == "mod_anna · moderator"
    assert "/#/invite/" not in moderator.url
    moderator.wait_for_selector("#feed .row", timeout=WAIT_MS)  # the streamer's live feed
    moderator.goto("/#/moderate")
    moderator.wait_for_selector("#view-moderate #feed .row", timeout=WAIT_MS)
    screenshot(moderator, "first-run-moderator")
    moderator.goto("/#/accounts")  # not the moderator's: back to the feed
    moderator.wait_for_selector("#view-live", timeout=WAIT_MS)

    # The invite works once; the password the moderator chose logs them in.
    invite_phone.goto("/")
    invite_phone.goto(invite_link)
    invite_phone.wait_for_selector("#link-dead", timeout=WAIT_MS)
    assert "used already" in invite_phone.inner_text("#link-dead")
    moderator.click("#logout")
    moderator.wait_for_selector("form#login")
    moderator.fill("input[name=username]", "mod_anna")
    moderator.fill("input[name=password]", MOD_PASSWORD)
    moderator.click("form#login button[type=submit]")
    moderator.wait_for_selector("#feed .row", timeout=WAIT_MS)

    # The owner sees the new account and no open invite any more.
    owner.reload()
    owner.wait_for_selector("tr[data-username=mod_anna]", timeout=WAIT_MS)
    assert owner.locator("table.invites").count() == 0
    assert owner.locator("tr[data-username=mod_anna] .edit-role").input_value() == "MODERATOR"
