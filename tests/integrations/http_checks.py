"""What every HTTP middleware must produce, checked through the API (shared by the tests)."""

from __future__ import annotations

from typing import Any

from e2e.harness import ServerProcess


def _job(server: ServerProcess, job_id: str, status: str = "completed") -> Any:
    return server.wait_for(f"/api/jobs/{job_id}", lambda j: j["status"] == status)


def check_middleware(server: ServerProcess, out: dict[str, Any], framework: str) -> None:
    # A handler starts a background job: its id comes back in the header and the body.
    export_id = out["export"]["body"]
    assert out["export"]["status"] == 202 and out["export"]["header"] == export_id
    export = server.wait_for(
        f"/api/jobs/{export_id}", lambda j: j["status"] == "completed" and j["steps"]
    )
    assert export["type"] == f"http-{framework}-export" and export["result"] == {"rows": 10}
    assert [s["name"] for s in export["steps"]] == ["write file"]
    messages = {e["message"]: e for e in server.get(f"/api/jobs/{export_id}/logs")["logs"]}
    assert messages["exporting in the background"]["category"] == "web"
    assert messages["rows written"]["step"] == "write file"

    # A request naming a job (X-Job-ID) logs into it and gets the id back.
    caller_id = out["caller"]
    assert out["work_header"] == caller_id
    caller = _job(server, caller_id)
    logs = server.get(f"/api/jobs/{caller_id}/logs")["logs"]
    assert {(e["message"], e["level"]) for e in logs} >= {
        ("handled for the caller's job", "warn"),
        ("via current_job", "info"),
    }
    # ... and a job it starts is the caller's child, named in the header.
    child_id = out["child_header"]
    assert child_id and child_id != caller_id
    child = _job(server, child_id)
    assert child["parent_job_id"] == caller_id
    assert child["type"] == f"http-{framework}-child"
    caller = server.wait_for(f"/api/jobs/{caller_id}", lambda j: j["children"])
    assert [c["id"] for c in caller["children"]] == [child_id]

    # A W3C traceparent of a job's span (no X-Job-ID) links the request's logs by span.
    traced_id = out["traced"]
    traced = _job(server, traced_id)
    traced_logs = server.wait_for(
        f"/api/jobs/{traced_id}/logs", lambda b: len(b["logs"]) == 2
    )["logs"]
    assert {e["message"] for e in traced_logs} == {"handled for the caller's job", "via current_job"}
    assert all(e["span_id"] == traced["span_id"] for e in traced_logs)
    assert out["traced_header"] is None

    # request_job_type: each request is a job; a 5xx fails it, a 4xx does not.
    jobs = server.wait_for(
        "/api/jobs",
        lambda b: len(b["jobs"]) == 3 and all(j["status"] != "running" for j in b["jobs"]),
        type=f"http-{framework}-request",
    )["jobs"]
    by_name = {j["name"]: j for j in jobs}
    assert out["/boom"]["status"] == 500
    assert by_name["GET /boom"]["status"] == "failed"
    assert "handler crashed" in by_name["GET /boom"]["error"]  # the server made the 500
    assert by_name["GET /ok"]["status"] == "completed"
    assert by_name["GET /ok"]["id"] == out["/ok"]["header"]
    assert out["/missing"]["status"] == 404
    assert by_name["GET /missing"]["status"] == "completed"
    assert by_name["GET /missing"]["attributes"] == {"http_method": "GET", "http_path": "/missing"}
    boom_logs = server.get(f"/api/jobs/{by_name['GET /boom']['id']}/logs")["logs"]
    assert "about to fail" in {e["message"] for e in boom_logs}
