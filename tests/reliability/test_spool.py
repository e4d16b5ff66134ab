"""The agent's disk spool: a job recorded while the collector is down arrives once it is back.

Real processes throughout: the application (``apps/spool_app.py``, the agent with
``spool_dir``) records a job while nothing listens on its collector's port and exits; then
a real ``jobtrail serve`` starts, and a second application process on the same spool
directory sends what the first one left. The job is then complete through the API, with its
steps and log lines, exactly once. Sending the same spooled requests again (as after a
replay interrupted between the send and the removal of the file) stores nothing twice: the
collector recognises each request's digest. A second test keeps one application running
while the collector comes back: its spool drains by itself, in order, behind which new
records follow.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from e2e.harness import ServerProcess
from reliability_support import APPS, wait_until

from jobtrail.agent._config import resolve_config
from jobtrail.agent._otlp_sender import OtlpSender, SendResult
from jobtrail.agent._spool import Spool
from jobtrail.agent._stats import Counters

pytestmark = pytest.mark.e2e

APP = APPS / "spool_app.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _app(*args: str, timeout_s: float = 60) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(APP), *args], capture_output=True, text=True, timeout=timeout_s,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _spooled(spool: Path) -> list[Path]:
    return sorted(p for p in spool.iterdir() if p.suffix == ".otlp")


def _job_state(server: ServerProcess, job_id: str) -> tuple[str, list[str], list[str]]:
    job = server.get(f"/api/jobs/{job_id}")
    job = job.get("job", job)
    logs = server.get(f"/api/jobs/{job_id}/logs")["logs"]
    steps = [f"{s['name']}:{s['status']}" for s in job["steps"]]
    return job["status"], steps, sorted(entry["message"] for entry in logs)


def _assert_complete(server: ServerProcess, job_id: str) -> None:
    status, steps, messages = _job_state(server, job_id)
    assert status == "completed"
    assert steps == [f"step {s}:completed" for s in range(3)]
    expected = sorted(f"{job_id} step {s} line {k}" for s in range(3) for k in range(5))
    assert [m for m in messages if m.startswith(job_id)] == expected


def test_job_recorded_while_the_collector_is_down_arrives_later(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    nowhere = f"127.0.0.1:{_free_port()}"  # nothing listens there
    started = time.monotonic()
    recorded = _app("record", nowhere, str(spool), "offline")
    record_s = time.monotonic() - started
    files = _spooled(spool)
    assert files, "nothing was spooled"
    spooled_bytes = sum(p.stat().st_size for p in files)
    assert recorded["spooled"] > 0 and recorded["spans_exported"] == recorded["logs_exported"] == 0
    backup = tmp_path / "backup"
    shutil.copytree(spool, backup)

    server = ServerProcess(tmp_path)
    server.start()
    try:
        started = time.monotonic()
        replayed = _app("replay", server.grpc, str(spool))
        replay_s = time.monotonic() - started
        assert replayed["spool_replayed"] == recorded["spooled"], replayed
        assert _spooled(spool) == []
        _assert_complete(server, "offline")
        before = _job_state(server, "offline")
        spans_before = server.get("/api/traces/" + server.get("/api/jobs/offline")["trace_id"])

        # The same requests again, as if a replay had stopped between sending and removing.
        for path in _spooled(backup):
            shutil.copy(path, spool / path.name)
        again = _app("replay", server.grpc, str(spool))
        assert again["spool_replayed"] == recorded["spooled"]
        assert _spooled(spool) == []
        assert _job_state(server, "offline") == before, "a replayed request was stored twice"
        spans_after = server.get("/api/traces/" + server.get("/api/jobs/offline")["trace_id"])
        assert len(spans_after["spans"]) == len(spans_before["spans"]) == 4
    finally:
        server.stop()
    print(
        f"\nspool: {len(files)} requests ({spooled_bytes} bytes, "
        f"{recorded['spooled']} records) written in a {record_s:.1f} s run with the collector "
        f"down; replayed by the next process in {replay_s:.1f} s; replayed twice, stored once"
    )


def _fixed_port_server(tmp: Path, grpc_port: int) -> subprocess.Popen[str]:
    """``jobtrail serve`` on a given gRPC port (where the application already points)."""
    ready = tmp / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobtrail", "serve", "--db", str(tmp / "fixed.duckdb"),
         "--grpc-port", str(grpc_port), "--http-port", "0", "--api-port", "0",
         "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    wait_until(ready.exists, 30, "the server to be ready")
    return proc


def test_spool_drains_by_itself_when_the_collector_comes_back(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    port = _free_port()
    app = subprocess.Popen(
        [sys.executable, str(APP), "live", f"127.0.0.1:{port}", str(spool), "back"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    server: subprocess.Popen[str] | None = None
    try:
        assert app.stdout is not None and app.stdin is not None
        assert app.stdout.readline().strip() == "recorded"
        wait_until(lambda: len(_spooled(spool)) >= 2, 15, "the first job's requests on disk")
        server = _fixed_port_server(tmp_path, port)
        started = time.monotonic()
        app.stdin.write("go\n")
        app.stdin.flush()
        out, err = app.communicate(timeout=60)
        drain_s = time.monotonic() - started
        assert app.returncode == 0, err[-3000:]
        stats = json.loads(out.strip().splitlines()[-1])
        assert _spooled(spool) == []
        assert stats["spool_replayed"] == stats["spooled"] > 0, stats
        api = json.loads((tmp_path / "ready.json").read_text())["api"]
        view = ServerProcess(tmp_path)
        view.api = api
        for job_id in ("back-1", "back-2"):
            _assert_complete(view, job_id)
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()
        if server is not None:
            server.terminate()
            server.wait(30)
    print(f"\nspool drained by the running application in {drain_s:.1f} s: {stats}")


class _Unreachable(OtlpSender):
    """A collector that never answers: every send is to be retried later."""

    def __init__(self) -> None:
        super().__init__(resolve_config(endpoint="127.0.0.1:9"))
        self.sent: list[bytes] = []

    def send(self, signal: str, payload: bytes) -> SendResult:
        self.sent.append(payload)
        return SendResult.RETRY


def test_spool_is_capped_and_drops_the_oldest(tmp_path: Path) -> None:
    """The directory never holds more than its cap: the oldest requests go first, counted
    (records, from the file names) and warned about; what is left replays in order."""
    counters = Counters()
    spool = Spool(tmp_path / "spool", 4096, _Unreachable(), counters)
    for i in range(10):
        spool.append("logs" if i % 2 else "traces", bytes([i]) * 1000, records=i + 1)
    files = _spooled(tmp_path / "spool")
    assert sum(p.stat().st_size for p in files) <= 4096 and len(files) == 4
    assert [p.read_bytes()[0] for p in files] == [6, 7, 8, 9]  # the newest, in order
    stats = counters.snapshot()
    assert stats.spooled == sum(range(1, 11))
    assert stats.spool_dropped == sum(range(1, 7))  # requests 0-5 had 1..6 records
    spool.append("traces", b"x" * 5000, records=3)  # larger than the cap: never written
    assert counters.snapshot().spool_dropped == sum(range(1, 7)) + 3
    assert len(_spooled(tmp_path / "spool")) == 4

    replayed: list[bytes] = []

    class Back(_Unreachable):
        def send(self, signal: str, payload: bytes) -> SendResult:
            replayed.append(payload)
            return SendResult.SENT

    later = Spool(tmp_path / "spool", 4096, Back(), counters)  # the next process
    assert later.pending == 4 and later.replay()
    assert [p[0] for p in replayed] == [6, 7, 8, 9] and _spooled(tmp_path / "spool") == []
    assert counters.snapshot().spool_replayed == 7 + 8 + 9 + 10
