"""Which TikTok message becomes which UnifiedEvent (DESIGN §4), as data.

``MAPPING`` names, for each raw type with a canonical mapping, the kind of event it becomes;
the normalizer (``ttlp.tiktok.normalize``) has one mapper per kind. Every other raw type
becomes RAW. ``SOCIAL`` is decided per message by its display key (FOLLOW / SHARE /
SUBSCRIBE, else RAW); ``STREAM_END`` by the control action (else RAW); ``BARRAGE`` by the
barrage's ``msgType``: a subscription banner is SUBSCRIBE, every other banner (entrances of
gifter-level and fans-club users...) RAW. A barrage is never a battle message (DESIGN §4).

"The stream ended" is decided here once, for the normalizer and for both providers (which
end a connection on it): a ``WebcastControlMessage`` whose action is STREAM_ENDED (3) or
STREAM_SUSPENDED (4), the two TikTokLive itself disconnects on.
"""

from __future__ import annotations

from typing import Any, Final

CONTROL_TYPE: Final = "WebcastControlMessage"
STREAK_TIMEOUT_TYPE: Final = "ControlEvent.STREAK_TIMEOUT"
"""The ingest's frame closing a gift streak whose end frame never came (``ttlp.tiktok.streaks``):
``data.gift`` holds the streak's last gift message; it becomes that GIFT, final."""
PACKED_KEY: Final = "payloadBase64"
"""A frame's ``data`` object may carry the protobuf bytes under this key with ingest's notes
beside them (``{"payloadBase64": …, "streakClosed": true}``)."""
STREAK_CLOSED_KEY: Final = "streakClosed"
"""Set on a gift frame of a streak the timeout already closed: it counts as neither active
nor an end."""

MAPPING: Final[dict[str, str]] = {
    "WebcastChatMessage": "CHAT",
    "WebcastGiftMessage": "GIFT",
    "WebcastLikeMessage": "LIKE",
    "WebcastMemberMessage": "JOIN",
    "WebcastSocialMessage": "SOCIAL",
    "WebcastEmoteChatMessage": "EMOTE",
    "WebcastLinkMicBattle": "BATTLE",
    "WebcastLinkMicArmies": "BATTLE",
    "WebcastBarrageMessage": "BARRAGE",
    "WebcastSubNotifyMessage": "SUBSCRIBE",
    "WebcastRoomUserSeqMessage": "ROOM_USER",
    CONTROL_TYPE: "STREAM_END",
    "ControlEvent.CONNECTED": "CONNECTED",
    "ControlEvent.DISCONNECTED": "DISCONNECTED",
    "ControlEvent.ERROR": "ERROR",
    STREAK_TIMEOUT_TYPE: "STREAK_TIMEOUT",
}

STREAM_END_ACTIONS: Final[dict[int, str]] = {3: "STREAM_ENDED", 4: "STREAM_SUSPENDED"}
"""ControlAction numbers that end the stream → their proto names."""


def stream_end_action(action: Any) -> int | None:
    """The action number when ``action`` ends the stream, else None.

    Accepts what the message forms carry: an int (protobuf), a decimal string (proto3 JSON
    writes enums as names, some relays as numbers in strings) or the enum's name, bare or
    qualified (``STREAM_ENDED``, ``ControlAction.STREAM_ENDED``)."""
    if isinstance(action, bool):
        return None
    if isinstance(action, str):
        text = action.strip()
        if text.lstrip("-").isdigit():
            action = int(text)
        else:
            name = text.upper()
            return next(
                (n for n, label in STREAM_END_ACTIONS.items() if name.endswith(label)), None
            )
    return action if isinstance(action, int) and action in STREAM_END_ACTIONS else None
