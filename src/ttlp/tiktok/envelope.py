"""The envelopes TikTok wraps messages in, decoded with the protobuf C runtime.

Both providers receive the same nesting: a ``WebcastPushFrame`` (WebSocket frame) whose payload,
gzip'd or not, is a ``ProtoMessageFetchResult`` holding ``BaseProtoMessage``s (method + payload
bytes + msgId). The messages themselves stay undecoded here: ingest publishes their bytes and
the normalizer decodes them. Only their ``common`` header is read (msgId, create time) so a frame
gets TikTok's seqNo and timestamp.

The descriptors below declare just the fields ingest needs (numbers from TikTokLiveProto, which
mirrors TikTok's schema); every other field is skipped by the parser as unknown.

Two frames go the other way, built here for every provider that speaks the push protocol
itself (``ack_frame``, ``heartbeat_frame``): the acknowledgement of a fetch result that says
``needAck`` and the periodic heartbeat, as TikTokLive's and TikTok-Live-Connector's WebSocket
clients send them.
"""

from __future__ import annotations

import functools
import gzip
import zlib
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from ttlp.errors import PermanentError
from ttlp.tiktok.providers.base import Message

GZIP_MAGIC: Final = b"\x1f\x8b"
_F = descriptor_pb2.FieldDescriptorProto

# (message name, [(field name, number, type, label, type name)])
_MESSAGES: Final = (
    (
        "HeaderEntry",
        [("key", 1, _F.TYPE_STRING, None, None), ("value", 2, _F.TYPE_STRING, None, None)],
    ),
    (
        "PushFrame",
        [
            ("seq_id", 1, _F.TYPE_INT64, None, None),
            ("log_id", 2, _F.TYPE_INT64, None, None),
            ("service", 3, _F.TYPE_INT64, None, None),
            ("method", 4, _F.TYPE_INT64, None, None),
            ("headers", 5, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".ttlp.envelope.HeaderEntry"),
            ("payload_encoding", 6, _F.TYPE_STRING, None, None),
            ("payload_type", 7, _F.TYPE_STRING, None, None),
            ("payload", 8, _F.TYPE_BYTES, None, None),
        ],
    ),
    (
        "BaseMessage",
        [
            ("method", 1, _F.TYPE_STRING, None, None),
            ("payload", 2, _F.TYPE_BYTES, None, None),
            ("msg_id", 3, _F.TYPE_INT64, None, None),
            ("msg_type", 4, _F.TYPE_INT32, None, None),
        ],
    ),
    (
        "FetchResult",
        [
            ("messages", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".ttlp.envelope.BaseMessage"),
            ("cursor", 2, _F.TYPE_STRING, None, None),
            ("fetch_interval", 3, _F.TYPE_INT64, None, None),
            ("now", 4, _F.TYPE_INT64, None, None),
            ("internal_ext", 5, _F.TYPE_STRING, None, None),
            ("heartbeat_duration", 8, _F.TYPE_INT64, None, None),
            ("need_ack", 9, _F.TYPE_BOOL, None, None),
            ("push_server", 10, _F.TYPE_STRING, None, None),
        ],
    ),
    (
        "Common",
        [
            ("method", 1, _F.TYPE_STRING, None, None),
            ("msg_id", 2, _F.TYPE_INT64, None, None),
            ("room_id", 3, _F.TYPE_INT64, None, None),
            ("create_time", 4, _F.TYPE_INT64, None, None),
        ],
    ),
    ("Header", [("common", 1, _F.TYPE_MESSAGE, None, ".ttlp.envelope.Common")]),
    (
        "HeartBeat",
        [
            ("room_id", 1, _F.TYPE_INT64, None, None),
            ("send_packet_seq_id", 2, _F.TYPE_INT64, None, None),
        ],
    ),
)


