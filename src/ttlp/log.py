"""Logging: loguru, one JSON object per line (or pretty for a terminal), secrets redacted.

Configured once by the CLI. Every line carries the bound context (``role``, ``session_id``,
``event_id``...) as top-level keys. Secret values known from the settings are replaced by
``***`` wherever they appear, in the message or in any field, before a line is written.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

import msgspec
from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

_LEVELS = {
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
}
_CAMEL = {
    "session_id": "sessionId",
    "event_id": "eventId",
    "stream_id": "streamId",
    "raw_type": "rawType",
    "entry_id": "entryId",
}
_json = msgspec.json.Encoder()


class _Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, "***")
        return value

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value


def configure(
    level: str = "info",
    fmt: str = "json",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    extra: Mapping[str, str] | None = None,
) -> None:
    """Route all logging (loguru and stdlib) to ``stream`` (stderr) in ``fmt``; ``extra`` is on
    every line (a worker process's name)."""
    redactor = _Redactor(secrets)
    out = stream or sys.stderr
    logger.remove()

    def patch(record: Record) -> None:
        record["message"] = redactor.text(record["message"])
        extra = record["extra"]
        for key in list(extra):
            extra[key] = redactor.value(extra[key])

    def json_sink(message: Message) -> None:
        record = message.record
        line: dict[str, Any] = {
            "time": record["time"].isoformat(timespec="milliseconds"),
            "level": record["level"].name.lower(),
            "message": record["message"],
        }
        for key, value in record["extra"].items():
            line[_CAMEL.get(key, key)] = value
        if record["exception"] is not None:
            exc_type, exc, _ = record["exception"]
            name = exc_type.__name__ if exc_type else "Exception"
            line["error"] = redactor.text(f"{name}: {exc}")
            if level == "debug":
                import traceback

                line["stack"] = redactor.text("".join(traceback.format_exception(exc)))
        try:
            out.write(_json.encode(line).decode() + "\n")
        except TypeError:
            out.write(_json.encode({k: str(v) for k, v in line.items()}).decode() + "\n")
        out.flush()

    logger.configure(extra=dict(extra or {}), patcher=patch)
    if fmt == "json":
        logger.add(json_sink, level=_LEVELS[level], backtrace=False, diagnose=False)
    else:
        logger.add(
            out,
            level=_LEVELS[level],
            format="<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
            "<cyan>{extra[role]}</cyan> {message} <dim>{extra}</dim>",
            backtrace=False,
            diagnose=False,
        )
        logger.configure(extra={"role": "-", **(extra or {})}, patcher=patch)
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.WARNING, force=True)


def adopt(library_logger: logging.Logger) -> None:
    """Route a library logger that set up its own stderr handler (TikTokLive does, and stops
    propagation) through ttlp's logging, so its lines are JSON and redacted like ours."""
    for handler in list(library_logger.handlers):
        library_logger.removeHandler(handler)
    library_logger.propagate = True


class _InterceptHandler(logging.Handler):
    """Send stdlib logging (TikTokLive, alembic, asyncio) through loguru and its redaction."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            lvl: str | int = logger.level(record.levelname).name
        except ValueError:
            lvl = record.levelno
        logger.bind(logger=record.name).opt(depth=6, exception=record.exc_info).log(
            lvl, record.getMessage()
        )
