"""The normalizer: one raw.v1 frame → one UnifiedEvent v1 (DESIGN §4, §5.3).

The frame's ``data`` (a JSON object, or base64 protobuf decoded by ``ttlp.tiktok.decode``) is
read in TikTok's webcast v3 camelCase shape (``content``, ``user.displayId``, ``gift.name``,
``count``/``total``...). Numbers may arrive as JSON numbers or, as proto3 JSON writes int64, as
decimal strings; enums as ints or as their proto names. The mapping builds a plain dict and one
``msgspec.convert`` validates it against the contract Structs. Every failure is a
``PermanentError`` with reason ``PARSE_ERROR`` or ``VALIDATION_ERROR``; nothing is dropped:
types without a canonical mapping become RAW with the decoded object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from ttlp.contracts.events import EVENT_SCHEMA_VERSION, TRIGGER_IDS, RawFrame, UnifiedEvent
from ttlp.contracts.mapping import MAPPING, STREAM_END_ACTIONS, stream_end_action
from ttlp.errors import PermanentError
from ttlp.tiktok import decode

SYSTEM_USER: Final[dict[str, Any]] = {"userId": "0", "uniqueId": "system"}


class _Invalid(Exception):
    """A field of the decoded message has the wrong shape (becomes VALIDATION_ERROR)."""


def event_id(stream_id: str, session_id: str, seq_no: int, raw_type: str) -> str:
    """sha256(``streamId:sessionId:seqNo:type``) as hex (seed 003 §3.2)."""
    return hashlib.sha256(f"{stream_id}:{session_id}:{seq_no}:{raw_type}".encode()).hexdigest()


def normalize_frame(frame: RawFrame) -> UnifiedEvent:
    """Map one raw frame to its UnifiedEvent, or raise ``PermanentError`` saying why not."""
    data = _frame_data(frame)
    try:
        mapper = _MAPPERS.get(frame.type, _raw)
        event_type, user, payload = mapper(frame, data)
    except _Invalid as exc:
        raise PermanentError("VALIDATION_ERROR", f"{frame.type}: {exc}") from None
    document: dict[str, Any] = {
        "eventType": event_type,
        "schemaVersion": EVENT_SCHEMA_VERSION,
        "eventId": event_id(frame.stream_id, frame.session_id, frame.seq_no, frame.type),
        "triggerId": TRIGGER_IDS[event_type],
        "streamId": frame.stream_id,
        "sessionId": frame.session_id,
        "timestamp": frame.timestamp,
        "ingestedAt": frame.ingested_at,
        "source": frame.source,
        "seqNo": frame.seq_no,
        "user": user,
        "payload": payload,
    }
    try:
        event: UnifiedEvent = msgspec.convert(document, UnifiedEvent)
        return event
    except msgspec.ValidationError as exc:
        raise PermanentError("VALIDATION_ERROR", f"{frame.type} → {event_type}: {exc}") from None


def _frame_data(frame: RawFrame) -> dict[str, Any]:
    if isinstance(frame.data, dict):
        return frame.data
    payload = decode.b64decode(frame.data)
    decoded = decode.decode_payload(frame.type, payload)
    if decoded is None:
        # No schema for this type: keep the bytes (as base64) so nothing is lost.
        return {"payloadBase64": frame.data}
    return decoded


# -- value readers: tolerant of proto3-JSON forms, strict about nonsense ----------------------
def _get(obj: Mapping[str, Any] | None, *path: str) -> Any:
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def _int(value: Any, name: str, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise _Invalid(f"{name} must be an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise _Invalid(f"{name} must be an integer, got {type(value).__name__} {str(value)[:40]!r}")


def _str(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _Invalid(f"{name} must be a string, got {type(value).__name__}")


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _enum(value: Any, name: str, enum_name: str) -> int | None:
    """An enum as its number: accepts ints, digit strings and proto names of ``enum_name``."""
    if isinstance(value, str) and value and not value.lstrip("-").isdigit():
        number = _enum_names(enum_name).get(value)
        if number is None:
            raise _Invalid(f"{name}: unknown {enum_name} value {value[:40]!r}")
        return number
    return _int(value, name)


_ENUM_CACHE: dict[str, dict[str, int]] = {}


def _enum_names(enum_name: str) -> dict[str, int]:
    names = _ENUM_CACHE.get(enum_name)
    if names is None:
        from ttlp.tiktok.proto import lookup

        cls = lookup(enum_name)
        if cls is None:
            raise LookupError(f"TikTokLiveProto has no enum {enum_name}")
        names = {member.name: int(member) for member in cls}
        names.update(cls.betterproto_renamed_proto_names_to_value())
        _ENUM_CACHE[enum_name] = names
    return names


def _first_url(image: Any) -> str | None:
    urls = _get(image, "urlList")
    if isinstance(urls, list) and urls and isinstance(urls[0], str):
        return urls[0]
    return None


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _user(data: Mapping[str, Any], key: str = "user") -> dict[str, Any]:
    """TikTok user object → UnifiedEvent ``user`` (SYSTEM_USER when the message has none)."""
    raw = data.get(key)
    if raw is None:
        return SYSTEM_USER
    if not isinstance(raw, Mapping):
        raise _Invalid(f"{key} must be an object")
    user_id = _str(raw.get("id", raw.get("userId")), f"{key}.id") or "0"
    handle = _str(raw.get("displayId") or raw.get("uniqueId"), f"{key}.displayId")
    follow = _int(_get(raw, "followInfo", "followStatus"), f"{key}.followInfo.followStatus")
    attr = raw.get("userAttr")
    is_mod = None
    if isinstance(attr, Mapping):
        is_mod = bool(attr.get("isAdmin") or attr.get("isSuperAdmin"))
    avatar = _first_url(raw.get("avatarThumb")) or _first_url(raw.get("avatarMedium"))
    return _compact(
        {
            "userId": user_id,
            "uniqueId": handle or (user_id if user_id != "0" else "system"),
            "displayName": _str(raw.get("nickname"), f"{key}.nickname"),
            "avatarUrl": avatar,
            "followRole": min(max(follow, 0), 2) if follow is not None else None,
            "isModerator": is_mod,
            "isSubscriber": _bool(raw.get("isSubscribe")),
            "teamMemberLevel": _int(
                _get(raw, "fansClub", "data", "level"), f"{key}.fansClub.data.level"
            ),
        }
    )


# -- one mapper per TikTok type ----------------------------------------------------------------
Mapped = tuple[str, dict[str, Any], dict[str, Any]]
Mapper = Callable[[RawFrame, dict[str, Any]], Mapped]


def _chat(frame: RawFrame, data: dict[str, Any]) -> Mapped:
    message = _str(data.get("content", data.get("comment")), "content") or ""
    emotes = []
    for item in data.get("emotes") or []:
        emote = _get(item, "emote") or {}
        emote_id = _str(emote.get("emoteId"), "emotes[].emote.emoteId")
        if emote_id:
            emotes.append(
                _compact(
                    {
                        "emoteId": emote_id,
                        "emoteImageUrl": _first_url(emote.get("image")),
                        "placeholderIndex": _int(item.get("index"), "emotes[].index"),
                    }
                )
            )
    payload = {"message": message, "emotes": emotes or None}
    payload["language"] = _str(data.get("contentLanguage"), "contentLanguage") or None
    return "CHAT", _user(data), _compact(payload)


def _gift(frame: RawFrame, data: dict[str, Any]) -> Mapped:
    gift = data.get("gift") or {}
    if not isinstance(gift, Mapping):
        raise _Invalid("gift must be an object")
    gift_id = _int(data.get("giftId", gift.get("id")), "giftId", 0)
    diamonds = _int(gift.get("diamondCount", data.get("diamondCount")), "gift.diamondCount", 0)
    repeat = max(_int(data.get("repeatCount"), "repeatCount", 1) or 1, 1)
    repeat_end = bool(_int(data.get("repeatEnd"), "repeatEnd", 0))
    streakable = _int(gift.get("type"), "gift.type") == 1
    # A streak sends one frame per combo step with a cumulative repeatCount; the frame with
    # repeatEnd=1 closes it. Non-streakable gifts are complete in their single frame, so
    # `streakEnd` is true for every frame that should be counted (DESIGN §4).
    streak_active = streakable and not repeat_end
    name = _str(gift.get("name", data.get("giftName")), "gift.name") or f"gift {gift_id}"
    payload = {
        "giftId": gift_id,
        "giftName": name,
        "giftCount": repeat,
        "coins": (diamonds or 0) * repeat,
        "diamondCount": diamonds,
        "streakActive": streak_active,
        "streakEnd": not streak_active,
        "isGiftStreak": streakable,
        "giftImageUrl": _first_url(gift.get("image")),
    }
    return "GIFT", _user(data), _compact(payload)


def _like(frame: RawFrame, data: dict[str, Any]) -> Mapped:
    count = _int(data.get("count", data.get("likeCount")), "count", 1) or 1
    total = _int(data.get("total", data.get("totalLikeCount")), "total", 0)
    return "LIKE", _user(data), {"likeCount": max(count, 1), "totalLikeCount": total}


def _member(frame: RawFrame, data: dict[str, Any]) -> Mapped:
    payload = {
        "viewerCount": _int(data.get("memberCount"), "memberCount"),
        "actionId": _enum(data.get("action"), "action", "MemberMessageAction"),
    }
    return "JOIN", _user(data), _compact(payload)


_SOCIAL_KINDS: Final = (("follow", "FOLLOW"), ("share", "SHARE"), ("subscribe", "SUBSCRIBE"))


def _social(frame: RawFrame, data: dict[str, Any]) -> Mapped:
    key = _str(_get(data, "common", "displayText", "key"), "common.displayText.key")
    key = key or _str(data.get("displayType"), "displayType") or ""
    lowered = key.lower()
    for needle, event_type in _SOCIAL_KINDS:
        if needle in lowered:
            return event_type, _user(data), {}
    return _raw(frame, data)


def _emote(frame: RawFrame, data: dict[str, Any]) -> Mapped:
    emotes = data.get("emoteList") or []
    first = emotes[0] if isinstance(emotes, list) and emotes else None
    if not isinstance(first, Mapping):
        raise _Invalid("emoteList must hold at least one emote")
    payload = {
        "emoteId": _str(first.get("emoteId"), "emoteList[0].emoteId"),
        "emoteImageUrl": _first_url(first.get("image")),
        "emoteType": _enum(first.get("emoteType"), "emoteList[0].emoteType", "EmoteType"),
    }
    return "EMOTE", _user(data), _compact(payload)


_BATTLE_STATUS: Final = {4: "STARTED", 7: "STARTED", 5: "ENDED", 6: "ENDED"}


def _battle(frame: RawFrame, data: dict[str, Any]) -> Mapped:
    battle_id = _str(data.get("battleId"), "battleId")
    participants: list[dict[str, Any]] = []
    if frame.type == "WebcastLinkMicBattle":
        action = _enum(data.get("action"), "action", "LinkMicBattleBattleAction")
        status = _BATTLE_STATUS.get(action or 0, "UPDATED")
        results = data.get("battleResult") or {}
        for info in data.get("anchorsInfo") or []:
            user = _get(info, "value", "user") or {}
            uid = _str(user.get("userId"), "anchorsInfo[].user.userId")
            if uid:
                score = _int(_get(results, uid, "score"), "battleResult.score")
                participants.append(
                    _compact(
                        {
                            "userId": uid,
                            "uniqueId": _str(user.get("displayId"), "displayId") or None,
                            "displayName": _str(user.get("nickName"), "nickName") or None,
                            "score": max(score, 0) if score is not None else None,
                        }
                    )
                )
        if not participants:
            for uid, result in results.items() if isinstance(results, Mapping) else ():
                score = _int(_get(result, "score"), "battleResult.score")
                participants.append(_compact({"userId": str(uid), "score": max(score or 0, 0)}))
    else:
        status = "UPDATED"
        armies = data.get("armies")
        if isinstance(armies, Mapping):  # WebcastLinkMicArmies: host id → armies
            for uid, army in armies.items():
                score = _int(_get(army, "hostscore"), "armies.hostscore")
                participants.append(_compact({"userId": str(uid), "score": max(score or 0, 0)}))
    payload = {
        "battleId": battle_id if battle_id and battle_id != "0" else None,
        "battleStatus": status,
        "participants": participants or None,
    }
    return "BATTLE", _user(data), _compact(payload)


def _room_user(frame: RawFrame, data: dict[str, Any]) -> Mapped:
    payload = {
        "viewerCount": _int(data.get("total", data.get("viewerCount")), "total"),
        "totalViewers": _int(data.get("totalUser", data.get("totalViewers")), "totalUser"),
    }
    return "ROOM_USER", SYSTEM_USER, _compact(payload)


def _control(frame: RawFrame, data: dict[str, Any]) -> Mapped:
    action = stream_end_action(_enum(data.get("action"), "action", "ControlAction"))
    if action is None:
        return _raw(frame, data)
    reason = _str(data.get("tips"), "tips") or STREAM_END_ACTIONS[action]
    return "STREAM_END", SYSTEM_USER, {"action": action, "reason": reason}


def _connected(frame: RawFrame, data: dict[str, Any]) -> Mapped:
    payload = {
        "roomId": _str(data.get("roomId"), "roomId") or frame.stream_id,
        "isConnected": True,
        "provider": _str(data.get("provider"), "provider") or frame.provider or None,
        "uniqueId": _str(data.get("uniqueId"), "uniqueId") or frame.unique_id or None,
    }
    return "CONNECTED", SYSTEM_USER, _compact(payload)


def _disconnected(frame: RawFrame, data: dict[str, Any]) -> Mapped:
    payload = {
        "code": _int(data.get("code"), "code"),
        "reason": _str(data.get("reason"), "reason"),
        "willReconnect": _bool(data.get("willReconnect")),
    }
    return "DISCONNECTED", SYSTEM_USER, _compact(payload)


def _error(frame: RawFrame, data: dict[str, Any]) -> Mapped:
    payload = {
        "message": _str(data.get("message"), "message") or "unknown error",
        "code": _str(data.get("code"), "code"),
        "stack": _str(data.get("stack"), "stack"),
    }
    return "ERROR", SYSTEM_USER, _compact(payload)


def _raw(frame: RawFrame, data: dict[str, Any]) -> Mapped:
    try:
        user = _user(data) if isinstance(data.get("user"), Mapping) else SYSTEM_USER
    except _Invalid:
        user = SYSTEM_USER  # RAW keeps whatever arrived; a malformed user is not a reason to drop
    return "RAW", user, {"rawType": frame.type, "data": data}


_BY_KIND: Final[dict[str, Mapper]] = {
    "CHAT": _chat,
    "GIFT": _gift,
    "LIKE": _like,
    "JOIN": _member,
    "SOCIAL": _social,
    "EMOTE": _emote,
    "BATTLE": _battle,
    "ROOM_USER": _room_user,
    "STREAM_END": _control,
    "CONNECTED": _connected,
    "DISCONNECTED": _disconnected,
    "ERROR": _error,
}
_MAPPERS: Final[dict[str, Mapper]] = {raw: _BY_KIND[kind] for raw, kind in MAPPING.items()}
MAPPED_TYPES: Final = frozenset(_MAPPERS)
