"""An application running jobs through the agent while its collector misbehaves.

Usage: agent_under_faults.py ENDPOINT SECONDS [MAX_QUEUE_SIZE]

Prints ``started`` after a warm-up, then runs jobs back to back for SECONDS (3 steps of 5 log lines each, progress, a stdlib logging
record) and times every agent call the application makes. With ``RUN_UNTIL_FILE`` set, it goes
on after SECONDS until that file exists (at most ``UNTIL_MAX_S`` in all), so a caller can keep
it running until something outside has happened. Prints one JSON line:
{"calls": {name: {"n", "p50_ms", "p99_ms", "max_ms"}}, "jobs": n, "rss_mib": {...},
"stats": {...agent counters...}, "app_errors": n, "done_at": time.time()} and then returns,
so the agent's bounded flush at interpreter exit is what the caller measures next.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from jobtrail.agent import Agent

QUEUE = 2048
SHUTDOWN_S = 2.0
UNTIL_MAX_S = 30.0
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


def main() -> None:
    endpoint, seconds = sys.argv[1], float(sys.argv[2])
    queue = int(sys.argv[3]) if len(sys.argv) > 3 else QUEUE
    agent = Agent()
    agent.configure(
        endpoint=endpoint,
        service_name="agent-under-faults",
        max_queue_size=queue,
        shutdown_timeout_s=SHUTDOWN_S,
        heartbeat_interval_s=1,
        log_export_delay_ms=100,
        span_export_delay_ms=100,
    )
    app_log = logging.getLogger("app")
    app_log.setLevel(logging.INFO)
    samples: dict[str, list[int]] = {}
    errors = 0

    def timed(name: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter_ns()
        result = call()
        samples.setdefault(name, []).append(time.perf_counter_ns() - started)
        return result

    def one_job(i: int) -> None:
        job = timed("job()", lambda: agent.job("faulty", type="fault-test", n=i, total_steps=3))
        timed("job enter", job.__enter__)
        for s in range(3):
            step = timed("step enter", lambda s=s: job.step(f"step {s}").__enter__())
            for k in range(5):
                timed("log", lambda k=k, step=step: step.info("working", k=k, payload="x" * 64))
            timed("step exit", lambda step=step: step.__exit__(None, None, None))
            timed("progress", lambda s=s: job.progress((s + 1) * 33))
        timed("stdlib logging", lambda: app_log.info("job %d done", i))
        timed("job exit", lambda: job.__exit__(None, None, None))

    for i in range(50):  # warm up before the baseline memory reading
        one_job(i)
    samples.clear()
    print("started", flush=True)
    rss = {"start": rss_mib(), "peak": 0.0}
    jobs = 0
    until = os.environ.get("RUN_UNTIL_FILE")
    started = time.monotonic()

    def running() -> bool:
        elapsed = time.monotonic() - started
        if elapsed < seconds:
            return True
        return until is not None and elapsed < UNTIL_MAX_S and not os.path.exists(until)

    while running():
        try:
            one_job(jobs)
        except Exception:  # noqa: BLE001 - counted: the agent must never raise into the app
            errors += 1
        jobs += 1
        if jobs % 50 == 0:
            rss["peak"] = max(rss["peak"], rss_mib())
    rss["end"] = rss_mib()
    calls = {}
    for name, ns in samples.items():
        ns.sort()
        calls[name] = {
            "n": len(ns),
            "p50_ms": ns[len(ns) // 2] / 1e6,
            "p99_ms": ns[int(len(ns) * 0.99)] / 1e6,
            "max_ms": ns[-1] / 1e6,
        }
    out = {
        "calls": calls,
        "jobs": jobs,
        "rss_mib": rss,
        "stats": dataclasses.asdict(agent.stats()),
        "app_errors": errors,
        "shutdown_timeout_s": SHUTDOWN_S,
        "max_queue_size": queue,
        "done_at": time.time(),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
