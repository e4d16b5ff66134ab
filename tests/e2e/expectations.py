"""The job view both the agent and the bare SDK must produce (same assertions for both)."""

from __future__ import annotations

from typing import Any

from e2e.harness import ServerProcess


def _job(server: ServerProcess, job_id: str, status: str) -> Any:
    return server.wait_for(
        f"/api/jobs/{job_id}", lambda j: j["status"] == status and len(j.get("children", [])) >= 0
    )


def check_import_job(server: ServerProcess, job_id: str, child_id: str) -> dict[str, Any]:
    """The 'nightly import' job: 3 steps (one skipped), a child job, 203+ log lines."""
    job = server.wait_for(
        f"/api/jobs/{job_id}",
        lambda j: j["status"] == "completed" and len(j["steps"]) == 3 and j["children"],
    )
    assert job["type"] == "import" and job["name"] == "nightly import"
    assert job["owner"] == "ann"
    assert job["progress"] == 100
    assert job["total_steps"] == 3
    assert job["result"] == {"rows": 300}
    assert job["attributes"]["source"] == "s3://bucket/users.csv"
    assert job["service"].startswith("e2e-")
    assert [(s["seq"], s["name"], s["status"]) for s in job["steps"]] == [
        (1, "download", "completed"),
        (2, "transform", "completed"),
        (3, "load", "skipped"),
    ]
    assert all(s["duration_ms"] is not None and s["duration_ms"] >= 0 for s in job["steps"])
    assert job["duration_ms"] >= sum(s["duration_ms"] for s in job["steps"])
    assert [c["id"] for c in job["children"]] == [child_id]
    child = server.get(f"/api/jobs/{child_id}")
    assert child["parent_job_id"] == job_id and child["type"] == "index"
    assert child["status"] == "completed"

    logs = server.get(f"/api/jobs/{job_id}/logs", limit=10000)["logs"]
    ids = [entry["id"] for entry in logs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    by_step: dict[str | None, int] = {}
    for entry in logs:
        by_step[entry["step"]] = by_step.get(entry["step"], 0) + 1
    assert by_step["download"] == 100 and by_step["transform"] == 100
    assert by_step["load"] == 1
    lines = {entry["message"]: entry for entry in logs}
    assert lines["download line 4"]["level"] == "info"
    assert lines["download line 4"]["data"]["line"] == 4
    assert lines["transform line 5"]["level"] == "warn"
    assert lines["transform line 0"]["level"] == "debug"
    assert lines["import done"]["level"] == "success"
    assert lines["import starting"]["step"] is None
    warns = server.get(f"/api/jobs/{job_id}/logs", level="warn", step="transform")["logs"]
    assert len(warns) == 33 and {w["level"] for w in warns} == {"warn"}
    after = server.get(f"/api/jobs/{job_id}/logs", after_id=ids[100], limit=10000)["logs"]
    assert [e["id"] for e in after] == ids[101:]
    return job


def check_broken_export(server: ServerProcess, job_id: str) -> dict[str, Any]:
    """The 'broken export' job failed with ValueError and its stack trace."""
    job = server.wait_for(f"/api/jobs/{job_id}", lambda j: j["status"] == "failed")
    assert "disk full" in job["error"]
    assert job["error_type"] == "ValueError"
    assert 'raise ValueError("disk full")' in job["stack_trace"]
    logs = server.get(f"/api/jobs/{job_id}/logs", level="error")["logs"]
    assert any('raise ValueError("disk full")' in (e["stack_trace"] or "") for e in logs)
    return job
