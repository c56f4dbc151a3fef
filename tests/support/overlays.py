"""Overlays through the API in tests (the server half; the browser tests have theirs in
``overlay_events``): tokens made through the API, sessions of events derived from the fixture
session (another live session of the same room, a replay), what an overlay should show of
them, computed here from the events themselves (the reference the API's queries are held to),
and the first bytes of sound files of each format.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import msgspec

from tests.support.api import STREAMER_HANDLE, ApiHarness, fixture_events
from ttlp.aio import parse_iso
from ttlp.contracts.events import UnifiedEvent, decode_event

CLOSERS = ("STREAM_END", "DISCONNECTED")
SEQ_OFFSET = 10**12
"""Added to a copied event's seqNo: the store keeps one live event per (room, type, seqNo)."""


async def new_token(
    api: ApiHarness,
    headers: dict[str, str],
    streamer: str = STREAMER_HANDLE,
    name: str = "OBS",
) -> dict[str, Any]:
    """A token made through ``POST /overlays/tokens`` (its JSON)."""
    response = await api.client.post(
        "/overlays/tokens", json={"name": name, "streamer": streamer}, headers=headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def new_sound(
    api: ApiHarness, headers: dict[str, str], streamer: str = STREAMER_HANDLE
) -> int:
    """A sound (Ogg) uploaded through ``POST /overlays/sounds``: its id."""
    data, content_type = SOUNDS["a.ogg"]
    response = await api.client.post(
        "/overlays/sounds",
        files={"file": ("ding.ogg", data, content_type)},
        data={"name": "ding", "streamer": streamer},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def document(event: UnifiedEvent) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(msgspec.json.encode(event))
    return data


def _shift(value: str, by: timedelta) -> str:
    return (parse_iso(value) + by).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def session_copy(
    session_id: str,
    *,
    source: str = "live",
    shift: timedelta = timedelta(hours=1),
    open_session: bool = True,
    events: Iterable[UnifiedEvent] | None = None,
    salt: str = "",
) -> list[UnifiedEvent]:
    """The fixture session's events (or ``events``) again as session ``session_id`` of the
    same room: ``source`` live (another session) or replay, ``shift`` later, new event ids and
    TikTok message ids, still going unless ``open_session`` is False (its stream end and
    disconnect kept). Copies with another ``salt`` are other events."""
    out = []
    for event in events if events is not None else fixture_events():
        data = document(event)
        if open_session and data["eventType"] in CLOSERS:
            continue
        data["sessionId"] = session_id
        data["source"] = source
        data["eventId"] = hashlib.sha256(
            f"{session_id}:{salt}:{data['eventId']}".encode()
        ).hexdigest()
        if "seqNo" in data:  # TikTok's message ids: another session's are other messages
            data["seqNo"] += SEQ_OFFSET
        data["timestamp"] = _shift(data["timestamp"], shift)
        if "ingestedAt" in data:
            data["ingestedAt"] = _shift(data["ingestedAt"], shift)
        out.append(decode_event(json.dumps(data)))
    return out


def of_type(events: Iterable[UnifiedEvent], *types: str) -> list[dict[str, Any]]:
    return [d for d in map(document, events) if d["eventType"] in types]


def counts_as_gift(data: dict[str, Any]) -> bool:
    """A gift that counts: a streak's end frame, or one outside streaks."""
    if data["eventType"] != "GIFT":
        return False
    payload = data["payload"]
    if "streakEnd" in payload:
        return bool(payload["streakEnd"])
    return not payload.get("streakActive", False)


def expected_leaderboard(events: Iterable[UnifiedEvent], count: int) -> list[dict[str, Any]]:
    """Top gifters by coins (then user id): ``userId``, ``coins``, ``gifts``."""
    coins: dict[str, int] = defaultdict(int)
    gifts: dict[str, int] = defaultdict(int)
    for data in map(document, events):
        if counts_as_gift(data):
            coins[data["user"]["userId"]] += data["payload"]["coins"]
            gifts[data["user"]["userId"]] += data["payload"].get("giftCount", 1)
    ranked = sorted(coins, key=lambda user: (-coins[user], user))[:count]
    return [{"userId": u, "coins": coins[u], "gifts": gifts[u]} for u in ranked]


def expected_goal(events: Iterable[UnifiedEvent], metric: str) -> int:
    documents = list(map(document, events))
    if metric == "likes":
        return sum(d["payload"]["likeCount"] for d in documents if d["eventType"] == "LIKE")
    if metric == "coins":
        return sum(d["payload"]["coins"] for d in documents if counts_as_gift(d))
    wanted = {"follows": "FOLLOW", "subscriptions": "SUBSCRIBE"}[metric]
    return sum(1 for d in documents if d["eventType"] == wanted)


# -- sound files: just their first bytes, as ttlp.api.overlays.audio reads them -------------------
def _wav() -> bytes:
    fmt = b"fmt " + (16).to_bytes(4, "little") + bytes.fromhex("01000100401f0000803e000002001000")
    data = b"data" + (8).to_bytes(4, "little") + bytes(8)
    body = b"WAVE" + fmt + data
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def _ebml(doctype: bytes) -> bytes:
    element = b"\x42\x82" + bytes([0x80 | len(doctype)]) + doctype
    header = b"\x42\x86\x81\x01\x42\xf7\x81\x01" + element + b"\x42\x87\x81\x04\x42\x85\x81\x02"
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(header)]) + header + bytes(32)


SOUNDS: dict[str, tuple[bytes, str]] = {
    # name: (bytes, the content type they are)
    "id3.mp3": (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(64), "audio/mpeg"),
    "frame.mp3": (bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(413), "audio/mpeg"),
    "a.ogg": (b"OggS\x00\x02" + bytes(58), "audio/ogg"),
    "a.wav": (_wav(), "audio/wav"),
    "a.webm": (_ebml(b"webm"), "audio/webm"),
}
NOT_SOUNDS: dict[str, bytes] = {
    "text.mp3": b"just some text, named like a sound",
    "image.png": b"\x89PNG\r\n\x1a\n" + bytes(32),
    "adts.aac": bytes([0xFF, 0xF1, 0x50, 0x80]) + bytes(60),  # AAC in ADTS: layer bits 00
    "audio.mka": _ebml(b"matroska"),  # Matroska, not WebM
    "script.mp3": b"<script>alert(1)</script>",
}
