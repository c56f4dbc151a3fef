"""What a rule does: announce (chat), moderate (mute, kick), webhook, log (DESIGN §8).

Announce and moderate go through Euler Stream's REST API (``EULER_API_URL``), the same calls
TikTokLive makes (TikTokLive ``client.web.send_room_chat`` → EulerApiSdk ``send_room_chat``;
EulerApiSdk ``tik_tok_live_moderation.mute_room_user`` / ``kick_room_user``):

- chat:  ``POST {EULER_API_URL}/webcast/chat`` JSON ``{"content", "targetRoomId"}``;
- mute:  ``PUT {EULER_API_URL}/webcast/moderation/mutes?room_id=&user_id=&duration=``
  (duration 5, 30, 60, 300 seconds or -1);
- kick:  ``PUT {EULER_API_URL}/webcast/moderation/bans?room_id=&tiktok_user_id=``;

each with ``X-Api-Key: EULER_API_KEY`` and ``x-cookie-header: sessionid=SESSION_ID`` (the
TikTok session of the account that speaks or moderates). Euler answers 200 with
``{"code": 0, ...}`` on success. Without a key or a session the action is a failed execution
that says what to set; it is never retried (the engine runs an action at most once per event).

Announcements are throttled per streamer: one every ``ANNOUNCE_MIN_INTERVAL_S`` at most, per
rules replica; one that comes sooner is skipped (reason ``throttled``) rather than queued, so
a gift storm cannot build a backlog of stale thank-yous (``AnnounceThrottle``). Webhooks go
through the forwarder's ``Outbound`` (SSRF checks, timeouts, response cap). Secrets never
reach an error text, nor does an upstream body: a refusal says the status and Euler's short
``message`` (or the status's standard phrase), never a gateway's HTML page.

``DryRunActions`` is the backtest's runner (``ttlp.rules.backtest``): the same texts, webhook
bodies and throttle, in the events' own time, and nothing sent or logged.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final, Literal

import httpx
import msgspec
from loguru import logger

from ttlp.forward.outbound import Outbound, OutboundError, OutboundRefused
from ttlp.rules.engine import (
    UNSAVED_RULE_ID,
    AnnounceAction,
    CompiledRule,
    LogAction,
    ModerateAction,
    Outcome,
    WebhookAction,
    event_time,
)
from ttlp.rules.templates import CHAT_MAX_LENGTH
from ttlp.settings import Settings

CHAT_PATH: Final = "/webcast/chat"
MUTE_PATH: Final = "/webcast/moderation/mutes"
KICK_PATH: Final = "/webcast/moderation/bans"
MAX_ERROR_BODY: Final = 300
MAX_REASON_CHARS: Final = 120
"""Euler's own ``message`` is kept up to this long; its body otherwise never reaches an error
text (a gateway's HTML page would end up in actions_log and the API's 502 answer)."""
USER_AGENT: Final = "ttlp-rules"

log = logger.bind(role="rules")


class AnnounceThrottle:
    """At most one announcement per streamer every ``min_interval_s`` (a later one is skipped,
    not queued). ``now`` is the caller's: monotonic seconds live, event time in a backtest."""

    def __init__(self, min_interval_s: float) -> None:
        self.min_interval_s = min_interval_s
        self._last: dict[str, float] = {}

    def admit(self, streamer: str, now: float) -> bool:
        last = self._last.get(streamer)
        if last is not None and now - last < self.min_interval_s:
            return False
        self._last[streamer] = now
        return True


def webhook_body(rule: CompiledRule, event: Mapping[str, Any], text: str | None) -> bytes:
    """What a webhook action POSTs: ``{"rule": {"id", "name"}, "event", "text"}`` (the id of
    a rule not saved yet, in a backtest, is null)."""
    rule_id = None if rule.id == UNSAVED_RULE_ID else rule.id
    return msgspec.json.encode(
        {"rule": {"id": rule_id, "name": rule.name}, "event": event, "text": text}
    )


def moderation_text(action: ModerateAction, event: Mapping[str, Any]) -> str:
    """What a moderate action does, as its ``actions_log`` row says (``mute @zoe 60s``)."""
    user = event.get("user") or {}
    return f"{action.op} @{user.get('uniqueId', '?')}" + (
        f" {action.duration_s}s" if action.op == "mute" else ""
    )


def missing_euler_settings(settings: Settings) -> list[str]:
    """``Actions.missing_config`` of these settings, without building the clients."""
    return _unset(settings.ingest.euler_api_key, settings.ingest.session_id)


