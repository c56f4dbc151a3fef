"""The normalizer: every mapping row of DESIGN §4, eventId, social sub-types, gift streaks,
barrages and subscriptions, battle scores (1v1 and team), user flags from ``userIdentity``
and badges, RAW passthrough, and the reasons it gives for what it refuses.

Real captured payloads of every mapped type are in ``test_real_tiktok.py``'s corpus."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import msgspec
import pytest
from TikTokLiveProto.v3.webcast.model.live import match
from TikTokLiveProto.v3.webcast.model.message import battle, common

from ttlp.contracts import events as ev
from ttlp.contracts.events import RawFrame, frame_from_fields, frame_to_fields
from ttlp.contracts.mapping import stream_end_action
from ttlp.errors import PermanentError
from ttlp.tiktok import proto
from ttlp.tiktok.normalize import event_id, normalize_frame

P: Any = type("P", (), {"__getattr__": lambda self, name: proto.lookup(name)})()
STREAM = "7441234567890123456"
SESSION = "0b6f3e1e-8a57-4c1e-9e0b-2f8f5b0e2a11"

VIEWER = P.User(
    id=7098765432109876543,
    nickname="Zoë 🌸",
    display_id="zoe.live",
    avatar_thumb=P.ImageModel(url_list=["https://p16-sign-va.tiktokcdn.com/zoe.webp"]),
    follow_info=P.FollowInfo(follow_status=2),
    user_attr=P.UserAttr(is_admin=True),
    is_subscribe=True,
)


def frame(raw_type: str, data: Any, seq: int = 7441000000000000001, **kw: Any) -> RawFrame:
    if not isinstance(data, (dict, str)):
        data = data.to_dict()
    return RawFrame(
        schema_version="raw.v1",
        stream_id=STREAM,
        session_id=SESSION,
        source="live",
        type=raw_type,
        seq_no=seq,
        timestamp="2026-02-22T10:00:00.123Z",
        ingested_at="2026-02-22T10:00:00.130Z",
        data=data,
        **kw,
    )


def both_encodings(raw_type: str, message: Any) -> list[RawFrame]:
    """The same message as a JSON object frame and as a base64 protobuf frame."""
    return [
        frame(raw_type, message.to_dict()),
        frame(raw_type, base64.b64encode(bytes(message)).decode()),
    ]


def social(key: str) -> Any:
    return P.WebcastSocialMessage(
        common=P.CommonMessageData(display_text=common.Text(key=key)), user=VIEWER
    )


def gift(repeat: int, end: int, gift_type: int = 1, diamonds: int = 200) -> Any:
    return P.WebcastGiftMessage(
        user=VIEWER,
        gift_id=5655,
        repeat_count=repeat,
        repeat_end=end,
        gift=P.Gift(
            id=5655,
            name="Galaxy",
            type=gift_type,
            diamond_count=diamonds,
            image=P.ImageModel(url_list=["https://p19-webcast.tiktokcdn.com/g.png"]),
        ),
    )


def test_event_id_is_sha256_of_stream_session_seq_and_raw_type() -> None:
    expected = hashlib.sha256(f"{STREAM}:{SESSION}:42:WebcastChatMessage".encode()).hexdigest()
    assert event_id(STREAM, SESSION, 42, "WebcastChatMessage") == expected
    chat = P.WebcastChatMessage(user=VIEWER, content="hi")
    first = normalize_frame(frame("WebcastChatMessage", chat, seq=42))
    again = normalize_frame(frame("WebcastChatMessage", chat, seq=42))
    assert first.event_id == again.event_id == expected
    other_session = msgspec.structs.replace(
        frame("WebcastChatMessage", chat, seq=42),
        session_id="7c9e6679-7425-40de-944b-e07fc1f90ae7",
    )
    assert normalize_frame(other_session).event_id != expected


@pytest.mark.parametrize("encoded", [0, 1], ids=["json", "protobuf"])
def test_chat_maps_text_user_and_emotes(encoded: int) -> None:
    message = P.WebcastChatMessage(
        user=VIEWER,
        content="hello [sticker] 👋",
        content_language="en",
        emotes=[
            P.EmoteWithIndex(
                index=6,
                emote=P.EmoteModel(
                    emote_id="7301",
                    image=P.ImageModel(url_list=["https://p16-webcast.tiktokcdn.com/e.png"]),
                ),
            )
        ],
    )
    event = normalize_frame(both_encodings("WebcastChatMessage", message)[encoded])
    assert isinstance(event, ev.ChatEvent)
    assert (event.trigger_id, event.payload.message, event.payload.language) == (
        1,
        "hello [sticker] 👋",
        "en",
    )
    assert event.payload.emotes == [
        ev.Emote(
            emote_id="7301",
            emote_image_url="https://p16-webcast.tiktokcdn.com/e.png",
            placeholder_index=6,
        )
    ]
    assert event.user == ev.EventUser(
        user_id="7098765432109876543",
        unique_id="zoe.live",
        display_name="Zoë 🌸",
        avatar_url="https://p16-sign-va.tiktokcdn.com/zoe.webp",
        follow_role=2,
        is_moderator=True,
        is_subscriber=True,
    )
    assert (event.seq_no, event.timestamp, event.source) == (
        7441000000000000001,
        "2026-02-22T10:00:00.123Z",
        "live",
    )


def test_gift_streak_frames_are_active_until_the_end_frame() -> None:
    frames = [frame("WebcastGiftMessage", gift(i, int(i == 5)), seq=100 + i) for i in range(1, 6)]
    events = [normalize_frame(f) for f in frames]
    payloads = [e.payload for e in events]
    assert all(isinstance(e, ev.GiftEvent) for e in events)
    assert [p.streak_active for p in payloads] == [True, True, True, True, False]
    assert [p.streak_end for p in payloads] == [False, False, False, False, True]
    assert all(p.is_gift_streak for p in payloads)
    assert [p.gift_count for p in payloads] == [1, 2, 3, 4, 5]
    assert payloads[-1].coins == 1000  # diamond count × repeat count
    assert (payloads[-1].gift_name, payloads[-1].gift_id, payloads[-1].diamond_count) == (
        "Galaxy",
        5655,
        200,
    )
    assert payloads[-1].gift_image_url == "https://p19-webcast.tiktokcdn.com/g.png"


def test_non_streakable_gift_is_complete_in_one_frame() -> None:
    event = normalize_frame(frame("WebcastGiftMessage", gift(1, 0, gift_type=2, diamonds=500)))
    assert isinstance(event, ev.GiftEvent)
    p = event.payload
    assert (p.is_gift_streak, p.streak_active, p.streak_end, p.coins) == (False, False, True, 500)


def test_like_member_room_user() -> None:
    like = normalize_frame(
        frame("WebcastLikeMessage", P.WebcastLikeMessage(user=VIEWER, count=15, total=48213))
    )
    assert isinstance(like, ev.LikeEvent)
    assert (like.trigger_id, like.payload.like_count, like.payload.total_like_count) == (
        3,
        15,
        48213,
    )
    join = normalize_frame(
        frame(
            "WebcastMemberMessage", P.WebcastMemberMessage(user=VIEWER, member_count=1234, action=1)
        )
    )
    assert isinstance(join, ev.JoinEvent)
    assert (join.trigger_id, join.payload.viewer_count, join.payload.action_id) == (6, 1234, 1)
    room = normalize_frame(
        frame(
            "WebcastRoomUserSeqMessage", P.WebcastRoomUserSeqMessage(total=1234, total_user=56789)
        )
    )
    assert isinstance(room, ev.RoomUserEvent)
    assert (room.payload.viewer_count, room.payload.total_viewers) == (1234, 56789)
    assert room.user == ev.SYSTEM_USER


@pytest.mark.parametrize(
    ("key", "event_type"),
    [
        ("pm_main_follow_message_viewer_2", "FOLLOW"),
        ("pm_mt_guidance_share", "SHARE"),
        ("pm_mt_msg_viewer_subscribe", "SUBSCRIBE"),
        ("pm_mt_live_ranklist", "RAW"),
        ("", "RAW"),
    ],
)
def test_social_messages_are_told_apart_by_display_key(key: str, event_type: str) -> None:
    for f in both_encodings("WebcastSocialMessage", social(key)):
        event = normalize_frame(f)
        assert event.__struct_config__.tag == event_type
        assert event.trigger_id == ev.TRIGGER_IDS[event_type]
        if event_type == "RAW":
            assert isinstance(event, ev.RawEvent)
            assert event.payload.raw_type == "WebcastSocialMessage"
        else:
            assert event.user.unique_id == "zoe.live"


def test_emote_and_battle_family() -> None:
    emote = normalize_frame(
        frame(
            "WebcastEmoteChatMessage",
            P.WebcastEmoteChatMessage(
                user=VIEWER,
                emote_list=[
                    P.EmoteModel(
                        emote_id="7302",
                        emote_type=1,
                        image=P.ImageModel(url_list=["https://p16-webcast.tiktokcdn.com/e2.png"]),
                    )
                ],
            ),
        )
    )
    assert isinstance(emote, ev.EmoteEvent)
    assert (emote.payload.emote_id, emote.payload.emote_type) == ("7302", 1)
    for raw_type, message in [
        ("WebcastLinkMicBattle", P.WebcastLinkMicBattle(battle_id=7440000000000000777, action=4)),
        ("WebcastLinkMicArmies", P.WebcastLinkMicArmies(battle_id=7440000000000000777)),
    ]:
        event = normalize_frame(frame(raw_type, message))
        assert isinstance(event, ev.BattleEvent), raw_type
    started = normalize_frame(
        frame(
            "WebcastLinkMicBattle", P.WebcastLinkMicBattle(battle_id=7440000000000000777, action=4)
        )
    )
    assert isinstance(started, ev.BattleEvent)
    assert (started.payload.battle_id, started.payload.battle_status) == (
        "7440000000000000777",
        "STARTED",
    )


def anchor(uid: int, handle: str) -> Any:
    return battle.BattleUserInfoWrapper(
        key=uid,
        value=match.BattleUserInfo(
            user=match.BattleBaseUserInfo(user_id=uid, nick_name=handle.title(), display_id=handle)
        ),
    )


def team(*members: tuple[int, int]) -> Any:
    """A team's members: (user id, score)."""
    return [match.BattleTeamUser(user_id=uid, score=score) for uid, score in members]


