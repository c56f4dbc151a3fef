"""Every stream key and group name, in one place, under the configured prefix (DESIGN §3)."""

from __future__ import annotations

from typing import Final

import msgspec

RAW: Final = "ttlc:raw"
EVENTS: Final = "ttlc:events"
DLQ: Final = "ttlc:dlq"
CONTROL: Final = "ttlc:control"

# Consumer groups: (stream, group) pairs each role reads.
GROUP_NORMALIZER: Final = "normalizer"
GROUP_ARCHIVE: Final = "archive"
GROUP_STORAGE: Final = "storage"
GROUP_RULES: Final = "rules"
GROUP_FORWARDER: Final = "forwarder"
GROUP_INGEST: Final = "ingest"

# Stages: the ``stage`` of a ttlc:dlq entry, who gave up on it (each role's consume loop, and the
# forwarder's deliveries). `ttlp dlq --stage` and `GET /dlq?stage=` accept these only.
STAGES: Final = ("normalizer", "store", "rules", "forwarder", "ingest")


class Keys(msgspec.Struct, frozen=True):
    """Stream and group names with ``REDIS_CONSUMER_GROUP_PREFIX`` applied."""

    prefix: str = ""

    @property
    def raw(self) -> str:
        return self.prefix + RAW

    @property
    def events(self) -> str:
        return self.prefix + EVENTS

    @property
    def dlq(self) -> str:
        return self.prefix + DLQ

    @property
    def control(self) -> str:
        return self.prefix + CONTROL

    def group(self, name: str) -> str:
        return self.prefix + name

    @property
    def streams(self) -> tuple[str, ...]:
        return (self.raw, self.events, self.dlq, self.control)

    def lease(self, unique_id: str) -> str:
        """Key of the lease that says which ingest replica holds a streamer."""
        return f"{self.prefix}ttlc:lease:{unique_id}"

    @property
    def ingest_status(self) -> str:
        """Hash of ingest's reports: one field per watched streamer (``ttlp.tiktok.status``)."""
        return f"{self.prefix}ttlc:ingest:status"

    def consumer_name(self, name: str) -> str:
        """Key of the lease that says which live process uses a consumer name."""
        return f"{self.prefix}ttlc:consumer:{name}"