def _unset(api_key: str | None, session_id: str | None) -> list[str]:
    return [
        name
        for name, value in (("EULER_API_KEY", api_key), ("SESSION_ID", session_id))
        if not value
    ]


def _has_user(event: Mapping[str, Any]) -> bool:
    return str((event.get("user") or {}).get("userId", "0")) != "0"


EMPTY_TEXT: Final = "the template rendered no text"
NO_USER: Final = "the event has no TikTok user to moderate"


class Actions:
    """Runs a rule's action for an event; one per rules role (holds the HTTP clients)."""

    def __init__(
        self,
        settings: Settings,
        *,
        client: httpx.AsyncClient | None = None,
        outbound: Outbound | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.base_url = settings.rules.euler_api_url.rstrip("/")
        self.api_key = settings.ingest.euler_api_key
        self.session_id = settings.ingest.session_id
        self.min_interval_s = settings.rules.announce_min_interval_s
        self.secrets = settings.secrets()
        timeout = httpx.Timeout(
            settings.outbound.read_timeout_s, connect=settings.outbound.connect_timeout_s
        )
        self.client = client or httpx.AsyncClient(
            timeout=timeout, headers={"User-Agent": USER_AGENT}
        )
        self.outbound = outbound or Outbound(settings.outbound)
        self.clock = clock
        self.throttle = AnnounceThrottle(self.min_interval_s)

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.outbound.aclose()

    async def run(
        self, rule: CompiledRule, event: Mapping[str, Any], text: str | None, streamer: str
    ) -> Outcome:
        action = rule.action
        if isinstance(action, AnnounceAction):
            return await self.announce(event, text or "", streamer)
        if isinstance(action, ModerateAction):
            return await self.moderate(action, event)
        if isinstance(action, WebhookAction):
            return await self.webhook(rule, action, event, text)
        if isinstance(action, LogAction):
            log.info("rule fired", rule_id=rule.id, rule=rule.name, text=text)
            return Outcome("success", rendered=text)
        return Outcome("failed", "unknown_action", f"unknown action {rule.action_type!r}")

    def log_line(self, rule: CompiledRule, text: str | None) -> None:
        log.info("rule fired", rule_id=rule.id, rule=rule.name, text=text)

    # -- Euler -------------------------------------------------------------------------------------
    def missing_config(self) -> list[str]:
        """The settings Euler calls need that are not set (``EULER_API_KEY``, ``SESSION_ID``)."""
        return _unset(self.api_key, self.session_id)

    def _missing(self, what: str) -> Outcome | None:
        missing = self.missing_config()
        if not missing:
            return None
        return Outcome(
            "failed",
            "not_configured",
            f"{what} needs {' and '.join(missing)}: set the Euler Stream API key and the TikTok "
            "session cookie (sessionid) of the account that acts",
        )

    def _headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key or "", "x-cookie-header": f"sessionid={self.session_id}"}

    async def _euler(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None
    ) -> Outcome:
        try:
            response = await self.client.request(
                method, self.base_url + path, params=params, json=json, headers=self._headers()
            )
        except httpx.HTTPError as exc:
            return Outcome("failed", "unreachable", self._clean(f"Euler API: {_describe(exc)}"))
        try:
            body = response.json()
        except ValueError:
            body = None
        code = body.get("code") if isinstance(body, dict) else None
        if response.status_code == 200 and code in (0, None):
            return Outcome("success")
        message = body.get("message") if isinstance(body, dict) else None
        reason = _short_reason(message) or _status_phrase(response.status_code)
        return Outcome(
            "failed",
            "rejected",
            self._clean(
                f"Euler API answered HTTP {response.status_code}"
                + (f" code {code}" if type(code) is int else "")
                + (f": {reason}" if reason else "")
            ),
        )

    async def announce(self, event: Mapping[str, Any], text: str, streamer: str) -> Outcome:
        """Send ``text`` (≤ 150 characters) as chat to the event's room."""
        text = text[:CHAT_MAX_LENGTH]
        missing = self._missing("announce")
        if missing is not None:
            return Outcome(missing.status, missing.reason, missing.error, text)
        if not text.strip():
            return Outcome("failed", "empty", EMPTY_TEXT, text)
        if not self.throttle.admit(streamer, self.clock()):
            return Outcome("skipped", "throttled", None, text)
        outcome = await self._euler(
            "POST", CHAT_PATH, json={"content": text, "targetRoomId": str(event["streamId"])}
        )
        return Outcome(outcome.status, outcome.reason, outcome.error, text)

    async def moderate(self, action: ModerateAction, event: Mapping[str, Any]) -> Outcome:
        """Mute the event's user for ``durationS``, or kick them, in the event's room."""
        what = moderation_text(action, event)
        missing = self._missing("moderate")
        if missing is not None:
            return Outcome(missing.status, missing.reason, missing.error, what)
        if not _has_user(event):
            return Outcome("failed", "no_user", NO_USER, what)
        user_id = str((event.get("user") or {}).get("userId"))
        outcome = await self.moderate_user(
            str(event["streamId"]), user_id, action.op, action.duration_s
        )
        return Outcome(outcome.status, outcome.reason, outcome.error, what)

    async def moderate_user(
        self, room_id: str, user_id: str, op: Literal["mute", "kick"], duration_s: int = 60
    ) -> Outcome:
        """Mute TikTok user ``user_id`` for ``duration_s`` (``op`` ``mute``) or kick them
        (``kick``) in room ``room_id``: the one Euler moderation call, shared by the
        ``moderate`` rule action and the API's ``/actions/timeout`` and ``/actions/ban``."""
        missing = self._missing("moderate")
        if missing is not None:
            return missing
        if op == "mute":
            params = {"room_id": room_id, "user_id": user_id, "duration": duration_s}
            return await self._euler("PUT", MUTE_PATH, params=params)
        params = {"room_id": room_id, "tiktok_user_id": user_id}
        return await self._euler("PUT", KICK_PATH, params=params)

    # -- webhook -------------------------------------------------------------------------------
    async def webhook(
        self,
        rule: CompiledRule,
        action: WebhookAction,
        event: Mapping[str, Any],
        text: str | None,
    ) -> Outcome:
        body = webhook_body(rule, event, text)
        rendered = body.decode()
        try:
            response = await self.outbound.post(
                action.url, body=body, headers={"Content-Type": "application/json"}
            )
        except OutboundRefused as exc:
            return Outcome("failed", "refused", self._clean(exc.reason), rendered)
        except OutboundError as exc:
            return Outcome("failed", "unreachable", self._clean(exc.reason), rendered)
        if 200 <= response.status_code < 300:
            return Outcome("success", rendered=rendered)
        return Outcome(
            "failed", "rejected", f"the webhook answered HTTP {response.status_code}", rendered
        )

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


