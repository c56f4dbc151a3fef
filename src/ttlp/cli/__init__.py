"""The ``ttlp`` command: run roles, migrate, replay, status, accounts, dlq, gdpr, rules, bench.

Settings come from the environment (seed variable names) and are overridden by flags; they are
built once here and passed down. Expected failures (``TtlpError``) print one line that says what
to do and exit non-zero, without a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from ttlp import __version__
from ttlp.bus.keys import STAGES
from ttlp.errors import ConfigError, TtlpError
from ttlp.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def _common(fn: F) -> F:
    """Options every command shares (each overrides its environment variable)."""
    options = [
        click.option("--redis-url", help="Redis URL [env REDIS_URL; unset = in-process bus]"),
        click.option("--database-url", help="Database URL [env DATABASE_URL; unset = SQLite]"),
        click.option("--prefix", help="Key/group prefix [env REDIS_CONSUMER_GROUP_PREFIX]"),
        click.option("--data-dir", help="Embedded data directory [env TTLP_DATA_DIR]"),
        click.option(
            "--log-level",
            type=click.Choice(["debug", "info", "warn", "error"]),
            help="[env LOG_LEVEL, default info]",
        ),
        click.option(
            "--log-format",
            type=click.Choice(["json", "pretty"]),
            help="[env LOG_FORMAT, default json]",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _settings(*, log_extra: dict[str, str] | None = None, **flags: Any) -> Settings:
    mapping = {
        "redis_url": "bus.redis_url",
        "database_url": "db.url",
        "prefix": "bus.prefix",
        "consumer_name": "bus.consumer_name",
        "data_dir": "data_dir",
        "log_level": "log_level",
        "log_format": "log_format",
        "provider": "ingest.provider",
        "rate": "ingest.mock_rate",
        "loop": "ingest.mock_loop",
        "fixture": "ingest.mock_fixture",
        "port": "api.port",
        "replay_session": "replay_session",
        "workers": "workers",
    }
    overrides = {mapping[k]: v for k, v in flags.items() if k in mapping and v is not None}
    if flags.get("unique_id"):
        overrides["ingest.unique_ids"] = tuple(
            h.strip().lstrip("@") for h in flags["unique_id"].split(",") if h.strip()
        )
    settings = Settings.from_env(**overrides)
    from ttlp import log

    log.configure(settings.log_level, settings.log_format, settings.secrets(), extra=log_extra)
    return settings


def _guarded(fn: F) -> F:
    """Turn TtlpError into a one-line message and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TtlpError as exc:
            click.echo(f"ttlp: error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ttlp")
def cli() -> None:
    """ttlp: ingest, normalize, store and serve TikTok LIVE events."""


@cli.command()
@click.option(
    "--roles",
    "roles",
    default="all",
    show_default=True,
    help="Comma-separated roles to run in this process, or 'all'.",
)
@click.option(
    "--provider",
    type=click.Choice(["direct", "euler", "mock"]),
    help="Ingest provider [env INGEST_PROVIDER]",
)
@click.option("--unique-id", help="Streamer handle(s), comma-separated [env TIKTOK_UNIQUE_ID]")
@click.option("--rate", type=float, help="Mock provider: frames per second, 0 = max [MOCK_RATE]")
@click.option("--loop/--no-loop", default=None, help="Mock provider: repeat forever [MOCK_LOOP]")
@click.option("--fixture", type=click.Path(dir_okay=False), help="Mock NDJSON [MOCK_FIXTURE]")
@click.option("--replay-session", help="Ingest replays this stored session instead.")
@click.option("--consumer-name", help="Stable consumer name of this replica [CONSUMER_NAME]")
@click.option("--port", type=int, help="API port [env API_PORT, default 3000]")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Processes on Redis: from 2, normalize runs in worker processes [env TTLP_WORKERS, 1]",
)
@click.option("--worker-of-parent", is_flag=True, hidden=True)
@_common
@_guarded
def run(roles: str, worker_of_parent: bool, **flags: Any) -> None:
    """Run roles (ingest, normalize, store, ...) as asyncio tasks until SIGINT/SIGTERM."""
    from ttlp.runtime import parse_roles, run_roles

    selected = parse_roles(roles)
    # A worker's lines (ttlp.runtime.worker_process) name it: they share ttlp run's output.
    worker = {"worker": flags["consumer_name"] or ""} if worker_of_parent else None
    settings = _settings(log_extra=worker, **flags)
    sys.exit(asyncio.run(run_roles(settings, selected, worker_of_parent=worker_of_parent)))


