"""Accounts through the API, on both backends: the first-run setup link, invites, the owner's
changes of role / scope / state and deletions (which end the account's tokens), the last owner,
and who may do any of it.

Every refusal is a JSON ``{"status_code", "detail"}`` with a 4xx status, never a 500.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
import pytest
from sqlalchemy import func, select, update

from tests.support.api import PASSWORD, STREAMER_HANDLE, ApiHarness
from ttlp.api.accounts import Accounts, Role
from ttlp.api.auth import COOKIE_NAME
from ttlp.api.invites import token_hash
from ttlp.api.setup import SetupLink
from ttlp.db.tables import account_invites, accounts

pytestmark = pytest.mark.integration

NEW_PASSWORD: Final = "a password of my own"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(response: httpx.Response, status: int) -> str:
    """The refusal's detail, after checking its status and JSON body."""
    assert response.status_code == status, f"{response.status_code} {response.text[:300]}"
    body = response.json()
    assert body["status_code"] == status, body
    assert isinstance(body["detail"], str), body
    assert body["detail"], body
    assert "Traceback" not in response.text
    return str(body["detail"])


async def account_count(api: ApiHarness) -> int:
    async with api.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(accounts)) or 0)


async def me(api: ApiHarness, headers: dict[str, str]) -> httpx.Response:
    return await api.client.get("/auth/me", headers=headers)


async def login(api: ApiHarness, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = await api.client.post(
        "/auth/login", json={"username": username, "password": password}
    )
    api.client.cookies.clear()
    assert response.status_code == 200, response.text
    return bearer(response.json()["token"])


async def owner(api: ApiHarness) -> dict[str, str]:
    return await api.login("owner", Role.STREAMER, ["*"])


async def invite(
    api: ApiHarness, headers: dict[str, str], username: str = "mod", **body: Any
) -> dict[str, Any]:
    payload = {"username": username, "role": "MODERATOR", "scopes": [f"@{STREAMER_HANDLE}"]}
    payload.update(body)
    response = await api.client.post("/accounts/invites", json=payload, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def accept(api: ApiHarness, token: str, password: str = NEW_PASSWORD) -> httpx.Response:
    response = await api.client.post(
        "/auth/invite/accept", json={"token": token, "password": password}
    )
    api.client.cookies.clear()
    return response


# -- first-run setup ---------------------------------------------------------------------------
async def test_setup_link_makes_one_owner_logged_in_and_is_dead_afterwards(
    api: ApiHarness,
) -> None:
    token = api.app.state.api.setup.token
    assert token, "an app started without accounts has a setup link"
    assert (await api.client.get("/auth/setup")).json() == {"needed": True}
    body = {"token": token, "username": "luna", "password": NEW_PASSWORD}

    wrong = await api.client.post("/auth/setup", json={**body, "token": token[::-1]})
    assert "no such setup link" in refused(wrong, 404)
    made = await api.client.post("/auth/setup", json=body)
    assert made.status_code == 201, made.text
    assert made.json()["account"] == {"username": "luna", "role": "STREAMER", "scopes": ["*"]}
    assert made.cookies.get(COOKIE_NAME)
    api.client.cookies.clear()
    assert (await me(api, bearer(made.json()["token"]))).json()["username"] == "luna"

    again = await api.client.post("/auth/setup", json={**body, "username": "mallory"})
    assert "setup is done" in refused(again, 410)
    assert (await api.client.get("/auth/setup")).json() == {"needed": False}
    assert api.app.state.api.setup.token is None
    assert await account_count(api) == 1


async def test_setup_is_refused_once_any_account_exists(api: ApiHarness) -> None:
    token = api.app.state.api.setup.token
    assert token
    await api.account("made-by-the-cli", Role.VIEWER, [STREAMER_HANDLE])
    response = await api.client.post(
        "/auth/setup", json={"token": token, "username": "luna", "password": NEW_PASSWORD}
    )
    refused(response, 410)
    assert await account_count(api) == 1
    # A process started now has no link at all.
    assert await SetupLink(Accounts(api.engine)).open() is None


async def test_two_setups_at_once_make_exactly_one_account(api: ApiHarness) -> None:
    token = api.app.state.api.setup.token
    assert token
    answers = await asyncio.gather(
        *(
            api.client.post(
                "/auth/setup",
                json={"token": token, "username": f"owner{i}", "password": NEW_PASSWORD},
            )
            for i in range(4)
        )
    )
    api.client.cookies.clear()
    assert sorted(a.status_code for a in answers) == [201, 410, 410, 410], [a.text for a in answers]
    assert await account_count(api) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"token": "x", "username": "two words", "password": NEW_PASSWORD},
        {"token": "x", "username": "luna", "password": "short"},
        {"token": "x", "username": "luna"},
        {"token": "x", "username": "luna", "password": NEW_PASSWORD, "role": "STREAMER"},
    ],
    ids=["bad-name", "short-password", "no-password", "extra-field"],
)
async def test_a_malformed_setup_is_400(api: ApiHarness, body: dict[str, str]) -> None:
    refused(await api.client.post("/auth/setup", json=body), 400)
    assert await account_count(api) == 0


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_setup_link_printed_by_another_replica_works_here_while_it_runs(
    api: ApiHarness,
) -> None:
    shared = api.app.state.api.setup.shared
    assert shared is not None, "api replicas on Redis share their setup links"
    other = SetupLink(Accounts(api.engine), shared)  # another replica's
    token = await other.open()
    assert token
    stopped = SetupLink(Accounts(api.engine), shared)
    stale = await stopped.open()
    assert stale
    await stopped.close()  # that replica stopped: its link died with it
    body = {"username": "luna", "password": NEW_PASSWORD}
    refused(await api.client.post("/auth/setup", json={"token": stale, **body}), 404)
    made = await api.client.post("/auth/setup", json={"token": token, **body})
    api.client.cookies.clear()
    assert made.status_code == 201, made.text
    await other.close()


