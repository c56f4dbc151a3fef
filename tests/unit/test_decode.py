"""The fast decoder (``ttlp.tiktok.decode``) against TikTokLive's own decode (DESIGN §5.2).

The reference is TikTokLive's own decode: ``cls().parse(payload).to_dict()`` with the
TikTokLiveProto class its client parses each message type with (its event class's base).
Messages are generated with hypothesis from betterproto2's own metadata (nested classes
resolved by betterproto2, not by the code under test), filled with realistic values: user
ids, handles, emoji nicknames, chat texts, display keys, gift fields, counts, nested lists,
maps and enums (unknown values too).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.tiktoklive import importing_tiktoklive
from ttlp.contracts.events import RawFrame, encode
from ttlp.errors import PermanentError
from ttlp.tiktok import decode
from ttlp.tiktok.normalize import normalize_frame

with importing_tiktoklive():
    import TikTokLive.proto as P
    from TikTokLive.events.proto_events import EVENT_MAPPINGS
    from TikTokLiveProto.v3.webcast.model.base import emoji
    from TikTokLiveProto.v3.webcast.model.message import common as message_common

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MAPPED_TYPES = (
    "WebcastChatMessage",
    "WebcastGiftMessage",
    "WebcastLikeMessage",
    "WebcastMemberMessage",
    "WebcastSocialMessage",
    "WebcastEmoteChatMessage",
    "WebcastLinkMicBattle",
    "WebcastLinkMicArmies",
    "WebcastBarrageMessage",
    "WebcastSubNotifyMessage",
    "WebcastRoomUserSeqMessage",
    "WebcastControlMessage",
)
RAW_TYPES = (
    "WebcastHourlyRankRewardMessage",
    "WebcastPollMessage",
    "WebcastRankUpdateMessage",
    "WebcastRoomMessage",
    "WebcastEnvelopeMessage",
    "WebcastGoalUpdateMessage",
    "WebcastInRoomBannerMessage",
    "WebcastGiftBroadcastMessage",
    "WebcastLinkMicMethod",
)
DIFFERENTIAL = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def reference_class(raw_type: str) -> Any:
    """The TikTokLiveProto class TikTokLive parses ``raw_type`` with (its event class's base)."""
    event_cls = EVENT_MAPPINGS.get(raw_type)
    if event_cls is None:
        return decode.message_class(raw_type)
    return next(cls for cls in event_cls.__mro__ if cls.__module__.startswith("TikTokLiveProto"))


def reference_decode(raw_type: str, payload: bytes) -> dict[str, Any]:
    """TikTokLive's decode of one message: ``cls().parse(payload).to_dict()``.

    With the TikTokLiveProto class, not the event subclass: an event class's ``to_dict()``
    fails (NameError in ``ExtendedUser``) whenever its metadata is built before its parent's.
    """
    result: dict[str, Any] = reference_class(raw_type)().parse(payload).to_dict()
    return result


# -- realistic values ----------------------------------------------------------------------
USER_IDS = (7012345678901234501, 6812345678901234567, 7441234567890123456, 107955, 1)
HANDLES = ("luna.beats", "zoe.petals", "akhmed_kzn", "xiaoming88", "night.owl", "user8231")
NICKNAMES = ("Luna 🎧", "Zoë 🌸", "Ахмед", "小明", "night owl 🦉", "👩‍👩‍👧‍👦 fam", "O'Brien")
TEXTS = (
    "hello everyone 👋",
    "first time here! 🇧🇷🇧🇷",
    "<img src=x onerror=alert(1)>",
    "line\nbreak and\ttab",
    "مرحبا بالجميع",
    "[wow] [laugh]",
    "",
)
DISPLAY_KEYS = (
    "pm_main_follow_message_viewer_2",
    "pm_mt_guidance_share",
    "pm_mt_subscribe_message_viewer",
    "pm_mt_live_ranklist",
    "live_room_enter_toast",
)
URLS = (
    "https://p16-sign-va.tiktokcdn.com/tos-maliva-avt-0068/7012345678901234501~tplv.webp",
    "https://p19-webcast.tiktokcdn.com/img/maliva/webcast-va/eba3a9bb85c33e017f3648eaf88d7189~tplv-obj.png",
)
GIFT_NAMES = ("Rose", "Galaxy", "Lion", "Money Gun", "TikTok Universe")

INT64 = st.one_of(
    st.sampled_from(USER_IDS),
    st.integers(0, 100_000),
    st.integers(-(2**63), 2**63 - 1),
)
UINT64 = st.one_of(st.integers(0, 100_000), st.integers(0, 2**64 - 1))
INT32 = st.one_of(st.integers(0, 5_000), st.integers(-(2**31), 2**31 - 1))
UINT32 = st.one_of(st.integers(0, 5_000), st.integers(0, 2**32 - 1))
ANY_TEXT = st.text(max_size=24)
SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "int64": INT64,
    "sint64": INT64,
    "sfixed64": INT64,
    "uint64": UINT64,
    "fixed64": UINT64,
    "int32": INT32,
    "sint32": INT32,
    "sfixed32": INT32,
    "uint32": UINT32,
    "fixed32": UINT32,
    "bool": st.booleans(),
    "bytes": st.binary(max_size=12),
    "double": st.floats(allow_subnormal=False),
    "float": st.floats(width=32),
    "string": st.one_of(st.sampled_from(TEXTS), ANY_TEXT),
}

