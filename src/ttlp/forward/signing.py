"""The forwarder's request signature, so receivers can tell a delivery came from ttlp.

Every delivery is a ``POST`` of the UnifiedEvent JSON (``Content-Type: application/json``) with::

    X-TTLP-Event-Id:  <eventId>
    X-TTLP-Timestamp: <unix seconds, an integer, when this attempt was sent>
    X-TTLP-Signature: sha256=<hex HMAC-SHA256(key=secret, msg=f"{timestamp}.{body}")>

``body`` is the exact request body bytes, ``timestamp`` the header value as sent (ASCII
digits), the key the target's secret as UTF-8. A receiver recomputes the HMAC over
``timestamp + "." + body``, compares in constant time, and rejects timestamps older than a few
minutes (replay protection); a retried delivery carries a fresh timestamp and signature.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_PREFIX = "sha256="
SECRET_BYTES = 32


def new_secret() -> str:
    """A random target secret (URL-safe text, 256 bits)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """``sha256=<hex>`` over ``f"{timestamp}.{body}"`` keyed with ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def signed_headers(
    secret: str, event_id: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """The headers of one delivery attempt."""
    timestamp = str(int(time.time() if now is None else now))
    return {
        "Content-Type": "application/json",
        "X-TTLP-Event-Id": event_id,
        "X-TTLP-Timestamp": timestamp,
        "X-TTLP-Signature": signature(secret, timestamp, body),
    }


def verify(secret: str, headers: dict[str, str], body: bytes, *, max_age_s: float = 300) -> bool:
    """What a receiver does (used by the tests, and an example): check signature and age.

    ``headers`` keys are matched case-insensitively.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp = lower.get("x-ttlp-timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > max_age_s:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected, lower.get("x-ttlp-signature", ""))
