"""The wire contracts as msgspec Structs: raw.v1 frames, UnifiedEvent v1, dlq.v1 entries.

These mirror the JSON Schemas in ``contracts/`` (shipped as ``ttlp/contracts/schemas``); the
contract tests prove both accept and reject the same documents. msgspec validates at runtime
(the hot path); jsonschema validates at the edges.

Optional fields use ``UNSET`` rather than ``None``: absent on the wire, never ``null``, exactly as
the schemas say.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from ttlp.aio import parse_iso

# -- shared field types ---------------------------------------------------------------------
# Patterns are written once here and mirrored in the JSON Schemas.
ISO_DATETIME_PATTERN: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
UUID_PATTERN: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
STREAM_ID_PATTERN: Final = r"^[0-9]{1,32}$"
RAW_TYPE_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9_.]{0,127}$"
EVENT_ID_PATTERN: Final = r"^[0-9a-f]{64}$"

IsoDateTime = Annotated[str, Meta(pattern=ISO_DATETIME_PATTERN)]
SessionId = Annotated[str, Meta(pattern=UUID_PATTERN)]
StreamId = Annotated[str, Meta(pattern=STREAM_ID_PATTERN)]
RawType = Annotated[str, Meta(pattern=RAW_TYPE_PATTERN)]
EventId = Annotated[str, Meta(pattern=EVENT_ID_PATTERN)]
# Integers are bounded to signed 64 bits: they land in BIGINT columns, and an out-of-range
# value must fail validation (dead-lettered at once), not the database insert.
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
Int64 = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
NonNegInt = Annotated[int, Meta(ge=0, le=INT64_MAX)]
PosInt = Annotated[int, Meta(ge=1, le=INT64_MAX)]
Handle = Annotated[str, Meta(min_length=1, max_length=128)]
ShortText = Annotated[str, Meta(max_length=2048)]
Url = Annotated[str, Meta(max_length=4096)]
Source = Literal["live", "replay"]
Provider = Literal["direct", "euler", "mock"]

RAW_SCHEMA_VERSION: Final = "raw.v1"
EVENT_SCHEMA_VERSION: Final = "1"


class _Contract(
    Struct,
    rename="camel",
    forbid_unknown_fields=True,
    omit_defaults=True,
    kw_only=True,
    frozen=True,
):
    """Common config: camelCase on the wire, unknown fields refused, unset fields omitted."""


# -- raw.v1 ---------------------------------------------------------------------------------
class RawFrame(_Contract, frozen=True, kw_only=True):
    """One frame as ingest publishes it to ``ttlc:raw`` (raw.v1)."""

    schema_version: Literal["raw.v1"]
    stream_id: StreamId
    session_id: SessionId
    source: Source
    type: RawType
    seq_no: NonNegInt
    timestamp: IsoDateTime
    ingested_at: IsoDateTime
    data: dict[str, Any] | str
    """A JSON object (decoded message) or a string holding base64 protobuf bytes."""
    provider: Provider | UnsetType = UNSET
    unique_id: Handle | UnsetType = UNSET


class RawEnvelope(_Contract, frozen=True, kw_only=True):
    """A ``ttlc:raw`` entry validated as raw.v1, with ``data`` kept as the JSON text it came in.

    The archive stores frames as received and never looks inside ``data``: converting it into
    a ``RawFrame`` only to encode it again was about a quarter of the archive's CPU. The fields
    and their constraints mirror ``RawFrame`` (a test keeps the two in step).
    """

    schema_version: Literal["raw.v1"]
    stream_id: StreamId
    session_id: SessionId
    source: Source
    type: RawType
    seq_no: NonNegInt
    timestamp: IsoDateTime
    ingested_at: IsoDateTime
    data_json: str = msgspec.field(name="data")
    """``data`` as JSON text: an object, or a string holding base64 protobuf bytes."""
    provider: Provider | UnsetType = UNSET
    unique_id: Handle | UnsetType = UNSET


# -- UnifiedEvent v1 --------------------------------------------------------------------------
class EventUser(_Contract, frozen=True, kw_only=True):
    user_id: Annotated[str, Meta(pattern=r"^[0-9]{1,32}$")]
    unique_id: Handle
    display_name: ShortText | UnsetType = UNSET
    avatar_url: Url | UnsetType = UNSET
    follow_role: Literal[0, 1, 2] | UnsetType = UNSET
    is_moderator: bool | UnsetType = UNSET
    is_subscriber: bool | UnsetType = UNSET
    team_member_level: NonNegInt | UnsetType = UNSET


SYSTEM_USER: Final = EventUser(user_id="0", unique_id="system")


class Emote(_Contract, frozen=True, kw_only=True):
    emote_id: Annotated[str, Meta(min_length=1, max_length=128)]
    emote_image_url: Url | UnsetType = UNSET
    placeholder_index: NonNegInt | UnsetType = UNSET


class ChatPayload(_Contract, frozen=True, kw_only=True):
    message: Annotated[str, Meta(max_length=8192)]
    emotes: list[Emote] | UnsetType = UNSET
    language: Annotated[str, Meta(max_length=32)] | UnsetType = UNSET


class GiftPayload(_Contract, frozen=True, kw_only=True):
    gift_id: NonNegInt
    gift_name: ShortText
    gift_count: PosInt
    coins: NonNegInt
    diamond_count: NonNegInt | UnsetType = UNSET
    streak_active: bool | UnsetType = UNSET
    streak_end: bool | UnsetType = UNSET
    is_gift_streak: bool | UnsetType = UNSET
    gift_image_url: Url | UnsetType = UNSET


class LikePayload(_Contract, frozen=True, kw_only=True):
    like_count: PosInt
    total_like_count: NonNegInt


class EmptyPayload(_Contract, frozen=True, kw_only=True):
    """FOLLOW and SHARE carry no payload fields."""


class JoinPayload(_Contract, frozen=True, kw_only=True):
    viewer_count: NonNegInt | UnsetType = UNSET
    action_id: NonNegInt | UnsetType = UNSET


class SubscribePayload(_Contract, frozen=True, kw_only=True):
    sub_month: NonNegInt | UnsetType = UNSET


class EmotePayload(_Contract, frozen=True, kw_only=True):
    emote_id: Annotated[str, Meta(min_length=1, max_length=128)]
    emote_image_url: Url | UnsetType = UNSET
    emote_type: NonNegInt | UnsetType = UNSET


class BattleParticipant(_Contract, frozen=True, kw_only=True):
    user_id: Annotated[str, Meta(pattern=r"^[0-9]{1,32}$")]
    unique_id: Handle | UnsetType = UNSET
    display_name: ShortText | UnsetType = UNSET
    score: NonNegInt | UnsetType = UNSET


class BattlePayload(_Contract, frozen=True, kw_only=True):
    battle_id: Annotated[str, Meta(pattern=r"^[0-9]{1,32}$")] | UnsetType = UNSET
    battle_status: Literal["STARTED", "UPDATED", "ENDED"] | UnsetType = UNSET
    participants: list[BattleParticipant] | UnsetType = UNSET


class ConnectedPayload(_Contract, frozen=True, kw_only=True):
    room_id: StreamId
    is_connected: Literal[True]
    provider: Provider
    unique_id: Handle | UnsetType = UNSET


class DisconnectedPayload(_Contract, frozen=True, kw_only=True):
    code: Int64 | UnsetType = UNSET
    reason: ShortText | UnsetType = UNSET
    will_reconnect: bool | UnsetType = UNSET


class ErrorPayload(_Contract, frozen=True, kw_only=True):
    message: ShortText
    code: Annotated[str, Meta(max_length=128)] | UnsetType = UNSET
    stack: Annotated[str, Meta(max_length=16384)] | UnsetType = UNSET


class RawPayload(_Contract, frozen=True, kw_only=True):
    raw_type: RawType
    data: dict[str, Any] | UnsetType = UNSET


class RoomUserPayload(_Contract, frozen=True, kw_only=True):
    viewer_count: NonNegInt | UnsetType = UNSET
    total_viewers: NonNegInt | UnsetType = UNSET


class StreamEndPayload(_Contract, frozen=True, kw_only=True):
    action: NonNegInt | UnsetType = UNSET
    reason: ShortText | UnsetType = UNSET


class _Event(_Contract, frozen=True, kw_only=True, tag_field="eventType"):
    """Fields every UnifiedEvent carries; subclasses fix eventType, triggerId and payload."""

    schema_version: Literal["1"]
    event_id: EventId
    stream_id: StreamId
    session_id: SessionId
    timestamp: IsoDateTime
    source: Source
    user: EventUser
    ingested_at: IsoDateTime | UnsetType = UNSET
    seq_no: NonNegInt | UnsetType = UNSET


class ChatEvent(_Event, frozen=True, kw_only=True, tag="CHAT"):
    trigger_id: Literal[1]
    payload: ChatPayload


class GiftEvent(_Event, frozen=True, kw_only=True, tag="GIFT"):
    trigger_id: Literal[2]
    payload: GiftPayload


class LikeEvent(_Event, frozen=True, kw_only=True, tag="LIKE"):
    trigger_id: Literal[3]
    payload: LikePayload


class FollowEvent(_Event, frozen=True, kw_only=True, tag="FOLLOW"):
    trigger_id: Literal[4]
    payload: EmptyPayload = EmptyPayload()


class ShareEvent(_Event, frozen=True, kw_only=True, tag="SHARE"):
    trigger_id: Literal[5]
    payload: EmptyPayload = EmptyPayload()


class JoinEvent(_Event, frozen=True, kw_only=True, tag="JOIN"):
    trigger_id: Literal[6]
    payload: JoinPayload = JoinPayload()


class SubscribeEvent(_Event, frozen=True, kw_only=True, tag="SUBSCRIBE"):
    trigger_id: Literal[7]
    payload: SubscribePayload = SubscribePayload()


class EmoteEvent(_Event, frozen=True, kw_only=True, tag="EMOTE"):
    trigger_id: Literal[8]
    payload: EmotePayload


class BattleEvent(_Event, frozen=True, kw_only=True, tag="BATTLE"):
    trigger_id: Literal[9]
    payload: BattlePayload = BattlePayload()


class ConnectedEvent(_Event, frozen=True, kw_only=True, tag="CONNECTED"):
    trigger_id: Literal[10]
    payload: ConnectedPayload


class DisconnectedEvent(_Event, frozen=True, kw_only=True, tag="DISCONNECTED"):
    trigger_id: Literal[11]
    payload: DisconnectedPayload = DisconnectedPayload()


class ErrorEvent(_Event, frozen=True, kw_only=True, tag="ERROR"):
    trigger_id: Literal[12]
    payload: ErrorPayload


class RawEvent(_Event, frozen=True, kw_only=True, tag="RAW"):
    trigger_id: Literal[13]
    payload: RawPayload


class RoomUserEvent(_Event, frozen=True, kw_only=True, tag="ROOM_USER"):
    trigger_id: Literal[14]
    payload: RoomUserPayload = RoomUserPayload()


class StreamEndEvent(_Event, frozen=True, kw_only=True, tag="STREAM_END"):
    trigger_id: Literal[15]
    payload: StreamEndPayload = StreamEndPayload()


UnifiedEvent = (
    ChatEvent
    | GiftEvent
    | LikeEvent
    | FollowEvent
    | ShareEvent
    | JoinEvent
    | SubscribeEvent
    | EmoteEvent
    | BattleEvent
    | ConnectedEvent
    | DisconnectedEvent
    | ErrorEvent
    | RawEvent
    | RoomUserEvent
    | StreamEndEvent
)

EVENT_CLASSES: Final[dict[str, type[_Event]]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        ChatEvent,
        GiftEvent,
        LikeEvent,
        FollowEvent,
        ShareEvent,
        JoinEvent,
        SubscribeEvent,
        EmoteEvent,
        BattleEvent,
        ConnectedEvent,
        DisconnectedEvent,
        ErrorEvent,
        RawEvent,
        RoomUserEvent,
        StreamEndEvent,
    )
}
TRIGGER_IDS: Final[dict[str, int]] = {
    "CHAT": 1,
    "GIFT": 2,
    "LIKE": 3,
    "FOLLOW": 4,
    "SHARE": 5,
    "JOIN": 6,
    "SUBSCRIBE": 7,
    "EMOTE": 8,
    "BATTLE": 9,
    "CONNECTED": 10,
    "DISCONNECTED": 11,
    "ERROR": 12,
    "RAW": 13,
    "ROOM_USER": 14,
    "STREAM_END": 15,
}
LIFECYCLE_TYPES: Final = frozenset({"CONNECTED", "DISCONNECTED", "ERROR"})


# -- dlq.v1 -----------------------------------------------------------------------------------
class DeadLetter(_Contract, frozen=True, kw_only=True):
    """One ``ttlc:dlq`` entry: what failed, where, why, and the original body."""

    stage: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
    reason: Annotated[str, Meta(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")]
    error: Annotated[str, Meta(max_length=4096)]
    payload: str
    failed_at: IsoDateTime
    payload_encoding: Literal["json", "base64"] = "json"
    """``base64`` when the original entry was not valid UTF-8 (its bytes, base64-encoded)."""
    payload_bytes: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    """The original entry's size in bytes (before any truncation)."""
    payload_sha256: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")] | UnsetType = UNSET
    """SHA-256 of the original entry's bytes (the whole of it, truncated or not)."""
    payload_truncated: bool = False
    """``payload`` holds only the first DLQ_MAX_PAYLOAD_BYTES of the entry (not retriable)."""
    raw_type: Annotated[str, Meta(max_length=128)] | UnsetType = UNSET
    session_id: Annotated[str, Meta(max_length=64)] | UnsetType = UNSET
    source_stream: Annotated[str, Meta(max_length=256)] | UnsetType = UNSET
    source_id: Annotated[str, Meta(max_length=64)] | UnsetType = UNSET


