"""``GET /analytics``: per-bucket counts and coins, top gifters and chatters, unique users,
peak viewers, over a session, a room or a streamer's rooms (optionally a time range).
VIEWER accounts get the aggregates without user identities."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import QueryParameter

from ttlp.api.accounts import Role
from ttlp.api.auth import current_account
from ttlp.api.routes.history import ROOM_OR_HANDLE, Since, Until, session_in_scope, utc
from ttlp.api.state import Api, Req, resolve_stream

MIN_BUCKET_S = 10
MAX_BUCKET_S = 86_400
MAX_BUCKETS = 10_000
IDENTITY_FIELDS = ("userId", "uniqueId", "displayName")


@get(
    "/analytics",
    summary="Aggregates of a session, a room or a streamer (@handle)",
    raises=[NotFoundException],  # the session or stream named is unknown
)
async def analytics(
    api: Api,
    request: Req,
    session_id: Annotated[str | None, QueryParameter(name="sessionId", max_length=36)] = None,
    stream_id: Annotated[
        str | None,
        QueryParameter(name="streamId", pattern=ROOM_OR_HANDLE, description="room id or @handle"),
    ] = None,
    bucket: Annotated[
        int, QueryParameter(ge=MIN_BUCKET_S, le=MAX_BUCKET_S, description="bucket width in seconds")
    ] = 60,
    since: Since = None,
    until: Until = None,
) -> dict[str, Any]:
    account = current_account(request)
    if (session_id is None) == (stream_id is None):
        raise ValidationException("give exactly one of sessionId or streamId")
    since, until = utc(since, "since"), utc(until, "until")
    if since and until and since >= until:
        raise ValidationException("since must be before until")
    if since and until and (until - since).total_seconds() / bucket > MAX_BUCKETS:
        raise ValidationException(f"that range needs more than {MAX_BUCKETS} buckets: widen them")
    stream_ids = None
    if session_id is not None:
        await session_in_scope(api, request, session_id)
    else:
        assert stream_id is not None
        stream_ids = (await resolve_stream(api, stream_id, account)).stream_ids
    result = await api.queries.analytics(
        session_id=session_id, stream_ids=stream_ids, bucket_s=bucket, since=since, until=until
    )
    if not account.role.at_least(Role.MODERATOR):
        for key in ("topGifters", "topChatters"):
            result[key] = [
                {k: v for k, v in row.items() if k not in IDENTITY_FIELDS} for row in result[key]
            ]
    return result


routes = [analytics]
