"""Protobuf payloads of raw frames → the camelCase dict shape the normalizer reads.

This is the reference decoder: TikTokLiveProto's own betterproto2 classes (the same parse
TikTokLive runs), so a frame whose ``data`` is base64 protobuf normalizes exactly like its JSON
form. It is correct but slow (~2.5 k messages/s); the fast descriptor-based decoder of DESIGN
§5.2 replaces it behind the same function.
"""

from __future__ import annotations

import base64
import binascii
import functools
import importlib
import warnings
from typing import Any

from ttlp.errors import PermanentError


@functools.cache
def _prepare_library() -> None:
    """Import TikTokLive's proto package once before the first parse.

    TikTokLiveProto's pydantic dataclasses resolve some forward references (e.g.
    ``data.UserFansClub…`` inside ``FansClubMember``, which has a field named ``data``) only
    in the order TikTokLive's own import builds them; parsing without it fails on real user
    payloads. The library emits a DeprecationWarning for its websockets import: not ours.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        importlib.import_module("TikTokLive.proto")


@functools.cache
def message_class(raw_type: str) -> type[Any] | None:
    """The TikTokLiveProto message class for a raw type name (``WebcastChatMessage``), if any."""
    from ttlp.tiktok.proto import lookup

    _prepare_library()
    cls = lookup(raw_type)
    return cls if isinstance(cls, type) and hasattr(cls, "parse") else None


def b64decode(data: str) -> bytes:
    """Strict base64 (standard alphabet, padding required) → bytes, or PARSE_ERROR."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PermanentError("PARSE_ERROR", f"data is not valid base64: {exc}") from None


def decode_payload(raw_type: str, payload: bytes) -> dict[str, Any] | None:
    """Decode protobuf ``payload`` of ``raw_type``; ``None`` when the type has no known schema."""
    cls = message_class(raw_type)
    if cls is None:
        return None
    try:
        message = cls().parse(payload)
    except Exception as exc:  # the protobuf runtime raises assorted errors on garbage
        raise PermanentError(
            "PARSE_ERROR", f"{raw_type} payload is not valid protobuf: {type(exc).__name__}"
        ) from None
    result: dict[str, Any] = message.to_dict()
    return result
