"""The agent's export queues are bounded by bytes, not only by records.

A real application process logs large records (2 KB of unique text each) as fast as it can
through the agent's OTLP/gRPC exporters, while its collector answers every export only
after 3 s (``tests/reliability/apps/fake_collector.py``), so the queues fill. With the
default record bound (100,000 per signal) and a byte bound of 8 MiB per signal, the queued
bytes never pass the bound, memory stays near it, the drops are counted and reported once,
and no call blocks. The same run without a byte bound grows by far more: the test would
notice a bound that does nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobtrail.agent import Agent

COLLECTOR = Path(__file__).parents[1] / "reliability" / "apps" / "fake_collector.py"
BOUND_MIB = 8
RECORDS = 40_000

#: The application: jobs whose log lines carry 2 KB of unique text; it samples its RSS and
#: the processors' queued bytes every 500 records and prints one JSON report.
APP = r"""
import dataclasses, json, os, sys, time
from jobtrail.agent import Agent

_PAGE = os.sysconf("SC_PAGE_SIZE")
def rss_mib():
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20

endpoint, records, bound_mib = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
agent = Agent()
agent.configure(endpoint=endpoint, service_name="memory-bound", max_queue_mib=bound_mib,
                log_export_delay_ms=100, span_export_delay_ms=100, heartbeat_interval_s=0,
                capture_logging=False, shutdown_timeout_s=1)
pipeline = agent._state.pipeline
processors = [pipeline.tracer_provider._active_span_processor._span_processors[0],
              pipeline.logger_provider._multi_log_record_processor._log_record_processors[0]]
with agent.job("warm-up", type="memory") as job:
    job.info("warm")
time.sleep(0.3)
start = rss_mib()
peak, queued, slowest, done = start, [0, 0], 0.0, 0
while done < records:
    with agent.job("big logs", type="memory") as job:
        for _ in range(100):
            t0 = time.perf_counter()
            job.info("line", payload=os.urandom(1000).hex())
            slowest = max(slowest, time.perf_counter() - t0)
            done += 1
            if done % 500 == 0:
                peak = max(peak, rss_mib())
                queued = [max(q, p.queued_bytes) for q, p in zip(queued, processors)]
print(json.dumps({"rss_start": start, "rss_peak": peak, "queued_max": queued,
                  "slowest_ms": slowest * 1000, "stats": dataclasses.asdict(agent.stats())}),
      flush=True)
os._exit(0)  # the collector is slow on purpose: skip the bounded flush at exit
"""


def _run(tmp_path: Path, port: int, bound_mib: float) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-c", APP, f"127.0.0.1:{port}", str(RECORDS), str(bound_mib)],
        capture_output=True, text=True, timeout=90, check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.fixture
def slow_collector(tmp_path: Path) -> Any:
    proc = subprocess.Popen(
        [sys.executable, str(COLLECTOR), "slow:3", "0", str(tmp_path / "collector.json")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    yield port
    proc.kill()
    proc.wait(10)
    proc.stdout.close()


def test_queues_stay_under_the_byte_bound_with_a_slow_collector(
    tmp_path: Path, slow_collector: int
) -> None:
    bounded, stderr = _run(tmp_path, slow_collector, BOUND_MIB)
    unbounded, _ = _run(tmp_path, slow_collector, 4096)
    growth = bounded["rss_peak"] - bounded["rss_start"]
    free_growth = unbounded["rss_peak"] - unbounded["rss_start"]
    stats = bounded["stats"]
    print(
        f"\n{RECORDS} log records of ~2.9 KB (estimated) against a collector answering after 3 s:"
        f" bound {BOUND_MIB} MiB/signal -> queued max "
        f"{[round(q / 2**20, 1) for q in bounded['queued_max']]} MiB, RSS +{growth:.0f} MiB, "
        f"logs dropped {stats['logs_dropped']}, slowest call {bounded['slowest_ms']:.1f} ms; "
        f"no byte bound -> queued max "
        f"{[round(q / 2**20, 1) for q in unbounded['queued_max']]} MiB, RSS +{free_growth:.0f} MiB"
    )
    assert max(bounded["queued_max"]) <= BOUND_MIB * 2**20
    assert bounded["queued_max"][1] > BOUND_MIB * 2**20 * 0.8, "the bound was never reached"
    assert growth < 3 * BOUND_MIB + 16, f"RSS grew {growth:.0f} MiB under a {BOUND_MIB} MiB bound"
    assert free_growth > 2 * growth, "without the byte bound memory grew as little: no evidence"
    assert stats["logs_dropped"] > RECORDS // 2
    assert bounded["slowest_ms"] < 250
    warnings = [line for line in stderr.splitlines() if "export queue is full" in line]
    assert len(warnings) == 1, stderr[-2000:]


class _HeldLogExporter(LogRecordExporter):
    """Holds its first export until released; records every body it was given."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.bodies: list[str] = []

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        self.entered.set()
        self.release.wait(10)
        self.bodies.extend(str(r.log_record.body) for r in batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def test_byte_bound_drops_the_oldest_and_accounts_exactly() -> None:
    """In process: the queue never passes its bytes, the oldest records go first (the batch
    held by the exporter stays: it is in flight), and once everything is exported the
    accounting is back at exactly zero (no drift)."""
    exporter = _HeldLogExporter()
    agent = Agent()
    agent.configure(
        span_exporter=InMemorySpanExporter(), log_exporter=exporter, max_queue_mib=8,
        log_export_delay_ms=60_000, capture_logging=False, heartbeat_interval_s=0,
    )  # fmt: skip
    processor = (
        agent._state.pipeline.logger_provider._multi_log_record_processor._log_record_processors[0]
    )  # type: ignore[union-attr]  # noqa: SLF001
    largest = 0
    with agent.job("big", type="memory") as job:
        for i in range(6000):
            job.info(f"line {i}", payload=os.urandom(1000).hex())
            largest = max(largest, processor.queued_bytes)
            if i == 600:  # a full batch went to the exporter, which now holds it
                assert exporter.entered.wait(5)
    exporter.release.set()
    assert agent.force_flush(timeout_s=10)
    stats = agent.stats()
    assert largest <= 8 * 2**20
    assert processor.queued_bytes == 0, "bytes left after everything was exported"
    assert stats.logs_dropped > 2000
    assert stats.logs_exported + stats.logs_dropped == 6001  # + job.started
    assert "line 5999" in exporter.bodies and "line 100" in exporter.bodies  # newest, in flight
    assert "line 1500" not in exporter.bodies  # the oldest of the queue went first
    agent.shutdown(timeout_s=2)
