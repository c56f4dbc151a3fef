"""Regenerate the test fixtures in ``tests/fixtures/`` (deterministic: same bytes every run).

    .venv/bin/python scripts/make_fixtures.py

Needs ``ttlp`` importable (``pip install -e .``, or ``PYTHONPATH=src``) and TikTokLive.

Files written, one JSON document per line (NDJSON, UTF-8):

``raw-frames.ndjson``
    raw.v1 frames in their logical form (``contracts/raw.v1.schema.json``: ``seqNo`` a JSON
    integer, ``data`` a JSON value): one live session of the streamer @luna.beats in room
    7441234567890123456, in arrival order, from ``ControlEvent.CONNECTED`` to
    ``ControlEvent.DISCONNECTED``, shaped like the captured payloads in ``tests/fixtures/real/``
    (roles in badges and ``userIdentity``; subscriptions as a barrage then a sub notify).
    Each TikTok frame's ``data`` is a real TikTokLiveProto message: mostly
    ``message.to_dict()`` (proto3 JSON: camelCase names, int64 as strings, enums by name), a
    few as base64 of the message's protobuf bytes. ``seqNo`` is the message's ``common.msgId``
    and ``timestamp`` its ``common.createTime``; lifecycle frames count 1, 2, 3 and carry the
    ingest time.
``raw-frames-protobuf.ndjson``
    The same frames with every TikTok message's ``data`` as base64 of its protobuf bytes, as
    the direct and euler providers publish them.
``unified-events.ndjson``
    ``ttlp.tiktok.normalize.normalize_frame`` applied to each raw frame, same order, one
    UnifiedEvent v1 per line (``contracts/unified-event.v1.schema.json``).
``dlq-frames.ndjson``
    Malformed ``ttlc:raw`` entries, one per line:
    ``{"case": "<kebab-case name>", "expectedReason": "PARSE_ERROR" | "VALIDATION_ERROR" |
    "FRAME_TOO_LARGE", "fields": {<the Redis entry: field → string>}}``. Fed through
    ``frame_from_fields(fields, max_bytes=1 MiB)`` then ``normalize_frame``, each must fail
    with ``expectedReason``. The mock provider publishes such ``{"fields": ...}`` lines
    verbatim, so the file also drives DLQ tests end to end. One line (``frame-too-large``)
    is over 1 MiB on purpose.
"""

from __future__ import annotations

import base64
import collections
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import TikTokLive.proto as P
from TikTokLiveProto.v3.webcast.model.base import emoji
from TikTokLiveProto.v3.webcast.model.live import match
from TikTokLiveProto.v3.webcast.model.message import battle, common

from ttlp.contracts.events import decode_raw_frame, encode, frame_to_fields

FIXTURES: Final = Path(__file__).resolve().parent.parent / "tests" / "fixtures"

ROOM_ID: Final = "7441234567890123456"
SESSION_ID: Final = "3f1c2a9e-6b7d-4e21-9c55-0d8e7a41b2f6"
DLQ_SESSION_ID: Final = "9d2e4b71-0c3a-4f58-8e16-5a7b9c0d1e2f"
STREAMER: Final = "luna.beats"
START: Final = datetime(2024, 11, 21, 19, 30, tzinfo=UTC)
FIRST_MSG_ID: Final = 7441000000000000001
MAX_FRAME_BYTES: Final = 1_048_576
CDN: Final = "https://p16-sign-va.tiktokcdn.com"
DISPLAY_PATTERNS: Final = {
    "pm_main_follow_message_viewer_2": "{0:user} followed the LIVE creator",
    "pm_mt_guidance_share": "{0:user} shared the LIVE video",
    "pm_mt_subscribe_message_viewer": "{0:user} just subscribed",
    "pm_mt_live_ranklist": "{0:user} is in the top 10 of the LIVE ranking",
}


def iso(ms: int) -> str:
    """Epoch milliseconds → ISO 8601 UTC with milliseconds and ``Z``."""
    dt = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def image(path: str) -> Any:
    return P.ImageModel(url_list=[f"{CDN}/{path}~tplv-resize:100:100.webp"], uri=path)


