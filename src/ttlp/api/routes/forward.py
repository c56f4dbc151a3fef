"""Forward targets: CRUD with per-target delivery counts (DESIGN §8). STREAMER only.

A target's scope is one streamer handle within the account's scope, or ``*`` (every streamer)
for accounts of scope ``*``. The URL is checked by the outbound rules when a target is written,
its host resolved as a delivery would (422 naming the reason); its addresses are checked again
at every delivery. The secret is
write-only: when none is given one is generated, and it is returned once, by the create call.

What the Forwarding page needs besides: pause and resume (``enabled``; a paused target queues
nothing new and holds its pending deliveries, ``ttlp.forward.dispatcher``), a test event sent
at once through the real outbound path and answered with the receiver's status
(``ttlp.forward.probe``: the api sends this one request itself, nothing is stored or queued),
a target's deliveries newest first, and a finished delivery queued again (``redeliver``). Every
one of them is scoped as the target is: a target outside the account's scope is a 403.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from litestar import delete, get, post, put
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ttlp.api.accounts import ALL_STREAMS, Account, Role
from ttlp.api.auth import current_account, ensure_owned_scope, normalize_scope, require
from ttlp.api.errors import Conflict, Unprocessable
from ttlp.api.state import Api, Req, iso
from ttlp.contracts.events import EVENT_CLASSES, decode_event_head
from ttlp.errors import InputError, UnprocessableError
from ttlp.forward.outbound import Outbound, OutboundRefused
from ttlp.forward.probe import DEFAULT_TYPE, send_probe
from ttlp.forward.signing import new_secret
from ttlp.forward.store import (
    PENDING,
    STATUSES,
    DeliveryRow,
    ForwardStore,
    TargetCounts,
    target_from_row,
)

SCOPE_PATTERN: Final = r"^(\*|@?[A-Za-z0-9_.]{1,64})$"
EVENT_TYPE_PATTERN: Final = f"^({'|'.join(sorted(EVENT_CLASSES))})$"
MAX_URL_CHARS: Final = 2048
MIN_SECRET_CHARS: Final = 16


DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 200
STATUS_PATTERN: Final = f"^({'|'.join(STATUSES)})$"


MAX_ID = 2**53  # a row id; larger ones overflow SQLite and JSON numbers alike
TargetId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="a forward target id")]
DeliveryId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="a delivery id")]


class TargetIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_URL_CHARS)]
    """http(s) URL the events are POSTed to."""
    scope: Annotated[str, msgspec.Meta(pattern=SCOPE_PATTERN)]
    """A streamer handle (``luna.beats`` or ``@luna.beats``), or ``*`` for every streamer."""
    event_types: list[Annotated[str, msgspec.Meta(pattern=EVENT_TYPE_PATTERN)]] = []
    """Event types to forward; empty = every type."""
    secret: Annotated[str, msgspec.Meta(min_length=MIN_SECRET_CHARS, max_length=256)] | None = None
    """HMAC key of ``X-TTLP-Signature``; generated when absent (on a replace: kept)."""
    enabled: bool = True
    """False: paused (nothing new is queued for it, its pending deliveries wait)."""
    streak_end_only: bool = False
    """Forward a gift streak once, its end frame with the streak's total (as analytics counts
    it, and as rules with ``streakEndOnly`` act); false: every frame of it. False when absent:
    what targets did before this switch existed (the web UI proposes true for new ones)."""


class Counts(msgspec.Struct, rename="camel"):
    delivered: int
    retried: int
    dead_lettered: int
    pending: int


class TargetOut(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    name: str
    url: str
    scope: str
    event_types: list[str]
    enabled: bool
    streak_end_only: bool
    created_by: str
    created_at: str | None
    updated_at: str | None
    counts: Counts


class TargetCreated(TargetOut, kw_only=True):
    secret: str
    """Shown once: store it with the receiver to verify signatures."""


class ProbeIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    event_type: Annotated[str, msgspec.Meta(pattern=EVENT_TYPE_PATTERN)] | None = None
    """The test event's type; default: the target's first event type, or CHAT."""


class ProbeOut(msgspec.Struct, rename="camel", kw_only=True):
    ok: bool
    """The receiver answered 2xx."""
    status_code: int | None
    """The receiver's HTTP status; null when there was no answer (see ``error``)."""
    latency_ms: float
    """From sending to the answer (or the failure), in milliseconds."""
    error: str | None
    """Why it did not succeed: ``HTTP 500``, a timeout, a refused or unreachable destination."""
    event_id: str
    event_type: str
    response_excerpt: str | None
    """The start of the receiver's answer (text)."""


