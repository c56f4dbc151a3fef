"""A deployment without a streamer says, loudly and again, that its events are fake: the mock
provider stands in for TikTok when nothing names a provider or a streamer; on Redis or
PostgreSQL that is a WARNING at start and every ``REPEAT_S``; the embedded demo gets one info
line; the mock chosen on purpose stays quiet."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from ttlp import log
from ttlp.settings import Settings
from ttlp.tiktok.providers.fallback import NOTICE, WARNING, announce, fake_events_warning

REDIS = {"REDIS_URL": "redis://r:6379/0"}
POSTGRES = {"DATABASE_URL": "postgresql://u:p@db/ttlp"}


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    log.configure("info", "json", [], stream=buffer)
    yield buffer
    logger.remove()


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.mark.parametrize("backend", [REDIS, POSTGRES, {**REDIS, **POSTGRES}], ids=str)
def test_a_deployment_without_a_streamer_gets_the_warning(backend: dict[str, str]) -> None:
    settings = Settings.from_env({**backend, "TIKTOK_UNIQUE_ID": " "})
    assert settings.ingest.provider == "mock"
    assert fake_events_warning(settings) == WARNING
    assert "TIKTOK_UNIQUE_ID" in WARNING
    assert "FAKE" in WARNING


@pytest.mark.parametrize(
    "env",
    [
        {},  # the embedded demo
        {"DATABASE_URL": "sqlite:///tmp/x.db"},
        {**REDIS, "INGEST_PROVIDER": "mock"},  # the mock on purpose (tests, load, demos)
        {**REDIS, "TIKTOK_UNIQUE_ID": "alice"},
        {**POSTGRES, "INGEST_PROVIDER": "euler", "TIKTOK_UNIQUE_ID": "alice"},
    ],
    ids=["embedded", "sqlite", "mock-on-purpose", "streamer", "euler"],
)
def test_no_warning_when_the_mock_is_not_a_fallback_on_a_deployment(env: dict[str, str]) -> None:
    assert fake_events_warning(Settings.from_env(env)) is None


def test_the_provider_flag_counts_as_a_choice() -> None:
    assert fake_events_warning(Settings.from_env(REDIS, **{"ingest.provider": "mock"})) is None


async def test_a_deployment_repeats_the_warning_until_stopped(out: io.StringIO) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(announce(Settings.from_env(REDIS), stop, every=0.05))
    await asyncio.sleep(0.18)
    stop.set()
    await asyncio.wait_for(task, 1)
    warnings = [line for line in lines(out) if line["level"] == "warning"]
    assert len(warnings) >= 3
    assert {w["message"] for w in warnings} == {WARNING}
    assert {(w["role"], w["provider"]) for w in warnings} == {("ingest", "mock")}


async def test_the_embedded_demo_says_it_once_as_info(out: io.StringIO) -> None:
    await asyncio.wait_for(announce(Settings.from_env({}), asyncio.Event(), every=0.01), 1)
    assert [(line["level"], line["message"]) for line in lines(out)] == [("info", NOTICE)]


async def test_the_mock_on_purpose_says_nothing(out: io.StringIO) -> None:
    settings = Settings.from_env({**REDIS, "INGEST_PROVIDER": "mock"})
    await asyncio.wait_for(announce(settings, asyncio.Event(), every=0.01), 1)
    assert lines(out) == []
