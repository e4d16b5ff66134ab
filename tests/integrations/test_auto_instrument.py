"""An app run under ``opentelemetry-instrument`` records jobs through the SDK the distro set up."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.distro")
pytest.importorskip("opentelemetry.instrumentation.requests")

from e2e.harness import ServerProcess  # noqa: E402
from integration_support import APPS, all_logs, app_env  # noqa: E402

INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")


def sql(server: ServerProcess, query: str, params: dict[str, Any]) -> list[list[Any]]:
    body = json.dumps({"sql": query, "params": params}).encode()
    req = urllib.request.Request(
        f"{server.api}/api/sql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback test server
        rows: list[list[Any]] = json.loads(resp.read())["rows"]
        return rows


@pytest.mark.parametrize("otel_logging", ["false", "true"])
def test_auto_instrumented_http_span_is_in_the_job_trace(
    server: ServerProcess, otel_logging: str
) -> None:
    if not INSTRUMENT.exists():
        pytest.skip(f"{INSTRUMENT} is not installed")
    service = f"auto-{otel_logging}"
    env = app_env(
        server, service,
        OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED=otel_logging,
        OTEL_BSP_SCHEDULE_DELAY="200", OTEL_BLRP_SCHEDULE_DELAY="200",
    )  # fmt: skip
    done = subprocess.run(
        [str(INSTRUMENT), sys.executable, str(APPS / "auto_instrumented_app.py")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["sdk_provider"] == "opentelemetry.sdk.trace"

    job = server.wait_for(
        f"/api/jobs/{out['job']}", lambda j: j["status"] == "completed" and len(j["steps"]) == 2
    )
    assert job["service"] == f"e2e-{service}" and job["result"] == {"prices": 3}
    assert [(s["name"], s["status"]) for s in job["steps"]] == [
        ("download", "completed"),
        ("store", "completed"),
    ]
    download = job["steps"][0]

    spans = server.wait_for(f"/api/traces/{job['trace_id']}", lambda t: len(t["spans"]) >= 4)[
        "spans"
    ]
    (http,) = [s for s in spans if s["name"] == "GET"]
    assert http["parent_span_id"] == download["span_id"]
    assert http["kind"] == 3  # CLIENT
    attrs = http["attributes"]  # old or stable HTTP semantic conventions, as configured
    assert attrs.get("http.response.status_code", attrs.get("http.status_code")) == 200
    assert attrs.get("url.full", attrs.get("http.url", "")).endswith("/prices")
    # requests propagated the context: the server saw the HTTP span as parent.
    assert out["traceparent"].split("-")[1:3] == [job["trace_id"], http["span_id"]]
    assert len(spans) == 4  # job, two steps, the HTTP call

    # The job's own spans went through the distro's provider (its resource says so).
    resources = sql(
        server,
        "SELECT name, resource->>'telemetry.auto.version' FROM spans WHERE trace_id = $t",
        {"t": job["trace_id"]},
    )
    assert {name for name, auto in resources if auto} == {
        "fetch prices",
        "download",
        "store",
        "GET",
    }

    logs = {e["message"]: e for e in all_logs(server, job["id"])}
    assert logs["downloaded prices"]["step"] == "download"
    assert logs["downloaded prices"]["level"] == "info"
    assert logs["stored"]["step"] == "store" and logs["stored"]["level"] == "success"
    assert len(logs) == 2
