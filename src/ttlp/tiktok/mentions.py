"""Whether an archived raw frame names a TikTok user: what GDPR erasure (``ttlp.db.erasure``)
asks of every frame of the sessions it searches, since ``raw_frames`` has no user column.

The frame's ``data`` is read as the normalizer reads it: a JSON object as it is, base64
protobuf bytes decoded by ``ttlp.tiktok.decode`` (never a string search on base64, in which a
number does not appear), and the protobuf ingest keeps inside an object decoded too (the bytes
beside its notes under ``payloadBase64``, the last gift message of a streak the ingest closed).
The user is found anywhere in the message (``UserMatcher.in_value``: an id field or a map key):
their own user object, a gift's recipient, a ranking, a battle's score map. The bytes are
searched as well (the id as protobuf writes an integer, or as text): they hold the fields
TikTok added since TikTokLiveProto was built, and all of a message no schema reads (a type it
does not know, a payload that does not parse).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import msgspec

from ttlp.contracts.mapping import PACKED_KEY, STREAK_TIMEOUT_TYPE
from ttlp.db.erasure import UserMatcher
from ttlp.errors import PermanentError
from ttlp.tiktok import decode

GIFT_TYPE: Final = "WebcastGiftMessage"
"""What a streak-timeout frame's ``gift`` holds when it does not say (``type``)."""

_json: Final = msgspec.json.Decoder()


def frame_names_user(matcher: UserMatcher, raw_type: str, data: str) -> bool:
    """Whether the frame (``raw_frames.type`` and ``.data`` as stored) names the user."""
    try:
        value = _json.decode(data)
    except msgspec.DecodeError:
        return matcher.in_bytes(data.encode())
    # JSON names the user only where its text holds the id's digits (a string, a number or a
    # key): most frames are ruled out without walking them.
    if matcher.user_id not in data and not _holds_protobuf(raw_type, value):
        return False
    return any(matcher.in_value(message) for message in _messages(raw_type, value))


def _holds_protobuf(raw_type: str, data: Any) -> bool:
    """Whether JSON data carries protobuf bytes (as base64, which hides the id's digits)."""
    if not isinstance(data, dict):
        return isinstance(data, str)
    return isinstance(data.get(PACKED_KEY), str) or (
        raw_type == STREAK_TIMEOUT_TYPE and isinstance(data.get("gift"), str)
    )


def _messages(raw_type: str, data: Any) -> Iterator[Any]:
    """What a frame's data holds, readable: the JSON itself and every protobuf message in it
    (decoded to its dict, or bytes when no schema reads them)."""
    if isinstance(data, str):
        yield from _decoded(raw_type, data)
        return
    yield data
    if not isinstance(data, dict):
        return
    packed = data.get(PACKED_KEY)
    if isinstance(packed, str):
        yield from _decoded(raw_type, packed)
    gift = data.get("gift")
    if raw_type == STREAK_TIMEOUT_TYPE and isinstance(gift, str):
        inner = data.get("type")
        yield from _decoded(inner if isinstance(inner, str) else GIFT_TYPE, gift)


def _decoded(raw_type: str, packed: str) -> Iterator[Any]:
    """base64 protobuf of ``raw_type``: its message as a dict, then its bytes (fields TikTok
    added since TikTokLiveProto was built are in the bytes only); the text itself when it is
    not base64."""
    try:
        payload = decode.b64decode(packed)
    except PermanentError:
        yield packed
        return
    try:
        message = decode.decode_payload(raw_type, payload)
    except PermanentError:
        message = None
    if message is not None:
        yield message
    yield payload