@cli.command()
@_common
@_guarded
def migrate(**flags: Any) -> None:
    """Apply the database migrations (PostgreSQL or SQLite)."""
    from ttlp.db.engine import normalize_database_url
    from ttlp.db.migrate import head_revision, upgrade
    from ttlp.settings import redact_url

    settings = _settings(**flags)
    url = normalize_database_url(settings.db.url, settings.data_path)
    upgrade(url)
    click.echo(f"database {redact_url(url)} is at revision {head_revision()}")


@cli.command()
@click.argument("session_id")
@click.option(
    "--speed",
    type=float,
    default=None,
    help="Follow the original timing at this speed (1.0 = real time); default: max.",
)
@_common
@_guarded
def replay(session_id: str, speed: float | None, **flags: Any) -> None:
    """Replay a stored session through the pipeline as a new session (source=replay)."""
    from ttlp.cli.commands import replay_command

    settings = _settings(**flags)
    asyncio.run(replay_command(settings, session_id, speed))


@cli.command()
@_common
@_guarded
def status(**flags: Any) -> None:
    """Stream lengths, consumer lag and pending per group, DLQ size, stored totals."""
    from ttlp.cli.commands import status_command

    settings = _settings(**flags)
    asyncio.run(status_command(settings))


@cli.command()
@click.option("--dry-run", is_flag=True, help="Count what a run would do now; change nothing.")
@_common
@_guarded
def prune(dry_run: bool, **flags: Any) -> None:
    """Apply retention now: archive, then delete, old events and raw frames; delete old rule
    firings, deliveries, sessions and streams; pseudonymize inactive TikTok users."""
    from ttlp.cli.prune import prune_command

    settings = _settings(**flags)
    sys.exit(asyncio.run(prune_command(settings, dry_run)))


@cli.command()
@click.option("-n", "--frames", type=int, default=100_000, show_default=True)
@click.option(
    "--backend",
    type=click.Choice(["redis-pg", "embedded", "both"]),
    default="both",
    show_default=True,
)
@click.option("--latency-rate", type=float, default=1000.0, show_default=True)
@click.option("--latency-seconds", type=float, default=10.0, show_default=True)
@click.option(
    "--sse-clients",
    type=int,
    default=100,
    show_default=True,
    help="Live-feed (SSE) clients during the fixed-rate run (0 = none).",
)
@click.option("--profile", is_flag=True, help="Print cProfile's top entries of a protobuf run.")
@click.option(
    "--profile-out",
    type=click.Path(file_okay=False),
    help="Also write the profiles (.prof) to this directory.",
)
@click.option(
    "--soak",
    type=float,
    metavar="SECONDS",
    help="Only a soak this long at --rate: RSS and latency every --soak-interval.",
)
@click.option("--rate", type=float, default=1000.0, show_default=True, help="The soak's frames/s.")
@click.option("--soak-interval", type=float, default=60.0, show_default=True, metavar="SECONDS")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="TTLP_WORKERS of the Redis runs: from 2, normalize runs in worker processes.",
)
@_guarded
def bench(
    frames: int,
    backend: str,
    latency_rate: float,
    latency_seconds: float,
    sse_clients: int,
    profile: bool,
    profile_out: str | None,
    soak: float | None,
    rate: float,
    soak_interval: float,
    workers: int,
) -> None:
    """Pipeline benchmark: events/s ingest → committed, latency to the database and to SSE
    clients, RSS, machine limits; each run in a process of its own, then a table.

    The benchmark code lives in the checkout's ``benchmarks/`` (it is not shipped in the
    wheel): this runs ``benchmarks/pipeline.py`` from the source tree ttlp is installed from.
    """
    import runpy

    script = Path(__file__).resolve().parents[3] / "benchmarks" / "pipeline.py"
    if not script.is_file():
        raise ConfigError(
            "ttlp bench runs the benchmarks of a source checkout: clone the repository, "
            "`pip install -e .` there, then run `ttlp bench` (or `make bench`)"
        )
    sys.path.insert(0, str(script.parent))
    pipeline = runpy.run_path(str(script))
    kinds = ["redis-pg", "embedded"] if backend == "both" else [backend]
    sys.exit(
        pipeline["main"](
            frames,
            kinds,
            latency_rate,
            latency_seconds,
            sse_clients=sse_clients,
            profile=profile,
            profile_out=profile_out,
            soak_s=soak,
            rate=rate,
            soak_interval=soak_interval,
            processes=workers,
        )
    )


