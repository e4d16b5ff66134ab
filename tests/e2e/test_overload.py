"""Overload: refusals are retryable, memory stays bounded, everything acknowledged is stored."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb

from e2e.harness import APPS, ServerProcess

LIMIT_MIB = 700
CONFIG = f"""
processors:
  memory_limiter: {{limit_mib: {LIMIT_MIB}, spike_limit_mib: 150, check_interval: 100ms}}
  batch: {{send_batch_max_size: 2000}}
exporters:
  duckdb:
    sending_queue: {{queue_size: 1000}}
"""


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_overload_refuses_retryably_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, CONFIG)
    server.start()
    assert server.proc is not None
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mib(server.proc.pid))  # type: ignore[union-attr]
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    outs = [tmp_path / f"load{i}.json" for i in range(3)]
    gens = [
        subprocess.Popen([sys.executable, str(APPS / "load_gen.py"), server.grpc, "5", "500", str(out)])
        for out in outs
    ]
    burst = subprocess.run(
        [sys.executable, str(APPS / "sdk_burst.py"), "3000"],
        env={**__import__("os").environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{server.grpc}",
             "OTEL_EXPORTER_OTLP_INSECURE": "true"},
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    for gen in gens:
        assert gen.wait(120) == 0
    stop.set()
    sampler.join()
    metrics = __import__("urllib.request").request.urlopen(f"{server.api}/metrics", timeout=10).read().decode()
    assert server.stop() == 0

    results = [json.loads(out.read_text()) for out in outs]
    acked = [sid for r in results for sid in r["acked"]]
    refused = sum(r["refused"] for r in results)
    assert refused > 0, "the load never hit the queue bound; the test proves nothing"
    assert all(not r["other_errors"] for r in results), results[0]["other_errors"]
    assert 'jobtrail_records_refused_total{signal="traces"}' in metrics

    burst_ids = json.loads(burst.stdout.strip().splitlines()[-1])
    con = duckdb.connect(str(server.db), read_only=True)
    con.execute("CREATE TEMP TABLE acked AS SELECT unnest(?::VARCHAR[]) AS span_id", [acked])
    missing, dupes = con.execute(
        """SELECT (SELECT count(*) FROM acked a ANTI JOIN spans s USING (span_id)),
                  (SELECT count(*) FROM (SELECT span_id FROM spans GROUP BY 1 HAVING count(*) > 1))"""
    ).fetchone()  # type: ignore[misc]
    assert missing == 0 and dupes == 0
    stored_burst = con.execute(
        "SELECT count(*) FROM jobs WHERE type = 'burst' AND id IN (SELECT unnest(?::VARCHAR[]))",
        [burst_ids],
    ).fetchone()
    assert stored_burst == (3000,), "the SDK's retries delivered every span"
    con.close()
    assert peak[0] < LIMIT_MIB, f"peak RSS {peak[0]:.0f} MiB over the {LIMIT_MIB} MiB limit"
