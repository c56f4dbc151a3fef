"""ttlp's one error root, and the classification of every failure.

``TtlpError`` carries a one-line message that says what to do; the CLI prints it and exits
non-zero without a traceback, and the api maps it to HTTP in one exception handler
(``ttlp.api.errors``). Its branches say what the failure means for whoever meets it:

- ``InputError``: what a client or an operator gave is wrong; the same input will always fail.
  ``status`` is the HTTP status it answers with (400 by default; 404 for something named that
  does not exist, 422 for a well-formed document that cannot be accepted).
- ``PermanentError``: an entry of a stream that can never be processed; the consume loop
  dead-letters it at once with its ``reason``.
- ``TransientError``: an outage (a server away, a timeout); the same work may succeed later, so
  it is retried without counting against an entry's delivery budget.
- ``ConfigError``, ``DatabaseError``, ``BusError``: ttlp cannot run as configured; the process
  says so and stops.

``is_transient`` also recognises the infrastructure exceptions of the libraries (OS, redis-py,
SQLAlchemy), which arrive untranslated.
"""

from __future__ import annotations

from typing import ClassVar, Final


class TtlpError(Exception):
    """An expected failure with a message meant for the operator (one line, actionable)."""

    exit_code: ClassVar[int] = 2


class InputError(TtlpError):
    """Something a client or an operator gave cannot be accepted (answers ``status``)."""

    status: int = 400

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class NotFoundError(InputError):
    """Something named in a request or a command does not exist."""

    status = 404


class UnprocessableError(InputError):
    """A well-formed document that cannot be accepted (a rule's condition, a URL...)."""

    status = 422


class PermanentError(TtlpError):
    """An entry that can never be processed: dead-letter it with ``reason`` instead of retrying."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TransientError(TtlpError):
    """A failure on the way (a server away, a timeout): the same work may succeed later."""


class ConfigError(TtlpError):
    """Settings or command-line options that cannot work together."""


class DatabaseError(TtlpError):
    """The database is unreachable or not migrated."""


class BusError(TtlpError):
    """The bus is unreachable or its streams are in an unusable state (e.g. NOGROUP)."""


def is_transient(exc: BaseException) -> bool:
    """Infrastructure failures (a server away, a lock held): retry the same work, no strike.

    Everything else a handler raises counts against the entry's delivery budget.
    """
    if isinstance(exc, (TransientError, OSError, TimeoutError, ConnectionError)):
        return True
    import redis.exceptions as redis_errors
    import sqlalchemy.exc as sa_errors

    if isinstance(exc, (redis_errors.ConnectionError, redis_errors.TimeoutError)):
        return True
    if isinstance(exc, (sa_errors.OperationalError, sa_errors.InterfaceError)):
        return True
    if isinstance(exc, sa_errors.DBAPIError):
        if exc.connection_invalidated:
            return True
        state = sqlstate(exc)
        if state is not None:
            if state == QUERY_CANCELED:
                return False  # a statement timeout: the same statement would time out again
            return state in TRANSIENT_SQLSTATES or state[:2] in TRANSIENT_SQLSTATE_CLASSES
    return isinstance(exc, sa_errors.TimeoutError)  # pool exhausted


QUERY_CANCELED: Final = "57014"
TRANSIENT_SQLSTATE_CLASSES: Final = frozenset({"08", "53", "57", "58"})
"""PostgreSQL error classes that say the server, not the statement, is the problem: 08
connection exception, 53 insufficient resources (53300 too many connections), 57 operator
intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now; not 57014,
a statement timeout), 58 system error (I/O). asyncpg raises them as a generic DBAPIError."""
TRANSIENT_SQLSTATES: Final = frozenset({"40001", "40P01", "55P03", "55006"})
"""Single states that succeed when tried again: serialization failure, deadlock, lock not
available, object in use."""


DATA_SQLSTATE_CLASSES: Final = frozenset({"22", "23"})
"""Data exception and integrity violation: the row is at fault, not the server."""


def is_data_error(exc: BaseException) -> bool:
    """The data handed to a handler is what is wrong (not ttlp, not a server): undecodable
    bytes, a value out of range, a shape a parser refuses, a row the database refuses. The
    entry is dead-lettered at once with this error; retrying cannot help."""
    import msgspec

    if isinstance(
        exc,
        (
            PermanentError,
            InputError,
            UnicodeError,
            ValueError,
            TypeError,
            LookupError,
            OverflowError,
            RecursionError,
            msgspec.MsgspecError,
        ),
    ):
        return True
    state = sqlstate(exc)
    return state is not None and state[:2] in DATA_SQLSTATE_CLASSES


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (asyncpg's ``sqlstate``, psycopg's ``pgcode``)."""
    for candidate in (getattr(exc, "orig", None), exc.__cause__, exc):
        for attribute in ("sqlstate", "pgcode"):
            state = getattr(candidate, attribute, None)
            if isinstance(state, str) and len(state) == 5:
                return state
    return None
