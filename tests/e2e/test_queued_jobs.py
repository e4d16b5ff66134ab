"""Queued jobs end to end: a producer process queues, a worker process runs one.

The waiting job is listed as ``pending`` with its ``queued_at`` and never marked lost; the
taken one keeps ``queued_at`` and shows the worker's service and start.
"""

from __future__ import annotations

import json
from datetime import datetime

from e2e.harness import ServerProcess


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def test_a_producer_queues_and_a_worker_runs(server: ServerProcess) -> None:
    ids = json.loads(server.run_app("queued_jobs", "produce").strip().splitlines()[-1])
    waiting = server.wait_for(f"/api/jobs/{ids['waiting']}", lambda j: j["queued_at"] is not None)
    assert waiting["status"] == "pending" and waiting["started_at"] is None
    assert (waiting["name"], waiting["type"], waiting["owner"]) == ("export us", "export", "ops")
    assert waiting["attributes"] == {"region": "us"}
    assert waiting["parent_job_id"] == ids["batch"]

    server.run_app("queued_jobs", "work", ids["taken"], env={"OTEL_SERVICE_NAME": "worker"})
    taken = server.wait_for(f"/api/jobs/{ids['taken']}", lambda j: j["status"] == "completed")
    assert taken["service"] == "worker" and taken["attributes"] == {"region": "eu"}
    assert _at(taken["queued_at"]) < _at(taken["started_at"])
    assert taken["parent_job_id"] == ids["batch"]

    pending = server.get("/api/jobs", status="pending")["jobs"]
    assert [j["id"] for j in pending] == [ids["waiting"]]
    assert pending[0]["queued_at"] == waiting["queued_at"]
