"""What the container files run, run here: the builder's steps, the image's command and the
healthchecks of the Dockerfile and of the Compose services, and the Compose smoke probe.

No Docker engine runs where these tests run (the image itself is built and started by
``tests/unit/test_compose.py`` where one does), so each command is taken from the parsed file and
run on this machine with this virtualenv's interpreter standing in for the image's ``python``:
the builder turns the build context into a wheel that holds everything ttlp needs, ``ttlp`` with
the image's ``CMD`` serves the api, and each healthcheck passes against a healthy service and
fails against a missing or unhealthy one.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.receiver import Receiver, Reply
from tests.support.containers import (
    COMPOSE,
    COMPOSE_TEST,
    build_context,
    commands,
    copies,
    environment,
    exec_form,
    final_env,
    healthcheck,
    load_compose,
    stages,
    values,
)
from tests.support.paths import REPO
from tests.support.processes import Ttlp
from tests.support.wait import free_port, wait_for

pytestmark = pytest.mark.e2e

PIP = [sys.executable, "-m", "pip"]
COMPOSE_API_PORT = 3000
"""The port the api listens on inside the compose containers (``API_PORT: "3000"``)."""


def local(argv: list[str]) -> list[str]:
    """``argv`` with the image's ``python`` replaced by this virtualenv's interpreter."""
    return [sys.executable, *argv[1:]] if argv[0] == "python" else argv


def probe(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run a healthcheck command as Docker does: its exit status is the verdict."""
    return subprocess.run(
        argv, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=30
    )


def image_healthcheck() -> list[str]:
    _, command = healthcheck(stages()[-1])
    return local(command)


def compose_healthcheck(service: str) -> list[str]:
    """A compose service's healthcheck as an argv (``CMD-SHELL`` through ``sh -c``)."""
    test = load_compose(COMPOSE)["services"][service]["healthcheck"]["test"]
    if test[0] == "CMD-SHELL":
        return ["sh", "-c", test[1]]
    assert test[0] == "CMD", test
    return local(test[1:])


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def serve_like_the_image(ttlp: Ttlp, port: int) -> subprocess.Popen[bytes]:
    """``ttlp`` started with the image's ``CMD`` and ``ENV`` (data under tmp_path, not /data);
    returns once ``GET /health`` answers, as a client would see it."""
    *_, final = stages()
    entrypoint = exec_form(values(final, "ENTRYPOINT")[-1])
    command = exec_form(values(final, "CMD")[-1])
    assert entrypoint == ["ttlp"]  # Ttlp runs the same console script as ``python -m ttlp``
    env = {k: v for k, v in final_env().items() if k not in {"PATH", "TTLP_DATA_DIR"}}
    proc = ttlp.start(*command, API_PORT=str(port), **env)

    async def answers() -> bool:
        result = await asyncio.to_thread(probe, image_healthcheck(), API_PORT=str(port))
        return result.returncode == 0

    await wait_for(answers, what=f"the image's HEALTHCHECK passing on port {port}", alive=proc)
    return proc


