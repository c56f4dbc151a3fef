"""Run the Alembic migrations programmatically and check a database is ready to use.

``ttlp migrate`` calls ``upgrade``; the embedded SQLite default migrates itself at start-up; a
server database that is behind makes ``check_ready`` refuse to start with a message that says
what to run (DESIGN §6).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Final
from urllib.parse import quote, quote_plus

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ttlp.errors import DatabaseError

CHECK_TIMEOUT_S: Final = 10.0
AIOSQLITE_SETTLE_S: Final = 0.05
_PACKAGED_SCRIPTS: Final = Path(__file__).resolve().parent / "alembic"
"""Where the wheel ships the migrations (pyproject force-include)."""
_REPO_SCRIPTS: Final = Path(__file__).resolve().parents[3] / "alembic"
"""The top-level ``alembic/`` of a source checkout (editable installs, PYTHONPATH=src)."""


def script_location() -> Path:
    """The migration scripts: the packaged copy when installed, else the repository's."""
    for candidate in (_PACKAGED_SCRIPTS, _REPO_SCRIPTS):
        if (candidate / "env.py").is_file():
            return candidate
    raise DatabaseError(
        f"the database migrations are missing (looked in {_PACKAGED_SCRIPTS} and "
        f"{_REPO_SCRIPTS}): reinstall ttlp"
    )


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config with no ini file: scripts from ``script_location``, URL from us."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if url is not None:
        # Through attributes, not set_main_option: ConfigParser would read '%' in an
        # URL-encoded password as interpolation.
        config.attributes["url"] = url
    return config


@cache
def head_revision() -> str:
    """The revision the code expects the database to be at."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the repository always has migrations
        raise DatabaseError("the migration history is empty: reinstall ttlp")
    return head


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` (an async-driver URL) to ``revision``.

    Alembic is synchronous and its env.py runs an event loop of its own; called from a thread
    that already runs one, the migration runs in a helper thread (blocking the caller: from
    async code prefer ``await asyncio.to_thread(upgrade, url)``).
    """
    config = alembic_config(url)
    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            command.upgrade(config, revision)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ttlp-migrate") as pool:
            pool.submit(command.upgrade, config, revision).result()
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        parsed = make_url(url)
        where = parsed.render_as_string(hide_password=True)
        raise DatabaseError(
            f"cannot migrate the database at {where}: {_short_reason(exc, parsed.password)}; "
            "check DATABASE_URL (user, password, host, database name) and that the server is "
            "running"
        ) from None


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current_revision)


def _current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def check_ready(engine: AsyncEngine, *, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Raise ``DatabaseError`` unless the database answers and is at ``head_revision()``."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        async with asyncio.timeout(timeout_s):
            current = await current_revision(engine)
    except (OSError, TimeoutError, DBAPIError, SQLAlchemyError) as exc:
        reason = _short_reason(exc, engine.url.password)
        if engine.dialect.name == "sqlite":
            # aiosqlite stops the worker thread of a failed connect without waiting for it;
            # give it a moment, or it reports to a closed event loop after we exit.
            await asyncio.sleep(AIOSQLITE_SETTLE_S)
        raise DatabaseError(
            f"cannot reach the database at {where}: {reason}; check DATABASE_URL and that the "
            "server is running"
        ) from None
    head = head_revision()
    if current == head:
        return
    known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current is not None and current not in known:
        raise DatabaseError(
            f"the database at {where} is at revision {current}, which this version of ttlp "
            f"does not know (it expects {head}): upgrade ttlp"
        )
    raise DatabaseError(
        f"the database at {where} is not migrated (at revision {current or 'none'}, need "
        f"{head}): run `ttlp migrate`"
    )


def _short_reason(exc: BaseException, password: str | None) -> str:
    """One line about why a connection failed, with no secret in it."""
    if isinstance(exc, TimeoutError):
        return "no answer within the connect timeout"
    cause = getattr(exc, "orig", None) or exc.__cause__ or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if password:
        for form in {password, quote_plus(password), quote(password, safe="")}:
            text = text.replace(form, "***")
    return text[:200]
