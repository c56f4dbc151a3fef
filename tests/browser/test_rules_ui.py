"""The rules page and the moderator quick actions against a running ttlp (all roles, the mock
provider looping the fixture, whose Lion gift is worth 29,999 coins; no Euler account).

A STREAMER builds a rule with the condition builder, tries it against a sample event (no match)
and a real stored one (match, rendered text), saves it and sees the rules role execute it on the
next pass of the fixture. A chat command rule ("starts with !discord") is built, tested (the
values the condition read are shown), saved and reopened in the builder; a condition the builder
cannot show opens as JSON; saving an announce rule warns that Euler is not configured. A
MODERATOR reads a rule (condition in words, template) and tests it, but has no editor, toggle or
delete. Mute 5 min without Euler configured shows the server's "not configured" answer.
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
MODERATOR = {"var": "user.isModerator"}
PHONE_WIDTH = 390
PHONE = {"width": PHONE_WIDTH, "height": 844}
WIDEST = (
    "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth,"
    " document.getElementById('main').scrollWidth)"
)
"""How wide the page's content is: a phone must not have to scroll sideways (``main`` scrolls
on its own, so its width counts too)."""


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
    assert row.locator("select[name=check]").input_value() == "coins"  # a GIFT rule's usual test
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


def test_mute_without_euler_configured_shows_not_configured(login: Any) -> None:
    page = login("moderator")
    page.goto("/#/moderate")
    page.wait_for_selector("#feed .row", timeout=WAIT_MS)
    page.fill(".feed-user", "@zoe.petals")
    # Her own row: the rows of others may still be there while the filter applies.
    page.click("#feed .row .user:text-is('@zoe.petals')", timeout=WAIT_MS)
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


def open_editor(page: Any) -> Any:
    """The rules page with the editor's help (event types, fields, placeholders) loaded."""
    page.goto("/#/rules")
    editor = page.locator("#rule-editor")
    page.wait_for_selector("#placeholders button.placeholder:text-is('{giftName}')")
    return editor


def build_discord_rule(editor: Any, name: str, action: str) -> None:
    """A CHAT rule "the message starts with !discord" built with the builder."""
    editor.locator("input[name=name]").fill(name)
    editor.locator("select[name=eventType]").select_option("CHAT")
    editor.locator("button.add-condition").click()
    row = editor.locator("#condition-builder .cond-row").first
    row.locator("select[name=check]").select_option("startsWith")
    assert row.locator("select[name=field]").input_value() == "payload.message"
    row.locator("input[name=value]").fill("!discord")
    editor.locator("select[name=actionType]").select_option(action)
    editor.locator("#rule-template").fill("Join us on Discord, {displayName}!")


def test_a_chat_command_rule_is_built_tested_saved_and_reopened_in_the_builder(
    login: Any, server: Server
) -> None:
    page = login("streamer")
    editor = open_editor(page)
    name = "discord command (ui)"
    build_discord_rule(editor, name, "log")
    expected = {"==": [{"substr": [{"var": ["payload.message", ""]}, 0, 8]}, "!discord"]}
    assert json.loads(editor.locator("#rule-condition").input_value()) == expected
    assert editor.locator("#rule-condition").is_hidden()  # JSON only behind the toggle

    # The sample CHAT ("hello from chat 👋") does not start with !discord: the panel says what
    # the condition read.
    editor.locator("select[name=testEvent]").select_option("sample:CHAT")
    editor.locator("button.test-rule").click()
    result = page.locator("#rule-test-results li.no-match")
    result.wait_for()
    assert result.locator("dl.reads dt").all_inner_texts() == ["payload.message"]
    assert result.locator("dl.reads dd").all_inner_texts() == ['"hello from chat 👋"']
    result.scroll_into_view_if_needed()
    screenshot(page, "rules-builder-discord-tested")

    editor.locator("button.save-rule").click()
    listed = page.locator(f"table.rules tbody tr:has(td:text-is('{name}'))")
    listed.wait_for()
    assert page.locator("#rule-warnings").inner_text() == ""  # a log rule needs nothing
    with sqlite3.connect(server.database) as db:
        stored = db.execute("SELECT condition FROM rules WHERE name = ?", (name,)).fetchone()
    assert json.loads(stored[0]) == expected

    # Reopened after a reload: the builder shows it again, no "edited as JSON".
    page.reload()
    open_editor(page)
    listed.locator("button.edit-rule").click()
    page.wait_for_selector("#rule-editor h2:text-matches('Edit rule')")
    row = editor.locator("#condition-builder .cond-row")
    assert row.count() == 1
    assert row.locator("select[name=check]").input_value() == "startsWith"
    assert row.locator("input[name=value]").input_value() == "!discord"
    assert editor.locator(".raw-note").count() == 0
    assert editor.locator("button.mode-builder").get_attribute("aria-pressed") == "true"
    screenshot(page, "rules-builder-reopened")
    page.set_viewport_size(PHONE)
    page.locator("#condition-builder").scroll_into_view_if_needed()
    assert page.evaluate(WIDEST) <= PHONE_WIDTH, "the rules page is wider than a phone"
    screenshot(page, "rules-builder-390")


