"""``ttlp`` as a subprocess, as the end-to-end tests run it.

``ttlp`` (the fixture) starts commands with one environment: the embedded backends under
``tmp_path`` by default, a key prefix of the test's own, a free API port. ``services`` points
the same runner at the real Redis and a fresh, migrated PostgreSQL database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.wait import free_port

TTLP = [sys.executable, "-m", "ttlp"]


class Ttlp:
    """Start ``ttlp`` commands with one environment; stop what is still running at the end."""

    def __init__(self, env: dict[str, str], cwd: Path, logs: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """Start ``ttlp *args`` in the background, its output in a log file of its own."""
        with open(self.logs / f"ttlp-{len(self.procs)}.log", "wb") as log:
            # The child keeps its own copy of the descriptor; ours can close at once.
            proc = subprocess.Popen(
                [*TTLP, *args],
                env={**self.env, **env},
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def run(
        self, *args: str, timeout: float = 120, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ttlp *args`` to completion (``stdin`` as its input) and capture its output."""
        return subprocess.run(
            [*TTLP, *args],
            env={**self.env, **env},
            cwd=self.cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def log_of(self, proc: subprocess.Popen[bytes]) -> str:
        index = self.procs.index(proc)
        return (self.logs / f"ttlp-{index}.log").read_text(errors="replace")

    def stop(
        self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30
    ) -> int:
        if proc.poll() is None:
            proc.send_signal(sig)
        return proc.wait(timeout)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def ttlp_env(tmp_path: Path, key_prefix: str) -> dict[str, str]:
    """The environment of ``ttlp`` subprocesses: embedded backends, mock provider, free port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_"))}
    env.update(
        {
            "TTLP_DATA_DIR": str(tmp_path / "data"),
            "REDIS_CONSUMER_GROUP_PREFIX": key_prefix,
            "INGEST_PROVIDER": "mock",
            "LOG_LEVEL": "info",
            "CONSUMER_NAME": "e2e-1",
            "SHUTDOWN_GRACE_S": "10",
            "PYTHONUNBUFFERED": "1",
            "API_HOST": "127.0.0.1",
            "JWT_SECRET": "e2e-jwt-secret-long-enough-for-hs256",
            "API_PORT": str(free_port()),
        }
    )
    return env


@pytest.fixture
def ttlp(ttlp_env: dict[str, str], tmp_path: Path) -> Iterator[Ttlp]:
    """A ``Ttlp`` runner; whatever it started and is still running is killed afterwards."""
    runner = Ttlp(ttlp_env, tmp_path, tmp_path)
    yield runner
    runner.close()


@pytest.fixture
def services(redis_cleanup: None, ttlp: Ttlp, redis_url: str, database_url: str) -> Ttlp:
    """The ``ttlp`` runner on the real Redis and a fresh PostgreSQL database, migrated.

    ``redis_cleanup`` comes first so that it runs last: after the runner killed its processes.
    """
    ttlp.env.update({"REDIS_URL": redis_url, "DATABASE_URL": database_url})
    migrated = ttlp.run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    return ttlp
