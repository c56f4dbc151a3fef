"""The world of the GDPR erasure tests: the fixture session (JSON and protobuf frames) and what
else names its viewers, stored through the real normalizer and store; and a way to read a
stored frame that does not use the code under test.

The fixture's viewer Akhmed (``AKHMED``) has events of his own, is listed in viewer rankings
(``WebcastRoomUserSeqMessage``, whose ROOM_USER events name nobody) and has two frames that are
protobuf bytes only. ``extra_frames`` adds a RAW ranking that lists him (an event of nobody's
that names him) and a gift that Zoe sends *to* him (her GIFT event, his frame). ``seed`` adds
notes, rule actions and forward deliveries about him and about Zoe.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.paths import FIXTURES
from tests.support.tiktoklive import importing_tiktoklive
from ttlp.contracts.events import RawFrame, decode_raw_frame, encode
from ttlp.db import tables
from ttlp.db.queries import Queries
from ttlp.db.store import Store
from ttlp.tiktok import decode
from ttlp.tiktok.normalize import normalize_frame

AKHMED: Final = "7012345678901234502"
AKHMED_HANDLE: Final = "akhmed_kzn"
AKHMED_NAME: Final = "Ахмед"
ZOE: Final = "7012345678901234501"
ZOE_HANDLE: Final = "zoe.petals"
RANKING_SEQ: Final = 7441000000900000001
GIFT_TO_AKHMED_SEQ: Final = 7441000000900000002
TRACES: Final = (AKHMED, AKHMED_HANDLE, AKHMED_NAME)
"""What must be found nowhere once Akhmed is erased."""


def fixture_frames() -> list[RawFrame]:
    lines = (FIXTURES / "raw-frames.ndjson").read_text().splitlines()
    return [decode_raw_frame(line) for line in lines if line.strip()]


def gift_to_akhmed_bytes() -> bytes:
    """A Rose from Zoe to Akhmed, as TikTok's protobuf (TikTokLiveProto builds it)."""
    with importing_tiktoklive():
        import TikTokLive.proto as P

    message = P.WebcastGiftMessage(
        user=P.User(id=int(ZOE), display_id=ZOE_HANDLE, nickname="Zoe"),
        to_user=P.User(id=int(AKHMED), display_id=AKHMED_HANDLE, nickname=AKHMED_NAME),
        gift_id=5655,
        repeat_count=1,
        repeat_end=1,
        gift=P.Gift(id=5655, name="Rose", diamond_count=1, type=1),
    )
    return bytes(message)


def extra_frames(session: RawFrame) -> list[RawFrame]:
    """Two frames in ``session``'s room and session: a ranking listing Akhmed (RAW, as JSON)
    and Zoe's gift to him (protobuf)."""
    ranking = {
        "common": {"method": "WebcastHourlyRankMessage", "msgId": str(RANKING_SEQ)},
        "data": {"ranks": [{"rank": 1, "user": {"id": AKHMED, "displayId": AKHMED_HANDLE}}]},
    }
    common = {
        "schema_version": "raw.v1",
        "stream_id": session.stream_id,
        "session_id": session.session_id,
        "source": "live",
        "timestamp": "2024-11-21T19:30:41.000Z",
        "ingested_at": "2024-11-21T19:30:41.004Z",
        "provider": "mock",
        "unique_id": "luna.beats",
    }
    return [
        RawFrame(**common, type="WebcastHourlyRankMessage", seq_no=RANKING_SEQ, data=ranking),
        RawFrame(
            **common,
            type="WebcastGiftMessage",
            seq_no=GIFT_TO_AKHMED_SEQ,
            data=base64.b64encode(gift_to_akhmed_bytes()).decode(),
        ),
    ]


def frame_text(raw_type: str, data: str) -> str:
    """A stored frame as text a person could search: its JSON, and the JSON of its protobuf
    message when it is base64 (decoded by ttlp's decoder, without the erasure's reading)."""
    texts = [data]
    value = json.loads(data)
    if isinstance(value, str):
        message = decode.decode_payload(raw_type, base64.b64decode(value))
        texts.append(json.dumps(message, ensure_ascii=False))
    return "\n".join(texts)


def names_akhmed(text: str) -> bool:
    return any(trace in text for trace in TRACES)


@dataclass(frozen=True)
class Seeded:
    frames: list[RawFrame]
    session_id: str
    akhmed_event: str
    """An event id of Akhmed's (a chat)."""
    zoe_event: str
    """An event id of Zoe's (a chat)."""


async def seed(store: Store) -> Seeded:
    """The fixture session and the extra frames, archived and stored through the normalizer;
    a note, a rule action and a forward delivery about Akhmed's chat and about Zoe's."""
    fixture = fixture_frames()
    frames = [*fixture, *extra_frames(fixture[0])]
    events = [normalize_frame(frame) for frame in frames]
    await store.archive_frames(frames)
    result = await store.write_events(events)
    assert result.inserted == len(events)
    chats = [e for e in events if e.__struct_config__.tag == "CHAT"]  # type: ignore[misc]
    akhmed = next(e for e in chats if e.user.user_id == AKHMED)
    zoe = next(e for e in chats if e.user.user_id == ZOE)
    queries = Queries(store.engine)
    now = datetime.now(UTC)
    async with store.engine.begin() as conn:
        for event in (akhmed, zoe):
            await conn.execute(
                insert(tables.actions_log).values(
                    rule_id=1,
                    event_id=event.event_id,
                    session_id=event.session_id,
                    stream_id=event.stream_id,
                    user_id=event.user.user_id,
                    action_type="announce",
                    status="success",
                    rendered=f"thanks @{event.user.unique_id}",
                    created_at=now,
                )
            )
            await conn.execute(
                insert(tables.forward_deliveries).values(
                    target_id=1,
                    event_id=event.event_id,
                    event_data=encode(event).decode(),
                    status="delivered",
                    attempts=1,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
    for user_id in (AKHMED, ZOE):
        await queries.add_note(user_id, "mod", "regular, be nice", "luna.beats")
    return Seeded(frames, fixture[0].session_id, akhmed.event_id, zoe.event_id)


TABLES: Final = (
    tables.events,
    tables.raw_frames,
    tables.forward_deliveries,
    tables.actions_log,
    tables.user_notes,
    tables.users,
)


async def snapshot(engine: AsyncEngine) -> dict[str, dict[Any, dict[str, Any]]]:
    """Every row of the tables an erasure touches: table → primary key → row."""
    out: dict[str, dict[Any, dict[str, Any]]] = {}
    async with engine.connect() as conn:
        for table in TABLES:
            key = next(iter(table.primary_key.columns))
            rows = (await conn.execute(select(table))).mappings().all()
            out[table.name] = {row[key.name]: dict(row) for row in rows}
    return out


def mentions_akhmed(table: str, row: dict[str, Any]) -> bool:
    """Whether a row is about Akhmed, read independently of the erasure code: his id in a
    user column, or any trace of him in the row's text (a frame's decoded message included)."""
    if row.get("user_id") == AKHMED:
        return True
    if table == "raw_frames":
        return names_akhmed(frame_text(row["type"], row["data"]))
    return names_akhmed(json.dumps(row, default=str, ensure_ascii=False))
