"""An overlay token's options: msgspec Structs with every default and bound (camelCase JSON).

The options live in ``overlay_tokens.options`` (NULL: all defaults) and are always answered in
full. A change is partial: the fields sent are merged onto the current options (objects field
by field, anything else replaced), then the result is validated again; a problem is a 400
naming the field (``extra[].key``, as Litestar names the fields of a body it refuses).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar.exceptions import ValidationException
from loguru import logger

MAX_ID: Final = 2**53
"""A row id; larger ones overflow SQLite and JSON numbers alike."""
MAX_BANNED_WORDS: Final = 500

SoundRef = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)] | None
"""An ``overlay_sounds`` id of the token's streamer, or None (no sound)."""
BannedWord = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
TickerKind = Literal["FOLLOW", "SHARE", "SUBSCRIBE", "GIFT", "CHAT", "LIKE", "JOIN", "EMOTE"]
LeaderboardScope = Literal["session", "stream"]
GoalMetric = Literal["likes", "coins", "follows", "subscriptions"]

log = logger.bind(role="api")


class _Part(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """A part of the options: camelCase in JSON, unknown fields refused."""


class Common(_Part):
    banned_words: Annotated[list[BannedWord], msgspec.Meta(max_length=MAX_BANNED_WORDS)] = []
    """Words no chat line or spoken text shows (the overlay page filters)."""


class AlertKinds(_Part):
    follow: bool = True
    share: bool = True
    subscribe: bool = True
    gift: bool = True


class AlertSounds(_Part):
    follow: SoundRef = None
    share: SoundRef = None
    subscribe: SoundRef = None
    gift: SoundRef = None

    def refs(self) -> Iterator[tuple[str, int]]:
        """(kind, sound id) of every sound set."""
        for kind in ("follow", "share", "subscribe", "gift"):
            sound = getattr(self, kind)
            if sound is not None:
                yield kind, sound


class Tts(_Part):
    alerts: bool = False
    chat: bool = False
    max_length: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 200
    per_user_seconds: Annotated[int, msgspec.Meta(ge=0, le=3600)] = 30
    voice: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    rate: Annotated[float, msgspec.Meta(ge=0.1, le=10.0)] = 1.0


class Alerts(_Part):
    kinds: AlertKinds = msgspec.field(default_factory=AlertKinds)
    min_coins: Annotated[int, msgspec.Meta(ge=0, le=10**9)] = 0
    duration_ms: Annotated[int, msgspec.Meta(ge=500, le=60_000)] = 5000
    sounds: AlertSounds = msgspec.field(default_factory=AlertSounds)
    volume: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.8
    tts: Tts = msgspec.field(default_factory=Tts)
    skip_key: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] = "Escape"
    """A ``KeyboardEvent.key`` value that skips the current alert in the overlay page."""


class Chat(_Part):
    max_messages: Annotated[int, msgspec.Meta(ge=1, le=200)] = 20
    show_badges: bool = True
    emote_images: bool = True
    font_size: Annotated[int, msgspec.Meta(ge=6, le=128)] = 18


class Leaderboard(_Part):
    scope: LeaderboardScope = "session"
    """``session``: the current session; ``stream``: every session of its room."""
    count: Annotated[int, msgspec.Meta(ge=1, le=50)] = 5


class Goal(_Part):
    metric: GoalMetric = "likes"
    target: Annotated[int, msgspec.Meta(ge=1, le=10**12)] = 1000
    title: Annotated[str, msgspec.Meta(max_length=100)] = ""


class Ticker(_Part):
    kinds: Annotated[list[TickerKind], msgspec.Meta(min_length=1, max_length=8)] = msgspec.field(
        default_factory=lambda: ["FOLLOW", "GIFT"]
    )
    count: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10
    speed_px_per_s: Annotated[int, msgspec.Meta(ge=1, le=2000)] = 60


class Options(_Part):
    """Every overlay kind's options of one token (a PUT may send any part of them)."""

    common: Common = msgspec.field(default_factory=Common)
    alerts: Alerts = msgspec.field(default_factory=Alerts)
    chat: Chat = msgspec.field(default_factory=Chat)
    leaderboard: Leaderboard = msgspec.field(default_factory=Leaderboard)
    goal: Goal = msgspec.field(default_factory=Goal)
    ticker: Ticker = msgspec.field(default_factory=Ticker)


def stored_options(value: Any) -> Options:
    """The options of a row's ``options`` column (None: the defaults). A stored document the
    current fields no longer read (written by another version of ttlp) gives the defaults."""
    if value is None:
        return Options()
    try:
        document = msgspec.json.decode(value) if isinstance(value, str | bytes) else value
        return normalized(msgspec.convert(document, Options))
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("stored overlay options unreadable: using the defaults", error=str(exc))
        return Options()


def to_document(options: Options) -> dict[str, Any]:
    """The options as the JSON object stored and answered (every field)."""
    document: dict[str, Any] = msgspec.to_builtins(options)
    return document


def merge(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``patch`` over ``current``: objects merged field by field, anything else replaced."""
    merged = dict(current)
    for key, value in patch.items():
        before = merged.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            merged[key] = merge(before, value)
        else:
            merged[key] = value
    return merged


def apply_patch(current: Options, patch: Any) -> Options:
    """``current`` with ``patch`` (the request's JSON object) merged on, validated; a
    ``ValidationException`` naming the field when the result is not valid options."""
    if not isinstance(patch, dict):
        raise invalid("data", "Expected `object`")
    try:
        return normalized(msgspec.convert(merge(to_document(current), patch), Options))
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        raise invalid(where.rstrip("`").lstrip(".") or "data", message) from None


def normalized(options: Options) -> Options:
    """Lists as sets where order and repeats mean nothing (the ticker's kinds), kept in order."""
    kinds = list(dict.fromkeys(options.ticker.kinds))
    if kinds == options.ticker.kinds:
        return options
    ticker = msgspec.structs.replace(options.ticker, kinds=kinds)
    return msgspec.structs.replace(options, ticker=ticker)


def invalid(key: str, message: str) -> ValidationException:
    """A 400 in the shape Litestar gives a refused body: ``extra`` names the field."""
    return ValidationException(
        f"invalid overlay options: {key}: {message}",
        extra=[{"message": message, "key": key, "source": "body"}],
    )