@dataclass(frozen=True)
class DeadLetterPayload:
    text: str
    encoding: Literal["json", "base64"]
    size: int
    sha256: str
    truncated: bool


def dead_letter_payload(fields: Mapping[str, str], max_bytes: int) -> DeadLetterPayload:
    """An entry's body for its dead letter: JSON text, or base64 when the entry holds bytes
    that are not UTF-8 (Redis hands them over surrogate-escaped, so nothing is lost); cut to
    ``max_bytes`` with the original size and hash recorded, so a huge frame is not kept twice.
    """
    text = json.dumps(dict(fields), ensure_ascii=False, separators=(",", ":"))
    try:
        data = text.encode()
        encoding: Literal["json", "base64"] = "json"
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogateescape")
        encoding = "base64"
    digest = hashlib.sha256(data).hexdigest()
    truncated = len(data) > max_bytes
    kept = data[:max_bytes] if truncated else data
    if encoding == "json" and not truncated:
        shown = text
    elif encoding == "json":
        shown = kept.decode(errors="ignore")  # a cut through a character drops that character
    else:
        shown = base64.b64encode(kept).decode()
    return DeadLetterPayload(shown, encoding, len(data), digest, truncated)


OMITTED_KEY: Final = "ttlpOmitted"
"""The ``data`` of an archived frame too large to keep: ``{"ttlpOmitted": {"bytes", "sha256"}}``
(the frame itself went to the dead-letter stream as FRAME_TOO_LARGE, capped)."""


