"""The Prefect 3 side of the peer benchmark (:mod:`bench.peer`), one process per run.

Runs in the interpreter that has ``prefect`` (``BENCH_PREFECT_PYTHON``, else the bench's
own) and imports nothing of jobtrail, so any Prefect venv can run it. The job is the one of
:mod:`bench._agent_app`: a ``@flow`` calling 10 ``@task`` s in turn, each logging 10 lines
through ``get_run_logger()`` (100 lines per job), with Prefect's defaults everywhere.

Per job it times the flow call (wall), then, when ``PREFECT_API_URL`` points at a server,
polls its REST API every ``--poll-ms`` until the flow run is COMPLETED, its 10 task runs
are COMPLETED and all 100 lines are stored: the end-to-end time from the flow's start until
a user can see the whole job. Without ``PREFECT_API_URL`` Prefect runs in its ephemeral
mode (a server subprocess of its own) and only wall time is taken. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from typing import Any

_T_START = time.time()

from prefect import flow, get_run_logger, task  # noqa: E402 - after the start-up clock

STEPS = 10
LINES_PER_STEP = 10
LINE_PREFIX = "processed batch"


@task(task_run_name="step-{s}")
def step(n: int, s: int) -> int:
    """One step: 10 log lines, like the jobtrail job's ``step.info(...)``."""
    logger = get_run_logger()
    for i in range(LINES_PER_STEP):
        logger.info("%s %d", LINE_PREFIX, i, extra={"row": i, "table": "users"})
    return s


@flow(name="import", flow_run_name="import {n}")
def import_job(n: int) -> int:
    """One job: 10 steps in turn."""
    for s in range(STEPS):
        step(n, s)
    return n


def _post(api: str, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        f"{api}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())


def _get(api: str, path: str) -> Any:
    with urllib.request.urlopen(f"{api}{path}", timeout=30) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())


def queryable(api: str, flow_run_id: str) -> dict[str, Any]:
    """What the API shows of one flow run: its state, completed task runs, our log lines."""
    run = _get(api, f"/flow_runs/{flow_run_id}")
    tasks = _post(api, "/task_runs/filter",
                  {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200})  # fmt: skip
    logs = _post(api, "/logs/filter",
                 {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200})  # fmt: skip
    return {
        "state": (run.get("state") or {}).get("type"),
        "tasks_completed": sum(
            1 for t in tasks if (t.get("state") or {}).get("type") == "COMPLETED"
        ),
        "lines": sum(1 for x in logs if str(x.get("message", "")).startswith(LINE_PREFIX)),
    }


def _done(seen: dict[str, Any]) -> bool:
    return (
        seen["state"] == "COMPLETED"
        and seen["tasks_completed"] == STEPS
        and seen["lines"] == STEPS * LINES_PER_STEP
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--poll-ms", type=float, default=10.0)
    ap.add_argument("--e2e-timeout", type=float, default=30.0)
    ap.add_argument("--spawned-at", type=float, help="time.time() when the parent spawned us")
    args = ap.parse_args()
    api = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    mode = "server" if api else "ephemeral"
    out: dict[str, Any] = {"variant": f"prefect-{mode}", "jobs": args.jobs}
    out["import_s"] = time.time() - _T_START
    if args.spawned_at:
        out["startup_s"] = time.time() - args.spawned_at

    t = time.perf_counter()
    for n in range(args.warmup):  # the first flow registers it (and starts the ephemeral server)
        import_job(-n - 1)
        if n == 0:
            out["first_job_s"] = time.perf_counter() - t
    out["warmup_s"] = time.perf_counter() - t

    wall, cpu, e2e, polls, timeouts = [], [], [], [], 0
    t0 = time.perf_counter()
    for n in range(args.jobs):
        c, start = time.process_time(), time.perf_counter()
        state = import_job(n, return_state=True)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - c)
        if not api:
            continue
        flow_run_id = str(state.state_details.flow_run_id)
        deadline = start + args.e2e_timeout
        k = 0
        while True:
            k += 1
            if _done(queryable(api, flow_run_id)):
                e2e.append(time.perf_counter() - start)
                break
            if time.perf_counter() > deadline:
                timeouts += 1
                out.setdefault("last_seen", queryable(api, flow_run_id))
                break
            time.sleep(args.poll_ms / 1000)
        polls.append(k)
    out["loop_s"] = time.perf_counter() - t0
    out["job_us"] = [x * 1e6 for x in wall]
    out["job_cpu_us"] = [x * 1e6 for x in cpu]
    out["e2e_ms"] = [x * 1e3 for x in e2e]
    out["polls"] = polls
    out["e2e_timeouts"] = timeouts
    import prefect

    out["prefect"] = prefect.__version__
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
