"""``/auth``: log in for a JWT (header and HttpOnly cookie), log out, who am I.

Every token has an id (``jti``): a logout ends the token it is sent with, on every api replica
(``revoked_tokens``, see ``ttlp.api.auth``), not only the cookie of one browser.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec
from litestar import Response, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT

from ttlp.api.accounts import Account
from ttlp.api.auth import (
    COOKIE_NAME,
    PASSWORD_CLAIM,
    current_account,
    password_stamp,
    presented_tokens,
)
from ttlp.api.state import Api, Req, iso

TOKEN_ID_BYTES: Final = 16


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    password: str


class AccountOut(msgspec.Struct, rename="camel"):
    username: str
    role: str
    scopes: list[str]


class LoginResponse(msgspec.Struct, rename="camel"):
    token: str
    token_type: str
    expires_at: str
    account: AccountOut


def account_out(account: Account) -> AccountOut:
    return AccountOut(account.username, account.role.value, list(account.scopes))


def session_response(
    account: Account, api: Api, request: Req, status_code: int = HTTP_200_OK
) -> Response[LoginResponse]:
    """A token for ``account``, in the body and as the UI's HttpOnly cookie: what a login
    answers, and the first-run setup and an accepted invite too (they log the new account in)."""
    jwt_auth = request.app.state.jwt_auth
    ttl = api.settings.api.token_ttl_s
    token = jwt_auth.create_token(
        identifier=account.username,
        token_expiration=timedelta(seconds=ttl),
        token_unique_jwt_id=secrets.token_urlsafe(TOKEN_ID_BYTES),
        token_extras={"role": account.role.value, PASSWORD_CLAIM: password_stamp(account)},
    )
    expires = datetime.now(UTC) + timedelta(seconds=ttl)
    body = LoginResponse(
        token=token,
        token_type="Bearer",
        expires_at=iso(expires) or "",
        account=account_out(account),
    )
    cookie = Cookie(
        key=COOKIE_NAME,
        value=jwt_auth.format_auth_header(token),
        max_age=ttl,
        path="/",
        httponly=True,
        samesite="strict",
        secure=api.settings.api.cookie_secure,
    )
    return Response(body, status_code=status_code, cookies=[cookie])


@post(
    "/auth/login",
    status_code=HTTP_200_OK,
    summary="Log in: a JWT and a session cookie",
    raises=[NotAuthorizedException],  # wrong username or password
)
async def login(data: JSONBody[LoginRequest], api: Api, request: Req) -> Response[LoginResponse]:
    if not 1 <= len(data.username) <= 128 or not data.password:
        raise NotAuthorizedException("wrong username or password")
    account = await api.accounts.authenticate(data.username, data.password)
    if account is None:
        raise NotAuthorizedException("wrong username or password")
    return session_response(account, api, request)


@post(
    "/auth/logout",
    status_code=HTTP_204_NO_CONTENT,
    summary="Log out: end the token sent (header or cookie) and clear the cookie",
    description="Needs no valid token, so a stale cookie can go too; a valid one is revoked "
    "on every api replica.",
    exclude_from_auth=True,
)
async def logout(api: Api, request: Req) -> Response[None]:
    for token in presented_tokens(request.app.state.jwt_auth, request):
        if isinstance(token.jti, str) and token.jti:
            await api.accounts.revoke_token(token.jti, token.sub, token.exp)
        api.account_cache.forget(token.sub)
    # The same attributes as the login cookie, which this one replaces.
    cookie = Cookie(
        key=COOKIE_NAME,
        value="",
        max_age=0,
        path="/",
        httponly=True,
        samesite="strict",
        secure=api.settings.api.cookie_secure,
    )
    return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=[cookie])


@get("/auth/me", summary="The logged-in account")
async def me(request: Req) -> AccountOut:
    return account_out(current_account(request))


routes = [login, logout, me]
