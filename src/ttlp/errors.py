"""The one error type ttlp raises on purpose, and the classification of failures.

``TtlpError`` carries a one-line message that says what to do; the CLI prints it and exits
non-zero without a traceback. ``PermanentError`` marks an input that will never succeed (it is
dead-lettered at once); anything else a handler raises is retried until ``MAX_DELIVERIES``.
"""

from __future__ import annotations


class TtlpError(Exception):
    """An expected failure with a message meant for the operator (one line, actionable)."""

    exit_code = 2


class ConfigError(TtlpError):
    """Settings or command-line options that cannot work together."""


class DatabaseError(TtlpError):
    """The database is unreachable or not migrated."""


class BusError(TtlpError):
    """The bus is unreachable or its streams are in an unusable state (e.g. NOGROUP)."""


class PermanentError(Exception):
    """An entry that can never be processed: dead-letter it with ``reason`` instead of retrying."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def is_transient(exc: BaseException) -> bool:
    """Infrastructure failures (a server away, a lock held): retry the same work, no strike.

    Everything else a handler raises counts against the entry's delivery budget.
    """
    if isinstance(exc, (OSError, TimeoutError, ConnectionError)):
        return True
    import redis.exceptions as redis_errors
    import sqlalchemy.exc as sa_errors

    if isinstance(exc, (redis_errors.ConnectionError, redis_errors.TimeoutError)):
        return True
    if isinstance(exc, (sa_errors.OperationalError, sa_errors.InterfaceError)):
        return True
    if isinstance(exc, sa_errors.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, sa_errors.TimeoutError)  # pool exhausted
