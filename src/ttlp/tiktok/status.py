"""What ingest is doing for each watched streamer, for operators (`GET /ingest/status`,
`ttlp status`, the UI header).

Each streamer's supervisor keeps one ``StreamerStatus`` and reports it through the bus
(``Bus.set_status``: a Redis hash field per streamer, shared by every ingest replica; on the
embedded default a dict mirrored to a file in the data directory for the CLI) whenever its state
changes, and at least every ``REPORT_EVERY_S`` while connected so the last message's age stays
current. A report older than ``STALE_AFTER_S`` is shown as stale: the replica that made it has
stopped or cannot reach the bus.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import msgspec
from loguru import logger

from ttlp.aio import now_iso, parse_iso

State = Literal[
    "starting",
    "waiting_for_lease",
    "checking",
    "connected",
    "waiting_for_live",
    "backing_off",
    "stopped",
    "finished",
]
REPORT_EVERY_S: Final = 10.0
STALE_AFTER_S: Final = 60.0


class StreamerStatus(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    """One streamer's ingest state, as reported."""

    unique_id: str
    provider: str
    state: State = "starting"
    since: str = ""
    """When this state began."""
    reason: str | None = None
    """Why (the last disconnect, the back-off's cause, why it stopped)."""
    until: str | None = None
    """When the next attempt is due (backing_off, waiting_for_live)."""
    room_id: str | None = None
    session_id: str | None = None
    last_message_at: str | None = None
    """When TikTok's last message of the current connection arrived."""
    reconnects_today: int = 0
    """Connections after the first one today (UTC); the mock's passes do not count."""
    day: str = ""
    replica: str = ""
    updated_at: str = ""


Sink = Callable[[StreamerStatus], Awaitable[None]]


class StatusReporter:
    """The supervisor's side: change the state, count reconnects, report (never fail)."""

    def __init__(self, unique_id: str, provider: str, replica: str, sink: Sink | None) -> None:
        self.status = StreamerStatus(
            unique_id=unique_id, provider=provider, since=now_iso(), replica=replica
        )
        self.sink = sink
        self._connected_today = 0
        self._last_report = 0.0
        self._counted: str | None = None

    async def set(
        self, state: State, *, reason: str | None = None, in_s: float | None = None
    ) -> None:
        now = datetime.now(UTC)
        s = self.status
        if state != s.state:
            s.since = _iso(now)
        s.state = state
        s.reason = reason[:500] if reason else None
        s.until = _iso(now + timedelta(seconds=in_s)) if in_s is not None else None
        if state != "connected":
            s.last_message_at = None
        await self.report()

    async def connected(self, room_id: str | None, session_id: str) -> None:
        """The connection ``session_id`` joined the room (said once per connection)."""
        if session_id == self._counted:
            return
        self._counted = session_id
        today = datetime.now(UTC).date().isoformat()
        if self.status.day != today:
            self.status.day, self._connected_today = today, 0
        if self.status.provider != "mock":  # the mock's passes over its file are not reconnects
            self._connected_today += 1
        self.status.reconnects_today = max(self._connected_today - 1, 0)
        self.status.room_id, self.status.session_id = room_id, session_id
        await self.set("connected")

    async def message_seen(self, at_iso: str, now: float) -> None:
        """Refresh the last message's time; report at most every ``REPORT_EVERY_S``."""
        self.status.last_message_at = at_iso
        if now - self._last_report >= REPORT_EVERY_S:
            await self.report(now)

    async def report(self, now: float | None = None) -> None:
        if self.sink is None:
            return
        if now is not None:
            self._last_report = now
        self.status.updated_at = now_iso()
        with contextlib.suppress(Exception):  # the bus away: the next report will tell
            await self.sink(self.status)


def encode(status: StreamerStatus) -> str:
    return msgspec.json.encode(status).decode()


def report_field(status: StreamerStatus) -> str:
    """One field per (streamer, replica): with several ingest replicas, the one waiting for
    the streamer's lease must not overwrite what the one holding it says."""
    return f"{status.unique_id}|{status.replica}"


def decode_reports(reports: dict[str, str], now: datetime | None = None) -> list[dict[str, Any]]:
    """The bus's reports → one JSON object per streamer for operators, with
    ``lastMessageAgeS`` and ``stale``, ordered by handle. Of several replicas' reports on one
    streamer the one that matters wins: a fresh one over a stale one, the replica doing the
    work over one waiting for the lease, then the newest. A report that cannot be read is left
    out (and logged)."""
    now = now or datetime.now(UTC)
    best: dict[str, tuple[tuple[bool, bool, str], dict[str, Any]]] = {}
    for field, text in reports.items():
        try:
            status = msgspec.json.decode(text, type=StreamerStatus)
            last = parse_iso(status.last_message_at) if status.last_message_at else None
            updated = parse_iso(status.updated_at) if status.updated_at else None
        except (msgspec.DecodeError, ValueError):
            logger.warning("unreadable ingest status report", field=field[:64])
            continue
        doc: dict[str, Any] = msgspec.to_builtins(status)
        doc["lastMessageAgeS"] = round((now - last).total_seconds(), 1) if last else None
        stale = updated is None or (now - updated).total_seconds() > STALE_AFTER_S
        doc["stale"] = stale
        rank = (not stale, status.state != "waiting_for_lease", status.updated_at)
        if status.unique_id not in best or rank > best[status.unique_id][0]:
            best[status.unique_id] = (rank, doc)
    return [best[key][1] for key in sorted(best)]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
