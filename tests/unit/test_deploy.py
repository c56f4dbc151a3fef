"""The README's systemd recipe is complete and consistent: the files it installs are the ones the
units read, every instance it enables is one process with known roles, its own consumer name
and its own metrics port, the migration comes first, and systemd accepts the units
(``systemd-analyze verify`` where it is installed). ``tests/e2e/test_systemd.py`` runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.systemd import (
    DEPLOY,
    Process,
    Recipe,
    environment_file,
    files_at,
    host_name,
    recipe,
    service_process,
    units,
)
from ttlp.cli import cli
from ttlp.errors import ConfigError
from ttlp.runtime import ROLES, parse_roles
from ttlp.settings import Settings, documented_variables
from ttlp.tiktok.providers.fallback import fake_events_warning

ETC = "/etc/ttlp"
VENV = "/opt/ttlp"
PER_PROCESS = {"TTLP_ROLES", "METRICS_PORT", "CONSUMER_NAME"}


@pytest.fixture(scope="module")
def the_recipe() -> Recipe:
    return recipe()


def installed(the_recipe: Recipe, path: str) -> Path:
    """Where the file the recipe installs at ``path`` comes from (it must install it)."""
    directory, _, name = path.rpartition("/")
    files = files_at(the_recipe, directory)
    assert name in files, f"the recipe installs no {path}"
    return files[name]


def processes(the_recipe: Recipe) -> list[Process]:
    template = units(the_recipe)["ttlp@.service"]
    return [
        service_process(
            template, instance, host=host_name(), path=lambda p: installed(the_recipe, p)
        )
        for instance in the_recipe.instances
    ]


def test_the_recipe_installs_the_units_and_the_files_they_read(the_recipe: Recipe) -> None:
    assert set(units(the_recipe)) == {"ttlp@.service", "ttlp-migrate.service"}
    assert sorted(p.name for p in DEPLOY.iterdir()) == sorted(
        p.name for files in the_recipe.installed.values() for p in files
    ), "a file of deploy/systemd the recipe does not install"
    assert len(processes(the_recipe)) == len(the_recipe.instances)  # every file found


def test_every_instance_is_one_process_with_its_roles_name_and_metrics_port(
    the_recipe: Recipe,
) -> None:
    started = processes(the_recipe)
    names, ports, roles = [], [], set()
    for process in started:
        assert process.argv[:2] == [f"{VENV}/bin/ttlp", "run"], process.argv
        argv = process.argv[2:]
        chosen = parse_roles(argv[argv.index("--roles") + 1])
        roles |= set(chosen)
        names.append(argv[argv.index("--consumer-name") + 1])
        settings = Settings.from_env(process.env)
        if "api" in chosen:
            ports.append(settings.api.port)  # the api serves /metrics itself
        else:
            assert settings.metrics_port > 0, f"{process.instance}: no METRICS_PORT"
            ports.append(settings.metrics_port)
    assert roles == set(ROLES), "a role no instance runs"
    assert names == [f"{host_name()}-{p.instance}" for p in started]
    assert len(set(names)) == len(names)
    assert len(set(ports)) == len(ports), f"two processes on one port: {ports}"


def test_the_shared_file_leaves_the_per_process_settings_to_the_instances(
    the_recipe: Recipe,
) -> None:
    shared = environment_file(installed(the_recipe, f"{ETC}/ttlp.env"))
    known = {v.name for v in documented_variables()}
    assert set(shared) <= known
    assert not set(shared) & PER_PROCESS
    (edited,) = the_recipe.edited.items()
    assert edited[0] == f"{ETC}/ttlp.env"
    assert set(edited[1]) == {"REDIS_URL", "DATABASE_URL", "JWT_SECRET", "TIKTOK_UNIQUE_ID"}
    assert set(edited[1]) <= set(shared)
    # Left as shipped, nothing connects by accident and nothing signs with a known key.
    assert "PASSWORD@" in shared["REDIS_URL"]
    assert "PASSWORD@" in shared["DATABASE_URL"]
    assert shared["JWT_SECRET"] == ""
    for process in processes(the_recipe):
        instance = environment_file(installed(the_recipe, f"{ETC}/{process.instance}.env"))
        assert set(instance) <= known | {"TTLP_ROLES"}, process.instance
        assert "CONSUMER_NAME" not in instance, process.instance  # the unit's --consumer-name


def test_the_recipe_as_shipped_warns_that_it_runs_the_mock(the_recipe: Recipe) -> None:
    ingest = next(p for p in processes(the_recipe) if p.instance == "ingest")
    assert fake_events_warning(Settings.from_env(ingest.env)) is not None


def test_every_process_starts_after_the_migration(the_recipe: Recipe) -> None:
    found = units(the_recipe)
    template, migrate = found["ttlp@.service"], found["ttlp-migrate.service"]
    assert template.values("Unit", "Requires") == ["ttlp-migrate.service"]
    assert "ttlp-migrate.service" in template.value("Unit", "After").split()
    assert migrate.value("Service", "Type") == "oneshot"
    assert migrate.value("Service", "RemainAfterExit") == "yes"  # once, not per process
    process = service_process(
        migrate, "", host=host_name(), path=lambda p: installed(the_recipe, p)
    )
    assert process.argv == [f"{VENV}/bin/ttlp", "migrate"]
    assert process.env["DATABASE_URL"].startswith("postgresql://")
    # ttlp's own SIGTERM shutdown (SHUTDOWN_GRACE_S, 10 s) fits in what systemd allows.
    assert template.value("Service", "KillSignal") == "SIGTERM"
    assert int(template.value("Service", "TimeoutStopSec")) > Settings().grace_period_s


def test_an_instance_without_roles_refuses_to_start_instead_of_running_them_all() -> None:
    with pytest.raises(ConfigError, match="no role given"):
        parse_roles(" , ")
    result = CliRunner().invoke(cli, ["run", "--roles", ""])
    assert result.exit_code != 0
    assert "no role given" in result.output


def test_systemd_accepts_the_units(the_recipe: Recipe, tmp_path: Path) -> None:
    """``systemd-analyze verify`` of every instance the recipe enables and of the migration
    unit, with ``/opt/ttlp/bin/ttlp`` pointing at this virtualenv's ``ttlp`` (verify checks
    that the command exists). Any complaint fails, warnings included."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze on this machine (the units are parsed above)")
    ttlp = Path(sys.executable).parent / "ttlp"
    for unit in the_recipe.installed["/etc/systemd/system"]:
        text = unit.read_text(encoding="utf-8").replace(f"{VENV}/bin/ttlp", str(ttlp))
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    names = ["ttlp-migrate.service"]
    for instance in the_recipe.instances:
        (tmp_path / f"ttlp@{instance}.service").symlink_to("ttlp@.service")
        names.append(f"ttlp@{instance}.service")
    result = subprocess.run(
        [analyze, "verify", "--man=no", *(f"./{n}" for n in names)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
