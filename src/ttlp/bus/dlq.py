"""``ttlp dlq list|retry|purge``: the dead-letter stream ``ttlc:dlq`` (dlq.v1 entries).

Retry depends on the stage that gave up:

- ``forwarder`` (``FORWARD_FAILED`` / ``FORWARD_REFUSED``; the payload keeps the event and
  ``targetId``): the delivery row is reset to ``pending`` with no attempts, due now; the
  running forward role sends it within a second.
- every other stage (the payload is the entry as the consumer read it): the entry is
  published again to the stream it came from (``sourceStream``: ``ttlc:raw`` or
  ``ttlc:events``; a normalizer letter without one goes to ``ttlc:raw``). Every consumer of
  that stream sees it again, which each handles as a re-delivery: the store's writes, rule
  executions and forward deliveries are keyed by event, so nothing happens twice.

A payload kept as base64 (the entry was not UTF-8) is published as the same bytes. A letter
whose payload was cut (``payloadTruncated``) cannot be retried and is reported; so is one whose
source stream is unknown. A retried entry is deleted from the stream.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from ttlp.bus.base import Bus, Entry, parse_id
from ttlp.bus.keys import Keys
from ttlp.contracts.events import decode_event_head

FORWARDER = "forwarder"
NORMALIZER = "normalizer"


@dataclass(frozen=True)
class Letter:
    id: str
    stage: str
    reason: str
    error: str
    failed_at: str
    payload: str
    fields: dict[str, str]

    @property
    def time(self) -> datetime:
        ms, _ = parse_id(self.id)
        return datetime.fromtimestamp(ms / 1000, UTC)

    @property
    def truncated(self) -> bool:
        return self.fields.get("payloadTruncated") == "true"

    @property
    def payload_text(self) -> str:
        """The payload as text: base64 payloads decoded back to the entry's bytes, with bytes
        that are not UTF-8 surrogate-escaped (as the bus reads and writes them)."""
        if self.fields.get("payloadEncoding") != "base64":
            return self.payload
        try:
            return base64.b64decode(self.payload, validate=True).decode("utf-8", "surrogateescape")
        except (binascii.Error, ValueError):
            return self.payload

    @property
    def body(self) -> Any:
        """The payload decoded for people (the ``ttlc:raw``/``ttlc:events`` entry, or the
        forwarder's ``{targetId, event}``), or its text when it is not JSON. Bytes that are not
        UTF-8 show as U+FFFD here (a JSON answer cannot carry them); retry uses
        ``payload_text``, which keeps them."""
        text = self.payload_text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        try:
            return json.loads(text)
        except ValueError:
            return self.payload

    @property
    def stream_id(self) -> str | None:
        """The room the entry is about: a raw frame's ``streamId``, or that of the event it
        carries; None when the payload does not say (a frame too broken to tell)."""
        body = self.body
        if not isinstance(body, dict):
            return None
        if isinstance(body.get("streamId"), str):
            return str(body["streamId"])
        event = body.get("event")
        if isinstance(event, str):
            with contextlib.suppress(msgspec.DecodeError):
                event = msgspec.json.decode(event)
        if isinstance(event, dict) and isinstance(event.get("streamId"), str):
            return str(event["streamId"])
        return None

    def detail(self, width: int = 60) -> str:
        """A short description: the error, and what the payload is about."""
        about = ""
        body = self.body
        if isinstance(body, dict):
            if "targetId" in body:
                about = f"target {body['targetId']}"
                event = _event_head(body.get("event"))
                if event:
                    about += f", {event}"
            elif "type" in body:
                about = str(body["type"])
        text = f"{about}: {self.error}" if about else self.error
        return text if len(text) <= width else text[: width - 1] + "…"


def _event_head(data: Any) -> str:
    if not isinstance(data, str):
        return ""
    try:
        head = decode_event_head(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ""
    return f"{head.event_type} {head.event_id[:12]}"


def letter_of(entry: Entry) -> Letter | None:
    fields = entry.fields
    if fields is None:
        return None
    return Letter(
        id=entry.id,
        stage=fields.get("stage", "?"),
        reason=fields.get("reason", "?"),
        error=fields.get("error", ""),
        failed_at=fields.get("failedAt", ""),
        payload=fields.get("payload", ""),
        fields=fields,
    )


async def letters(
    bus: Bus,
    keys: Keys,
    *,
    stage: str | None = None,
    before: datetime | None = None,
    ids: list[str] | None = None,
) -> list[Letter]:
    """Dead letters, oldest first, filtered by stage, time (strictly before) and ids."""
    out: list[Letter] = []
    for entry in await bus.range(keys.dlq):
        letter = letter_of(entry)
        if letter is None:
            continue
        if stage is not None and letter.stage != stage:
            continue
        if before is not None and letter.time >= before:
            continue
        if ids is not None and letter.id not in ids:
            continue
        out.append(letter)
    return out


@dataclass
class RetryResult:
    retried: list[str]
    skipped: list[tuple[str, str]]
    """(entry id, why) of the entries left in the stream."""


ResetDelivery = Callable[[int, str, str], Awaitable[bool]]
"""(target id, event id, event JSON) → whether the forwarder's delivery row was reset to
pending (``ttlp.forward.store.ForwardStore.reset``); False when the target is gone."""


async def retry(
    bus: Bus, keys: Keys, reset_delivery: ResetDelivery | None, chosen: list[Letter]
) -> RetryResult:
    """Send the chosen dead letters back where they failed; delete those that went.

    Forwarder entries go back through ``reset_delivery`` (None: no database at hand)."""
    result = RetryResult([], [])
    for letter in chosen:
        why = await _retry_one(bus, keys, reset_delivery, letter)
        if why is None:
            result.retried.append(letter.id)
        else:
            result.skipped.append((letter.id, why))
    if result.retried:
        await bus.delete(keys.dlq, result.retried)
    return result


async def _retry_one(
    bus: Bus, keys: Keys, reset_delivery: ResetDelivery | None, letter: Letter
) -> str | None:
    if letter.truncated:
        return "the payload was cut at DLQ_MAX_PAYLOAD_BYTES: the entry is not all there"
    try:
        body = json.loads(letter.payload_text)
    except ValueError:
        return "the payload is not JSON"
    if not isinstance(body, dict):
        return "the payload is not an object"
    if letter.stage == FORWARDER and "targetId" in body:
        if reset_delivery is None:
            return "forwarder entries need the database"
        event = body.get("event")
        if not isinstance(event, str):
            return "the payload has no event"
        try:
            event_id = str(msgspec.json.decode(event)["eventId"])
            target_id = int(body["targetId"])
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            return "the payload's event or targetId is unreadable"
        if not await reset_delivery(target_id, event_id, event):
            return f"forward target {target_id} no longer exists"
        return None
    source = letter.fields.get("sourceStream") or (keys.raw if letter.stage == NORMALIZER else "")
    if source not in (keys.raw, keys.events):
        return f"entries of stage {letter.stage!r} name no stream to go back to"
    if not all(isinstance(v, str) for v in body.values()):
        return "the payload is not a stream entry"
    await bus.publish(source, body)
    return None


async def purge(bus: Bus, keys: Keys, chosen: list[Letter]) -> int:
    if not chosen:
        return 0
    return await bus.delete(keys.dlq, [letter.id for letter in chosen])
