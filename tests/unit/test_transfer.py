"""The pure parts of export and import: how the import cuts its input into chunks the mock
provider reads line for line, and how an event becomes a flat CSV/Parquet row."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from tests.support.paths import FIXTURES
from ttlp.cli.transfer import Chunk, read_chunks
from ttlp.contracts.events import GiftPayload, decode_event
from ttlp.db import export as ex
from ttlp.errors import ConfigError
from ttlp.tiktok.providers.mock import load_fixture

FRAMES = [
    line for line in (FIXTURES / "raw-frames.ndjson").read_text().splitlines() if line.strip()
]
EVENTS = [
    decode_event(line)
    for line in (FIXTURES / "unified-events.ndjson").read_text().splitlines()
    if line.strip()
]


def chunks_of(data: bytes, tmp_path: Path, size: int) -> list[tuple[list[int], list[str]]]:
    """Each chunk's line numbers and what the mock reads from it (``invalid`` or the type)."""
    read: list[int] = []
    out = []
    for chunk in read_chunks(io.BytesIO(data), tmp_path, "in", size=size, read=read.append):
        assert isinstance(chunk, Chunk)
        lines = load_fixture(chunk.path)
        assert len(lines) == len(chunk.numbers)
        out.append(
            (
                list(chunk.numbers),
                [line.frame.type if line.frame else f"invalid:{line.invalid}" for line in lines],
            )
        )
    assert sum(read) == len(data)
    return out


def test_chunks_start_at_a_frame_and_keep_the_input_line_numbers(tmp_path: Path) -> None:
    text = "\n".join(["not json", FRAMES[0], "", FRAMES[1], "{}", FRAMES[2], FRAMES[3]]) + "\n"
    chunks = chunks_of(text.encode(), tmp_path, size=2)
    # A chunk closes at the first frame after 2 lines (a line that is not one stays behind).
    assert [numbers for numbers, _ in chunks] == [[1, 2], [4, 5], [6, 7]]
    first, second, third = (kinds for _, kinds in chunks)
    assert first[0].startswith(f"invalid:{tmp_path / 'chunk.ndjson'}:1: not a raw.v1 frame")
    assert first[1] == json.loads(FRAMES[0])["type"]
    assert second[0] == json.loads(FRAMES[1])["type"]
    assert second[1].startswith("invalid:")
    assert third == [json.loads(FRAMES[2])["type"], json.loads(FRAMES[3])["type"]]


def test_a_line_separator_inside_a_frame_does_not_cut_it(tmp_path: Path) -> None:
    frame = json.loads(FRAMES[0])
    frame["data"]["uniqueId"] = "a\u2028b\u2029c\x85d"
    data = (json.dumps(frame, ensure_ascii=False) + "\r\n").encode()
    assert len(data.decode().splitlines()) > 1  # what the mock alone would make of it
    [(numbers, kinds)] = chunks_of(data, tmp_path, size=10)
    assert numbers == [1]
    assert kinds == [frame["type"]]


def test_a_file_without_frames_is_refused_with_a_hint(tmp_path: Path) -> None:
    events = "\n".join(msgspec.json.encode(e).decode() for e in EVENTS[:3]).encode()
    with pytest.raises(ConfigError, match=r"holds UnifiedEvent lines .* --raw"):
        chunks_of(events, tmp_path, size=10)
    with pytest.raises(ConfigError, match=r"no line of in is a raw.v1 frame \(line 3 is not\)"):
        chunks_of(b"\n  \nnope\n", tmp_path, size=10)
    assert chunks_of(b"\n\n", tmp_path, size=10) == []


def test_a_streak_adds_its_coins_once() -> None:
    gifts = [e for e in EVENTS if isinstance(e.payload, GiftPayload)]
    streak = [g for g in gifts if g.payload.is_gift_streak]
    assert any(g.payload.streak_active for g in streak)
    for gift in gifts:
        counted = ex.counted_coins(gift.payload)
        ends = gift.payload.streak_end is True
        assert counted == (gift.payload.coins if ends else 0)
    single = msgspec.structs.replace(
        gifts[0].payload, streak_end=msgspec.UNSET, streak_active=msgspec.UNSET
    )
    assert ex.counted_coins(single) == single.coins


def test_flat_rows_name_the_chat_text_and_the_gift() -> None:
    at = datetime(2024, 11, 21, 19, 30, tzinfo=UTC)
    chat = next(e for e in EVENTS if e.__struct_config__.tag == "CHAT")
    row = dict(zip(ex.CSV_COLUMNS, ex.flat(ex.StoredEvent(at, chat)), strict=True))
    assert row["type"] == "CHAT"
    assert row["text"] == chat.payload.message  # type: ignore[union-attr]
    assert row["handle"] == chat.user.unique_id
    assert row["gift"] is None
    assert row["coins"] is None
    end = next(e for e in EVENTS if isinstance(e.payload, GiftPayload) and e.payload.streak_end)
    row = dict(zip(ex.CSV_COLUMNS, ex.flat(ex.StoredEvent(at, end)), strict=True))
    assert isinstance(end.payload, GiftPayload)
    assert (row["gift"], row["count"], row["coins"]) == (
        end.payload.gift_name,
        end.payload.gift_count,
        end.payload.coins,
    )


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx"])
def test_csv_cells_never_start_a_formula(text: str) -> None:
    assert ex.csv_cell(text) == "'" + text
    assert ex.csv_cell("plain") == "plain"
    assert ex.csv_cell(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00.000Z"


def test_ndjson_lines_escape_what_splitlines_breaks_at() -> None:
    document = msgspec.json.encode({"m": "a\u2028b\u2029c\x85d"})
    line = ex.line(document)
    assert line.endswith(b"\n")
    assert len(line.decode().splitlines()) == 1
    assert json.loads(line) == {"m": "a\u2028b\u2029c\x85d"}