# BadgeSceneType numbers: the badges that say a user's role in the room.
BADGE_ADMIN: Final = 1
BADGE_SUBSCRIBER: Final = 4
BADGE_USER_GRADE: Final = 8
BADGE_FANS: Final = 10
RELATIONS: Final[dict[int, dict[str, bool]]] = {}
"""User id → the ``userIdentity`` flags their chat, gift and emote messages carry."""


def badge(scene: int, level: int, text: str) -> Any:
    """A badge as TikTok sends it: a COMBINE badge whose level is in ``privilegeLogExtra``."""
    return P.BadgeStruct(
        display_type=P.BadgeDisplayType.COMBINE,
        scene_type=scene,
        display=True,
        privilege_log_extra=P.PrivilegeLogExtra(data_version="2", level=str(level)),
        combine=P.CombineBadgeStruct(display_type=4, str=text),
    )


def user(
    uid: int,
    handle: str,
    nickname: str,
    *,
    follow: int = 0,
    admin: bool = False,
    subscriber: bool = False,
    fans_level: int | None = None,
    gifter_level: int | None = None,
) -> Any:
    """A TikTok user as webcast messages carry it (follow 0 none, 1 follower, 2 friend).

    Roles are where real messages carry them: the user's badges (moderator, subscriber,
    fans-club level, gifter level) and the message's ``userIdentity`` (``identity(user)``).
    """
    badges = []
    if gifter_level is not None:
        badges.append(badge(BADGE_USER_GRADE, gifter_level, str(gifter_level)))
    if fans_level is not None:
        badges.append(badge(BADGE_FANS, fans_level, "Ⅲ"))
    if admin:
        badges.append(badge(BADGE_ADMIN, 0, "Moderator"))
    if subscriber:
        badges.append(badge(BADGE_SUBSCRIBER, 0, "Luna Fam"))
    RELATIONS[uid] = {
        "is_follower_of_anchor": follow >= 1,
        "is_mutual_following_with_anchor": follow == 2,
        "is_moderator_of_anchor": admin,
        "is_subscriber_of_anchor": subscriber,
    }
    return P.User(
        id=uid,
        nickname=nickname,
        display_id=handle,
        avatar_thumb=image(f"tos-maliva-avt-0068/{uid}"),
        follow_info=P.FollowInfo(follow_status=follow, follower_count=uid % 997),
        badge_list=badges,
    )


def identity(who: Any) -> Any:
    """The ``userIdentity`` a chat, gift or emote message carries for its user."""
    return P.UserIdentity(**RELATIONS[who.id])


LUNA = user(6812345678901234567, STREAMER, "Luna 🎧")
RIVAL = user(6898765432109876543, "dj.nova", "DJ Nova")
ZOE = user(7012345678901234501, "zoe.petals", "Zoë 🌸", follow=1, fans_level=12, gifter_level=9)
AKHMED = user(
    7012345678901234502,
    "akhmed_kzn",
    "Ахмед",
    follow=2,
    admin=True,
    subscriber=True,
    gifter_level=31,
)
XIAOMING = user(7012345678901234503, "xiaoming88", "小明", follow=1)
MALLORY = user(7012345678901234504, "mallory", "Mallory")
OWL = user(7012345678901234505, "night.owl", "night owl 🦉", subscriber=True)


