"""What a TikTok provider is, and the session it writes into.

A provider (``direct``: TikTokLive's client; ``euler``: the Euler Stream WebSocket) knows how
to reach one streamer's room and turn what arrives into raw.v1 frames. Everything around it —
waiting for the streamer to go live, a new session per connection, the lifecycle frames,
reconnecting with back-off, who holds which streamer — is the supervisor's
(``ttlp.tiktok.supervisor``), the same for every provider.

A connection ends in one of the ``Outcome`` ways; the provider says which by raising
``ConnectionEnded`` (or returning normally: the stream ended, look again later).
"""

from __future__ import annotations

import asyncio
import base64
import enum
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ttlp.aio import iso_ms
from ttlp.contracts.events import RawFrame
from ttlp.contracts.mapping import CONTROL_TYPE, stream_end_action
from ttlp.errors import PermanentError
from ttlp.tiktok import decode
from ttlp.tiktok.publish import FramePublisher
from ttlp.tiktok.streaks import GIFT_TYPE, TIMEOUT_TYPE, StreakTracker

ProviderName = Literal["direct", "euler", "mock"]


class Outcome(enum.Enum):
    """What the supervisor does after a connection ended."""

    STOP = "stop"
    """Will never work as configured (bad options, bad key, no such user): stop this streamer."""
    POLL = "poll"
    """The streamer is offline or the stream ended: check again after the poll interval."""
    BACKOFF = "backoff"
    """Rate limited or refused for now: wait with exponential back-off."""
    RECONNECT = "reconnect"
    """A transient failure: reconnect with exponential back-off."""
    RECONNECT_NOW = "reconnect_now"
    """A planned cut (e.g. Euler's 8-hour limit): reconnect at once."""
    FINISHED = "finished"
    """The source has nothing more to give (the mock's fixture, published once): stop this
    streamer; not a failure."""


