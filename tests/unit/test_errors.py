"""One error root, one mapping to HTTP (ttlp.errors, ttlp.api.errors)."""

from __future__ import annotations

import pytest
import redis.exceptions
import sqlalchemy.exc
from litestar import Litestar, get
from litestar.testing import TestClient

from ttlp.api.accounts import AccountError
from ttlp.api.errors import ttlp_error, unexpected_error
from ttlp.db.queries import CursorError
from ttlp.db.store import SessionNotFoundError
from ttlp.errors import (
    InputError,
    NotFoundError,
    PermanentError,
    TransientError,
    TtlpError,
    UnprocessableError,
    is_transient,
)
from ttlp.forward.outbound import OutboundError, OutboundRefused
from ttlp.rules.engine import DefinitionError
from ttlp.rules.jsonlogic import RuleError
from ttlp.rules.templates import TemplateError


@pytest.mark.parametrize(
    ("error", "branch", "status"),
    [
        (AccountError("weak"), InputError, 400),
        (CursorError("bad cursor"), InputError, 400),
        (SessionNotFoundError("no such session"), NotFoundError, 404),
        (DefinitionError("condition: bad"), UnprocessableError, 422),
        (RuleError("unknown operator 'foo'"), UnprocessableError, 422),
        (TemplateError("bad template"), UnprocessableError, 422),
        (OutboundRefused("loopback"), UnprocessableError, 422),
    ],
)
def test_every_input_error_is_a_ttlp_error_with_its_status(
    error: InputError, branch: type[InputError], status: int
) -> None:
    assert isinstance(error, branch)
    assert isinstance(error, TtlpError)
    assert error.status == status


def test_outages_are_transient_and_bad_entries_are_not() -> None:
    assert is_transient(OutboundError("timeout"))
    assert is_transient(redis.exceptions.ConnectionError("refused"))
    assert is_transient(sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("gone")))
    assert not is_transient(PermanentError("PARSE_ERROR", "garbage"))
    assert not is_transient(ValueError("a bug"))


def _client(exc: Exception) -> TestClient[Litestar]:
    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise exc

    app = Litestar(
        [boom],
        exception_handlers={TtlpError: ttlp_error, Exception: unexpected_error},
        debug=False,
        logging_config=None,
    )
    return TestClient(app)


@pytest.mark.parametrize(
    ("exc", "status", "detail"),
    [
        (InputError("limit must be positive"), 400, "limit must be positive"),
        (NotFoundError("no session 42"), 404, "no session 42"),
        (DefinitionError("condition: unknown operator"), 422, "condition: unknown operator"),
        (InputError("teapot", status=418), 418, "teapot"),
    ],
)
def test_input_errors_answer_their_status_with_a_json_body(
    exc: Exception, status: int, detail: str
) -> None:
    with _client(exc) as client:
        response = client.get("/boom")
    assert response.status_code == status
    assert response.json() == {"status_code": status, "detail": detail}


@pytest.mark.parametrize(
    "exc",
    [
        TransientError("database away"),
        OutboundError("timeout"),
        redis.exceptions.ConnectionError("Connection refused"),
        sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("too many connections")),
    ],
)
def test_outages_answer_503_with_retry_after(exc: Exception) -> None:
    with _client(exc) as client:
        response = client.get("/boom")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "unavailable" in response.json()["detail"]


def test_anything_else_is_a_500_that_says_nothing_of_its_cause() -> None:
    with _client(RuntimeError("secret=hunter2 in a stack")) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "status_code": 500,
        "detail": "internal error (logged on the server)",
    }
    assert "hunter2" not in response.text
