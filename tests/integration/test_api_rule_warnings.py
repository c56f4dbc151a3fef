"""Saving a rule that cannot act as things are set up: the rule is saved, and the answer to the
create or update says why it will not act (``warnings``): an ``announce`` or ``moderate`` rule
while Euler Stream is not configured (``EULER_API_KEY`` / ``SESSION_ID`` unset)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import STREAMER_HANDLE, ApiHarness
from ttlp.api.accounts import Role

pytestmark = pytest.mark.integration

EULER = {"EULER_API_KEY": "key-of-the-test", "SESSION_ID": "sid-of-the-test"}
ANNOUNCE = {"type": "announce", "template": "Thank you {displayName}!"}
MUTE = {"type": "moderate", "op": "mute", "durationS": 60}
KICK = {"type": "moderate", "op": "kick"}


def rule(action: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {
        "name": "chat command",
        "scope": STREAMER_HANDLE,
        "eventType": "CHAT",
        "condition": {"==": [{"substr": [{"var": ["payload.message", ""]}, 0, 8]}, "!discord"]},
        "action": action,
        **changes,
    }


async def test_an_announce_rule_without_euler_is_saved_with_a_warning(api: ApiHarness) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    response = await api.client.post("/rules", json=rule(ANNOUNCE), headers=owner)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["warnings"] == [
        "announce: no chat integration configured (EULER_API_KEY and SESSION_ID unset)"
        " — this rule will not send"
    ]
    # Saved all the same, and the stored rule carries no warnings of its own.
    stored = (await api.client.get(f"/rules/{body['id']}", headers=owner)).json()
    assert (stored["name"], stored["action"]["type"]) == ("chat command", "announce")
    assert "warnings" not in stored
    listed = (await api.client.get("/rules", headers=owner)).json()
    assert [r["id"] for r in listed] == [body["id"]]


@pytest.mark.parametrize(("action", "verb"), [(MUTE, "mute"), (KICK, "kick")], ids=["mute", "kick"])
async def test_a_moderate_rule_without_euler_says_it_will_not_moderate(
    api: ApiHarness, action: dict[str, Any], verb: str
) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    response = await api.client.post("/rules", json=rule(action), headers=owner)
    assert response.status_code == 201, response.text
    assert response.json()["warnings"] == [
        "moderate: no moderation integration configured (EULER_API_KEY and SESSION_ID unset)"
        f" — this rule will not {verb} anyone"
    ]


async def test_changing_a_rule_to_announce_warns_and_back_to_log_does_not(
    api: ApiHarness,
) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    created = await api.client.post("/rules", json=rule({"type": "log"}), headers=owner)
    assert (created.status_code, created.json()["warnings"]) == (201, [])
    rule_id = created.json()["id"]
    changed = await api.client.put(f"/rules/{rule_id}", json=rule(ANNOUNCE), headers=owner)
    assert changed.status_code == 200, changed.text
    assert [w.split(":")[0] for w in changed.json()["warnings"]] == ["announce"]
    # A disabled rule still says so: enabling it later would not make it send.
    disabled = await api.client.put(
        f"/rules/{rule_id}", json=rule(ANNOUNCE, enabled=False), headers=owner
    )
    assert len(disabled.json()["warnings"]) == 1
    back = await api.client.put(f"/rules/{rule_id}", json=rule({"type": "log"}), headers=owner)
    assert (back.status_code, back.json()["warnings"]) == (200, [])


async def test_log_and_webhook_rules_never_warn(api: ApiHarness) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    for action in (
        {"type": "log", "template": "{username}"},
        {"type": "webhook", "url": "https://example.com/hook"},
    ):
        response = await api.client.post("/rules", json=rule(action), headers=owner)
        assert response.status_code == 201, response.text
        assert response.json()["warnings"] == []


@pytest.mark.parametrize("api_env", [EULER])
async def test_with_euler_configured_nothing_is_said(api: ApiHarness) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    for action in (ANNOUNCE, MUTE):
        response = await api.client.post("/rules", json=rule(action), headers=owner)
        assert (response.status_code, response.json()["warnings"]) == (201, [])


@pytest.mark.parametrize("api_env", [{"EULER_API_KEY": EULER["EULER_API_KEY"]}])
async def test_the_warning_names_only_what_is_missing(api: ApiHarness) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    response = await api.client.post("/rules", json=rule(ANNOUNCE), headers=owner)
    assert response.json()["warnings"] == [
        "announce: no chat integration configured (SESSION_ID unset) — this rule will not send"
    ]


async def test_a_refused_rule_is_a_422_not_a_warning(api: ApiHarness) -> None:
    owner = await api.login("owner", Role.STREAMER, [STREAMER_HANDLE])
    bad = rule(ANNOUNCE, condition={"startsWith": [{"var": "payload.message"}, "!discord"]})
    response = await api.client.post("/rules", json=bad, headers=owner)
    assert response.status_code == 422, response.text
    assert "unknown operator 'startsWith'" in response.json()["detail"]
    assert (await api.client.get("/rules", headers=owner)).json() == []
