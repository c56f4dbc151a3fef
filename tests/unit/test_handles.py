"""The room → handle directory the api feed, the rules and the forwarder share."""

from __future__ import annotations

import pytest

import ttlp.db.handles as handles_module
from ttlp.db.handles import HandleDirectory


class Table:
    """What the ``streams`` table answers, counting the questions."""

    def __init__(self) -> None:
        self.rooms: dict[str, str] = {}
        self.asked: list[str] = []

    async def lookup(self, stream_id: str) -> str | None:
        self.asked.append(stream_id)
        return self.rooms.get(stream_id)


async def test_a_known_room_is_asked_once_and_kept_in_lower_case() -> None:
    table = Table()
    table.rooms["1"] = "Luna.Beats"
    directory = HandleDirectory(table.lookup)
    assert await directory.handle("1") == "luna.beats"
    assert await directory.handle("1") == "luna.beats"
    assert table.asked == ["1"]


async def test_a_learned_room_needs_no_lookup() -> None:
    table = Table()
    directory = HandleDirectory(table.lookup)
    directory.learn("2", "Other")
    assert await directory.handle("2") == "other"
    assert table.asked == []


async def test_an_unknown_room_is_asked_again_after_the_miss_ttl() -> None:
    table = Table()
    now = [100.0]
    directory = HandleDirectory(table.lookup, miss_ttl_s=5.0, clock=lambda: now[0])
    assert await directory.handle("3") is None
    table.rooms["3"] = "late.writer"  # the store role wrote the stream meanwhile
    now[0] += 4.9
    assert await directory.handle("3") is None  # still remembered as unknown
    now[0] += 0.2
    assert await directory.handle("3") == "late.writer"
    assert table.asked == ["3", "3"]


async def test_the_directory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handles_module, "MAX_ROOMS", 3)
    table = Table()
    directory = HandleDirectory(table.lookup)
    for room in ("a", "b", "c", "d"):
        directory.learn(room, room)
    assert await directory.handle("d") == "d"
    assert await directory.handle("a") is None  # forgotten when the bound was reached
    assert table.asked == ["a"]
