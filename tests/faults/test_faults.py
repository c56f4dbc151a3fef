"""Real faults while ``ttlp run`` carries traffic (issue 11): nothing stops, nothing is lost.

Each scenario runs ttlp on a Redis server and a PostgreSQL role of its own (tests.support.faults)
with the mock provider publishing a fixture of ``FRAMES`` frames at ``RATE`` frames/s, breaks a
dependency while traffic flows, mends it, and then checks what matters:

- every process is still running;
- ``/health`` answered 503 during the fault and 200 again after it;
- after the drain: frames published (``XLEN ttlc:raw``, the stream is never trimmed here) =
  frames of the fixture + poison entries injected; ``raw_frames`` rows = ``events`` rows =
  valid frames; every poison entry is a dead letter with its real reason; no ``MAX_DELIVERIES``
  letter (an outage must not spend deliveries); no duplicate rows.

The figures (frames, lost, duplicated, seconds to recover) are printed and appended to
``tests/faults/artifacts/figures.jsonl``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from tests.support.faults import (
    FaultPostgres,
    FaultRedis,
    HealthWatch,
    dead_letters,
    fault_fixture,
    stream_entries,
    wait_until,
)
from tests.support.processes import Ttlp

pytestmark = [pytest.mark.integration, pytest.mark.faults]

FRAMES: Final = 12_000
RATE: Final = 500
OUTAGE_S: Final = 12.0
ARTIFACTS: Final = Path(__file__).parent / "artifacts"
SPLIT: Final = (
    ("ingest",),
    ("normalize",),
    ("normalize",),  # a second replica: the same host, so a distinct default consumer name
    ("store",),
    ("api",),
)


@dataclass
class Pipeline:
    ttlp: Ttlp
    redis: FaultRedis
    pg: FaultPostgres
    prefix: str
    procs: list[subprocess.Popen[bytes]]
    health: HealthWatch

    def published(self) -> int:
        out = self.redis.cli("XLEN", f"{self.prefix}ttlc:raw")
        return int(out) if out.isdigit() else -1

    def rows(self, table: str) -> int:
        return self.pg.scalar(f"SELECT count(*) FROM {table}")

    def alive(self) -> list[str]:
        """What is wrong with the processes: [] when every one is running."""
        return [
            f"process {i} exited {p.returncode}: …{self.ttlp.log_of(p)[-1500:]}"
            for i, p in enumerate(self.procs)
            if p.poll() is not None
        ]


def start(
    ttlp: Ttlp,
    redis: FaultRedis,
    pg: FaultPostgres,
    key_prefix: str,
    tmp_path: Path,
    *,
    split: bool,
) -> Pipeline:
    fixture = fault_fixture(tmp_path / "fault-frames.ndjson", FRAMES)
    ttlp.env.update(
        {
            "REDIS_URL": redis.url,
            "DATABASE_URL": pg.url,
            "INGEST_PROVIDER": "mock",
            "MOCK_FIXTURE": str(fixture),
            "MOCK_RATE": str(RATE),
            "MOCK_LOOP": "false",
            "STREAM_MAXLEN": "10000000",
            "CLAIM_IDLE_MS": "5000",
            "CLAIM_INTERVAL_S": "1",
        }
    )
    del ttlp.env["CONSUMER_NAME"]  # the default: the host name, distinct per process
    migrated = ttlp.run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    groups = SPLIT if split else (("all",),)
    procs = [ttlp.start("run", "--roles", ",".join(roles)) for roles in groups]
    health = HealthWatch(f"http://127.0.0.1:{ttlp.env['API_PORT']}/health")
    health.start()
    pipeline = Pipeline(ttlp, redis, pg, key_prefix, procs, health)
    wait_until(lambda: health.last() == 200, "/health answers 200", timeout=60)
    wait_until(lambda: pipeline.rows("events") > 1000, "events are stored", timeout=60)
    return pipeline


def settle(pipeline: Pipeline, poison: int, name: str) -> dict[str, object]:
    """Wait for the drain, then check every promise of the module docstring."""
    expected = FRAMES + poison
    try:
        wait_until(lambda: pipeline.health.last() == 200, "/health is 200 again", timeout=90)
        wait_until(
            lambda: pipeline.published() >= expected, "the fixture is all published", timeout=120
        )
        wait_until(
            lambda: pipeline.rows("events") >= FRAMES and pipeline.rows("raw_frames") >= FRAMES,
            "every frame is archived and stored",
            timeout=180,
        )
        assert pipeline.alive() == []
    finally:
        pipeline.health.stop()
    raw = stream_entries(pipeline.redis, f"{pipeline.prefix}ttlc:raw")
    published = len({(f.get("sessionId"), f.get("type"), f.get("seqNo")) for _, f in raw})
    raw_rows, events = pipeline.rows("raw_frames"), pipeline.rows("events")
    duplicated = pipeline.pg.scalar(
        "SELECT count(*) - count(DISTINCT (session_id, type, seq_no)) FROM raw_frames"
    ) + pipeline.pg.scalar("SELECT count(*) - count(DISTINCT event_id) FROM events")
    letters = dead_letters(pipeline.redis, pipeline.prefix)
    # Publishing and dead-lettering are at least once: an XADD whose answer was lost in the
    # outage is sent again, and a dead letter whose ack was lost is written again by the
    # replica that claims the entry. The database keeps each frame and event once.
    by_source = {d["sourceId"]: d for d in letters}
    figures: dict[str, object] = {
        "scenario": name,
        "frames": FRAMES,
        "poison": poison,
        "published": published,
        "sent_again_after_an_outage": len(raw) - published,
        "raw_frames": raw_rows,
        "events": events,
        "lost": FRAMES - min(raw_rows, events),
        "duplicated_rows": duplicated,
        "dead_letters": dict(Counter(f"{d['stage']}:{d['reason']}" for d in by_source.values())),
        "dead_letters_written_again": len(letters) - len(by_source),
        "recovery_s": round(pipeline.health.recovery_s(), 1)
        if pipeline.health.went_down_and_up()
        else None,
    }
    print(json.dumps(figures))
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / "figures.jsonl").open("a") as out:
        out.write(json.dumps(figures) + "\n")
    assert pipeline.health.went_down_and_up(), pipeline.health.seen[-20:]
    assert published == expected
    assert (raw_rows, events, duplicated) == (FRAMES, FRAMES, 0)
    assert [d for d in letters if d["reason"] == "MAX_DELIVERIES"] == []
    assert len(by_source) == poison, letters
    return figures


def fault_for(
    pipeline: Pipeline, seconds: float, begin: Callable[[], None], end: Callable[[], None]
) -> None:
    begin()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert pipeline.alive() == []  # nothing exits while the dependency is away
            time.sleep(0.5)
    finally:
        end()


def inject_poison(redis: FaultRedis, prefix: str) -> int:
    """Three entries no consumer can process: bytes that are not UTF-8, an impossible date, and
    data that is not JSON. Each must reach the DLQ with its reason; none may stop anything."""
    stream = f"{prefix}ttlc:raw"
    common = [
        "schemaVersion", "raw.v1", "streamId", "7", "sessionId",
        "00000000-0000-4000-8000-00000000f00d", "source", "live", "type", "WebcastChatMessage",
        "ingestedAt", "2024-11-21T19:30:00.000Z",
    ]  # fmt: skip
    subprocess.run(
        ["redis-cli", "-p", str(redis.port), "-x", "XADD", stream, "*", *common, "seqNo", "1",
         "timestamp", "2024-11-21T19:30:00.000Z", "data"],
        input=b'{"content":"\xff\xfe"}',
        check=True,
        capture_output=True,
    )  # fmt: skip
    redis.cli("XADD", stream, "*", *common, "seqNo", "2", "timestamp", "2024-13-45T99:99:99Z",
              "data", '{"content":"when?"}')  # fmt: skip
    redis.cli("XADD", stream, "*", *common, "seqNo", "3", "timestamp",
              "2024-11-21T19:30:00.000Z", "data", "{not json")  # fmt: skip
    return 3


FAULTS: Final = {
    "redis-stop": (lambda redis, pg: redis.stop, lambda redis, pg: redis.start),
    "redis-freeze": (lambda redis, pg: redis.freeze, lambda redis, pg: redis.thaw),
    "postgres-refuse": (lambda redis, pg: pg.refuse, lambda redis, pg: pg.accept),
}


@pytest.mark.parametrize(
    ("fault", "split", "poison"),
    [
        pytest.param("redis-stop", False, False, id="redis-stop-all-roles"),
        pytest.param("postgres-refuse", False, False, id="postgres-refuse-all-roles"),
        pytest.param("redis-freeze", True, True, id="redis-freeze-poison-split-roles"),
        pytest.param("postgres-refuse", True, False, id="postgres-refuse-split-roles"),
    ],
)
def test_a_fault_pauses_the_pipeline_and_loses_nothing(
    fault: str,
    split: bool,
    poison: bool,
    ttlp: Ttlp,
    fault_redis: FaultRedis,
    fault_pg: FaultPostgres,
    key_prefix: str,
    tmp_path: Path,
) -> None:
    pipeline = start(ttlp, fault_redis, fault_pg, key_prefix, tmp_path, split=split)
    injected = inject_poison(fault_redis, key_prefix) if poison else 0
    begin, end = (make(fault_redis, fault_pg) for make in FAULTS[fault])
    fault_for(pipeline, OUTAGE_S, begin, end)
    topology = "ingest|normalize×2|store|api" if split else "--roles all"
    figures = settle(pipeline, injected, f"{fault}{' + poison' if poison else ''}, {topology}")
    if poison:
        assert figures["dead_letters"] == {
            "normalizer:ENCODING_ERROR": 1,
            "normalizer:VALIDATION_ERROR": 1,
            "normalizer:PARSE_ERROR": 1,
        }
