"""TikTok's webcast protobuf classes (TikTokLiveProto), by name, without importing TikTokLive.

``TikTokLive.proto`` re-exports these same modules but importing it pulls in the whole client;
the normalizer only needs the message classes and enums.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Final

MODULES: Final = (
    "TikTokLiveProto.v3.webcast.model.message",
    "TikTokLiveProto.v3.webcast.im",
    "TikTokLiveProto.v3.webcast.shared.message",
    "TikTokLiveProto.v3.webcast.model",
    "TikTokLiveProto.v3.webcast.model.base",
    "TikTokLiveProto.v3.webcast.model.base.user",
    "TikTokLiveProto.v3.webcast.model.base.emoji",
    "TikTokLiveProto.v3.webcast.model.data",
    "TikTokLiveProto.v3.webcast.model.message.common",
)


@functools.cache
def _namespace() -> dict[str, Any]:
    names: dict[str, Any] = {}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name, value in vars(module).items():
            if isinstance(value, type) and not name.startswith("_"):
                names.setdefault(name, value)
    return names


def lookup(name: str) -> Any | None:
    """The class (message or enum) called ``name``, or ``None``."""
    return _namespace().get(name)