def test_one_to_one_battle_scores_each_anchor_from_battle_result() -> None:
    message = P.WebcastLinkMicBattle(
        battle_id=7286183603647646497,
        action=5,
        battle_result={
            11: battle.BattleResult(user_id=11, score=782),
            22: battle.BattleResult(user_id=22, result=1),  # a score of 0 is left out
        },
        anchors_info=[anchor(11, "little.satan3"), anchor(22, "game_master")],
    )
    for f in both_encodings("WebcastLinkMicBattle", message):
        event = normalize_frame(f)
        assert isinstance(event, ev.BattleEvent)
        assert event.payload.battle_status == "ENDED"
        assert event.payload.participants == [
            ev.BattleParticipant(
                user_id="11", unique_id="little.satan3", display_name="Little.Satan3", score=782
            ),
            ev.BattleParticipant(
                user_id="22", unique_id="game_master", display_name="Game_Master", score=0
            ),
        ]


def test_team_battle_scores_each_anchor_from_team_battle_result() -> None:
    """2 vs 2: ``battleResult`` holds the team totals under one member of each team."""
    message = P.WebcastLinkMicBattle(
        battle_id=7286183712344443681,
        action=5,
        battle_result={
            22: battle.BattleResult(user_id=22, score=9),
            33: battle.BattleResult(user_id=33, score=3),
        },
        anchors_info=[
            anchor(11, "denise"),
            anchor(22, "filip"),
            anchor(33, "alex"),
            anchor(44, "sandra"),
        ],
        team_battle_result=[
            match.BattleTeamResult(team_id=1, team_user=team((33, 0), (44, 3)), total_score=3),
            match.BattleTeamResult(team_id=2, team_user=team((11, 3), (22, 6)), total_score=9),
        ],
    )
    for f in both_encodings("WebcastLinkMicBattle", message):
        event = normalize_frame(f)
        assert isinstance(event, ev.BattleEvent)
        assert [(p.unique_id, p.score) for p in event.payload.participants] == [
            ("denise", 3),
            ("filip", 6),
            ("alex", 0),
            ("sandra", 3),
        ]