# Fields a realistic message nearly always has (the normalizer reads them): drawn with a high
# probability, whereas other fields of these wide classes are drawn only now and then.
LIKELY = {
    "User": {
        "id",
        "nickname",
        "display_id",
        "avatar_thumb",
        "follow_info",
        "fans_club",
        "user_attr",
        "is_subscribe",
    },
    "CommonMessageData": {"method", "msg_id", "room_id", "create_time", "display_text"},
    "Text": {"key", "default_pattern", "pieces"},
    "Gift": {"id", "name", "diamond_count", "type", "image", "combo"},
    "ImageModel": {"url_list", "uri"},
    "WebcastChatMessage": {"common", "user", "content", "emotes", "content_language"},
    "WebcastGiftMessage": {"common", "user", "gift_id", "repeat_count", "repeat_end", "gift"},
    "WebcastLikeMessage": {"common", "user", "count", "total"},
    "WebcastMemberMessage": {"common", "user", "member_count", "action"},
    "WebcastSocialMessage": {"common", "user", "action", "follow_count"},
    "WebcastRoomUserSeqMessage": {"common", "ranks", "total", "total_user"},
    "WebcastControlMessage": {"common", "action", "tips"},
    "WebcastLinkMicBattle": {"common", "battle_id", "action", "battle_result", "anchors_info"},
    "WebcastLinkMicArmies": {"common", "battle_id", "armies"},
}
MAX_DEPTH = 4  # root → user → fans_club → data → …: deeper message fields are left unset


def string_values(field_name: str) -> st.SearchStrategy[str]:
    if field_name in ("nickname", "nick_name"):
        return st.one_of(st.sampled_from(NICKNAMES), ANY_TEXT)
    if field_name in ("display_id", "unique_id", "sec_uid"):
        return st.sampled_from(HANDLES)
    if field_name in ("key", "display_type"):
        return st.sampled_from(DISPLAY_KEYS)
    if field_name in ("content", "text", "comment", "default_pattern", "tips"):
        return st.one_of(st.sampled_from(TEXTS), ANY_TEXT)
    if "url" in field_name:
        return st.sampled_from(URLS)
    if field_name == "name":
        return st.sampled_from(GIFT_NAMES)
    if field_name == "method":
        return st.sampled_from(MAPPED_TYPES)
    return SCALARS["string"]


def enum_values(enum_cls: Any) -> st.SearchStrategy[Any]:
    # Unknown numbers too: TikTok adds enum values before the library knows them.
    return st.one_of(st.sampled_from(list(enum_cls)), st.sampled_from([enum_cls(77), enum_cls(-1)]))


def single_values(name: str, proto_type: str, value_cls: Any, depth: int) -> st.SearchStrategy[Any]:
    if proto_type == "message":
        return messages(value_cls, depth + 1)
    if proto_type == "enum":
        return enum_values(value_cls)
    if proto_type == "string":
        return string_values(name)
    if proto_type == "int64" and (name.endswith("id") or name == "id"):
        return st.one_of(st.sampled_from(USER_IDS), INT64)
    return SCALARS[proto_type]


