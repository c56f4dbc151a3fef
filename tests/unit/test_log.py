"""Logs: JSON lines with the bound context, secrets redacted everywhere."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from loguru import logger

from ttlp import log


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    log.configure("info", "json", ["hunter2-secret"], stream=buffer)
    yield buffer
    logger.remove()


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_lines_carry_role_session_and_event(out: io.StringIO) -> None:
    logger.bind(role="store", session_id="s-1", event_id="e" * 64).info("stored", inserted=3)
    (line,) = lines(out)
    assert line["message"] == "stored"
    assert (line["role"], line["sessionId"], line["eventId"], line["inserted"]) == (
        "store",
        "s-1",
        "e" * 64,
        3,
    )
    assert line["level"] == "info"
    assert "time" in line


def test_secrets_are_redacted_from_messages_fields_and_errors(out: io.StringIO) -> None:
    logger.bind(role="x").warning(
        "connect postgresql://u:hunter2-secret@h/db",
        url="redis://:hunter2-secret@h",
        nested={"k": ["hunter2-secret"]},
    )
    try:
        raise RuntimeError("auth failed for hunter2-secret")
    except RuntimeError:
        logger.bind(role="x").exception("boom")
    logging.getLogger("ttlp.tests.a_library").warning("library says hunter2-secret")
    text = out.getvalue()
    assert "hunter2-secret" not in text
    assert text.count("***") >= 5
    assert [line["level"] for line in lines(out)] == ["warning", "error", "warning"]


def test_level_filters(out: io.StringIO) -> None:
    logger.debug("hidden")
    logger.info("shown")
    assert [line["message"] for line in lines(out)] == ["shown"]


def test_a_library_logger_with_its_own_handler_is_adopted(out: io.StringIO) -> None:
    library = logging.getLogger("some.library")
    library.addHandler(logging.StreamHandler(io.StringIO()))
    library.propagate = False
    log.adopt(library)
    library.warning("token hunter2-secret leaked?")
    assert lines(out)[-1]["message"] == "token *** leaked?"
    assert library.handlers == []
