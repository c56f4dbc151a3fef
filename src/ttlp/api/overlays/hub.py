"""The overlay tokens as one api process sees them: who presents which token, and what its open
overlay feeds are told.

- ``resolve`` checks a ``?token=`` against the database at every request (401 unknown, 403
  revoked), so a revoked token opens nothing new on any replica, and notes when the token was
  last used (at most once a minute per token and process).
- Open feeds are watched per token (``watch``): a change made on this replica is told to them
  at once (``changed``); one made on another replica is found by ``run``, which reads the state
  of every watched token in one query every ``POLL_S`` (so at most one query per token per
  ``POLL_S`` per process, however many overlays are open). A newer options version sends
  ``options``, a newer skip counter ``skip``, a revoked (or vanished) token ``revoked``, after
  which the feed ends.
- The per-IP rate limit is for people; an OBS machine runs several overlays and reconnects them
  all after a restart. ``rate_key`` names the token of a request whose token this process has
  seen valid lately, which then counts against a per-token limit instead; any other request
  (no token, an unknown one) stays on the per-IP limit, so guessing tokens is limited as before.
  It is synchronous on purpose: the rate limiter asks before the request reaches a handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    TooManyRequestsException,
)
from loguru import logger

from ttlp.aio import sleep_or_stop
from ttlp.api.feed import DroppingSubscriber, notice
from ttlp.api.overlays.store import OverlayStore, OverlayToken, TokenState

POLL_S: Final = 2.0
"""How often open overlays' tokens are read again (revocation reaches them within this)."""
LAST_USED_EVERY_S: Final = 60.0
KNOWN_FOR_S: Final = 600.0
"""How long a token seen valid keeps its own rate limit without being presented again."""
MAX_KNOWN: Final = 10_000
MAX_FEEDS_PER_TOKEN: Final = 20
"""Open feeds of one token on one api process (a browser source per overlay, a few previews)."""
FEED_LIMIT_RETRY_S: Final = "5"
TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")
"""What ``store.new_token`` makes: 32 random bytes, URL-safe base64 without padding."""
OVERLAY_PREFIX: Final = "/overlay/"

log = logger.bind(role="api")


@dataclass
class _Watch:
    """One open feed's view of its token: what it was last told."""

    options_version: int
    skip_seq: int


