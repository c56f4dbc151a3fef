"""Protobuf payloads of raw frames → the camelCase dict shape the normalizer reads (DESIGN §5.2).

The payload is parsed by the protobuf runtime's C implementation (upb) with descriptors that
``ttlp.tiktok.descriptors`` builds, at first use, from TikTokLiveProto's own field metadata;
then a small converter writes the dict exactly as TikTokLive's decode would
(``cls().parse(payload).to_dict()``, betterproto2's proto3 JSON mapping): camelCase keys, 64-bit
integers as decimal strings, 32-bit ones as ints, enums by their proto names (an unknown value
as its number), bytes as base64, fields at their default value left out, map keys as
betterproto2 writes them (int64 keys as strings, int32 keys as ints). ``tests/unit/test_decode.py``
proves the equality over generated messages of every mapped type.

``json_format.MessageToDict`` is not used: it is pure Python at half the speed of the converter
below, and it differs from betterproto2 on int32 map keys (strings, not ints), float fields
(shortest repr: 0.1, not 0.10000000149011612) and ``-0.0`` (written, not left out). Unknown
fields (TikTok adds fields all the time) are kept by the parser and ignored here, as
betterproto2 does; so is a known field arriving with another wire type (betterproto2 fails
validation on it). Two differences remain, both on input no protobuf encoder produces: a
non-repeated message field sent twice is merged (the protobuf rule; betterproto2 keeps the
last), and malformed bytes that betterproto2 lets through (a length running past the end, a
varint cut short, wire type 7, field number 0) are a PARSE_ERROR here.
"""

from __future__ import annotations

import base64
import binascii
import functools
import importlib
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from google.protobuf.message import DecodeError

from ttlp.errors import PermanentError
from ttlp.tiktok.descriptors import FLOAT_TYPES, INT64_TYPES, FieldSpec, Schema, build_schema

if TYPE_CHECKING:
    from google.protobuf.message import Message

Converter = Callable[[Any], Any]
# Per protobuf FieldDescriptor: (dict key, value converter or None, drop falsy values).
Plan = dict[Any, tuple[str, Converter | None, bool]]
# Per message Descriptor, per dict key: (attribute name, has presence, converter, drop falsy).
ViewPlan = dict[Any, dict[str, tuple[str, bool, Converter | None, bool]]]
_MISSING: Final[Any] = object()


@functools.cache
def _prepare_library() -> None:
    """Import TikTokLive's proto package once before parsing with betterproto2.

    TikTokLiveProto's pydantic dataclasses resolve some forward references (e.g.
    ``data.UserFansClub…`` inside ``FansClubMember``, which has a field named ``data``) only
    in the order TikTokLive's own import builds them; parsing without it fails on real user
    payloads. The library emits a DeprecationWarning for its websockets import: not ours.
    Only ``message_class`` callers (tests, benchmarks) need this; the fast path does not.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        importlib.import_module("TikTokLive.proto")


class _Decoder:
    """The built schema, the protobuf message class per raw type, and the dict converter."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.classes: dict[str, type[Message]] = {
            name: schema.message_classes[cls] for name, cls in schema.roots.items()
        }
        self.plan: Plan = {}
        self.views: ViewPlan = {}
        for cls, descriptor in schema.descriptors.items():
            view = self.views[descriptor] = {}
            for spec in schema.fields[cls]:
                field = descriptor.fields_by_number[spec.number]
                drop_falsy = _drops_falsy(spec)
                self.plan[field] = (spec.key, self._converter(spec), drop_falsy)
                view[spec.key] = (
                    field.name,
                    field.has_presence and not spec.repeated,
                    self._converter(spec, self.view),
                    drop_falsy,
                )

    def to_dict(self, message: Message) -> dict[str, Any]:
        plan = self.plan
        out: dict[str, Any] = {}
        for field, value in message.ListFields():
            key, convert, drop_falsy = plan[field]
            if drop_falsy and not value:
                continue
            out[key] = value if convert is None else convert(value)
        return out

    def view(self, message: Message) -> MessageView:
        return MessageView(message, self.views[message.DESCRIPTOR], self)

    def _converter(self, spec: FieldSpec, message: Converter | None = None) -> Converter | None:
        """How a field's value is written: ``message`` for message values (``to_dict``)."""
        if spec.map_types is not None:
            key_type, value_type = spec.map_types
            convert_value = self._single(value_type, spec.type_cls, message) or _same
            if key_type in INT64_TYPES:
                return lambda m: {str(k): convert_value(v) for k, v in m.items()}
            return lambda m: {k: convert_value(v) for k, v in m.items()}
        convert = self._single(spec.proto_type, spec.type_cls, message)
        if not spec.repeated:
            return convert
        if convert is None:
            return list
        item = convert
        return lambda values: [item(v) for v in values]

    def _single(
        self, proto_type: str, type_cls: type | None, message: Converter | None = None
    ) -> Converter | None:
        if proto_type == "message":
            return message or self.to_dict
        if proto_type == "enum":
            assert type_cls is not None
            names = self.schema.enums[type_cls]
            return lambda v: names.get(v, v)  # unknown values stay numbers, as in to_dict()
        if proto_type in INT64_TYPES:
            return str
        if proto_type == "bytes":
            return _b64encode
        if proto_type in FLOAT_TYPES:
            return _dump_float
        return None


