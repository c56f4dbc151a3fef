"""The pipeline benchmark (``benchmarks/pipeline.py``, what ``ttlp bench`` runs) runs on tiny
numbers and prints its figures: the table with throughput, latency, SSE and RSS for each
backend, and a soak's lines. Figures are checked for being there and well-formed, never for
speed."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support.paths import REPO

pytestmark = pytest.mark.e2e

SCRIPT = REPO / "benchmarks" / "pipeline.py"
RUN_TIMEOUT_S = 240  # a hang guard: a run here takes ~50 s, more under a loaded suite
COUNT = r"\d[\d,]*"
MS = r"\d[\d,]*\.\d"
VERDICT = r" (met|missed)"
SOAK_LINE = re.compile(
    rf"^\s+{COUNT} s: +{COUNT} events committed, ingest → committed p50 +{MS} ms, p99 +{MS} ms; "
    rf"RSS +{MS} MB, peak +{MS} MB$",
    re.MULTILINE,
)


def bench(*args: str, cli: bool = False, **env: str) -> str:
    """``benchmarks/pipeline.py args`` (``ttlp bench args`` with ``cli``) → its output."""
    command = [sys.executable, "-m", "ttlp", "bench"] if cli else [sys.executable, str(SCRIPT)]
    done = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=REPO,
        env={**os.environ, **env},
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


def table(out: str, title: str) -> dict[str, list[str]]:
    """The summary table after ``== title``: row label → its cells (target, then backends)."""
    rows: dict[str, list[str]] = {}
    for line in out[out.index(f"== {title}") :].splitlines()[1:]:
        if line.startswith("|") and not line.startswith("|-"):
            label, *cells = (cell.strip() for cell in line.strip("|").split("|"))
            rows[label] = cells
    return rows


def assert_figures(rows: dict[str, list[str]], clients: int, events: int) -> None:
    """Every figure of the one backend's column is there and well-formed."""

    def value(label: str) -> str:
        return rows[label][1]

    assert re.fullmatch(
        rf"{COUNT} \((PostgreSQL|SQLite)\)", value("machine: batched INSERT, rows/s")
    )
    for encoding in ("protobuf", "JSON"):
        assert re.fullmatch(COUNT + VERDICT, value(f"throughput {encoding} frames, events/s"))
        assert re.fullmatch(r"\d+%", value(f"{encoding} ÷ batched INSERT rate"))
    rate = "at 1,000 frames/s"
    with_sse = f"{rate}, {clients} SSE clients"
    assert re.fullmatch(MS, value(f"ingest → committed p50 {rate}, ms"))
    assert re.fullmatch(MS + VERDICT, value(f"ingest → committed p99 {rate}, ms"))
    assert re.fullmatch(MS + VERDICT, value(f"ingest → committed p99 {with_sse}, ms"))
    assert re.fullmatch(MS, value(f"ingest → SSE client p50 {with_sse}, ms"))
    assert re.fullmatch(MS + VERDICT, value(f"ingest → SSE client p99 {with_sse}, ms"))
    expected = f"{clients * events:,}"
    assert value("SSE deliveries read / expected") == f"{expected} / {expected}"
    assert re.fullmatch(COUNT + VERDICT, value("peak RSS (VmHWM), MB"))
    assert re.fullmatch(COUNT + VERDICT, value("final RSS (VmRSS, roles running), MB"))


def test_the_benchmark_prints_every_figure_of_the_embedded_default() -> None:
    out = bench(
        "-n", "2000", "--latency-seconds", "2", "--sse-clients", "5", "--backend", "embedded"
    )
    rows = table(out, "Summary")
    assert rows[""][1:] == ["in-process bus + SQLite"]
    assert_figures(rows, clients=5, events=3000)  # 1,000 frames/s × (1 s warm-up + 2 s)


@pytest.mark.integration
def test_the_benchmark_prints_every_figure_on_redis_and_postgresql(
    redis_url: str, pg_admin_url: str
) -> None:
    out = bench(
        *("-n", "2000", "--latency-seconds", "1", "--sse-clients", "5", "--backend", "redis-pg"),
        TTLP_BENCH_REDIS_URL=redis_url,
        TTLP_BENCH_DATABASE_URL=pg_admin_url,
    )
    rows = table(out, "Summary")
    assert rows[""][1:] == ["Redis Streams + PostgreSQL"]
    assert_figures(rows, clients=5, events=2000)
    assert re.fullmatch(COUNT, rows["machine: Redis XADD, entries/s"][1])
    for encoding in ("protobuf", "JSON"):
        assert re.fullmatch(r"\d+%", rows[f"{encoding} ÷ Redis XADD rate"][1])


@pytest.mark.integration
def test_ttlp_bench_with_workers_runs_the_normalizer_in_a_worker_process(
    redis_url: str, pg_admin_url: str
) -> None:
    out = bench(
        *("-n", "2000", "--latency-seconds", "1", "--sse-clients", "5", "--backend", "redis-pg"),
        *("--workers", "2"),
        cli=True,
        TTLP_BENCH_REDIS_URL=redis_url,
        TTLP_BENCH_DATABASE_URL=pg_admin_url,
    )
    assert "on Redis TTLP_WORKERS=2: normalize runs in 1 worker process(es)" in out
    rows = table(out, "Summary")
    assert rows[""][1:] == ["Redis Streams + PostgreSQL, 2 processes"]
    assert_figures(rows, clients=5, events=2000)


def test_ttlp_bench_soak_prints_a_line_per_interval_and_the_rss_growth() -> None:
    out = bench(
        *("--soak", "6", "--soak-interval", "2", "--rate", "200", "--backend", "embedded"), cli=True
    )
    lines = SOAK_LINE.findall(out)
    assert len(lines) == 3, out
    rows = table(out, "Soak summary")
    assert re.fullmatch(MS, rows["RSS at the first interval, MB"][1])
    assert re.fullmatch(r"[+-]\d[\d,]*\.\d", rows["RSS growth, MB"][1])
    assert re.fullmatch(MS + VERDICT, rows["peak RSS (VmHWM), MB"][1])
