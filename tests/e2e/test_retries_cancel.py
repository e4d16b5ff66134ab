"""Retries record every attempt; cancel and interrupts end jobs as cancelled."""

from __future__ import annotations

import json

from e2e.harness import ServerProcess


def test_retries_and_cancel_through_the_api(server: ServerProcess) -> None:
    ids = json.loads(server.run_app("retry_cancel_jobs").strip().splitlines()[-1])

    flaky = server.wait_for(
        f"/api/jobs/{ids['flaky sync']}", lambda j: j["status"] == "completed" and len(j["attempts"]) == 3
    )
    assert flaky["attempt"] == 3
    assert [a["status"] for a in flaky["attempts"]] == ["failed", "failed", "completed"]
    assert "call 1" in flaky["attempts"][0]["error"] and flaky["attempts"][0]["error_type"] == "TimeoutError"
    assert all(a["duration_ms"] is not None and a["ended_at"].endswith("Z") for a in flaky["attempts"])
    assert flaky["result"] == {"calls": 3} and flaky["error"] is None
    assert flaky["duration_ms"] >= sum(a["duration_ms"] for a in flaky["attempts"])

    hopeless = server.wait_for(
        f"/api/jobs/{ids['hopeless sync']}", lambda j: j["status"] == "failed" and len(j["attempts"]) == 2
    )
    assert [a["status"] for a in hopeless["attempts"]] == ["failed", "failed"]
    assert hopeless["error_type"] == "PermissionError" and "token revoked" in hopeless["error"]

    report = server.wait_for(f"/api/jobs/{ids['superseded report']}", lambda j: j["status"] == "cancelled")
    assert report["cancel_reason"] == "superseded by a newer request"
    interrupted = server.wait_for(f"/api/jobs/{ids['interrupted import']}", lambda j: j["status"] == "cancelled")
    assert interrupted["cancel_reason"] == "KeyboardInterrupt" and interrupted["error"] is None

    listed = server.get("/api/jobs", status="cancelled")["jobs"]
    assert {j["id"] for j in listed} == {ids["superseded report"], ids["interrupted import"]}

    # A step can be skipped with a reason or failed without an exception; the job decides
    # its own status. Below JOBTRAIL_MIN_LEVEL=info the debug line was never sent.
    checked = server.wait_for(f"/api/jobs/{ids['checked import']}", lambda j: j["status"] == "completed")
    migrate, validate = checked["steps"]
    assert (migrate["status"], migrate["attributes"]) == ("skipped", {"skip_reason": "no pending migrations"})
    assert (validate["status"], validate["error"]) == ("failed", "2 rows without an id")
    logs = server.get(f"/api/jobs/{ids['checked import']}/logs")["logs"]
    assert [(r["level"], r["message"]) for r in logs] == [
        ("info", "3 rows checked"),
        ("error", "step 'validate' failed: 2 rows without an id"),
    ]