class MessageView(Mapping[str, Any]):
    """A parsed message read as the dict ``to_dict`` would give, each field converted only when
    it is read (``get``, ``[]``); message fields are views too.

    The normalizer's mappings read a dozen of the ~37 fields (nested included) a TikTok
    message of the bundled session carries, and ``to_dict`` converts all of them: 15 µs of a
    34 µs normalized event. Read through a view, ``normalize_frame`` takes ~13 % less
    (30.6 → 26.6 µs over the bundled protobuf session, the best of 200 rounds).
    ``tests/unit/test_decode.py`` proves views equal to ``to_dict`` over generated messages
    of every type, and the normalizer's events equal with either. Whatever keeps the data
    (a RAW event) takes ``to_dict()``. A field is present exactly when ``to_dict`` writes it:
    one with presence (a message, ``optional``, a oneof member) when set, others when not
    their zero value (proto3 leaves those out; ``-0.0`` too, as ``to_dict`` drops it).
    """

    __slots__ = ("_decoder", "_fields", "_message")

    def __init__(
        self,
        message: Message,
        fields: dict[str, tuple[str, bool, Converter | None, bool]],
        decoder: _Decoder,
    ) -> None:
        self._message = message
        self._fields = fields
        self._decoder = decoder

    def get(self, key: str, default: Any = None) -> Any:
        spec = self._fields.get(key)
        if spec is None:
            return default
        name, presence, convert, drop_falsy = spec
        message = self._message
        if presence:
            if not message.HasField(name):
                return default
            value = getattr(message, name)
            if drop_falsy and not value:
                return default
        else:
            value = getattr(message, name)
            if not value:
                return default
        return value if convert is None else convert(value)

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __bool__(self) -> bool:
        """Whether any field is present, as ``get`` decides it, without converting one (a
        ``Mapping``'s truth is its ``len``, a whole ``to_dict``: ``data.get("gift") or {}``
        converted every gift message entire)."""
        message = self._message
        for name, presence, _, drop_falsy in self._fields.values():
            if presence:
                if message.HasField(name) and (not drop_falsy or getattr(message, name)):
                    return True
            elif getattr(message, name):
                return True
        return False

    def __repr__(self) -> str:
        return f"MessageView({self.to_dict()!r})"

    def to_dict(self) -> dict[str, Any]:
        """The whole message as ``decode_payload`` gives it (plain dicts all the way down)."""
        return self._decoder.to_dict(self._message)


