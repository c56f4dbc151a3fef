"""Salted hashes of TikTok user ids, shared by retention (pseudonymization) and GDPR erasure.

A pseudonymized user keeps a stable id derived from the real one, so counts (unique gifters,
users seen) survive; an erased user is remembered only by the hash, so the store can refuse
their events should a replay or a bus backlog bring them again. Both are HMAC-SHA256 under one
secret salt: ``PSEUDONYM_SALT`` when set (kept outside the database: a copy of the database
alone cannot test guesses), else 32 random bytes generated once and kept in ``ttlp_meta``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.db import tables

SALT_KEY: Final = "pseudonym_salt"
PSEUDONYM_PREFIX: Final = "p"
"""Pseudonymized user ids start with this; TikTok's are all digits, so the two never meet."""
PSEUDONYM_ID_LEN: Final = 32
"""``users.user_id`` is VARCHAR(32): the prefix and 31 hex digits (124 bits) of the hash."""


async def load_salt(engine: AsyncEngine, configured: str | None) -> bytes:
    """The salt: ``configured`` (PSEUDONYM_SALT) when set, else the one kept in ``ttlp_meta``,
    generated on first use (replicas racing to create it all read back the winner's)."""
    if configured:
        return configured.encode()
    meta = tables.ttlp_meta
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    async with engine.begin() as conn:
        await conn.execute(
            insert(meta)
            .values(key=SALT_KEY, value=secrets.token_hex(32), updated_at=datetime.now(UTC))
            .on_conflict_do_nothing()
        )
        value = await conn.scalar(select(meta.c.value).where(meta.c.key == SALT_KEY))
    assert value is not None  # inserted above, or by a racing replica
    return bytes.fromhex(value)


def subject_hash(salt: bytes, user_id: str) -> str:
    """HMAC-SHA256 of a TikTok user id (64 hex digits): the subject of a GDPR erasure."""
    return hmac.new(salt, user_id.encode(), hashlib.sha256).hexdigest()


def pseudonym_id(salt: bytes, user_id: str) -> str:
    """The stable id a pseudonymized user keeps (``p`` + 31 hex digits)."""
    return PSEUDONYM_PREFIX + subject_hash(salt, "pseudonym:" + user_id)[: PSEUDONYM_ID_LEN - 1]


def pseudonym_handle(pseudonym: str) -> str:
    """The handle shown for a pseudonymized user: ``user-`` and 8 hex digits of their id."""
    return "user-" + pseudonym[len(PSEUDONYM_PREFIX) : len(PSEUDONYM_PREFIX) + 8]


def is_pseudonym(user_id: str) -> bool:
    return user_id.startswith(PSEUDONYM_PREFIX)
