"""The README's systemd recipe, run as written: one process per role on Redis + PostgreSQL.

systemd does not run here, so the test makes happen what the recipe makes systemd do
(``tests/support/systemd.py`` reads the units the way systemd does): the files the recipe
installs into ``/etc/ttlp`` go to that directory under a root of the test's own; the file the
recipe says to edit gets this machine's Redis, a fresh PostgreSQL database, a JWT secret and a
key prefix of the test's own (``TIKTOK_UNIQUE_ID`` stays as shipped: empty, so the mock feeds
the pipeline); the recipe's fixed ports (3000, 9101-9106) move to free ones, as they may be
taken here. Then ``ttlp-migrate``'s command runs to completion and every ``ttlp@<instance>`` the
recipe enables starts with its unit's command and environment, this virtualenv's ``ttlp``
standing in for ``/opt/ttlp/bin/ttlp``.

It proves that the mock's frames become stored rows with each role in its own process, that
each process consumes under its own name and answers ``/metrics`` on its own port with the
figures of its own role, that the deployment says its events are fake (the ingest's log,
``ttlp status``), and that SIGTERM, systemd's stop signal, stops every process with exit 0.
"""

from __future__ import annotations

import re
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.paths import FIXTURES
from tests.support.processes import Ttlp
from tests.support.systemd import (
    Process,
    environment_file,
    host_name,
    recipe,
    service_process,
    units,
)
from tests.support.wait import free_port, wait_for
from ttlp.bus import keys as k
from ttlp.bus.keys import Keys
from ttlp.runtime import parse_roles
from ttlp.tiktok.providers.fallback import WARNING

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(300)]

EXE = "/opt/ttlp/bin/ttlp"
EVENTS = len((FIXTURES / "unified-events.ndjson").read_text().splitlines())
STAGE = {"ingest": "ingest", "normalize": "normalizer", "store": "store", "rules": "rules"}
STAGE["forward"] = "forwarder"
GROUPS = {
    "ingest": [(k.CONTROL, k.GROUP_INGEST)],
    "normalize": [(k.RAW, k.GROUP_NORMALIZER)],
    "store": [(k.RAW, k.GROUP_ARCHIVE), (k.EVENTS, k.GROUP_STORAGE)],
    "rules": [(k.EVENTS, k.GROUP_RULES), (k.CONTROL, k.GROUP_RULES)],
    "forward": [(k.EVENTS, k.GROUP_FORWARDER)],
}
"""The consumer groups each role reads (README, "Roles and streams")."""


def role_names(p: Process) -> list[str]:
    """The roles a service's ``ttlp run --roles`` names."""
    return parse_roles(p.argv[p.argv.index("--roles") + 1])


