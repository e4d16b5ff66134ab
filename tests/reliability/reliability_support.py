"""Helpers shared by the reliability tests: load clients, kills, and what was acknowledged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from e2e.harness import ServerProcess

APPS = Path(__file__).parent / "apps"


def kill(server: ServerProcess, sig: int = signal.SIGKILL) -> int:
    """Send ``sig`` to the server and reap it (SIGKILL: no handler runs, nothing is flushed)."""
    assert server.proc is not None
    server.proc.send_signal(sig)
    try:
        return server.proc.wait(30)
    finally:
        server.log.close()
        server.proc = None


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` every 20 ms; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Clients:
    """Several ``crash_client.py`` processes sending to the server named by its ready file."""

    tmp: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    outs: list[Path] = field(default_factory=list)

    @property
    def stop_file(self) -> Path:
        return self.tmp / "clients.stop"

    def start(self, n: int, *, jobs: int = 4, logs_per_job: int = 8, drain_s: float = 30) -> None:
        env = {**os.environ, "CRASH_CLIENT_DRAIN_S": str(drain_s)}
        for i in range(n):
            out = self.tmp / f"acked-{i}.jsonl"
            self.outs.append(out)
            self.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(APPS / "crash_client.py"),
                        str(self.tmp / "ready.json"),
                        str(i),
                        str(out),
                        str(self.stop_file),
                        str(jobs),
                        str(logs_per_job),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )  # fmt: skip
            )

    def acked_requests(self) -> int:
        """Acknowledged requests so far (one line each in the clients' files)."""
        total = 0
        for out in self.outs:
            try:
                total += out.read_bytes().count(b"\n")
            except FileNotFoundError:
                pass
        return total

    def stop(self, timeout_s: float = 60) -> list[dict[str, Any]]:
        """Ask the clients to finish the request in hand; return their summaries."""
        self.stop_file.touch()
        summaries = []
        for proc in self.procs:
            out, err = proc.communicate(timeout=timeout_s)
            assert proc.returncode == 0, f"client failed:\n{out}\n{err}"
            summaries.append(json.loads(out.strip().splitlines()[-1]))
        return summaries

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    def acked(self) -> Iterator[dict[str, Any]]:
        for out in self.outs:
            for line in out.read_text().splitlines():
                yield json.loads(line)


@dataclass
class Verdict:
    """What the database holds of what the clients were told is stored."""

    acked_requests: int
    acked_spans: int
    acked_logs: int
    acked_jobs: int
    missing_spans: int
    missing_logs: int
    duplicate_spans: int
    duplicate_logs: int
    duplicate_jobs: int
    missing_jobs: int
    incomplete_jobs: int
    retried_requests: int
    committed_before_failure: int
    stored_spans: int
    stored_logs: int
    stored_jobs: int

    def assert_exactly_once(self) -> None:
        assert self.missing_spans == 0, f"{self.missing_spans} acknowledged spans are missing"
        assert self.missing_logs == 0, f"{self.missing_logs} acknowledged log records are missing"
        assert self.missing_jobs == 0, f"{self.missing_jobs} acknowledged jobs are missing"
        assert self.duplicate_spans == 0, f"{self.duplicate_spans} span ids stored twice"
        assert self.duplicate_logs == 0, f"{self.duplicate_logs} log records stored twice"
        assert self.duplicate_jobs == 0, f"{self.duplicate_jobs} job ids twice in jobs"
        assert self.incomplete_jobs == 0, f"{self.incomplete_jobs} acked jobs lack steps/status"


def verify(con: duckdb.DuckDBPyConnection, acked: list[dict[str, Any]]) -> Verdict:
    """Compare the acknowledged requests with the tables (ids and bodies are unique by design)."""
    traces = [a for a in acked if a["kind"] == "traces"]
    logs = [a for a in acked if a["kind"] == "logs"]
    span_ids = [s for a in traces for s in a["spans"]]
    bodies = [b for a in logs for b in a["logs"]]
    job_ids = sorted({j for a in traces for j in a["jobs"]})
    assert len(span_ids) == len(set(span_ids)) and len(bodies) == len(set(bodies))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE acked_spans AS SELECT unnest(?::VARCHAR[]) AS id", [span_ids]
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE acked_logs AS SELECT unnest(?::VARCHAR[]) AS body", [bodies]
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE acked_jobs AS SELECT unnest(?::VARCHAR[]) AS id", [job_ids]
    )

    def one(sql: str, *params: Any) -> Any:
        row = con.execute(sql, list(params)).fetchone()
        assert row is not None
        return row[0]

    committed_before = 0
    for a in acked:
        if a["first_error_at"] is None:
            continue
        if a["kind"] == "traces":
            sql = "SELECT min(epoch_us(received_at)) FROM spans WHERE span_id = ?"
            key = a["spans"][0]
        else:
            sql = "SELECT min(epoch_us(received_at)) FROM logs WHERE body = ?"
            key = a["logs"][0]
        decoded_us = one(sql, key)
        committed_before += decoded_us is not None and decoded_us < a["first_error_at"] * 1e6
    return Verdict(
        acked_requests=len(acked),
        acked_spans=len(span_ids),
        acked_logs=len(bodies),
        acked_jobs=len(job_ids),
        missing_spans=one(
            "SELECT count(*) FROM acked_spans a ANTI JOIN spans s ON s.span_id = a.id"
        ),
        missing_logs=one("SELECT count(*) FROM acked_logs a ANTI JOIN logs l ON l.body = a.body"),
        duplicate_spans=one(
            "SELECT count(*) FROM (SELECT 1 FROM spans GROUP BY trace_id, span_id HAVING count(*) > 1)"
        ),
        duplicate_logs=one(
            """SELECT count(*) FROM (SELECT 1 FROM logs
               GROUP BY trace_id, span_id, time, body HAVING count(*) > 1)"""
        ),
        duplicate_jobs=one(
            "SELECT count(*) FROM (SELECT 1 FROM jobs GROUP BY id HAVING count(*) > 1)"
        ),
        missing_jobs=one("SELECT count(*) FROM acked_jobs a ANTI JOIN jobs j USING (id)"),
        incomplete_jobs=one(
            """SELECT count(*) FROM acked_jobs a JOIN jobs j USING (id)
               WHERE j.status <> 'completed'
                  OR (SELECT count(*) FROM steps s WHERE s.job_id = j.id) <> 3"""
        ),
        retried_requests=sum(a["attempts"] > 1 for a in acked),
        committed_before_failure=committed_before,
        stored_spans=one("SELECT count(*) FROM spans"),
        stored_logs=one("SELECT count(*) FROM logs"),
        stored_jobs=one("SELECT count(*) FROM jobs"),
    )


def read_every_block(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Scan every column of every table (DuckDB verifies each block's checksum as it reads)."""
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_type = 'BASE TABLE'"
    ).fetchall()]  # fmt: skip
    counts = {}
    for table in tables:
        row = con.execute(f'SELECT count(*), sum(hash(t)) FROM "{table}" t').fetchone()
        assert row is not None
        counts[table] = int(row[0])
    return counts