def omitted_data(fields: Mapping[str, str]) -> str:
    """The stand-in ``data`` of an oversized frame: its size and SHA-256, not its bytes."""
    data = fields.get("data", "").encode("utf-8", "surrogateescape")
    return json.dumps(
        {OMITTED_KEY: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}}
    )


def frame_size(fields: Mapping[str, str]) -> int:
    """A ``ttlc:raw`` entry's size as MAX_FRAME_BYTES counts it (characters of keys and values).

    Summed by ``map`` in C: 0.76 against 1.07 µs for a generator over the items, twice per
    frame (the normalizer and the archive)."""
    return sum(map(len, fields)) + sum(map(len, fields.values()))


# -- codecs ------------------------------------------------------------------------------------
_event_decoder: Final = msgspec.json.Decoder(UnifiedEvent)
_raw_decoder: Final = msgspec.json.Decoder(RawFrame)
_encoder: Final = msgspec.json.Encoder()


RECENT_EVENTS: Final = 1024
"""How many of the events this process encoded last ``decode_event`` answers without decoding."""
_recent: OrderedDict[str, UnifiedEvent] = OrderedDict()


def decode_event(data: bytes | str) -> UnifiedEvent:
    """Decode and validate one UnifiedEvent v1 JSON document.

    A text this process produced with ``encode_event_text`` lately is answered from memory:
    the same frozen event its decode would build (decoding is a pure function of the text).
    """
    if isinstance(data, str):
        known = _recent.get(data)
        if known is not None:
            return known
    event: UnifiedEvent = _event_decoder.decode(data)
    return event


