"""Which rate limit counts a request: the per-IP one is meant for people (logins, the API).

- The web UI's static files (``/`` and ``/ui/...``) count against no limit: a browser loading
  the UI spends a dozen requests at once, and they are files, not work.
- An overlay request whose token this process has seen valid lately counts against a limit of
  its token (``OVERLAY_RATE_LIMIT`` a minute): an OBS machine runs several overlays from one
  address and reconnects them all after a restart. Any other overlay request (no token, an
  unknown or revoked one) stays on the per-IP limit, so guessing tokens is limited as before.

Both are Litestar ``RateLimitConfig`` decisions (``check_throttle_handler``), in the same store
as the other limits (Redis when configured: shared by every api replica).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from litestar import Request
from litestar.middleware.rate_limit import RateLimitConfig

from ttlp.api.overlays.hub import OverlayHub

OVERLAY_RATE_LIMIT: Final = 300
"""Requests a minute per overlay token (pages, state, feed connections, sounds): five overlays
reconnecting every 2 s stay far below it."""
UI_FILES: Final = re.compile(r"^/(ui/.*)?$")

Req = Request[Any, Any, Any]


def overlay_key(hub: OverlayHub, request: Req) -> str | None:
    """The per-token key of an overlay request with a token known valid, else None."""
    path = request.scope["path"]
    if not path.startswith("/overlay/"):
        return None
    return hub.rate_key(path, request.query_params.get("token"))


def per_ip(hub: OverlayHub) -> Callable[[Req], bool]:
    """The per-IP limit's ``check_throttle_handler``: every request but the UI's files and
    overlay requests counted by their token."""

    def counted(request: Req) -> bool:
        return UI_FILES.match(request.scope["path"]) is None and overlay_key(hub, request) is None

    return counted


def per_token(hub: OverlayHub) -> RateLimitConfig:
    """The per-token limit of overlay requests (see the module docstring)."""
    return RateLimitConfig(
        rate_limit=("minute", OVERLAY_RATE_LIMIT),
        identifier_for_request=lambda request: overlay_key(hub, request) or "overlay-token:?",
        check_throttle_handler=lambda request: overlay_key(hub, request) is not None,
        store="rate_limit",
    )
