"""Seed 000's execute_job with a progress callback, seed 003's RunStep, propagation, fan-out."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from e2e.harness import ServerProcess
from integration_support import APPS, app_env


def _run_parity_app(server: ServerProcess) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, str(APPS / "seed_parity_app.py")],
        env=app_env(server, "seed_parity"), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _job(server: ServerProcess, job_id: str, status: str) -> Any:
    return server.wait_for(f"/api/jobs/{job_id}", lambda j: j["status"] == status)


def _only(server: ServerProcess, job_type: str) -> Any:
    (job,) = server.wait_for("/api/jobs", lambda b: b["jobs"], type=job_type)["jobs"]
    return job


def test_seed_patterns_through_the_real_server(server: ServerProcess) -> None:
    out, stderr = _run_parity_app(server)

    # seed 000: execute_job(fn(job_id, update_progress)) returns fn's result
    assert out["backup_result"] == {"success": True, "recordsProcessed": 1000}
    backup = _job(server, out["backup_seen_id"], "completed")
    assert backup["type"] == "parity-backup" and backup["owner"] == "proj_123"
    assert backup["result"] == out["backup_result"] and backup["progress"] == 100
    assert backup["current_step"] == "Complete"
    events = server.get(f"/api/jobs/{backup['id']}/logs", events="true")["logs"]
    assert [e["message"] for e in events if e["event_name"] == "job.progress"] == [
        "progress 25%: Fetching data",
        "progress 50%: Processing data",
        "progress 100%: Complete",
    ]
    logs = server.get(f"/api/jobs/{backup['id']}/logs")["logs"]
    assert [(e["message"], e["data"]) for e in logs] == [("processed", {"records": 1000})]
    assert out["async_result"] == "copied"
    assert _job(server, out["async_backup_id"], "completed")["result"] == "copied"

    # seed 003: RunStep recovering a failure, and one that fails the job
    migration = _job(server, out["migration"], "completed")
    assert [(s["name"], s["status"]) for s in migration["steps"]] == [
        ("validate", "completed"),
        ("notify", "failed"),
        ("data-replication", "completed"),
    ]
    notify = migration["steps"][1]
    assert "something went wrong" in notify["error"]
    failed_log = server.get(f"/api/jobs/{migration['id']}/logs", step="notify", level="error")
    (entry,) = failed_log["logs"]
    assert "RuntimeError: something went wrong" in entry["stack_trace"]
    assert out["replicated"] == 107374182400
    strict = _job(server, out["strict"], "failed")
    assert "something went wrong" in strict["error"]
    assert [(s["name"], s["status"]) for s in strict["steps"]] == [("risky-operation", "failed")]

    # context propagation: thread pool, asyncio.gather, copy_context().run
    fanout = _job(server, out["fanout"], "completed")
    assert out["squares"] == [0, 1, 4]
    names = sorted(s["name"] for s in fanout["steps"])
    assert names == sorted(
        [f"pool part {n}" for n in (0, 1, 2, 7)] + [f"task part {n}" for n in range(3)] + ["done"]
    )
    assert sorted(s["seq"] for s in fanout["steps"]) == list(range(1, 9))
    assert fanout["progress"] == 100
    fan_logs = server.get(f"/api/jobs/{fanout['id']}/logs")["logs"]
    by_step = {e["step"]: e["message"] for e in fan_logs}
    assert by_step["pool part 7"] == "pool worker"
    assert by_step["task part 2"] == "task worker 2"
    assert all(e["job_id"] == fanout["id"] for e in fan_logs)

    # start_job: running in the background, id known at once
    background = _job(server, out["background"], "completed")
    assert background["type"] == "parity-background"
    (warning,) = server.get(f"/api/jobs/{background['id']}/logs")["logs"]
    assert warning["message"] == "background work" and warning["level"] == "warn"

    # fan-out: the same records went to stderr (console) as well
    assert "processed" in stderr and "records=1000" in stderr
    assert "vm migrate" in stderr and "something went wrong" in stderr