# -- invites -----------------------------------------------------------------------------------
async def test_an_invite_makes_its_account_once_with_the_invitees_password(
    api: ApiHarness,
) -> None:
    headers = await owner(api)
    created = await invite(api, headers, expiresInS=3600)
    token = created["token"]
    assert created["path"] == f"/#/invite/{token}"
    assert (created["username"], created["role"], created["scopes"]) == (
        "mod",
        "MODERATOR",
        [STREAMER_HANDLE],
    )
    listed = (await api.client.get("/accounts/invites", headers=headers)).json()
    assert [(i["id"], i["username"]) for i in listed] == [(created["id"], "mod")]
    assert "token" not in listed[0]
    async with api.engine.connect() as conn:
        stored = (await conn.execute(select(account_invites.c.token_hash))).scalars().all()
    assert stored == [token_hash(token)]  # the hash, never the token

    info = await api.client.post("/auth/invite", json={"token": token})
    assert info.status_code == 200, info.text
    assert info.json()["username"] == "mod"
    refused(await accept(api, token, "short"), 400)
    accepted = await accept(api, token)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["account"] == {
        "username": "mod",
        "role": "MODERATOR",
        "scopes": [STREAMER_HANDLE],
    }
    assert (await me(api, bearer(accepted.json()["token"]))).status_code == 200
    assert await login(api, "mod", NEW_PASSWORD)

    assert "used already" in refused(await accept(api, token, "another password"), 410)
    refused(await api.client.post("/auth/invite", json={"token": token}), 410)
    assert (await api.client.get("/accounts/invites", headers=headers)).json() == []


