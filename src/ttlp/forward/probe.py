"""The test event of a forward target ("Send a test event"): one signed POST, answered at once.

The event is a schema-valid UnifiedEvent v1 of the type asked for (the rules' sample of that
type, ``ttlp.contracts.samples.SAMPLE_EVENTS``), made clearly not real: a fresh random
``eventId`` (a receiver that deduplicates takes every test), ``streamId`` ``"0"``, the nil
``sessionId``, the user ``ttlp.test`` ("ttlp test event"), a CHAT's message saying what it is,
and the request header ``X-TTLP-Test: 1``. It goes out as a delivery does
(``ttlp.forward.dispatcher.send``: the same signature, the same outbound rules and timeouts),
but it is never published, stored or queued: nothing is retried, nothing reaches the events
table, the feed, the rules or another target.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from dataclasses import dataclass
from typing import Any, Final

from ttlp.aio import now_iso
from ttlp.contracts.events import decode_event, encode
from ttlp.contracts.samples import SAMPLE_EVENTS
from ttlp.forward.dispatcher import send
from ttlp.forward.outbound import Outbound, OutboundError, OutboundRefused
from ttlp.forward.store import Target

TEST_HEADER: Final = "X-TTLP-Test"
TEST_STREAM_ID: Final = "0"
TEST_SESSION_ID: Final = "00000000-0000-0000-0000-000000000000"
TEST_USER: Final = {"userId": "0", "uniqueId": "ttlp.test", "displayName": "ttlp test event"}
DEFAULT_TYPE: Final = "CHAT"
PROBE_TIMEOUT_S: Final = 15.0
"""The longest a test may take, redirects included (each hop has the outbound timeouts too):
someone is waiting for the answer on the Forwarding page."""
MAX_EXCERPT_CHARS: Final = 500
"""What is shown of the receiver's answer."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    event_id: str
    event_type: str
    ok: bool
    """The receiver answered 2xx."""
    status_code: int | None
    """The receiver's status (None: no answer: refused, unreachable, timed out)."""
    latency_ms: float
    error: str | None
    response_excerpt: str | None


def probe_event(event_type: str, target_name: str) -> tuple[str, bytes]:
    """(eventId, JSON body) of a test event of ``event_type``, validated as UnifiedEvent v1."""
    event: dict[str, Any] = copy.deepcopy(SAMPLE_EVENTS[event_type])
    now = now_iso()
    event_id = secrets.token_hex(32)
    event.update(
        eventId=event_id,
        streamId=TEST_STREAM_ID,
        sessionId=TEST_SESSION_ID,
        timestamp=now,
        ingestedAt=now,
    )
    event.pop("seqNo", None)
    event["user"] = dict(TEST_USER)
    if event_type == "CHAT":
        event["payload"] = {"message": f"ttlp test event for the forward target {target_name!r}"}
    body = encode(decode_event(encode(event)))  # what is sent is what the contract accepts
    return event_id, body


async def send_probe(
    outbound: Outbound, target: Target, event_type: str, *, timeout_s: float = PROBE_TIMEOUT_S
) -> ProbeResult:
    """POST a test event to ``target`` and say how the receiver answered (never raises for
    what the receiver or the network does)."""
    event_id, body = probe_event(event_type, target.name)
    status: int | None = None
    excerpt: str | None = None
    error: str | None = None
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            response = await send(
                outbound, target, event_id, body, extra_headers={TEST_HEADER: "1"}
            )
    except OutboundRefused as exc:
        error = f"refused: {exc.reason}"
    except OutboundError as exc:
        error = exc.reason
    except TimeoutError:
        error = f"no answer within {timeout_s:g} s"
    else:
        status = response.status_code
        excerpt = response.body[:MAX_EXCERPT_CHARS].decode(errors="replace")
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    latency_ms = round((time.monotonic() - started) * 1000, 1)
    ok = status is not None and 200 <= status < 300
    return ProbeResult(event_id, event_type, ok, status, latency_ms, error, excerpt)
