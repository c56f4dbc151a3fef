"""API accounts (DESIGN §7.1): who may log in, with which role, for which streamers.

Passwords are hashed with scrypt (memory-hard, in the standard library: no extra dependency),
N=2^15, r=8, p=1 (32 MiB and ~0.1 s per hash on the dev machine, run off the event loop), a
random 16-byte salt, stored in one self-describing string ``scrypt$N$r$p$salt$hash`` so the
parameters can be raised later without invalidating existing hashes.
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.aio import as_utc
from ttlp.db.tables import accounts, revoked_tokens
from ttlp.errors import InputError

SCRYPT_N: Final = 2**15
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SCRYPT_MAXMEM: Final = 64 * 1024 * 1024
SALT_BYTES: Final = 16
HASH_BYTES: Final = 32
MIN_PASSWORD_LEN: Final = 8
MAX_PASSWORD_LEN: Final = 1024  # scrypt hashes any length; this bounds the work per request
USERNAME_RE: Final = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
HANDLE_RE: Final = re.compile(r"^[A-Za-z0-9_.]{1,64}$")
ALL_STREAMS: Final = "*"


class Role(enum.StrEnum):
    """STREAMER > MODERATOR > VIEWER."""

    STREAMER = "STREAMER"
    MODERATOR = "MODERATOR"
    VIEWER = "VIEWER"

    @property
    def rank(self) -> int:
        return {Role.VIEWER: 0, Role.MODERATOR: 1, Role.STREAMER: 2}[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


class AccountError(InputError):
    """A bad account request (unknown user, weak password, duplicate name)."""


class Account(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    username: str
    role: Role
    scopes: tuple[str, ...]
    disabled: bool
    created_at: datetime
    password_changed_at: datetime

    def may_see(self, unique_id: str | None) -> bool:
        """In scope: ``*``, or the streamer's handle (case-insensitive, TikTok's are)."""
        if ALL_STREAMS in self.scopes:
            return True
        return unique_id is not None and unique_id.lower() in {s.lower() for s in self.scopes}


def hash_password(password: str) -> str:
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(
        ("scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P), _b64(salt), _b64(digest))
    )


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, _unb64(digest))


DUMMY_HASH: Final = (
    "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
)
"""Verified against when the username is unknown, so a login takes as long either way."""


def check_password(password: str) -> None:
    if not MIN_PASSWORD_LEN <= len(password) <= MAX_PASSWORD_LEN:
        raise AccountError(f"a password needs {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters")


def parse_scopes(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"a,@b"`` or ``["a", "b"]`` → ``("a", "b")``; ``*`` alone means every streamer."""
    items = value.split(",") if isinstance(value, str) else list(value)
    scopes = tuple(dict.fromkeys(s.strip().lstrip("@").lower() for s in items if s.strip()))
    if not scopes:
        raise AccountError("an account needs a scope: streamer handle(s), or * for all")
    if ALL_STREAMS in scopes:
        return (ALL_STREAMS,)
    bad = [s for s in scopes if not HANDLE_RE.match(s)]
    if bad:
        raise AccountError(f"not a TikTok handle: {', '.join(bad)}")
    return scopes


class Accounts:
    """The ``accounts`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, username: str, password: str, role: Role, scopes: Sequence[str]) -> Account:
        if not USERNAME_RE.match(username):
            raise AccountError("a username is 1-64 letters, digits or . _ @ - (no spaces)")
        check_password(password)
        now = datetime.now(UTC)
        row = {
            "username": username,
            "password_hash": hash_password(password),
            "role": role.value,
            "scopes": list(parse_scopes(scopes)),
            "disabled": False,
            "created_at": now,
            "password_changed_at": now,
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(accounts).values(**row))
        except IntegrityError:
            raise AccountError(f"account {username!r} already exists") from None
        account = await self.get(username)
        assert account is not None
        return account

    async def get(self, username: str) -> Account | None:
        row = await self._row(username)
        return _account(row) if row is not None else None

    async def list(self) -> list[Account]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(accounts).order_by(accounts.c.username))).all()
        return [_account(row._mapping) for row in rows]

    async def authenticate(self, username: str, password: str) -> Account | None:
        """The account when the password is right and the account enabled; else None."""
        row = await self._row(username) if len(password) <= MAX_PASSWORD_LEN else None
        if row is None:
            await asyncio.to_thread(verify_password, password[:MAX_PASSWORD_LEN], DUMMY_HASH)
            return None
        ok = await asyncio.to_thread(verify_password, password, row["password_hash"])
        if not ok or row["disabled"]:
            return None
        return _account(row)

    async def set_password(self, username: str, password: str) -> None:
        check_password(password)
        await self._update(
            username,
            password_hash=hash_password(password),
            password_changed_at=datetime.now(UTC),
        )

    async def set_disabled(self, username: str, disabled: bool) -> None:
        await self._update(username, disabled=disabled)

    async def revoke_token(self, jti: str, username: str, expires_at: datetime) -> None:
        """End one token (logout) until it expires; expired revocations are dropped on the
        way. Revoking a token twice is a no-op."""
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            await conn.execute(delete(revoked_tokens).where(revoked_tokens.c.expires_at < now))
        row = {"jti": jti, "username": username, "expires_at": expires_at, "revoked_at": now}
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(revoked_tokens).values(**row))
        except IntegrityError:
            pass  # already revoked (a second logout with the same token)

    async def revoked_tokens(self, username: str) -> frozenset[str]:
        """The ids (jti) of the account's tokens that were logged out and have not expired."""
        query = select(revoked_tokens.c.jti).where(
            revoked_tokens.c.username == username,
            revoked_tokens.c.expires_at >= datetime.now(UTC),
        )
        async with self.engine.connect() as conn:
            return frozenset((await conn.execute(query)).scalars())

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(accounts))).scalar_one()
            )

    async def _update(self, username: str, **values: Any) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(accounts).where(accounts.c.username == username).values(**values)
            )
        if result.rowcount == 0:
            raise AccountError(f"no account {username!r}: see `ttlp accounts list`")

    async def _row(self, username: str) -> Any:
        async with self.engine.connect() as conn:
            result = await conn.execute(select(accounts).where(accounts.c.username == username))
            row = result.first()
        return row._mapping if row is not None else None


def _account(row: Any) -> Account:
    return Account(
        id=row["id"],
        username=row["username"],
        role=Role(row["role"]),
        scopes=tuple(row["scopes"]),
        disabled=bool(row["disabled"]),
        created_at=as_utc(row["created_at"]),
        password_changed_at=as_utc(row["password_changed_at"]),
    )


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=HASH_BYTES
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
