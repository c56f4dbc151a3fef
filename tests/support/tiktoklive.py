"""Importing TikTokLive in tests without letting it rewire logging.

Importing TikTokLive gives its logger a stderr handler and stops it propagating to the root
logger, where ttlp's logging (and tests/unit/test_log.py) expects it; it also warns about its
websockets import. ``importing_tiktoklive()`` wraps the imports and undoes both.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def importing_tiktoklive() -> Iterator[None]:
    tiktok_logger = logging.getLogger("TikTokLive")
    handlers, propagate, level = (
        list(tiktok_logger.handlers),
        tiktok_logger.propagate,
        tiktok_logger.level,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TikTokLive's websockets import
            yield
    finally:
        tiktok_logger.handlers[:], tiktok_logger.propagate = handlers, propagate
        tiktok_logger.setLevel(level)
