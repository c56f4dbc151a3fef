"""``GET /ingest/status``: what ingest is doing for each watched streamer (``ttlp.tiktok.status``).

Every logged-in account sees the streamers in its scope: their state (checking, connected,
waiting for live, backing off until a time, stopped with its reason...), the age of TikTok's
last message, reconnects today, and whether the report is stale (its replica stopped reporting).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import get

from ttlp.api.auth import current_account
from ttlp.api.state import Api, Req
from ttlp.tiktok.status import decode_reports


class IngestStatus(msgspec.Struct, rename="camel"):
    streamers: list[dict[str, Any]]
    """One report per watched streamer (see README, "Ingest status")."""


@get("/ingest/status", summary="Ingest's state for each watched streamer in the account's scope")
async def ingest_status(api: Api, request: Req) -> IngestStatus:
    account = current_account(request)
    reports = decode_reports(await api.bus.statuses(api.keys.ingest_status))
    return IngestStatus(
        [r for r in reports if r["uniqueId"] == "mock" or account.may_see(r["uniqueId"])]
    )


routes = [ingest_status]
