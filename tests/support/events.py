"""Factories of contract Structs for tests: UnifiedEvents and RawFrames with readable defaults.

Times are seconds after ``T0``; ids are derived from (stream, session, seq, raw type) as ingest
derives them, so the same arguments give the same event.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from ttlp.contracts import events as ev

STREAM = "7412345678901234567"
OTHER_STREAM = "7499999999999999999"
T0 = datetime(2025, 3, 1, 18, 0, 0, tzinfo=UTC)


def new_session() -> str:
    return str(uuid.uuid4())


def at(seconds: float) -> str:
    """ISO time ``seconds`` after T0, as ingest writes it (milliseconds, ``Z``)."""
    moment = T0 + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def soon() -> str:
    """A second from now: an ingest time certainly after anything created so far."""
    moment = datetime.now(UTC) + timedelta(seconds=1)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def when(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event_id(stream: str, session: str, seq: int, raw_type: str) -> str:
    return hashlib.sha256(f"{stream}:{session}:{seq}:{raw_type}".encode()).hexdigest()


def user(n: int, name: str | None = None, avatar: str | None = None) -> ev.EventUser:
    return ev.EventUser(
        user_id=str(1000 + n),
        unique_id=f"viewer{n}",
        display_name=msgspec.UNSET if name is None else name,
        avatar_url=msgspec.UNSET if avatar is None else avatar,
    )


def common(
    session: str, seq: int, raw_type: str, t: float, source: str, stream: str
) -> dict[str, Any]:
    return {
        "schema_version": "1",
        "event_id": event_id(stream, session, seq, raw_type),
        "stream_id": stream,
        "session_id": session,
        "timestamp": at(t),
        "ingested_at": at(t + 0.5),
        "source": source,
        "seq_no": seq,
    }


def chat(
    session: str,
    seq: int,
    *,
    who: ev.EventUser | None = None,
    t: float = 0,
    source: str = "live",
    stream: str = STREAM,
    message: str = "hello",
) -> ev.ChatEvent:
    return ev.ChatEvent(
        **common(session, seq, "WebcastChatMessage", t, source, stream),
        user=who or user(1),
        trigger_id=1,
        payload=ev.ChatPayload(message=message),
    )


def gift(session: str, seq: int, *, who: ev.EventUser, t: float = 0) -> ev.GiftEvent:
    return ev.GiftEvent(
        **common(session, seq, "WebcastGiftMessage", t, "live", STREAM),
        user=who,
        trigger_id=2,
        payload=ev.GiftPayload(gift_id=5655, gift_name="Rose", gift_count=1, coins=1),
    )


def raw_event(session: str, seq: int, raw_type: str, *, t: float = 0) -> ev.RawEvent:
    return ev.RawEvent(
        **common(session, seq, raw_type, t, "live", STREAM),
        user=ev.SYSTEM_USER,
        trigger_id=13,
        payload=ev.RawPayload(raw_type=raw_type, data={"k": 1}),
    )


def connected(
    session: str, *, seq: int = 0, t: float = 0, source: str = "live", stream: str = STREAM
) -> ev.ConnectedEvent:
    return ev.ConnectedEvent(
        **common(session, seq, "ControlEvent.CONNECTED", t, source, stream),
        user=ev.SYSTEM_USER,
        trigger_id=10,
        payload=ev.ConnectedPayload(
            room_id=stream, is_connected=True, provider="euler", unique_id="streamer"
        ),
    )


def disconnected(session: str, *, seq: int, t: float) -> ev.DisconnectedEvent:
    return ev.DisconnectedEvent(
        **common(session, seq, "ControlEvent.DISCONNECTED", t, "live", STREAM),
        user=ev.SYSTEM_USER,
        trigger_id=11,
        payload=ev.DisconnectedPayload(code=1006, reason="network", will_reconnect=True),
    )


def stream_end(session: str, *, seq: int, t: float) -> ev.StreamEndEvent:
    return ev.StreamEndEvent(
        **common(session, seq, "WebcastControlMessage", t, "live", STREAM),
        user=ev.SYSTEM_USER,
        trigger_id=15,
        payload=ev.StreamEndPayload(action=3),
    )


def frame(
    session: str,
    seq: int,
    *,
    type_: str = "WebcastChatMessage",
    t: float = 0,
    data: dict[str, Any] | str | None = None,
    source: str = "live",
) -> ev.RawFrame:
    return ev.RawFrame(
        schema_version="raw.v1",
        stream_id=STREAM,
        session_id=session,
        source=source,  # type: ignore[arg-type]
        type=type_,
        seq_no=seq,
        timestamp=at(t),
        ingested_at=at(t + 0.25),
        data={"content": f"message {seq}", "user": {"userId": "1001"}} if data is None else data,
        provider="mock",
        unique_id="streamer",
    )
