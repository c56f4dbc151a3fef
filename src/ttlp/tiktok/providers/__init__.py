"""TikTok providers (direct, euler, mock): one ``Provider`` protocol, one factory."""

from __future__ import annotations

from pathlib import Path

from ttlp.errors import ConfigError
from ttlp.settings import IngestSettings, Settings
from ttlp.tiktok.providers.base import Provider


def check_settings(settings: Settings) -> None:
    """Refuse, before anything starts, an ingest that cannot work as configured (the mock's
    fixture is read here too: a missing or broken file is said before any role starts)."""
    ingest = settings.ingest
    if ingest.provider != "mock" and not ingest.unique_ids:
        raise ConfigError(
            f"INGEST_PROVIDER={ingest.provider} needs the streamer(s) to watch: set "
            "TIKTOK_UNIQUE_ID (comma-separated handles) or pass --unique-id"
        )
    make_provider(settings)  # e.g. euler without EULER_API_KEY, or a bad MOCK_FIXTURE


def make_provider(settings: Settings) -> Provider:
    """The provider INGEST_PROVIDER names (one instance serves every streamer)."""
    ingest: IngestSettings = settings.ingest
    if ingest.provider == "mock":
        from ttlp.tiktok.providers.mock import MockProvider, bundled_fixture, load_fixture

        fixture = Path(ingest.mock_fixture) if ingest.mock_fixture else bundled_fixture()
        return MockProvider(load_fixture(fixture), rate=ingest.mock_rate, loop=ingest.mock_loop)
    if ingest.provider == "euler":
        from ttlp.tiktok.providers.euler import EulerProvider

        # EULER_API_URL: the REST API the live check asks (and the rules' chat actions use).
        return EulerProvider.from_settings(ingest, api_url=settings.rules.euler_api_url)
    from ttlp.tiktok.providers.direct import DirectProvider

    return DirectProvider(ingest)
