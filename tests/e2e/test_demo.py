"""``jobtrail demo`` (what ``make run`` loads) against a real server: every kind of job the
page has a view for arrives, the queued ones included."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from e2e.harness import ServerProcess

pytestmark = pytest.mark.e2e


def test_the_demo_fills_every_view(server: ServerProcess) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jobtrail", "demo", "--endpoint", server.grpc, "--jobs", "7"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "7 jobs sent" in done.stdout
    jobs = server.wait_for(
        "/api/jobs",
        lambda body: sum(j["parent_job_id"] is None for j in body["jobs"]) >= 8,
        limit=200,
    )["jobs"]
    top = [j for j in jobs if j["parent_job_id"] is None]
    statuses = Counter(j["status"] for j in top)
    assert statuses["completed"] >= 4 and statuses["failed"] == 1 and statuses["cancelled"] == 1
    [waiting] = [j for j in top if j["status"] == "pending"]
    assert (
        waiting["name"] == "yearly archive" and waiting["queued_at"] and not waiting["started_at"]
    )
    [invoices] = [j for j in top if j["type"] == "billing"]
    assert invoices["status"] == "completed" and invoices["queued_at"] < invoices["started_at"]
    assert any(j["parent_job_id"] for j in jobs)  # child jobs
