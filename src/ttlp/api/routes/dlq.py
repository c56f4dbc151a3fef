"""The dead-letter view (DESIGN §7.3): ``GET /dlq``, STREAMER, newest first.

``ttlc:dlq`` holds what a stage gave up on: frames the normalizer could not read, events the
store or the forwarder could not handle (dlq.v1). Listing them over HTTP lets a streamer see
why something is missing without shell access; ``ttlp dlq retry|purge`` acts on them.

Scope: an account of scope ``*`` sees every entry; another sees the entries whose payload names
a room of one of its streamers (a frame too broken to say which room it came from is shown to
``*`` accounts only). Pages go backwards by entry id (``before`` = the previous page's
``nextBefore``); one request scans at most ``MAX_SCAN`` entries, so a scoped account's page can
come back short with a ``nextBefore`` to continue from.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from litestar import get
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter

from ttlp.aio import to_iso
from ttlp.api.accounts import ALL_STREAMS, Account, Role
from ttlp.api.auth import current_account, require
from ttlp.api.state import Api, Req, is_entry_id
from ttlp.bus.dlq import Letter, letter_of

DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 200
SCAN_BATCH: Final = 200
MAX_SCAN: Final = 5000
ENTRY_ID: Final = r"^[0-9]{1,20}-[0-9]{1,20}$"
STAGE: Final = r"^[a-z][a-z0-9_-]{0,31}$"


class LetterOut(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    id: str
    """The ``ttlc:dlq`` entry id (``ttlp dlq retry <id>`` takes it)."""
    time: str
    """When it was dead-lettered (from the entry id)."""
    stage: str
    """normalizer | store | forwarder | …: the stage that gave up."""
    reason: str
    error: str
    failed_at: str
    stream_id: str | None = None
    """The room the payload names, when it names one."""
    raw_type: str | None = None
    session_id: str | None = None
    source_stream: str | None = None
    source_id: str | None = None
    payload: Any = None
    """What failed, as it was: the bus entry, or the forwarder's ``{targetId, event}``."""
    payload_encoding: str = "json"
    """``base64``: the entry was not UTF-8 (shown decoded, its foreign bytes as U+FFFD)."""
    payload_truncated: bool = False
    """The payload is the first DLQ_MAX_PAYLOAD_BYTES of the entry (shown as text)."""


class LetterPage(msgspec.Struct, rename="camel"):
    items: list[LetterOut]
    next_before: str | None
    """Pass as ``before`` for older entries; null when there are none."""
    total: int
    """Entries in ``ttlc:dlq`` now (every stage and stream)."""


def letter_out(letter: Letter) -> LetterOut:
    fields = letter.fields
    return LetterOut(
        id=letter.id,
        time=to_iso(letter.time),
        stage=letter.stage,
        reason=letter.reason,
        error=letter.error,
        failed_at=letter.failed_at,
        stream_id=letter.stream_id,
        raw_type=fields.get("rawType"),
        session_id=fields.get("sessionId"),
        source_stream=fields.get("sourceStream"),
        source_id=fields.get("sourceId"),
        payload=letter.body,
        payload_encoding=fields.get("payloadEncoding", "json"),
        payload_truncated=letter.truncated,
    )


class _Scope:
    """Whether an account may see a letter: through the handle of the room it names."""

    def __init__(self, api: Api, account: Account) -> None:
        self.api = api
        self.account = account
        self.everything = ALL_STREAMS in account.scopes
        self._rooms: dict[str, bool] = {}

    async def allows(self, letter: Letter) -> bool:
        if self.everything:
            return True
        room = letter.stream_id
        if room is None:
            return False
        if room not in self._rooms:
            handle = await self.api.feed.handles.handle(room)
            self._rooms[room] = self.account.may_see(handle)
        return self._rooms[room]


@get(
    "/dlq",
    guards=[require(Role.STREAMER)],
    summary="Dead letters (ttlc:dlq), newest first, in the account's scope",
)
async def dead_letters(
    api: Api,
    request: Req,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    stage: Annotated[str | None, QueryParameter(pattern=STAGE)] = None,
    before: Annotated[str | None, QueryParameter(pattern=ENTRY_ID)] = None,
) -> LetterPage:
    if before is not None and not is_entry_id(before):
        raise ValidationException(f"before {before!r} is not a ttlc:dlq entry id")
    bus, stream = api.bus, api.keys.dlq
    scope = _Scope(api, current_account(request))
    items: list[LetterOut] = []
    end = f"({before}" if before else "+"
    scanned = 0
    next_before: str | None = None
    while len(items) < limit:
        entries = await bus.revrange(stream, end=end, count=SCAN_BATCH)
        for entry in entries:
            scanned += 1
            letter = letter_of(entry)
            if letter is None or (stage is not None and letter.stage != stage):
                continue
            if await scope.allows(letter):
                items.append(letter_out(letter))
                if len(items) == limit:
                    break
        if len(entries) < SCAN_BATCH:
            break  # the oldest entry was reached
        end = f"({entries[-1].id}"
        if len(items) < limit and scanned >= MAX_SCAN:
            next_before = entries[-1].id  # more may remain: continue from here
            break
    if len(items) == limit:
        # More may be older than the last one returned (whether they match is not known).
        next_before = items[-1].id
    return LetterPage(items, next_before, await bus.length(stream))


routes = [dead_letters]
