"""A row's time on SQLite cut from its ISO text (``ttlp.db.store.sqlite_time``): always what
formatting the parsed datetime gives (``sqlite_datetime``), whatever form the text has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttlp.aio import now_iso, parse_iso
from ttlp.db import store
from ttlp.db.store import sqlite_datetime, sqlite_time

moments = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=st.just(UTC)
)


def forms(moment: datetime) -> list[str]:
    ms = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return [
        ms.isoformat(timespec="milliseconds").replace("+00:00", "Z"),  # ttlp's own
        moment.isoformat().replace("+00:00", "Z"),
        moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
        moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),
        ms.astimezone(timezone(timedelta(hours=-2))).isoformat(timespec="milliseconds"),
        ms.isoformat(" ", "milliseconds").replace("+00:00", "Z"),
    ]


@given(moments)
def test_every_form_gives_what_formatting_the_parsed_datetime_gives(moment: datetime) -> None:
    for text in forms(moment):
        parsed = parse_iso(text)
        assert sqlite_time(text, parsed) == sqlite_datetime(parsed), text


@pytest.mark.parametrize("text", ["2024-W47-4T19:30:00.250Z", "2024-11-21T19:30:00.250+00:00"])
def test_look_alikes_of_the_own_form_are_formatted(text: str) -> None:
    parsed = parse_iso(text)
    assert sqlite_time(text, parsed) == sqlite_datetime(parsed) == "2024-11-21 19:30:00.250000"


def test_ttlps_own_form_is_cut_from_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    text = now_iso()
    expected = sqlite_datetime(parse_iso(text))

    def refuse(value: datetime) -> str:
        raise AssertionError("formatted, not cut")

    monkeypatch.setattr(store, "sqlite_datetime", refuse)
    assert sqlite_time(text, parse_iso(text)) == expected
