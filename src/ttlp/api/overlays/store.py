"""The overlay tables: tokens (with their options, version and skip counter) and sounds.

Tokens are never deleted: revoking one sets ``revoked_at``, so the list keeps showing what was
revoked when. An options change is a compare-and-set on ``options_version`` (read, merge,
write where the version is still the one read; again when another change came between), so
two partial changes at once never lose one another on either database.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.aio import as_utc
from ttlp.api.overlays.options import Options, stored_options, to_document
from ttlp.db.tables import overlay_sounds as sounds_table
from ttlp.db.tables import overlay_tokens as tokens_table
from ttlp.errors import TransientError

TOKEN_BYTES: Final = 32
"""Random bytes of a token (43 URL-safe characters)."""
OPTIONS_ATTEMPTS: Final = 5
"""Compare-and-set attempts of one options change before it gives up (busy: 503)."""


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


@dataclass(frozen=True, slots=True)
class OverlayToken:
    id: int
    token: str
    streamer: str
    name: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    options: Options
    options_version: int
    skip_seq: int
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class TokenState:
    """What open overlays watch of their token."""

    revoked: bool
    options_version: int
    skip_seq: int


@dataclass(frozen=True, slots=True)
class Sound:
    id: int
    streamer: str
    name: str
    content_type: str
    size: int
    created_by: str
    created_at: datetime


def _token(row: Any) -> OverlayToken:
    created_at = _utc(row.created_at)
    assert created_at is not None
    return OverlayToken(
        id=int(row.id),
        token=row.token,
        streamer=row.streamer,
        name=row.name,
        created_by=row.created_by,
        created_at=created_at,
        revoked_at=_utc(row.revoked_at),
        options=stored_options(row.options),
        options_version=int(row.options_version),
        skip_seq=int(row.skip_seq),
        last_used_at=_utc(row.last_used_at),
    )


SOUND_COLUMNS: Final = [c for c in sounds_table.c if c.name != "data"]


def _sound(row: Any) -> Sound:
    created_at = _utc(row.created_at)
    assert created_at is not None
    return Sound(
        id=int(row.id),
        streamer=row.streamer,
        name=row.name,
        content_type=row.content_type,
        size=int(row.size),
        created_by=row.created_by,
        created_at=created_at,
    )


class OverlayStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # -- tokens ------------------------------------------------------------------------------
    async def create_token(self, streamer: str, name: str, created_by: str) -> OverlayToken:
        values = {
            "token": new_token(),
            "streamer": streamer,
            "name": name,
            "created_by": created_by,
            "created_at": datetime.now(UTC),
            "options_version": 0,
            "skip_seq": 0,
        }
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(insert(tokens_table).values(values).returning(tokens_table))
            ).one()
        return _token(row)

    async def tokens(self, streamers: Sequence[str] | None) -> list[OverlayToken]:
        """Newest first; ``streamers`` = the handles to list (None = all)."""
        t = tokens_table.c
        query = select(tokens_table).order_by(t.id.desc())
        if streamers is not None:
            query = query.where(t.streamer.in_([s.lower() for s in streamers]))
        async with self.engine.connect() as conn:
            return [_token(row) for row in (await conn.execute(query)).all()]

    async def token(self, token_id: int) -> OverlayToken | None:
        query = select(tokens_table).where(tokens_table.c.id == token_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _token(row) if row is not None else None

    async def token_by_value(self, token: str) -> OverlayToken | None:
        query = select(tokens_table).where(tokens_table.c.token == token)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _token(row) if row is not None else None

    async def states(self, token_ids: Sequence[int]) -> dict[int, TokenState]:
        """What open overlays watch of these tokens (a missing token is not in the answer)."""
        t = tokens_table.c
        query = select(t.id, t.revoked_at, t.options_version, t.skip_seq).where(
            t.id.in_(list(token_ids))
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {
            int(r.id): TokenState(r.revoked_at is not None, int(r.options_version), int(r.skip_seq))
            for r in rows
        }

    async def revoke(self, token_id: int) -> OverlayToken | None:
        """Revoke (once: a second revoke keeps the first time)."""
        t = tokens_table.c
        async with self.engine.begin() as conn:
            await conn.execute(
                update(tokens_table)
                .where(t.id == token_id, t.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            row = (await conn.execute(select(tokens_table).where(t.id == token_id))).first()
        return _token(row) if row is not None else None

    async def skip(self, token_id: int) -> OverlayToken | None:
        t = tokens_table.c
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(tokens_table)
                    .where(t.id == token_id)
                    .values(skip_seq=t.skip_seq + 1)
                    .returning(tokens_table)
                )
            ).first()
        return _token(row) if row is not None else None

    async def change_options(
        self, token_id: int, change: Callable[[Options], Options | None]
    ) -> OverlayToken | None:
        """Apply ``change`` to the token's current options and save the result with the next
        version (None from ``change``: nothing to save). None when there is no such token."""
        t = tokens_table.c
        for _ in range(OPTIONS_ATTEMPTS):
            current = await self.token(token_id)
            if current is None:
                return None
            changed = change(current.options)
            if changed is None:
                return current
            async with self.engine.begin() as conn:
                row = (
                    await conn.execute(
                        update(tokens_table)
                        .where(t.id == token_id, t.options_version == current.options_version)
                        .values(options=to_document(changed), options_version=t.options_version + 1)
                        .returning(tokens_table)
                    )
                ).first()
            if row is not None:
                return _token(row)
        raise TransientError("the overlay's options keep changing at the same time: try again")

    async def touch(self, token_id: int, at: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(tokens_table).where(tokens_table.c.id == token_id).values(last_used_at=at)
            )

    # -- sounds ------------------------------------------------------------------------------
    async def sounds(self, streamers: Sequence[str] | None) -> list[Sound]:
        """Newest first, without their bytes; ``streamers`` = the handles (None = all)."""
        s = sounds_table.c
        query = select(*SOUND_COLUMNS).order_by(s.id.desc())
        if streamers is not None:
            query = query.where(s.streamer.in_([h.lower() for h in streamers]))
        async with self.engine.connect() as conn:
            return [_sound(row) for row in (await conn.execute(query)).all()]

    async def sound(self, sound_id: int) -> Sound | None:
        query = select(*SOUND_COLUMNS).where(sounds_table.c.id == sound_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _sound(row) if row is not None else None

    async def sound_ids(self, streamer: str, ids: Sequence[int]) -> set[int]:
        """Which of ``ids`` are sounds of ``streamer``."""
        s = sounds_table.c
        query = select(s.id).where(s.streamer == streamer, s.id.in_(list(ids)))
        async with self.engine.connect() as conn:
            return {int(i) for i in (await conn.execute(query)).scalars()}

    async def sound_bytes(self, sound_id: int, streamer: str) -> tuple[str, bytes] | None:
        """(content type, bytes) of a sound of ``streamer``; None for any other id."""
        s = sounds_table.c
        query = select(s.content_type, s.data).where(s.id == sound_id, s.streamer == streamer)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (row.content_type, bytes(row.data)) if row is not None else None

    async def add_sound(
        self, streamer: str, name: str, content_type: str, data: bytes, created_by: str
    ) -> Sound:
        values = {
            "streamer": streamer,
            "name": name,
            "content_type": content_type,
            "size": len(data),
            "data": data,
            "created_by": created_by,
            "created_at": datetime.now(UTC),
        }
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(insert(sounds_table).values(values).returning(*SOUND_COLUMNS))
            ).one()
        return _sound(row)

    async def delete_sound(self, sound_id: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(sounds_table).where(sounds_table.c.id == sound_id))