def encode_event_text(event: UnifiedEvent) -> str:
    """The event's JSON text for the bus; remembered for ``decode_event`` in this process.

    With every role in one process (``ttlp run --roles all``, the embedded default above all)
    the store decodes every event the normalizer has just validated and encoded, and the rules
    the ones their rules are for: 4.4 µs of decoding an event (the bundled session, 2-core
    machine), most of the store's own work per event. A dict of the last ``RECENT_EVENTS``
    (by text: a Redis read gives an equal string, found by its hash) answers those in ~0.1 µs.
    Hand-written because ``functools.lru_cache`` cannot be given the result the encoder
    already has; eviction is first in, first out (the order the consumers read in), by
    ``OrderedDict.popitem``: 0.7 µs an event against 2.1 µs for a plain dict's first key,
    whose deleted slots each later ``iter`` skips again.
    """
    text = _encoder.encode(event).decode()
    _remember(_recent, RECENT_EVENTS, text, event)
    return text


def _remember(memory: OrderedDict[Any, Any], most: int, key: Any, value: Any) -> None:
    """Put ``key`` in ``memory``, first dropping the oldest entry when it holds ``most``."""
    if len(memory) >= most:
        memory.popitem(last=False)
    memory[key] = value


def encode(obj: Any) -> bytes:
    """Encode a contract Struct (or any msgspec-encodable value) as JSON bytes."""
    return _encoder.encode(obj)