def test_a_condition_the_builder_cannot_show_is_edited_as_json(login: Any) -> None:
    page = login("streamer")
    name = "between (ui)"
    rule = {
        "name": name,
        "eventType": "GIFT",
        "condition": {"<": [100, {"var": "payload.coins"}, 1000]},
        "action": {"type": "log"},
        "scope": "luna.beats",
    }
    made = page.request.post("/rules", data=rule)
    assert made.status == 201, made.text()
    editor = open_editor(page)
    page.locator(f"table.rules tbody tr:has(td:text-is('{name}')) button.edit-rule").click()
    note = editor.locator(".raw-note")
    note.wait_for()
    assert "Edited as JSON" in note.inner_text()
    assert editor.locator("#condition-builder").count() == 0
    assert editor.locator("button.mode-builder").is_disabled()
    box = editor.locator("#rule-condition")
    assert json.loads(box.input_value()) == rule["condition"]
    # JSON the builder can show: the toggle lets the builder take over.
    either = {"or": [{">=": [{"var": "payload.coins"}, 1000]}, {"==": [MODERATOR, True]}]}
    box.fill(json.dumps(either))
    assert editor.locator(".raw-note").count() == 0
    editor.locator("button.mode-builder").click()
    rows = editor.locator("#condition-builder .cond-row")
    assert [rows.nth(i).get_attribute("data-check") for i in range(rows.count())] == [
        "coins",
        "user",
    ]
    assert editor.locator("#condition-builder select[name=combiner]").input_value() == "or"
    # And back to the JSON, which the builder's edits keep up to date.
    rows.nth(0).locator("input[name=value]").fill("5000")
    editor.locator("button.mode-json").click()
    assert json.loads(box.input_value()) == {
        "or": [
            {">=": [{"var": "payload.coins"}, 5000]},
            {"==": [{"var": "user.isModerator"}, True]},
        ]
    }


def test_saving_an_announce_rule_without_euler_shows_the_warning(login: Any) -> None:
    page = login("streamer")
    editor = open_editor(page)
    name = "discord announce (ui)"
    build_discord_rule(editor, name, "announce")
    editor.locator("button.save-rule").click()
    warning = page.locator("#rule-warnings p")
    warning.wait_for()
    text = warning.inner_text()
    assert "announce: no chat integration configured" in text
    assert "EULER_API_KEY and SESSION_ID unset" in text
    assert "will not send" in text
    # Saved all the same.
    page.locator(f"table.rules tbody tr:has(td:text-is('{name}'))").wait_for()
    screenshot(page, "rules-announce-warning")


def test_a_moderator_reads_a_rule_and_tests_it_but_cannot_change_it(login: Any) -> None:
    streamer = login("streamer")
    name = "galaxy hype (ui)"
    rule = {
        "name": name,
        "eventType": "CHAT",
        "condition": {
            "and": [
                {"==": [{"substr": [{"var": ["payload.message", ""]}, 0, 6]}, "GALAXY"]},
                {"!": {"==": [{"var": "user.isModerator"}, True]}},
            ]
        },
        "action": {"type": "log", "template": "hype from {username}"},
        "scope": "luna.beats",
    }
    made = streamer.request.post("/rules", data=rule)
    assert made.status == 201, made.text()
    rule_id = made.json()["id"]

    page = login("moderator")
    page.goto("/#/rules")
    row = page.locator(f"table.rules tbody tr:has(td:text-is('{name}'))")
    row.wait_for()
    # Nothing that changes a rule is on the page.
    assert page.locator("#rule-editor").count() == 0
    for control in (
        "button.save-rule",
        "input.enabled-toggle",
        "button.edit-rule",
        "button.delete-rule",
    ):
        assert page.locator(control).count() == 0, control
    row.locator("button.view-rule").click()
    view = page.locator("#rule-view")
    view.locator("h2:text-is('galaxy hype (ui)')").wait_for()
    assert view.locator("#condition-words > li > span").inner_text() == "all of"
    assert view.locator("#condition-words ul > li").all_inner_texts() == [
        "message starts with “GALAXY”",
        "user is not a moderator",
    ]
    assert view.locator("#template-view").inner_text() == "hype from {username}"
    # No form of the rule's own (the Backtest panel in .backtest-slot has its own inputs).
    fields = "input, textarea, button.save-rule"
    assert view.locator(fields).count() == view.locator(f".backtest-slot :is({fields})").count()

    # The sample does not match; the stored GALAXY chat of the fixture does.
    view.locator("select[name=testEvent]").select_option("sample:CHAT")
    view.locator("button.test-rule").click()
    miss = page.locator("#rule-test-results li.no-match")
    miss.wait_for()
    assert miss.locator("dl.reads dt").all_inner_texts() == ["payload.message", "user.isModerator"]
    galaxy = wait_until(
        page,
        "(() => { const s = document.querySelector('#rule-view select[name=testEvent]');"
        " document.querySelector('#rule-view .refresh-events').click();"
        " return [...s.options].find(o => o.textContent.includes('GALAXY'))?.value; })()",
    )
    view.locator("select[name=testEvent]").select_option(galaxy)
    view.locator("button.test-rule").click()
    hit = page.locator("#rule-test-results li.match")
    hit.wait_for()
    assert hit.locator(".rendered").inner_text().startswith("hype from ")
    assert hit.locator("dl.reads dd").first.inner_text().startswith('"GALAXY')
    screenshot(page, "rules-moderator-view")
    page.set_viewport_size(PHONE)
    assert page.evaluate(WIDEST) <= PHONE_WIDTH, "the rules page is wider than a phone"
    screenshot(page, "rules-moderator-390")
    # On a phone the view is below the list: View brings it into sight.
    row.locator("button.view-rule").click()
    wait_until(page, "document.getElementById('rule-view').getBoundingClientRect().top < 200")
    screenshot(page, "rules-moderator-390-view")
    # The API refuses what the page does not offer.
    changed = page.request.put(f"/rules/{rule_id}", data={**rule, "enabled": False})
    assert changed.status == 403
    assert page.request.delete(f"/rules/{rule_id}").status == 403
