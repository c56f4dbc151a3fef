"""One made-up, schema-valid UnifiedEvent v1 per event type: what a rule's template is tried
on, what the rules UI previews and tests with, and what a forward target's "send a test event"
sends. Here, by the contract, rather than in ``ttlp.rules`` or ``ttlp.forward``: both use them."""

from __future__ import annotations

from typing import Any, Final

from ttlp.contracts.events import TRIGGER_IDS


def _sample(event_type: str, payload: dict[str, Any], *, system: bool = False) -> dict[str, Any]:
    user = (
        {"userId": "0", "uniqueId": "system"}
        if system
        else {
            "userId": "7012345678901234501",
            "uniqueId": "zoe.petals",
            "displayName": "Zoë 🌸",
            "followRole": 1,
            "isModerator": False,
            "isSubscriber": True,
            "teamMemberLevel": 3,
        }
    )
    return {
        "schemaVersion": "1",
        "eventId": "0" * 63 + format(TRIGGER_IDS[event_type], "x"),
        "eventType": event_type,
        "triggerId": TRIGGER_IDS[event_type],
        "streamId": "7441234567890123456",
        "sessionId": "3f1c2a9e-6b7d-4e21-9c55-0d8e7a41b2f6",
        "timestamp": "2024-11-21T19:30:03.070Z",
        "ingestedAt": "2024-11-21T19:30:03.076Z",
        "seqNo": 7441000000007340012,
        "source": "live",
        "user": user,
        "payload": payload,
    }


SAMPLE_EVENTS: Final[dict[str, dict[str, Any]]] = {
    "CHAT": _sample("CHAT", {"message": "hello from chat 👋", "language": "en"}),
    "GIFT": _sample(
        "GIFT",
        {
            "giftId": 5655,
            "giftName": "Rose",
            "giftCount": 5,
            "coins": 5,
            "diamondCount": 1,
            "streakActive": False,
            "streakEnd": True,
            "isGiftStreak": True,
        },
    ),
    "LIKE": _sample("LIKE", {"likeCount": 15, "totalLikeCount": 3021}),
    "FOLLOW": _sample("FOLLOW", {}),
    "SHARE": _sample("SHARE", {}),
    "JOIN": _sample("JOIN", {"viewerCount": 1523, "actionId": 1}),
    "SUBSCRIBE": _sample("SUBSCRIBE", {"subMonth": 2}),
    "EMOTE": _sample("EMOTE", {"emoteId": "7123456789", "emoteType": 0}),
    "BATTLE": _sample(
        "BATTLE",
        {
            "battleId": "7441999000000000001",
            "battleStatus": "UPDATED",
            "participants": [
                {"userId": "6812345678901234567", "uniqueId": "luna.beats", "score": 1200},
                {"userId": "6812345678901234568", "uniqueId": "rival.stream", "score": 900},
            ],
        },
        system=True,
    ),
    "CONNECTED": _sample(
        "CONNECTED",
        {
            "roomId": "7441234567890123456",
            "isConnected": True,
            "provider": "mock",
            "uniqueId": "luna.beats",
        },
        system=True,
    ),
    "DISCONNECTED": _sample(
        "DISCONNECTED",
        {"code": 1000, "reason": "stream ended", "willReconnect": False},
        system=True,
    ),
    "ERROR": _sample(
        "ERROR", {"message": "room info request timed out", "code": "TIMEOUT"}, system=True
    ),
    "RAW": _sample(
        "RAW",
        {"rawType": "WebcastHourlyRankRewardMessage", "data": {"rank": 3}},
        system=True,
    ),
    "ROOM_USER": _sample("ROOM_USER", {"viewerCount": 1523, "totalViewers": 20411}, system=True),
    "STREAM_END": _sample("STREAM_END", {"action": 3, "reason": "LIVE has ended"}, system=True),
}
"""One made-up, schema-valid UnifiedEvent per event type."""