@cli.group()
def accounts() -> None:
    """API accounts: who may log in to the API and the UI, with which role and scope."""


_ROLE_CHOICE = click.Choice(["STREAMER", "MODERATOR", "VIEWER"], case_sensitive=False)


def _password_option(fn: F) -> F:
    return click.option(
        "--password-stdin",
        is_flag=True,
        help="Read the password from standard input (for scripts) instead of prompting.",
    )(fn)


def _read_password(from_stdin: bool) -> str:
    """The new password, checked against the rules before it is asked a second time (an
    interactive user hears at once that it is too short, and types another one)."""
    from ttlp.api.accounts import AccountError, check_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
        check_password(password)
        return password

    def checked(value: str) -> str:
        try:
            check_password(value)
        except AccountError as exc:
            raise click.UsageError(str(exc)) from None
        return value

    entered: str = click.prompt(
        "password", hide_input=True, confirmation_prompt=True, value_proc=checked
    )
    return entered


@accounts.command("add")
@click.argument("username")
@click.option("--role", type=_ROLE_CHOICE, required=True, help="STREAMER, MODERATOR or VIEWER")
@click.option(
    "--scope",
    required=True,
    help="Streamer handle(s) this account may see, comma-separated, or * for all",
)
@_password_option
@_common
@_guarded
def accounts_add(username: str, role: str, scope: str, password_stdin: bool, **flags: Any) -> None:
    """Create an account."""
    from ttlp.api.accounts import check_username, parse_scopes
    from ttlp.cli.commands import accounts_command

    settings = _settings(**flags)
    check_username(username)  # what can be checked is, before the password is asked for
    parse_scopes(scope)
    password = _read_password(password_stdin)
    asyncio.run(accounts_command(settings, "add", username, password, role.upper(), scope))


@accounts.command("list")
@_common
@_guarded
def accounts_list(**flags: Any) -> None:
    """List the accounts (never their password hashes)."""
    from ttlp.cli.commands import accounts_command

    asyncio.run(accounts_command(_settings(**flags), "list"))


@accounts.command("disable")
@click.argument("username")
@_common
@_guarded
def accounts_disable(username: str, **flags: Any) -> None:
    """Disable an account: its tokens stop working within seconds."""
    from ttlp.cli.commands import accounts_command

    asyncio.run(accounts_command(_settings(**flags), "disable", username))


@accounts.command("enable")
@click.argument("username")
@_common
@_guarded
def accounts_enable(username: str, **flags: Any) -> None:
    """Enable a disabled account again."""
    from ttlp.cli.commands import accounts_command

    asyncio.run(accounts_command(_settings(**flags), "enable", username))


@accounts.command("set-password")
@click.argument("username")
@_password_option
@_common
@_guarded
def accounts_set_password(username: str, password_stdin: bool, **flags: Any) -> None:
    """Change an account's password: tokens issued before stop working."""
    from ttlp.cli.commands import accounts_command

    settings = _settings(**flags)
    password = _read_password(password_stdin)
    asyncio.run(accounts_command(settings, "set-password", username, password))


@accounts.command("set-role")
@click.argument("username")
@click.argument("role", type=_ROLE_CHOICE)
@_common
@_guarded
def accounts_set_role(username: str, role: str, **flags: Any) -> None:
    """Change an account's role (STREAMER, MODERATOR, VIEWER): its tokens stop working."""
    from ttlp.cli.commands import accounts_command

    asyncio.run(accounts_command(_settings(**flags), "set-role", username, role.upper()))


@accounts.command("set-scope")
@click.argument("username")
@click.argument("scope")
@_common
@_guarded
def accounts_set_scope(username: str, scope: str, **flags: Any) -> None:
    """Change the streamers an account may see (handles, comma-separated, or *): its tokens
    stop working."""
    from ttlp.api.accounts import parse_scopes
    from ttlp.cli.commands import accounts_command

    parse_scopes(scope)
    asyncio.run(accounts_command(_settings(**flags), "set-scope", username, scope))