def edit(path: Path, changes: dict[str, str]) -> None:
    """Set ``NAME=value`` lines of an environment file, as an operator's editor would."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for name, value in changes.items():
        found = [i for i, line in enumerate(lines) if line.startswith(f"{name}=")]
        if found:
            lines[found[0]] = f"{name}={value}"
        else:
            lines.append(f"{name}={value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def processed(scrape: str) -> dict[tuple[str, str, str], float]:
    """``ttlp_events_processed_total{outcome="processed"}`` by (role label, stream, group)."""
    totals: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(scrape):
        for sample in family.samples:
            if (sample.name, sample.labels.get("outcome")) == (
                "ttlp_events_processed_total",
                "processed",
            ):
                labels = sample.labels
                key = (labels["role"], labels["stream"], labels["group"])
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


async def scrape(port: int) -> str | None:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
    except httpx.TransportError:
        return None
    return response.text if response.status_code == 200 else None


async def test_the_readme_systemd_recipe_runs_every_role_in_its_own_process(
    redis_cleanup: None,
    redis: aioredis.Redis,
    redis_url: str,
    database_url: str,
    engine: AsyncEngine,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    the_recipe = recipe()
    root = tmp_path / "root"

    def on_host(path: str) -> Path:
        return root / path.lstrip("/")

    # `install ...`: the files, where the recipe puts them.
    for directory, files in the_recipe.installed.items():
        on_host(directory).mkdir(parents=True)
        for file in files:
            shutil.copy(file, on_host(directory) / file.name)
    # `editor /etc/ttlp/ttlp.env`: what the recipe says to set (TIKTOK_UNIQUE_ID left empty).
    ((edited, to_set),) = the_recipe.edited.items()
    changes = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "JWT_SECRET": secrets.token_hex(32),
    }
    assert set(changes) < set(to_set)
    edit(on_host(edited), {**changes, "REDIS_CONSUMER_GROUP_PREFIX": key_prefix})
    taken: set[int] = set()
    for file in on_host("/etc/ttlp").glob("*.env"):
        ports = {n for n in ("API_PORT", "METRICS_PORT") if n in environment_file(file)}
        for name in ports:
            port = free_port()
            while port in taken:
                port = free_port()
            taken.add(port)
            edit(file, {name: str(port)})

    found = units(the_recipe)
    host = host_name()

    def process(unit: str, instance: str) -> Process:
        p = service_process(found[unit], instance, host=host, path=on_host)
        assert p.argv[0] == EXE, p.argv
        data = p.env.get("TTLP_DATA_DIR", "")
        if data.startswith("/var/lib/"):  # StateDirectory=: systemd creates it
            on_host(data).mkdir(parents=True, exist_ok=True)
            p.env["TTLP_DATA_DIR"] = str(on_host(data))
        return p

    # What systemd gives every service, besides the unit's own environment.
    base = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(tmp_path),
    }
    runner = Ttlp(base, root, tmp_path)
    started: dict[str, tuple[Process, subprocess.Popen[bytes]]] = {}
    try:
        migrate = process("ttlp-migrate.service", "")
        result = runner.run(*migrate.argv[1:], **migrate.env)
        assert result.returncode == 0, result.stderr

        def all_alive() -> None:
            for instance, (_, proc) in started.items():
                if proc.poll() is not None:
                    pytest.fail(
                        f"ttlp@{instance} exited with {proc.returncode}:\n"
                        + runner.log_of(proc)[-3000:]
                    )

        # The ingest last, once every other process reads its streams: the rules role's groups
        # start at the stream's end ("$": rules act on what happens after they start), so
        # events published before a slow rules process made its group were never its own (a
        # CI run under load: the rules group handled 0 of 48).
        services = {i: process("ttlp@.service", i) for i in the_recipe.instances}
        ingest = [i for i, p in services.items() if "ingest" in role_names(p)]
        for instance, p in services.items():
            if instance not in ingest:
                started[instance] = (p, runner.start(*p.argv[1:], **p.env))

        async def reading() -> bool:
            all_alive()
            for p, _ in started.values():
                for role in role_names(p):
                    for stream, group in GROUPS.get(role, []):
                        try:
                            groups = await redis.xinfo_groups(f"{key_prefix}{stream}")
                        except aioredis.ResponseError:  # no such stream yet
                            return False
                        if f"{key_prefix}{group}" not in {g["name"] for g in groups}:
                            return False
            return True

        await wait_for(reading, what="every process but the ingest reading its streams")
        for instance in ingest:
            p = services[instance]
            started[instance] = (p, runner.start(*p.argv[1:], **p.env))

        async def stored() -> bool:
            all_alive()
            async with engine.connect() as conn:
                count = (await conn.execute(text("SELECT count(*) FROM events"))).scalar()
            return count == EVENTS

        await wait_for(stored, timeout=120, what=f"{EVENTS} events stored")

        # Each process: in its groups under its own name, its own figures on its own port.
        roles = {i: role_names(p) for i, (p, _) in started.items()}
        workers = {
            i: int(p.env["METRICS_PORT"]) for i, (p, _) in started.items() if "api" not in roles[i]
        }
        expected: dict[tuple[str, str], set[str]] = {}
        for instance, (p, _) in started.items():
            consumer = p.argv[p.argv.index("--consumer-name") + 1]
            assert consumer == f"{host}-{instance}"
            for role in roles[instance]:
                for pair in GROUPS.get(role, []):
                    expected.setdefault(pair, set()).add(consumer)

        async def consumers() -> dict[tuple[str, str], set[str]]:
            all_alive()
            return {
                (stream, group): {
                    c["name"]
                    for c in await redis.xinfo_consumers(
                        f"{key_prefix}{stream}", f"{key_prefix}{group}"
                    )
                }
                for stream, group in expected
            }

        async def named() -> bool:  # a process that has found nothing to do yet may be reading
            return await consumers() == expected

        await wait_for(named, what="every process in its groups under its own name")

        streams = Keys(key_prefix)
        lengths = {
            k.RAW: await redis.xlen(streams.raw),
            k.EVENTS: await redis.xlen(streams.events),
            k.CONTROL: await redis.xlen(streams.control),
        }
        assert lengths[k.RAW] > 0
        assert lengths[k.EVENTS] > 0
        want = {
            (STAGE[role], f"{key_prefix}{stream}", f"{key_prefix}{group}"): lengths[stream]
            for role, pairs in GROUPS.items()
            for stream, group in pairs
        }

        async def caught_up() -> bool:
            """Every process answers on its port with its own role's figures only, and each
            group, summed over its processes (two normalize processes share one), has handled
            its whole stream exactly once (rules and forward may still be finishing when the
            last row is stored)."""
            all_alive()
            totals: dict[tuple[str, str, str], float] = {}
            for instance, port in workers.items():
                scraped = await scrape(port)
                if scraped is None:
                    return False
                figures = processed(scraped)
                assert {key[0] for key in figures} == {STAGE[r] for r in roles[instance]}
                for key, value in figures.items():
                    totals[key] = totals.get(key, 0.0) + value
            seen["figures"] = totals
            return totals == want

        seen: dict[str, object] = {}
        try:
            await wait_for(caught_up, what="every group's figures to match its stream")
        except pytest.fail.Exception:
            pytest.fail(f"figures {seen.get('figures')}, streams {want}")

        ((api, _),) = [started[i] for i in started if "api" in roles[i]]
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{api.env['API_PORT']}", timeout=10
        ) as client:
            health = await client.get("/health")
            assert health.status_code == 200, health.text
            assert (health.json()["redis"], health.json()["postgres"]) == ("ok", "ok")
            assert "ttlp_stream_length" in (await client.get("/metrics")).text

        # The deployment says its events are fake: the ingest's log, and `ttlp status`.
        ingest_log = runner.log_of(started["ingest"][1])
        assert WARNING in ingest_log
        status = runner.run("status", **migrate.env)
        assert status.returncode == 0, status.stderr
        assert "NO STREAMER CONFIGURED" in re.sub(r"\s+", " ", status.stdout)

        # systemctl stop: SIGTERM, and every process finishes cleanly.
        for _, proc in started.values():
            proc.send_signal(signal.SIGTERM)
        for instance, (_, proc) in started.items():
            assert proc.wait(30) == 0, runner.log_of(proc)[-3000:]
            assert "Traceback" not in runner.log_of(proc), instance
    finally:
        runner.close()  # before the fixtures delete the test's keys and database
