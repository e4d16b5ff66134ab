"""The agent never hurts the application, whatever its collector does.

A real application process runs jobs back to back through the agent (OTLP/gRPC exporters,
queue of 2048, 2 s shutdown bound) while the collector is absent at start (and appears
later), killed mid-job, slow (every answer delayed by seconds), refusing with UNAVAILABLE,
or a black hole (accepts TCP, never answers). Every job, step and log call is timed in the
application; nothing may raise, calls stay fast, memory stays bounded by the queue, drops
are counted (and the SDK's warning is not repeated per record), and the process exits
within the shutdown bound once the application is done.

tests/agent/test_resilience.py covers the in-process cases (raising exporters and
processors, queue overflow accounting, the unreachable-endpoint console fallback).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from reliability_support import APPS, wait_until

pytestmark = pytest.mark.e2e

RUN_S = 3.0
#: Bounds on every agent call the application makes (p99 and worst case, milliseconds).
P99_MS = float(os.environ.get("JOBTRAIL_AGENT_P99_MS", "5"))
MAX_MS = float(os.environ.get("JOBTRAIL_AGENT_MAX_MS", "250"))
#: Memory the application may gain while its collector misbehaves (the queues hold 2048).
RSS_GROWTH_MIB = 64
#: Interpreter exit after the application is done: the 2 s flush bound plus teardown.
EXIT_AFTER_DONE_S = 2.0 + 2.5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Collector:
    """A fake_collector.py process."""

    def __init__(self, tmp: Path, mode: str, port: int = 0) -> None:
        self.stats_file = tmp / f"collector-{mode.replace(':', '-')}.json"
        self.proc = subprocess.Popen(
            [sys.executable, str(APPS / "fake_collector.py"), mode, str(port), str(self.stats_file)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def stats(self) -> dict[str, int]:
        try:
            return dict(json.loads(self.stats_file.read_text()))
        except FileNotFoundError:
            return {"requests": 0, "spans": 0, "logs": 0}

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _run_app(
    tmp: Path, port: int, during: Any = None, until: Path | None = None
) -> tuple[dict[str, Any], float, str]:
    """Run the application; call ``during()`` 1 s into its run. With ``until``, the
    application goes on past ``RUN_S`` until that file exists (see agent_under_faults.py).
    Return its report, the time from 'done' to process exit, and its stderr."""
    err_path = tmp / "app.err"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if until is not None:
        env["RUN_UNTIL_FILE"] = str(until)
    with err_path.open("w") as err:
        app = subprocess.Popen(
            [sys.executable, str(APPS / "agent_under_faults.py"), f"127.0.0.1:{port}", str(RUN_S)],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env,
        )  # fmt: skip
        assert app.stdout is not None
        assert app.stdout.readline().strip() == "started"
        if during is not None:
            time.sleep(1.0)
            during()
        report = json.loads(app.stdout.readline())
        app.wait(30)
        exited_at = time.time()
        app.stdout.close()
    stderr = err_path.read_text()
    assert app.returncode == 0, stderr[-3000:]
    return report, exited_at - report["done_at"], stderr


def _check(report: dict[str, Any], exit_s: float, stderr: str, scenario: str) -> None:
    worst = {name: (c["p99_ms"], c["max_ms"]) for name, c in report["calls"].items()}
    rss = report["rss_mib"]
    stats = report["stats"]
    print(
        f"\n{scenario}: {report['jobs']} jobs; p99/max ms "
        + ", ".join(f"{n} {p:.3f}/{m:.1f}" for n, (p, m) in worst.items())
        + f"; rss {rss['start']:.0f}->{rss['peak']:.0f} MiB; exit {exit_s:.2f} s after done; "
        f"dropped spans {stats['spans_dropped']} logs {stats['logs_dropped']}, "
        f"failed spans {stats['spans_export_failed']} logs {stats['logs_export_failed']}"
    )
    assert report["app_errors"] == 0
    assert "Traceback" not in stderr, stderr[-3000:]
    for name, (p99, worst_ms) in worst.items():
        assert p99 < P99_MS, f"{name}: p99 {p99:.2f} ms"
        assert worst_ms < MAX_MS, f"{name}: max {worst_ms:.1f} ms"
    assert rss["peak"] - rss["start"] < RSS_GROWTH_MIB, rss
    assert exit_s < EXIT_AFTER_DONE_S, f"exit took {exit_s:.2f} s after the app was done"
    drop_lines = [line for line in stderr.splitlines() if "dropping" in line.lower()]
    assert len(drop_lines) <= 4, f"drops reported {len(drop_lines)} times"


def _lost(stats: dict[str, int]) -> int:
    return sum(
        stats[k]
        for k in ("spans_dropped", "logs_dropped", "spans_export_failed", "logs_export_failed")
    )


def test_collector_absent_at_start_then_appearing(tmp_path: Path) -> None:
    """Records reach a collector that starts after the application. The SDK's exporter
    retries a failed batch after about 1, 2, 4 and 8 s, so the application keeps running
    until the late collector has received spans (bounded), whatever the machine's speed."""
    port = _free_port()
    late: list[Collector] = []
    received = tmp_path / "received"

    def start_collector_and_wait() -> None:
        late.append(Collector(tmp_path, "ok", port))
        try:
            wait_until(lambda: late[0].stats()["spans"] > 0, 20, "records once the collector is up")
        finally:
            received.touch()

    try:
        report, exit_s, stderr = _run_app(tmp_path, port, start_collector_and_wait, received)
        _check(report, exit_s, stderr, "absent at start")
        assert report["stats"]["endpoint_reachable"] is False
        assert late[0].stats()["spans"] > 0
    finally:
        for collector in late:
            collector.kill()


def test_collector_killed_mid_job(tmp_path: Path) -> None:
    collector = Collector(tmp_path, "ok")
    try:
        report, exit_s, stderr = _run_app(tmp_path, collector.port, collector.kill)
    finally:
        collector.kill()
    _check(report, exit_s, stderr, "killed mid-job")
    assert collector.stats()["spans"] > 0 and report["stats"]["endpoint_reachable"] is True
    assert _lost(report["stats"]) > 0, "nothing was counted as lost after the kill"


@pytest.mark.parametrize("mode", ["slow:3", "unavailable", "blackhole"])
def test_collector_slow_refusing_or_silent(tmp_path: Path, mode: str) -> None:
    collector = Collector(tmp_path, mode)
    try:
        report, exit_s, stderr = _run_app(tmp_path, collector.port)
    finally:
        collector.kill()
    _check(report, exit_s, stderr, mode)
    assert _lost(report["stats"]) > 0, "the queue never overflowed: the test proves nothing"


@pytest.mark.skipif(not os.environ.get("JOBTRAIL_SOAK"), reason="set JOBTRAIL_SOAK=1 to soak")
def test_default_queue_with_a_slow_collector(tmp_path: Path) -> None:
    """The default queues (100 000 records and 32 MiB per signal) under a slow collector.
    Bounded by records alone they grew +120 MiB in 8 s with GC pauses of 300+ ms inside
    agent calls; the byte bound keeps them within these limits (see docs/reliability.md)."""
    collector = Collector(tmp_path, "slow:3")
    try:
        err_path = tmp_path / "app.err"
        with err_path.open("w") as err:
            done = subprocess.run(
                [sys.executable, str(APPS / "agent_under_faults.py"), f"127.0.0.1:{collector.port}",
                 "8", "100000"],
                stdout=subprocess.PIPE, stderr=err, text=True, timeout=60, check=True,
            )  # fmt: skip
        report = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        collector.kill()
    _check(report, 0.0, err_path.read_text(), "default queue, slow collector")