def test_armies_score_each_host_or_each_team_member() -> None:
    one_to_one = P.WebcastLinkMicArmies(
        battle_id=7286184332472634144,
        armies={11: battle.BattleUserArmies(hostscore=3980), 22: battle.BattleUserArmies()},
    )
    event = normalize_frame(frame("WebcastLinkMicArmies", one_to_one))
    assert isinstance(event, ev.BattleEvent)
    assert [(p.user_id, p.score) for p in event.payload.participants] == [("11", 3980), ("22", 0)]
    teams = P.WebcastLinkMicArmies(
        battle_id=7286184778659220229,
        armies={
            22: battle.BattleUserArmies(hostscore=9),
            44: battle.BattleUserArmies(hostscore=12),
        },
        team_armies=[
            match.BattleTeamUserArmies(team_id=2, team_user=team((11, 3), (22, 6))),
            match.BattleTeamUserArmies(team_id=1, team_user=team((33, 6), (44, 6))),
        ],
    )
    for f in both_encodings("WebcastLinkMicArmies", teams):
        event = normalize_frame(f)
        assert isinstance(event, ev.BattleEvent)
        assert event.payload.battle_status == "UPDATED"
        assert [(p.user_id, p.score) for p in event.payload.participants] == [
            ("11", 3),
            ("22", 6),
            ("33", 6),
            ("44", 6),
        ]


