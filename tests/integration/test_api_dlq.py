"""``/dlq`` (DESIGN §7.3), on both backends: the dead letters a streamer may see, newest first,
in pages; one in full; retry and purge by id. Unknown stages are 400s naming the stages; unknown
ids, and ids out of the account's scope, 404s naming them, with nothing done. On the embedded
default the letters live in the database (the harness wires the bus as ``ttlp run`` does)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from tests.support.api import (
    FIXTURE_ROOM,
    OTHER_ROOM,
    STREAMER_HANDLE,
    ApiHarness,
    fixture_events,
    other_stream_events,
)
from tests.support.http import assert_json_error
from ttlp.aio import now_iso
from ttlp.api.accounts import Role
from ttlp.bus.consumer import dead_letter_fields
from ttlp.contracts.events import DeadLetter, dead_letter_payload

pytestmark = pytest.mark.integration


def raw_entry(room: str) -> dict[str, str]:
    """A ``ttlc:raw`` entry as the normalizer dead-letters it (a frame it could not read)."""
    return {
        "schemaVersion": "raw.v1",
        "streamId": room,
        "sessionId": "3f1c2a9e-6b7d-4e21-9c55-0d8e7a41b2f6",
        "type": "WebcastGiftMessage",
        "data": '{"giftId": "not a number"}',
    }


async def dead_letter(api: ApiHarness, stage: str, payload: str, error: str) -> str:
    letter = DeadLetter(
        stage=stage,
        reason="VALIDATION_ERROR" if stage == "normalizer" else "FORWARD_FAILED",
        error=error,
        payload=payload,
        failed_at=now_iso(),
        source_stream=api.keys.raw if stage == "normalizer" else api.keys.events,
        source_id="1-1",
    )
    return await api.bus.publish(api.keys.dlq, dead_letter_fields(letter))


@pytest.fixture
async def letters(api: ApiHarness) -> dict[str, str]:
    """Four dead letters, oldest first: the fixture room's frame, another streamer's forward
    delivery, a frame too broken to name its room, the fixture room's forward delivery."""
    await api.seed(fixture_events() + other_stream_events())  # rooms → handles
    event = msgspec.json.encode(other_stream_events()[1]).decode()
    own_event = msgspec.json.encode(fixture_events()[1]).decode()
    return {
        "own-frame": await dead_letter(
            api, "normalizer", json.dumps(raw_entry(FIXTURE_ROOM)), "giftId: not an integer"
        ),
        "other-delivery": await dead_letter(
            api, "forwarder", json.dumps({"targetId": 7, "event": event}), "HTTP 500"
        ),
        "broken": await dead_letter(api, "normalizer", "{not json", "unreadable entry"),
        "own-delivery": await dead_letter(
            api, "forwarder", json.dumps({"targetId": 8, "event": own_event}), "HTTP 502"
        ),
    }


