"""API accounts (DESIGN §7.1): who may log in, with which role, for which streamers.

The *owner* is an enabled STREAMER of scope ``*``: the account that manages the others
(``/accounts``, the UI's Accounts page). The first one is made by the first-run setup
(``setup_owner``), and no change may leave a database that has an owner without one
(``AccountConflict``, 409). Changes of accounts that check other rows first (setup, role, scope,
disable, delete, an accepted invite) run in ``exclusive``, so two of them never interleave.

Every token carries the account's ``password_changed_at`` (``ttlp.api.auth.password_stamp``),
and only the current one is accepted: the column is the account's token epoch, moved by a new
password and by every change of rights (role, scope, disabling), so such a change ends the
tokens issued before it, on every api replica, without a mechanism of its own.

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
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ttlp.aio import as_utc
from ttlp.db.engine import write_transaction
from ttlp.db.tables import accounts, revoked_tokens
from ttlp.errors import InputError, NotFoundError

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
RESERVED_USERNAMES: Final = frozenset({"invites"})
"""Names an account cannot have: ``/accounts/invites`` is the invites' path, not an account's."""
MAX_SCOPES: Final = 64


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


class AccountConflict(AccountError):
    """The request is well formed but the accounts as they are refuse it (409): a name that is
    taken, the last owner."""

    status = 409


class NoSuchAccount(AccountError, NotFoundError):
    status = 404


class Account(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    username: str
    role: Role
    scopes: tuple[str, ...]
    disabled: bool
    created_at: datetime
    password_changed_at: datetime

    @property
    def owner(self) -> bool:
        """An enabled STREAMER of scope ``*``: may manage the other accounts."""
        return self.role is Role.STREAMER and ALL_STREAMS in self.scopes and not self.disabled

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


def check_username(username: str) -> None:
    if not USERNAME_RE.match(username):
        raise AccountError("a username is 1-64 letters, digits or . _ @ - (no spaces)")
    if username.lower() in RESERVED_USERNAMES:
        raise AccountConflict(f"the username {username!r} is reserved: choose another")


def parse_scopes(value: str | Sequence[str]) -> tuple[str, ...]:
    """``"a,@b"`` or ``["a", "b"]`` → ``("a", "b")``; ``*`` alone means every streamer."""
    items = value.split(",") if isinstance(value, str) else list(value)
    scopes = tuple(dict.fromkeys(s.strip().lstrip("@").lower() for s in items if s.strip()))
    if not scopes:
        raise AccountError("an account needs a scope: streamer handle(s), or * for all")
    if len(scopes) > MAX_SCOPES:
        raise AccountError(f"an account has at most {MAX_SCOPES} streamers in its scope")
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
        check_username(username)
        check_password(password)
        row = new_account_row(username, hash_password(password), role, parse_scopes(scopes))
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(accounts).values(**row))
        except IntegrityError:
            raise AccountConflict(f"account {username!r} already exists") from None
        account = await self.get(username)
        assert account is not None
        return account

    async def setup_owner(self, username: str, password: str) -> Account | None:
        """The first account, an owner (STREAMER of scope ``*``); None when any account exists
        already. Of two setups at once (on any api replicas) exactly one makes an account."""
        check_username(username)
        check_password(password)
        password_hash = await asyncio.to_thread(hash_password, password)
        row = new_account_row(username, password_hash, Role.STREAMER, (ALL_STREAMS,))
        async with exclusive(self.engine) as conn:
            if await conn.scalar(select(func.count()).select_from(accounts)):
                return None
            await conn.execute(insert(accounts).values(**row))
        return await self.get(username)

    async def change(
        self,
        username: str,
        *,
        role: Role | None = None,
        scopes: Sequence[str] | None = None,
        disabled: bool | None = None,
    ) -> Account:
        """Change an account's role, scope or state; what is None stays. A change of rights
        (role, scope, disabling) ends the account's tokens (its token epoch moves: enabling it
        again does not bring them back). Refused (409) when it would leave no owner; a change
        that changes nothing changes nothing (the tokens stay)."""
        wanted = parse_scopes(scopes) if scopes is not None else None
        async with exclusive(self.engine) as conn:
            before = await _locked_account(conn, username)
            after = msgspec.structs.replace(
                before,
                role=before.role if role is None else role,
                scopes=before.scopes if wanted is None else wanted,
                disabled=before.disabled if disabled is None else disabled,
            )
            if after == before:
                return before
            if before.owner and not after.owner:
                await _ensure_another_owner(conn, before)
            values: dict[str, Any] = {
                "role": after.role.value,
                "scopes": list(after.scopes),
                "disabled": after.disabled,
            }
            rights_changed = (after.role, after.scopes) != (before.role, before.scopes)
            if rights_changed or (after.disabled and not before.disabled):
                values["password_changed_at"] = datetime.now(UTC)
            await conn.execute(update(accounts).where(accounts.c.id == before.id).values(**values))
        account = await self.get(username)
        if account is None:  # deleted since: as if it had been before
            raise NoSuchAccount(f"no account {username!r}")
        return account

    async def delete(self, username: str) -> None:
        """Delete an account (its tokens end with it); refused (409) for the last owner."""
        async with exclusive(self.engine) as conn:
            account = await _locked_account(conn, username)
            if account.owner:
                await _ensure_another_owner(conn, account)
            await conn.execute(delete(accounts).where(accounts.c.id == account.id))
            await conn.execute(delete(revoked_tokens).where(revoked_tokens.c.username == username))

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
        await self.change(username, disabled=disabled)

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
            raise NoSuchAccount(f"no account {username!r}")

    async def _row(self, username: str) -> Any:
        async with self.engine.connect() as conn:
            result = await conn.execute(select(accounts).where(accounts.c.username == username))
            row = result.first()
        return row._mapping if row is not None else None


def exclusive(engine: AsyncEngine) -> AbstractAsyncContextManager[AsyncConnection]:
    """A transaction that no other write of ``accounts`` interleaves with, so what it reads
    stays true until it commits (the owner count, whether a name is free); logins go on."""
    return write_transaction(engine, lock=("accounts",))


def new_account_row(
    username: str, password_hash: str, role: Role, scopes: Sequence[str]
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "username": username,
        "password_hash": password_hash,
        "role": role.value,
        "scopes": list(scopes),
        "disabled": False,
        "created_at": now,
        "password_changed_at": now,
    }


async def _locked_account(conn: AsyncConnection, username: str) -> Account:
    row = (await conn.execute(select(accounts).where(accounts.c.username == username))).first()
    if row is None:
        raise NoSuchAccount(f"no account {username!r}")
    return _account(row._mapping)


async def _ensure_another_owner(conn: AsyncConnection, account: Account) -> None:
    """409 unless an owner other than ``account`` remains."""
    query = select(accounts.c.scopes).where(
        accounts.c.role == Role.STREAMER.value,
        accounts.c.disabled.is_(False),
        accounts.c.id != account.id,
    )
    if not any(ALL_STREAMS in (scopes or ()) for scopes in (await conn.execute(query)).scalars()):
        raise AccountConflict(
            f"{account.username!r} is the last owner (an enabled STREAMER of scope *): make "
            "another account owner first"
        )


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