def _drops_falsy(spec: FieldSpec) -> bool:
    """to_dict() leaves out a falsy scalar unless the field is ``optional``: the parser already
    drops zeros of plain proto3 fields, but not ``-0.0`` nor a oneof member set to zero."""
    if spec.optional or spec.repeated or spec.proto_type in ("message", "map"):
        return False
    return spec.proto_type in FLOAT_TYPES or spec.group is not None


def _same(value: Any) -> Any:
    return value


def _b64encode(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _dump_float(value: float) -> float | str:
    """proto3 JSON's special floats, as betterproto2 writes them."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


_lock = threading.Lock()
_decoder: _Decoder | None = None


def _get_decoder() -> _Decoder:
    global _decoder
    if _decoder is None:
        with _lock:
            if _decoder is None:
                _decoder = _Decoder(build_schema())
    return _decoder


def prepare() -> float:
    """Build the descriptors now (they are otherwise built at the first decode); seconds taken.

    Call it from a role's start-up so the first message does not pay for it (~0.7 s, most
    of it importing TikTokLiveProto; the descriptors themselves take ~50 ms).
    """
    return _get_decoder().schema.build_seconds


def schema() -> Schema:
    """The built schema (descriptor pool, classes...), building it if needed."""
    return _get_decoder().schema


def known_types() -> frozenset[str]:
    """Every raw type name with a schema (TikTokLiveProto's ``Webcast*`` message classes)."""
    return frozenset(_get_decoder().classes)


@functools.cache
def message_class(raw_type: str) -> type[Any] | None:
    """The TikTokLiveProto (betterproto2) class for a raw type name, ready to ``parse``.

    This is TikTokLive's own (slow) decoder: the reference the fast path is tested against.
    """
    cls = _get_decoder().schema.roots.get(raw_type)
    if cls is not None:
        _prepare_library()
    return cls


def b64decode(data: str) -> bytes:
    """Strict base64 (standard alphabet, padding required) → bytes, or PARSE_ERROR."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PermanentError("PARSE_ERROR", f"data is not valid base64: {exc}") from None


def parse_message(raw_type: str, payload: bytes) -> Message | None:
    """Parse ``payload`` into a protobuf (upb) message; ``None`` when the type has no schema.

    The fastest path (~10× faster than ``decode_payload``): read fields as attributes, with
    the snake_case names of TikTokLiveProto (``message.user.display_id``); ``to_dict`` turns
    it into ``decode_payload``'s dict later if needed. Unknown fields are not an error.
    """
    cls = (_decoder or _get_decoder()).classes.get(raw_type)
    if cls is None:
        return None
    try:
        return cls.FromString(payload)
    except DecodeError as exc:
        raise _parse_error(raw_type, exc) from None


def to_dict(message: Message) -> dict[str, Any]:
    """A message from ``parse_message`` → the dict TikTokLive's ``to_dict()`` would give."""
    return (_decoder or _get_decoder()).to_dict(message)


def decode_view(raw_type: str, payload: bytes) -> MessageView | None:
    """``decode_payload`` read lazily: the same fields, converted as they are read
    (``MessageView``); ``None`` without a schema, ``PARSE_ERROR`` as ``decode_payload``."""
    decoder = _decoder or _get_decoder()
    message = parse_message(raw_type, payload)
    return None if message is None else decoder.view(message)


def decode_payload(raw_type: str, payload: bytes) -> dict[str, Any] | None:
    """Decode protobuf ``payload`` of ``raw_type``; ``None`` when the type has no known schema.

    Raises ``PermanentError("PARSE_ERROR")`` when the bytes are not a valid message (garbage,
    truncated, invalid UTF-8 in a string field).
    """
    message = parse_message(raw_type, payload)
    return None if message is None else (_decoder or _get_decoder()).to_dict(message)


def _parse_error(raw_type: str, exc: DecodeError) -> PermanentError:
    # upb says "Error parsing message with type '<descriptor name>': <what>"; keep the what.
    what = str(exc).rsplit(": ", 1)[-1]
    return PermanentError("PARSE_ERROR", f"{raw_type} payload is not valid protobuf: {what}")
