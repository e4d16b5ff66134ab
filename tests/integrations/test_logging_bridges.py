"""stdlib logging, structlog and loguru records reach jobs (or system logs) on a real server."""

from __future__ import annotations

import importlib.util
import json

import pytest
from e2e.harness import ServerProcess
from integration_support import run_app

LIBRARIES = [
    pytest.param(name, marks=pytest.mark.skipif(
        name != "stdlib" and importlib.util.find_spec(name) is None,
        reason=f"{name} is not installed",
    ))
    for name in ("stdlib", "structlog", "loguru")
]  # fmt: skip


@pytest.mark.parametrize("library", LIBRARIES)
def test_application_and_job_logs(server: ServerProcess, library: str) -> None:
    service = f"bridge-{library}"
    stdout = run_app(server, "log_bridges_app", library, OTEL_SERVICE_NAME=service)
    out = json.loads(stdout.strip().splitlines()[-1])
    job = server.wait_for(
        f"/api/jobs/{out['job']}", lambda j: j["status"] == "completed" and j["steps"]
    )
    assert job["type"] == f"log-bridge-{library}"
    logs = server.get(f"/api/jobs/{job['id']}/logs")["logs"]
    by_message = {e["message"]: e for e in logs}
    failed = by_message["charge failed"]
    assert failed["level"] == "error" and failed["step"] == "charge"
    assert failed["exception_type"].endswith("ValueError")
    assert "card declined" in failed["stack_trace"] and "Traceback" in failed["stack_trace"]
    assert failed["data"]["card"] == "visa"
    assert by_message["retry later"]["level"] == "warn"
    assert by_message["retry later"]["step"] is None
    assert by_message["done"]["level"] == "success"
    assert len(logs) == 3  # nothing captured twice

    system = server.wait_for(
        "/api/logs", lambda b: b["logs"], type="system", service=service
    )["logs"]
    system = [e for e in system if e["message"] == "invoice sent"]
    (invoice,) = system
    assert invoice["job_id"] is None and invoice["level"] == "info"
    assert invoice["category"] == ("__main__" if library == "loguru" else "billing")
    assert invoice["data"]["invoice"] == 42
    assert json.loads(invoice["data"]["customer"]) == {"id": 7}
    assert invoice["data"]["log.source"] == f"log_bridges_app:{out['source_line']}"
    if library == "stdlib":
        below = server.get("/api/logs", q="not captured", service=service)["logs"]
        assert below == []
