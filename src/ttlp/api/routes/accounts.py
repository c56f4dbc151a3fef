"""Accounts in the API: the owner manages them (``/accounts``); the first-run setup and the
invites make them (``/auth/setup``, ``/auth/invite``).

``/accounts`` is for the owner only (an enabled STREAMER of scope ``*``; anyone else 403): list
the accounts and the open invites, invite (a one-time link with an expiry; the owner fixes the
username, role and scope, the invitee picks the password), change an account's role, scope or
state, delete one. A change of rights or a deletion ends that account's tokens (on this replica
at once, on the others within the account cache's few seconds). The last owner cannot be
deleted, demoted, narrowed or disabled (409).

``/auth/setup`` and ``/auth/invite`` are open (no token): they carry the link's token in the
JSON body, never in a URL that an access log or a proxy would keep. Setup and an accepted
invite answer like a login: a token, and the UI's cookie.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, KwargDefinition, PathParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ttlp.api.accounts import (
    MAX_PASSWORD_LEN,
    MAX_SCOPES,
    MIN_PASSWORD_LEN,
    USERNAME_RE,
    Account,
    Role,
)
from ttlp.api.auth import current_account, require_owner
from ttlp.api.errors import Conflict, Gone
from ttlp.api.invites import (
    DEFAULT_TTL_S,
    INVITE_PATH,
    MAX_TTL_S,
    MIN_TTL_S,
    Invite,
    InviteGone,
    Invites,
)
from ttlp.api.routes.auth import LoginResponse, session_response
from ttlp.api.state import Api, Req, iso
from ttlp.errors import NotFoundError

SCOPE_PATTERN: Final = r"^(\*|@?[A-Za-z0-9_.]{1,64})$"
MAX_ID: Final = 2**53

Username = Annotated[
    str,
    msgspec.Meta(
        pattern=USERNAME_RE.pattern, description="1-64 letters, digits or . _ @ - (no spaces)"
    ),
]
# The item's pattern twice: msgspec validates with its Meta, the OpenAPI document reads the
# KwargDefinition (Litestar drops a list item's Meta from the schema).
Scopes = Annotated[
    list[
        Annotated[str, msgspec.Meta(pattern=SCOPE_PATTERN), KwargDefinition(pattern=SCOPE_PATTERN)]
    ],
    msgspec.Meta(
        min_length=1,
        max_length=MAX_SCOPES,
        description='Streamer handles (with or without @), or ["*"] for every streamer',
    ),
]
Password = Annotated[str, msgspec.Meta(min_length=MIN_PASSWORD_LEN, max_length=MAX_PASSWORD_LEN)]
LinkToken = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
PathUsername = Annotated[
    str, PathParameter(pattern=USERNAME_RE.pattern, description="an account's username")
]
InviteId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="an invite id")]


class AccountInfo(msgspec.Struct, rename="camel", kw_only=True):
    username: str
    role: Role
    scopes: list[str]
    disabled: bool
    owner: bool
    """An enabled STREAMER of scope ``*``: may manage accounts."""
    created_at: str | None


class AccountChange(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """What to change; what is absent stays."""

    role: Role | None = None
    scopes: Scopes | None = None
    disabled: bool | None = None


class InviteIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    username: Username
    """The account's name (the invitee picks the password only)."""
    role: Role
    scopes: Scopes
    expires_in_s: Annotated[int, msgspec.Meta(ge=MIN_TTL_S, le=MAX_TTL_S)] = DEFAULT_TTL_S
    """How long the link works (default 3 days)."""


