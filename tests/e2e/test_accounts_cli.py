"""``ttlp accounts`` as an operator runs it: subprocesses on the embedded SQLite database.

Passwords go in through ``--password-stdin``; what matters is what the commands print (never a
password or its hash), their exit codes, and the accounts table they leave behind.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.processes import TTLP
from ttlp.api.accounts import Accounts
from ttlp.db.engine import create_engine

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
NEW_PASSWORD = "tr0ub4dor & three"


@dataclass
class Cli:
    env: dict[str, str]
    cwd: Path
    outputs: list[str]
    """Everything any command printed, to check no secret ever appears."""

    @property
    def database(self) -> Path:
        return Path(self.env["TTLP_DATA_DIR"]) / "ttlp.db"

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*TTLP, "accounts", *args],
            env=self.env,
            cwd=self.cwd,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.outputs += [result.stdout, result.stderr]
        return result

    def add(
        self, username: str, role: str = "streamer", scope: str = "luna.beats", *, password: str
    ) -> subprocess.CompletedProcess[str]:
        return self(
            "add", username, "--role", role, "--scope", scope, "--password-stdin", stdin=password
        )

    def listed(self) -> dict[str, list[str]]:
        """``accounts list`` as username → [role, scope, status, created]."""
        result = self("list")
        assert result.returncode == 0, result.stderr
        rows = {}
        for line in result.stdout.splitlines():
            if line.startswith(("│", "|")):
                cells = [c.strip() for c in line.replace("|", "│").strip("│").split("│")]
                rows[cells[0]] = cells[1:]
        rows.pop("username", None)  # the header, when drawn with ASCII
        return rows


@pytest.fixture
def cli(ttlp_env: dict[str, str], tmp_path: Path) -> Cli:
    env = {**ttlp_env, "COLUMNS": "200", "PYTHONIOENCODING": "utf-8"}
    return Cli(env=env, cwd=tmp_path, outputs=[])


@pytest.fixture
async def engine(cli: Cli) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(f"sqlite+aiosqlite:///{cli.database}")
    yield eng
    await eng.dispose()


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The refusal: a non-zero exit and exactly one line on stderr, no traceback."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ttlp: error: "), result.stderr
    return lines[0]


def stored_hashes(database: Path) -> dict[str, str]:
    """username → password hash, read from the database file ({} before it exists)."""
    if not database.exists():
        return {}
    with contextlib.closing(sqlite3.connect(database)) as conn:
        try:
            rows = conn.execute("SELECT username, password_hash FROM accounts").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return {}
    return dict(rows)


def test_added_accounts_are_listed_with_role_scope_and_status(cli: Cli) -> None:
    added = cli.add("luna", "streamer", "@Luna.Beats", password=PASSWORD)
    assert added.returncode == 0, added.stderr
    assert "luna" in added.stdout
    moderator = cli.add("mod", "MODERATOR", "luna.beats,other.streamer", password=PASSWORD)
    assert moderator.returncode == 0, moderator.stderr
    assert cli.add("ops", "viewer", "*", password=PASSWORD).returncode == 0
    listed = cli.listed()
    assert {name: row[:3] for name, row in listed.items()} == {
        "luna": ["STREAMER", "luna.beats", "active"],
        "mod": ["MODERATOR", "luna.beats, other.streamer", "active"],
        "ops": ["VIEWER", "*", "active"],
    }


def test_no_command_ever_prints_a_password_or_its_hash(cli: Cli) -> None:
    assert cli.add("luna", password=PASSWORD).returncode == 0
    assert cli("set-password", "luna", "--password-stdin", stdin=NEW_PASSWORD).returncode == 0
    assert cli("disable", "luna").returncode == 0
    cli.listed()
    cli.add("luna", password=PASSWORD)  # refused: a duplicate
    printed = "\n".join(cli.outputs)
    (stored,) = stored_hashes(cli.database).values()
    assert stored.startswith("scrypt$")
    salt_and_digest = stored.split("$")[-2:]
    assert not [s for s in (PASSWORD, NEW_PASSWORD, "scrypt", *salt_and_digest) if s in printed]


@pytest.mark.parametrize("password", ["short", "", "x" * 1025], ids=["short", "empty", "huge"])
def test_a_weak_password_is_refused_in_one_line_and_no_account_is_made(
    cli: Cli, password: str
) -> None:
    error = one_line_error(cli.add("luna", password=password))
    assert "password" in error
    assert "luna" not in stored_hashes(cli.database)


def test_a_duplicate_account_is_refused_and_the_first_one_kept(cli: Cli) -> None:
    assert cli.add("luna", "streamer", "luna.beats", password=PASSWORD).returncode == 0
    error = one_line_error(cli.add("luna", "viewer", "*", password=PASSWORD))
    assert "'luna' already exists" in error
    assert cli.listed()["luna"][:2] == ["STREAMER", "luna.beats"]


@pytest.mark.parametrize("command", ["disable", "enable", "set-password"])
def test_an_unknown_account_is_refused_in_one_line(cli: Cli, command: str) -> None:
    assert cli.add("luna", password=PASSWORD).returncode == 0
    args = ("--password-stdin",) if command == "set-password" else ()
    error = one_line_error(cli(command, "nobody", *args, stdin=NEW_PASSWORD))
    assert "no account 'nobody'" in error


def test_disable_and_enable_show_in_the_list(cli: Cli) -> None:
    assert cli.add("luna", password=PASSWORD).returncode == 0
    disabled = cli("disable", "luna")
    assert disabled.returncode == 0, disabled.stderr
    assert cli.listed()["luna"][2] == "disabled"
    assert cli("enable", "luna").returncode == 0
    assert cli.listed()["luna"][2] == "active"


async def test_set_password_replaces_the_password(cli: Cli, engine: AsyncEngine) -> None:
    assert cli.add("luna", password=PASSWORD).returncode == 0
    changed = cli("set-password", "luna", "--password-stdin", stdin=NEW_PASSWORD + "\n")
    assert changed.returncode == 0, changed.stderr
    accounts = Accounts(engine)
    assert await accounts.authenticate("luna", NEW_PASSWORD) is not None
    assert await accounts.authenticate("luna", PASSWORD) is None


async def test_a_weak_new_password_is_refused_and_the_old_one_kept(
    cli: Cli, engine: AsyncEngine
) -> None:
    assert cli.add("luna", password=PASSWORD).returncode == 0
    error = one_line_error(cli("set-password", "luna", "--password-stdin", stdin="short"))
    assert "password" in error
    assert await Accounts(engine).authenticate("luna", PASSWORD) is not None


# -- set-role, set-scope, delete; the last owner --------------------------------------------------
def token_epochs(database: Path) -> dict[str, str]:
    """username → password_changed_at: the stamp every token carries (a change ends tokens)."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return dict(conn.execute("SELECT username, password_changed_at FROM accounts").fetchall())