class ConnectionEnded(Exception):
    """Raised by a provider to end a connection with a given ``Outcome``.

    ``retry_after_s``: how long the other side asked us to wait (a rate limit's Retry-After or
    reset time); when set, the supervisor waits that long instead of its usual delay.
    """

    def __init__(
        self,
        outcome: Outcome,
        reason: str,
        *,
        code: int | str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.code = code
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Message:
    """One TikTok message as fetched: its type and its protobuf bytes, undecoded."""

    method: str
    payload: bytes
    msg_id: int
    create_time_ms: int | None = None


@dataclass
class Session:
    """One connection = one sessionId: publishes its frames as raw.v1.

    Message frames use TikTok's ``msgId`` as seqNo and its create time as timestamp; lifecycle
    frames (``ControlEvent.*``) use a per-session counter from 1. A message without a msgId (0
    or absent, e.g. ``WebcastWeeklyRankRewardMessage``) gets the next value of a second
    per-session counter that starts at the clock in ms × 10⁶: id-less messages of one type
    never share an eventId (the store would keep only the first), and the counter collides
    neither with TikTok's msgIds (~7·10¹⁸) nor with the lifecycle counter.
    """

    publisher: FramePublisher
    unique_id: str
    provider: ProviderName
    session_id: str
    room_id: str | None = None
    frames: int = 0
    _lifecycle_seq: int = field(default=0, repr=False)
    _fallback_seq: int = field(default_factory=lambda: int(time.time() * 1000) * 1_000_000)
    streaks: StreakTracker = field(default_factory=StreakTracker)
    """Open gift streaks (``ttlp.tiktok.streaks``): the supervisor passes one tracker per
    streamer, so a streak survives a reconnect and its late frames stay recognised."""
    clock: Callable[[], float] = time.monotonic
    """The clock of ``last_message_at`` and of the streak timeout (tests pass a fake one)."""
    last_message_at: float | None = None
    """When TikTok's last message arrived (None before the first): the silence watchdog."""

    def seq_no(self, msg_id: int | None) -> int:
        """TikTok's msgId when the message has one, else the next per-session fallback."""
        if msg_id is not None and msg_id > 0:
            return msg_id
        self._fallback_seq += 1
        return self._fallback_seq

    def _frame(
        self, raw_type: str, seq_no: int, data: dict[str, object] | str, created_ms: float | None
    ) -> RawFrame:
        now_ms = time.time() * 1000
        return RawFrame(
            schema_version="raw.v1",
            stream_id=self.room_id or "0",
            session_id=self.session_id,
            source="live",
            type=raw_type,
            seq_no=seq_no,
            timestamp=iso_ms(created_ms if created_ms else now_ms),
            ingested_at=iso_ms(now_ms),
            data=data,
            provider=self.provider,
            unique_id=self.unique_id,
        )

    async def _lifecycle(self, kind: str, data: dict[str, object]) -> None:
        self._lifecycle_seq += 1
        frame = self._frame(f"ControlEvent.{kind}", self._lifecycle_seq, data, None)
        await self.publisher.publish([frame])
        self.frames += 1

    async def connected(self, room_id: str) -> None:
        self.room_id = room_id
        self.last_message_at = self.clock()  # silence is counted from the join
        await self._lifecycle(
            "CONNECTED",
            {
                "roomId": room_id,
                "isConnected": True,
                "provider": self.provider,
                "uniqueId": self.unique_id,
            },
        )

    async def disconnected(self, code: int | str | None, reason: str, will_reconnect: bool) -> None:
        data: dict[str, object] = {"reason": reason[:2000], "willReconnect": will_reconnect}
        if isinstance(code, int):
            data["code"] = code
        await self._lifecycle("DISCONNECTED", data)

    async def error(self, message: str, code: str | None = None) -> None:
        data: dict[str, object] = {"message": message[:2000]}
        if code:
            data["code"] = code[:128]
        await self._lifecycle("ERROR", data)

    async def _publish(self, frames: list[RawFrame]) -> None:
        """Publish; when the publisher had to pause this source (the bus away and its buffer
        full), say so in the data: TikTok's messages of that time may be missing."""
        await self.publisher.publish(frames)
        self.frames += len(frames)
        self.last_message_at = self.clock()
        gap = self.publisher.take_gap()
        if gap > 0:
            await self._lifecycle(
                "ERROR",
                {
                    "message": f"ingest was paused for {gap:.1f} s while the bus was "
                    "unreachable: messages TikTok sent meanwhile may be missing",
                    "code": "INGEST_PAUSED",
                },
            )

    async def messages(self, messages: Iterable[Message]) -> None:
        """Publish fetched messages as base64-protobuf frames, in one batch."""
        frames = []
        for m in messages:
            if not m.method:
                continue
            data: dict[str, object] | str = base64.b64encode(m.payload).decode()
            if m.method == GIFT_TYPE:
                data = self.streaks.observe(data, m.create_time_ms, self.clock())
            frames.append(self._frame(m.method, self.seq_no(m.msg_id), data, m.create_time_ms))
        if frames:
            await self._publish(frames)

    async def json_message(
        self, raw_type: str, data: dict[str, object], msg_id: int, create_time_ms: int | None = None
    ) -> None:
        """Publish a message that arrived already decoded (e.g. Euler JSON frames)."""
        if raw_type == GIFT_TYPE:
            data = self.streaks.observe(data, create_time_ms, self.clock())  # type: ignore[assignment]
        await self._publish([self._frame(raw_type, self.seq_no(msg_id), data, create_time_ms)])

    async def expire_streaks(self, *, everything: bool = False) -> int:
        """Close the gift streaks idle for ``STREAK_TIMEOUT_S`` (``everything``: all still
        open), one ``ControlEvent.STREAK_TIMEOUT`` frame each; return how many."""
        closing = self.streaks.expire(self.clock(), everything=everything)
        if not closing:
            return 0
        frames = []
        for data, timestamp_ms in closing:
            self._lifecycle_seq += 1
            frames.append(self._frame(TIMEOUT_TYPE, self._lifecycle_seq, data, timestamp_ms))
        await self.publisher.publish(frames)
        self.frames += len(frames)
        return len(frames)


def ends_stream(payload: bytes) -> bool:
    """Whether a WebcastControlMessage payload ends the stream (``ttlp.contracts.mapping``);
    False when unreadable: the normalizer dead-letters it, it says nothing about the stream."""
    try:
        parsed = decode.parse_message(CONTROL_TYPE, payload)
    except PermanentError:
        return False
    return parsed is not None and stream_end_action(getattr(parsed, "action", 0)) is not None


class Provider(Protocol):
    """A way to reach TikTok LIVE rooms."""

    name: ProviderName

    async def is_live(self, unique_id: str) -> bool:
        """Whether ``unique_id`` is live now (raise ``ConnectionEnded`` on errors that matter)."""

    async def run(self, unique_id: str, session: Session, stop: asyncio.Event) -> None:
        """Connect, call ``session.connected(room_id)``, publish until the connection ends.

        Return normally when the stream ended or ``stop`` was set; raise ``ConnectionEnded``
        otherwise (any other exception counts as ``Outcome.RECONNECT``).
        """