class EventHead(msgspec.Struct, frozen=True, rename="camel"):
    """The head of a UnifiedEvent: what routing needs (the api feed, the rules role, the
    forwarder, the DLQ view). msgspec skips the user and the payload without building them:
    cheaper than ``decode_event`` for consumers that look at most events only to pass them on.
    """

    event_type: str
    event_id: str
    stream_id: str
    session_id: str


class _ConnectedPayload(msgspec.Struct, frozen=True, rename="camel"):
    unique_id: str | None = None


class _ConnectedHead(msgspec.Struct, frozen=True):
    payload: _ConnectedPayload | None = None


_head_decoder: Final = msgspec.json.Decoder(EventHead)
_connected_decoder: Final = msgspec.json.Decoder(_ConnectedHead)


def decode_event_head(data: bytes | str) -> EventHead:
    """The head of one UnifiedEvent JSON document (raises msgspec's Decode/ValidationError)."""
    return _head_decoder.decode(data)


def connected_handle(data: bytes | str) -> str | None:
    """The streamer's @handle a CONNECTED event names (None when absent or unreadable)."""
    try:
        payload = _connected_decoder.decode(data).payload
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return payload.unique_id if payload is not None and payload.unique_id else None


def decode_raw_frame(data: bytes | str) -> RawFrame:
    """Decode and validate one raw.v1 document (the NDJSON form, `data` already JSON)."""
    return _raw_decoder.decode(data)