def test_set_role_and_set_scope_change_the_account_and_end_its_tokens(cli: Cli) -> None:
    assert cli.add("mod", "moderator", "luna.beats", password=PASSWORD).returncode == 0
    before = token_epochs(cli.database)["mod"]
    role = cli("set-role", "mod", "viewer")
    assert role.returncode == 0, role.stderr
    assert "VIEWER" in role.stdout
    assert "older tokens no longer work" in role.stdout
    after_role = token_epochs(cli.database)["mod"]
    assert after_role != before
    scope = cli("set-scope", "mod", "@Luna.Beats,other.streamer")
    assert scope.returncode == 0, scope.stderr
    assert cli.listed()["mod"][:3] == ["VIEWER", "luna.beats, other.streamer", "active"]
    assert token_epochs(cli.database)["mod"] != after_role
    same = cli("set-role", "mod", "VIEWER")
    assert "unchanged" in same.stdout


def test_delete_asks_first_and_deletes_only_on_yes(cli: Cli) -> None:
    assert cli.add("mod", "moderator", "luna.beats", password=PASSWORD).returncode == 0
    kept = cli("delete", "mod", stdin="n\n")
    assert kept.returncode == 0, kept.stderr
    assert "delete account mod (MODERATOR, scope luna.beats)?" in kept.stdout
    assert "nothing deleted" in kept.stdout
    assert "mod" in cli.listed()
    gone = cli("delete", "mod", stdin="y\n")
    assert gone.returncode == 0, gone.stderr
    assert "mod" not in cli.listed()
    assert cli.add("viewer", "viewer", "*", password=PASSWORD).returncode == 0
    assert cli("delete", "viewer", "--yes").returncode == 0
    assert cli.listed() == {}


@pytest.mark.parametrize(
    "args",
    [
        ("delete", "owner", "--yes"),
        ("set-role", "owner", "MODERATOR"),
        ("set-scope", "owner", "luna.beats"),
        ("disable", "owner"),
    ],
    ids=["delete", "demote", "narrow", "disable"],
)
def test_the_last_owner_is_kept(cli: Cli, args: tuple[str, ...]) -> None:
    assert cli.add("owner", "streamer", "*", password=PASSWORD).returncode == 0
    assert cli.add("nova", "streamer", "dj.nova", password=PASSWORD).returncode == 0
    error = one_line_error(cli(*args))
    assert "'owner' is the last owner" in error
    assert cli.listed()["owner"][:3] == ["STREAMER", "*", "active"]
    assert cli("set-scope", "nova", "*").returncode == 0  # a second owner: now it may go
    done = cli(*args, stdin="y\n")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "args",
    [("delete", "nobody", "--yes"), ("set-role", "nobody", "VIEWER"), ("set-scope", "nobody", "*")],
    ids=["delete", "set-role", "set-scope"],
)
def test_changing_an_unknown_account_is_refused_in_one_line(
    cli: Cli, args: tuple[str, ...]
) -> None:
    assert cli.add("luna", password=PASSWORD).returncode == 0
    assert "no account 'nobody'" in one_line_error(cli(*args))


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("add", "two words", "--role", "viewer", "--scope", "*"), "username"),
        (("add", "luna", "--role", "viewer", "--scope", "not a handle"), "handle"),
        (("set-scope", "luna", ""), "scope"),
    ],
    ids=["username", "scope", "empty-scope"],
)
def test_a_bad_name_or_scope_is_refused_before_any_password_is_asked(
    cli: Cli, args: tuple[str, ...], why: str
) -> None:
    result = cli(*args, stdin="")
    assert why in one_line_error(result)
    assert "password" not in result.stdout + result.stderr


def test_a_short_password_is_refused_before_it_is_asked_again() -> None:
    """Interactive: the rules are checked on the first entry, so the user types another one
    at once instead of typing a bad one twice."""
    from ttlp.cli import _read_password

    @click.command()
    def ask() -> None:
        click.echo(f"got {len(_read_password(False))} characters")

    result = CliRunner().invoke(ask, input=f"short\n{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    output = result.output
    assert "Error: a password needs 8 to 1024 characters" in output
    assert output.index("Error: a password needs") < output.index("Repeat for confirmation")
    assert output.count("Repeat for confirmation") == 1
    assert f"got {len(NEW_PASSWORD)} characters" in output
