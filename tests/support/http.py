"""What every answer of the API must look like: the error shape and the security headers."""

from __future__ import annotations

from typing import Any

import httpx


def assert_json_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """An error as the API promises it: JSON ``{status_code, detail}``, no stack trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    body: dict[str, Any] = response.json()
    assert body["status_code"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert_security_headers(response)
    return body


def assert_security_headers(response: httpx.Response) -> None:
    """The headers every answer carries: a strict CSP, no sniffing, no framing, no referrer."""
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, response.headers
    assert "default-src 'none'" in csp
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("x-frame-options") == "DENY"
    assert response.headers.get("referrer-policy") == "no-referrer"