# -- the builder ------------------------------------------------------------------------------
def test_the_builder_turns_the_build_context_into_a_complete_wheel(tmp_path: Path) -> None:
    """The builder's COPY steps (from the context .dockerignore leaves), its requirements step
    and its ``pip wheel``: the wheel holds the code, contracts, migrations and bundled fixture."""
    builder, _ = stages()
    context = build_context(REPO)
    build = tmp_path / "build"
    build.mkdir()
    for sources, destination, options in copies(builder):
        assert not options, "the builder copies from the build context only"
        target = build / destination
        for source in sources:
            files = [p for p in context if p == source or p.startswith(f"{source}/")]
            assert files, f"COPY {source}: nothing in the build context"
            for file in files:
                # COPY dir dest copies the directory's contents; COPY file dir/ keeps the name.
                relative = Path(file).relative_to(source) if file != source else Path(source).name
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(REPO / file, target / relative)

    # RUN python -c "<write requirements.txt from pyproject.toml>" && pip install -r ...
    requirements_step = next(
        c for run in values(builder, "RUN") for c in commands(run) if c[:2] == ["python", "-c"]
    )
    done = subprocess.run(local(requirements_step), cwd=build, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with (REPO / "pyproject.toml").open("rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    assert (build / "requirements.txt").read_text().splitlines() == dependencies

    # RUN pip wheel --no-deps --wheel-dir /wheels . (hatchling from the dev extras: no download)
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wheels), "."],
        cwd=build,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = wheels.glob("ttlp-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    assert "ttlp/cli/__init__.py" in names or "ttlp/cli.py" in names
    assert "ttlp/tiktok/providers/raw-frames.ndjson" in names
    assert "ttlp/tiktok/providers/raw-frames-protobuf.ndjson" in names
    assert any(n.startswith("ttlp/contracts/schemas/") and n.endswith(".json") for n in names)
    assert any(n.startswith("ttlp/db/alembic/versions/") for n in names)
    assert "ttlp = ttlp.cli:main" in scripts

    # RUN pip install --no-deps /wheels/ttlp-*.whl && ttlp --version: installed on its own.
    site = tmp_path / "site"
    installed = subprocess.run(
        [*PIP, "install", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    version = subprocess.run(
        [
            sys.executable,
            "-c",
            "import ttlp, sys; sys.argv = ['ttlp', '--version'];"
            " print(ttlp.__file__); from ttlp.cli import main; main()",
        ],
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert version.returncode == 0, version.stderr[-2000:]
    assert version.stdout.startswith(str(site))  # the wheel's ttlp, not this checkout's


# -- the image: command and HEALTHCHECK -------------------------------------------------------
async def test_the_image_command_serves_and_its_healthcheck_follows_it(ttlp: Ttlp) -> None:
    port = free_port()
    proc = await serve_like_the_image(ttlp, port)
    assert await asyncio.to_thread(ttlp.stop, proc) == 0  # SIGTERM, as `docker stop` sends
    refused = probe(image_healthcheck(), API_PORT=str(port))
    assert refused.returncode != 0
    assert "Connection refused" in refused.stderr


async def test_the_image_healthcheck_fails_on_an_unhealthy_api() -> None:
    async with Receiver(lambda _: Reply(503, b'{"status":"unavailable"}')) as api:
        result = await asyncio.to_thread(probe, image_healthcheck(), API_PORT=str(api.port))
        assert [r.path for r in api.requests] == ["/health"]
    assert result.returncode != 0
    assert "503" in result.stderr


async def test_the_image_healthcheck_passes_on_a_healthy_api() -> None:
    async with Receiver(lambda _: Reply(200, b'{"status":"ok"}')) as api:
        result = await asyncio.to_thread(probe, image_healthcheck(), API_PORT=str(api.port))
    assert result.returncode == 0, result.stderr


# -- the compose healthchecks ------------------------------------------------------------------
@pytest.mark.parametrize("service", ["ttlp", "api"])
async def test_the_compose_api_healthcheck_passes_on_the_running_api(
    ttlp: Ttlp, service: str
) -> None:
    api_port = environment(load_compose(COMPOSE)["services"][service])["API_PORT"]
    assert int(api_port) == COMPOSE_API_PORT
    if port_in_use(COMPOSE_API_PORT):
        pytest.skip(f"port {COMPOSE_API_PORT} is in use here, and the healthcheck probes it")
    proc = await serve_like_the_image(ttlp, COMPOSE_API_PORT)
    passed = await asyncio.to_thread(probe, compose_healthcheck(service))
    assert passed.returncode == 0, passed.stderr
    assert await asyncio.to_thread(ttlp.stop, proc) == 0
    assert (await asyncio.to_thread(probe, compose_healthcheck(service))).returncode != 0


@pytest.mark.integration
@pytest.mark.parametrize("service", ["ingest", "normalize", "store", "rules", "forward"])
def test_the_compose_worker_healthcheck_follows_redis(redis_url: str, service: str) -> None:
    command = compose_healthcheck(service)
    assert probe(command, REDIS_URL=redis_url).returncode == 0
    gone = probe(command, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert gone.returncode != 0
    assert "ConnectionError" in gone.stderr


@pytest.mark.integration
def test_the_compose_postgres_healthcheck_follows_the_server(pg_admin_url: str) -> None:
    if shutil.which("pg_isready") is None:
        pytest.skip("pg_isready (the postgres image's tool) is not installed here")
    from sqlalchemy.engine import make_url

    url = make_url(pg_admin_url)
    command = compose_healthcheck("postgres")
    server = {"PGHOST": url.host or "127.0.0.1", "PGPORT": str(url.port or 5432)}
    ready = probe(command, **server)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert probe(command, **{**server, "PGPORT": str(free_port())}).returncode != 0


@pytest.mark.integration
def test_the_compose_redis_healthcheck_pings_without_the_password_on_its_command_line(
    redis_url: str,
) -> None:
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli (the redis image's tool) is not installed here")
    if not redis_url.startswith("redis://127.0.0.1:6379"):
        pytest.skip("the healthcheck pings redis-cli's default, 127.0.0.1:6379")
    redis = load_compose(COMPOSE)["services"]["redis"]
    assert "REDISCLI_AUTH" in environment(redis)  # where redis-cli takes the password from
    command = compose_healthcheck("redis")
    # The test server has no password: redis-cli says so and the ping still answers.
    result = probe(command, REDISCLI_AUTH="unused-here")
    assert result.returncode == 0, result.stderr


# -- the smoke probe of docker-compose.test.yml --------------------------------------------------
def smoke(urls: list[str], timeout_s: int) -> subprocess.CompletedProcess[str]:
    service: dict[str, Any] = load_compose(COMPOSE_TEST)["services"]["smoke"]
    env = {**environment(service), "SMOKE_URLS": ",".join(urls), "SMOKE_TIMEOUT": str(timeout_s)}
    argv = local([*service["entrypoint"], *service["command"]])
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s + 30)


async def test_the_smoke_probe_exits_0_on_the_first_healthy_layout() -> None:
    refused = f"http://127.0.0.1:{free_port()}/health"  # the layout that is not running
    async with Receiver(lambda _: Reply(200, b'{"status":"ok"}')) as api:
        result = await asyncio.to_thread(smoke, [refused, f"{api.url}/health"], 30)
    assert result.returncode == 0, result.stderr
    assert f"smoke: {api.url}/health 200" in result.stdout


async def test_the_smoke_probe_exits_1_when_no_layout_answers_in_time() -> None:
    result = await asyncio.to_thread(smoke, [f"http://127.0.0.1:{free_port()}/health"], 1)
    assert result.returncode == 1
    assert "no healthy api before the deadline" in result.stderr
