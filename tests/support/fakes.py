"""Fixtures around the fakes in ``tests/fakes``: each started for one test and stopped after."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from TikTokLive.client.web.web_settings import WebDefaults

from tests.fakes.euler_api import FakeEulerApi
from tests.fakes.tiktok import FakeTikTok


@pytest.fixture
async def fake_tiktok(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeTikTok]:
    """A running FakeTikTok; TikTokLive's global ``WebDefaults`` are restored afterwards."""
    for name in ("tiktok_app_url", "tiktok_webcast_url", "tiktok_sign_url"):
        monkeypatch.setattr(WebDefaults, name, getattr(WebDefaults, name))
    async with FakeTikTok() as tiktok:
        yield tiktok


@pytest.fixture
async def euler() -> AsyncIterator[FakeEulerApi]:
    """The fake Euler Stream REST API, served in the test's event loop."""
    async with FakeEulerApi() as fake:
        yield fake
