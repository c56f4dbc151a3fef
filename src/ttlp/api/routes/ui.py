"""The web UI (DESIGN §7.5): ``/`` is the single page, ``/ui/...`` its static assets.

Plain ES modules and CSS from ``ttlp/api/ui``, no build step. These paths need no login (the
page logs in itself) and get a Content-Security-Policy of their own, strict but wider than the
API's deny-all one: scripts, styles and connections from this origin only, images also from
TikTok's CDN hosts (avatars, gift and emote pictures), never inline script or style.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from litestar import Response, get
from litestar.datastructures import CacheControlHeader
from litestar.response import File
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

UI_DIR: Final = Path(__file__).resolve().parent.parent / "ui"
UI_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' https://*.tiktokcdn.com https://*.tiktokcdn-us.com https://*.ttwstatic.com "
    "data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# Revalidate every time: the assets are small and an upgrade must not leave a stale mix.
NO_CACHE: Final = CacheControlHeader(no_cache=True)


async def ui_headers(response: Response[object]) -> Response[object]:
    """The UI's CSP (the app's ``security_headers`` only fills in a header that is absent)."""
    response.headers["content-security-policy"] = UI_CSP
    return response


@get(
    "/",
    include_in_schema=False,
    exclude_from_auth=True,
    after_request=ui_headers,
    cache_control=NO_CACHE,
)
async def index() -> File:
    return File(UI_DIR / "index.html", content_disposition_type="inline", media_type="text/html")


assets = create_static_files_router(
    path="/ui",
    directories=[UI_DIR],
    name="ui",
    after_request=ui_headers,
    cache_control=NO_CACHE,
    opt={"exclude_from_auth": True},
)

routes: list[ControllerRouterHandler] = [index, assets]