def field_values(cls: Any, field: dataclasses.Field[Any], depth: int) -> st.SearchStrategy[Any]:
    meta = field.metadata["betterproto"]
    resolved = cls._betterproto.cls_by_field  # betterproto2's own resolution of nested types
    if meta.proto_type == "map":
        key_type, value_type = meta.map_meta[0].proto_type, meta.map_meta[1].proto_type
        keys = SCALARS[key_type] if key_type != "string" else string_values(field.name)
        values = single_values(field.name, value_type, resolved[f"{field.name}.value"], depth)
        return st.dictionaries(keys, values, max_size=3)
    values = single_values(field.name, meta.proto_type, resolved[field.name], depth)
    if meta.repeated:
        return st.lists(values, max_size=3)
    return values


@st.composite
def messages(draw: st.DrawFn, cls: Any, depth: int = 0) -> Any:
    """A betterproto2 message of ``cls`` with a random, realistic subset of fields set."""
    likely = LIKELY.get(cls.__name__, set())
    kwargs = {}
    for field in dataclasses.fields(cls):
        is_message = field.metadata["betterproto"].proto_type == "message"
        if is_message and depth >= MAX_DEPTH:
            continue
        percent = 90 if field.name in likely else (35 if depth == 0 else 8)
        if draw(st.integers(0, 99)) >= 100 - percent:  # shrinks towards "not set"
            kwargs[field.name] = draw(field_values(cls, field, depth))
    return cls(**kwargs)


def assert_decodes_like_tiktoklive(raw_type: str, payload: bytes) -> dict[str, Any]:
    fast = decode.decode_payload(raw_type, payload)
    assert fast == reference_decode(raw_type, payload)
    assert fast is not None
    return fast


# -- the schema ------------------------------------------------------------------------------
def test_decoder_parses_with_the_upb_c_implementation() -> None:
    from google.protobuf.internal import api_implementation

    decode.prepare()
    assert api_implementation.Type() == "upb"


def test_every_type_tiktoklive_maps_has_a_schema_built_from_its_class() -> None:
    schema = decode.schema()
    assert set(EVENT_MAPPINGS) <= decode.known_types()
    for raw_type, event_cls in EVENT_MAPPINGS.items():
        assert schema.roots[raw_type] in event_cls.__mro__


def test_nested_classes_resolve_as_betterproto2_resolves_them() -> None:
    schema = decode.schema()
    for cls, specs in schema.fields.items():
        resolved = cls._betterproto.cls_by_field
        for spec in specs:
            if spec.type_cls is not None:
                suffix = ".value" if spec.map_types else ""
                assert resolved[spec.name + suffix] is spec.type_cls, (cls, spec.name)


def test_type_without_schema_decodes_to_none() -> None:
    assert decode.decode_payload("WebcastSomethingNewMessage", b"\x08\x01") is None
    assert decode.decode_payload("ControlEvent.CONNECTED", b"") is None
    assert decode.parse_message("User", b"") is None  # only TikTok's message types


# -- differential: generated messages -----------------------------------------------------
@pytest.mark.parametrize("raw_type", MAPPED_TYPES + RAW_TYPES)
@DIFFERENTIAL
@given(drawn=st.data())
def test_generated_message_decodes_like_tiktoklive(raw_type: str, drawn: st.DataObject) -> None:
    message = drawn.draw(messages(reference_class(raw_type)), label=raw_type)
    assert_decodes_like_tiktoklive(raw_type, bytes(message))


@settings(DIFFERENTIAL, max_examples=40)
@given(drawn=st.data())
def test_generated_message_of_any_schema_type_decodes_like_tiktoklive(
    drawn: st.DataObject,
) -> None:
    raw_type = drawn.draw(st.sampled_from(sorted(decode.known_types())), label="raw_type")
    message = drawn.draw(messages(reference_class(raw_type)), label=raw_type)
    assert_decodes_like_tiktoklive(raw_type, bytes(message))


