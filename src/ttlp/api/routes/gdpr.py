"""GDPR erasure (DESIGN §6), STREAMER of scope ``*`` only: ``POST /gdpr/erasures`` erases one
TikTok user (``{"userId"}`` or ``{"uniqueId"}``, ``"dryRun": true`` to count only),
``GET /gdpr/erasures`` lists the audit rows.

A TikTok user's data spans every streamer they watched, so only an account that sees every
streamer may erase it (any other account: 403). The work is ``ttlp.db.erasure.erase_user``, as
``ttlp gdpr erase`` does it: one transaction, an audit row naming the account and never the
user; the store refuses the user's events afterwards. An unknown user is a 404, a handle
several users have had a 409 (erase by id), a body naming neither or both a 400.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from litestar import get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from ttlp.api.accounts import ALL_STREAMS, Role
from ttlp.api.auth import current_account, ensure_owned_scope, require
from ttlp.api.errors import Conflict
from ttlp.api.state import Api, Req, iso
from ttlp.db.erasure import HANDLE_PATTERN, USER_ID_PATTERN, Erasure, erase_user, list_erasures
from ttlp.errors import InputError
from ttlp.tiktok.mentions import frame_names_user

DEFAULT_PAGE: Final = 100
MAX_PAGE: Final = 1000


class ErasureIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """Whom to erase: exactly one of ``userId`` and ``uniqueId``."""

    user_id: Annotated[str, msgspec.Meta(pattern=USER_ID_PATTERN)] | None = None
    """The TikTok user id."""
    unique_id: Annotated[str, msgspec.Meta(pattern=HANDLE_PATTERN)] | None = None
    """The TikTok handle, with or without ``@`` (case does not matter)."""
    dry_run: bool = False
    """Count what would be erased; erase nothing."""


class ErasureOut(msgspec.Struct, rename="camel", kw_only=True):
    id: int | None
    """The audit row (null for a dry run)."""
    erased_at: str | None
    rows: dict[str, int]
    """Rows per table: events, raw_frames, forward_deliveries, actions_log, user_notes, users."""
    total_rows: int
    requested_by: str
    """The account that asked (``cli`` for ``ttlp gdpr erase``)."""
    subject_hash: str
    """The user as the audit keeps them: a salted hash (never the id, handle or name)."""
    dry_run: bool


def erasure_out(erasure: Erasure) -> ErasureOut:
    return ErasureOut(
        id=erasure.id,
        erased_at=iso(erasure.erased_at),
        rows=erasure.rows,
        total_rows=erasure.total_rows,
        requested_by=erasure.requested_by,
        subject_hash=erasure.subject_hash,
        dry_run=erasure.dry_run,
    )


def require_every_streamer(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    """A guard (after ``require(Role.STREAMER)``): the account's scope is ``*``."""
    ensure_owned_scope(current_account(connection), ALL_STREAMS, "erasing a TikTok user's data")


GUARDS: Final = [require(Role.STREAMER), require_every_streamer]


@post(
    "/gdpr/erasures",
    guards=GUARDS,
    status_code=HTTP_200_OK,
    raises=[NotFoundException, Conflict],  # an unknown user; a handle several users have had
    summary="Erase a TikTok user: events, raw frames, notes, user row, actions (STREAMER, *)",
    description="Exactly one of userId and uniqueId. Everything stored about the user goes in "
    "one transaction, with an audit row (who asked, when, rows per table; the user only as a "
    "salted hash); their events are refused from then on, live ones included. dryRun: the "
    "counts, nothing erased.",
)
async def erase(api: Api, request: Req, data: JSONBody[ErasureIn]) -> ErasureOut:
    if (data.user_id is None) == (data.unique_id is None):
        raise InputError("name the TikTok user by exactly one of userId and uniqueId")
    erasure = await erase_user(
        api.engine,
        frame_names_user,
        user_id=data.user_id,
        handle=data.unique_id,
        requested_by=current_account(request).username,
        pseudonym_salt=api.settings.retention.pseudonym_salt,
        dry_run=data.dry_run,
    )
    return erasure_out(erasure)


@get("/gdpr/erasures", guards=GUARDS, summary="GDPR erasures' audit rows, newest first")
async def erasures(
    api: Api, limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE
) -> list[ErasureOut]:
    return [erasure_out(e) for e in await list_erasures(api.engine, limit)]


routes = [erase, erasures]
