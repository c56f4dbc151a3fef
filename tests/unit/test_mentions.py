"""Finding one TikTok user in what TikTok sent (``ttlp.db.erasure.UserMatcher``) and in an
archived frame, whatever form it is in (``ttlp.tiktok.mentions.frame_names_user``): what GDPR
erasure decides each frame and each event document by."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.support.gdpr import AKHMED, ZOE, gift_to_akhmed_bytes
from ttlp.contracts.mapping import PACKED_KEY, STREAK_CLOSED_KEY, STREAK_TIMEOUT_TYPE
from ttlp.db.erasure import UserMatcher
from ttlp.tiktok.mentions import frame_names_user

XIAOMING = "7012345678901234503"


def names(user_id: str, value: Any) -> bool:
    return UserMatcher(user_id).in_value(value)


@pytest.mark.parametrize(
    "value",
    [
        {"user": {"id": AKHMED, "nickname": "A"}},  # a user object, proto3 JSON's string
        {"user": {"id": int(AKHMED)}},  # ... or a number (some relays)
        {"data": {"ranks": [{"user": {"idStr": AKHMED}}]}},  # deep in a list
        {"participants": [{"userId": AKHMED, "score": 3}]},  # a BATTLE payload
        {"toUserId": AKHMED},
        {"anchorIds": [ZOE, AKHMED]},
        {"battleResult": {AKHMED: {"score": "12"}}},  # a map keyed by user id
        {"scores": {int(AKHMED): 12}},  # an int64-keyed map as the decoder gives it
    ],
)
def test_the_user_is_found_in_an_id_field_or_a_map_key(value: Any) -> None:
    assert names(AKHMED, value)
    assert not names(XIAOMING, value)


@pytest.mark.parametrize(
    "value",
    [
        {"repeatCount": 99, "user": {"id": "1001"}},  # a count equal to the id is not the user
        {"content": "my id is 99, add me"},  # text quoting it is not either
        {"common": {"createTime": "99"}},
        {"scores": {99: 1}},  # a short id is not looked for among map keys
    ],
)
def test_numbers_that_are_not_ids_do_not_count(value: Any) -> None:
    assert not names("99", value)


def test_protobuf_bytes_no_schema_read_are_searched_for_a_long_id() -> None:
    packed = base64.b64encode(gift_to_akhmed_bytes()).decode()
    assert names(AKHMED, {"rawType": "WebcastUnknownMessage", "data": {PACKED_KEY: packed}})
    assert not names(XIAOMING, {"data": {PACKED_KEY: packed}})


GIFT_B64 = base64.b64encode(gift_to_akhmed_bytes()).decode()


@pytest.mark.parametrize(
    ("raw_type", "data"),
    [
        pytest.param("WebcastGiftMessage", GIFT_B64, id="protobuf-to-user"),
        pytest.param("WebcastNotInTheSchemaMessage", GIFT_B64, id="protobuf-no-schema"),
        pytest.param(
            "WebcastGiftMessage",
            {PACKED_KEY: GIFT_B64, STREAK_CLOSED_KEY: True},
            id="protobuf-beside-ingest-notes",
        ),
        pytest.param(
            STREAK_TIMEOUT_TYPE,
            {"type": "WebcastGiftMessage", "gift": GIFT_B64, "idleSeconds": 10.2},
            id="streak-timeout-protobuf",
        ),
        pytest.param(
            "WebcastRoomUserSeqMessage",
            {"ranks": [{"score": "3", "user": {"id": AKHMED, "displayId": "akhmed_kzn"}}]},
            id="json-ranking",
        ),
    ],
)
def test_a_frame_names_the_user_in_every_form_a_message_is_archived_in(
    raw_type: str, data: Any
) -> None:
    text = json.dumps(data)
    assert frame_names_user(UserMatcher(AKHMED), raw_type, text)
    assert not frame_names_user(UserMatcher(XIAOMING), raw_type, text)


def test_base64_is_decoded_not_searched_as_text() -> None:
    """The id is nowhere in the base64 text: only decoding finds it."""
    assert AKHMED not in GIFT_B64
    assert frame_names_user(UserMatcher(AKHMED), "WebcastGiftMessage", json.dumps(GIFT_B64))


def test_a_frame_that_is_not_base64_or_protobuf_names_nobody() -> None:
    matcher = UserMatcher(AKHMED)
    assert not frame_names_user(matcher, "WebcastGiftMessage", json.dumps("not base64!"))
    garbage = base64.b64encode(b"\xff\xff\xff").decode()
    assert not frame_names_user(matcher, "WebcastGiftMessage", json.dumps(garbage))
