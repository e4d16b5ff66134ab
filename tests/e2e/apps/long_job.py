"""A long job for live tests: steps, progress, a log line every 100 ms with its send time.

Usage: long_job.py STEPS LINES_PER_STEP [--hang]  — prints the job id first (flushed), then
runs. With --hang, the process stops emitting after the first step and sleeps (to be killed).
"""

from __future__ import annotations

import sys
import time

import jobtrail

steps, lines = int(sys.argv[1]), int(sys.argv[2])
hang = "--hang" in sys.argv
jobtrail.configure(heartbeat_interval_s=0.5)
with jobtrail.job("long job", type="long", total_steps=steps) as job:
    print(job.id, flush=True)
    time.sleep(0.5)
    for s in range(steps):
        with job.step(f"step {s}") as step:
            for i in range(lines):
                step.info(f"line {s}.{i}", sent_at=time.time())
                time.sleep(0.1)
        if hang:
            time.sleep(3600)
jobtrail.shutdown()
