"""The overlays' pure parts: options (defaults, merge, errors naming the field) and what an
uploaded file is by its first bytes."""

from __future__ import annotations

import msgspec
import pytest
from litestar.exceptions import ValidationException

from tests.support.overlays import NOT_SOUNDS, SOUNDS
from ttlp.api.overlays.audio import audio_type
from ttlp.api.overlays.options import Options, apply_patch, merge, stored_options, to_document


def test_merge_goes_into_objects_and_replaces_everything_else() -> None:
    current = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge(current, {"a": {"c": [3]}, "e": None}) == {
        "a": {"b": 1, "c": [3]},
        "d": 1,
        "e": None,
    }
    assert current == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # not changed in place


def test_a_patch_keeps_what_it_does_not_name() -> None:
    first = apply_patch(Options(), {"alerts": {"minCoins": 50, "tts": {"chat": True}}})
    second = apply_patch(first, {"alerts": {"tts": {"rate": 1.5}}})
    assert (second.alerts.min_coins, second.alerts.tts.chat, second.alerts.tts.rate) == (
        50,
        True,
        1.5,
    )
    assert second.chat == Options().chat


def test_an_empty_patch_changes_nothing() -> None:
    assert apply_patch(Options(), {}) == Options()


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"alerts": {"minCoins": -5}}, "alerts.minCoins"),
        ({"ticker": {"kinds": ["GIFT", "BOGUS"]}}, "ticker.kinds[1]"),
        ({"goal": {"metric": 3}}, "goal.metric"),
        ({"alerts": {"sounds": {"gift": 2**60}}}, "alerts.sounds.gift"),
        ([], "data"),
    ],
)
def test_an_invalid_patch_names_the_field(patch: object, key: str) -> None:
    with pytest.raises(ValidationException) as refused:
        apply_patch(Options(), patch)
    assert refused.value.status_code == 400
    assert isinstance(refused.value.extra, list)
    [problem] = refused.value.extra
    assert isinstance(problem, dict)
    assert (problem["key"], problem["source"]) == (key, "body")
    assert problem["message"]
    assert key in refused.value.detail


def test_repeated_ticker_kinds_are_kept_once_in_order() -> None:
    options = apply_patch(Options(), {"ticker": {"kinds": ["GIFT", "FOLLOW", "GIFT"]}})
    assert options.ticker.kinds == ["GIFT", "FOLLOW"]


def test_stored_options_read_back_and_unreadable_ones_are_the_defaults() -> None:
    changed = apply_patch(Options(), {"chat": {"fontSize": 40}})
    document = to_document(changed)
    assert stored_options(document) == changed
    assert stored_options(msgspec.json.encode(document).decode()) == changed
    assert stored_options(None) == Options()
    assert stored_options({"chat": {"fontSize": "huge"}}) == Options()
    assert stored_options("{not json") == Options()


@pytest.mark.parametrize("name", list(SOUNDS))
def test_each_accepted_format_is_recognised_by_its_bytes(name: str) -> None:
    data, content_type = SOUNDS[name]
    assert audio_type(data) == content_type


@pytest.mark.parametrize("name", list(NOT_SOUNDS))
def test_anything_else_is_not_a_sound(name: str) -> None:
    assert audio_type(NOT_SOUNDS[name]) is None


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\xff",
        bytes([0xFF, 0xFB, 0xF0, 0x00]),  # bad bitrate index
        bytes([0xFF, 0xFB, 0x0C, 0x00]),  # reserved sample rate
        bytes([0xFF, 0xEB, 0x90, 0x00]),  # reserved MPEG version
        b"RIFF\x00\x00\x00\x00AVI ",  # a RIFF that is not WAVE
        b"Ogg",
    ],
)
def test_near_misses_are_not_sounds(head: bytes) -> None:
    assert audio_type(head) is None