# -- differential: hand-built messages -----------------------------------------------------
def user(uid: int, handle: str, nickname: str) -> Any:
    return P.User(
        id=uid,
        nickname=nickname,
        display_id=handle,
        avatar_thumb=P.ImageModel(url_list=list(URLS), uri="tos-maliva-avt-0068/x"),
        follow_info=P.FollowInfo(follow_status=2, follower_count=771),
        fans_club=P.FansClubMember(
            data=P.FansClubData(club_name="Luna Fam", level=12),
            prefer_data={1: P.FansClubData(level=3), -5: P.FansClubData()},  # int32 keys
        ),
        user_attr=P.UserAttr(is_admin=True),
        is_subscribe=True,
    )


ZOE = user(7012345678901234501, "zoe.petals", "Zoë 🌸")


def common_data(raw_type: str, key: str = "") -> Any:
    pattern = "{0:user} followed the LIVE creator"
    display = message_common.Text(key=key, default_pattern=pattern) if key else None
    return P.CommonMessageData(
        method=raw_type,
        msg_id=7441000000001048574,
        room_id=7441234567890123456,
        create_time=1732217400770,
        display_text=display,
    )


HAND_BUILT = {
    "chat": P.WebcastChatMessage(
        common=common_data("WebcastChatMessage"),
        user=ZOE,
        content="hi 🌸 <b>luna</b>",
        content_language="en",
        emotes=[emoji.EmoteWithIndex(index=3, emote=emoji.EmoteModel(emote_id="7093"))],
    ),
    "gift": P.WebcastGiftMessage(
        common=common_data("WebcastGiftMessage"),
        user=ZOE,
        gift_id=5655,
        repeat_count=5,
        repeat_end=1,
        gift=P.Gift(id=5655, name="Rose", diamond_count=1, type=1, combo=True),
    ),
    "social": P.WebcastSocialMessage(
        common=common_data("WebcastSocialMessage", "pm_main_follow_message_viewer_2"),
        user=ZOE,
        action=1,
    ),
    "member": P.WebcastMemberMessage(
        user=ZOE, member_count=1524, action=P.MemberMessageAction.JOINED
    ),
    "control": P.WebcastControlMessage(action=P.ControlAction.STREAM_ENDED, tips="bye"),
    "empty": P.WebcastLikeMessage(),
    "empty nested": P.WebcastLikeMessage(user=P.User()),
    "negative numbers": P.WebcastLikeMessage(count=-3, total=-(2**63)),
}


@pytest.mark.parametrize("message", HAND_BUILT.values(), ids=HAND_BUILT.keys())
def test_hand_built_message_decodes_like_tiktoklive(message: Any) -> None:
    assert_decodes_like_tiktoklive(type(message).__name__, bytes(message))


def test_decoded_dict_has_proto3_json_shape() -> None:
    decoded = assert_decodes_like_tiktoklive("WebcastMemberMessage", bytes(HAND_BUILT["member"]))
    assert decoded["user"]["id"] == "7012345678901234501"  # int64 → string
    assert decoded["user"]["displayId"] == "zoe.petals"  # camelCase
    assert decoded["memberCount"] == 1524  # int32 → int
    assert decoded["action"] == "MEMBER_MESSAGE_ACTION_JOINED"  # enum → proto name
    assert decoded["user"]["fansClub"]["preferData"] == {1: {"level": 3}, -5: {}}
    control = decode.decode_payload("WebcastControlMessage", bytes(HAND_BUILT["control"]))
    assert control == {"action": "CONTROL_ACTION_STREAM_ENDED", "tips": "bye"}


def test_unknown_enum_value_decodes_to_its_number() -> None:
    message = P.WebcastControlMessage(action=P.ControlAction(42))
    assert assert_decodes_like_tiktoklive("WebcastControlMessage", bytes(message)) == {"action": 42}


# -- fixtures --------------------------------------------------------------------------------
def fixture_frames() -> list[dict[str, Any]]:
    lines = (FIXTURES / "raw-frames.ndjson").read_text(encoding="utf-8").splitlines()
    return [frame for frame in map(json.loads, lines) if frame["type"].startswith("Webcast")]


def test_fixture_frames_with_protobuf_data_decode_like_tiktoklive() -> None:
    frames = [frame for frame in fixture_frames() if isinstance(frame["data"], str)]
    assert frames
    for frame in frames:
        assert_decodes_like_tiktoklive(frame["type"], base64.b64decode(frame["data"]))


