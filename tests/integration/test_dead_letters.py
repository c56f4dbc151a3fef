"""No entry can stop a consumer, and every dead letter can go back (issue 11): bytes that are
not UTF-8, impossible dates and huge frames reach ``ttlc:dlq`` with their real error, capped,
and ``ttlp dlq retry`` sends any stage's letter back to the stream it came from."""

from __future__ import annotations

import base64
import hashlib
import json

import msgspec
import pytest
import redis.asyncio as aioredis

from ttlp.bus import dlq
from ttlp.bus.base import Bus
from ttlp.bus.consumer import Consumer, Failure
from ttlp.bus.keys import GROUP_NORMALIZER, Keys
from ttlp.contracts.events import DeadLetter, frame_to_fields
from ttlp.roles.normalize import make_handler
from ttlp.settings import BusSettings
from ttlp.tiktok.providers.mock import bundled_fixture, load_fixture

pytestmark = pytest.mark.integration


def good_frames(n: int) -> list[dict[str, str]]:
    lines = [line for line in load_fixture(bundled_fixture()) if line.frame is not None]
    return [frame_to_fields(line.frame) for line in lines[:n] if line.frame is not None]


def normalizer(bus: Bus, keys: Keys, **settings: object) -> Consumer:
    base: dict[str, object] = {"batch_size": 50, "block_ms": 10, "claim_interval_s": 3600.0}
    base.update(settings)
    return Consumer(
        bus=bus,
        stream=keys.raw,
        group=keys.group(GROUP_NORMALIZER),
        name="n1",
        handler=make_handler(bus, keys.events, 1_048_576),
        dlq_stream=keys.dlq,
        stage="normalizer",
        settings=msgspec.convert(base, BusSettings),
    )


async def letters(bus: Bus, keys: Keys) -> list[DeadLetter]:
    return [msgspec.convert(e.fields, DeadLetter, strict=False) for e in await bus.range(keys.dlq)]


async def test_bytes_that_are_not_utf8_are_dead_lettered_as_base64_and_retried_as_the_same_bytes(
    redis_url: str, key_prefix: str
) -> None:
    """The entry of issue 11 item 1: it used to crash the normalizer on every start."""
    from ttlp.bus.redis import RedisBus

    bus = RedisBus(redis_url)
    raw_client = aioredis.from_url(redis_url)  # bytes in, bytes out: what another producer sees
    keys = Keys(key_prefix)
    try:
        frames = good_frames(3)
        await bus.publish(keys.raw, frames[0])
        poison = {
            b"schemaVersion": b"raw.v1",
            b"type": b"WebcastChatMessage",
            b"data": b'{"a":"\xff"}',
        }
        await raw_client.xadd(keys.raw, poison)  # type: ignore[arg-type]
        # Not UTF-8 where a header field is read, and quoted by the error message.
        await raw_client.xadd(keys.raw, {b"type": b"Webcast\xffMessage", b"data": b"{}"})
        await bus.publish(keys.raw, frames[1])
        consumer = normalizer(bus, keys)
        assert await consumer.run_until_idle() == 4
        letter, header = await letters(bus, keys)
        assert header.reason == "VALIDATION_ERROR"
        assert header.raw_type is msgspec.UNSET  # not printable: left out of the header
        assert header.payload_encoding == "base64"
        assert letter.reason == "ENCODING_ERROR"
        assert "not valid UTF-8" in letter.error
        assert letter.payload_encoding == "base64"
        original = base64.b64decode(letter.payload)
        assert b'"data":"{\\"a\\":\\"\xff\\"}"' in original
        assert letter.payload_sha256 == hashlib.sha256(original).hexdigest()
        assert await bus.length(keys.events) == 2  # its neighbours flowed
        assert sum(g.pending for g in await bus.groups(keys.raw)) == 0

        chosen = await dlq.letters(bus, keys)
        result = await dlq.retry(bus, keys, None, chosen[:1])
        assert (len(result.retried), result.skipped) == (1, [])
        *_, (_, again) = await raw_client.xrange(keys.raw)
        assert again[b"data"] == b'{"a":"\xff"}'  # the same bytes went back
        assert await bus.length(keys.dlq) == 1
    finally:
        await raw_client.delete(keys.raw, keys.events, keys.dlq)
        await raw_client.aclose()
        await bus.close()


async def test_impossible_dates_are_validation_errors_at_once(bus: Bus, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    frames = good_frames(3)
    frames[0]["timestamp"] = "2024-13-45T99:99:99Z"
    frames[1]["ingestedAt"] = "2024-11-21T19:30:00+99:99"
    await bus.publish_many(keys.raw, frames)
    consumer = normalizer(bus, keys)
    await consumer.run_until_idle()
    found = await letters(bus, keys)
    assert [letter.reason for letter in found] == ["VALIDATION_ERROR", "VALIDATION_ERROR"]
    assert "is not a date" in found[0].error
    assert "month must be in 1..12" in found[0].error
    assert await bus.length(keys.events) == 1


async def test_a_huge_frame_is_kept_once_capped_with_its_size_and_hash(
    bus: Bus, key_prefix: str
) -> None:
    keys = Keys(key_prefix)
    (frame,) = good_frames(1)
    frame["data"] = json.dumps({"blob": "x" * 2_000_000})
    await bus.publish(keys.raw, frame)
    consumer = normalizer(bus, keys, dlq_max_payload=4096)
    await consumer.run_until_idle()
    (letter,) = await letters(bus, keys)
    assert letter.reason == "FRAME_TOO_LARGE"
    assert letter.payload_truncated is True
    assert len(letter.payload.encode()) <= 4096
    whole = json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode()
    assert letter.payload_bytes == len(whole)
    assert letter.payload_sha256 == hashlib.sha256(whole).hexdigest()
    result = await dlq.retry(bus, keys, None, await dlq.letters(bus, keys))
    assert result.retried == []
    assert "cut at DLQ_MAX_PAYLOAD_BYTES" in result.skipped[0][1]


async def test_a_letter_of_any_stage_goes_back_to_the_stream_it_came_from(
    bus: Bus, key_prefix: str
) -> None:
    """The store's MAX_DELIVERIES letters of issue 11 item 3 answered "cannot be retried"."""
    keys = Keys(key_prefix)
    attempts = 0

    async def refusing(entries: list[object]) -> list[Failure]:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("the database refused")  # not classified: spends deliveries

    consumer = Consumer(
        bus=bus,
        stream=keys.events,
        group=keys.group("storage"),
        name="s1",
        handler=refusing,  # type: ignore[arg-type]
        dlq_stream=keys.dlq,
        stage="store",
        settings=BusSettings(block_ms=10, claim_interval_s=3600.0, max_deliveries=2),
    )
    await bus.publish(keys.events, {"event": '{"eventType":"CHAT"}'})
    await consumer.run_until_idle()
    (letter,) = await letters(bus, keys)
    assert (letter.stage, letter.reason) == ("store", "MAX_DELIVERIES")
    assert "last error: RuntimeError: the database refused" in letter.error
    assert letter.source_stream == keys.events

    result = await dlq.retry(bus, keys, None, await dlq.letters(bus, keys))
    assert (len(result.retried), result.skipped) == (1, [])
    back = await bus.range(keys.events)
    assert [e.fields for e in back][-1] == {"event": '{"eventType":"CHAT"}'}
    assert await bus.length(keys.dlq) == 0
