"""The overlay browser tests' events: UnifiedEvents of one live session, published onto
``ttlc:events`` of a running ttlp on Redis exactly as its normalizer would (its store writes
them, its api feeds them to the overlays). Each event is validated against the contract before
it goes out, so a test cannot feed the page something ttlp would never send."""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import redis

from ttlp.bus.keys import Keys
from ttlp.contracts.events import TRIGGER_IDS, decode_event

ROOM = "7449876543210987654"
CDN = "https://p16-sign-va.tiktokcdn.com/tos-maliva-avt-0068"
SYSTEM = {"userId": "0", "uniqueId": "system"}


@dataclass(frozen=True)
class Viewer:
    user_id: str
    unique_id: str
    display_name: str | None = None
    moderator: bool = False
    subscriber: bool = False
    fans_level: int = 0

    def user(self) -> dict[str, Any]:
        user: dict[str, Any] = {
            "userId": self.user_id,
            "uniqueId": self.unique_id,
            "avatarUrl": f"{CDN}/{self.user_id}~tplv-resize:100:100.webp",
            "isModerator": self.moderator,
            "isSubscriber": self.subscriber,
            "teamMemberLevel": self.fans_level,
        }
        if self.display_name:
            user["displayName"] = self.display_name
        return user


ZOE = Viewer("7012345678901234501", "zoe.petals", "Zoë 🌸", fans_level=12)
AKHMED = Viewer("7012345678901234502", "akhmed_kzn", "Ахмед", moderator=True)
XIAOMING = Viewer("7012345678901234503", "xiaoming88", "小明", subscriber=True)
OWL = Viewer("7012345678901234505", "night.owl", "night owl 🦉")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LiveSession:
    """One live session of ``streamer`` in ``room``: ``connected()`` first (it names the
    streamer, so the api routes the room's events to the streamer's overlays), then events."""

    _seq = itertools.count(1)

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        streamer: str,
        room: str = ROOM,
        source: str = "live",
    ) -> None:
        self.client = client
        self.stream = Keys(prefix).events
        self.streamer = streamer
        self.room = room
        self.source = source
        self.session = str(uuid.uuid4())

    def event(self, event_type: str, user: dict[str, Any], payload: dict[str, Any]) -> str:
        """One UnifiedEvent (validated) as the normalizer writes it."""
        seq = next(self._seq)
        event = {
            "schemaVersion": "1",
            "eventId": hashlib.sha256(
                f"{self.room}:{self.session}:{seq}:{event_type}".encode()
            ).hexdigest(),
            "eventType": event_type,
            "triggerId": TRIGGER_IDS[event_type],
            "streamId": self.room,
            "sessionId": self.session,
            "timestamp": now_iso(),
            "ingestedAt": now_iso(),
            "source": self.source,
            "seqNo": seq,
            "user": user,
            "payload": payload,
        }
        text = msgspec.json.encode(event).decode()
        decode_event(text)  # what ttlp would refuse never goes out
        return text

    def publish(self, *events: str) -> list[str]:
        """XADD the events in one round trip; their entry ids (the feed's SSE ids)."""
        with self.client.pipeline(transaction=False) as pipe:
            for text in events:
                pipe.xadd(self.stream, {"event": text, "normalizedAt": now_iso()})
            return [str(entry) for entry in pipe.execute()]

    # -- events ---------------------------------------------------------------------------------
    def connected(self) -> str:
        return self.event(
            "CONNECTED",
            SYSTEM,
            {
                "roomId": self.room,
                "isConnected": True,
                "provider": "mock",
                "uniqueId": self.streamer,
            },
        )

    def disconnected(self) -> str:
        return self.event(
            "DISCONNECTED", SYSTEM, {"code": 1000, "reason": "test over", "willReconnect": False}
        )

    def chat(self, who: Viewer, message: str, emotes: list[dict[str, Any]] | None = None) -> str:
        payload: dict[str, Any] = {"message": message}
        if emotes:
            payload["emotes"] = emotes
        return self.event("CHAT", who.user(), payload)

    def follow(self, who: Viewer) -> str:
        return self.event("FOLLOW", who.user(), {})

    def share(self, who: Viewer) -> str:
        return self.event("SHARE", who.user(), {})

    def subscribe(self, who: Viewer, month: int = 1) -> str:
        return self.event("SUBSCRIBE", who.user(), {"subMonth": month})

    def like(self, who: Viewer, count: int, total: int) -> str:
        return self.event("LIKE", who.user(), {"likeCount": count, "totalLikeCount": total})

    def join(self, who: Viewer) -> str:
        return self.event("JOIN", who.user(), {"viewerCount": 100})

    def gift(
        self,
        who: Viewer,
        *,
        gift_id: int = 5655,
        name: str = "Rose",
        diamonds: int = 1,
        count: int = 1,
        active: bool = False,
        streakable: bool = False,
    ) -> str:
        """One gift frame as the normalizer makes it: ``active`` while a streak grows; its end
        frame (and every frame of a gift outside streaks) has ``streakEnd``."""
        return self.event(
            "GIFT",
            who.user(),
            {
                "giftId": gift_id,
                "giftName": name,
                "giftCount": count,
                "coins": diamonds * count,
                "diamondCount": diamonds,
                "streakActive": active,
                "streakEnd": not active,
                "isGiftStreak": streakable,
                "giftImageUrl": f"https://p19-webcast.tiktokcdn.com/img/gift_{gift_id}~tplv-obj.webp",
            },
        )

    def streak(
        self,
        who: Viewer,
        n: int,
        *,
        gift_id: int = 6064,
        name: str = "Galaxy",
        diamonds: int = 1000,
    ) -> Iterator[str]:
        """The frames of a gift streak ×1 … ×n, the last one its end."""
        for i in range(1, n + 1):
            yield self.gift(
                who,
                gift_id=gift_id,
                name=name,
                diamonds=diamonds,
                count=i,
                active=i < n,
                streakable=True,
            )