def frame_to_fields(frame: RawFrame) -> dict[str, str]:
    """The Redis entry form of a raw frame: one string field each, `data` as JSON text."""
    fields = {
        "schemaVersion": frame.schema_version,
        "streamId": frame.stream_id,
        "sessionId": frame.session_id,
        "source": frame.source,
        "type": frame.type,
        "seqNo": str(frame.seq_no),
        "timestamp": frame.timestamp,
        "ingestedAt": frame.ingested_at,
        "data": _encoder.encode(frame.data).decode(),
    }
    if frame.provider is not UNSET:
        fields["provider"] = frame.provider
    if frame.unique_id is not UNSET:
        fields["uniqueId"] = frame.unique_id
    return fields


def frame_from_fields(fields: dict[str, str], max_bytes: int | None = None) -> RawFrame:
    """Parse a ``ttlc:raw`` entry back into a RawFrame, or raise ``PermanentError``.

    Reasons: ``FRAME_TOO_LARGE`` (over ``max_bytes``), ``PARSE_ERROR`` (``data`` is not JSON),
    ``VALIDATION_ERROR`` (a field missing, of the wrong type or unknown). An entry
    ``envelope_from_fields`` validated lately is built from what it found (``_validated``).
    """
    from ttlp.errors import PermanentError

    if max_bytes is not None:
        size = frame_size(fields)
        if size > max_bytes:
            raise PermanentError(
                "FRAME_TOO_LARGE", f"frame of {size} bytes exceeds MAX_FRAME_BYTES={max_bytes}"
            )
    key = (*fields, *fields.values())
    known = _validated.pop(key, None)
    if known is not None and known[1] is not _MISSING:
        return _frame_of(*known)
    document: dict[str, Any] = dict(fields)
    text = fields.get("data")
    if text is not None:
        try:
            document["data"] = _any_decoder.decode(text)
        except msgspec.DecodeError as exc:
            raise PermanentError("PARSE_ERROR", f"data is not valid JSON: {exc}") from None
        except UnicodeEncodeError:
            raise _not_utf8("data") from None
    try:
        frame = msgspec.convert(document, RawFrame, strict=False)
    except msgspec.ValidationError as exc:
        raise PermanentError("VALIDATION_ERROR", f"invalid raw.v1 frame: {exc}") from None
    _check_times(frame.timestamp, frame.ingested_at)
    _remember(_validated, RECENT_FRAMES, key, (_envelope_of(frame, fields["data"]), _MISSING))
    return frame


RECENT_FRAMES: Final = 1024
_validated: OrderedDict[tuple[str, ...], tuple[RawEnvelope, Any]] = OrderedDict()
"""The entries one of the two readers of ``ttlc:raw`` validated, for the other: the envelope,
and ``data`` decoded (``_MISSING`` when the normalizer validated it: the archive keeps it as
text).

The normalizer (``frame_from_fields``) and the archive (``envelope_from_fields``) read every
entry, and validating one is most of their own work per frame (6.1 and 5.1 µs over the bundled
protobuf session, 8.4 and 7.2 µs over its JSON frames, 2-core machine). The first of them to
validate an entry leaves what it found here, keyed by the entry's field names and values; the
other takes it (once: it is removed) and builds its own form of the frame from it. Both
together, either first: 11.1 → 8.5 µs a protobuf frame, 15.9 → 10.9 µs a JSON frame.
Decoding is a pure function of the text, so the frame and the envelope are the ones their own
validation would give. An entry only one of them reads (the other in another process, or
redelivered) is validated in full, and at most ``RECENT_FRAMES`` wait here, the oldest dropped
first."""
_MISSING: Final[Any] = object()