SUBSCRIBER = P.User(id=7229075882751919110, nickname="Marie Marie", display_id="pepinmarie123")


def text_with_user(key: str, pattern: str, user: Any) -> Any:
    piece = common.TextPiece(type=11, user_value=common.TextPieceUser(user=user, with_colon=True))
    return common.Text(key=key, default_pattern=pattern, pieces=[piece])


def test_subscription_barrage_is_subscribe_with_the_user_in_its_text() -> None:
    message = P.WebcastBarrageMessage(
        msg_type=P.BarrageMessageBarrageType.SUBSCRIBE,
        content=text_with_user(
            "pm_mt_subscribe_first_barrage", "{0:user} subscribed for the first time", SUBSCRIBER
        ),
        duration=3000,
    )
    for f in both_encodings("WebcastBarrageMessage", message):
        event = normalize_frame(f)
        assert isinstance(event, ev.SubscribeEvent)
        assert (event.trigger_id, event.payload) == (7, ev.SubscribePayload())
        assert (event.user.user_id, event.user.unique_id, event.user.is_subscriber) == (
            "7229075882751919110",
            "pepinmarie123",
            True,
        )


def test_entrance_and_other_barrages_stay_raw_with_their_user() -> None:
    entrance = P.WebcastBarrageMessage(
        msg_type=P.BarrageMessageBarrageType.FANS_LEVEL_ENTRANCE,
        content=common.Text(key="pm_mt_fan_live_join", default_pattern="joined"),
        fans_level_param=P.BarrageTypeFansLevelParam(
            current_grade=21,
            user=P.User(id=6741115145697739782, display_id="zaudy", badge_list=[badge(10, "21")]),
        ),
    )
    for f in both_encodings("WebcastBarrageMessage", entrance):
        event = normalize_frame(f)
        assert isinstance(event, ev.RawEvent)
        assert event.payload.raw_type == "WebcastBarrageMessage"
        assert (event.user.unique_id, event.user.team_member_level) == ("zaudy", 21)
    grade = P.WebcastBarrageMessage(
        msg_type=P.BarrageMessageBarrageType.GRADE_USER_ENTRANCE_NOTIFICATION,
        user_grade_param=P.BarrageTypeUserGradeParam(current_grade=28, user=VIEWER),
    )
    event = normalize_frame(frame("WebcastBarrageMessage", grade))
    assert isinstance(event, ev.RawEvent)
    assert event.user.unique_id == "zoe.live"
    for data in ({"msgType": "COMMON_BARRAGE"}, {"msgType": 999}, {"msgType": "NEW_KIND"}, {}):
        event = normalize_frame(frame("WebcastBarrageMessage", data))
        assert isinstance(event, ev.RawEvent)
        assert event.user == ev.SYSTEM_USER


