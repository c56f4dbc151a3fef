"""Moderators' quick actions: mute (timeout) and kick (ban) a viewer (DESIGN §7.1, §8).

``POST /actions/timeout`` and ``POST /actions/ban`` need MODERATOR and the stream in the
account's scope. The stream is a room id or ``@handle`` (its most recent room: TikTok room ids
change with every broadcast, and a moderator acts on the broadcast that is on now). The call to
Euler is the rule engine's (``Actions.moderate_user``), not a copy of it.

Answers: 200 ``{"ok": true, ...}``; 503 when Euler is not configured (no ``EULER_API_KEY`` or
``SESSION_ID``); 502 when Euler is unreachable or refuses. Manual actions are not written to
``actions_log``: its rows are keyed by (rule, event) for the engine's once-per-event guarantee,
and a moderator's click has neither. Each one is logged instead (who, what, where, outcome; no
secrets: Euler's error texts pass through ``Actions._clean``).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar import post
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.params import JSONBody
from litestar.security.jwt import Token
from litestar.status_codes import HTTP_200_OK
from loguru import logger

from ttlp.api.accounts import Account, Role
from ttlp.api.auth import current_account, require
from ttlp.api.guard import json_problem
from ttlp.api.state import HANDLE_RE, Api, Req, resolve_stream
from ttlp.rules.actions import Actions

USER_ID_PATTERN: Final = r"^[1-9][0-9]{0,31}$"
STREAM_PATTERN: Final = r"^([0-9]{1,32}|@[A-Za-z0-9_.]{1,64})$"

log = logger.bind(role="api")


class NotConfigured(HTTPException):
    """503: Euler's API key or the TikTok session is not set."""

    status_code = 503


class UpstreamFailed(HTTPException):
    """502: Euler did not answer, or refused the action."""

    status_code = 502


StreamRefIn = Annotated[str, msgspec.Meta(pattern=STREAM_PATTERN)]
UserId = Annotated[str, msgspec.Meta(pattern=USER_ID_PATTERN)]


class TimeoutIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    stream_id: StreamRefIn
    """A room id, or ``@handle`` (its most recent room)."""
    user_id: UserId
    """The TikTok user id of the viewer."""
    duration_s: Literal[5, 30, 60, 300, -1] = 300
    """Seconds: what Euler accepts (``rules.engine.MUTE_DURATIONS``; -1 = until unmuted)."""


class BanIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    stream_id: StreamRefIn
    user_id: UserId