class Session:
    """Builds one live session's raw.v1 frames in arrival order, with a moving clock."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.protobuf_frames: list[dict[str, Any]] = []
        """The same session with every TikTok message as base64 protobuf bytes."""
        self.now_ms = int(START.timestamp() * 1000)
        self.next_msg_id = FIRST_MSG_ID
        self.lifecycle_seq = 0

    def _frame(self, type_: str, seq_no: int, ts_ms: int, data: Any, pb: str | None = None) -> None:
        frame = {
            "schemaVersion": "raw.v1",
            "streamId": ROOM_ID,
            "sessionId": SESSION_ID,
            "source": "live",
            "type": type_,
            "seqNo": seq_no,
            "timestamp": iso(ts_ms),
            "ingestedAt": iso(ts_ms + 3 + len(self.frames) % 5),
            "data": data,
            "provider": "mock",
            "uniqueId": STREAMER,
        }
        self.frames.append(frame)
        self.protobuf_frames.append({**frame, "data": pb} if pb is not None else frame)

    def tiktok(
        self, message: Any, *, after_ms: int = 400, key: str | None = None, as_bytes: bool = False
    ) -> None:
        """Append a TikTok message; ``key`` sets ``common.displayText.key``."""
        self.now_ms += after_ms
        msg_id = self.next_msg_id
        # msgIds grow with time but not by one: other rooms share the id space.
        self.next_msg_id += 1_048_573
        type_ = type(message).__name__
        display = common.Text(key=key, default_pattern=DISPLAY_PATTERNS[key]) if key else None
        message.common = P.CommonMessageData(
            method=type_,
            msg_id=msg_id,
            room_id=int(ROOM_ID),
            create_time=self.now_ms,
            display_text=display,
        )
        payload = bytes(message)
        # The base64 path must decode to exactly the JSON path's dict.
        assert type(message)().parse(payload).to_dict() == message.to_dict()
        pb = base64.b64encode(payload).decode("ascii")
        data: Any = pb if as_bytes else message.to_dict()
        self._frame(type_, msg_id, self.now_ms, data, pb)

    def lifecycle(self, name: str, data: dict[str, Any], *, after_ms: int = 250) -> None:
        """Append a ``ControlEvent.*`` frame (per-session counter, ingest time)."""
        self.now_ms += after_ms
        self.lifecycle_seq += 1
        self._frame(f"ControlEvent.{name}", self.lifecycle_seq, self.now_ms, data)


def chat(who: Any, content: str, language: str, emotes: list[Any] | None = None) -> Any:
    return P.WebcastChatMessage(
        user=who,
        content=content,
        content_language=language,
        emotes=emotes or [],
        user_identity=identity(who),
    )


def gift(
    who: Any, gift_id: int, name: str, diamonds: int, gift_type: int, repeat: int, end: bool
) -> Any:
    """One gift frame; ``repeat`` is cumulative within a streak, ``end`` marks its last frame."""
    return P.WebcastGiftMessage(
        user=who,
        user_identity=identity(who),
        to_user=LUNA,
        gift_id=gift_id,
        repeat_count=repeat,
        repeat_end=int(end),
        combo_count=repeat,
        group_id=1732217400000 + gift_id,
        gift=P.Gift(
            id=gift_id,
            name=name,
            diamond_count=diamonds,
            type=gift_type,
            combo=gift_type == 1,
            image=image(f"webcast-va/gift_{gift_id}.png"),
        ),
    )


def streak(
    s: Session, who: Any, gift_id: int, name: str, diamonds: int, interleave: dict[int, Any]
) -> None:
    """A 5-frame streak of a streakable gift; ``interleave[i]`` arrives right after frame i."""
    for repeat in range(1, 6):
        s.tiktok(gift(who, gift_id, name, diamonds, 1, repeat, repeat == 5), after_ms=300)
        if repeat in interleave:
            s.tiktok(interleave[repeat], after_ms=150)


def social(who: Any) -> Any:
    return P.WebcastSocialMessage(user=who, action=1, follow_count=48213)


def member(who: Any, count: int) -> Any:
    return P.WebcastMemberMessage(
        user=who, member_count=count, action=P.MemberMessageAction.JOINED, enter_type=1
    )


def viewers(total: int, total_user: int) -> Any:
    return P.WebcastRoomUserSeqMessage(
        total=total,
        total_user=total_user,
        ranks=[P.Contributor(user=AKHMED, score=30000, rank=1)],
        pop_str=f"{total / 1000:.1f}K",
    )


def battle_msg(action: Any, scores: tuple[int, int] | None = None) -> Any:
    """A 1v1 battle message; ``scores`` (Luna's, Nova's) come with the end, as in real rooms."""
    ids = {LUNA.id: ("Luna 🎧", STREAMER), RIVAL.id: ("DJ Nova", "dj.nova")}
    return P.WebcastLinkMicBattle(
        battle_id=7441999000000000001,
        action=action,
        battle_result={
            uid: battle.BattleResult(user_id=uid, score=score)
            for uid, score in zip(ids, scores or (), strict=False)
        },
        anchors_info=[
            battle.BattleUserInfoWrapper(
                key=uid,
                value=match.BattleUserInfo(
                    user=match.BattleBaseUserInfo(
                        user_id=uid, nick_name=nick, display_id=handle, room_id=int(ROOM_ID)
                    )
                ),
            )
            for uid, (nick, handle) in ids.items()
        ],
    )


def entrance_barrage(who: Any, grade: int) -> Any:
    """The banner TikTok shows when a high gifter-level viewer joins (a RAW event)."""
    return P.WebcastBarrageMessage(
        msg_type=P.BarrageMessageBarrageType.GRADE_USER_ENTRANCE_NOTIFICATION,
        content=common.Text(key="pm_mt_alp_join_animation", default_pattern="joined"),
        duration=4000,
        user_grade_param=P.BarrageTypeUserGradeParam(
            current_grade=grade, user_id=str(who.id), user=who
        ),
    )


def subscription(who: Any) -> list[Any]:
    """A first subscription as TikTok announces it: a barrage naming the user in its text,
    then the notice with the month (two SUBSCRIBE events, as in real captured rooms)."""
    piece = common.TextPiece(type=11, user_value=common.TextPieceUser(user=who, with_colon=True))
    barrage = P.WebcastBarrageMessage(
        msg_type=P.BarrageMessageBarrageType.SUBSCRIBE,
        content=common.Text(
            key="pm_mt_subscribe_first_barrage",
            default_pattern="{0:user} subscribed for the first time",
            pieces=[piece],
        ),
        duration=3000,
        display_config=9,
    )
    notice = P.WebcastSubNotifyMessage(
        user=who, sub_month=1, subscribing_status=P.SubscribingStatus.SUBSCRIBING_STATUS_ONCE
    )
    return [barrage, notice]


def build_session() -> Session:
    """The scripted session: every canonical type, RAW pass-through, streaks, edge texts."""
    s = Session()
    s.lifecycle(
        "CONNECTED",
        {"roomId": ROOM_ID, "isConnected": True, "provider": "mock", "uniqueId": STREAMER},
    )
    s.tiktok(viewers(1523, 20411), after_ms=120)
    s.tiktok(member(ZOE, 1524))
    s.tiktok(member(AKHMED, 1525))
    s.tiktok(entrance_barrage(AKHMED, 31), after_ms=60)
    s.tiktok(chat(ZOE, "hi Luna!! 🎶 first time catching you live", "en"))
    s.tiktok(P.WebcastLikeMessage(user=ZOE, count=15, total=15234))
    s.tiktok(social(AKHMED), key="pm_main_follow_message_viewer_2")
    s.tiktok(chat(AKHMED, "Привет из Казани! 🔥", "ru"))
    streak(s, XIAOMING, 5655, "Rose", 1, {2: chat(XIAOMING, "你好！这首歌太好听了", "zh")})
    s.tiktok(
        chat(
            ZOE,
            "this drop [cat_dance] [heart_eyes]",
            "en",
            [
                emoji.EmoteWithIndex(
                    index=10,
                    emote=emoji.EmoteModel(
                        emote_id="7301234567890123001", image=image("webcast-va/emote_cat_dance")
                    ),
                ),
                emoji.EmoteWithIndex(
                    index=22,
                    emote=emoji.EmoteModel(
                        emote_id="7301234567890123002",
                        image=image("webcast-va/emote_heart_eyes"),
                        emote_type=P.EmoteType.WITH_STICKER,
                    ),
                ),
            ],
        )
    )
    s.tiktok(
        P.WebcastEmoteChatMessage(
            user=OWL,
            user_identity=identity(OWL),
            emote_list=[
                emoji.EmoteModel(
                    emote_id="7301234567890123003",
                    image=image("webcast-va/emote_luna_wave"),
                    emote_type=P.EmoteType.EMOTE_TYPE_FANS,
                )
            ],
        )
    )
    s.tiktok(social(XIAOMING), key="pm_mt_guidance_share")
    s.tiktok(P.WebcastLikeMessage(user=AKHMED, count=30, total=15264), as_bytes=True)
    s.tiktok(chat(MALLORY, "<img src=x onerror=alert(1)>", "en"))
    s.tiktok(gift(AKHMED, 6369, "Lion", 29999, 2, 1, True))
    s.tiktok(social(OWL), key="pm_mt_subscribe_message_viewer")
    s.tiktok(member(OWL, 1531))
    s.tiktok(viewers(1532, 20502), after_ms=900)
    s.tiktok(battle_msg(P.LinkMicBattleBattleAction.OPEN))
    s.tiktok(
        P.WebcastLinkMicArmies(
            battle_id=7441999000000000001,
            armies={
                LUNA.id: battle.BattleUserArmies(
                    hostscore=4000,
                    user_armies=[battle.BattleUserArmy(user_id=ZOE.id, score=4000, nickname="Zoë")],
                ),
                RIVAL.id: battle.BattleUserArmies(hostscore=2500),
            },
            gift_id=11046,
            gift_count=5,
            total_diamond_count=1000,
        )
    )
    barrage, notice = subscription(XIAOMING)
    s.tiktok(barrage)
    s.tiktok(notice, after_ms=2100)
    streak(s, ZOE, 11046, "Galaxy", 200, {3: chat(OWL, "GALAXY x5 incoming 🌌", "en")})
    s.tiktok(gift(OWL, 7168, "Money Gun", 500, 2, 1, True))
    s.tiktok(
        P.WebcastHourlyRankRewardMessage(
            winners=[P.HourlyRankRewardInfo(user_id=LUNA.id, asset_id=9001)]
        )
    )
    s.tiktok(
        P.WebcastPollMessage(
            message_type=1,
            poll_id=7441555000000000001,
            start_content=P.PollStartContent(
                start_time=1732218000,
                end_time=1732218120,
                title="Next track?",
                option_list=[
                    P.PollOptionInfo(option_idx=0, display_content="Lo-fi"),
                    P.PollOptionInfo(option_idx=1, display_content="Techno"),
                ],
            ),
        )
    )
    s.tiktok(
        P.WebcastRankUpdateMessage(
            updates=[P.RankUpdate(own_rank=7, current_score=41250, countdown=1800)]
        ),
        as_bytes=True,
    )
    s.tiktok(social(ZOE), key="pm_mt_live_ranklist")
    s.tiktok(battle_msg(P.LinkMicBattleBattleAction.FINISH, (5400, 3100)), after_ms=2000)
    s.tiktok(P.WebcastLikeMessage(user=XIAOMING, count=120, total=15384))
    s.tiktok(
        P.WebcastControlMessage(action=P.ControlAction.STREAM_PAUSED, tips="Be right back"),
        after_ms=1500,
    )
    s.lifecycle("ERROR", {"message": "room info request timed out", "code": "ROOM_INFO_TIMEOUT"})
    s.tiktok(P.WebcastControlMessage(action=P.ControlAction.STREAM_UNPAUSED), after_ms=20000)
    s.tiktok(chat(AKHMED, "welcome back 👋", "ru"), as_bytes=True)
    s.tiktok(viewers(1488, 20877))
    s.tiktok(
        P.WebcastControlMessage(action=P.ControlAction.STREAM_ENDED, tips="LIVE has ended"),
        after_ms=5000,
    )
    s.lifecycle("DISCONNECTED", {"code": 1000, "reason": "stream ended", "willReconnect": False})
    return s


def dlq_cases(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Malformed ttlc:raw entries, derived from the valid chat frame ``template``."""
    base = frame_to_fields(decode_raw_frame(encode(template)))
    base["sessionId"] = DLQ_SESSION_ID
    data = msgspec.json.decode(base["data"])
    seq = iter(range(7441000000900000001, 7441000000900000100))

    def case(name: str, reason: str, **changes: str | None) -> dict[str, Any]:
        fields = {**base, "seqNo": str(next(seq))}
        for key, value in changes.items():
            if value is None:
                fields.pop(key)
            else:
                fields[key] = value
        return {"case": name, "expectedReason": reason, "fields": fields}

    def json_text(value: Any) -> str:
        return encode(value).decode()

    gift_data = gift(XIAOMING, 5655, "Rose", 1, 1, 1, False).to_dict()
    gift_data["repeatCount"] = "many"
    oversized = {**data, "content": "spam " * (MAX_FRAME_BYTES // 5 + 20_000)}
    return [
        case("data-not-json", "PARSE_ERROR", data=base["data"][: len(base["data"]) // 2]),
        case("data-invalid-base64", "PARSE_ERROR", data=json_text("!!not base64!!")),
        case(
            "data-base64-not-protobuf",
            "PARSE_ERROR",
            # field 1 announces 5 bytes, 2 follow: truncated for every protobuf decoder
            data=json_text(base64.b64encode(b"\x0a\x05ab").decode()),
        ),
        case("missing-stream-id", "VALIDATION_ERROR", streamId=None),
        case("seqno-not-integer", "VALIDATION_ERROR", seqNo="abc"),
        case("unknown-schema-version", "VALIDATION_ERROR", schemaVersion="raw.v9"),
        case("unknown-source", "VALIDATION_ERROR", source="ghost"),
        case("timestamp-not-iso", "VALIDATION_ERROR", timestamp="yesterday"),
        case("unknown-field", "VALIDATION_ERROR", roomTitle="chill beats"),
        case("data-is-array", "VALIDATION_ERROR", data=json_text([1, 2, 3])),
        case(
            "chat-content-is-object",
            "VALIDATION_ERROR",
            data=json_text({**data, "content": {"text": "hi"}}),
        ),
        case(
            "gift-repeat-count-not-number",
            "VALIDATION_ERROR",
            type="WebcastGiftMessage",
            data=json_text(gift_data),
        ),
        case("frame-too-large", "FRAME_TOO_LARGE", data=json_text(oversized)),
    ]


def write_ndjson(path: Path, documents: list[Any]) -> None:
    path.write_bytes(b"".join(encode(doc) + b"\n" for doc in documents))


def main() -> None:
    session = build_session()
    documents = session.frames
    frames = [decode_raw_frame(encode(doc)) for doc in documents]  # validates each frame
    write_ndjson(FIXTURES / "raw-frames.ndjson", frames)
    # The same session as the direct and euler providers deliver it: protobuf bytes.
    protobuf = [decode_raw_frame(encode(doc)) for doc in session.protobuf_frames]
    write_ndjson(FIXTURES / "raw-frames-protobuf.ndjson", protobuf)
    chat = next(doc for doc in documents if doc["type"] == "WebcastChatMessage")
    write_ndjson(FIXTURES / "dlq-frames.ndjson", dlq_cases(chat))

    from ttlp.tiktok.normalize import normalize_frame  # the part of the project under test

    events = [normalize_frame(frame) for frame in frames]
    write_ndjson(FIXTURES / "unified-events.ndjson", events)

    by_type = collections.Counter(frame.type for frame in frames)
    by_event = collections.Counter(type(event).__struct_config__.tag for event in events)
    print(f"{len(frames)} raw frames: {dict(by_type)}")
    print(f"{len(events)} unified events: {dict(by_event)}")


if __name__ == "__main__":
    main()