def test_sub_notify_is_subscribe_with_the_subscriber_and_sub_month() -> None:
    message = P.WebcastSubNotifyMessage(user=SUBSCRIBER, sub_month=3, subscribing_status=1)
    for f in both_encodings("WebcastSubNotifyMessage", message):
        event = normalize_frame(f)
        assert isinstance(event, ev.SubscribeEvent)
        assert event.payload.sub_month == 3
        assert (event.user.unique_id, event.user.is_subscriber) == ("pepinmarie123", True)
    without_month = normalize_frame(frame("WebcastSubNotifyMessage", P.WebcastSubNotifyMessage()))
    assert isinstance(without_month, ev.SubscribeEvent)
    assert (without_month.payload, without_month.user) == (ev.SubscribePayload(), ev.SYSTEM_USER)


# -- user flags: where TikTok puts them ----------------------------------------------------------
def badge(scene: int, level: str = "0") -> Any:
    """A badge as TikTok sends it: its scene (1 ADMIN, 4 SUBSCRIBER, 8 USER_GRADE, 10 FANS)."""
    return P.BadgeStruct(
        display_type=4, scene_type=scene, privilege_log_extra=P.PrivilegeLogExtra(level=level)
    )


def plain_user(**kw: Any) -> Any:
    return P.User(id=6776970940175827973, display_id="danalvissanchez", **kw)


@pytest.mark.parametrize(
    ("identity", "badges", "flags"),
    [
        ({}, [], (0, False, False, None)),
        ({"is_follower_of_anchor": True}, [badge(8, "12")], (1, False, False, None)),
        (
            {"is_follower_of_anchor": True, "is_mutual_following_with_anchor": True},
            [],
            (2, False, False, None),
        ),
        ({"is_moderator_of_anchor": True}, [], (0, True, False, None)),
        ({"is_subscriber_of_anchor": True}, [], (0, False, True, None)),
        ({}, [badge(1), badge(4), badge(10, "21")], (0, True, True, 21)),
        ({}, [badge(10, "7"), badge(10, "9")], (0, False, False, 7)),
        ({}, [badge(7)], (0, False, True, None)),
    ],
    ids=["nothing", "follower", "friend", "moderator", "subscriber", "badges", "first", "new-sub"],
)
def test_user_flags_come_from_user_identity_and_badges(
    identity: dict[str, bool], badges: list[Any], flags: tuple[Any, ...]
) -> None:
    message = P.WebcastChatMessage(
        user=plain_user(badge_list=badges),
        content="hi",
        user_identity=P.UserIdentity(**identity),
    )
    for f in both_encodings("WebcastChatMessage", message):
        user = normalize_frame(f).user
        assert (user.follow_role, user.is_moderator, user.is_subscriber) == flags[:3]
        assert user.team_member_level == (flags[3] if flags[3] is not None else msgspec.UNSET)


