"""Authentication and authorization (DESIGN §7.1): JWT login, role guards, stream scope.

Litestar's ``JWTCookieAuth`` reads the token from the ``Authorization: Bearer`` header or the
HttpOnly cookie the UI gets at login (SameSite=Strict, so another site cannot ride on it).
Every request resolves the token's subject to its account, cached for a few seconds: a
disabled account or a password change ends existing tokens within ``ACCOUNT_CACHE_S``, and so
does a logout on another api replica (``revoked_tokens``, keyed by the token's ``jti``, read
with the account; the replica that logs a token out forgets the account at once).

Roles are guards on the route handlers (``require(Role.MODERATOR)``); the stream scope is
checked where the stream is known (``ensure_scope``), through the stream's streamer handle,
because TikTok room ids change with every broadcast.
"""

from __future__ import annotations

import os
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.security.jwt import JWTCookieAuth, Token

from ttlp.api.accounts import ALL_STREAMS, Account, Accounts, Role
from ttlp.settings import Settings

COOKIE_NAME: Final = "ttlp_token"
ACCOUNT_CACHE_S: Final = 5.0
JWT_SECRET_FILE: Final = "jwt-secret"
PASSWORD_CLAIM: Final = "pwc"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
OPEN_PATHS: Final = ["^/health$", "^/metrics$", "^/auth/login$", "^/auth/logout$", "^/schema"]


def jwt_secret(settings: Settings) -> str:
    """``JWT_SECRET``, or the data directory's own (created once, mode 0600)."""
    if settings.api.jwt_secret:
        return settings.api.jwt_secret
    path = Path(settings.data_dir) / JWT_SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class AccountCache:
    """username → (account, its logged-out token ids) for ``ACCOUNT_CACHE_S`` (a token is
    checked on every request; both live in the database, so every api replica agrees within
    that time)."""

    def __init__(self, accounts: Accounts, ttl_s: float | None = None) -> None:
        self.accounts = accounts
        # Read at construction, not definition: a test can shorten it for a new app.
        self.ttl_s = ACCOUNT_CACHE_S if ttl_s is None else ttl_s
        self._cache: dict[str, tuple[float, Account | None, frozenset[str]]] = {}

    async def _entry(self, username: str) -> tuple[Account | None, frozenset[str]]:
        now = time.monotonic()
        hit = self._cache.get(username)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1], hit[2]
        account = await self.accounts.get(username)
        revoked = await self.accounts.revoked_tokens(username) if account else frozenset()
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[username] = (now, account, revoked)
        return account, revoked

    async def get(self, username: str) -> Account | None:
        return (await self._entry(username))[0]

    def forget(self, username: str) -> None:
        """Read the account again at its next request (after a logout on this replica)."""
        self._cache.pop(username, None)

    async def current(self, token: Token) -> Account | None:
        """The token's account while the token holds: the account exists, is enabled, its
        password has not changed since the login and the token was not logged out. Not by
        ``iat``: it has whole seconds only, so a token from the same second as a change would
        survive it. A token without an id (``jti``, given since logout revokes) is refused:
        it could not be logged out."""
        account, revoked = await self._entry(token.sub)
        if account is None or account.disabled:
            return None
        if token.extras.get(PASSWORD_CLAIM) != password_stamp(account):
            return None
        if not isinstance(token.jti, str) or not token.jti or token.jti in revoked:
            return None
        return account


def password_stamp(account: Account) -> int:
    """When the account's password last changed (µs since the epoch): every token carries the
    stamp of its login (``PASSWORD_CLAIM``), and only the current stamp is accepted."""
    return (account.password_changed_at - EPOCH) // timedelta(microseconds=1)


def make_jwt_auth(settings: Settings, cache: AccountCache) -> JWTCookieAuth[Account, Token]:
    async def retrieve_account(
        token: Token, _connection: ASGIConnection[Any, Any, Any, Any]
    ) -> Account | None:
        return await cache.current(token)

    return JWTCookieAuth[Account, Token](
        retrieve_user_handler=retrieve_account,
        token_secret=jwt_secret(settings),
        key=COOKIE_NAME,
        samesite="strict",
        secure=settings.api.cookie_secure,
        path="/",
        default_token_expiration=timedelta(seconds=settings.api.token_ttl_s),
        exclude=[*OPEN_PATHS, "^/$", "^/ui"],
        description="Log in at POST /auth/login; send the token as `Authorization: Bearer`.",
    )


def presented_tokens(
    jwt_auth: JWTCookieAuth[Account, Token], connection: ASGIConnection[Any, Any, Any, Any]
) -> list[Token]:
    """The valid tokens a request carries (header and cookie; either may be absent, stale or
    forged, and is then left out): what a logout ends. Decoded as the auth middleware does."""
    encoded = [
        connection.headers.get("Authorization", "").partition(" ")[-1],
        connection.cookies.get(COOKIE_NAME, "").split(" ")[-1],
    ]
    tokens: list[Token] = []
    for text in dict.fromkeys(t for t in encoded if t):
        try:
            token = jwt_auth.token_cls.decode(
                encoded_token=text, secret=jwt_auth.token_secret, algorithm=jwt_auth.algorithm
            )
        except NotAuthorizedException:
            continue
        tokens.append(token)
    return tokens


def current_account(connection: ASGIConnection[Any, Any, Any, Any]) -> Account:
    account = connection.scope.get("user")
    if not isinstance(account, Account):
        raise NotAuthorizedException("log in first: POST /auth/login")
    return account


def require(role: Role) -> Any:
    """A guard: the account's role is ``role`` or higher (STREAMER > MODERATOR > VIEWER)."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        account = current_account(connection)
        if not account.role.at_least(role):
            raise PermissionDeniedException(
                f"this needs the {role.value} role; your account is {account.role.value}"
            )

    guard.__name__ = f"require_{role.value.lower()}"
    return guard


def require_owner(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    """A guard: the account is the owner, an enabled STREAMER of scope ``*`` (accounts)."""
    account = current_account(connection)
    if not account.owner:
        raise PermissionDeniedException(
            "managing accounts needs the owner: a STREAMER account of scope *"
        )


def ensure_scope(account: Account, unique_id: str | None) -> None:
    """403 unless the account may see the streamer ``unique_id``."""
    if not account.may_see(unique_id):
        raise PermissionDeniedException("this stream is outside your account's scope")


def normalize_scope(scope: str) -> str:
    """What a rule or forward target applies to: ``*`` or a handle (``@Luna`` → ``luna``)."""
    return ALL_STREAMS if scope == ALL_STREAMS else scope.lstrip("@").lower()


def ensure_owned_scope(account: Account, scope: str, what: str) -> None:
    """403 unless the account may manage ``what`` (rules, forward targets) of ``scope``: a
    handle in its scope, or ``*`` only for an account of scope ``*``."""
    if scope == ALL_STREAMS:
        if ALL_STREAMS not in account.scopes:
            raise PermissionDeniedException(
                f"{what} for every streamer (scope *) needs an account of scope *"
            )
        return
    ensure_scope(account, scope)


def token_expiry(settings: Settings) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=settings.api.token_ttl_s)