class DeliveryOut(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    status: str
    """pending | delivered | dead."""
    attempts: int
    """Attempts made (reset by a redeliver)."""
    last_error: str | None
    next_attempt_at: str | None
    """When a pending delivery is tried next (while one is being sent: when its lease ends);
    null once delivered or dead."""
    event_id: str
    event_type: str | None
    created_at: str | None
    updated_at: str | None


class DeliveryPage(msgspec.Struct, rename="camel"):
    items: list[DeliveryOut]
    next_before: int | None
    """Pass as ``before`` for older deliveries; null when there are none."""


# -- helpers -------------------------------------------------------------------------------------
def _store(api: Api) -> ForwardStore:
    return ForwardStore(api.engine)


def ensure_target_scope(account: Account, scope: str) -> None:
    ensure_owned_scope(account, scope, "a target")


async def _values(api: Api, data: TargetIn) -> dict[str, Any]:
    try:
        await api.outbound.check_destination(data.url)
    except OutboundRefused as exc:
        raise UnprocessableError(f"url: {exc.reason}") from None
    return {
        "name": data.name,
        "url": data.url,
        "scope": normalize_scope(data.scope),
        "event_types": sorted(set(data.event_types)),
        "enabled": data.enabled,
        "streak_end_only": data.streak_end_only,
    }


def target_out(row: Any, counts: TargetCounts | None, cls: type[TargetOut] = TargetOut) -> Any:
    c = counts or TargetCounts()
    extra = {"secret": row.secret} if cls is TargetCreated else {}
    return cls(
        id=int(row.id),
        name=row.name,
        url=row.url,
        scope=row.scope,
        event_types=list(row.event_types or []),
        enabled=bool(row.enabled),
        streak_end_only=bool(row.streak_end_only),
        created_by=row.created_by,
        created_at=iso(row.created_at),
        updated_at=iso(row.updated_at),
        counts=Counts(c.delivered, c.retried, c.dead, c.pending),
        **extra,
    )


async def target_in_scope(api: Api, request: Req, target_id: int) -> Any:
    row = await _store(api).target_row(target_id)
    if row is None:
        raise NotFoundException(f"no forward target {target_id}")
    ensure_target_scope(current_account(request), row.scope)
    return row


def delivery_out(row: DeliveryRow) -> DeliveryOut:
    try:
        event_type: str | None = decode_event_head(row.event_data).event_type
    except (msgspec.DecodeError, msgspec.ValidationError):
        event_type = None
    return DeliveryOut(
        id=row.id,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at=iso(row.next_attempt_at) if row.status == PENDING else None,
        event_id=row.event_id,
        event_type=event_type,
        created_at=iso(row.created_at),
        updated_at=iso(row.updated_at),
    )


async def _with_counts(api: Api, row: Any) -> TargetOut:
    counts = await _store(api).counts([int(row.id)])
    out: TargetOut = target_out(row, counts.get(int(row.id)))
    return out


async def _set_enabled(api: Api, request: Req, target_id: int, enabled: bool) -> TargetOut:
    await target_in_scope(api, request, target_id)
    row = await _store(api).set_enabled(target_id, enabled)
    if row is None:
        raise NotFoundException(f"no forward target {target_id}")
    return await _with_counts(api, row)


# -- routes --------------------------------------------------------------------------------------
@get(
    "/forward/targets",
    guards=[require(Role.STREAMER)],
    summary="Forward targets in the account's scope, with their delivery counts",
)
async def list_targets(api: Api, request: Req) -> list[TargetOut]:
    account = current_account(request)
    scopes = None if ALL_STREAMS in account.scopes else list(account.scopes)
    store = _store(api)
    rows = await store.target_rows(scopes)
    counts = await store.counts([int(r.id) for r in rows]) if rows else {}
    return [target_out(r, counts.get(int(r.id))) for r in rows]


@post(
    "/forward/targets",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_201_CREATED,
    raises=[Unprocessable],
    summary="Create a forward target (the response carries its secret, once)",
)
async def create_target(api: Api, request: Req, data: JSONBody[TargetIn]) -> TargetCreated:
    account = current_account(request)
    ensure_target_scope(account, normalize_scope(data.scope))
    values = await _values(api, data)
    values["secret"] = data.secret or new_secret()
    values["created_by"] = account.username
    row = await _store(api).create_target(values)
    out: TargetCreated = target_out(row, None, TargetCreated)
    return out


@get(
    "/forward/targets/{target_id:int}",
    guards=[require(Role.STREAMER)],
    summary="One forward target with its counts (delivered, retried, dead-lettered, pending)",
)
async def get_target(api: Api, request: Req, target_id: TargetId) -> TargetOut:
    row = await target_in_scope(api, request, target_id)
    counts = await _store(api).counts([target_id])
    out: TargetOut = target_out(row, counts.get(target_id))
    return out


@put(
    "/forward/targets/{target_id:int}",
    guards=[require(Role.STREAMER)],
    raises=[Unprocessable],
    summary="Replace a forward target (without secret: the secret is kept)",
)
async def replace_target(
    api: Api, request: Req, target_id: TargetId, data: JSONBody[TargetIn]
) -> TargetOut:
    await target_in_scope(api, request, target_id)
    ensure_target_scope(current_account(request), normalize_scope(data.scope))
    values = await _values(api, data)
    if data.secret is not None:
        values["secret"] = data.secret
    store = _store(api)
    row = await store.update_target(target_id, values)
    if row is None:
        raise NotFoundException(f"no forward target {target_id}")
    counts = await store.counts([target_id])
    out: TargetOut = target_out(row, counts.get(target_id))
    return out


@delete(
    "/forward/targets/{target_id:int}",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_204_NO_CONTENT,
    summary="Delete a forward target and its queued deliveries",
)
async def delete_target(api: Api, request: Req, target_id: TargetId) -> None:
    await target_in_scope(api, request, target_id)
    await _store(api).delete_target(target_id)


@post(
    "/forward/targets/{target_id:int}/pause",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_200_OK,
    summary="Pause a target: nothing new is queued for it, its pending deliveries wait",
    description="Takes effect within 2 s (the forward role re-reads its targets); requests "
    "already in flight finish. Pausing a paused target changes nothing.",
)
async def pause_target(api: Api, request: Req, target_id: TargetId) -> TargetOut:
    return await _set_enabled(api, request, target_id, False)


@post(
    "/forward/targets/{target_id:int}/resume",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_200_OK,
    summary="Resume a paused target: its held deliveries go out, new events are queued again",
    description="Events that arrived while it was paused are not forwarded.",
)
async def resume_target(api: Api, request: Req, target_id: TargetId) -> TargetOut:
    return await _set_enabled(api, request, target_id, True)


@post(
    "/forward/targets/{target_id:int}/test",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_200_OK,
    summary="Send a test event to a target now and answer with the receiver's status",
    description='A made-up UnifiedEvent v1 (streamId "0", the nil sessionId, user '
    "ttlp.test, header X-TTLP-Test: 1), signed as deliveries are, through the outbound rules; "
    "never stored, queued or retried. Sent to a paused target too. The answer says what the "
    "receiver did (ok, statusCode, latencyMs, error) and is 200 whatever it did.",
)
async def send_test_event(
    api: Api, request: Req, target_id: TargetId, data: JSONBody[ProbeIn | None] = None
) -> ProbeOut:
    row = await target_in_scope(api, request, target_id)
    target = target_from_row(row)
    event_type = data.event_type if data is not None else None
    if event_type is None:
        event_type = min(target.event_types) if target.event_types else DEFAULT_TYPE
    # Its own connection pool, closed after: the api's Outbound only checks URLs.
    outbound = Outbound(api.settings.outbound)
    try:
        result = await send_probe(outbound, target, event_type)
    finally:
        await outbound.aclose()
    return ProbeOut(
        ok=result.ok,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        error=result.error,
        event_id=result.event_id,
        event_type=result.event_type,
        response_excerpt=result.response_excerpt,
    )


@get(
    "/forward/targets/{target_id:int}/deliveries",
    guards=[require(Role.STREAMER)],
    summary="A target's deliveries, newest first (status, attempts, last error, next retry)",
)
async def list_deliveries(
    api: Api,
    request: Req,
    target_id: TargetId,
    status: Annotated[
        str | None,
        QueryParameter(pattern=STATUS_PATTERN, description="pending | delivered | dead"),
    ] = None,
    before: Annotated[
        int | None,
        QueryParameter(ge=1, le=MAX_ID, description="the nextBefore of the previous page"),
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> DeliveryPage:
    await target_in_scope(api, request, target_id)
    rows = await _store(api).deliveries(target_id, status=status, before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(
        items=[delivery_out(r) for r in rows], next_before=rows[-1].id if more else None
    )


@post(
    "/forward/targets/{target_id:int}/deliveries/{delivery_id:int}/redeliver",
    guards=[require(Role.STREAMER)],
    status_code=HTTP_200_OK,
    raises=[Conflict],
    summary="Queue a dead (or delivered) delivery again, attempts reset (pending: 409)",
    description="It goes out within a second or two, unless the target is paused (then when "
    "it is resumed). A dead-lettered delivery's entry stays in ttlc:dlq: retrying that one "
    "later sends the event once more (receivers deduplicate by X-TTLP-Event-Id).",
)
async def redeliver(
    api: Api, request: Req, target_id: TargetId, delivery_id: DeliveryId
) -> DeliveryOut:
    await target_in_scope(api, request, target_id)
    store = _store(api)
    outcome = await store.redeliver(target_id, delivery_id)
    if outcome == "missing":
        raise NotFoundException(f"no delivery {delivery_id} of forward target {target_id}")
    if outcome == "pending":
        raise InputError(
            f"delivery {delivery_id} is pending already: it is queued and needs no redeliver",
            status=409,
        )
    row = await store.delivery(target_id, delivery_id)
    if row is None:  # the target was deleted in between
        raise NotFoundException(f"no delivery {delivery_id} of forward target {target_id}")
    return delivery_out(row)


routes = [
    list_targets,
    create_target,
    get_target,
    replace_target,
    delete_target,
    pause_target,
    resume_target,
    send_test_event,
    list_deliveries,
    redeliver,
]
