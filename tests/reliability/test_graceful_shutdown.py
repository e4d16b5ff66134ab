"""Graceful shutdown: SIGTERM/SIGINT under load drain, commit, checkpoint and exit 0.

A second signal during a long drain exits at once; the file still opens and holds everything
that was acknowledged (an acknowledgement is only ever sent after the commit).
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from e2e.harness import ServerProcess
from reliability_support import APPS, kill, read_every_block, wait_until

from jobtrail import server as server_module
from jobtrail.config import ServerConfig
from jobtrail.storage import Database

pytestmark = pytest.mark.e2e

#: One request per group commit and a queue that never refuses: a deep backlog to drain.
BIG_QUEUE = """
processors:
  batch: {send_batch_max_size: 10}
exporters:
  duckdb:
    sending_queue: {queue_size: 5000000, max_mib: 4096}
"""
GRACEFUL_EXIT_S = 20.0
SECOND_SIGNAL_EXIT_S = 2.0


def _flood(
    server: ServerProcess, tmp: Path, procs: int, threads: int
) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [
                sys.executable,
                str(APPS / "flood.py"),
                server.grpc,
                str(tmp / f"flood-{i}.jsonl"),
                "60",
                str(threads),
                "10",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(procs)
    ]


def _finish(floods: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    summaries = []
    for proc in floods:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    return summaries


def _acked(tmp: Path) -> list[str]:
    return [
        s for f in sorted(tmp.glob("flood-*.jsonl")) for line in f.open() for s in json.loads(line)
    ]


def _acked_requests(tmp: Path) -> int:
    return sum(f.read_bytes().count(b"\n") for f in tmp.glob("flood-*.jsonl"))


def _queue_records(server: ServerProcess) -> int:
    with urllib.request.urlopen(f"{server.api}/metrics", timeout=10) as resp:  # noqa: S310
        text = resp.read().decode()
    match = re.search(r"^jobtrail_queue_records (\S+)$", text, re.M)
    assert match is not None
    return int(float(match.group(1)))


def _check_file(db_path: Path, acked: list[str]) -> dict[str, int]:
    db = Database(db_path)
    try:
        con = db.cursor()
        counts = read_every_block(con)
        con.execute("CREATE TEMP TABLE acked AS SELECT unnest(?::VARCHAR[]) AS id", [acked])
        missing, dupes = con.execute(
            """SELECT (SELECT count(*) FROM acked a ANTI JOIN spans s ON s.span_id = a.id),
                      (SELECT count(*) FROM (SELECT 1 FROM spans GROUP BY span_id
                                             HAVING count(*) > 1))"""
        ).fetchone()  # type: ignore[misc]
    finally:
        db.close()
    assert missing == 0, f"{missing} of {len(acked)} acknowledged spans are missing"
    assert dupes == 0
    return counts


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_under_load_drains_checkpoints_and_exits_0(tmp_path: Path, sig: int) -> None:
    server = ServerProcess(tmp_path, BIG_QUEUE)
    server.start()
    floods = _flood(server, tmp_path, procs=2, threads=16)
    try:
        wait_until(lambda: _acked_requests(tmp_path) >= 50, 60, "load to flow")
        queued = _queue_records(server)
        started = time.monotonic()
        assert server.proc is not None
        server.proc.send_signal(sig)
        code = server.proc.wait(GRACEFUL_EXIT_S)
        exit_s = time.monotonic() - started
        server.log.close()
        server.proc = None
        summaries = _finish(floods)
    finally:
        for proc in floods:
            proc.kill()
        if server.proc is not None:
            kill(server)
    assert code == 0, (tmp_path / "server.log").read_text()[-3000:]
    assert not Path(f"{server.db}.wal").exists(), "closed without a final checkpoint"
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    acked = _acked(tmp_path)
    counts = _check_file(server.db, acked)
    errors = {
        k: sum(s["errors"].get(k, 0) for s in summaries) for s in summaries for k in s["errors"]
    }
    print(
        f"\n{signal.Signals(sig).name}: exit 0 in {exit_s:.2f} s with {queued} records queued; "
        f"{len(acked)} acked spans all stored ({counts['spans']} stored); client errors {errors}"
    )


def test_second_signal_during_a_long_drain_exits_at_once(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, BIG_QUEUE)
    server.start()
    floods = _flood(server, tmp_path, procs=3, threads=64)
    try:
        # A backlog of hundreds of one-request commits: the drain takes seconds.
        wait_until(lambda: _queue_records(server) >= 1500, 60, "a deep write queue")
        queued = _queue_records(server)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert server.proc.poll() is None, "the drain ended within 1 s: too short to interrupt"
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(10)
        exit_s = time.monotonic() - started
        server.log.close()
        server.proc = None
        _finish(floods)
    finally:
        for proc in floods:
            proc.kill()
        if server.proc is not None:
            kill(server)
    assert code == 130
    assert exit_s < SECOND_SIGNAL_EXIT_S, f"second signal took {exit_s:.2f} s"
    log = (tmp_path / "server.log").read_text()
    assert "second signal: exiting now" in log and "Traceback" not in log, log[-3000:]
    acked = _acked(tmp_path)
    counts = _check_file(server.db, acked)  # opens cleanly, holds every acknowledged span
    print(
        f"\nsecond signal: exit {code} in {exit_s:.3f} s, {queued} records were queued at the "
        f"first; {len(acked)} acked spans all stored ({counts['spans']} stored)"
    )


_SLOW_DRAIN = """
import asyncio, sys
sys.path.insert(0, {tests!r})
from otlp_build import new_span_id, new_trace_id, span, traces_request
from jobtrail.collector.decode import decode_traces
from jobtrail.storage import Database
from jobtrail.storage.writer import BatchWriter