async def test_an_expired_invite_is_410(api: ApiHarness) -> None:
    headers = await owner(api)
    created = await invite(api, headers)
    async with api.engine.begin() as conn:
        await conn.execute(
            update(account_invites).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert "expired" in refused(await accept(api, created["token"]), 410)
    refused(await api.client.post("/auth/invite", json={"token": created["token"]}), 410)
    assert await Accounts(api.engine).get("mod") is None


async def test_a_withdrawn_or_unknown_invite_is_404(api: ApiHarness) -> None:
    headers = await owner(api)
    created = await invite(api, headers)
    gone = await api.client.delete(f"/accounts/invites/{created['id']}", headers=headers)
    assert gone.status_code == 204, gone.text
    refused(await accept(api, created["token"]), 404)
    refused(await accept(api, "never-issued"), 404)
    refused(await api.client.delete(f"/accounts/invites/{created['id']}", headers=headers), 404)


async def test_two_acceptances_at_once_make_one_account(api: ApiHarness) -> None:
    headers = await owner(api)
    token = (await invite(api, headers))["token"]
    answers = await asyncio.gather(*(accept(api, token) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [201, 410, 410], [a.text for a in answers]


@pytest.mark.parametrize(
    ("username", "why"),
    [("owner", "exists already"), ("pending", "open invite"), ("invites", "reserved")],
)
async def test_an_invite_for_a_taken_name_is_409(api: ApiHarness, username: str, why: str) -> None:
    headers = await owner(api)
    await invite(api, headers, "pending")
    response = await api.client.post(
        "/accounts/invites",
        json={"username": username, "role": "VIEWER", "scopes": ["*"]},
        headers=headers,
    )
    assert why in refused(response, 409)


@pytest.mark.parametrize(
    "body",
    [
        {"username": "x", "role": "ADMIN", "scopes": ["*"]},
        {"username": "x", "role": "VIEWER", "scopes": []},
        {"username": "x", "role": "VIEWER", "scopes": ["not a handle"]},
        {"username": "x y", "role": "VIEWER", "scopes": ["*"]},
        {"username": "x", "role": "VIEWER", "scopes": ["*"], "expiresInS": 10},
        {"username": "x", "role": "VIEWER", "scopes": ["*"], "password": "chosen"},
    ],
    ids=["role", "no-scope", "bad-scope", "bad-name", "too-short", "extra-field"],
)
async def test_a_malformed_invite_is_400(api: ApiHarness, body: dict[str, Any]) -> None:
    headers = await owner(api)
    refused(await api.client.post("/accounts/invites", json=body, headers=headers), 400)


# -- changes end the account's tokens ----------------------------------------------------------
CHANGES: Final = {
    "role": {"role": "VIEWER"},
    "scope": {"scopes": ["other.streamer"]},
    "disable": {"disabled": True},
}


@pytest.mark.parametrize("change", CHANGES)
async def test_a_change_of_rights_ends_the_accounts_tokens(api: ApiHarness, change: str) -> None:
    headers = await owner(api)
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    cookie_holder = httpx.AsyncClient(base_url=api.url)
    async with cookie_holder:
        logged_in = await cookie_holder.post(
            "/auth/login", json={"username": "mod", "password": PASSWORD}
        )
        assert logged_in.status_code == 200
        response = await api.client.patch("/accounts/mod", json=CHANGES[change], headers=headers)
        assert response.status_code == 200, response.text
        refused(await me(api, mod), 401)  # at once on this replica
        refused(await cookie_holder.get("/auth/me"), 401)
    if change == "disable":
        enabled = await api.client.patch("/accounts/mod", json={"disabled": False}, headers=headers)
        assert enabled.json()["disabled"] is False
        refused(await me(api, mod), 401)  # enabling does not bring old tokens back
    fresh = await login(api, "mod")
    answer = (await me(api, fresh)).json()
    expected = {"role": "VIEWER"} if change == "role" else {}
    expected |= {"scopes": ["other.streamer"]} if change == "scope" else {}
    assert {k: answer[k] for k in expected} == expected


async def test_a_change_that_changes_nothing_keeps_the_tokens(api: ApiHarness) -> None:
    headers = await owner(api)
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    same = {"role": "MODERATOR", "scopes": [f"@{STREAMER_HANDLE.upper()}"], "disabled": False}
    response = await api.client.patch("/accounts/mod", json=same, headers=headers)
    assert response.status_code == 200, response.text
    assert (await me(api, mod)).status_code == 200


async def test_a_deleted_account_is_gone_with_its_tokens(api: ApiHarness) -> None:
    headers = await owner(api)
    mod = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    response = await api.client.delete("/accounts/mod", headers=headers)
    assert response.status_code == 204, response.text
    refused(await me(api, mod), 401)
    refused(await api.client.delete("/accounts/mod", headers=headers), 404)
    names = [a["username"] for a in (await api.client.get("/accounts", headers=headers)).json()]
    assert names == ["owner"]


async def test_the_owner_list_shows_roles_scopes_and_who_is_owner(api: ApiHarness) -> None:
    headers = await owner(api)
    await api.account("nova", Role.STREAMER, ["dj.nova"])
    listed = (await api.client.get("/accounts", headers=headers)).json()
    rows = {a["username"]: (a["role"], a["scopes"], a["owner"], a["disabled"]) for a in listed}
    assert rows == {
        "owner": ("STREAMER", ["*"], True, False),
        "nova": ("STREAMER", ["dj.nova"], False, False),
    }


# -- the last owner ----------------------------------------------------------------------------
LAST_OWNER_CHANGES: Final = [
    ("PATCH", {"role": "MODERATOR"}),
    ("PATCH", {"scopes": [STREAMER_HANDLE]}),
    ("PATCH", {"disabled": True}),
    ("DELETE", None),
]


@pytest.mark.parametrize(
    ("method", "body"), LAST_OWNER_CHANGES, ids=["demote", "narrow", "disable", "delete"]
)
async def test_the_last_owner_cannot_be_demoted_narrowed_disabled_or_deleted(
    api: ApiHarness, method: str, body: dict[str, Any] | None
) -> None:
    headers = await owner(api)
    await api.account("nova", Role.STREAMER, ["dj.nova"])  # a streamer, but not an owner
    response = await api.client.request(method, "/accounts/owner", json=body, headers=headers)
    assert "last owner" in refused(response, 409)
    assert (await me(api, headers)).status_code == 200  # nothing changed, the token holds
    second = await api.client.patch("/accounts/nova", json={"scopes": ["*"]}, headers=headers)
    assert second.json()["owner"] is True
    allowed = await api.client.request(method, "/accounts/owner", json=body, headers=headers)
    assert allowed.status_code in {200, 204}, allowed.text


# -- who may ---------------------------------------------------------------------------------------
OWNER_ENDPOINTS: Final = [
    ("GET", "/accounts", None),
    ("GET", "/accounts/invites", None),
    ("POST", "/accounts/invites", {"username": "x", "role": "VIEWER", "scopes": ["*"]}),
    ("DELETE", "/accounts/invites/1", None),
    ("PATCH", "/accounts/owner", {"role": "VIEWER"}),
    ("DELETE", "/accounts/owner", None),
]
NOT_OWNERS: Final = {
    "streamer-of-one": (Role.STREAMER, [STREAMER_HANDLE]),
    "moderator-all": (Role.MODERATOR, ["*"]),
    "viewer-all": (Role.VIEWER, ["*"]),
}


@pytest.mark.parametrize("who", NOT_OWNERS)
async def test_only_the_owner_manages_accounts(api: ApiHarness, who: str) -> None:
    await owner(api)
    role, scopes = NOT_OWNERS[who]
    headers = await api.login(who, role, scopes)
    for method, path, body in OWNER_ENDPOINTS:
        response = await api.client.request(method, path, json=body, headers=headers)
        assert "owner" in refused(response, 403), (method, path)
        anonymous = await api.client.request(method, path, json=body)
        refused(anonymous, 401)
    assert await Accounts(api.engine).get("owner") is not None
    assert await Accounts(api.engine).get("x") is None


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PATCH", "/accounts/nobody", {"role": "VIEWER"}, 404),
        ("PATCH", "/accounts/owner", {"role": "ADMIN"}, 400),
        ("PATCH", "/accounts/owner", {"scopes": []}, 400),
        ("PATCH", "/accounts/owner", {"password": "new one please"}, 400),
        ("PATCH", "/accounts/two%20words", {"role": "VIEWER"}, 400),
        ("DELETE", "/accounts/invites/0", None, 400),
        ("POST", "/auth/invite", {"token": ""}, 400),
        ("POST", "/auth/invite/accept", {"token": "t"}, 400),
    ],
)
async def test_bad_account_requests_are_4xx_with_a_reason(
    api: ApiHarness, method: str, path: str, body: Any, status: int
) -> None:
    headers = await owner(api)
    refused(await api.client.request(method, path, json=body, headers=headers), status)


async def test_a_body_that_is_not_json_is_400(api: ApiHarness) -> None:
    headers = await owner(api)
    for method, path in [("PATCH", "/accounts/owner"), ("POST", "/accounts/invites")]:
        response = await api.client.request(
            method,
            path,
            content=b"{not json",
            headers={**headers, "Content-Type": "application/json"},
        )
        refused(response, 400)
