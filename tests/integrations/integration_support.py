"""Helpers of the integration tests: run apps and ``jobtrail run`` against a real server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from e2e.harness import ServerProcess

APPS = Path(__file__).parent / "apps"


def app_env(server: ServerProcess, name: str, **extra: str) -> dict[str, str]:
    """The environment of a process exporting to ``server`` (no inherited parent job)."""
    env = server.app_env(name, extra)
    for key in ("TRACEPARENT", "TRACESTATE", "JOBTRAIL_PARENT_JOB_ID"):
        env.pop(key, None)
    return env


def run_app(
    server: ServerProcess, name: str, *args: str, timeout_s: float = 60, **env: str
) -> str:
    """Run ``apps/<name>.py`` exporting to ``server``; return its stdout (must exit 0)."""
    done = subprocess.run(
        [sys.executable, str(APPS / f"{name}.py"), *args],
        env=app_env(server, name, **env), capture_output=True, text=True, timeout=timeout_s,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def jobtrail_run(
    server: ServerProcess, options: Sequence[str], command: Sequence[str], **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    """``jobtrail run OPTIONS -- COMMAND`` exporting to ``server``; output captured as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "jobtrail", "run", *options, "--", *command],
        env=app_env(server, "run"), capture_output=True, timeout=kwargs.pop("timeout", 60),
        check=False, **kwargs,
    )  # fmt: skip


def only_job(server: ServerProcess, job_type: str, status: str | None = None) -> Any:
    """Wait for the single job of ``job_type`` (in ``status``); return its detail."""

    def ready(body: Any) -> bool:
        jobs = body["jobs"]
        return len(jobs) == 1 and (status is None or jobs[0]["status"] == status)

    (job,) = server.wait_for("/api/jobs", ready, type=job_type)["jobs"]
    return server.get(f"/api/jobs/{job['id']}")


def all_logs(server: ServerProcess, job_id: str, **params: Any) -> list[Any]:
    """Every log record of a job, paging with ``after_id``."""
    logs: list[Any] = []
    after: int | None = None
    while True:
        page = server.get(f"/api/jobs/{job_id}/logs", limit=10_000, after_id=after, **params)
        logs.extend(page["logs"])
        if len(page["logs"]) < 10_000:
            return logs
        after = page["logs"][-1]["id"]