async def main():
    db = Database({db!r})
    writer = BatchWriter(db, max_group_records=1)
    writer.start()
    jobs = [{{"job.type": "drain", "job.id": f"j{{i}}"}} for i in range(400)]
    batches = [decode_traces(traces_request([span(new_trace_id(), new_span_id(), "j", a)])).batch
               for a in jobs]
    pending = [asyncio.ensure_future(writer.write(b)) for b in batches]
    await asyncio.sleep(0.1)
    # serve()'s shutdown: close() waits for the whole drain, and only then is the file closed
    if await asyncio.to_thread(writer.close):
        db.close()
    print("closed", flush=True)


asyncio.run(main())
"""


def test_drain_longer_than_the_close_bound_never_closes_under_the_writer(tmp_path: Path) -> None:
    db = tmp_path / "drain.duckdb"
    tests = str(Path(__file__).parents[1])
    done = subprocess.run(
        [sys.executable, "-c", _SLOW_DRAIN.format(tests=tests, db=str(db))],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and "closed" in done.stdout, done.stderr[-2000:]
    Database(db).close()  # and the file opens afterwards


async def test_final_checkpoint_runs_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last ``db.close()`` (the checkpoint) may take seconds on a big file; meanwhile the
    loop must stay responsive, so a second signal still exits at once. A checkpoint made to
    take 1 s must not stall a 20 ms ticker on the loop."""
    closing: dict[str, float] = {}
    real_close = Database.close

    def slow_close(self: Database) -> None:
        closing["start"] = time.monotonic()
        closing["on_loop_thread"] = threading.current_thread() is threading.main_thread()
        time.sleep(1.0)
        real_close(self)
        closing["end"] = time.monotonic()

    monkeypatch.setattr(Database, "close", slow_close)
    cfg = ServerConfig(db_path=str(tmp_path / "slow.duckdb"), grpc_port=0, http_port=0, api_port=0)
    stop = asyncio.Event()
    ready = tmp_path / "ready.json"
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.02)

    serving = asyncio.create_task(server_module.serve(cfg, ready_file=str(ready), stop=stop))
    ticking = asyncio.create_task(ticker())
    try:
        for _ in range(500):
            if ready.exists():
                break
            await asyncio.sleep(0.02)
        assert ready.exists(), "the server did not start"
        stop.set()
        await asyncio.wait_for(serving, 30)
    finally:
        ticking.cancel()
        serving.cancel()
    assert closing.get("on_loop_thread") is False, "the final checkpoint ran on the loop thread"
    during = [t for t in ticks if closing["start"] <= t <= closing["end"]]
    gaps = [b - a for a, b in zip(during, during[1:], strict=False)]
    assert len(during) >= 20 and max(gaps) < 0.25, f"loop stalled: {len(during)} ticks in 1 s"
    assert not Path(f"{cfg.db_path}.wal").exists()