class ActionOut(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    ok: bool
    action: str
    stream_id: str
    """The room the action went to."""
    user_id: str
    duration_s: int | None = None


async def _room(api: Api, account: Account, ref: str) -> str:
    """The live room of ``ref`` after the scope check (403/404)."""
    stream = await resolve_stream(api, ref, account)
    if not HANDLE_RE.match(ref):
        return stream.stream_ids[0]
    latest = await api.queries.list_streams([stream.unique_id or ""], limit=1)
    if not latest:
        raise NotFoundException(f"no stream of {ref} has been seen yet")
    return str(latest[0]["id"])


async def moderate(
    api: Api,
    account: Account,
    ref: str,
    user_id: str,
    op: Literal["mute", "kick"],
    duration_s: int,
    *,
    via: str = "http",
) -> str:
    """Run the action; → the room it went to (503/502 when Euler is not set up or fails)."""
    room = await _room(api, account, ref)
    actions = Actions(api.settings)
    try:
        outcome = await actions.moderate_user(room, user_id, op, duration_s)
    finally:
        await actions.aclose()
    missing = actions.missing_config()
    fields: dict[str, Any] = {
        "account": account.username,
        "via": via,
        "op": op,
        "stream_id": room,
        "user_id": user_id,
        "status": outcome.status,
        "reason": outcome.reason,
    }
    if op == "mute":
        fields["duration_s"] = duration_s
    if outcome.status == "success":
        log.info("moderation action", **fields)
        return room
    log.warning("moderation action failed", **fields, error=outcome.error)
    if outcome.reason == "not_configured":
        raise NotConfigured(
            "moderation is not configured: set EULER_API_KEY and SESSION_ID "
            f"(missing: {', '.join(missing)})"
        )
    raise UpstreamFailed(f"Euler did not {op} the user: {outcome.error}")


@post(
    "/actions/timeout",
    guards=[require(Role.MODERATOR)],
    status_code=HTTP_200_OK,
    raises=[NotConfigured, UpstreamFailed, NotFoundException],
    summary="Mute a viewer in a stream's room for durationS seconds (through Euler)",
)
async def timeout_user(api: Api, request: Req, data: JSONBody[TimeoutIn]) -> ActionOut:
    account = current_account(request)
    room = await moderate(api, account, data.stream_id, data.user_id, "mute", data.duration_s)
    return ActionOut(
        ok=True,
        action="timeout",
        stream_id=room,
        user_id=data.user_id,
        duration_s=data.duration_s,
    )


@post(
    "/actions/ban",
    guards=[require(Role.MODERATOR)],
    status_code=HTTP_200_OK,
    raises=[NotConfigured, UpstreamFailed, NotFoundException],
    summary="Kick a viewer from a stream's room (through Euler)",
)
async def ban_user(api: Api, request: Req, data: JSONBody[BanIn]) -> ActionOut:
    room = await moderate(api, current_account(request), data.stream_id, data.user_id, "kick", -1)
    return ActionOut(ok=True, action="ban", stream_id=room, user_id=data.user_id)


# -- the same actions on the live-feed WebSocket (DESIGN §7.4) ----------------------------------
WS_ACTION_MAX_CHARS: Final = 4096
WS_ACTIONS_PER_MINUTE: Final = 30
"""Per connection: a moderator clicks, a runaway client loops."""


class WsActionIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """A frame a client sends on ``/streams/{stream}/ws``: an action on that stream's room.

    ``{"type": "action", "action": "timeout", "userId": "…", "durationS": 300, "ref": "…"}``;
    the answer is one ``action-result`` frame with the same ``ref``."""

    type: Literal["action"]
    action: Literal["timeout", "ban"]
    user_id: UserId
    duration_s: Literal[5, 30, 60, 300, -1] = 300
    ref: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    """The client's own id for the request, echoed in the answer."""


class WsActions:
    """The actions of one WebSocket: read, limited, authorized again, run, answered.

    The connection was authorized when it opened; every action checks the token's account
    again (disabled, password changed, role lowered, stream out of scope since), as an HTTP
    request would."""

    def __init__(self, api: Api, token: Token | None, stream: str) -> None:
        self.api = api
        self.token = token
        self.stream = stream
        self.recent: deque[float] = deque()

    async def answer(self, text: str | bytes) -> dict[str, Any]:
        """The ``action-result`` frame for one client frame (never raises for bad input)."""
        ref: str | None = None
        try:
            if isinstance(text, bytes):
                raise ValidationException("actions are JSON in text frames, not binary ones")
            if len(text) > WS_ACTION_MAX_CHARS:
                raise HTTPException(
                    status_code=413, detail=f"frames are at most {WS_ACTION_MAX_CHARS} characters"
                )
            problem = json_problem(text.encode())
            if problem is not None:
                raise ValidationException(problem)
            try:
                raw = msgspec.json.decode(text)
            except msgspec.DecodeError:
                raise ValidationException("the frame is not JSON") from None
            if isinstance(raw, dict) and isinstance(raw.get("ref"), str):
                ref = raw["ref"][:64]
            try:
                action = msgspec.convert(raw, WsActionIn)
            except msgspec.ValidationError as exc:
                raise ValidationException(f"not an action: {exc}") from None
            self._count()
            account = await self._account()
            op: Literal["mute", "kick"] = "mute" if action.action == "timeout" else "kick"
            duration = action.duration_s if op == "mute" else -1
            room = await moderate(
                self.api, account, self.stream, action.user_id, op, duration, via="websocket"
            )
        except HTTPException as exc:
            failed = {"ok": False, "status": exc.status_code, "error": exc.detail}
            return {"type": "action-result", "ref": ref, **failed}
        out = ActionOut(
            ok=True,
            action=action.action,
            stream_id=room,
            user_id=action.user_id,
            duration_s=action.duration_s if action.action == "timeout" else None,
        )
        return {"type": "action-result", "ref": ref, **msgspec.to_builtins(out)}

    def _count(self) -> None:
        now = time.monotonic()
        while self.recent and now - self.recent[0] >= 60:
            self.recent.popleft()
        if len(self.recent) >= WS_ACTIONS_PER_MINUTE:
            raise TooManyRequestsException(
                f"at most {WS_ACTIONS_PER_MINUTE} actions a minute on one connection"
            )
        self.recent.append(now)

    async def _account(self) -> Account:
        account = await self.api.account_cache.current(self.token) if self.token else None
        if account is None:
            raise NotAuthorizedException("your session has ended: log in again")
        if not account.role.at_least(Role.MODERATOR):
            raise PermissionDeniedException(
                f"this needs the {Role.MODERATOR.value} role; your account is {account.role.value}"
            )
        return account


routes = [timeout_user, ban_user]