async def get_dlq(api: ApiHarness, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await api.client.get("/dlq", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_an_all_streams_streamer_sees_every_letter_newest_first_in_pages(
    api: ApiHarness, letters: dict[str, str]
) -> None:
    headers = await api.login("owner", Role.STREAMER, ["*"])
    newest_first = list(reversed(letters.values()))

    body = await get_dlq(api, headers)
    assert [item["id"] for item in body["items"]] == newest_first
    assert body["total"] == 4
    assert body["nextBefore"] is None

    first = await get_dlq(api, headers, limit=3)
    assert [item["id"] for item in first["items"]] == newest_first[:3]
    rest = await get_dlq(api, headers, limit=3, before=first["nextBefore"])
    assert [item["id"] for item in rest["items"]] == newest_first[3:]
    assert rest["nextBefore"] is None

    by_id = {item["id"]: item for item in body["items"]}
    frame = by_id[letters["own-frame"]]
    assert frame["stage"] == "normalizer"
    assert frame["reason"] == "VALIDATION_ERROR"
    assert frame["error"] == "giftId: not an integer"
    assert frame["streamId"] == FIXTURE_ROOM
    assert frame["payload"] == raw_entry(FIXTURE_ROOM)  # the entry as it was, decoded
    assert frame["sourceStream"] == api.keys.raw
    assert frame["time"].endswith("Z")
    delivery = by_id[letters["other-delivery"]]
    assert delivery["streamId"] == OTHER_ROOM
    assert delivery["payload"]["targetId"] == 7
    broken = by_id[letters["broken"]]
    assert broken["payload"] == "{not json"  # not JSON: shown as the text it is
    assert "streamId" not in broken


async def test_the_stage_filter(api: ApiHarness, letters: dict[str, str]) -> None:
    headers = await api.login("owner", Role.STREAMER, ["*"])
    body = await get_dlq(api, headers, stage="forwarder")
    assert [item["id"] for item in body["items"]] == [
        letters["own-delivery"],
        letters["other-delivery"],
    ]


async def test_a_scoped_streamer_sees_only_letters_of_its_rooms(
    api: ApiHarness, letters: dict[str, str]
) -> None:
    headers = await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])
    body = await get_dlq(api, headers)
    # Not another streamer's, not one that names no room.
    assert [item["id"] for item in body["items"]] == [
        letters["own-delivery"],
        letters["own-frame"],
    ]
    page = await get_dlq(api, headers, limit=1)
    assert [item["id"] for item in page["items"]] == [letters["own-delivery"]]
    page = await get_dlq(api, headers, limit=1, before=page["nextBefore"])
    assert [item["id"] for item in page["items"]] == [letters["own-frame"]]


async def test_who_may_not_and_what_is_refused(api: ApiHarness, letters: dict[str, str]) -> None:
    assert_json_error(await api.client.get("/dlq"), 401)
    moderator = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    assert_json_error(await api.client.get("/dlq", headers=moderator), 403)
    owner = await api.login("owner", Role.STREAMER, ["*"])
    for params in ({"limit": 0}, {"limit": 201}, {"before": "yesterday"}, {"stage": "A B"}):
        body = assert_json_error(await api.client.get("/dlq", params=params, headers=owner), 400)
        assert [(e["key"], e["source"]) for e in body["extra"]] == [(*params, "query")], body


async def test_an_empty_dead_letter_stream(api: ApiHarness) -> None:
    headers = await api.login("owner", Role.STREAMER, ["*"])
    assert await get_dlq(api, headers) == {"items": [], "nextBefore": None, "total": 0}


async def test_a_letter_of_bytes_that_are_not_utf8_is_shown_not_a_500(api: ApiHarness) -> None:
    """Such a letter's payload is base64 (ttlp.contracts.events.dead_letter_payload); the view
    decodes it and shows the foreign bytes as U+FFFD, flagged as base64."""
    fields = {**raw_entry(FIXTURE_ROOM), "data": '{"content":"\udcff"}'}
    payload = dead_letter_payload(fields, 65_536)
    assert payload.encoding == "base64"
    letter = DeadLetter(
        stage="normalizer",
        reason="ENCODING_ERROR",
        error="field 'data' is not valid UTF-8",
        payload=payload.text,
        payload_encoding=payload.encoding,
        failed_at=now_iso(),
        source_stream=api.keys.raw,
        source_id="1-1",
    )
    entry_id = await api.bus.publish(api.keys.dlq, dead_letter_fields(letter))
    headers = await api.login("owner", Role.STREAMER, ["*"])

    (item,) = (await get_dlq(api, headers))["items"]
    assert item["id"] == entry_id
    assert item["payloadEncoding"] == "base64"
    assert item["payload"]["data"] == '{"content":"\ufffd"}'
    assert item["streamId"] == FIXTURE_ROOM


async def test_an_unknown_stage_is_a_400_naming_the_stages(
    api: ApiHarness, letters: dict[str, str]
) -> None:
    headers = await api.login("owner", Role.STREAMER, ["*"])
    response = await api.client.get("/dlq", params={"stage": "bogus"}, headers=headers)
    body = assert_json_error(response, 400)
    assert "unknown stage 'bogus'" in body["detail"]
    (problem,) = body["extra"]
    assert (problem["key"], problem["source"]) == ("stage", "query")
    assert problem["message"] == "one of normalizer, store, rules, forwarder, ingest"


