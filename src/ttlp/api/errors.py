"""The one mapping of errors to HTTP answers: every error body is JSON
``{"status_code": N, "detail": "..."}`` (plus ``extra`` for validation problems), never a
stack trace. ttlp's own errors carry their status (``ttlp.errors.InputError.status``);
Litestar's carry theirs; an outage answers 503 with Retry-After; anything else 500, logged.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, SerializationException, TooManyRequestsException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from loguru import logger

from ttlp.errors import InputError, TtlpError, is_transient

RETRY_AFTER_S: Final = 5
"""What a 503 asks clients to wait: about the consume loop's longest back-off step."""

log = logger.bind(role="api")


class Unprocessable(HTTPException):
    """422: well-formed JSON that cannot be accepted. Named in routes' ``raises=`` for the
    OpenAPI document; the routes raise ``ttlp.errors.UnprocessableError``, answered the same."""

    status_code = 422


class Conflict(HTTPException):
    """409: the request is well formed but the state refuses it (a taken name, the last owner).
    For ``raises=``; the routes raise ``ttlp.errors.InputError`` subclasses with this status."""

    status_code = 409


class Gone(HTTPException):
    """410: a one-time link that was used or expired. For ``raises=``, like ``Conflict``."""

    status_code = 410


def _json(status: int, detail: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        {"status_code": status, "detail": detail},
        status_code=status,
        headers=headers,
        media_type=MediaType.JSON,
    )


def too_many_requests(
    request: Request[Any, Any, Any], exc: TooManyRequestsException
) -> Response[Any]:
    headers = dict(exc.headers or {})
    reset = headers.get("RateLimit-Reset")
    headers.setdefault("Retry-After", str(max(1, int(reset))) if reset and reset.isdigit() else "1")
    return Response(
        {"status_code": 429, "detail": exc.detail or "too many requests: slow down"},
        status_code=429,
        headers=headers,
        media_type=MediaType.JSON,
    )


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    detail = exc.detail
    if isinstance(exc.__cause__, SerializationException):
        # Litestar passes msgspec's words on ("Input data was truncated"): say what they are about.
        detail = f"the request body is not valid JSON: {detail}"
    body: dict[str, Any] = {"status_code": exc.status_code, "detail": detail}
    if exc.extra:
        body["extra"] = _explain_extra(exc.extra)
    return Response(
        body, status_code=exc.status_code, headers=exc.headers, media_type=MediaType.JSON
    )


def _explain_extra(extra: Any) -> Any:
    """Validation problems as Litestar lists them, except an absent body, which it reports as
    the bare name of the missing argument (``'data'``)."""
    if not isinstance(extra, list):
        return extra
    return [
        {**item, "message": "a JSON body is required"}
        if isinstance(item, dict)
        and item.get("source") == "body"
        and item.get("message") == f"'{item.get('key')}'"
        else item
        for item in extra
    ]


def ttlp_error(request: Request[Any, Any, Any], exc: TtlpError) -> Response[Any]:
    """ttlp's own errors: an ``InputError`` answers its ``status`` with its message; a
    ``TransientError`` 503 (try again); any other is unexpected here (500, logged)."""
    if isinstance(exc, InputError):
        return _json(exc.status, str(exc))
    return unexpected_error(request, exc)


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """500 with no detail (the log has it), or 503 when a server ttlp needs is away."""
    if is_transient(exc):
        log.warning(
            "request failed: a server is unavailable",
            path=request.url.path,
            error=f"{type(exc).__name__}",
        )
        return _json(
            503,
            "a server ttlp needs (database or Redis) is unavailable: try again shortly",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    log.opt(exception=exc).error(
        "request failed", path=request.url.path, error=f"{type(exc).__name__}"
    )
    return Response(
        {"status_code": 500, "detail": "internal error (logged on the server)"},
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
        media_type=MediaType.JSON,
    )
