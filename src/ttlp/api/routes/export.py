"""``GET /sessions/{id}/export``: one session as a download (``ttlp.db.export``).

``format=ndjson`` (UnifiedEvent v1 per line), ``csv`` (flat columns a spreadsheet opens),
``parquet`` (where ``pyarrow`` is installed; else 501) or ``raw`` (the archived raw.v1 frames,
what ``ttlp import`` reads). The body streams page by page, so a session of any size costs the
api one page of memory. Scope as for the session's history; VIEWER accounts are refused: the
export carries handles and chat text, which they are not shown elsewhere either.
"""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import get
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from ttlp.api.accounts import Role
from ttlp.api.auth import require
from ttlp.api.routes.history import session_in_scope
from ttlp.api.state import Api, Req
from ttlp.db import export as ex

HTTP_501_NOT_IMPLEMENTED = 501


class NotAvailable(HTTPException):
    """501: a format this server cannot write (Parquet without ``pyarrow``)."""

    status_code = HTTP_501_NOT_IMPLEMENTED


Format = Annotated[
    Literal["ndjson", "csv", "parquet", "raw"],
    QueryParameter(
        description="ndjson (UnifiedEvent v1 per line), csv, parquet, or raw (raw.v1 frames)"
    ),
]


@get(
    "/sessions/{session_id:str}/export",
    guards=[require(Role.MODERATOR)],
    raises=[NotFoundException, NotAvailable],
    summary="Download a session's events (NDJSON, CSV, Parquet) or its raw frames",
)
async def export_session(
    api: Api, request: Req, session_id: FromPath[str], format: Format = "ndjson"
) -> Stream:
    await session_in_scope(api, request, session_id)
    if format == "parquet" and not ex.pyarrow_available():
        raise NotAvailable(ex.PYARROW_MISSING)
    selection = ex.Selection(session_ids=(session_id,))
    filename = f"ttlp-session-{session_id}{ex.SUFFIXES[format]}"
    return Stream(
        ex.export(api.engine, selection, format),
        media_type=ex.MEDIA_TYPES[format],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


routes = [export_session]