@accounts.command("delete")
@click.argument("username")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_common
@_guarded
def accounts_delete(username: str, yes: bool, **flags: Any) -> None:
    """Delete an account (asks first unless --yes); its tokens stop working. The last owner
    (an enabled STREAMER of scope *) cannot be deleted."""
    from ttlp.cli.commands import accounts_command

    asyncio.run(accounts_command(_settings(**flags), "delete", username, yes=yes))


@cli.group()
def dlq() -> None:
    """Dead letters (ttlc:dlq): list, show, retry where they failed, purge. On the embedded
    default they are kept in the database: these work whether `ttlp run` is running or not."""


_STAGE_OPTION = click.option(
    "--stage", type=click.Choice(STAGES), help="Only letters of this stage (who gave up)."
)


def _dlq(settings: Settings, action: str, **options: Any) -> None:
    from ttlp.cli.dlq import dlq_command

    sys.exit(asyncio.run(dlq_command(settings, action, **options)))


@dlq.command("list")
@_STAGE_OPTION
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@_common
@_guarded
def dlq_list(stage: str | None, limit: int, **flags: Any) -> None:
    """The newest dead letters: id, stage, reason, time, a short detail."""
    _dlq(_settings(**flags), "list", stage=stage, limit=limit)


@dlq.command("show")
@click.argument("entry_id", metavar="ID")
@_common
@_guarded
def dlq_show(entry_id: str, **flags: Any) -> None:
    """One dead letter in full: every field, the payload decoded and indented."""
    _dlq(_settings(**flags), "show", ids=(entry_id,))


@dlq.command("retry")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@_STAGE_OPTION
@click.option("--all", "everything", is_flag=True, help="Every letter (of --stage, if given).")
@_common
@_guarded
def dlq_retry(ids: tuple[str, ...], stage: str | None, everything: bool, **flags: Any) -> None:
    """Send letters back where they failed: forwarder deliveries are queued again (attempts
    reset), other letters go back to the stream they came from; retried letters leave the
    queue. Exits 1 when a letter cannot be retried (it is named, with why)."""
    _dlq(_settings(**flags), "retry", ids=ids, stage=stage, everything=everything)


@dlq.command("purge")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@_STAGE_OPTION
@click.option(
    "--before",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]),
    help="Only letters dead-lettered before this time (UTC).",
)
@click.option("--all", "everything", is_flag=True, help="Every letter (of --stage, if given).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_common
@_guarded
def dlq_purge(
    ids: tuple[str, ...],
    stage: str | None,
    before: datetime | None,
    everything: bool,
    yes: bool,
    **flags: Any,
) -> None:
    """Delete letters (asks first unless --yes)."""
    when = before.replace(tzinfo=UTC) if before is not None else None
    _dlq(
        _settings(**flags),
        "purge",
        ids=ids,
        stage=stage,
        before=when,
        everything=everything,
        yes=yes,
    )


# -- export and import (ttlp.cli.transfer) --------------------------------------------------------
def _iso_time(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    from ttlp.aio import parse_iso

    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time") from None


@cli.command("export")
@click.option("--session", "sessions", multiple=True, metavar="ID", help="A session (repeatable).")
@click.option("--stream", metavar="ROOM_ID", help="One room (broadcast).")
@click.option("--streamer", metavar="@HANDLE", help="Every room of a streamer.")
@click.option("--since", callback=_iso_time, help="From this TikTok time (ISO 8601, inclusive).")
@click.option("--until", callback=_iso_time, help="Before this TikTok time (exclusive).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ndjson", "csv", "parquet"]),
    help="Events as NDJSON (UnifiedEvent v1, default), CSV, or Parquet (needs pyarrow).",
)
@click.option("--raw", is_flag=True, help="The raw.v1 frames instead (NDJSON): what import reads.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File.")
@_common
@_guarded
def export_cmd(
    sessions: tuple[str, ...],
    stream: str | None,
    streamer: str | None,
    since: datetime | None,
    until: datetime | None,
    fmt: str | None,
    raw: bool,
    output: Path | None,
    **flags: Any,
) -> None:
    """Export stored events (or, with --raw, raw frames) in arrival order; no selector =
    everything. Writes to stdout unless -o FILE (then with a progress bar on stderr)."""
    import os

    from ttlp.cli.transfer import export_command

    if raw and fmt not in (None, "ndjson"):
        raise click.UsageError("--raw writes raw.v1 NDJSON: leave out --format")
    settings = _settings(**flags)
    complete = asyncio.run(
        export_command(
            settings,
            "raw" if raw else fmt or "ndjson",  # type: ignore[arg-type]
            output,
            sessions=sessions,
            stream=stream,
            streamer=streamer,
            since=since,
            until=until,
        )
    )
    if not complete:  # stdout closed early (`ttlp export | head`): quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


