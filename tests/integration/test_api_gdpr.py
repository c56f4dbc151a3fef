"""``POST``/``GET /gdpr/erasures`` on both backends: only a STREAMER of scope ``*`` erases or
reads the audit; the answers' shapes; bad bodies and unknown users are 4xx with a JSON body and
change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tests.support.api import STREAMER_HANDLE, ApiHarness
from tests.support.gdpr import AKHMED, AKHMED_HANDLE, TRACES, ZOE, seed, snapshot
from tests.support.http import assert_json_error
from ttlp.api.accounts import Role
from ttlp.db import tables
from ttlp.db.erasure import TABLES

pytestmark = pytest.mark.integration

PATH = "/gdpr/erasures"


@pytest.fixture
async def owner(api: ApiHarness) -> dict[str, str]:
    await seed(api.store)
    return await api.login("owner", Role.STREAMER, ["*"])


async def audit_rows(api: ApiHarness) -> int:
    async with api.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(tables.gdpr_erasures)) or 0)


@pytest.mark.parametrize(
    ("role", "scopes"),
    [
        pytest.param(Role.STREAMER, [STREAMER_HANDLE], id="streamer-of-one"),
        pytest.param(Role.MODERATOR, ["*"], id="moderator-of-all"),
        pytest.param(Role.VIEWER, ["*"], id="viewer-of-all"),
    ],
)
async def test_any_other_account_is_refused_403_and_nothing_changes(
    api: ApiHarness, owner: dict[str, str], role: Role, scopes: list[str]
) -> None:
    before = await snapshot(api.engine)
    headers = await api.login("someone", role, scopes)
    for body in ({"userId": AKHMED}, {"userId": AKHMED, "dryRun": True}, {"nonsense": 1}):
        assert_json_error(await api.client.post(PATH, json=body, headers=headers), 403)
    assert_json_error(await api.client.get(PATH, headers=headers), 403)
    assert await snapshot(api.engine) == before
    assert await audit_rows(api) == 0


async def test_without_a_login_it_is_401(api: ApiHarness, owner: dict[str, str]) -> None:
    assert_json_error(await api.client.post(PATH, json={"userId": AKHMED}), 401)
    assert_json_error(await api.client.get(PATH), 401)
    assert await audit_rows(api) == 0


async def test_the_owner_erases_a_user_and_lists_the_audit_row(
    api: ApiHarness, owner: dict[str, str]
) -> None:
    dry = await api.client.post(
        PATH, json={"uniqueId": "@Akhmed_Kzn", "dryRun": True}, headers=owner
    )
    assert dry.status_code == 200, dry.text
    counted = dry.json()
    assert counted["dryRun"] is True
    assert counted["id"] is None
    assert counted["erasedAt"] is None
    assert await audit_rows(api) == 0

    response = await api.client.post(PATH, json={"userId": AKHMED}, headers=owner)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body["rows"]) == set(TABLES)
    assert body["rows"] == counted["rows"]
    assert body["totalRows"] == sum(body["rows"].values()) == counted["totalRows"] > 0
    assert body["requestedBy"] == "owner"
    assert body["dryRun"] is False
    assert isinstance(body["id"], int)
    assert body["erasedAt"].endswith("Z")
    u = tables.users
    async with api.engine.connect() as conn:
        users = set((await conn.execute(select(u.c.user_id))).scalars())
    assert AKHMED not in users
    assert ZOE in users

    listed = await api.client.get(PATH, headers=owner)
    assert listed.status_code == 200
    assert listed.json() == [body]
    assert not any(trace.lower() in listed.text.lower() for trace in TRACES)

    again = await api.client.post(PATH, json={"userId": AKHMED}, headers=owner)
    assert "erased before" in assert_json_error(again, 404)["detail"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({}, 400, id="neither"),
        pytest.param({"userId": AKHMED, "uniqueId": AKHMED_HANDLE}, 400, id="both"),
        pytest.param({"userId": "0"}, 400, id="the-no-user-id"),
        pytest.param({"userId": "12ab"}, 400, id="not-digits"),
        pytest.param({"userId": int(AKHMED)}, 400, id="a-number"),
        pytest.param({"uniqueId": "two words"}, 400, id="not-a-handle"),
        pytest.param({"userId": AKHMED, "extra": True}, 400, id="unknown-field"),
        pytest.param({"userId": AKHMED, "dryRun": "yes"}, 400, id="dry-run-not-a-bool"),
        pytest.param([AKHMED], 400, id="not-an-object"),
        pytest.param({"userId": "99"}, 404, id="unknown-id"),
        pytest.param({"uniqueId": "nobody.here"}, 404, id="unknown-handle"),
    ],
)
async def test_a_bad_or_unknown_subject_is_refused_with_a_json_error(
    api: ApiHarness, owner: dict[str, str], body: Any, status: int
) -> None:
    before = await snapshot(api.engine)
    response = await api.client.post(PATH, json=body, headers=owner)
    assert_json_error(response, status)
    assert await snapshot(api.engine) == before
    assert await audit_rows(api) == 0


async def test_a_body_that_is_not_json_is_400(api: ApiHarness, owner: dict[str, str]) -> None:
    response = await api.client.post(
        PATH, content=b"{userId:", headers={**owner, "Content-Type": "application/json"}
    )
    assert_json_error(response, 400)
    assert await audit_rows(api) == 0