async def test_one_letter_in_full_and_unknown_or_hidden_ids_are_404(
    api: ApiHarness, letters: dict[str, str]
) -> None:
    owner = await api.login("owner", Role.STREAMER, ["*"])
    response = await api.client.get(f"/dlq/{letters['own-frame']}", headers=owner)
    assert response.status_code == 200, response.text
    item = response.json()
    assert item["id"] == letters["own-frame"]
    assert item["payload"] == raw_entry(FIXTURE_ROOM)
    assert item["sourceStream"] == api.keys.raw

    body = assert_json_error(await api.client.get("/dlq/1-0", headers=owner), 404)
    assert "1-0" in body["detail"]
    assert_json_error(await api.client.get("/dlq/yesterday", headers=owner), 400)
    luna = await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])
    hidden = letters["other-delivery"]
    body = assert_json_error(await api.client.get(f"/dlq/{hidden}", headers=luna), 404)
    assert hidden in body["detail"]


async def test_retry_sends_a_frame_back_to_its_stream_at_once(
    api: ApiHarness, letters: dict[str, str]
) -> None:
    """On both backends: the api runs in the process that runs the pipeline (on the embedded
    default it relays), so nothing is left queued."""
    headers = await api.login("owner", Role.STREAMER, ["*"])
    frame, delivery = letters["own-frame"], letters["own-delivery"]
    response = await api.client.post(
        "/dlq/retry", json={"ids": [frame, delivery, letters["broken"]]}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "retried": [frame],
        "queued": [],
        "skipped": [  # oldest first
            {"id": letters["broken"], "reason": "the payload is not JSON"},
            {"id": delivery, "reason": "forward target 8 no longer exists"},
        ],
    }
    (entry,) = await api.bus.range(api.keys.raw)
    assert entry.fields == raw_entry(FIXTURE_ROOM)
    left = [item["id"] for item in (await get_dlq(api, headers))["items"]]
    assert frame not in left
    assert delivery in left


async def test_retry_and_purge_refuse_unknown_hidden_and_malformed_ids_and_do_nothing(
    api: ApiHarness, letters: dict[str, str]
) -> None:
    owner = await api.login("owner", Role.STREAMER, ["*"])
    luna = await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])
    for path in ("/dlq/retry", "/dlq/purge"):
        ids = [letters["own-frame"], "1-0"]
        body = assert_json_error(await api.client.post(path, json={"ids": ids}, headers=owner), 404)
        assert "no dead letter 1-0" in body["detail"]
        hidden = [letters["own-frame"], letters["other-delivery"]]
        body = assert_json_error(
            await api.client.post(path, json={"ids": hidden}, headers=luna), 404
        )
        assert letters["other-delivery"] in body["detail"]
        for bad in ({}, {"ids": []}, {"ids": ["x"]}, {"ids": ["1-0"] * 201}, {"ids": "1-0"}):
            assert_json_error(await api.client.post(path, json=bad, headers=owner), 400)
        extra = {"ids": [letters["own-frame"]], "all": True}
        assert_json_error(await api.client.post(path, json=extra, headers=owner), 400)
    assert (await get_dlq(api, owner))["total"] == 4
    assert await api.bus.length(api.keys.raw) == 0
    moderator = await api.login("mod", Role.MODERATOR, [STREAMER_HANDLE])
    for path in ("/dlq/retry", "/dlq/purge"):
        ids = {"ids": [letters["own-frame"]]}
        assert_json_error(await api.client.post(path, json=ids), 401)
        assert_json_error(await api.client.post(path, json=ids, headers=moderator), 403)


async def test_purge_deletes_the_letters_named(api: ApiHarness, letters: dict[str, str]) -> None:
    luna = await api.login("luna", Role.STREAMER, [STREAMER_HANDLE])
    mine = [letters["own-frame"], letters["own-delivery"]]
    response = await api.client.post("/dlq/purge", json={"ids": mine}, headers=luna)
    assert response.status_code == 200, response.text
    assert response.json() == {"purged": mine}
    owner = await api.login("owner", Role.STREAMER, ["*"])
    body = await get_dlq(api, owner)
    assert [item["id"] for item in body["items"]] == [letters["broken"], letters["other-delivery"]]
    assert body["total"] == 2
