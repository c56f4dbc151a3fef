"""Invites: a one-time link with an expiry that makes an account, instead of a password the
owner would have to pass on.

The owner fixes the username, the role and the scope; the invitee opens the link and picks the
password. The owner names the account because the name is what the owner sees everywhere
afterwards (the accounts list, the author of every note): a name the invitee chose could be
anything, and a pending invite already reserves its name, so the list shows who is coming.

Only the SHA-256 of a link's token is stored. The token is 256 random bits, so a slow password
hash would add nothing (there is no dictionary to try against the stored hash), and a lookup by
the hash compares no secret byte by byte. A link works once (``used_at``), until it expires,
and not after the owner withdrew it; each of these answers in JSON, 410 for a used or expired
link, 404 for one that never existed or was withdrawn.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ttlp.aio import as_utc
from ttlp.api.accounts import (
    Account,
    AccountConflict,
    AccountError,
    Accounts,
    Role,
    check_password,
    check_username,
    exclusive,
    hash_password,
    new_account_row,
    parse_scopes,
)
from ttlp.db.tables import account_invites, accounts
from ttlp.errors import InputError, NotFoundError

TOKEN_BYTES: Final = 32
DEFAULT_TTL_S: Final = 3 * 86_400
MIN_TTL_S: Final = 300
MAX_TTL_S: Final = 30 * 86_400
KEEP_AFTER_EXPIRY: Final = timedelta(days=30)
"""Used and expired invites are kept this long (a used link says so, 410) and then dropped."""
INVITE_PATH: Final = "/#/invite/"
"""Where the UI takes an invite: the token after the ``#`` never reaches a server log."""


class InviteGone(InputError):
    """The link was used, or it expired."""

    status = 410


class Invite(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    username: str
    role: Role
    scopes: tuple[str, ...]
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Invites:
    """The ``account_invites`` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(
        self,
        username: str,
        role: Role,
        scopes: Sequence[str],
        created_by: str,
        ttl_s: int = DEFAULT_TTL_S,
    ) -> tuple[Invite, str]:
        """A new invite and its token (the link's secret: shown once, stored as a hash).
        409 when the name is an account's or has an open invite already."""
        check_username(username)
        wanted = parse_scopes(scopes)
        if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:
            raise AccountError(
                f"an invite expires after {MIN_TTL_S} s to {MAX_TTL_S // 86_400} days"
            )
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = datetime.now(UTC)
        row = {
            "token_hash": token_hash(token),
            "username": username,
            "role": role.value,
            "scopes": list(wanted),
            "created_by": created_by,
            "created_at": now,
            "expires_at": now + timedelta(seconds=ttl_s),
            "used_at": None,
        }
        async with exclusive(self.engine) as conn:
            await conn.execute(
                delete(account_invites).where(
                    account_invites.c.expires_at < now - KEEP_AFTER_EXPIRY
                )
            )
            await _ensure_name_free(conn, username, now)
            invite_id = await conn.scalar(
                insert(account_invites).values(**row).returning(account_invites.c.id)
            )
        return _invite({**row, "id": invite_id}), token

    async def pending(self) -> list[Invite]:
        """Invites not used and not expired, newest first."""
        query = (
            select(account_invites)
            .where(
                account_invites.c.used_at.is_(None),
                account_invites.c.expires_at > datetime.now(UTC),
            )
            .order_by(account_invites.c.id.desc())
        )
        async with self.engine.connect() as conn:
            return [_invite(r._mapping) for r in (await conn.execute(query)).all()]

    async def withdraw(self, invite_id: int) -> None:
        """Delete an unused invite: its link answers 404 from now on."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(account_invites).where(
                    account_invites.c.id == invite_id, account_invites.c.used_at.is_(None)
                )
            )
        if result.rowcount == 0:
            raise NotFoundError(f"no open invite {invite_id}")

    async def lookup(self, token: str) -> Invite:
        """The invite a link holds while it can be used; 404 / 410 otherwise."""
        async with self.engine.connect() as conn:
            return await _usable(conn, token, datetime.now(UTC))

    async def accept(self, token: str, password: str) -> Account:
        """Make the invite's account with ``password`` and use the link up, in one transaction
        (of two acceptances at once, one makes the account, the other gets 410)."""
        check_password(password)
        await self.lookup(token)  # a dead link costs no password hash
        password_hash = await asyncio.to_thread(hash_password, password)
        async with exclusive(self.engine) as conn:
            now = datetime.now(UTC)
            invite = await _usable(conn, token, now)
            if await _account_named(conn, invite.username):
                raise AccountConflict(
                    f"an account {invite.username!r} exists already: ask for a new invite"
                )
            row = new_account_row(invite.username, password_hash, invite.role, invite.scopes)
            await conn.execute(insert(accounts).values(**row))
            await conn.execute(
                update(account_invites).where(account_invites.c.id == invite.id).values(used_at=now)
            )
        account = await Accounts(self.engine).get(invite.username)
        assert account is not None
        return account


async def _usable(conn: AsyncConnection, token: str, now: datetime) -> Invite:
    query = select(account_invites).where(account_invites.c.token_hash == token_hash(token))
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFoundError("no such invite: it was withdrawn, or the link is incomplete")
    invite = _invite(row._mapping)
    if invite.used_at is not None:
        raise InviteGone("this invite was used already: log in, or ask for a new invite")
    if invite.expires_at <= now:
        raise InviteGone("this invite has expired: ask for a new one")
    return invite


async def _account_named(conn: AsyncConnection, username: str) -> bool:
    query = select(accounts.c.id).where(accounts.c.username == username)
    return (await conn.execute(query)).first() is not None


async def _ensure_name_free(conn: AsyncConnection, username: str, now: datetime) -> None:
    if await _account_named(conn, username):
        raise AccountConflict(f"an account {username!r} exists already")
    query = select(account_invites.c.id).where(
        account_invites.c.username == username,
        account_invites.c.used_at.is_(None),
        account_invites.c.expires_at > now,
    )
    if (await conn.execute(query)).first() is not None:
        raise AccountConflict(f"{username!r} has an open invite already: withdraw it first")


def _invite(row: Any) -> Invite:
    used_at = row["used_at"]
    return Invite(
        id=int(row["id"]),
        username=row["username"],
        role=Role(row["role"]),
        scopes=tuple(row["scopes"]),
        created_by=row["created_by"],
        created_at=as_utc(row["created_at"]),
        expires_at=as_utc(row["expires_at"]),
        used_at=None if used_at is None else as_utc(used_at),
    )