def _envelope_of(frame: RawFrame, data_json: str) -> RawEnvelope:
    return RawEnvelope(
        schema_version=frame.schema_version,
        stream_id=frame.stream_id,
        session_id=frame.session_id,
        source=frame.source,
        type=frame.type,
        seq_no=frame.seq_no,
        timestamp=frame.timestamp,
        ingested_at=frame.ingested_at,
        data_json=data_json,
        provider=frame.provider,
        unique_id=frame.unique_id,
    )


def _frame_of(envelope: RawEnvelope, data: Any) -> RawFrame:
    return RawFrame(
        schema_version=envelope.schema_version,
        stream_id=envelope.stream_id,
        session_id=envelope.session_id,
        source=envelope.source,
        type=envelope.type,
        seq_no=envelope.seq_no,
        timestamp=envelope.timestamp,
        ingested_at=envelope.ingested_at,
        data=data,
        provider=envelope.provider,
        unique_id=envelope.unique_id,
    )


def _not_utf8(field: str) -> Exception:
    """Bytes that are not UTF-8 reach us surrogate-escaped (the Redis bus reads them so, rather
    than fail the whole read); msgspec refuses to decode them, which costs nothing up front."""
    from ttlp.errors import PermanentError

    return PermanentError("ENCODING_ERROR", f"field {field!r} is not valid UTF-8")


def _check_times(*values: str) -> None:
    """The pattern lets ``2024-13-45T99:99:99Z`` or a ``+99:99`` offset through: parse them."""
    from ttlp.errors import PermanentError

    for value in values:
        try:
            parse_iso(value)  # as the store will: offset arithmetic included
        except (ValueError, OverflowError) as exc:
            raise PermanentError(
                "VALIDATION_ERROR", f"invalid raw.v1 frame: {value[:40]!r} is not a date: {exc}"
            ) from None


_any_decoder: Final = msgspec.json.Decoder()


def envelope_from_fields(fields: dict[str, str]) -> RawEnvelope:
    """Validate a ``ttlc:raw`` entry as ``frame_from_fields`` does, keeping ``data`` as text.

    Accepts and refuses exactly the entries ``frame_from_fields`` (without ``max_bytes``) does,
    with the same ``PermanentError`` reasons. ``data`` is decoded to prove it is the JSON object
    or string the normalizer will decode (a syntax-only ``msgspec.Raw`` check would let numbers
    beyond float range through), then left for the normalizer (``_validated``): no conversion of
    its contents, no re-encoding. An entry ``frame_from_fields`` validated lately is answered
    from what it found.
    """
    from ttlp.errors import PermanentError

    key = (*fields, *fields.values())
    known = _validated.pop(key, None)
    if known is not None:
        return known[0]
    data: Any = _MISSING
    text = fields.get("data")
    if text is not None:
        try:
            data = _any_decoder.decode(text)
        except msgspec.DecodeError as exc:
            raise PermanentError("PARSE_ERROR", f"data is not valid JSON: {exc}") from None
        except UnicodeEncodeError:
            raise _not_utf8("data") from None
        if not isinstance(data, dict | str):
            raise PermanentError(
                "VALIDATION_ERROR",
                f"invalid raw.v1 frame: data must be a JSON object or string, not "
                f"{type(data).__name__}",
            )
    try:
        envelope = msgspec.convert(fields, RawEnvelope, strict=False)
    except msgspec.ValidationError as exc:
        raise PermanentError("VALIDATION_ERROR", f"invalid raw.v1 frame: {exc}") from None
    _check_times(envelope.timestamp, envelope.ingested_at)
    _remember(_validated, RECENT_FRAMES, key, (envelope, data))
    return envelope
