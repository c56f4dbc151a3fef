"""``ttlp gdpr erase|list`` as an operator runs them, in a process of their own, on the embedded
SQLite database and on PostgreSQL: the counts they print are the rows that go, they ask first
(and refuse where nobody can answer), and the audit they list names nobody."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.databases import sqlite_url
from tests.support.gdpr import AKHMED, TRACES, seed, snapshot
from tests.support.processes import TTLP, Ttlp
from ttlp.db import tables
from ttlp.db.engine import create_engine
from ttlp.db.erasure import TABLES
from ttlp.db.migrate import upgrade
from ttlp.db.store import Store

pytestmark = pytest.mark.e2e


@pytest.fixture
async def seeded(
    backend: str, ttlp: Ttlp, request: pytest.FixtureRequest
) -> AsyncIterator[AsyncEngine]:
    """The database the commands use (the data directory's SQLite file, or PostgreSQL), with
    the fixture session and what names its viewers."""
    if backend == "sqlite":
        url = sqlite_url(Path(ttlp.env["TTLP_DATA_DIR"]))
        upgrade(url)
    else:
        url = str(request.getfixturevalue("migrated_database_url"))
        ttlp.env["DATABASE_URL"] = url
    ttlp.env["COLUMNS"] = "200"
    engine = create_engine(url)
    try:
        await seed(Store(engine))
        yield engine
    finally:
        await engine.dispose()


def counts(output: str, title: str) -> dict[str, int]:
    """The per-table counts of the table titled ``title`` in a command's output."""
    lines = output[output.index(title) :].splitlines()
    found: dict[str, int] = {}
    for line in lines:
        match = re.match(r"^\s*(\w+)\s+(\d+)\s*$", line)
        if match and match.group(1) in (*TABLES, "total"):
            found[match.group(1)] = int(match.group(2))
        if "total" in found:
            break
    return found


async def audit_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(tables.gdpr_erasures)) or 0)


def run_in_a_terminal(ttlp: Ttlp, *args: str, answer: str) -> subprocess.CompletedProcess[str]:
    """``ttlp *args`` with a terminal on its standard input, where ``answer`` is typed."""
    main, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*TTLP, *args],
            env=ttlp.env,
            cwd=ttlp.cwd,
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(terminal)
        os.write(main, answer.encode())
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(main)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


async def test_erase_outside_a_terminal_needs_yes_and_erases_nothing_without(
    ttlp: Ttlp, seeded: AsyncEngine
) -> None:
    before = await snapshot(seeded)
    result = ttlp.run("gdpr", "erase", "--user-id", AKHMED, stdin="")
    assert result.returncode == 2, result.stdout
    assert "not a terminal" in result.stderr
    assert "--yes" in result.stderr
    assert await snapshot(seeded) == before
    assert await audit_rows(seeded) == 0


async def test_a_dry_run_prints_the_counts_the_erasure_then_deletes(
    ttlp: Ttlp, seeded: AsyncEngine
) -> None:
    before = await snapshot(seeded)
    dry = ttlp.run("gdpr", "erase", "--handle", "@AKHMED_KZN", "--dry-run", stdin="")
    assert dry.returncode == 0, dry.stderr
    would = counts(dry.stdout, "stored about")
    assert "nothing erased" in dry.stdout
    assert await snapshot(seeded) == before

    done = ttlp.run("gdpr", "erase", "--user-id", AKHMED, "--yes", stdin="")
    assert done.returncode == 0, done.stderr
    erased = counts(done.stdout, "erased:")
    assert erased == would
    after = await snapshot(seeded)
    gone = {name: len(before[name]) - len(after[name]) for name in before}
    assert gone == {name: erased[name] for name in TABLES}
    assert erased["total"] == sum(gone.values()) > 0

    listed = ttlp.run("gdpr", "list", stdin="")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if re.match(r"^\s*1\s", line))
    # id, date, time, requested by, total rows, then the count of each table with any
    assert row.split()[3:5] == ["cli", str(erased["total"])]
    for name in TABLES:
        assert (f"{name}={erased[name]}" in listed.stdout) == (erased[name] > 0), name
    assert not any(trace.lower() in listed.stdout.lower() for trace in TRACES)


@pytest.mark.parametrize(("answer", "erased"), [("n\n", False), ("y\n", True)])
async def test_erase_asks_in_a_terminal_and_does_what_the_answer_says(
    ttlp: Ttlp, seeded: AsyncEngine, answer: str, erased: bool
) -> None:
    before = await snapshot(seeded)
    result = run_in_a_terminal(ttlp, "gdpr", "erase", "--user-id", AKHMED, answer=answer)
    assert result.returncode == 0, result.stderr
    assert "for good?" in result.stdout
    assert await audit_rows(seeded) == int(erased)
    if erased:
        assert AKHMED not in (await snapshot(seeded))["users"]
    else:
        assert "nothing erased" in result.stdout
        assert await snapshot(seeded) == before


async def test_an_unknown_user_is_an_error_naming_them(ttlp: Ttlp, seeded: AsyncEngine) -> None:
    result = ttlp.run("gdpr", "erase", "--handle", "nobody.here", "--yes", stdin="")
    assert result.returncode == 2
    assert "@nobody.here" in result.stderr
    both = ttlp.run("gdpr", "erase", "--handle", "a", "--user-id", "1", "--yes", stdin="")
    assert both.returncode == 2
    assert "exactly one" in both.stderr
    assert await audit_rows(seeded) == 0
    empty = ttlp.run("gdpr", "list", stdin="")
    assert empty.returncode == 0, empty.stderr
    assert "no GDPR erasure yet" in empty.stdout
