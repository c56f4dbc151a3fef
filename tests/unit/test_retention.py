"""Retention's schedule and report without a database: when a run is due, how the store role's
task waits out an outage or a failure (its behaviour on both databases is in
``tests/integration/test_retention.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.db import retention
from ttlp.db.engine import create_engine
from ttlp.db.retention import STEP_KEYS, PruneReport, due_in
from ttlp.roles.store import (
    PRUNE_FAILED_RETRY_S,
    PRUNE_OUTAGE_BACKOFF,
    PRUNE_START_DELAY_S,
    prune_periodically,
)
from ttlp.settings import RetentionSettings

NOW = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)
DAY = 86_400.0


def report(at: datetime, **rows: int) -> PruneReport:
    return PruneReport(at=at, rows={key: rows.get(key, 0) for key in STEP_KEYS}, seconds=1.5)


def test_a_run_is_due_an_interval_after_the_last_recorded_one() -> None:
    assert due_in(None, NOW, DAY) == 0
    assert due_in(report(NOW - timedelta(hours=1)), NOW, DAY) == DAY - 3600
    assert due_in(report(NOW - timedelta(days=3)), NOW, DAY) == 0
    # A clock that went back: wait the interval from the recorded run, no more.
    assert due_in(report(NOW + timedelta(hours=1)), NOW, DAY) == DAY + 3600


def test_the_recorded_report_reads_back_as_written() -> None:
    written = report(NOW, **{"events.archived": 12, "users.pseudonymized": 3})

    read = PruneReport.from_json(written.to_json())

    assert read == written
    assert read.changed() == {"events.archived": 12, "users.pseudonymized": 3}
    assert read.total == 15


@pytest.fixture
async def unreachable() -> AsyncIterator[AsyncEngine]:
    """An engine on a port nothing listens on: every connection is refused."""
    engine = create_engine("postgresql+asyncpg://ttlp@127.0.0.1:1/ttlp")
    yield engine
    await engine.dispose()


async def naps_until(engine: AsyncEngine, settings: RetentionSettings, count: int) -> list[float]:
    """Run the store role's prune task with a sleep that records and stops after ``count``."""
    stop = asyncio.Event()
    naps: list[float] = []

    async def sleep(_stop: asyncio.Event, seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == count:
            stop.set()

    await prune_periodically(engine, settings, stop, clock=lambda: NOW, sleep=sleep)
    return naps


async def test_a_database_outage_pauses_pruning_with_back_off(unreachable: AsyncEngine) -> None:
    naps = await naps_until(unreachable, RetentionSettings(), 4)

    assert naps[0] == PRUNE_START_DELAY_S
    for attempt, nap in enumerate(naps[1:], 1):
        base = min(PRUNE_OUTAGE_BACKOFF.initial_s * 2 ** (attempt - 1), PRUNE_OUTAGE_BACKOFF.max_s)
        assert base * 0.8 <= nap <= base * 1.2


async def test_a_failed_run_is_logged_and_tried_again_later(
    monkeypatch: pytest.MonkeyPatch, unreachable: AsyncEngine
) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise ValueError("a bug")

    monkeypatch.setattr(retention, "prune_if_due", broken)

    naps = await naps_until(unreachable, RetentionSettings(), 3)

    assert naps == [PRUNE_START_DELAY_S, PRUNE_FAILED_RETRY_S, PRUNE_FAILED_RETRY_S]
