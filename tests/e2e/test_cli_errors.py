"""Errors read as one line that says what to do (issue 11 item 9): a wrong database for
``ttlp migrate``, and a broken mock fixture found before any role starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.processes import Ttlp

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://nobody:hunter2@127.0.0.1:5432/postgres", 'role "nobody" does not exist'),
        ("postgresql://postgres@127.0.0.1:5432/ttlp_no_such_db", "does not exist"),
        ("postgresql://postgres:hunter2@nohost.invalid:5432/postgres", "nohost.invalid"),
    ],
)
def test_migrate_against_a_wrong_database_fails_in_one_line(
    ttlp: Ttlp, url: str, says: str
) -> None:
    result = ttlp.run("migrate", DATABASE_URL=url, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ttlp: error: cannot migrate the database at ")
    assert says in lines[0]
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_a_broken_mock_fixture_is_refused_before_any_role_starts(
    ttlp: Ttlp, tmp_path: Path
) -> None:
    fixture = tmp_path / "broken.ndjson"
    fixture.write_text('{"not": "a frame"}\n')
    result = ttlp.run("run", "--roles", "all", MOCK_FIXTURE=str(fixture), timeout=60)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"ttlp: error: {fixture}:1: not a raw.v1 frame")
    )
    assert "ttlp started" not in result.stderr + result.stdout  # no role ever ran
