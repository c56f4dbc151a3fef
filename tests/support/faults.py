"""Fault injection for ``tests/faults``: a Redis server and a PostgreSQL role of the test's own.

The shared servers are never touched: ``fault_redis`` is a ``redis-server`` with AOF on a free
port in the test's directory (stopped, frozen and started again at will), and ``fault_pg`` is
a database owned by a login role of its own, so its connections can be refused (``CONNECTION
LIMIT 0``) and terminated without disturbing anything else.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.paths import FIXTURES
from tests.support.wait import free_port

PG_ADMIN_URL = os.environ.get("TTLP_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


# -- Redis -------------------------------------------------------------------------------------
@dataclass
class FaultRedis:
    """A ``redis-server`` of the test's own, with AOF so that a restart keeps the streams."""

    workdir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",  # a stop loses nothing the server acknowledged
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: self.cli("PING") == "PONG", "redis-server answers", timeout=20)

    def stop(self) -> None:
        """Shut the server down cleanly (AOF flushed): clients see connections refused."""
        assert self.proc is not None
        self.cli("SHUTDOWN")
        self.proc.wait(20)
        self.proc = None

    def freeze(self) -> None:
        """SIGSTOP: the port accepts connections but nothing answers (a hung server)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return result.stdout.strip()

    def close(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def fault_redis(tmp_path: Path) -> Iterator[FaultRedis]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = FaultRedis(workdir, free_port())
    server.start()
    try:
        yield server
    finally:
        server.close()


# -- PostgreSQL --------------------------------------------------------------------------------
def psql(sql: str, url: str = PG_ADMIN_URL) -> str:
    result = subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@dataclass
class FaultPostgres:
    """A database owned by a role of its own: the role's connections can be refused."""

    role: str
    database: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.role}@127.0.0.1:5432/{self.database}"

    def refuse(self) -> None:
        """New connections fail ("too many connections for role"), existing ones are ended."""
        psql(f'ALTER ROLE "{self.role}" CONNECTION LIMIT 0')
        self.terminate()

    def accept(self) -> None:
        psql(f'ALTER ROLE "{self.role}" CONNECTION LIMIT -1')

    def terminate(self) -> int:
        """End every connection of the role (what a server restart or a proxy does)."""
        ended = psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE usename = '{self.role}'"
        )
        return int(ended or 0)

    def scalar(self, sql: str) -> int:
        return int(psql(sql, self.url.replace(self.role, "postgres", 1)) or 0)


@pytest.fixture
def fault_pg() -> Iterator[FaultPostgres]:
    name = f"ttlp_fault_{uuid.uuid4().hex[:8]}"
    psql(f'CREATE ROLE "{name}" LOGIN')
    psql(f'CREATE DATABASE "{name}" OWNER "{name}"')
    try:
        yield FaultPostgres(name, name)
    finally:
        psql(f'ALTER ROLE "{name}" CONNECTION LIMIT -1')
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        psql(f'DROP ROLE IF EXISTS "{name}"')


# -- traffic and observation -------------------------------------------------------------------
def fault_fixture(path: Path, frames: int) -> Path:
    """An NDJSON of ``frames`` valid raw.v1 frames (the bundled session, repeated as one
    session, each frame with its own seqNo): the mock publishes it once as written, then
    stops."""
    session = [
        json.loads(line)
        for line in (FIXTURES / "raw-frames.ndjson").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith('{"fields"')
    ]
    out = [json.dumps({**session[i % len(session)], "seqNo": i + 1}) for i in range(frames)]
    path.write_text("\n".join(out) + "\n")
    return path


@dataclass
class HealthWatch:
    """Polls ``/health`` in a thread and keeps every status seen, in order."""

    url: str
    every_s: float = 0.2
    seen: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=3) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (OSError, urllib.error.URLError):
                status = 0  # not listening (yet)
            self.seen.append((time.monotonic(), status))
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def last(self) -> int:
        return self.seen[-1][1] if self.seen else 0

    def went_down_and_up(self) -> bool:
        statuses = [s for _, s in self.seen]
        if 503 not in statuses:
            return False
        return 200 in statuses[statuses.index(503) :]

    def recovery_s(self) -> float:
        """Seconds from the first 503 to the first 200 after it."""
        down = next(t for t, s in self.seen if s == 503)
        up = next(t for t, s in self.seen if s == 200 and t > down)
        return up - down


def wait_until(
    condition: Callable[[], bool], what: str, timeout: float = 60, poll: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting until {what}")
        time.sleep(poll)


def stream_entries(redis: FaultRedis, stream: str) -> list[tuple[str, dict[str, str]]]:
    """A stream's entries as (id, fields) (redis-cli's JSON output: name, value pairs)."""
    raw = subprocess.run(
        ["redis-cli", "-p", str(redis.port), "--json", "XRANGE", stream, "-", "+"],
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout.decode("utf-8", "replace")
    return [
        (entry_id, dict(zip(flat[::2], flat[1::2], strict=True)))
        for entry_id, flat in json.loads(raw or "[]")
    ]


def dead_letters(redis: FaultRedis, prefix: str) -> list[dict[str, str]]:
    """``ttlc:dlq`` as field dicts."""
    return [fields for _, fields in stream_entries(redis, f"{prefix}ttlc:dlq")]
