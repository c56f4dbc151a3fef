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

import base64
import binascii
import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any, Final

import msgspec

from ttlp.contracts.mapping import PACKED_KEY, STREAK_TIMEOUT_TYPE
from ttlp.db.erasure import MIN_BYTES_DIGITS, UserMatcher
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


# -- every user a frame names, among some (the pruner's sweep of erased users) ---------------
_DIGITS: Final = re.compile(r"[0-9]+")
_DIGIT_BYTES: Final = re.compile(rb"[0-9]{%d,}" % MIN_BYTES_DIGITS)
_MAX_ID_DIGITS: Final = 32
_MIN_LONG: Final = 10 ** (MIN_BYTES_DIGITS - 1)


def users_named_in_frame(raw_type: str, data: str, among: Callable[[str], bool]) -> set[str]:
    """The user ids ``among`` accepts (the erased ones) that the frame names, by the erasure's
    reading (``frame_names_user``). No id is known in advance: every number the frame could
    name a user by is a candidate (a superset: each number of its JSON text, each integer and
    digit string of its decoded messages, each id their bytes could hold as text or varint),
    and a candidate ``among`` accepts is confirmed by ``frame_names_user`` itself."""
    found: set[str] = set()
    for candidate in _candidates(raw_type, data):
        if candidate in found or not among(candidate):
            continue
        if frame_names_user(UserMatcher(candidate), raw_type, data):
            found.add(candidate)
    return found


def _candidates(raw_type: str, data: str) -> set[str]:
    out = {run for run in _DIGITS.findall(data) if _is_user_id(run)}
    try:
        value = _json.decode(data)
    except msgspec.DecodeError:
        _bytes_candidates(data.encode(), out)
        return out
    if not _holds_protobuf(raw_type, value):
        return out
    for message in _messages(raw_type, value):
        stack = [message]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for key, item in node.items():
                    _scalar_candidate(key, out)
                    if key == PACKED_KEY and isinstance(item, str):
                        with contextlib.suppress(binascii.Error, ValueError):
                            _bytes_candidates(base64.b64decode(item, validate=True), out)
                    stack.append(item)
            elif isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, bytes):
                _bytes_candidates(node, out)
            else:
                _scalar_candidate(node, out)
    return out


def _is_user_id(text: str) -> bool:
    return 0 < len(text) <= _MAX_ID_DIGITS and text[0] != "0"


def _scalar_candidate(value: Any, out: set[str]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int) and value > 0:
        out.add(str(value))
    elif isinstance(value, str) and value.isascii() and value.isdigit() and _is_user_id(value):
        out.add(value)


def _bytes_candidates(data: bytes, out: set[str]) -> None:
    """Every long id ``UserMatcher.in_bytes`` could find in ``data``: each digit run's
    substrings of an id's length, and the canonical varint starting at each byte."""
    for run in _DIGIT_BYTES.findall(data):
        text = run.decode()
        for start in range(len(text) - MIN_BYTES_DIGITS + 1):
            if text[start] == "0":
                continue
            end = min(len(text), start + _MAX_ID_DIGITS)
            out.update(text[start:stop] for stop in range(start + MIN_BYTES_DIGITS, end + 1))
    size = len(data)
    for start in range(size):
        if data[start] < 0x80:
            continue  # a varint of an id this long has 5 bytes or more: continuation first
        number, shift, i = 0, 0, start
        while i < size and shift < 70:
            byte = data[i]
            number |= (byte & 0x7F) << shift
            shift += 7
            i += 1
            if byte < 0x80:
                if byte and _MIN_LONG <= number < 2**64:
                    out.add(str(number))
                break