class InviteOut(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    username: str
    role: Role
    scopes: list[str]
    created_by: str
    created_at: str | None
    expires_at: str | None


class InviteCreated(InviteOut, kw_only=True):
    token: str
    """The link's secret, shown once (only its hash is stored)."""
    path: str
    """The invite page: ``/#/invite/<token>``; the UI puts its own origin in front."""


class SetupState(msgspec.Struct, rename="camel"):
    needed: bool
    """No account exists yet: open the setup link ``ttlp run`` printed (or restart it)."""


class SetupIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    token: LinkToken
    username: Username
    password: Password


class InviteToken(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    token: LinkToken


class InviteInfo(msgspec.Struct, rename="camel", kw_only=True):
    username: str
    role: Role
    scopes: list[str]
    expires_at: str | None


class InviteAccept(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    token: LinkToken
    password: Password


def account_info(account: Account) -> AccountInfo:
    return AccountInfo(
        username=account.username,
        role=account.role,
        scopes=list(account.scopes),
        disabled=account.disabled,
        owner=account.owner,
        created_at=iso(account.created_at),
    )


def invite_out(invite: Invite) -> InviteOut:
    return InviteOut(
        id=invite.id,
        username=invite.username,
        role=invite.role,
        scopes=list(invite.scopes),
        created_by=invite.created_by,
        created_at=iso(invite.created_at),
        expires_at=iso(invite.expires_at),
    )


# -- the owner's: /accounts ---------------------------------------------------------------------
@get("/accounts", guards=[require_owner], summary="Every account (owner only)")
async def list_accounts(api: Api) -> list[AccountInfo]:
    return [account_info(a) for a in await api.accounts.list()]


@get("/accounts/invites", guards=[require_owner], summary="Open invites, newest first (owner only)")
async def list_invites(api: Api) -> list[InviteOut]:
    return [invite_out(i) for i in await Invites(api.engine).pending()]


@post(
    "/accounts/invites",
    guards=[require_owner],
    status_code=HTTP_201_CREATED,
    raises=[Conflict],  # the name is taken (an account, an open invite)
    summary="Invite someone: a one-time link with an expiry (owner only; the token is shown once)",
)
async def create_invite(api: Api, request: Req, data: JSONBody[InviteIn]) -> InviteCreated:
    owner = current_account(request)
    invite, token = await Invites(api.engine).create(
        data.username, data.role, data.scopes, owner.username, data.expires_in_s
    )
    return InviteCreated(
        **msgspec.structs.asdict(invite_out(invite)), token=token, path=INVITE_PATH + token
    )


@delete(
    "/accounts/invites/{invite_id:int}",
    guards=[require_owner],
    status_code=HTTP_204_NO_CONTENT,
    summary="Withdraw an open invite: its link stops working (owner only)",
)
async def withdraw_invite(api: Api, invite_id: InviteId) -> None:
    await Invites(api.engine).withdraw(invite_id)


@patch(
    "/accounts/{username:str}",
    guards=[require_owner],
    raises=[Conflict],  # the last owner
    summary="Change an account's role, scope or state (owner only); ends its tokens",
    description="A change of role or scope, and disabling, end the account's tokens (enabling "
    "it again does not bring them back). The last owner (enabled STREAMER of scope *) cannot "
    "be demoted, narrowed or disabled: 409.",
)
async def change_account(
    api: Api, username: PathUsername, data: JSONBody[AccountChange]
) -> AccountInfo:
    account = await api.accounts.change(
        username, role=data.role, scopes=data.scopes, disabled=data.disabled
    )
    api.account_cache.forget(username)
    return account_info(account)


@delete(
    "/accounts/{username:str}",
    guards=[require_owner],
    status_code=HTTP_204_NO_CONTENT,
    raises=[Conflict],  # the last owner
    summary="Delete an account and end its tokens (owner only; not the last owner: 409)",
)
async def delete_account(api: Api, username: PathUsername) -> None:
    await api.accounts.delete(username)
    api.account_cache.forget(username)


# -- open: the first-run setup and invites ------------------------------------------------------
@get(
    "/auth/setup",
    exclude_from_auth=True,
    summary="Whether first-run setup is open (no account exists yet)",
)
async def setup_state(api: Api) -> SetupState:
    return SetupState(needed=await api.accounts.count() == 0)


@post(
    "/auth/setup",
    exclude_from_auth=True,
    status_code=HTTP_201_CREATED,
    raises=[NotFoundException, Gone],
    summary="First-run setup: the owner account (STREAMER of scope *), logged in",
    description="Takes the token of the setup link `ttlp run` printed. 410 once any account "
    "exists (the link is used up); 404 for a token no running api replica made.",
)
async def setup(api: Api, request: Req, data: JSONBody[SetupIn]) -> Response[LoginResponse]:
    done = InviteGone("setup is done: an account exists already; log in")
    if await api.accounts.count():
        raise done
    if not await api.setup.accepts(data.token):
        raise NotFoundError(
            "no such setup link: use the one the running ttlp printed (a restart prints a new one)"
        )
    account = await api.accounts.setup_owner(data.username, data.password)
    if account is None:  # another setup was quicker
        raise done
    await api.setup.close()
    return session_response(account, api, request, HTTP_201_CREATED)


@post(
    "/auth/invite",
    exclude_from_auth=True,
    status_code=200,
    raises=[NotFoundException, Gone],
    summary="What an invite link offers (username, role, scope, expiry), while it can be used",
)
async def invite_info(api: Api, data: JSONBody[InviteToken]) -> InviteInfo:
    invite = await Invites(api.engine).lookup(data.token)
    return InviteInfo(
        username=invite.username,
        role=invite.role,
        scopes=list(invite.scopes),
        expires_at=iso(invite.expires_at),
    )


@post(
    "/auth/invite/accept",
    exclude_from_auth=True,
    status_code=HTTP_201_CREATED,
    raises=[NotFoundException, Gone, Conflict],
    summary="Accept an invite: the account with the chosen password, logged in",
    description="The link works once: used or expired 410, withdrawn 404.",
)
async def accept_invite(
    api: Api, request: Req, data: JSONBody[InviteAccept]
) -> Response[LoginResponse]:
    account = await Invites(api.engine).accept(data.token, data.password)
    return session_response(account, api, request, HTTP_201_CREATED)


routes = [
    list_accounts,
    list_invites,
    create_invite,
    withdraw_invite,
    change_account,
    delete_account,
    setup_state,
    setup,
    invite_info,
    accept_invite,
]
