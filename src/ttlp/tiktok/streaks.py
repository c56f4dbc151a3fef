"""Gift streaks whose end frame never comes: closed by the ingest, once (DESIGN §4, README).

A streakable gift (gift type 1) arrives as one frame per combo step with a growing
``repeatCount``; the frame with ``repeatEnd`` set closes the streak, and analytics, the rules'
``streakEndOnly``, the forwarder and the UI count that frame alone. TikTok does not always send
it (a known behaviour: the viewer's app is closed or loses its connection mid-combo), and such a
streak was never counted anywhere.

The ingest closes it: each connection's ``StreakTracker`` follows the open streaks of that
session (key: sender, gift, TikTok's ``groupId``); one idle for ``STREAK_TIMEOUT_S`` is closed by
a frame of type ``ControlEvent.STREAK_TIMEOUT`` whose data holds the streak's last gift message
(base64 protobuf or the JSON object, as it arrived). The normalizer maps it to a GIFT event like
that last frame, but final: ``streakActive`` false, ``streakEnd`` true, with its last count, so
every consumer counts it exactly as it counts an end frame, with no code of its own.

It is decided here, in the one process that holds the streamer (the ingest lease), and written
to the raw archive, because the normalizer runs as many replicas that each see only part of a
session: a replay re-publishes the archived decision and yields the same events. A frame of a
streak already closed by the timeout (TikTok's end frame arriving late) is published with
``streakClosed`` set in its data (``{"payloadBase64": …, "streakClosed": true}`` for protobuf),
and the normalizer maps it as neither active nor an end: the streak counts once, with the count
it had when it was closed. The mock provider and replays publish what their file or archive
holds and track nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

from ttlp.contracts.mapping import PACKED_KEY, STREAK_CLOSED_KEY, STREAK_TIMEOUT_TYPE
from ttlp.errors import PermanentError
from ttlp.tiktok import decode

GIFT_TYPE: Final = "WebcastGiftMessage"
TIMEOUT_TYPE: Final = STREAK_TIMEOUT_TYPE
CLOSED_KEY: Final = STREAK_CLOSED_KEY
DEFAULT_TIMEOUT_S: Final = 10.0
# Closed streaks remembered per session, to recognise late frames (oldest forgotten first).
REMEMBER_CLOSED: Final = 10_000

StreakKey = tuple[str, int, int]


@dataclass
class _Open:
    data: dict[str, Any] | str
    """The last frame's data, as published."""
    timestamp_ms: float | None
    """The last frame's create time (TikTok's), for the closing event's timestamp."""
    seen_at: float
    """When the last frame arrived, on the tracker's clock."""


@dataclass(frozen=True)
class Gift:
    """What the tracker needs of one gift frame."""

    key: StreakKey
    streakable: bool
    ended: bool


def read_gift(data: dict[str, Any] | str) -> Gift | None:
    """The streak facts of a gift frame's data (base64 protobuf or a JSON object), or None when
    unreadable (the normalizer dead-letters it; it says nothing about streaks)."""
    if isinstance(data, str):
        try:
            message = decode.parse_message(GIFT_TYPE, decode.b64decode(data))
        except PermanentError:
            return None
        if message is None:
            return None
        user: Any = message.user  # type: ignore[attr-defined]
        gift: Any = message.gift  # type: ignore[attr-defined]
        return Gift(
            key=(
                str(user.id),
                int(message.gift_id),  # type: ignore[attr-defined]
                int(message.group_id),  # type: ignore[attr-defined]
            ),
            streakable=int(gift.type) == 1,
            ended=bool(message.repeat_end),  # type: ignore[attr-defined]
        )
    user_obj = data.get("user")
    gift_obj = data.get("gift")
    user_id = user_obj.get("id", user_obj.get("userId")) if isinstance(user_obj, dict) else None
    gift_type = gift_obj.get("type") if isinstance(gift_obj, dict) else None
    gift_id = data.get("giftId", gift_obj.get("id") if isinstance(gift_obj, dict) else None)
    try:
        return Gift(
            key=(str(user_id or 0), int(gift_id or 0), int(data.get("groupId") or 0)),
            streakable=int(gift_type or 0) == 1,
            ended=bool(int(data.get("repeatEnd") or 0)),
        )
    except (TypeError, ValueError):
        return None


class StreakTracker:
    """The open gift streaks of one session (see the module docstring)."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._open: dict[StreakKey, _Open] = {}
        self._closed: OrderedDict[StreakKey, None] = OrderedDict()

    @property
    def open_streaks(self) -> int:
        return len(self._open)

    def observe(
        self, data: dict[str, Any] | str, timestamp_ms: float | None, now: float
    ) -> dict[str, Any] | str:
        """Follow one gift frame; return its data as it must be published (marked when the
        streak was already closed by the timeout)."""
        if self.timeout_s <= 0:
            return data
        gift = read_gift(data)
        if gift is None or not gift.streakable:
            return data
        if gift.key in self._closed:
            if isinstance(data, str):
                return {PACKED_KEY: data, CLOSED_KEY: True}
            return {**data, CLOSED_KEY: True}
        if gift.ended:
            self._open.pop(gift.key, None)
        else:
            self._open[gift.key] = _Open(data, timestamp_ms, now)
        return data

    def expire(
        self, now: float, *, everything: bool = False
    ) -> list[tuple[dict[str, Any], float | None]]:
        """Close the streaks idle for the timeout (``everything``: all still open, when ttlp
        stops): (data of the closing frame, its timestamp in ms) each, oldest first. Each
        streak is closed once."""
        if self.timeout_s <= 0:
            return []
        due = [
            key for key, s in self._open.items() if everything or now - s.seen_at >= self.timeout_s
        ]
        closing = []
        for key in due:
            streak = self._open.pop(key)
            self._closed[key] = None
            if len(self._closed) > REMEMBER_CLOSED:
                self._closed.popitem(last=False)
            closing.append(
                (
                    {
                        "type": GIFT_TYPE,
                        "gift": streak.data,
                        "idleSeconds": round(now - streak.seen_at, 3),
                    },
                    streak.timestamp_ms,
                )
            )
        return closing
