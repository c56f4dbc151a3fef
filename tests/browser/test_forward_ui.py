"""The Forwarding page against a running ttlp (embedded default, the mock looping the fixture)
and a receiver on 127.0.0.1 (allow-listed): create a target, copy its secret (shown once), send
a test event and see the receiver's answer, see the deliveries the receiver refused end dead,
redeliver one once the receiver is healthy, pause and resume, delete (asks twice); at 1400 px
and at 390×844 (nothing wider than the screen). Screenshots: ``forward-*``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.receiver import Receiver, Reply, Request
from tests.support.browser import WAIT_MS, Server, screenshot, start_server, stop_server
from ttlp.forward.signing import verify

pytestmark = pytest.mark.browser

TARGETS = "table.forward-targets tbody tr[data-target]"
DELIVERIES = "table.deliveries tbody tr[data-delivery]"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 900}


@pytest.fixture(scope="module")
def forward_server(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Server]:
    """ttlp with the forward role, loopback allowed as a destination, two attempts per
    delivery (a refused one is dead within a second)."""
    instance = start_server(
        tmp_path_factory.mktemp("forward-ui"),
        "--rate",
        "20",
        "--loop",
        extra_env={"WEBHOOK_ALLOWLIST": "127.0.0.1", "FORWARD_MAX_ATTEMPTS": "2"},
    )
    yield instance
    stop_server(instance)


class ThreadedReceiver:
    """``tests.fakes.receiver.Receiver`` on an event loop of its own thread: the browser tests
    are synchronous (Playwright's sync API holds the main thread's loop)."""

    def __init__(self, handler: Callable[[Request], Reply]) -> None:
        self.receiver = Receiver(handler)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.receiver.__aenter__(), self.loop).result(10)
        return self.receiver

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(
            self.receiver.__aexit__(None, None, None), self.loop
        ).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def eventually(check: Callable[[], Any], what: str, timeout_s: float = WAIT_MS / 1000) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s}s: {what}")
        time.sleep(0.05)


def no_overflow(page: Any, width: int) -> None:
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.getElementById('main').scrollWidth]"
    )
    assert max(widths) <= width, widths


def test_a_target_from_creation_to_redelivery(login: Any, forward_server: Server) -> None:
    healthy = threading.Event()

    def receiver(request: Request) -> Reply:
        if request.headers.get("x-ttlp-test") == "1":
            return Reply(200, b'{"hello": "ttlp"}')
        return Reply(200) if healthy.is_set() else Reply(500, b"not today")

    with ThreadedReceiver(receiver) as rx:
        page = login("streamer", forward_server)
        page.goto("/#/forward")
        page.wait_for_selector("form#target-form")
        page.wait_for_selector(".forward-targets, p.none:has-text('No targets yet')")
        assert page.is_checked("input[name=streakEndOnly]")  # proposed for a new target
        assert page.is_checked("input[name=enabled]")

        # -- create: the secret is shown once, with a copy button ------------------------------
        page.fill("input[name=name]", "my bot")
        page.fill("input[name=url]", f"{rx.url}/hook")
        page.check("input[name=type-CHAT]")
        assert page.input_value("select[name=scope]") == "luna.beats"
        page.click("button.save-target")
        page.wait_for_selector("#secret-created .target-secret", timeout=WAIT_MS)
        secret = page.input_value("#secret-created .target-secret")
        assert len(secret) >= 32
        assert page.locator("#secret-created button.copy-secret").is_visible()
        row = page.locator(TARGETS, has_text="my bot")
        row.wait_for()
        assert row.locator("td[data-label=status]").inner_text() == "active"
        assert "CHAT" in row.locator("td[data-label='event types']").inner_text()
        screenshot(page, "forward-created")
        page.click("#secret-created button.hide-secret")
        assert page.locator("#secret-created").count() == 0  # never shown again

        # -- a test event: the receiver's answer under the target --------------------------------
        row.locator("button.test").click()
        result = row.locator(".test-result.ok")
        result.wait_for(timeout=WAIT_MS)
        assert "answered 200" in result.inner_text()
        tests = [r for r in rx.requests if r.headers.get("x-ttlp-test") == "1"]
        assert len(tests) == 1
        assert verify(secret, tests[0].headers, tests[0].body)  # the secret the page showed
        assert json.loads(tests[0].body)["user"]["uniqueId"] == "ttlp.test"
        screenshot(page, "forward-test-event")

        # -- deliveries: the receiver refuses the real events, they end dead ---------------------
        row.locator("button.show-deliveries").click()
        page.wait_for_selector("#forward-deliveries")
        dead = page.locator(f"{DELIVERIES}[data-status=dead]").first
        dead.wait_for(timeout=WAIT_MS * 2)
        assert dead.locator("td.attempts").inner_text() == "2"
        assert dead.locator("td.last-error").inner_text() == "HTTP 500"
        page.select_option("select[name=deliveryStatus]", "dead")
        page.wait_for_selector(f"{DELIVERIES}[data-status=dead]")
        statuses = page.eval_on_selector_all(DELIVERIES, "rows => rows.map(r => r.dataset.status)")
        assert set(statuses) == {"dead"}
        page.locator("#forward-deliveries").scroll_into_view_if_needed()
        screenshot(page, "forward-deliveries")

        # -- redeliver one once the receiver is healthy ---------------------------------------
        healthy.set()
        first = page.locator(DELIVERIES).first
        delivery_id = first.get_attribute("data-delivery")
        event_id = first.locator("code").get_attribute("title")

        def sent() -> int:
            return sum(r.headers.get("x-ttlp-event-id") == event_id for r in list(rx.requests))

        before = sent()
        first.locator("button.redeliver").click()
        page.wait_for_selector(
            f"{DELIVERIES}[data-delivery='{delivery_id}'][data-status=pending]", timeout=WAIT_MS
        )
        page.wait_for_selector(f"#toast.show:has-text('Delivery {delivery_id} queued again')")
        eventually(lambda: sent() > before, "the redelivered event reaches the receiver")
        page.select_option("select[name=deliveryStatus]", "delivered")
        again = page.locator(f"{DELIVERIES}[data-delivery='{delivery_id}']")
        deadline = time.monotonic() + WAIT_MS / 1000
        while again.count() == 0 or again.get_attribute("data-status") != "delivered":
            assert time.monotonic() < deadline, "the redelivered row never showed delivered"
            page.click("button.refresh-deliveries")
            page.wait_for_timeout(300)
        assert again.locator("td.attempts").inner_text() == "1"
        assert again.locator("td.last-error").inner_text() == "—"
        screenshot(page, "forward-redelivered")

        # -- pause and resume ---------------------------------------------------------------
        row.locator("button.pause").click()
        row.locator("td[data-label=status]:text-is('paused')").wait_for(timeout=WAIT_MS)
        page.wait_for_selector("#forward-deliveries .paused-note")
        row.locator("button.resume").click()
        row.locator("td[data-label=status]:text-is('active')").wait_for(timeout=WAIT_MS)

        # -- a phone: everything within the screen -------------------------------------------
        page.set_viewport_size(PHONE)
        page.evaluate("document.getElementById('main').scrollTo(0, 0)")
        no_overflow(page, PHONE["width"])
        screenshot(page, "forward-phone")
        page.evaluate(
            "document.querySelector('table.forward-targets').scrollIntoView({block: 'start'})"
        )
        screenshot(page, "forward-phone-targets")
        page.evaluate("document.getElementById('forward-deliveries').scrollIntoView()")
        no_overflow(page, PHONE["width"])
        screenshot(page, "forward-phone-deliveries")
        page.set_viewport_size(DESKTOP)

        # -- edit, then delete (asks twice) ----------------------------------------------------
        row.locator("button.edit").click()
        assert page.input_value("input[name=name]") == "my bot"
        page.fill("input[name=name]", "my renamed bot")
        page.click("button.save-target")
        renamed = page.locator(TARGETS, has_text="my renamed bot")
        renamed.wait_for(timeout=WAIT_MS)
        renamed.locator("button.delete").click()
        assert renamed.locator("button.delete").inner_text() == "Really delete?"
        renamed.locator("button.delete").click()
        page.wait_for_selector("p.none:has-text('No targets yet')", timeout=WAIT_MS)
        assert page.locator("#forward-deliveries").count() == 0