class OverlayHub:
    def __init__(self, store: OverlayStore, *, poll_s: float = POLL_S) -> None:
        self.store = store
        self.poll_s = poll_s
        self._watches: dict[int, dict[DroppingSubscriber, _Watch]] = {}
        self._known: dict[str, tuple[int, float]] = {}
        """token → (its id, valid for the rate limit until: monotonic)."""
        self._used: dict[int, float] = {}
        """token id → when ``last_used_at`` was last written (monotonic)."""
        self._feeds: Counter[int] = Counter()
        self.polls = 0
        """Queries ``run`` has made (for tests and figures)."""

    # -- tokens presented ----------------------------------------------------------------------
    async def resolve(self, token: str | None) -> OverlayToken:
        """The active token ``token`` names: 401 without one or for an unknown one, 403 once
        revoked. No account's login stands in for it."""
        if not token:
            raise NotAuthorizedException("an overlay needs its token: ?token=…")
        if not TOKEN_RE.match(token):
            raise NotAuthorizedException("this is not an overlay token")
        row = await self.store.token_by_value(token)
        if row is None:
            self._known.pop(token, None)
            raise NotAuthorizedException("unknown overlay token")
        if row.revoked_at is not None:
            self._known.pop(token, None)
            raise PermissionDeniedException("this overlay token was revoked")
        now = time.monotonic()
        if len(self._known) >= MAX_KNOWN and token not in self._known:
            self._known.clear()
        self._known[token] = (row.id, now + KNOWN_FOR_S)
        if now - self._used.get(row.id, -LAST_USED_EVERY_S) >= LAST_USED_EVERY_S:
            self._used[row.id] = now
            if len(self._used) > MAX_KNOWN:
                self._used.clear()
            await self.store.touch(row.id, datetime.now(UTC))
        return row

    def rate_key(self, path: str, token: str | None) -> str | None:
        """The per-token rate-limit key of a request to an overlay path whose token this
        process has seen valid lately; None for any other request (the per-IP limit's)."""
        if not token or not path.startswith(OVERLAY_PREFIX):
            return None
        known = self._known.get(token)
        if known is None or known[1] < time.monotonic():
            return None
        return f"overlay-token:{known[0]}"

    # -- open feeds ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def feed_slot(self, token_id: int) -> Iterator[None]:
        """One of the token's open feeds on this process (``MAX_FEEDS_PER_TOKEN``), or 429."""
        if self._feeds[token_id] >= MAX_FEEDS_PER_TOKEN:
            raise TooManyRequestsException(
                f"this overlay token already has {MAX_FEEDS_PER_TOKEN} open feeds here",
                headers={"Retry-After": FEED_LIMIT_RETRY_S},
            )
        self._feeds[token_id] += 1
        try:
            yield
        finally:
            self._feeds[token_id] -= 1
            if self._feeds[token_id] <= 0:
                del self._feeds[token_id]

    def watch(self, token: OverlayToken, subscriber: DroppingSubscriber) -> None:
        """Tell ``subscriber`` (an open feed of ``token``, as read when it opened) what
        changes from now on; until the task that sends its events ends (or ``unwatch``)."""
        self._watches.setdefault(token.id, {})[subscriber] = _Watch(
            token.options_version, token.skip_seq
        )
        owner = asyncio.current_task()
        if owner is not None:
            owner.add_done_callback(lambda _task: self.unwatch(token.id, subscriber))

    def unwatch(self, token_id: int, subscriber: DroppingSubscriber) -> None:
        watches = self._watches.get(token_id)
        if watches is not None:
            watches.pop(subscriber, None)
            if not watches:
                del self._watches[token_id]

    def watched(self) -> int:
        """Open feeds being watched (all tokens)."""
        return sum(len(w) for w in self._watches.values())

    def changed(self, token: OverlayToken) -> None:
        """``token`` was changed on this process (revoked, options saved, skip): tell its open
        feeds now rather than at the next poll."""
        revoked = token.revoked_at is not None
        if revoked:
            self._forget(token.id)
        self._tell(token.id, TokenState(revoked, token.options_version, token.skip_seq))

    def _forget(self, token_id: int) -> None:
        for value, (known_id, _) in list(self._known.items()):
            if known_id == token_id:
                del self._known[value]

    def _tell(self, token_id: int, state: TokenState | None) -> None:
        """Compare each open feed of ``token_id`` with ``state`` (None: the token is gone)."""
        watches = self._watches.get(token_id)
        if not watches:
            return
        if state is None or state.revoked:
            ended = notice("revoked")
            for subscriber in watches:
                subscriber.put_nowait(ended)  # a full backlog: the feed is dropped, ends too
            del self._watches[token_id]
            self._forget(token_id)
            return
        for subscriber, seen in watches.items():
            if state.options_version > seen.options_version:
                subscriber.put_nowait(notice("options", {"optionsVersion": state.options_version}))
                seen.options_version = state.options_version
            if state.skip_seq > seen.skip_seq:
                subscriber.put_nowait(notice("skip"))
                seen.skip_seq = state.skip_seq

    async def run(self, stop: asyncio.Event) -> None:
        """Read the watched tokens every ``poll_s`` until ``stop`` (changes made on other api
        replicas); a database away is logged and tried again at the next poll."""
        while not stop.is_set():
            await sleep_or_stop(stop, self.poll_s)
            if stop.is_set() or not self._watches:
                continue
            ids = list(self._watches)
            try:
                states = await self.store.states(ids)
            except Exception as exc:
                log.warning("could not read overlay tokens; retrying", error=type(exc).__name__)
                continue
            self.polls += 1
            for token_id in ids:
                self._tell(token_id, states.get(token_id))
