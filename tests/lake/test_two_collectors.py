"""Two ``jobtrail serve`` processes on one lake: spans at one, logs at the other, both answer.

This is the DNS round-robin case, the hardest for derived state: a job's span, its lifecycle
records and its log lines reach different collectors, and each collector must still show
the complete job — status, steps, child jobs, every log line linked — from its own API.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from e2e.expectations import check_broken_export, check_import_job
from e2e.harness import APPS, ServerProcess
from e2e.sse import sse_events
from pg import PostgresCluster

pytestmark = pytest.mark.e2e


def lake_yaml(catalog: str, data_path: Path) -> str:
    return (
        "exporters:\n  duckdb:\n    lake:\n"
        f"      catalog: {json.dumps(catalog)}\n"
        f"      data_path: {json.dumps(str(data_path))}\n"
        "      commit_interval: 100ms\n"
    )


@pytest.fixture
def collectors(
    postgres: PostgresCluster, tmp_path: Path
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two servers on one new lake, started at the same moment (both create the layout)."""
    config = lake_yaml(postgres.catalog(), tmp_path / "lake")
    servers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        servers.append(ServerProcess(tmp_path / name, config))
    errors: list[BaseException] = []

    def start(server: ServerProcess) -> None:
        try:
            server.start()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors, errors
        yield servers[0], servers[1]
    finally:
        for server in servers:
            if server.proc is not None:
                assert server.stop() == 0


def split_env(traces_to: ServerProcess, logs_to: ServerProcess) -> dict[str, str]:
    """OTLP environment sending spans to one collector and log records to the other."""
    return {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://{traces_to.grpc}",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": f"http://{logs_to.grpc}",
    }


def run_split(app: str, traces_to: ServerProcess, logs_to: ServerProcess) -> dict[str, str]:
    out = traces_to.run_app(app, env=split_env(traces_to, logs_to))
    ids: dict[str, str] = json.loads(out.strip().splitlines()[-1])
    return ids


def check_chatty(server: ServerProcess, job_id: str) -> None:
    """The agent's 2000-line job: every line, in order, in its step."""
    job = server.wait_for(
        f"/api/jobs/{job_id}", lambda j: j["status"] == "completed" and len(j["steps"]) == 2
    )
    assert job["progress"] == 100
    logs = server.get(f"/api/jobs/{job_id}/logs", step="talk", limit=10000)["logs"]
    assert [e["message"] for e in logs] == [f"chatty line {i}" for i in range(2000)]


def everything(server: ServerProcess) -> dict[str, Any]:
    """What a dashboard shows, for comparing the two collectors' answers."""
    now = datetime.now(UTC)
    window = {
        "since": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:00:00Z"),
        "until": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:00:00Z"),
    }
    return {
        "stats": server.get("/api/stats", bucket="1h", **window),
        "jobs": server.get("/api/jobs", limit=100)["jobs"],
        "logs": server.get("/api/logs", limit=10000)["logs"],
    }


def test_jobs_split_between_collectors_are_complete_on_both(
    collectors: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = collectors
    plain = run_split("plain_sdk_jobs", traces_to=a, logs_to=b)  # linked through spans only
    agent = run_split("agent_jobs", traces_to=b, logs_to=a)  # lifecycle records at a
    for server in (a, b):
        server.wait_for(
            "/api/logs", lambda body: all(e["job_id"] for e in body["logs"]), limit=10000
        )
        for ids in (plain, agent):
            # Records linked through spans on another collector are linked by the next
            # sweep (about a second): wait for the job's 203 lines before checking them.
            server.wait_for(
                f"/api/jobs/{ids['nightly import']}/logs", lambda body: len(body["logs"]) >= 203,
                limit=10000,
            )  # fmt: skip
            check_import_job(server, ids["nightly import"], ids["rebuild index"])
            check_broken_export(server, ids["broken export"])
        check_chatty(server, agent["chatty"])
        stats = server.get("/api/stats")
        assert stats["jobs"]["total"] == 7
        assert stats["jobs"]["by_status"] == {"completed": 5, "failed": 2}
        listed = server.get("/api/jobs", limit=100)["jobs"]
        assert {j["id"] for j in listed} == {*plain.values(), *agent.values()}
        logs = server.get("/api/logs", limit=10000)["logs"]
        ids = [e["id"] for e in logs]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert all(e["job_id"] for e in logs), "every record linked to its job"
    assert everything(a) == everything(b), "both collectors give the same answers"


async def test_live_stream_of_one_collector_shows_another_collectors_job(
    collectors: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = collectors
    env = b.app_env("long_job")  # every record to b; the subscriber is on a
    app = subprocess.Popen(
        [sys.executable, str(APPS / "long_job.py"), "3", "10"], env=env, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert app.stdout is not None
        job_id = app.stdout.readline().strip()
        a.wait_for(f"/api/jobs/{job_id}", lambda j: j["status"] == "running", timeout_s=15)
        events = []
        async for event in sse_events(f"{a.api}/api/jobs/{job_id}/stream", timeout_s=60):
            events.append(event)
            if event.event == "end":
                break
        assert app.wait(30) == 0
    finally:
        if app.poll() is None:
            app.kill()
    messages = [e.data["message"] for e in events if e.event == "log"]
    assert messages == [f"line {s}.{i}" for s in range(3) for i in range(10)]
    statuses = [e.data["status"] for e in events if e.event == "job"]
    assert statuses[0] == "running" and statuses[-1] == "completed"
