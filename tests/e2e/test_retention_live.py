"""A real server prunes on start while ingest goes on, caps chatty jobs, and counts it all.

The database file is filled before the server opens it: thousands of jobs that finished two
months ago, and two that are still running. Retention (30 days, 50 logs per job, a pass
every second) must remove the old ones at start while an agent app exports its jobs.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bulk_jobs import bulk_load

from e2e.harness import ServerProcess
from jobtrail.storage import Database

pytestmark = pytest.mark.e2e

CONFIG = """
exporters:
  duckdb:
    retention:
      max_age: 30d
      max_logs_per_job: 50
      interval: 1s
"""
OLD = 3000


def metric(server: ServerProcess, name: str) -> float:
    with urllib.request.urlopen(f"{server.api}/metrics", timeout=10) as resp:  # noqa: S310
        text = resp.read().decode()
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def wait_metric(server: ServerProcess, name: str, minimum: float, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while metric(server, name) < minimum:
        assert time.monotonic() < deadline, f"{name} stayed under {minimum}"
        time.sleep(0.2)


def test_server_prunes_on_start_while_ingesting_and_caps_logs(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, CONFIG)
    two_months_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=60)
    db = Database(server.db)
    bulk_load(db.con, prefix="old", jobs=OLD, first_end=two_months_ago, every_s=1)
    bulk_load(db.con, prefix="busy", jobs=2, first_end=two_months_ago, every_s=1, status="running")
    db.close()

    server.start()
    try:
        started = time.monotonic()
        ids = json.loads(server.run_app("agent_jobs"))  # exports while the first pass runs
        app_s = time.monotonic() - started
        for job_id in ids.values():
            server.get(f"/api/jobs/{job_id}")  # stored: acknowledged only after commit

        bulk = server.wait_for(
            "/api/jobs", lambda body: len(body["jobs"]) == 2, timeout_s=60, type="bulk", limit=10
        )
        assert {j["status"] for j in bulk["jobs"]} == {"running"}, "running jobs are never pruned"
        wait_metric(server, "jobtrail_retention_passes_total", 1)
        assert metric(server, 'jobtrail_retention_removed_rows_total{table="jobs"}') == OLD
        assert metric(server, 'jobtrail_retention_removed_rows_total{table="logs"}') >= OLD * 20

        chatty = server.wait_for(
            f"/api/jobs/{ids['nightly import']}", lambda job: job["logs_dropped"] > 0
        )
        logs = server.get(f"/api/jobs/{ids['nightly import']}/logs", limit=1000)["logs"]
        assert len(logs) == 50 and chatty["logs_dropped"] > 100
        assert logs[0]["message"] == "import starting" and logs[-1]["message"] == "import done"
        wait_metric(server, "jobtrail_retention_passes_total", 2)  # and then periodically
        assert metric(server, "jobtrail_retention_failures_total") == 0
        print(f"agent app exported in {app_s:.1f} s during the first pass")
    finally:
        assert server.stop() == 0
    assert "retention removed" in (tmp_path / "server.log").read_text()
