"""``ttlp run`` on an empty data directory, as a new user starts it: it says where the UI is
(a reachable address when bound to every interface) and prints a one-time setup link; a restart
prints a new link and the old one is dead; once the owner exists, no link is printed any more
and setup answers 410."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, Final

import httpx
import pytest

from tests.support.processes import Ttlp
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

PASSWORD: Final = "first night live"
SETUP_RE: Final = re.compile(r"http://127\.0\.0\.1:(\d+)/#/setup/([A-Za-z0-9_-]{40,})")


def log_lines(ttlp: Ttlp, proc: subprocess.Popen[bytes]) -> list[dict[str, Any]]:
    lines = []
    for line in ttlp.log_of(proc).splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


async def started(ttlp: Ttlp) -> tuple[subprocess.Popen[bytes], list[dict[str, Any]]]:
    """``ttlp run`` (every role, bound to 0.0.0.0) once its api listens: the process and the
    log lines up to the UI's address."""
    proc = ttlp.start("run", "--provider", "mock", "--rate", "20", API_HOST="0.0.0.0")

    async def announced() -> bool:
        return any(x["message"].startswith("web UI at ") for x in log_lines(ttlp, proc))

    await wait_for(announced, timeout=60, what="ttlp run to say where the UI is", alive=proc)
    return proc, log_lines(ttlp, proc)


def setup_token(lines: list[dict[str, Any]], port: str) -> str | None:
    for line in lines:
        found = SETUP_RE.search(line["message"])
        if found:
            assert found.group(1) == port
            assert line["level"] == "warning"
            return found.group(2)
    return None


def files_holding(directory: Path, needle: bytes) -> list[Path]:
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert files, f"nothing in {directory}"
    return [p for p in files if needle in p.read_bytes()]


async def test_ttlp_run_prints_the_ui_and_a_setup_link_until_the_owner_exists(
    ttlp: Ttlp,
) -> None:
    port = ttlp.env["API_PORT"]
    url = f"http://127.0.0.1:{port}"
    first, lines = await started(ttlp)
    ui = [x for x in lines if x["message"].startswith("web UI at ")]
    assert [(x["message"], x["level"]) for x in ui] == [(f"web UI at {url}/", "info")]
    old = setup_token(lines, port)
    assert old is not None
    assert ttlp.stop(first) == 0
    written = files_holding(Path(ttlp.env["TTLP_DATA_DIR"]), old.encode())
    assert written == [], written  # the database and the JWT key are there, not the link

    second, lines = await started(ttlp)
    token = setup_token(lines, port)
    assert token is not None
    assert token != old  # a restart makes a new link ...
    body = {"username": "luna", "password": PASSWORD}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        stale = await client.post("/auth/setup", json={"token": old, **body})
        assert stale.status_code == 404, stale.text  # ... and the old one is dead
        made = await client.post("/auth/setup", json={"token": token, **body})
        assert made.status_code == 201, made.text
        again = await client.post("/auth/setup", json={"token": token, **body})
        assert again.status_code == 410, again.text
    assert ttlp.stop(second) == 0

    third, lines = await started(ttlp)
    assert setup_token(lines, port) is None
    assert not [x for x in lines if "setup" in x["message"]]
    assert ttlp.stop(third) == 0