@functools.cache
def _classes() -> dict[str, Any]:
    """Build the envelope message classes once (first use, not import)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="ttlp/envelope.proto", package="ttlp.envelope", syntax="proto3"
    )
    for name, fields in _MESSAGES:
        message = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = message.field.add(
                name=field_name, number=number, type=kind, label=label or _F.LABEL_OPTIONAL
            )
            if type_name:
                field.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"ttlp.envelope.{name}"))
        for name, _ in _MESSAGES
    }


@dataclass(frozen=True)
class PushFrame:
    seq_id: int
    log_id: int
    payload_type: str
    payload: bytes
    headers: dict[str, str]


def parse_push_frame(data: bytes) -> PushFrame:
    """A WebSocket binary frame → its push frame, or ``PermanentError(PARSE_ERROR)``."""
    frame = _parse("PushFrame", data)
    return PushFrame(
        seq_id=frame.seq_id,
        log_id=frame.log_id,
        payload_type=frame.payload_type,
        payload=frame.payload,
        headers={h.key: h.value for h in frame.headers},
    )


@dataclass(frozen=True)
class FetchResult:
    messages: list[Message]
    cursor: str
    internal_ext: str
    need_ack: bool
    push_server: str
    fetch_interval_ms: int
    heartbeat_ms: int


def parse_fetch_result(payload: bytes) -> FetchResult:
    """A (possibly gzip'd) ProtoMessageFetchResult → its messages with TikTok's ids and times."""
    result = _parse("FetchResult", gunzip(payload))
    messages = []
    for m in result.messages:
        msg_id, created = message_header(m.payload)
        messages.append(Message(m.method, m.payload, m.msg_id or msg_id, created))
    return FetchResult(
        messages=messages,
        cursor=result.cursor,
        internal_ext=result.internal_ext,
        need_ack=result.need_ack,
        push_server=result.push_server,
        fetch_interval_ms=result.fetch_interval,
        heartbeat_ms=result.heartbeat_duration,
    )


def message_header(payload: bytes) -> tuple[int, int | None]:
    """(msgId, create time in ms or None) from a message's ``common`` (0, None if absent)."""
    try:
        header = _classes()["Header"].FromString(payload)
    except DecodeError:
        return 0, None  # the normalizer will dead-letter the payload with the real reason
    common = header.common
    return common.msg_id, common.create_time or None


ACK: Final = "ack"
HEARTBEAT: Final = "hb"
EMPTY_EXT: Final = "-"
"""The ack payload when a fetch result has no internalExt (TikTokLive sends this)."""


def ack_frame(log_id: int, internal_ext: str) -> bytes:
    """The push frame acknowledging a fetch result that says ``needAck``.

    payloadType ``ack``, ``logId`` = the received push frame's logId, payload = the fetch
    result's ``internalExt`` as UTF-8 bytes (``-`` when it has none): what TikTokLive
    (``send_ack``) and TikTok-Live-Connector (``sendAck``, which skips such a result) send.
    """
    frame = _classes()["PushFrame"](
        log_id=log_id,
        payload_encoding="pb",
        payload_type=ACK,
        payload=(internal_ext or EMPTY_EXT).encode(),
    )
    return bytes(frame.SerializeToString())


def heartbeat_frame(room_id: int | str, seq_id: int = 0) -> bytes:
    """The keep-alive push frame: payloadType ``hb`` around ``HeartBeatMessage{roomId,
    sendPacketSeqId}``, as TikTokLive's ping loop and TikTok-Live-Connector's
    ``sendHeartbeat`` build it (``seq_id`` counts the connection's heartbeats from 1)."""
    heartbeat = _classes()["HeartBeat"](room_id=int(room_id), send_packet_seq_id=seq_id)
    frame = _classes()["PushFrame"](
        payload_encoding="pb", payload_type=HEARTBEAT, payload=heartbeat.SerializeToString()
    )
    return bytes(frame.SerializeToString())


def gunzip(data: bytes) -> bytes:
    """Decompress gzip'd bytes (TikTok and Euler gzip fetch results); others pass through."""
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise PermanentError("PARSE_ERROR", f"payload is not valid gzip: {exc}") from None


def _parse(name: str, data: bytes) -> Any:
    try:
        return _classes()[name].FromString(data)
    except DecodeError as exc:
        raise PermanentError("PARSE_ERROR", f"{name} is not valid protobuf: {exc}") from None