@pytest.mark.parametrize(
    ("follow_info", "role"),
    [
        (None, msgspec.UNSET),
        ({}, 0),
        ({"follow_status": 1}, 1),
        ({"follow_status": 2}, 2),
        ({"follow_status": 3}, msgspec.UNSET),  # gift messages carry it; not a role
    ],
)
def test_without_user_identity_the_follow_role_is_the_follow_status(
    follow_info: dict[str, int] | None, role: object
) -> None:
    info = P.FollowInfo(**follow_info) if follow_info is not None else None
    message = P.WebcastLikeMessage(user=plain_user(follow_info=info), count=1, total=1)
    for f in both_encodings("WebcastLikeMessage", message):
        user = normalize_frame(f).user
        assert user.follow_role == role
        assert (user.is_moderator, user.is_subscriber) == (False, False)


def test_badges_tiktok_adds_later_are_skipped_not_refused() -> None:
    data = P.WebcastMemberMessage(user=plain_user(badge_list=[badge(1)])).to_dict()
    data["user"]["badgeList"] += [
        {"sceneType": "SOME_FUTURE_SCENE"},
        "not an object",
        {"sceneType": "FANS", "privilegeLogExtra": {"level": "high"}},
    ]
    user = normalize_frame(frame("WebcastMemberMessage", data)).user
    assert (user.is_moderator, user.team_member_level) == (True, msgspec.UNSET)


@pytest.mark.parametrize(
    ("action", "event_type"), [(3, "STREAM_END"), (4, "STREAM_END"), (1, "RAW"), (2, "RAW")]
)
def test_control_message_ends_the_stream_only_for_actions_3_and_4(
    action: int, event_type: str
) -> None:
    event = normalize_frame(frame("WebcastControlMessage", P.WebcastControlMessage(action=action)))
    assert event.__struct_config__.tag == event_type
    if isinstance(event, ev.StreamEndEvent):
        assert event.payload.action == action


def test_lifecycle_frames() -> None:
    connected = normalize_frame(
        frame(
            "ControlEvent.CONNECTED",
            {"roomId": STREAM, "isConnected": True, "provider": "mock", "uniqueId": "luna.beats"},
            seq=1,
        )
    )
    assert isinstance(connected, ev.ConnectedEvent)
    assert connected.payload == ev.ConnectedPayload(
        room_id=STREAM, is_connected=True, provider="mock", unique_id="luna.beats"
    )
    disconnected = normalize_frame(
        frame(
            "ControlEvent.DISCONNECTED",
            {"code": 4005, "reason": "stream ended", "willReconnect": False},
            seq=2,
        )
    )
    assert isinstance(disconnected, ev.DisconnectedEvent)
    assert disconnected.payload == ev.DisconnectedPayload(
        code=4005, reason="stream ended", will_reconnect=False
    )
    error = normalize_frame(
        frame(
            "ControlEvent.ERROR", {"message": "sign server timeout", "code": "SIGN_TIMEOUT"}, seq=3
        )
    )
    assert isinstance(error, ev.ErrorEvent)
    assert (error.payload.message, error.payload.code) == ("sign server timeout", "SIGN_TIMEOUT")
    assert error.user == ev.SYSTEM_USER


def test_unmapped_types_pass_through_as_raw_with_their_data() -> None:
    data = {"common": {"msgId": "7441000000000000999"}, "rankings": [{"rank": 1}]}
    event = normalize_frame(frame("WebcastHourlyRankMessage", data))
    assert isinstance(event, ev.RawEvent)
    assert (event.payload.raw_type, event.payload.data) == ("WebcastHourlyRankMessage", data)
    assert event.trigger_id == 13
    unknown_bytes = normalize_frame(frame("WebcastBrandNewMessage", "CAE="))
    assert isinstance(unknown_bytes, ev.RawEvent)
    assert unknown_bytes.payload.data == {"payloadBase64": "CAE="}


def test_seed_node_shape_is_understood() -> None:
    """The seed's fixture example uses the JS connector's names: comment, userId, uniqueId."""
    event = normalize_frame(
        frame(
            "WebcastChatMessage",
            {"comment": "Hello world", "user": {"userId": "99", "uniqueId": "testuser"}},
        )
    )
    assert isinstance(event, ev.ChatEvent)
    assert (event.payload.message, event.user.user_id, event.user.unique_id) == (
        "Hello world",
        "99",
        "testuser",
    )


