"""DATABASE_URL: the forms users paste become the async-driver URL ttlp uses (DESIGN §1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from ttlp.db.engine import create_engine, normalize_database_url
from ttlp.errors import ConfigError

DATA = Path("/var/lib/ttlp")


def test_unset_means_the_sqlite_file_in_the_data_directory() -> None:
    assert normalize_database_url(None, DATA) == "sqlite+aiosqlite:////var/lib/ttlp/ttlp.db"
    assert normalize_database_url("  ", DATA) == "sqlite+aiosqlite:////var/lib/ttlp/ttlp.db"


def test_a_relative_data_directory_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalize_database_url(None, Path("data")) == (
        f"sqlite+aiosqlite:///{tmp_path}/data/ttlp.db"
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:////srv/ttlp.db", "sqlite+aiosqlite:////srv/ttlp.db"),
        ("sqlite:///relative/ttlp.db", "sqlite+aiosqlite:///relative/ttlp.db"),
        ("sqlite+pysqlite:////srv/ttlp.db", "sqlite+aiosqlite:////srv/ttlp.db"),
        ("sqlite+aiosqlite:////srv/ttlp.db", "sqlite+aiosqlite:////srv/ttlp.db"),
    ],
)
def test_sqlite_urls_use_aiosqlite(given: str, expected: str) -> None:
    assert normalize_database_url(given, DATA) == expected


def test_sqlite_home_paths_are_expanded() -> None:
    url = normalize_database_url("sqlite:///~/ttlp.db", DATA)
    assert url == f"sqlite+aiosqlite:///{Path.home()}/ttlp.db"


@pytest.mark.parametrize(
    "given",
    [
        "postgres://app:pw@db.example.com:5432/ttlp",
        "postgresql://app:pw@db.example.com:5432/ttlp",
        "postgresql+psycopg2://app:pw@db.example.com:5432/ttlp",
        "postgresql+psycopg://app:pw@db.example.com:5432/ttlp",
        "postgresql+asyncpg://app:pw@db.example.com:5432/ttlp",
        " postgresql://app:pw@db.example.com:5432/ttlp\n",
    ],
)
def test_postgres_urls_use_asyncpg(given: str) -> None:
    assert normalize_database_url(given, DATA) == (
        "postgresql+asyncpg://app:pw@db.example.com:5432/ttlp"
    )


def test_special_characters_in_the_password_survive() -> None:
    url = normalize_database_url("postgresql://app:p%40ss%2Fw%25rd@db/ttlp", DATA)
    assert make_url(url).password == "p@ss/w%rd"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sslmode=require", {"ssl": "require"}),
        ("sslmode=verify-full", {"ssl": "verify-full"}),
        ("ssl=true", {"ssl": "require"}),
        ("ssl=false", {"ssl": "disable"}),
        ("sslmode=require&channel_binding=require", {"ssl": "require"}),
        ("connect_timeout=5", {"timeout": "5"}),
        ("application_name=dash&keepalives=1", {"application_name": "dash"}),
        ("host=/var/run/postgresql", {"host": "/var/run/postgresql"}),
    ],
)
def test_libpq_parameters_are_translated_for_asyncpg(query: str, expected: dict[str, str]) -> None:
    url = normalize_database_url(f"postgresql://app@db/ttlp?{query}", DATA)
    assert dict(make_url(url).query) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("mysql://app@db/ttlp", "scheme 'mysql' is not supported"),
        ("redis://localhost:6379/0", "scheme 'redis' is not supported"),
        ("not a url", "is not a database URL"),
        ("sqlite://", "in-memory SQLite"),
        ("sqlite:///:memory:", "in-memory SQLite"),
        ("postgresql://app@db:5432", "names no database"),
        ("postgresql://app@db/ttlp?sslmode=sometimes", "is not an SSL mode"),
        ("postgresql://app@db/ttlp?sslrootcert=/ca.pem", "PGSSLROOTCERT"),
        ("postgresql://app@db/ttlp?frobnicate=1", "parameter 'frobnicate' is not supported"),
        ("postgresql://app@db/ttlp?connect_timeout=soon", "must be a number"),
    ],
)
def test_unusable_urls_are_refused_with_a_reason(given: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        normalize_database_url(given, DATA)


def test_refusals_never_show_the_password() -> None:
    with pytest.raises(ConfigError) as raised:
        normalize_database_url("postgresql://app:Sup3r-s3cret@db", DATA)
    assert "Sup3r-s3cret" not in str(raised.value)


async def test_typed_connect_parameters_leave_the_url() -> None:
    url = normalize_database_url(
        "postgresql://app@db/ttlp?connect_timeout=3&application_name=dash&sslmode=require", DATA
    )
    engine = create_engine(url)
    await engine.dispose()
    # asyncpg takes URL query values as keywords, as strings: the typed ones move to connect_args.
    assert dict(engine.url.query) == {"ssl": "require"}


async def test_sqlite_engines_create_their_directory(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "ttlp.db"
    engine = create_engine(normalize_database_url(f"sqlite:///{target}", DATA))
    await engine.dispose()
    assert target.parent.is_dir()
