"""The web UI's static files: served at ``/`` and ``/ui/...`` without login, with the UI's
own strict Content-Security-Policy (the JSON API keeps its deny-all one)."""

from __future__ import annotations

import pytest

from tests.support.api import ApiHarness
from ttlp.api.routes.ui import UI_CSP

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ],
)
async def test_ui_files_are_served_without_login_under_the_ui_csp(
    api: ApiHarness, path: str, content_type: str
) -> None:
    response = await api.client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(content_type)
    csp = response.headers["content-security-policy"]
    assert csp == UI_CSP
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_ui_csp_does_not_leak_into_the_json_api(api: ApiHarness) -> None:
    response = await api.client.get("/health")
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


async def test_ui_paths_outside_the_ui_folder_are_not_served(api: ApiHarness) -> None:
    response = await api.client.get("/ui/..%2F..%2Fapi%2Fapp.py")
    assert response.status_code == 404
    assert b"create_app" not in response.content