@pytest.mark.parametrize(
    ("raw_type", "data", "reason"),
    [
        ("WebcastChatMessage", {"content": {"nested": "object"}}, "VALIDATION_ERROR"),
        ("WebcastGiftMessage", {"repeatCount": "many"}, "VALIDATION_ERROR"),
        ("WebcastChatMessage", {"content": "x", "user": "not an object"}, "VALIDATION_ERROR"),
        ("WebcastChatMessage", "!!not base64!!", "PARSE_ERROR"),
        ("WebcastChatMessage", base64.b64encode(b"\x08").decode(), "PARSE_ERROR"),
        ("WebcastChatMessage", base64.b64encode(b"\x12\x10abc").decode(), "PARSE_ERROR"),
        ("WebcastEmoteChatMessage", {"emoteList": []}, "VALIDATION_ERROR"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(
    raw_type: str, data: Any, reason: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        normalize_frame(frame(raw_type, data))
    assert caught.value.reason == reason
    assert raw_type in str(caught.value) or reason == "PARSE_ERROR"


def test_redis_fields_round_trip_and_bad_envelopes() -> None:
    f = frame(
        "WebcastChatMessage",
        P.WebcastChatMessage(user=VIEWER, content="hi"),
        provider="mock",
        unique_id="luna.beats",
    )
    fields = frame_to_fields(f)
    assert all(isinstance(v, str) for v in fields.values())
    assert frame_from_fields(fields) == f
    cases = {
        "PARSE_ERROR": {**fields, "data": "{not json"},
        "VALIDATION_ERROR": {k: v for k, v in fields.items() if k != "streamId"},
    }
    for reason, bad in cases.items():
        with pytest.raises(PermanentError) as caught:
            frame_from_fields(bad)
        assert caught.value.reason == reason
    for bad in (
        {**fields, "seqNo": "abc"},
        {**fields, "schemaVersion": "raw.v9"},
        {**fields, "type": "no spaces allowed"},
        {**fields, "surprise": "field"},
    ):
        with pytest.raises(PermanentError) as caught:
            frame_from_fields(bad)
        assert caught.value.reason == "VALIDATION_ERROR"
    with pytest.raises(PermanentError) as caught:
        frame_from_fields({**fields, "data": '"' + "A" * 2000 + '"'}, max_bytes=1000)
    assert caught.value.reason == "FRAME_TOO_LARGE"


def test_protobuf_fixture_normalizes_exactly_like_the_json_fixture() -> None:
    """The same session as the providers deliver it (protobuf bytes) gives the same events."""
    from tests.support.paths import FIXTURES
    from ttlp.contracts.events import decode_raw_frame

    def events(name: str) -> list[ev.UnifiedEvent]:
        lines = (FIXTURES / name).read_text().splitlines()
        return [normalize_frame(decode_raw_frame(line)) for line in lines if line.strip()]

    protobuf_frames = [
        decode_raw_frame(line)
        for line in (FIXTURES / "raw-frames-protobuf.ndjson").read_text().splitlines()
    ]
    assert sum(isinstance(f.data, str) for f in protobuf_frames) == sum(
        not f.type.startswith("ControlEvent.") for f in protobuf_frames
    )
    assert events("raw-frames-protobuf.ndjson") == events("raw-frames.ndjson")


# -- the one stream-end decision (contracts.mapping), shared with both providers --------------
@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (3, 3),
        (4, 4),
        ("3", 3),
        ("STREAM_ENDED", 3),
        ("ControlAction.STREAM_SUSPENDED", 4),
        (1, None),
        ("STREAM_PAUSED", None),
        (True, None),
        (None, None),
    ],
)
def test_stream_end_action_reads_every_form_of_the_action(
    action: object, expected: int | None
) -> None:
    assert stream_end_action(action) == expected