@cli.command("import")
@click.argument("source", default="-", metavar="[FILE|-]")
@_common
@_guarded
def import_cmd(source: str, **flags: Any) -> None:
    """Re-process raw.v1 NDJSON (`ttlp export --raw`) through the pipeline into the configured
    database (stdin when - or omitted). Importing a file twice adds nothing."""
    from ttlp.cli.transfer import import_command, print_report

    settings = _settings(**flags)
    if source == "-":
        report = asyncio.run(import_command(settings, sys.stdin.buffer, "stdin"))
    else:
        try:
            stream = Path(source).open("rb")  # noqa: SIM115 - closed below, after the run
        except OSError as exc:
            raise ConfigError(f"cannot read {source}: {exc.strerror}") from None
        with stream:
            report = asyncio.run(import_command(settings, stream, source))
    print_report(report)


@cli.group()
def gdpr() -> None:
    """GDPR erasure of one TikTok user: everything stored about them, in one transaction, with
    an audit row (who asked, when, how many rows; never whom); their events are refused after."""


@gdpr.command("erase")
@click.option("--user-id", help="The TikTok user id (digits).")
@click.option("--handle", help="The TikTok handle (@name; case does not matter).")
@click.option("--dry-run", is_flag=True, help="Show what would be erased; erase nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_common
@_guarded
def gdpr_erase(
    user_id: str | None, handle: str | None, dry_run: bool, yes: bool, **flags: Any
) -> None:
    """Erase a TikTok user (--user-id or --handle): their events and the events naming them,
    the raw frames naming them, notes, the users row, rule actions, forward deliveries. Shows
    the counts and asks first (refused without --yes where nobody can answer)."""
    from ttlp.cli.gdpr import erase_command

    settings = _settings(**flags)
    asyncio.run(erase_command(settings, user_id=user_id, handle=handle, dry_run=dry_run, yes=yes))


@gdpr.command("list")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@_common
@_guarded
def gdpr_list(limit: int, **flags: Any) -> None:
    """The erasures' audit rows, newest first."""
    from ttlp.cli.gdpr import list_command

    asyncio.run(list_command(_settings(**flags), limit))


# -- rules (ttlp.cli.rules) ----------------------------------------------------------------------
@cli.group()
def rules() -> None:
    """Rules: backtest one over stored sessions (what it would have done; nothing is sent)."""


@rules.command("backtest")
@click.argument("rule", metavar="RULE_FILE_OR_ID")
@click.option("--session", "sessions", multiple=True, metavar="ID", help="A session (repeatable).")
@click.option("--stream", metavar="ROOM_ID|@HANDLE", help="Or a room, or a streamer's rooms.")
@click.option("--since", callback=_iso_time, help="With --stream: from this time (ISO 8601).")
@click.option("--until", callback=_iso_time, help="With --stream: before this time (ISO 8601).")
@click.option("--include-replays", is_flag=True, help="With --stream: replayed events too.")
@click.option("--outputs", type=click.IntRange(0, 200), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result object as JSON.")
@_common
@_guarded
def rules_backtest(
    rule: str,
    sessions: tuple[str, ...],
    stream: str | None,
    since: datetime | None,
    until: datetime | None,
    include_replays: bool,
    outputs: int,
    as_json: bool,
    **flags: Any,
) -> None:
    """Run RULE (a stored rule's id, or a JSON file as POST /rules takes it) over stored
    sessions through the rules engine in dry run: events considered, matches, fires after
    cooldowns and the announcement throttle (in event time), the first outputs, the top users,
    template errors. Nothing is sent, nothing is written to actions_log."""
    from ttlp.cli.rules import backtest_command

    settings = _settings(**flags)
    asyncio.run(
        backtest_command(
            settings,
            rule,
            sessions=sessions,
            stream=stream,
            since=since,
            until=until,
            include_replays=include_replays,
            outputs=outputs,
            as_json=as_json,
        )
    )


def main() -> None:
    cli(prog_name="ttlp")
