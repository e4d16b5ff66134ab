"""The cost of one log line: ``step.info`` through the agent against ``logger.emit``.

``python -m bench.agentline`` starts one server, then runs the two variants of
:mod:`bench._agent_app`'s log line, one process each, in turn (``--rounds`` times): each
logs ``--lines`` lines inside one running step (job and step started once, so only the
line's own cost is timed), five times, and reports wall and its own thread's CPU time per
line. Not part of ``python -m bench``: it isolates what the job benchmark (``agent``) adds
up over steps and jobs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import _util as u

_ROUNDS_PER_PROCESS = 5


def _child(variant: str, endpoint: str, lines: int) -> None:
    if variant == "agent":
        import jobtrail

        jobtrail.configure(endpoint=endpoint, service_name="line-agent")
        job = jobtrail.job("lines", type="bench").__enter__()
        step = job.step("log").__enter__()

        def one(i: int) -> None:
            step.info("processed batch", row=i, table="users")
    else:
        from opentelemetry import trace
        from opentelemetry._logs import SeverityNumber

        from bench._agent_app import _sdk

        _, _, tracer, logger = _sdk(endpoint, "line-sdk", True)
        context = trace.set_span_in_context(tracer.start_span("log"))

        def one(i: int) -> None:
            logger.emit(
                timestamp=time.time_ns(),
                context=context,
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                body="processed batch",
                attributes={"row": i, "table": "users", "job.id": "abc", "job.step": "log"},
            )

    for i in range(2000):  # warm: imports, first exports
        one(i)
    wall, cpu = [], []
    for _ in range(_ROUNDS_PER_PROCESS):
        t0, c0 = time.perf_counter(), time.thread_time()
        for i in range(lines):
            one(i)
        wall.append((time.perf_counter() - t0) / lines * 1e6)
        cpu.append((time.thread_time() - c0) / lines * 1e6)
        time.sleep(0.5)  # let the export thread drain between rounds
    print(json.dumps({"wall_us": statistics.median(wall), "thread_cpu_us": statistics.median(cpu)}))


def main() -> None:
    """Run both variants against one server and print per-line medians and their ratio."""
    ap = argparse.ArgumentParser(prog="python -m bench.agentline")
    ap.add_argument("--child", choices=("agent", "sdk-sized"))
    ap.add_argument("--endpoint")
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.endpoint, args.lines)
        return
    work = Path(tempfile.mkdtemp(prefix="jobtrail-bench-"))
    server = u.Server(work, work / "db.duckdb").start()
    results: dict[str, list[dict[str, Any]]] = {"agent": [], "sdk-sized": []}
    try:
        for _ in range(args.rounds):
            for variant in results:
                proc = subprocess.run(
                    [sys.executable, "-m", "bench.agentline", "--child", variant,
                     "--endpoint", server.grpc, "--lines", str(args.lines)],
                    capture_output=True, cwd=Path(__file__).parent.parent, timeout=600, check=True,
                )  # fmt: skip
                results[variant].append(json.loads(proc.stdout.decode().splitlines()[-1]))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    for key in ("wall_us", "thread_cpu_us"):
        agent = [r[key] for r in results["agent"]]
        sdk = [r[key] for r in results["sdk-sized"]]
        ratios = [a / s for a, s in zip(agent, sdk, strict=True)]
        print(
            f"{key}: agent {u.fmt_spread(u.spread(agent), 1)}, sdk-sized "
            f"{u.fmt_spread(u.spread(sdk), 1)}, agent/sdk-sized {u.fmt_spread(u.spread(ratios), 2)}"
        )


if __name__ == "__main__":
    main()
