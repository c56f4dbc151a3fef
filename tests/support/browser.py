"""Browser tests' support: the web UI in headless Chromium (Playwright), served by ``ttlp run``.

Chromium is Debian's (``/usr/bin/chromium``), never Playwright's download. Without it the
tests are skipped with a reason, except under ``CI=true``, where that is a failure.
Screenshots go to ``tests/browser/artifacts/`` (gitignored) for people to look at.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import FIXTURES, REPO
from tests.support.processes import TTLP
from tests.support.services import unavailable
from tests.support.wait import free_port

CHROMIUM = Path(os.environ.get("TTLP_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = REPO / "tests" / "browser" / "artifacts"
STREAMER = "luna.beats"
PASSWORD = "correct horse battery staple"
XSS = "<img src=x onerror=alert(1)>"
ACCOUNTS = {"streamer": "STREAMER", "moderator": "MODERATOR", "viewer": "VIEWER"}
START_TIMEOUT_S = 60
WAIT_MS = 20_000
"""How long a page may take to show what a test waits for."""
STDIN = ["--password-stdin"]
CDN_HOSTS = ("tiktokcdn.com", "tiktokcdn-us.com", "ttwstatic.com")
SERVER_LOG_TAIL = 60
BROKEN_FRAME = "data-not-json"
"""The case of ``dlq-frames.ndjson`` the UI server's fixture carries (reason PARSE_ERROR)."""


def xss_fixture(path: Path) -> Path:
    """The bundled fixture with the first chat message replaced by an HTML injection, and one
    frame the normalizer cannot read (its ``data`` is not JSON: a dead letter every pass)."""
    lines = []
    replaced = False
    for line in (FIXTURES / "raw-frames.ndjson").read_text().splitlines():
        frame = json.loads(line)
        if not replaced and frame.get("type") == "WebcastChatMessage":
            frame["data"]["content"] = XSS
            replaced = True
        lines.append(json.dumps(frame, ensure_ascii=False))
    assert replaced
    for line in (FIXTURES / "dlq-frames.ndjson").read_text().splitlines():
        case = json.loads(line)
        if case["case"] == BROKEN_FRAME:
            lines.append(json.dumps({"fields": case["fields"]}, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Server:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def database(self) -> Path:
        return self.data_dir / "ttlp.db"


def start_server(
    workdir: Path,
    *run_args: str,
    fixture: Path | None = None,
    accounts: bool = True,
    extra_env: Mapping[str, str] | None = None,
    port: int | None = None,
) -> Server:
    """``ttlp run`` on the embedded backends with the mock provider, accounts created first
    (``accounts=False``: none, as on a first run); the mock reads ``fixture``, by default the
    bundled one with an HTML injection and a broken frame (``xss_fixture``). ``extra_env``
    (e.g. ``REDIS_URL``, to publish onto its bus) and ``port`` (a restart on the same address)
    when given."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE_"))}
    env.update(
        TTLP_DATA_DIR=str(workdir / "data"),
        API_HOST="127.0.0.1",
        API_PORT=str(port),
        MOCK_FIXTURE=str(fixture or xss_fixture(workdir / "frames.ndjson")),
        TIKTOK_UNIQUE_ID="",
        LOG_LEVEL="info",
        # No Euler Stream account: moderation answers "not configured" (quick-action test).
        EULER_API_KEY="",
        SESSION_ID="",
    )
    env.update(extra_env or {})
    for name, role in ACCOUNTS.items() if accounts else ():
        done = subprocess.run(
            [*TTLP, "accounts", "add", name, f"--role={role}", f"--scope={STREAMER}", *STDIN],
            input=PASSWORD + "\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    log = workdir / "ttlp.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*TTLP, "run", "--provider", "mock", *run_args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ttlp run exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as res:
                if res.status == 200:
                    return Server(url, workdir / "data", proc, log)
        except OSError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail(f"ttlp run did not answer /health within {START_TIMEOUT_S}s")


def stop_server(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(30)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(10)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed browser test shows the end of its server's log next to the page's state."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    funcargs = getattr(item, "funcargs", {})
    # The test's own server (``dlq_server``…) over the shared one ``login`` brings along.
    own = [x for name, x in funcargs.items() if name != "server" and isinstance(x, Server)]
    server = own[0] if own else funcargs.get("server")
    if report.failed and isinstance(server, Server) and server.log.exists():
        tail = server.log.read_text(errors="replace").splitlines()[-SERVER_LOG_TAIL:]
        report.sections.append(("ttlp run log (end)", "\n".join(tail)))


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        unavailable(f"Chromium at {CHROMIUM}", "install it: apt-get install -y chromium")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Server]:
    """One ttlp for the functional tests: the fixture in a loop at 20 frames/s."""
    instance = start_server(tmp_path_factory.mktemp("ui"), "--rate", "20", "--loop")
    yield instance
    stop_server(instance)


@pytest.fixture
def login(browser: Any, server: Server) -> Iterator[Any]:
    """``login(name)`` → a logged-in page in a fresh context (its own cookie); ``context``
    options (e.g. a phone's ``viewport``, ``is_mobile``, ``has_touch``) replace the desktop's."""
    contexts: list[Any] = []

    def _login(name: str, base: Server | None = None, **context_options: Any) -> Any:
        options = {"viewport": {"width": 1400, "height": 900}, **context_options}
        context = browser.new_context(base_url=(base or server).url, **options)
        contexts.append(context)
        # No internet here: TikTok's CDN pictures fail at once instead of waiting on DNS.
        for host in CDN_HOSTS:
            context.route(f"https://*.{host}/**", lambda route: route.abort())
        page = context.new_page()
        page.goto("/")
        page.fill("input[name=username]", name)
        page.fill("input[name=password]", PASSWORD)
        page.click("form#login button[type=submit]")
        page.wait_for_selector("#nav a")
        return page

    yield _login
    for context in contexts:
        context.close()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def wait_until(page: Any, expression: str, timeout_s: float = WAIT_MS / 1000) -> Any:
    """Poll ``expression`` until truthy. Not ``page.wait_for_function``: it evaluates a string,
    which the UI's CSP (no 'unsafe-eval') refuses, as it should."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"still false after {timeout_s}s: {expression}\n{page.evaluate(DIAGNOSIS)}"
            )
        page.wait_for_timeout(200)


DIAGNOSIS = (
    "(() => { const text = (s) => document.querySelector(s)?.textContent ?? '(none)';"
    " const rows = [...document.querySelectorAll('#feed .row')].slice(0, 12)"
    ".map((r) => r.innerText.replace(/\\s+/g, ' ').trim());"
    " const chips = [...document.querySelectorAll('.chip[aria-pressed=true]')]"
    ".map((c) => c.dataset.chip);"
    " return [`url ${location.href}`, `feed ${text('#feed-status')}; ${text('#feed-count')}`,"
    " `chips on: ${chips.join(' ')}; search: ${document.querySelector('.feed-search')?.value}`,"
    " ...rows].join('\\n'); })()"
)
"""What the page shows when a wait fails: the feed's status and counts, filters, first rows."""
