"""An application whose collector may be down: it records jobs through the agent's disk spool.

Usage: spool_app.py MODE ENDPOINT SPOOL_DIR [TAG]

``record``: run one job (3 steps x 5 log lines, a result) tagged TAG, shut down, print the
agent's counters as JSON. ``replay``: record nothing, flush (which sends what is spooled),
shut down, print the counters. ``live``: record job TAG-1, print ``recorded``, wait for a line
on stdin (the collector is up now), record job TAG-2, then wait until the spool is empty and
print the counters.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time

import jobtrail


def one_job(tag: str) -> None:
    with jobtrail.job(f"import {tag}", type="spool-test", id=tag, total_steps=3) as job:
        for s in range(3):
            with job.step(f"step {s}") as step:
                for k in range(5):
                    step.info(f"{tag} step {s} line {k}", k=k)
        job.result = {"tag": tag}


def main() -> None:
    mode, endpoint, spool_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    tag = sys.argv[4] if len(sys.argv) > 4 else "job"
    jobtrail.configure(
        endpoint=endpoint, service_name="spool-app", spool_dir=spool_dir, capture_logging=False,
        heartbeat_interval_s=0, log_export_delay_ms=50, span_export_delay_ms=50,
        export_timeout_s=2,
    )  # fmt: skip
    if mode == "record":
        one_job(tag)
    elif mode == "replay":
        jobtrail.force_flush(timeout_s=15)
    elif mode == "live":
        one_job(f"{tag}-1")
        print("recorded", flush=True)
        sys.stdin.readline()
        one_job(f"{tag}-2")
        deadline = time.monotonic() + 30
        pipeline = jobtrail.agent.DEFAULT_AGENT._state.pipeline  # noqa: SLF001
        while time.monotonic() < deadline:
            stats = jobtrail.agent_stats()
            if stats.spool_replayed >= stats.spooled and not pipeline.spool.holding:
                break
            time.sleep(0.1)
    jobtrail.shutdown(timeout_s=5)
    print(json.dumps(dataclasses.asdict(jobtrail.agent_stats())), flush=True)


if __name__ == "__main__":
    main()