class DryRunActions:
    """A backtest's actions: each renders what it would send (the announcement, the webhook's
    body, the moderation) and sends nothing; the announcement throttle runs in the events'
    own time. Whether the Euler settings are there is the backtest's note, not a failure per
    event: the question is what the rule would do."""

    def __init__(self, min_interval_s: float) -> None:
        self.throttle = AnnounceThrottle(min_interval_s)

    async def run(
        self, rule: CompiledRule, event: Mapping[str, Any], text: str | None, streamer: str
    ) -> Outcome:
        action = rule.action
        if isinstance(action, AnnounceAction):
            text = (text or "")[:CHAT_MAX_LENGTH]
            if not text.strip():
                return Outcome("failed", "empty", EMPTY_TEXT, text)
            if not self.throttle.admit(streamer, event_time(event).timestamp()):
                return Outcome("skipped", "throttled", None, text)
            return Outcome("success", rendered=text)
        if isinstance(action, ModerateAction):
            what = moderation_text(action, event)
            if not _has_user(event):
                return Outcome("failed", "no_user", NO_USER, what)
            return Outcome("success", rendered=what)
        if isinstance(action, WebhookAction):
            return Outcome("success", rendered=webhook_body(rule, event, text).decode())
        return Outcome("success", rendered=text)

    def log_line(self, rule: CompiledRule, text: str | None) -> None:
        """Nothing: a backtest logs nothing per firing."""


def _short_reason(message: Any) -> str | None:
    """Euler's JSON ``message``, if it is one short line of text (not markup): else None."""
    if not isinstance(message, str):
        return None
    text = " ".join(message.split())
    if not text or "<" in text or len(text) > MAX_REASON_CHARS:
        return None
    return text


def _status_phrase(status: int) -> str | None:
    """The standard phrase of an HTTP status (not the one the server sent)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:MAX_ERROR_BODY]}" if str(exc) else type(exc).__name__
