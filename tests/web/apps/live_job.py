"""A job that keeps running and logging until told to stop (live tail tests).

Usage: live_job.py CONTROL_DIR. Writes CONTROL_DIR/job_id once the job started, logs a burst
of lines, then one line every ~0.15 s with rising progress until CONTROL_DIR/stop exists.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jobtrail

control = Path(sys.argv[1])
jobtrail.configure(log_export_delay_ms=100, heartbeat_interval_s=1)

with jobtrail.job("live import", type="live", owner="tester", total_steps=2) as job:
    (control / "job_id.tmp").write_text(job.id)
    (control / "job_id.tmp").rename(control / "job_id")
    with job.step("stream") as step:
        for i in range(40):
            step.info(f"burst line {i}", i=i)
        n = 0
        deadline = time.monotonic() + 60
        while not (control / "stop").exists() and time.monotonic() < deadline:
            step.info(f"tick {n}", n=n)
            job.progress(min(90, n), step="stream")
            n += 1
            time.sleep(0.15)
    with job.step("finish") as step:
        step.success("all done")

jobtrail.shutdown()
