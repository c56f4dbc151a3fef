"""Forward targets: CRUD with per-target delivery counts (DESIGN §8). STREAMER only.

A target's scope is one streamer handle within the account's scope, or ``*`` (every streamer)
for accounts of scope ``*``. The URL is checked by the outbound rules when a target is written,
its host resolved as a delivery would (422 naming the reason); its addresses are checked again
at every delivery. The secret is
write-only: when none is given one is generated, and it is returned once, by the create call.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from litestar import delete, get, post, put
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, PathParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from ttlp.api.accounts import ALL_STREAMS, Account, Role
from ttlp.api.auth import current_account, ensure_owned_scope, normalize_scope, require
from ttlp.api.errors import Unprocessable
from ttlp.api.state import Api, Req, iso
from ttlp.contracts.events import EVENT_CLASSES
from ttlp.errors import UnprocessableError
from ttlp.forward.outbound import OutboundRefused
from ttlp.forward.signing import new_secret
from ttlp.forward.store import ForwardStore, TargetCounts

SCOPE_PATTERN: Final = r"^(\*|@?[A-Za-z0-9_.]{1,64})$"
EVENT_TYPE_PATTERN: Final = f"^({'|'.join(sorted(EVENT_CLASSES))})$"
MAX_URL_CHARS: Final = 2048
MIN_SECRET_CHARS: Final = 16


MAX_ID = 2**53  # a row id; larger ones overflow SQLite and JSON numbers alike
TargetId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="a forward target id")]


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
    created_by: str
    created_at: str | None
    updated_at: str | None
    counts: Counts


class TargetCreated(TargetOut, kw_only=True):
    secret: str
    """Shown once: store it with the receiver to verify signatures."""


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


routes = [list_targets, create_target, get_target, replace_target, delete_target]
