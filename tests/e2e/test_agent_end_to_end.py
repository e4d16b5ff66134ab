"""The whole path: agent in another process -> OTLP/gRPC -> collector -> DuckDB -> HTTP API."""

from __future__ import annotations

import json

from e2e.expectations import check_broken_export, check_import_job
from e2e.harness import ServerProcess

LEVELS = ("debug", "info", "success", "warn", "error", "fatal")


def _check_chatty(server: ServerProcess, job_id: str) -> None:
    job = server.wait_for(f"/api/jobs/{job_id}", lambda j: j["status"] == "completed")
    assert job["progress"] == 100
    assert [(s["seq"], s["name"], s["status"]) for s in job["steps"]] == [
        (1, "talk", "completed"),
        (2, "stdlib", "completed"),
    ]
    logs = server.get(f"/api/jobs/{job_id}/logs", step="talk", limit=10000)["logs"]
    assert [e["message"] for e in logs] == [f"chatty line {i}" for i in range(2000)]
    assert [e["level"] for e in logs] == [LEVELS[i % 6] for i in range(2000)]
    assert all(e["data"]["i"] == i for i, e in enumerate(logs))
    errors = [e for e in logs if e["level"] in ("error", "fatal")]
    assert errors and all(e["stack_trace"] for e in errors), "error/fatal carry a stack trace"
    (stdlib,) = server.get(f"/api/jobs/{job_id}/logs", step="stdlib")["logs"]
    assert stdlib["message"] == "from stdlib logging inside a step"
    assert stdlib["level"] == "warn" and stdlib["category"] == "e2e.worker"
    assert stdlib["data"]["batch"] == 7


def _check_everything(server: ServerProcess, ids: dict[str, str]) -> None:
    check_import_job(server, ids["nightly import"], ids["rebuild index"])
    check_broken_export(server, ids["broken export"])
    _check_chatty(server, ids["chatty"])
    stats = server.get("/api/stats")
    assert stats["jobs"]["total"] == 4
    assert stats["jobs"]["by_status"] == {"completed": 3, "failed": 1}
    assert stats["logs"]["by_level"]["fatal"] >= 2000 // 6
    listed = server.get("/api/jobs", limit=10)["jobs"]
    assert {j["id"] for j in listed} == set(ids.values())
    assert [j["started_at"] for j in listed] == sorted(
        (j["started_at"] for j in listed), reverse=True
    )


def _metrics(server: ServerProcess) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(f"{server.api}/metrics", timeout=10) as resp:  # noqa: S310
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_agent_jobs_through_the_real_server(server: ServerProcess) -> None:
    ids = json.loads(server.run_app("agent_jobs").strip().splitlines()[-1])
    _check_everything(server, ids)
    metrics = _metrics(server)
    assert metrics['jobtrail_records_stored_total{signal="logs"}'] >= 2203
    assert metrics['jobtrail_records_stored_total{signal="traces"}'] >= 9
    assert metrics["jobtrail_commit_seconds_count"] >= 1
    assert metrics['jobtrail_commit_seconds_bucket{le="+Inf"}'] == metrics["jobtrail_commit_seconds_count"]
    assert metrics["jobtrail_database_bytes"] > 0
    server.restart()
    _check_everything(server, ids)
