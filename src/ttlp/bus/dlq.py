"""The dead-letter stream ``ttlc:dlq`` (dlq.v1 entries): what ``ttlp dlq list|show|retry|purge``
and ``/dlq`` (the api and the UI's page) do, one code path each, on either backend.

Everything goes through the bus. On Redis that is the stream itself; on the embedded default the
in-process bus keeps ``ttlc:dlq`` in the database (``ttlp.db.letters``), so letters survive a
restart and a ``ttlp dlq`` process reads and purges them beside the running ``ttlp run``.

Choosing letters: by id (each must exist: an unknown id is an error that names it, and nothing
is done), or by ``stage`` (one of ``STAGES``, else an error naming them) and/or time.

Retry depends on the stage that gave up:

- ``forwarder`` (``FORWARD_FAILED`` / ``FORWARD_REFUSED``; the payload keeps the event and
  ``targetId``): the delivery row is reset to ``pending`` with no attempts, due now; the
  running forward role sends it within a second.
- every other stage (the payload is the entry as the consumer read it): the entry is
  published again to the stream it came from (``sourceStream``: ``ttlc:raw`` or
  ``ttlc:events``; a normalizer letter without one goes to ``ttlc:raw``) and the letter deleted,
  in one step (``Bus.move``). Every consumer of that stream sees it again, which each handles
  as a re-delivery: the store's writes, rule executions and forward deliveries are keyed by
  event, so nothing happens twice. From a ``ttlp dlq`` process on the embedded default the
  move is *queued*: the running ttlp carries it out within a second, or at its next start
  (``MemoryBus.relay``); until then the letter is listed as queued.

A payload kept as base64 (the entry was not UTF-8) is published as the same bytes. A letter
whose payload was cut (``payloadTruncated``) cannot be retried and is reported; so is one whose
source stream is unknown. Those stay in the stream.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from ttlp.bus.base import Bus, Entry, parse_id
from ttlp.bus.keys import STAGES, Keys
from ttlp.bus.memory import MOVING_FIELD
from ttlp.contracts.events import decode_event_head
from ttlp.errors import InputError, NotFoundError

FORWARDER = "forwarder"
NORMALIZER = "normalizer"
SETTLE_POLL_S = 0.2
SCAN_PAGE = 500
_LETTER_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


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
    def queued_to(self) -> str | None:
        """The stream a retry queued from another process will publish it to (embedded
        default, until the running ttlp does); None when no retry is waiting."""
        return self.fields.get(MOVING_FIELD)

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


def check_stage(stage: str | None) -> None:
    """An unknown stage is an error that names the known ones (not an empty answer)."""
    if stage is not None and stage not in STAGES:
        raise InputError(f"unknown stage {stage!r}: the stages are {', '.join(STAGES)}")


def is_letter_id(value: str) -> bool:
    """A ``ttlc:dlq`` entry id, ``<ms>-<seq>``, each part below 2**64."""
    return bool(_LETTER_ID.fullmatch(value)) and all(int(p) < 2**64 for p in value.split("-"))


async def find(bus: Bus, keys: Keys, ids: Sequence[str]) -> list[Letter]:
    """The letters ``ids`` name, oldest first; an id that is malformed or names no letter is
    an error naming it (and nothing is returned)."""
    wanted = list(dict.fromkeys(ids))
    malformed = [i for i in wanted if not is_letter_id(i)]
    if malformed:
        raise InputError(
            f"not a dead-letter id: {', '.join(malformed)} (ids look like 1733500000000-0; "
            "`ttlp dlq list` shows them)"
        )
    if not wanted:
        return []
    ordered = sorted(wanted, key=parse_id)
    named = set(wanted)
    found = {
        letter.id: letter
        for entry in await bus.range(keys.dlq, start=ordered[0], end=ordered[-1])
        if entry.id in named and (letter := letter_of(entry)) is not None
    }
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFoundError(
            f"no dead letter {', '.join(missing)} in {keys.dlq} (already retried or purged?)"
        )
    return [found[i] for i in ordered]


async def select(
    bus: Bus,
    keys: Keys,
    *,
    ids: Sequence[str] = (),
    stage: str | None = None,
    before: datetime | None = None,
) -> list[Letter]:
    """The letters an operation acts on: those ``ids`` name (each must exist), or, without
    ids, every letter of ``stage`` and older than ``before`` (each optional)."""
    check_stage(stage)
    if ids:
        if stage is not None or before is not None:
            raise InputError("give entry ids, or choose letters by stage or time, not both")
        return await find(bus, keys, ids)
    return await letters(bus, keys, stage=stage, before=before)


async def newest(
    bus: Bus, keys: Keys, *, stage: str | None = None, limit: int
) -> tuple[list[Letter], int]:
    """The newest ``limit`` letters (of ``stage``), newest first, and how many there are in
    all. Reads the stream a page at a time: a long queue is counted, not held in memory."""
    check_stage(stage)
    if stage is None:
        entries = await bus.revrange(keys.dlq, count=limit)
        shown = [x for e in entries if (x := letter_of(e)) is not None]
        return shown, await bus.length(keys.dlq)
    shown, total, end = [], 0, "+"
    while True:
        page = await bus.revrange(keys.dlq, end=end, count=SCAN_PAGE)
        for entry in page:
            letter = letter_of(entry)
            if letter is not None and letter.stage == stage:
                total += 1
                if len(shown) < limit:
                    shown.append(letter)
        if len(page) < SCAN_PAGE:
            return shown, total
        end = f"({page[-1].id}"


async def letters(
    bus: Bus,
    keys: Keys,
    *,
    stage: str | None = None,
    before: datetime | None = None,
    ids: list[str] | None = None,
) -> list[Letter]:
    """Dead letters, oldest first, filtered by stage, time (strictly before) and ids."""
    check_stage(stage)
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
    queued: list[str] = field(default_factory=list)
    """Entries whose move the running ttlp carries out (``ttlp dlq`` on the embedded default)."""


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
        try:
            went = await _retry_one(bus, keys, reset_delivery, letter)
        except _Skip as skip:
            result.skipped.append((letter.id, str(skip)))
            continue
        (result.retried if went else result.queued).append(letter.id)
    return result


class _Skip(Exception):
    """Why a letter cannot be retried (it stays in the stream)."""


async def _retry_one(
    bus: Bus, keys: Keys, reset_delivery: ResetDelivery | None, letter: Letter
) -> bool:
    """Retry one letter: True when it went back, False when its move is queued (``Bus.move``);
    ``_Skip`` when it cannot go back."""
    if letter.truncated:
        raise _Skip("the payload was cut at DLQ_MAX_PAYLOAD_BYTES: the entry is not all there")
    try:
        body = json.loads(letter.payload_text)
    except ValueError:
        raise _Skip("the payload is not JSON") from None
    if not isinstance(body, dict):
        raise _Skip("the payload is not an object")
    if letter.stage == FORWARDER and "targetId" in body:
        if reset_delivery is None:
            raise _Skip("forwarder entries need the database")
        event = body.get("event")
        if not isinstance(event, str):
            raise _Skip("the payload has no event")
        try:
            event_id = str(msgspec.json.decode(event)["eventId"])
            target_id = int(body["targetId"])
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            raise _Skip("the payload's event or targetId is unreadable") from None
        if not await reset_delivery(target_id, event_id, event):
            raise _Skip(f"forward target {target_id} no longer exists")
        await bus.delete(keys.dlq, [letter.id])
        return True
    source = letter.fields.get("sourceStream") or (keys.raw if letter.stage == NORMALIZER else "")
    if source not in (keys.raw, keys.events):
        raise _Skip(f"entries of stage {letter.stage!r} name no stream to go back to")
    if not all(isinstance(v, str) for v in body.values()):
        raise _Skip("the payload is not a stream entry")
    return await bus.move(keys.dlq, letter.id, source, body)


async def settle(bus: Bus, keys: Keys, queued: Sequence[str], timeout_s: float) -> list[str]:
    """Wait up to ``timeout_s`` for the running ttlp to carry out queued retries; return the
    ids still waiting (no ttlp is running, or it is busy)."""
    waiting = list(queued)
    deadline = time.monotonic() + timeout_s
    while waiting:
        ordered = sorted(waiting, key=parse_id)
        present = {e.id for e in await bus.range(keys.dlq, start=ordered[0], end=ordered[-1])}
        waiting = [i for i in waiting if i in present]
        if not waiting or time.monotonic() >= deadline:
            break
        await asyncio.sleep(SETTLE_POLL_S)
    return waiting


async def purge(bus: Bus, keys: Keys, chosen: list[Letter]) -> int:
    if not chosen:
        return 0
    return await bus.delete(keys.dlq, [letter.id for letter in chosen])
