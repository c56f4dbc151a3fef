"""The shared time, sleep and back-off helpers (ttlp.aio)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from itertools import islice

import pytest

from ttlp.aio import Backoff, as_utc, iso_ms, now_iso, parse_iso, sleep_or_stop, to_iso


async def test_sleep_or_stop_returns_as_soon_as_stop_is_set() -> None:
    stop = asyncio.Event()
    sleeper = asyncio.create_task(sleep_or_stop(stop, 3600))
    await asyncio.sleep(0)
    assert not sleeper.done()
    stop.set()
    await asyncio.wait_for(sleeper, 5)  # an hour's sleep ended by the stop event


def test_backoff_doubles_from_its_start_to_its_cap() -> None:
    backoff = Backoff(initial_s=0.5, max_s=30.0)
    middle = [backoff.delay(n, rng=lambda: 0.5) for n in range(1, 9)]
    assert middle == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_backoff_jitter_stays_within_its_fraction() -> None:
    backoff = Backoff(initial_s=1.0, max_s=60.0, jitter=0.2)
    assert backoff.delay(3, rng=lambda: 0.0) == pytest.approx(3.2)
    assert backoff.delay(3, rng=lambda: 1.0) == pytest.approx(4.8)
    assert list(islice(backoff.delays(rng=lambda: 0.5), 4)) == [1.0, 2.0, 4.0, 8.0]


def test_timestamps_are_written_as_utc_with_z() -> None:
    assert iso_ms(1_732_217_400_123) == "2024-11-21T19:30:00.123Z"
    assert now_iso().endswith("Z")
    paris = timezone(timedelta(hours=1))
    assert to_iso(datetime(2024, 11, 21, 20, 30, tzinfo=paris)) == "2024-11-21T19:30:00.000Z"
    assert to_iso(datetime(2024, 11, 21, 19, 30, 0, 123456)) == "2024-11-21T19:30:00.123456Z"
    assert to_iso(datetime(2024, 11, 21, 19, 30), precision="auto") == "2024-11-21T19:30:00Z"


def test_timestamps_are_read_back_as_aware_utc() -> None:
    assert parse_iso("2024-11-21T19:30:00.123Z") == datetime(2024, 11, 21, 19, 30, 0, 123000, UTC)
    assert parse_iso("2024-11-21T20:30:00+01:00") == datetime(2024, 11, 21, 19, 30, tzinfo=UTC)
    assert parse_iso("2024-11-21T19:30:00").tzinfo is UTC  # no offset: UTC
    assert as_utc(datetime(2024, 1, 1)) == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"month must be in 1\.\.12|Invalid isoformat"):
        parse_iso("2024-13-45T99:99:99Z")
