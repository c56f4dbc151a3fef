"""Dead letters (DESIGN §7.3), STREAMER: ``GET /dlq`` (newest first), ``GET /dlq/{id}``,
``POST /dlq/retry`` and ``POST /dlq/purge`` (``{"ids": [...]}``).

``ttlc:dlq`` holds what a stage gave up on: frames the normalizer could not read, events the
store or the forwarder could not handle (dlq.v1). Listing them over HTTP lets a streamer see
why something is missing without shell access, and send them back or delete them, as
``ttlp dlq`` does: the same ``ttlp.bus.dlq`` operations, on either backend. An unknown stage is
a 400 naming the stages; an id that names no letter, or one out of the account's scope, a 404
naming it, and nothing is done.

Scope: an account of scope ``*`` sees every entry; another sees the entries whose payload names
a room of one of its streamers (a frame too broken to say which room it came from is shown to
``*`` accounts only). Pages go backwards by entry id (``before`` = the previous page's
``nextBefore``); one request scans at most ``MAX_SCAN`` entries, so a scoped account's page can
come back short with a ``nextBefore`` to continue from.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from litestar import get, post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK

from ttlp.aio import to_iso
from ttlp.api.accounts import ALL_STREAMS, Account, Role
from ttlp.api.auth import current_account, require
from ttlp.api.state import Api, Req, is_entry_id
from ttlp.bus import dlq
from ttlp.bus.dlq import Letter, letter_of
from ttlp.bus.keys import STAGES
from ttlp.errors import NotFoundError

DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 200
SCAN_BATCH: Final = 200
MAX_SCAN: Final = 5000
ENTRY_ID: Final = r"^[0-9]{1,20}-[0-9]{1,20}$"
STAGE: Final = r"^[a-z][a-z0-9_-]{0,31}$"
MAX_IDS: Final = MAX_PAGE
"""Letters one retry or purge may name (the UI sends what it shows, a page at a time)."""


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


class LetterIds(msgspec.Struct, forbid_unknown_fields=True):
    """Which letters to retry or purge: their ``ttlc:dlq`` entry ids."""

    ids: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=ENTRY_ID)]],
        msgspec.Meta(min_length=1, max_length=MAX_IDS),
    ]


class Skipped(msgspec.Struct):
    id: str
    reason: str
    """Why the letter cannot be retried (it stays)."""


class RetryOut(msgspec.Struct):
    retried: list[str]
    """Sent back where they failed (and gone from ``ttlc:dlq``)."""
    queued: list[str]
    """Going back once the process that runs the pipeline takes them (the embedded default,
    from a process that does not run it; the api that runs beside the pipeline never queues)."""
    skipped: list[Skipped]


class PurgeOut(msgspec.Struct):
    purged: list[str]


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

    async def check(self, letters: list[Letter]) -> None:
        """404 naming the letters the account may not see (as if they did not exist)."""
        hidden = [letter.id for letter in letters if not await self.allows(letter)]
        if hidden:
            raise NotFoundException(f"no dead letter {', '.join(hidden)}")

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
    if stage is not None and stage not in STAGES:
        raise ValidationException(
            f"unknown stage {stage!r}",
            extra=[{"key": "stage", "source": "query", "message": f"one of {', '.join(STAGES)}"}],
        )
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


async def _chosen(api: Api, request: Req, ids: list[str]) -> list[Letter]:
    """The letters ``ids`` name, each existing and in the account's scope, else a 404."""
    if any(not is_entry_id(i) for i in ids):
        raise ValidationException("ids must be ttlc:dlq entry ids")
    try:
        chosen = await dlq.find(api.bus, api.keys, ids)
    except NotFoundError as exc:
        raise NotFoundException(str(exc)) from None
    await _Scope(api, current_account(request)).check(chosen)
    return chosen


@get(
    "/dlq/{entry_id:str}",
    guards=[require(Role.STREAMER)],
    raises=[NotFoundException],
    summary="One dead letter, in full",
)
async def dead_letter(
    api: Api, request: Req, entry_id: Annotated[str, PathParameter(pattern=ENTRY_ID)]
) -> LetterOut:
    (letter,) = await _chosen(api, request, [entry_id])
    return letter_out(letter)


@post(
    "/dlq/retry",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_200_OK,
    raises=[NotFoundException],
    summary="Send dead letters back where they failed (forwarder: delivered again)",
)
async def retry_letters(api: Api, request: Req, data: JSONBody[LetterIds]) -> RetryOut:
    from ttlp.forward.store import ForwardStore

    chosen = await _chosen(api, request, data.ids)
    result = await dlq.retry(api.bus, api.keys, ForwardStore(api.engine).reset, chosen)
    return RetryOut(
        retried=result.retried,
        queued=result.queued,
        skipped=[Skipped(entry_id, why) for entry_id, why in result.skipped],
    )


@post(
    "/dlq/purge",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_200_OK,
    raises=[NotFoundException],
    summary="Delete dead letters",
)
async def purge_letters(api: Api, request: Req, data: JSONBody[LetterIds]) -> PurgeOut:
    chosen = await _chosen(api, request, data.ids)
    await dlq.purge(api.bus, api.keys, chosen)
    return PurgeOut([letter.id for letter in chosen])


routes = [dead_letters, dead_letter, retry_letters, purge_letters]