def test_fixture_frames_with_json_data_decode_to_the_same_dict_from_protobuf() -> None:
    frames = [frame for frame in fixture_frames() if isinstance(frame["data"], dict)]
    assert frames
    for frame in frames:
        payload = bytes(reference_class(frame["type"]).from_dict(frame["data"]))
        assert assert_decodes_like_tiktoklive(frame["type"], payload) == frame["data"]


# -- bad and unexpected input ----------------------------------------------------------------
CHAT = bytes(HAND_BUILT["chat"])
GARBAGE = {
    "truncated": CHAT[:-3],
    "length past the end": b"\x1a\x10abc",
    "invalid wire type": b"\x0f",
    "field number zero": b"\x00\x01",
    "endless varint": b"\x08" + b"\xff" * 11,
    "all ones": b"\xff\xff\xff\xff",
    "bad utf-8 in a string": b"\x1a\x02\xff\xfe",
    "bad utf-8 in a nested string": b"\x12\x04\x1a\x02\xc3\x28",
}


@pytest.mark.parametrize("payload", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_bytes_raise_parse_error(payload: bytes) -> None:
    with pytest.raises(PermanentError) as caught:
        decode.decode_payload("WebcastChatMessage", payload)
    assert caught.value.reason == "PARSE_ERROR"
    assert "WebcastChatMessage" in str(caught.value)


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def unknown_fields() -> bytes:
    """Fields no schema knows, one of each wire type (numbers TikTok might add)."""
    return (
        varint(9999 << 3 | 0) + varint(42)
        + varint(10000 << 3 | 1) + b"\x01" * 8
        + varint(10001 << 3 | 2) + varint(5) + b"hello"
        + varint(10002 << 3 | 5) + b"\x02" * 4
    )  # fmt: skip


def test_unknown_fields_are_ignored() -> None:
    extra = unknown_fields()
    chat = HAND_BUILT["chat"]
    without_user = bytes(dataclasses.replace(chat, user=None))
    user_with_extra = bytes(chat.user) + extra
    payload = extra + without_user + varint(2 << 3 | 2) + varint(len(user_with_extra))
    decoded = assert_decodes_like_tiktoklive("WebcastChatMessage", payload + user_with_extra)
    assert decoded == decode.decode_payload("WebcastChatMessage", CHAT)


def test_singular_message_field_sent_twice_is_merged_as_protobuf_specifies() -> None:
    # A known difference, on input no protobuf encoder produces: betterproto2 keeps the last
    # occurrence of a non-repeated message field, the protobuf runtime merges them.
    first = bytes(P.WebcastLikeMessage(user=P.User(nickname="first", display_id="zoe.petals")))
    second = bytes(P.WebcastLikeMessage(user=P.User(nickname="second")))
    decoded = decode.decode_payload("WebcastLikeMessage", first + second)
    assert decoded == {"user": {"nickname": "second", "displayId": "zoe.petals"}}
    assert reference_decode("WebcastLikeMessage", first + second) == {
        "user": {"nickname": "second"}
    }


SPECIAL_FLOATS = {
    "negative zero": b"\x00\x00\x00\x80",  # on the wire, yet falsy: to_dict() leaves it out
    "half": b"\x00\x00\x00\x3f",
    "not a number": b"\x00\x00\xc0\x7f",
    "infinity": b"\x00\x00\x80\x7f",
    "minus infinity": b"\x00\x00\x80\xff",
    "float32 rounding": b"\xcd\xcc\xcc\x3d",  # 0.1f, which is 0.10000000149… as a double
}


@pytest.mark.parametrize("value", SPECIAL_FLOATS.values(), ids=SPECIAL_FLOATS.keys())
def test_special_float_values_decode_like_tiktoklive(value: bytes) -> None:
    # CommentLabelScore.score (field 2) is a float, nested deep inside chat messages.
    from google.protobuf import message_factory

    schema = decode.schema()
    label_score = next(cls for cls in schema.fields if cls.__name__ == "CommentLabelScore")
    message_cls = message_factory.GetMessageClass(schema.descriptors[label_score])
    payload = b"\x15" + value
    expected = label_score().parse(payload).to_dict()
    assert decode.to_dict(message_cls.FromString(payload)) == expected


def test_parse_message_gives_attribute_access_with_library_field_names() -> None:
    message = decode.parse_message("WebcastChatMessage", bytes(HAND_BUILT["chat"]))
    assert message is not None
    assert message.user.display_id == "zoe.petals"  # type: ignore[attr-defined]
    assert message.user.id == 7012345678901234501  # type: ignore[attr-defined]
    assert message.content == "hi 🌸 <b>luna</b>"  # type: ignore[attr-defined]


# -- the lazy view the normalizer reads (MessageView) ------------------------------------------
def assert_reads_like(view: Any, expected: Any, path: str = "") -> None:
    """Every key of the schema, present or not, reads the same from the view as from the dict
    (``get`` and ``in``), nested views included; keys, order and length agree too."""
    if isinstance(view, decode.MessageView):
        assert isinstance(expected, dict), path
        assert list(view) == list(expected), path
        assert len(view) == len(expected), path
        assert bool(view) == bool(expected), path
        assert view.to_dict() == expected, path
        for key in view._fields:
            assert (key in view) == (key in expected), f"{path}.{key}"
            assert_reads_like(view.get(key), expected.get(key), f"{path}.{key}")
    elif isinstance(view, list):
        assert isinstance(expected, list), path
        assert len(view) == len(expected), path
        for i, (item, want) in enumerate(zip(view, expected, strict=True)):
            assert_reads_like(item, want, f"{path}[{i}]")
    elif isinstance(view, dict):
        assert isinstance(expected, dict), path
        assert list(view) == list(expected), path
        for key, item in view.items():
            assert_reads_like(item, expected[key], f"{path}[{key!r}]")
    else:
        assert view == expected, path
        assert type(view) is type(expected), path


def normalized(raw_type: str, data: Any) -> Any:
    """The event (encoded) or the refusal's reason and message for a frame with ``data``."""
    frame = RawFrame(
        schema_version="raw.v1",
        stream_id="7312345678901234567",
        session_id="9d2e4b71-0c3a-4f58-8e16-5a7b9c0d1e2f",
        source="live",
        type=raw_type,
        seq_no=7,
        timestamp="2024-11-21T19:30:00.250Z",
        ingested_at="2024-11-21T19:30:00.253Z",
        data=data,
    )
    try:
        return encode(normalize_frame(frame))
    except PermanentError as exc:
        return (exc.reason, str(exc))


@pytest.mark.parametrize("raw_type", MAPPED_TYPES + RAW_TYPES)
@DIFFERENTIAL
@given(drawn=st.data())
def test_a_view_reads_every_field_as_the_decoded_dict_has_it(
    raw_type: str, drawn: st.DataObject
) -> None:
    payload = bytes(drawn.draw(messages(reference_class(raw_type)), label=raw_type))
    view = decode.decode_view(raw_type, payload)
    assert_reads_like(view, decode.decode_payload(raw_type, payload))


@pytest.mark.parametrize("raw_type", MAPPED_TYPES + RAW_TYPES)
@DIFFERENTIAL
@given(drawn=st.data())
def test_the_normalizer_reading_views_makes_the_events_it_makes_of_decoded_dicts(
    raw_type: str, drawn: st.DataObject
) -> None:
    """Protobuf data (read through a view) and the same message as a JSON object (the dict
    TikTokLive gives) normalize to the same event, or are refused alike."""
    payload = bytes(drawn.draw(messages(reference_class(raw_type)), label=raw_type))
    as_json = decode.decode_payload(raw_type, payload)
    assert normalized(raw_type, base64.b64encode(payload).decode()) == normalized(raw_type, as_json)


def test_a_view_of_hand_built_messages_and_the_fixture_reads_like_their_dicts() -> None:
    for message in HAND_BUILT.values():
        raw_type, payload = type(message).__name__, bytes(message)
        assert_reads_like(
            decode.decode_view(raw_type, payload), decode.decode_payload(raw_type, payload)
        )
    for frame in fixture_frames():
        if isinstance(frame["data"], str) and frame["type"] in decode.known_types():
            payload = base64.b64decode(frame["data"])
            view = decode.decode_view(frame["type"], payload)
            assert_reads_like(view, decode.decode_payload(frame["type"], payload))
    with pytest.raises(KeyError):
        decode.decode_view("WebcastChatMessage", b"")["content"]  # type: ignore[index]
