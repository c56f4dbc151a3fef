"""The rules page and the moderator quick actions against a running ttlp (all roles, the mock
provider looping the fixture, whose Lion gift is worth 29,999 coins; no Euler account).

A STREAMER builds a rule with the condition builder, tries it against a sample event (no match)
and a real stored one (match, rendered text), saves it and sees the rules role execute it on the
next pass of the fixture. A MODERATOR sees the list but neither the editor nor the toggles.
Mute 5 min without Euler configured shows the server's "not configured" answer in the panel.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from tests.support.browser import WAIT_MS, Server, screenshot, wait_until

pytestmark = pytest.mark.browser

RULE_NAME = "big gifts (ui)"
TEMPLATE = "{username} sent {giftName}"
EXECUTION_WAIT_MS = 90_000


def test_streamer_builds_tests_and_saves_a_rule_that_then_fires(login: Any, server: Server) -> None:
    page = login("streamer")
    page.goto("/#/rules")
    editor = page.locator("#rule-editor")
    editor.wait_for()
    # Wait for the editor's help (event types, fields, placeholders) from the API.
    page.wait_for_selector("#placeholders button.placeholder:text-is('{giftName}')")
    editor.locator("input[name=name]").fill(RULE_NAME)
    editor.locator("select[name=eventType]").select_option("GIFT")
    editor.locator("button.add-condition").click()
    row = editor.locator("#condition-builder .cond-row").first
    row.locator("select[name=field]").select_option("payload.coins")
    row.locator("select[name=operator]").select_option(">=")
    row.locator("input[name=value]").fill("1000")
    condition = json.loads(editor.locator("#rule-condition").input_value())
    assert condition == {">=": [{"var": "payload.coins"}, 1000]}
    editor.locator("select[name=actionType]").select_option("log")
    editor.locator("#rule-template").fill(TEMPLATE)

    # The sample GIFT (a 5-coin Rose) does not match.
    editor.locator("select[name=testEvent]").select_option("sample:GIFT")
    editor.locator("button.test-rule").click()
    page.wait_for_selector("#rule-test-results li.no-match")
    # A stored Lion gift of the mock stream does, with the rendered text.
    lion = wait_until(
        page,
        "(() => { const s = document.querySelector('#rule-editor select[name=testEvent]');"
        " document.querySelector('#rule-editor .refresh-events').click();"
        " return [...s.options].find(o => o.textContent.includes('Lion'))?.value; })()",
    )
    editor.locator("select[name=testEvent]").select_option(lion)
    editor.locator("button.test-rule").click()
    match = page.locator("#rule-test-results li.match")
    match.wait_for()
    assert match.locator(".rendered").inner_text() == "akhmed_kzn sent Lion"
    assert page.locator("#rule-test-results li").count() == 2  # both results stay visible
    screenshot(page, "rules-editor-tested")

    editor.locator("button.save-rule").click()
    listed = page.locator(f"table.rules tbody tr:has(td:text-is('{RULE_NAME}'))")
    listed.wait_for()
    assert listed.locator("input.enabled-toggle").is_checked()
    # The rules role picks the rule up and runs it on the next big gift of the looping fixture.
    executed = page.locator("#executions tbody tr[data-status=success]").first
    executed.wait_for(timeout=EXECUTION_WAIT_MS)
    # The fixture's gifts of 1,000+ coins: the Lion, and the Galaxy streak on its end frame.
    rendered = executed.locator("td").nth(3).inner_text()
    assert rendered in {"akhmed_kzn sent Lion", "zoe.petals sent Galaxy"}, rendered
    screenshot(page, "rules-executed")
    with sqlite3.connect(server.database) as db:
        stored = db.execute(
            "SELECT event_type, condition, action FROM rules WHERE name = ?", (RULE_NAME,)
        ).fetchone()
    assert stored[0] == "GIFT"
    assert json.loads(stored[1]) == {">=": [{"var": "payload.coins"}, 1000]}
    assert json.loads(stored[2]) == {"type": "log", "template": TEMPLATE}


def test_an_invalid_rule_shows_the_servers_reason_next_to_the_form(login: Any) -> None:
    page = login("streamer")
    page.goto("/#/rules")
    editor = page.locator("#rule-editor")
    page.wait_for_selector("#placeholders button.placeholder")
    editor.locator("input[name=name]").fill("broken")
    editor.locator("#rule-template").fill("{nonsense}")
    editor.locator("button.save-rule").click()
    error = page.locator("#rule-errors")
    error.wait_for()
    assert "nonsense" in error.inner_text()


def test_moderator_sees_the_rules_list_but_no_editor(login: Any) -> None:
    page = login("moderator")
    page.goto("/#/rules")
    page.wait_for_selector("#view-rules table.rules tbody tr")
    page.wait_for_timeout(500)  # let every request of the page settle
    assert page.locator("#rule-editor").count() == 0
    assert page.locator("button.save-rule").count() == 0
    assert page.locator("input.enabled-toggle").count() == 0
    assert page.locator("button.edit-rule").count() == 0
    screenshot(page, "rules-moderator")


def test_mute_without_euler_configured_shows_not_configured(login: Any) -> None:
    page = login("moderator")
    page.goto("/#/moderate")
    page.wait_for_selector("#feed .row", timeout=WAIT_MS)
    page.fill(".feed-user", "@zoe.petals")
    page.click("#feed .row .user", timeout=WAIT_MS)
    page.wait_for_selector("#user-panel .handle:text('@zoe.petals')", timeout=WAIT_MS)
    page.click("#user-panel button.mute-5")
    result = page.locator("#user-panel .action-result.error")
    result.wait_for()
    text = result.inner_text()
    assert "not configured" in text
    assert "EULER_API_KEY" in text
    assert page.locator("#user-panel .handle").inner_text() == "@zoe.petals"  # no crash
    screenshot(page, "quick-action-not-configured")
    # The palette offers the same actions for the selected user.
    page.keyboard.press("Control+k")
    page.wait_for_selector("#palette li:text('Kick: @zoe.petals')")
    page.keyboard.press("Escape")


def test_a_streamer_deletes_a_rule_after_confirming(login: Any, server: Server) -> None:
    page = login("streamer")
    name = "to be deleted (ui)"
    rule = {
        "name": name,
        "eventType": "LIKE",
        "condition": {">": [{"var": "payload.likeCount"}, 10_000]},
        "action": {"type": "log", "template": "{username} liked"},
        "scope": "luna.beats",
    }
    made = page.request.post("/rules", data=rule)  # the page's own cookie
    assert made.status == 201, made.text()
    page.goto("/#/rules")
    row = page.locator(f"table.rules tbody tr:has(td:text-is('{name}'))")
    row.wait_for()
    delete = row.locator("button.delete-rule")
    delete.click()
    assert delete.inner_text() == "Really delete?"  # armed, not yet deleted
    assert row.count() == 1
    delete.click()
    row.wait_for(state="detached")
    with sqlite3.connect(server.database) as db:
        assert db.execute("SELECT count(*) FROM rules WHERE name = ?", (name,)).fetchone() == (0,)
    # A moderator gets no delete button.
    moderator = login("moderator")
    moderator.goto("/#/rules")
    moderator.wait_for_selector("#view-rules table.rules tbody tr")
    assert moderator.locator("button.delete-rule").count() == 0
